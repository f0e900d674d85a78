//! A thin tokio UDP driver for the Brunet profile node (`brunet_compat::profile`).
//!
//! The node is sans-IO; this module owns the socket and the clock: it feeds received
//! datagrams and deadlines in, sends what the node asks for, and reports what happens as
//! text lines (address, connections, neighbours, ring state, reflections, echoes). The
//! profile is plaintext: Brunet's own security layer (PeerSec) is obsolete and not
//! implemented, so anyone on the path can read and forge this traffic.

mod report;

use std::net::SocketAddr;
use std::time::Duration;

use brunet_compat::address::Address;
use brunet_compat::profile::{Config, Input, Node, Output};
use brunet_compat::ring::Time;
use brunet_compat::wire::ta::{Host, IpKind, TransportAddress};
use tokio::net::UdpSocket;
use tokio::time::Instant;

pub use report::Report;

/// The warning every run prints first.
pub const PLAINTEXT_WARNING: &str = "the Brunet profile is plaintext: no encryption and no \
authentication (Brunet's PeerSec is obsolete and not implemented); use it only on networks \
you trust";

/// Largest datagram read (Brunet's UDP listener uses 8 KiB buffers too).
const MAX_DATAGRAM: usize = 8192;
/// Period of the echo while `echo` is set.
const ECHO_EVERY: Duration = Duration::from_secs(3);

/// What to run.
#[derive(Clone, Debug)]
pub struct Options {
    /// The ring's realm.
    pub realm: String,
    /// Where to listen: a concrete address peers can reach.
    pub listen: SocketAddr,
    /// Brunet's RemoteTAs.
    pub bootstrap: Vec<TransportAddress>,
    /// Send AH exact echoes to this node.
    pub echo: Option<Address>,
    /// Our address; a random AH address when absent.
    pub address: Option<Address>,
}

/// Why the driver stopped with an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrunetError {
    /// The listen address is not one peers can reach.
    #[error("--listen {0}: give the IP address peers reach this node at, not a wildcard")]
    Wildcard(SocketAddr),
    /// A bootstrap address is not a UDP address.
    #[error("--bootstrap {0}: expected brunet.udp://HOST:PORT")]
    Bootstrap(String),
    /// A bootstrap host name does not resolve.
    #[error("--bootstrap {0}: {1}")]
    Resolve(String, std::io::Error),
    /// The socket could not be opened.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Where.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Receiving failed.
    #[error("UDP receive failed: {0}")]
    Receive(std::io::Error),
}

/// The bootstrap addresses with host names resolved (the node itself does no I/O, so
/// it only takes literal IPs), keeping those of the listen socket's family.
pub async fn resolve(
    tas: &[TransportAddress],
    listen: SocketAddr,
) -> Result<Vec<TransportAddress>, BrunetError> {
    let mut out = Vec::with_capacity(tas.len());
    for ta in tas {
        match ta {
            TransportAddress::Ip {
                kind: IpKind::Udp,
                host: Host::Name(name),
                port,
                ..
            } => {
                let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), *port))
                    .await
                    .map_err(|e| BrunetError::Resolve(ta.to_string(), e))?
                    .filter(|a| a.is_ipv4() == listen.is_ipv4())
                    .collect();
                if found.is_empty() {
                    return Err(BrunetError::Bootstrap(ta.to_string()));
                }
                out.extend(found.into_iter().map(TransportAddress::udp_socket));
            }
            _ if ta.udp_socket_addr().is_some() => out.push(ta.clone()),
            _ => return Err(BrunetError::Bootstrap(ta.to_string())),
        }
    }
    Ok(out)
}

/// Checks the options and opens the socket.
pub async fn bind(opts: &Options) -> Result<UdpSocket, BrunetError> {
    if opts.listen.ip().is_unspecified() {
        return Err(BrunetError::Wildcard(opts.listen));
    }
    if let Some(bad) = opts
        .bootstrap
        .iter()
        .find(|t| t.udp_socket_addr().is_none())
    {
        return Err(BrunetError::Bootstrap(bad.to_string()));
    }
    UdpSocket::bind(opts.listen)
        .await
        .map_err(|source| BrunetError::Bind {
            addr: opts.listen,
            source,
        })
}

/// Runs the node on `socket` until `stop` resolves, then leaves the ring cleanly.
/// Every report goes to `out`.
pub async fn run(
    opts: Options,
    socket: UdpSocket,
    stop: impl std::future::Future<Output = ()>,
    mut out: impl FnMut(Report),
) -> Result<(), BrunetError> {
    let start = Instant::now();
    let now = || Time::from_micros(u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX));
    let address = opts
        .address
        .unwrap_or_else(|| Address::ah(rand::random::<[u8; 20]>()));
    let mut cfg = Config::new(opts.realm.clone(), opts.listen, rand::random());
    cfg.bootstrap = opts.bootstrap.clone();
    let mut node = Node::new(cfg, address, now());
    out(Report::Started {
        address,
        listen: TransportAddress::udp_socket(opts.listen),
        realm: opts.realm.clone(),
    });
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let mut shown = (None, None);
    let mut next_echo: Option<Instant> = None;
    let mut echoes = std::collections::BTreeMap::new();
    tokio::pin!(stop);
    loop {
        let deadline = flush(&mut node, &socket, &mut |r| {
            let r = match r {
                Report::Echo {
                    token, from, value, ..
                } => Report::Echo {
                    token,
                    from,
                    value,
                    rtt: echoes.remove(&token).map(|t: Instant| t.elapsed()),
                },
                other => other,
            };
            out(r);
        })
        .await;
        let view = (node.left(), node.right());
        if view != shown {
            shown = view;
            out(Report::Neighbours {
                left: view.0,
                right: view.1,
            });
        }
        if opts.echo.is_some() && next_echo.is_none() && node.is_connected() {
            next_echo = Some(Instant::now());
        }
        // Time::NEVER (nothing armed) becomes "in an hour": the loop wakes and re-polls.
        let hour = Instant::now() + Duration::from_secs(3600);
        let wake = start
            .checked_add(Duration::from_micros(deadline.as_micros()))
            .map_or(hour, |w| w.min(hour));
        let wake = next_echo.map_or(wake, |e| e.min(wake));
        tokio::select! {
            r = socket.recv_from(&mut buf) => match r {
                Ok((len, from)) => {
                    let data = &buf[..len];
                    node.handle_input(now(), Input::Datagram { from, data });
                }
                // ICMP port unreachable surfaces as an error on Linux: ignore it, as Brunet.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
                Err(e) => return Err(BrunetError::Receive(e)),
            },
            () = tokio::time::sleep_until(wake) => {
                node.handle_input(now(), Input::Timeout);
                if let (Some(dst), Some(at)) = (opts.echo, next_echo)
                    && Instant::now() >= at
                {
                    let token = node.echo(now(), dst, &format!("echo from {address}"));
                    echoes.insert(token, Instant::now());
                    out(Report::EchoSent { to: dst, token });
                    next_echo = Some(Instant::now() + ECHO_EVERY);
                }
            }
            () = &mut stop => {
                node.leave(now());
                flush(&mut node, &socket, &mut out).await;
                out(Report::Left);
                return Ok(());
            }
        }
    }
}

/// Sends what the node has to send and reports its events; returns its next deadline.
async fn flush(node: &mut Node, socket: &UdpSocket, out: &mut impl FnMut(Report)) -> Time {
    loop {
        match node.poll_output() {
            Output::Transmit { to, data } => {
                // A failed send is a lost datagram: ReqRep resends it.
                let _ = socket.send_to(&data, to).await;
            }
            Output::Event(e) => out(Report::from_event(e)),
            Output::Timeout(t) => return t,
        }
    }
}
