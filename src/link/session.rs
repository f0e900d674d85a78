//! One handshake's transport state: both keys with their epochs, the send counter and the
//! receive replay window.

use std::time::{Duration, Instant};

use super::cipher::{CipherKey, MAX_COUNTER};
use super::handshake::Keys;
use super::replay::ReplayWindow;
use super::wire;

/// Why a data packet was not opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OpenError {
    /// Counter seen before or behind the window.
    Replay,
    /// Did not authenticate under any key we hold.
    Auth,
}

#[cfg_attr(fuzzing, derive(Clone))]
pub(super) struct Session {
    pub(super) local_index: u32,
    remote_index: u32,
    send: CipherKey,
    send_epoch: u8,
    send_counter: u64,
    epoch_started: Instant,
    sent_in_epoch: u64,
    recv: CipherKey,
    recv_epoch: u8,
    prev_recv: Option<CipherKey>,
    window: ReplayWindow,
    /// Highest counter accepted + 1, and how many were accepted: the gap is loss.
    recv_top: u64,
    recv_count: u64,
}

impl Session {
    pub(super) fn new(local_index: u32, remote_index: u32, keys: Keys, now: Instant) -> Self {
        Session {
            local_index,
            remote_index,
            send: keys.send,
            send_epoch: 0,
            send_counter: 0,
            epoch_started: now,
            sent_in_epoch: 0,
            recv: keys.recv,
            recv_epoch: 0,
            prev_recv: None,
            window: ReplayWindow::default(),
            recv_top: 0,
            recv_count: 0,
        }
    }

    /// Packets the peer numbered but we never accepted.
    pub(super) fn lost(&self) -> u64 {
        self.recv_top.saturating_sub(self.recv_count)
    }

    /// Moves the sending key on when it is old or worn; true if it did.
    pub(super) fn maybe_rekey_send(&mut self, now: Instant, packets: u64, age: Duration) -> bool {
        if self.sent_in_epoch < packets && now.saturating_duration_since(self.epoch_started) < age {
            return false;
        }
        self.send = self.send.rekey();
        self.send_epoch = self.send_epoch.wrapping_add(1);
        self.sent_in_epoch = 0;
        self.epoch_started = now;
        true
    }

    /// Writes the header into `head` and encrypts `body[..len]` in place (tag after it).
    pub(super) fn seal(
        &mut self,
        head: &mut [u8],
        body: &mut [u8],
        len: usize,
    ) -> Result<(), super::cipher::AeadError> {
        if self.send_counter > MAX_COUNTER {
            return Err(super::cipher::AeadError);
        }
        let n = self.send_counter;
        wire::emit_data_header(head, self.send_epoch, self.remote_index, n);
        self.send
            .seal(n, &head[..wire::DATA_HEADER_LEN], body, len)?;
        self.send_counter += 1;
        self.sent_in_epoch += 1;
        Ok(())
    }

    /// Decrypts `buf` in place; returns the plaintext length and whether the receive key moved
    /// to a new epoch.
    pub(super) fn open(
        &mut self,
        header: &[u8],
        epoch: u8,
        counter: u64,
        buf: &mut [u8],
    ) -> Result<(usize, bool), OpenError> {
        if counter > MAX_COUNTER || !self.window.check(counter) {
            return Err(OpenError::Replay);
        }
        let mut next = None;
        let key = if epoch == self.recv_epoch {
            &self.recv
        } else if epoch == self.recv_epoch.wrapping_sub(1) {
            self.prev_recv.as_ref().ok_or(OpenError::Auth)?
        } else if epoch == self.recv_epoch.wrapping_add(1) {
            // The peer rekeyed: derive its next key, but switch only if the packet is authentic.
            &*next.insert(self.recv.rekey())
        } else {
            return Err(OpenError::Auth);
        };
        let len = key
            .open(counter, header, buf)
            .map_err(|_| OpenError::Auth)?;
        self.window.commit(counter);
        self.recv_top = self.recv_top.max(counter + 1);
        self.recv_count += 1;
        let rekeyed = if let Some(k) = next {
            self.prev_recv = Some(std::mem::replace(&mut self.recv, k));
            self.recv_epoch = epoch;
            true
        } else {
            false
        };
        Ok((len, rekeyed))
    }
}
