//! The Noise session of one link, sans-IO in boringtun's shape: the caller hands in packets and
//! the time, and gets bytes to send written into its own buffers.
//!
//! - [`Tunnel::encapsulate`]: an application datagram → one data packet.
//! - [`Tunnel::decapsulate`]: a received packet → a datagram for the application, a packet to
//!   send back (handshake response, pong), or nothing. Anything malformed, unauthentic, replayed
//!   or stale is dropped and counted in [`TunnelStats`], never returned as an error.
//! - [`Tunnel::update_timers`]: handshake retries, keepalives, probes; call it when
//!   [`Tunnel::poll_timeout`] passes and after every other call, until it returns `None`.
//! - [`Tunnel::poll_event`]: up, down, rekeyed, observed address, RTT, path stale.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::config::TunnelConfig;
use super::handshake::{self, HandshakeError, Initiator};
use super::session::Session;
use super::wire::{self, DATA_OVERHEAD, INIT_LEN, Inner, Packet, RESP_LEN};

/// Which end of the handshake we are (the Jingle initiator is the Noise initiator).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sends message 1.
    Initiator,
    /// Answers it.
    Responder,
}

/// Why a link went down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownReason {
    /// Nothing heard for [`TunnelConfig::dead_after`].
    Silence,
    /// The peer sent a close message (with its reason code).
    PeerClosed(u8),
    /// No handshake completed within [`TunnelConfig::handshake_timeout`].
    HandshakeTimeout,
    /// We closed it.
    LocalClose,
}

/// Something the driver should know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TunnelEvent {
    /// The session is authenticated both ways and carries data.
    Up,
    /// A handshake message was refused (key mismatch with the record is the one to log loudly).
    Refused(HandshakeError),
    /// The sending key moved to the next epoch.
    Rekeyed,
    /// The peer sees our packets coming from this address.
    Observed(SocketAddr),
    /// A ping was answered after this long.
    Rtt(Duration),
    /// We keep sending but hear nothing: restart ICE.
    PathStale,
    /// The link is down.
    Down(DownReason),
}

/// Why [`Tunnel::encapsulate`] did not produce a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// No session yet, or the link is down.
    #[error("the link is not up")]
    NotUp,
    /// The caller's buffer cannot hold the packet.
    #[error("buffer too small: need {0} bytes")]
    BufferTooSmall(usize),
    /// The send counter is exhausted (never in practice: rekeying resets nothing, 2^64 − 2).
    #[error("counter exhausted")]
    Exhausted,
}

/// What [`Tunnel::decapsulate`] produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Output<'a> {
    /// Nothing (consumed or dropped).
    Done,
    /// An application datagram, in the caller's buffer.
    Datagram(&'a [u8]),
    /// A packet to send to the peer, in the caller's buffer.
    Transmit(&'a [u8]),
}

/// Counters for `chamber status` and the tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TunnelStats {
    /// Packets sent (all kinds).
    pub tx_packets: u64,
    /// Bytes sent on the wire.
    pub tx_bytes: u64,
    /// Packets accepted.
    pub rx_packets: u64,
    /// Bytes accepted on the wire.
    pub rx_bytes: u64,
    /// Application datagrams delivered.
    pub rx_datagrams: u64,
    /// Dropped: not a link packet.
    pub dropped_malformed: u64,
    /// Dropped: did not authenticate, or for no session of ours.
    pub dropped_auth: u64,
    /// Dropped: a counter seen before or behind the window.
    pub dropped_replay: u64,
    /// Handshake messages refused (mismatched key, replay, forged).
    pub dropped_handshake: u64,
    /// Counters skipped by the peer and never received: packets lost on the path.
    pub lost: u64,
    /// Handshakes completed.
    pub handshakes: u64,
    /// Key epochs moved to, both directions.
    pub rekeys: u64,
}

/// An initiation in flight.
struct Pending {
    hs: Initiator,
    index: u32,
    sent_at: Instant,
}

/// One link's Noise session state.
pub struct Tunnel {
    pub(super) cfg: TunnelConfig,
    role: Role,
    local_secret: Zeroizing<[u8; 32]>,
    remote_static: [u8; 32],
    prologue: Vec<u8>,
    next_index: u32,
    /// Initiator: the message 1 in flight, and when the first attempt started.
    pending: Option<Pending>,
    pub(super) handshake_started: Option<Instant>,
    attempt: u64,
    /// Responder: the newest attempt answered, against replays.
    last_attempt: Option<u64>,
    pub(super) current: Option<Session>,
    /// Responder: a session answered but not yet confirmed by a data packet.
    next: Option<Session>,
    pub(super) up: bool,
    pub(super) closed: bool,
    pub(super) last_sent: Option<Instant>,
    pub(super) last_received: Option<Instant>,
    /// The first send after the last receive: how long we have been talking to silence.
    pub(super) awaiting_since: Option<Instant>,
    pub(super) stale_reported: bool,
    pub(super) ping_id: u32,
    pub(super) ping_out: Option<(u32, Instant)>,
    /// An observed address to tell the peer.
    pub(super) observed_to_send: Option<SocketAddr>,
    pub(super) events: VecDeque<TunnelEvent>,
    pub(super) stats: TunnelStats,
    /// When the responder's handshake clock started: at the first path, not at creation, so
    /// a slow ICE search is not mistaken for a failed handshake.
    pub(super) created: Option<Instant>,
}

impl Tunnel {
    /// A tunnel to the peer whose record holds `remote_static`. `context` binds the handshake
    /// to the signalling session (the Jingle sid); `index_seed` is random, so session indices
    /// are not guessable.
    pub fn new(
        role: Role,
        local_secret: &[u8; 32],
        remote_static: [u8; 32],
        context: &[u8],
        index_seed: u32,
        cfg: TunnelConfig,
        _now: Instant,
    ) -> Tunnel {
        let mut prologue = b"chamber-link-1\0".to_vec();
        prologue.extend_from_slice(context);
        Tunnel {
            cfg,
            role,
            local_secret: Zeroizing::new(*local_secret),
            remote_static,
            prologue,
            next_index: index_seed,
            pending: None,
            handshake_started: None,
            attempt: 0,
            last_attempt: None,
            current: None,
            next: None,
            up: false,
            closed: false,
            last_sent: None,
            last_received: None,
            awaiting_since: None,
            stale_reported: false,
            ping_id: 0,
            ping_out: None,
            observed_to_send: None,
            events: VecDeque::new(),
            stats: TunnelStats::default(),
            created: None,
        }
    }

    /// Sets the peer's Noise key when it was not known at creation (an initiator learns it
    /// from the answer, after its ICE agent had to start). Ignored once a handshake started.
    pub fn set_remote_static(&mut self, key: [u8; 32]) {
        if self.pending.is_none() && self.current.is_none() {
            self.remote_static = key;
        }
    }

    /// Starts the responder's handshake clock (call when the first path exists).
    pub fn arm(&mut self, now: Instant) {
        self.created.get_or_insert(now);
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether data can flow.
    pub fn is_up(&self) -> bool {
        self.up && !self.closed
    }

    /// Counters so far.
    pub fn stats(&self) -> TunnelStats {
        let mut s = self.stats;
        s.lost += self.current.as_ref().map_or(0, Session::lost);
        s
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<TunnelEvent> {
        self.events.pop_front()
    }

    /// Initiator: writes a (new) handshake initiation into `dst` (≥ [`INIT_LEN`] bytes). Also
    /// how a dead link is revived after an ICE restart.
    pub fn initiate(&mut self, now: Instant, dst: &mut [u8]) -> Option<usize> {
        if self.role != Role::Initiator || self.closed || dst.len() < INIT_LEN {
            return None;
        }
        self.attempt += 1;
        let index = self.fresh_index();
        wire::emit_init_header(dst, index);
        match Initiator::start(
            &self.local_secret,
            &self.remote_static,
            &self.prologue,
            self.attempt,
            &mut dst[8..INIT_LEN],
        ) {
            Ok(hs) => {
                self.pending = Some(Pending {
                    hs,
                    index,
                    sent_at: now,
                });
                self.handshake_started.get_or_insert(now);
                Some(self.sent(now, INIT_LEN))
            }
            Err(e) => {
                tracing::error!(%e, "cannot start a Noise handshake");
                None
            }
        }
    }

    /// Tells the tunnel the address the peer's packets come from; the peer learns it (peer
    /// reflection) with the next packet we send.
    pub fn set_observed(&mut self, addr: SocketAddr) {
        self.observed_to_send = Some(addr);
    }

    /// Encrypts an application datagram into `dst` (its length plus [`DATA_OVERHEAD`]).
    pub fn encapsulate(
        &mut self,
        now: Instant,
        payload: &[u8],
        dst: &mut [u8],
    ) -> Result<usize, SendError> {
        self.seal(now, Inner::Datagram(payload), dst)
    }

    /// Sends a close message and stops the tunnel.
    pub fn close(&mut self, now: Instant, reason: u8, dst: &mut [u8]) -> Option<usize> {
        if self.closed {
            return None;
        }
        let n = self.seal(now, Inner::Close(reason), dst).ok();
        self.shut(DownReason::LocalClose);
        n
    }

    pub(super) fn pending_clear(&mut self) {
        self.pending = None;
    }

    pub(super) fn shut(&mut self, reason: DownReason) {
        if !self.closed {
            self.closed = true;
            self.pending = None;
            self.events.push_back(TunnelEvent::Down(reason));
        }
    }

    /// Marks the tunnel down without closing it (silence): data stops until a new handshake
    /// (initiator) or a new initiation arrives (responder).
    pub(super) fn lose(&mut self, reason: DownReason) {
        if self.up {
            self.up = false;
            self.events.push_back(TunnelEvent::Down(reason));
        }
    }

    pub(super) fn seal(
        &mut self,
        now: Instant,
        inner: Inner<'_>,
        dst: &mut [u8],
    ) -> Result<usize, SendError> {
        if !self.is_up() && !matches!(inner, Inner::Close(_)) {
            return Err(SendError::NotUp);
        }
        let len = inner.buffer_len();
        let total = wire::DATA_HEADER_LEN + len + wire::TAG_LEN;
        if dst.len() < total {
            return Err(SendError::BufferTooSmall(total));
        }
        let cfg = (self.cfg.rekey_after_packets, self.cfg.rekey_after_time);
        let s = self.current.as_mut().ok_or(SendError::NotUp)?;
        if s.maybe_rekey_send(now, cfg.0, cfg.1) {
            self.stats.rekeys += 1;
            self.events.push_back(TunnelEvent::Rekeyed);
        }
        let (head, body) = dst.split_at_mut(wire::DATA_HEADER_LEN);
        inner.emit(body);
        s.seal(head, &mut body[..len + wire::TAG_LEN], len)
            .map_err(|_| SendError::Exhausted)?;
        // A pong or a report expects no answer, so it does not start the silence clock.
        let expects_answer = matches!(inner, Inner::Datagram(_) | Inner::Ping(_));
        Ok(self.sent_kind(now, total, expects_answer))
    }

    pub(super) fn sent(&mut self, now: Instant, bytes: usize) -> usize {
        self.sent_kind(now, bytes, true)
    }

    fn sent_kind(&mut self, now: Instant, bytes: usize, expects_answer: bool) -> usize {
        self.stats.tx_packets += 1;
        self.stats.tx_bytes += bytes as u64;
        self.last_sent = Some(now);
        if expects_answer && self.awaiting_since.is_none() {
            self.awaiting_since = Some(now);
        }
        bytes
    }

    fn received(&mut self, now: Instant, bytes: usize) {
        self.stats.rx_packets += 1;
        self.stats.rx_bytes += bytes as u64;
        self.last_received = Some(now);
        self.awaiting_since = None;
        self.stale_reported = false;
    }

    fn fresh_index(&mut self) -> u32 {
        self.next_index = self.next_index.wrapping_mul(0x9E37_79B9).wrapping_add(1);
        self.next_index
    }

    /// Handles one received packet; see the module docs. `dst` must be at least as long as
    /// `packet` (and [`RESP_LEN`] for handshake answers).
    pub fn decapsulate<'a>(
        &mut self,
        now: Instant,
        packet: &[u8],
        dst: &'a mut [u8],
    ) -> Output<'a> {
        if self.closed {
            return Output::Done;
        }
        match Packet::new_checked(packet) {
            Err(e) => {
                tracing::trace!(%e, len = packet.len(), "malformed packet dropped");
                self.stats.dropped_malformed += 1;
                Output::Done
            }
            Ok(Packet::Init { sender, noise }) => self.on_init(now, sender, noise, dst),
            Ok(Packet::Resp {
                sender,
                receiver,
                noise,
            }) => self.on_resp(now, sender, receiver, noise, dst),
            Ok(Packet::Data {
                header,
                epoch,
                receiver,
                counter,
                ciphertext,
            }) => self.on_data(now, header, epoch, receiver, counter, ciphertext, dst),
        }
    }

    fn refuse(&mut self, e: HandshakeError) {
        self.stats.dropped_handshake += 1;
        // Only a key mismatch is news: forged or replayed messages are counted, not reported,
        // so garbage cannot flood the event queue.
        if let HandshakeError::KeyMismatch { .. } = &e {
            tracing::warn!(%e, "link refused: the peer's key does not match its record");
            self.events.push_back(TunnelEvent::Refused(e));
        } else {
            tracing::debug!(%e, "handshake message dropped");
        }
    }

    fn on_init<'a>(
        &mut self,
        now: Instant,
        sender: u32,
        noise: &[u8],
        dst: &'a mut [u8],
    ) -> Output<'a> {
        if self.role != Role::Responder || dst.len() < RESP_LEN {
            self.stats.dropped_handshake += 1;
            return Output::Done;
        }
        let index = self.fresh_index();
        match handshake::respond(
            &self.local_secret,
            &self.remote_static,
            &self.prologue,
            self.last_attempt,
            noise,
            &mut dst[12..RESP_LEN - 4],
        ) {
            Ok((keys, attempt)) => {
                self.last_attempt = Some(attempt);
                self.received(now, packet_len(noise, 8));
                self.next = Some(Session::new(index, sender, keys, now));
                wire::emit_resp_header(dst, index, sender);
                let n = self.sent_kind(now, RESP_LEN, false);
                Output::Transmit(&dst[..n])
            }
            Err(e) => {
                self.refuse(e);
                Output::Done
            }
        }
    }

    fn on_resp<'a>(
        &mut self,
        now: Instant,
        sender: u32,
        receiver: u32,
        noise: &[u8],
        dst: &'a mut [u8],
    ) -> Output<'a> {
        let Some(p) = self.pending.take_if(|p| p.index == receiver) else {
            self.stats.dropped_handshake += 1;
            return Output::Done;
        };
        let sent_at = p.sent_at;
        match p.hs.finish(noise) {
            Ok(keys) => {
                self.received(now, packet_len(noise, 12 + 4));
                self.current = Some(Session::new(receiver, sender, keys, now));
                self.handshake_started = None;
                self.stats.handshakes += 1;
                self.became_up();
                self.events.push_back(TunnelEvent::Rtt(now - sent_at));
                // A ping confirms the session to the responder (it waits for a data packet)
                // and its pong confirms the path back.
                self.ping_id = self.ping_id.wrapping_add(1);
                match self.seal(now, Inner::Ping(self.ping_id), dst) {
                    Ok(n) => {
                        self.ping_out = Some((self.ping_id, now));
                        Output::Transmit(&dst[..n])
                    }
                    Err(_) => Output::Done,
                }
            }
            Err(e) => {
                self.refuse(e);
                Output::Done
            }
        }
    }

    fn became_up(&mut self) {
        if !self.up {
            self.up = true;
            self.events.push_back(TunnelEvent::Up);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn on_data<'a>(
        &mut self,
        now: Instant,
        header: &[u8],
        epoch: u8,
        receiver: u32,
        counter: u64,
        ciphertext: &[u8],
        dst: &'a mut [u8],
    ) -> Output<'a> {
        if dst.len() < ciphertext.len() {
            self.stats.dropped_malformed += 1;
            return Output::Done;
        }
        let buf = &mut dst[..ciphertext.len()];
        buf.copy_from_slice(ciphertext);
        let promote = self
            .next
            .as_ref()
            .is_some_and(|s| s.local_index == receiver);
        let session = if promote {
            self.next.as_mut()
        } else {
            self.current.as_mut().filter(|s| s.local_index == receiver)
        };
        let Some(session) = session else {
            self.stats.dropped_auth += 1;
            return Output::Done;
        };
        let len = match session.open(header, epoch, counter, buf) {
            Ok((len, rekeyed)) => {
                if rekeyed {
                    self.stats.rekeys += 1;
                }
                len
            }
            Err(super::session::OpenError::Replay) => {
                self.stats.dropped_replay += 1;
                return Output::Done;
            }
            Err(super::session::OpenError::Auth) => {
                self.stats.dropped_auth += 1;
                return Output::Done;
            }
        };
        if promote {
            if let Some(old) = self.current.take() {
                self.stats.lost += old.lost();
            }
            self.current = self.next.take();
            self.stats.handshakes += 1;
        }
        self.received(now, header.len() + ciphertext.len());
        self.became_up();
        let Ok(inner) = Inner::parse(&dst[..len]) else {
            self.stats.dropped_malformed += 1;
            return Output::Done;
        };
        match inner {
            Inner::Datagram(_) => {
                self.stats.rx_datagrams += 1;
                Output::Datagram(&dst[1..len])
            }
            Inner::Ping(id) => match self.seal(now, Inner::Pong(id), dst) {
                Ok(n) => Output::Transmit(&dst[..n]),
                Err(_) => Output::Done,
            },
            Inner::Pong(id) => {
                if let Some((out, at)) = self.ping_out
                    && out == id
                {
                    self.ping_out = None;
                    self.events.push_back(TunnelEvent::Rtt(now - at));
                }
                Output::Done
            }
            Inner::Observed(a) => {
                self.events.push_back(TunnelEvent::Observed(a));
                Output::Done
            }
            Inner::Close(r) => {
                self.shut(DownReason::PeerClosed(r));
                Output::Done
            }
        }
    }
}

/// The wire length of a handshake packet from its Noise part and fixed overhead.
fn packet_len(noise: &[u8], overhead: usize) -> usize {
    noise.len() + overhead
}

/// Room a caller's buffer needs for a datagram of `len` bytes.
pub fn buffer_for(len: usize) -> usize {
    (len + DATA_OVERHEAD).max(RESP_LEN).max(INIT_LEN)
}
