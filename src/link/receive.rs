//! The receive side of a [`Tunnel`]: every packet from the path is checked here, and anything
//! malformed, unauthentic, replayed or stale is dropped and counted, never returned as an error.

use std::time::Instant;

use super::events::{DownReason, Output, Role, TunnelEvent};
use super::handshake::{self, HandshakeError};
use super::session::Session;
use super::tunnel::Tunnel;
use super::wire::{self, Inner, Packet, RESP_LEN};

impl Tunnel {
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
            &self.psk,
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
