//! In-order delivery of one sender's messages: numbered 1, 2, 3, … by the sender, delivered
//! strictly in that order. Out-of-order ones wait in a bounded buffer; a gap that persists a
//! moment (a lost broadcast, not just reordering) asks for a fetch from the sender's history.
//! Pure logic: time comes in as arguments, nothing here does I/O.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::wire::MAX_BATCH;

/// How long a gap may last before it is fetched (broadcast copies take different paths, so a
/// little reordering is normal).
const GRACE: Duration = Duration::from_millis(300);
/// How long to wait before asking again after a fetch that did not fill the gap.
const RETRY: Duration = Duration::from_secs(1);
/// How far ahead of the next expected message one is kept; beyond, it is dropped and fetched
/// later, so one member cannot make us hold unbounded memory.
pub const MAX_AHEAD: u64 = 1024;

/// One sender's stream of numbered messages.
#[derive(Debug)]
pub struct Stream<M> {
    /// The next number to deliver.
    next: u64,
    /// The highest number heard of (in a message or a heartbeat).
    known: u64,
    /// Messages after a gap, waiting for it to fill.
    held: BTreeMap<u64, M>,
    /// Since when the current gap has been open.
    gap_since: Option<Instant>,
    /// When we last asked for the gap (`None`: no fetch outstanding or due for retry).
    asked_at: Option<Instant>,
    /// A fetch is on its way.
    fetching: bool,
}

impl<M> Stream<M> {
    /// A stream whose next deliverable message is `next`.
    pub fn starting_at(next: u64) -> Stream<M> {
        Stream {
            next: next.max(1),
            known: next.max(1) - 1,
            held: BTreeMap::new(),
            gap_since: None,
            asked_at: None,
            fetching: false,
        }
    }

    /// The next number to deliver.
    pub fn next(&self) -> u64 {
        self.next
    }

    /// Notes that the sender has posted up to `seq` (from a heartbeat or leave).
    pub fn heard(&mut self, seq: u64, now: Instant) {
        self.known = self.known.max(seq);
        self.update_gap(now);
    }

    /// Takes message `seq`; returns what can now be delivered, in order (empty for a
    /// duplicate, an old one, or one that waits for a gap).
    pub fn offer(&mut self, seq: u64, m: M, now: Instant) -> Vec<(u64, M)> {
        self.known = self.known.max(seq);
        if seq >= self.next && seq - self.next < MAX_AHEAD {
            self.held.entry(seq).or_insert(m);
        }
        let out = self.drain();
        self.update_gap(now);
        out
    }

    /// Gives up on everything before `first` (the sender no longer keeps it); returns how
    /// many messages were skipped and what can now be delivered.
    pub fn skip_to(&mut self, first: u64, now: Instant) -> (u64, Vec<(u64, M)>) {
        if first <= self.next {
            return (0, Vec::new());
        }
        let skipped = (self.next..first)
            .filter(|s| !self.held.contains_key(s))
            .count() as u64;
        // What was held below `first` is still delivered, in order, before the rest.
        let rest = self.held.split_off(&first);
        let mut out: Vec<(u64, M)> = std::mem::replace(&mut self.held, rest)
            .into_iter()
            .collect();
        self.next = first;
        out.extend(self.drain());
        self.known = self.known.max(first - 1);
        self.update_gap(now);
        (skipped, out)
    }

    /// The range to fetch now, if the gap has lasted long enough and no fetch is on its way;
    /// marks the fetch as started.
    pub fn due_fetch(&mut self, now: Instant) -> Option<(u64, u64)> {
        let since = self.gap_since?;
        if self.fetching || now < since + GRACE {
            return None;
        }
        if self.asked_at.is_some_and(|t| now < t + RETRY) {
            return None;
        }
        self.fetching = true;
        self.asked_at = Some(now);
        let end = self.held.keys().next().map_or(self.known, |&h| h - 1);
        Some((self.next, end.min(self.next + MAX_BATCH - 1)))
    }

    /// A fetch finished (whatever it brought, offered separately).
    pub fn fetch_done(&mut self) {
        self.fetching = false;
    }

    /// Whether messages are missing.
    #[cfg(test)]
    pub fn has_gap(&self) -> bool {
        self.gap_since.is_some()
    }

    fn drain(&mut self) -> Vec<(u64, M)> {
        let mut out = Vec::new();
        while let Some(m) = self.held.remove(&self.next) {
            out.push((self.next, m));
            self.next += 1;
        }
        out
    }

    fn update_gap(&mut self, now: Instant) {
        if self.known >= self.next {
            self.gap_since.get_or_insert(now);
        } else {
            self.gap_since = None;
            self.asked_at = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(v: Vec<(u64, &str)>) -> Vec<u64> {
        v.into_iter().map(|(s, _)| s).collect()
    }

    #[test]
    fn delivers_in_order_and_drops_duplicates() {
        let t = Instant::now();
        let mut s = Stream::starting_at(1);
        assert_eq!(seqs(s.offer(2, "b", t)), Vec::<u64>::new());
        assert!(s.has_gap());
        assert_eq!(seqs(s.offer(1, "a", t)), vec![1, 2]);
        assert!(!s.has_gap());
        assert!(s.offer(1, "a", t).is_empty());
        assert!(s.offer(2, "b", t).is_empty());
        assert_eq!(seqs(s.offer(3, "c", t)), vec![3]);
    }

    #[test]
    fn a_lasting_gap_is_fetched_once_then_retried() {
        let t = Instant::now();
        let mut s = Stream::starting_at(1);
        s.offer(1, "a", t);
        s.offer(5, "e", t);
        assert_eq!(s.due_fetch(t), None, "reordering gets a grace period");
        let t1 = t + GRACE;
        assert_eq!(s.due_fetch(t1), Some((2, 4)));
        assert_eq!(s.due_fetch(t1 + RETRY * 2), None, "one fetch at a time");
        s.fetch_done();
        assert_eq!(s.due_fetch(t1 + RETRY / 2), None);
        assert_eq!(s.due_fetch(t1 + RETRY), Some((2, 4)));
        s.fetch_done();
        assert!(s.offer(3, "c", t1).is_empty());
        assert_eq!(seqs(s.offer(2, "b", t1)), vec![2, 3]);
        assert_eq!(seqs(s.offer(4, "d", t1)), vec![4, 5]);
        assert!(!s.has_gap());
    }

    #[test]
    fn a_heartbeat_reveals_a_lost_last_message() {
        let t = Instant::now();
        let mut s: Stream<&str> = Stream::starting_at(1);
        s.heard(0, t);
        assert!(!s.has_gap());
        s.heard(2, t);
        assert_eq!(s.due_fetch(t + GRACE), Some((1, 2)));
    }

    #[test]
    fn skipping_keeps_what_was_held() {
        let t = Instant::now();
        let mut s = Stream::starting_at(1);
        s.offer(3, "c", t);
        s.offer(6, "f", t);
        let (skipped, out) = s.skip_to(5, t);
        // 1, 2 and 4 are gone for good; 3 was held and is delivered; 5 is next.
        assert_eq!((skipped, seqs(out)), (3, vec![3]));
        assert_eq!(s.next(), 5);
        assert_eq!(seqs(s.offer(5, "e", t)), vec![5, 6]);
    }

    #[test]
    fn far_ahead_messages_are_not_held() {
        let t = Instant::now();
        let mut s = Stream::starting_at(1);
        assert!(s.offer(MAX_AHEAD + 5, "x", t).is_empty());
        assert_eq!(s.held.len(), 0);
        assert_eq!(s.due_fetch(t + GRACE), Some((1, MAX_BATCH)));
    }
}
