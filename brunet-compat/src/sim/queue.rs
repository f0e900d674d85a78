//! The simulator's event queue: a radix heap of 16-byte keys over a slab of payloads.
//!
//! A discrete-event simulation only ever schedules at or after the event it is
//! handling, so keys are monotone: nothing pushed is smaller than what was last popped.
//! A radix heap exploits that (Ahuja, Mehlhorn, Orlin & Tarjan 1990): keys go into the
//! bucket of the highest bit in which they differ from the last key popped, so a push
//! is one `Vec::push` and each key is moved at most a few times before it is popped.
//!
//! A key is `time (64 bits) | sequence (36 bits) | tag (28 bits)`: time first, then
//! first-scheduled-first, which keeps every link FIFO. The tag is either a node index
//! (a node's timer, which needs no payload) or, with [`SLOT_BIT`] set, a slot in the
//! payload slab; slots are reused, so steady-state scheduling allocates nothing.

use crate::ring::Time;

const TAG_BITS: u32 = 28;
const SEQ_BITS: u32 = 36;
const SLOT_BIT: u32 = 1 << (TAG_BITS - 1);
const TAG_MASK: u128 = (1 << TAG_BITS) - 1;

/// What [`Queue::pop`] returns.
#[derive(Debug)]
pub(crate) enum Popped<E> {
    /// Node `i`'s timer.
    Timer(u32),
    /// A scheduled event.
    Event(E),
}

/// A monotone priority queue of timed events.
#[derive(Debug)]
pub(crate) struct Queue<E> {
    /// Bucket `b` holds keys whose highest bit differing from `last` is bit `b − 1`
    /// (bucket 0: equal to `last`).
    buckets: Vec<Vec<u128>>,
    last: u128,
    len: usize,
    seq: u64,
    slots: Vec<Option<E>>,
    free: Vec<u32>,
}

impl<E> Default for Queue<E> {
    fn default() -> Self {
        Queue {
            buckets: (0..=128).map(|_| Vec::new()).collect(),
            last: 0,
            len: 0,
            seq: 0,
            slots: Vec::new(),
            free: Vec::new(),
        }
    }
}

fn bucket_of(key: u128, last: u128) -> usize {
    (128 - (key ^ last).leading_zeros()) as usize
}

impl<E> Queue<E> {
    /// Events waiting.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn push_key(&mut self, at: Time, tag: u32) {
        self.seq += 1;
        assert!(self.seq < 1 << SEQ_BITS, "event sequence numbers exhausted");
        let at = at.as_micros().max((self.last >> 64) as u64);
        let key = (u128::from(at) << 64) | (u128::from(self.seq) << TAG_BITS) | u128::from(tag);
        self.buckets[bucket_of(key, self.last)].push(key);
        self.len += 1;
    }

    /// Schedules node `i`'s timer at `at` (never before the current time).
    pub(crate) fn push_timer(&mut self, at: Time, i: u32) {
        assert!(i < SLOT_BIT, "too many nodes for the event queue");
        self.push_key(at, i);
    }

    /// Schedules `ev` at `at` (never before the current time).
    pub(crate) fn push(&mut self, at: Time, ev: E) {
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s as usize] = Some(ev);
                s
            }
            None => {
                self.slots.push(Some(ev));
                (self.slots.len() - 1) as u32
            }
        };
        assert!(slot < SLOT_BIT, "too many events in flight");
        self.push_key(at, slot | SLOT_BIT);
    }

    /// The earliest event and its time.
    pub(crate) fn pop(&mut self) -> Option<(Time, Popped<E>)> {
        if self.buckets[0].is_empty() {
            let b = self.buckets.iter().position(|v| !v.is_empty())?;
            let moved = std::mem::take(&mut self.buckets[b]);
            // `moved` is non-empty, so it has a minimum.
            let min = *moved.iter().min().expect("non-empty bucket");
            self.last = min;
            for &key in &moved {
                self.buckets[bucket_of(key, min)].push(key);
            }
            let mut moved = moved;
            moved.clear();
            self.buckets[b] = moved;
        }
        let key = self.buckets[0].pop()?;
        self.len -= 1;
        let at = Time::from_micros((key >> 64) as u64);
        let tag = (key & TAG_MASK) as u32;
        if tag & SLOT_BIT == 0 {
            return Some((at, Popped::Timer(tag)));
        }
        let slot = tag & !SLOT_BIT;
        self.free.push(slot);
        // Every slot tag in the heap names a filled slot, emptied only here.
        let ev = self.slots[slot as usize].take().expect("scheduled slot");
        Some((at, Popped::Event(ev)))
    }

    /// Approximate bytes held (for memory reports).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.buckets.iter().map(Vec::capacity).sum::<usize>() * 16
            + self.slots.capacity() * std::mem::size_of::<Option<E>>()
            + self.free.capacity() * 4
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_in_time_then_fifo_order() {
        let mut q: Queue<&str> = Queue::default();
        q.push(Time::from_micros(50), "b1");
        q.push_timer(Time::from_micros(10), 7);
        q.push(Time::from_micros(50), "b2");
        q.push(Time::from_micros(20), "a");
        let mut got = Vec::new();
        while let Some((t, p)) = q.pop() {
            let first_a = matches!(p, Popped::Event("a"));
            got.push(format!("{}:{p:?}", t.as_micros()));
            if first_a {
                // Scheduling at the current time goes after what is already due.
                q.push(Time::from_micros(20), "a2");
                q.push(Time::from_micros(5), "clamped");
            }
        }
        assert_eq!(
            got,
            [
                "10:Timer(7)",
                "20:Event(\"a\")",
                "20:Event(\"a2\")",
                "20:Event(\"clamped\")",
                "50:Event(\"b1\")",
                "50:Event(\"b2\")",
            ]
        );
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn matches_a_sorted_reference() {
        let mut q: Queue<u64> = Queue::default();
        let mut reference = Vec::new();
        let mut x = 12345u64;
        let mut now = 0u64;
        let mut popped = Vec::new();
        for round in 0..2000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let at = now + (x >> 40) % 5000;
            q.push(Time::from_micros(at), round);
            reference.push((at, round));
            if round % 3 == 0 {
                let (t, Popped::Event(v)) = q.pop().unwrap() else {
                    panic!("timer")
                };
                now = t.as_micros();
                popped.push((now, v));
            }
        }
        while let Some((t, Popped::Event(v))) = q.pop() {
            popped.push((t.as_micros(), v));
        }
        // Against a stable sort by time of everything, restricted to what was popped
        // in the same order: times never decrease and FIFO holds among equal times.
        assert_eq!(popped.len(), reference.len());
        for w in popped.windows(2) {
            assert!(w[0].0 <= w[1].0);
            if w[0].0 == w[1].0 {
                assert!(w[0].1 < w[1].1);
            }
        }
    }
}
