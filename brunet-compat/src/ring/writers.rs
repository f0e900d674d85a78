//! DHT writes per writer: a key's owner serves puts and removes from anyone in the ring, so
//! one member (or a bug in one) could fill every owner's store and keep the replicas busy.
//! Each source address gets a token bucket; writes over it are answered "not stored" and
//! counted. The table of writers is bounded: a flood of made-up source addresses costs a
//! fixed amount of memory, and once it is full new writers wait until old ones go quiet.

use std::collections::BTreeMap;

use crate::address::Address;

use super::time::Time;

/// Writers tracked at most.
const MAX_WRITERS: usize = 1024;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    last: Time,
}

/// Token buckets by writer.
#[derive(Clone, Debug, Default)]
pub(crate) struct Writers {
    buckets: BTreeMap<Address, Bucket>,
}

impl Writers {
    /// Whether `src` may write at `now` with `rate` writes per second and bursts of `burst`
    /// (takes a token if so).
    pub(crate) fn allow(&mut self, src: Address, now: Time, rate: f64, burst: u32) -> bool {
        let burst = f64::from(burst);
        let refill = |b: &mut Bucket| {
            let dt = now.saturating_since(b.last).as_secs_f64();
            b.tokens = (b.tokens + dt * rate).min(burst);
            b.last = b.last.max(now);
        };
        if !self.buckets.contains_key(&src) && self.buckets.len() >= MAX_WRITERS {
            // Forget the writers that have been quiet long enough to be full again.
            self.buckets.retain(|_, b| {
                refill(b);
                b.tokens < burst
            });
            if self.buckets.len() >= MAX_WRITERS {
                return false;
            }
        }
        let b = self.buckets.entry(src).or_insert(Bucket {
            tokens: burst,
            last: now,
        });
        refill(b);
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.buckets.len() * (std::mem::size_of::<(Address, Bucket)>() + 16)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn addr(i: u32) -> Address {
        let mut b = [0u8; 20];
        b[..4].copy_from_slice(&i.to_be_bytes());
        Address::ah(b)
    }

    #[test]
    fn a_writer_gets_its_burst_then_its_rate() {
        let mut w = Writers::default();
        let t0 = Time::from_secs(100);
        let a = addr(1);
        assert_eq!((0..100).filter(|_| w.allow(a, t0, 2.0, 10)).count(), 10);
        // Another writer is not held back by the first.
        assert!(w.allow(addr(2), t0, 2.0, 10));
        let t1 = t0 + Duration::from_secs(3);
        assert_eq!((0..100).filter(|_| w.allow(a, t1, 2.0, 10)).count(), 6);
    }

    #[test]
    fn made_up_writers_cost_bounded_memory() {
        let mut w = Writers::default();
        let t0 = Time::from_secs(1);
        let admitted = (0..5000u32)
            .filter(|i| w.allow(addr(*i), t0, 2.0, 10))
            .count();
        assert_eq!(admitted, MAX_WRITERS);
        assert!(w.buckets.len() <= MAX_WRITERS);
        // Once the first ones are quiet (full again), newcomers get in.
        let later = t0 + Duration::from_secs(60);
        assert!(w.allow(addr(9999), later, 2.0, 10));
    }
}
