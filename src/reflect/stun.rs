//! A STUN Binding client (RFC 8489, which obsoletes RFC 5389; with RFC 5780's CHANGE-REQUEST,
//! OTHER-ADDRESS and RESPONSE-ORIGIN) over a socket the caller owns, so the same socket and its
//! NAT mapping can be handed to ICE afterwards.
//!
//! Read first: RFC 8489 §6.2.1 (retransmission over UDP) and RFC 5780 §7 (the new attributes).
//! Several transactions may run at once on one socket: answers are matched by transaction id,
//! so a reply from a changed address (CHANGE-REQUEST) is still recognised. Anything else that
//! arrives — garbage, truncated messages, answers to finished transactions, other protocols — is
//! counted in [`ClientStats`] and dropped, with one debug line per kind and client.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use stun_rs::methods::BINDING;
use stun_rs::{MessageClass, MessageDecoderBuilder, TransactionId};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::ReflectError;
pub use super::codec::encode_request;
use super::codec::{Answer, parse_answer};

/// Largest datagram read; bigger ones are truncated by the kernel and then fail to decode.
const RECV_BUFFER: usize = 2048;

/// Consecutive receive errors after which the socket is declared broken.
const MAX_RECV_ERRORS: u32 = 8;

/// What the client sends and receives through: a tokio [`UdpSocket`], or a test double.
///
/// `recv_from` must be cancel-safe (as tokio's is): the client races it against its timers.
pub trait DatagramSocket: Sync {
    /// Sends one datagram.
    fn send_to(&self, buf: &[u8], to: SocketAddr)
    -> impl Future<Output = io::Result<usize>> + Send;
    /// Receives one datagram and says who sent it.
    fn recv_from(
        &self,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send;
    /// The address the socket is bound to.
    fn local_addr(&self) -> io::Result<SocketAddr>;
}

impl DatagramSocket for UdpSocket {
    fn send_to(
        &self,
        buf: &[u8],
        to: SocketAddr,
    ) -> impl Future<Output = io::Result<usize>> + Send {
        UdpSocket::send_to(self, buf, to)
    }

    fn recv_from(
        &self,
        buf: &mut [u8],
    ) -> impl Future<Output = io::Result<(usize, SocketAddr)>> + Send {
        UdpSocket::recv_from(self, buf)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        UdpSocket::local_addr(self)
    }
}

/// Retransmission timing (RFC 8489 §6.2.1), bounded so that a silent path costs little.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StunConfig {
    /// The first retransmission timeout, doubled after each send. RFC 8489 suggests 500 ms for
    /// the open internet; 100 ms keeps a check quick, and the doubling still backs off.
    pub initial_rto: Duration,
    /// Most requests sent per transaction (RFC 8489's Rc, 7).
    pub max_transmissions: u32,
    /// After the last request, wait this many initial RTOs for an answer (RFC 8489's Rm, 16).
    pub final_wait_factor: u32,
    /// Upper bound on one transaction, whatever the schedule says: an unanswered filtering test
    /// costs exactly this.
    pub max_total: Duration,
}

impl Default for StunConfig {
    fn default() -> Self {
        StunConfig {
            initial_rto: Duration::from_millis(100),
            max_transmissions: 7,
            final_wait_factor: 16,
            max_total: Duration::from_secs(3),
        }
    }
}

/// RFC 5780's CHANGE-REQUEST flags: ask the server to answer from another address or port.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Change {
    /// Answer from the alternate IP address.
    pub ip: bool,
    /// Answer from the alternate port.
    pub port: bool,
}

impl Change {
    /// A plain Binding request.
    pub const NONE: Change = Change {
        ip: false,
        port: false,
    };
    /// Answer from the same IP, other port (filtering test III).
    pub const PORT: Change = Change {
        ip: false,
        port: true,
    };
    /// Answer from the other IP and port (filtering test II).
    pub const IP_AND_PORT: Change = Change {
        ip: true,
        port: true,
    };
}

/// One Binding request to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BindingRequest {
    /// Where to send it.
    pub server: SocketAddr,
    /// CHANGE-REQUEST flags; with none set, the attribute is left out.
    pub change: Change,
}

/// A successful Binding response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindingResponse {
    /// Our address as the server saw it (XOR-MAPPED-ADDRESS, or MAPPED-ADDRESS from an old
    /// RFC 3489 server).
    pub mapped: SocketAddr,
    /// Where the answer actually came from (differs from the server after a CHANGE-REQUEST).
    pub from: SocketAddr,
    /// The server's alternate address (RFC 5780 OTHER-ADDRESS), if it has one.
    pub other_address: Option<SocketAddr>,
    /// The address the server says it answered from (RFC 5780 RESPONSE-ORIGIN).
    pub response_origin: Option<SocketAddr>,
    /// From the first request to the answer; an upper bound when `transmissions > 1`.
    pub rtt: Duration,
    /// How many requests were sent before the answer came.
    pub transmissions: u32,
}

/// What a client has seen, for diagnostics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct ClientStats {
    /// Requests sent, retransmissions included.
    pub sent: u64,
    /// Datagrams received.
    pub received: u64,
    /// Datagrams dropped because they were not valid STUN, or a response lacking what it needs.
    pub malformed: u64,
    /// Valid STUN that answered no pending transaction of ours.
    pub unmatched: u64,
}

/// A STUN Binding client borrowing a socket.
pub struct StunClient<'s, T: DatagramSocket + ?Sized = UdpSocket> {
    socket: &'s T,
    config: StunConfig,
    stats: ClientStats,
    logged_malformed: bool,
    logged_unmatched: bool,
}

/// One transaction in flight.
struct Tx {
    req: BindingRequest,
    id: TransactionId,
    bytes: Vec<u8>,
    sent: u32,
    next_send: Option<Instant>,
    rto: Duration,
    first_sent: Option<Instant>,
    give_up: Instant,
    last_ignored: Option<String>,
    outcome: Option<Result<BindingResponse, ReflectError>>,
}

impl<'s, T: DatagramSocket + ?Sized> StunClient<'s, T> {
    /// A client sending through `socket` with the given timing.
    pub fn new(socket: &'s T, config: StunConfig) -> Self {
        StunClient {
            socket,
            config,
            stats: ClientStats::default(),
            logged_malformed: false,
            logged_unmatched: false,
        }
    }

    /// The socket this client uses.
    pub fn socket(&self) -> &'s T {
        self.socket
    }

    /// The timing in use.
    pub fn config(&self) -> &StunConfig {
        &self.config
    }

    /// Counters since the client was made.
    pub fn stats(&self) -> ClientStats {
        self.stats
    }

    /// One Binding transaction.
    pub async fn binding(
        &mut self,
        server: SocketAddr,
        change: Change,
    ) -> Result<BindingResponse, ReflectError> {
        let mut out = self
            .bindings(&[BindingRequest { server, change }], None)
            .await;
        // One request in, one result out.
        out.pop().unwrap_or(Err(ReflectError::DeadlinePassed))
    }

    /// Runs the transactions concurrently on the socket; results come back in request order.
    /// Each one ends at its answer, after its retransmission schedule, or at `deadline`.
    pub async fn bindings(
        &mut self,
        requests: &[BindingRequest],
        deadline: Option<Instant>,
    ) -> Vec<Result<BindingResponse, ReflectError>> {
        let start = Instant::now();
        let mut give_up = start + self.config.max_total;
        if let Some(d) = deadline {
            give_up = give_up.min(d);
        }
        let rto = self.config.initial_rto;
        let mut txs: Vec<Tx> = requests
            .iter()
            .map(|r| new_tx(*r, rto, start, give_up))
            .collect();
        let mut buf = vec![0u8; RECV_BUFFER];
        let mut recv_errors = 0;
        loop {
            self.send_due(&mut txs, start).await;
            let wake = txs
                .iter()
                .filter(|t| t.outcome.is_none())
                .map(|t| t.next_send.map_or(t.give_up, |n| n.min(t.give_up)))
                .min();
            let Some(wake) = wake else { break };
            tokio::select! {
                r = self.socket.recv_from(&mut buf) => match r {
                    Ok((n, from)) => {
                        recv_errors = 0;
                        self.handle(&buf[..n], from, &mut txs, Instant::now());
                    }
                    Err(e) => {
                        recv_errors += 1;
                        tracing::debug!(%e, "STUN socket receive error");
                        if recv_errors >= MAX_RECV_ERRORS {
                            for t in txs.iter_mut().filter(|t| t.outcome.is_none()) {
                                let source = io::Error::new(e.kind(), e.to_string());
                                t.outcome = Some(Err(ReflectError::Receive { source }));
                            }
                        }
                    }
                },
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
        txs.into_iter()
            .map(|t| t.outcome.unwrap_or(Err(ReflectError::DeadlinePassed)))
            .collect()
    }

    /// Sends every request whose time has come and times out those past their end.
    async fn send_due(&mut self, txs: &mut [Tx], start: Instant) {
        for t in txs.iter_mut().filter(|t| t.outcome.is_none()) {
            let now = Instant::now();
            if now >= t.give_up {
                t.outcome = Some(Err(ReflectError::Timeout {
                    server: t.req.server,
                    transmissions: t.sent,
                    waited_ms: millis(now - start),
                    last_ignored: t.last_ignored.take(),
                }));
                continue;
            }
            if t.next_send.is_none_or(|n| n > now) {
                continue;
            }
            if let Err(source) = self.socket.send_to(&t.bytes, t.req.server).await {
                t.outcome = Some(Err(ReflectError::Send {
                    server: t.req.server,
                    source,
                }));
                continue;
            }
            self.stats.sent += 1;
            t.sent += 1;
            t.first_sent.get_or_insert(now);
            if t.sent >= self.config.max_transmissions {
                t.next_send = None;
                let last_wait = self.config.initial_rto * self.config.final_wait_factor;
                t.give_up = t.give_up.min(now + last_wait);
            } else {
                t.next_send = Some(now + t.rto);
                t.rto *= 2;
            }
        }
    }

    /// Matches one datagram to a transaction, or counts it and drops it.
    fn handle(&mut self, data: &[u8], from: SocketAddr, txs: &mut [Tx], now: Instant) {
        self.stats.received += 1;
        let decoder = MessageDecoderBuilder::default().build();
        let msg = match decoder.decode(data) {
            Ok((msg, _)) => msg,
            Err(e) => return self.malformed(from, &e.to_string()),
        };
        let is_response = matches!(
            msg.class(),
            MessageClass::SuccessResponse | MessageClass::ErrorResponse
        );
        let tx = txs
            .iter_mut()
            .find(|t| t.outcome.is_none() && t.id == *msg.transaction_id());
        let (true, true, Some(t)) = (msg.method() == BINDING, is_response, tx) else {
            self.stats.unmatched += 1;
            if !std::mem::replace(&mut self.logged_unmatched, true) {
                tracing::debug!(%from, "ignoring STUN message that answers no pending request");
            }
            return;
        };
        match parse_answer(&msg, t.req.server) {
            Ok(Answer::Mapped {
                mapped,
                other_address,
                response_origin,
            }) => {
                t.outcome = Some(Ok(BindingResponse {
                    mapped,
                    from,
                    other_address,
                    response_origin,
                    rtt: now - t.first_sent.unwrap_or(now),
                    transmissions: t.sent,
                }));
            }
            Ok(Answer::Refused(e)) => t.outcome = Some(Err(e)),
            Err(why) => {
                t.last_ignored = Some(why.to_string());
                self.malformed(from, why);
            }
        }
    }

    fn malformed(&mut self, from: SocketAddr, why: &str) {
        self.stats.malformed += 1;
        if !std::mem::replace(&mut self.logged_malformed, true) {
            tracing::debug!(%from, why, "ignoring malformed STUN reply");
        }
    }
}

fn new_tx(req: BindingRequest, rto: Duration, start: Instant, give_up: Instant) -> Tx {
    let id = TransactionId::default();
    let (bytes, outcome) = match encode_request(id, req.change) {
        Ok(b) => (b, None),
        Err(e) => (Vec::new(), Some(Err(e))),
    };
    Tx {
        req,
        id,
        bytes,
        sent: 0,
        next_send: Some(start),
        rto,
        first_sent: None,
        give_up,
        last_ignored: None,
        outcome,
    }
}

/// Whole milliseconds, for reports.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
