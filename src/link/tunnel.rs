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
use std::time::Instant;

use zeroize::Zeroizing;

use super::config::TunnelConfig;
use super::handshake::Initiator;
use super::session::Session;
use super::wire::{self, DATA_OVERHEAD, INIT_LEN, Inner, RESP_LEN};

pub use super::events::{DownReason, Output, Role, SendError, TunnelEvent, TunnelStats};

/// An initiation in flight.
pub(super) struct Pending {
    pub(super) hs: Initiator,
    pub(super) index: u32,
    pub(super) sent_at: Instant,
}

/// One link's Noise session state.
pub struct Tunnel {
    pub(super) cfg: TunnelConfig,
    pub(super) role: Role,
    pub(super) local_secret: Zeroizing<[u8; 32]>,
    pub(super) remote_static: [u8; 32],
    pub(super) prologue: Vec<u8>,
    /// The ring's link key ([`Tunnel::set_psk`]); all zero until set.
    pub(super) psk: Zeroizing<[u8; 32]>,
    pub(super) next_index: u32,
    /// Initiator: the message 1 in flight, and when the first attempt started.
    pub(super) pending: Option<Pending>,
    pub(super) handshake_started: Option<Instant>,
    pub(super) attempt: u64,
    /// Responder: the newest attempt answered, against replays.
    pub(super) last_attempt: Option<u64>,
    pub(super) current: Option<Session>,
    /// Responder: a session answered but not yet confirmed by a data packet.
    pub(super) next: Option<Session>,
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

/// For the fuzzer only (`cfg(fuzzing)`): a tunnel that is up, copied, so each input starts from
/// the same session without a handshake of its own. Never in a real build: two copies of a
/// session would send under the same nonces. An initiation in flight is not copied.
#[cfg(fuzzing)]
impl Clone for Tunnel {
    fn clone(&self) -> Self {
        Tunnel {
            cfg: self.cfg.clone(),
            role: self.role,
            local_secret: self.local_secret.clone(),
            remote_static: self.remote_static,
            prologue: self.prologue.clone(),
            psk: self.psk.clone(),
            next_index: self.next_index,
            pending: None,
            handshake_started: self.handshake_started,
            attempt: self.attempt,
            last_attempt: self.last_attempt,
            current: self.current.clone(),
            next: self.next.clone(),
            up: self.up,
            closed: self.closed,
            last_sent: self.last_sent,
            last_received: self.last_received,
            awaiting_since: self.awaiting_since,
            stale_reported: self.stale_reported,
            ping_id: self.ping_id,
            ping_out: self.ping_out,
            observed_to_send: self.observed_to_send,
            events: self.events.clone(),
            stats: self.stats,
            created: self.created,
        }
    }
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
            psk: Zeroizing::new([0; 32]),
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

    /// Sets the pre-shared key (the ring's link key): both ends must hold the same one.
    pub fn set_psk(&mut self, psk: &[u8; 32]) {
        self.psk = Zeroizing::new(*psk);
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
            &self.psk,
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

    pub(super) fn sent_kind(&mut self, now: Instant, bytes: usize, expects_answer: bool) -> usize {
        self.stats.tx_packets += 1;
        self.stats.tx_bytes += bytes as u64;
        self.last_sent = Some(now);
        if expects_answer && self.awaiting_since.is_none() {
            self.awaiting_since = Some(now);
        }
        bytes
    }

    pub(super) fn received(&mut self, now: Instant, bytes: usize) {
        self.stats.rx_packets += 1;
        self.stats.rx_bytes += bytes as u64;
        self.last_received = Some(now);
        self.awaiting_since = None;
        self.stale_reported = false;
    }

    pub(super) fn fresh_index(&mut self) -> u32 {
        self.next_index = self.next_index.wrapping_mul(0x9E37_79B9).wrapping_add(1);
        self.next_index
    }
}

/// Room a caller's buffer needs for a datagram of `len` bytes.
pub fn buffer_for(len: usize) -> usize {
    (len + DATA_OVERHEAD).max(RESP_LEN).max(INIT_LEN)
}
