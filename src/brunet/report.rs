//! What the driver reports, one line each.

use std::fmt;
use std::time::Duration;

use brunet_compat::address::Address;
use brunet_compat::profile::Event;
use brunet_compat::wire::ta::TransportAddress;

/// Something worth a line of output.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Report {
    /// The node runs.
    Started {
        /// Its address.
        address: Address,
        /// Where it listens.
        listen: TransportAddress,
        /// Its realm.
        realm: String,
    },
    /// A connection came up.
    Connected {
        /// The peer.
        peer: Address,
        /// Brunet's connection type.
        kind: String,
    },
    /// A connection went down.
    Disconnected {
        /// The peer.
        peer: Address,
        /// Brunet's connection type.
        kind: String,
    },
    /// The nearest structured neighbours changed.
    Neighbours {
        /// Next larger address.
        left: Option<Address>,
        /// Next smaller address.
        right: Option<Address>,
    },
    /// Brunet's `IsConnected` flipped.
    Ring {
        /// Both neighbours linked and consistent.
        connected: bool,
    },
    /// A peer reported how it sees us.
    Reflected {
        /// Our address from outside.
        ta: TransportAddress,
    },
    /// An echo left.
    EchoSent {
        /// To whom.
        to: Address,
        /// Its token.
        token: u32,
    },
    /// An echo came back.
    Echo {
        /// Its token.
        token: u32,
        /// Who answered.
        from: Address,
        /// What it echoed.
        value: String,
        /// Round trip, when known.
        rtt: Option<Duration>,
    },
    /// An echo got no answer.
    EchoFailed {
        /// Its token.
        token: u32,
    },
    /// The node left the ring.
    Left,
}

impl Report {
    /// The report of a node event.
    pub fn from_event(e: Event) -> Report {
        match e {
            Event::Connected { peer, kind } => Report::Connected { peer, kind },
            Event::Disconnected { peer, kind } => Report::Disconnected { peer, kind },
            Event::Reflected { ta } => Report::Reflected { ta },
            Event::RingState { connected } => Report::Ring { connected },
            Event::Echo { token, from, value } => Report::Echo {
                token,
                from,
                value,
                rtt: None,
            },
            Event::EchoFailed { token } => Report::EchoFailed { token },
        }
    }
}

fn or_none(a: &Option<Address>) -> String {
    a.map_or_else(|| "-".to_owned(), |a| a.to_string())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Report::Started {
                address,
                listen,
                realm,
            } => write!(f, "address {address} listening {listen} realm {realm}"),
            Report::Connected { peer, kind } => write!(f, "connected {peer} {kind}"),
            Report::Disconnected { peer, kind } => write!(f, "disconnected {peer} {kind}"),
            Report::Neighbours { left, right } => {
                write!(
                    f,
                    "neighbours left {} right {}",
                    or_none(left),
                    or_none(right)
                )
            }
            Report::Ring { connected: true } => f.write_str("ring connected"),
            Report::Ring { connected: false } => f.write_str("ring not connected"),
            Report::Reflected { ta } => write!(f, "reflected {ta}"),
            Report::EchoSent { to, token } => write!(f, "echo {token} sent to {to}"),
            Report::Echo {
                token,
                from,
                value,
                rtt,
            } => {
                write!(f, "echo {token} reply from {from}: {value:?}")?;
                match rtt {
                    Some(d) => write!(f, " in {:.1} ms", d.as_secs_f64() * 1e3),
                    None => Ok(()),
                }
            }
            Report::EchoFailed { token } => write!(f, "echo {token} failed: no answer"),
            Report::Left => f.write_str("left the ring"),
        }
    }
}
