//! Abuse limits at the XMPP door: a token bucket per bare JID for Jingle `session-initiate`s
//! (each may start ICE gathering and a Noise handshake, so they are the expensive request),
//! an element budget for incoming stanzas, and the counters `chamber status` shows.
//!
//! Time comes in with every call, so the buckets are tested without a clock.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// A token bucket: `burst` tokens, refilled at `rate` per second.
#[derive(Clone, Debug)]
pub struct TokenBucket {
    tokens: f64,
    last: Instant,
    rate: f64,
    burst: f64,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(rate: f64, burst: u32, now: Instant) -> Self {
        TokenBucket {
            tokens: f64::from(burst),
            last: now,
            rate,
            burst: f64::from(burst),
        }
    }

    /// Takes one token if there is one.
    pub fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Whether the bucket is full at `now` (its owner has been quiet long enough to forget).
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.burst
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
    }
}

/// Jingle `session-initiate`s allowed per bare JID and second, sustained.
pub const INITIATE_RATE: f64 = 10.0;
/// … and in a burst.
pub const INITIATE_BURST: u32 = 20;
/// Senders tracked at most; beyond this the quiet ones (full buckets) are forgotten, and if
/// none is quiet the table starts over (a flood from many JIDs costs bounded memory).
const MAX_SENDERS: usize = 4096;

/// Most elements a stanza from someone else may hold. chamber's own payloads need a few dozen
/// (a Jingle offer with its candidates, a presence with 16 announces); a chat client's presence
/// a dozen more.
pub const MAX_STANZA_ELEMENTS: usize = 256;

/// One token bucket per sender.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    burst: u32,
    buckets: HashMap<String, TokenBucket>,
}

impl RateLimiter {
    /// Limits each sender to `rate` per second with bursts of `burst`.
    pub fn new(rate: f64, burst: u32) -> Self {
        RateLimiter {
            rate,
            burst,
            buckets: HashMap::new(),
        }
    }

    /// Whether `sender` may go ahead at `now` (takes a token if so).
    pub fn allow(&mut self, sender: &str, now: Instant) -> bool {
        if !self.buckets.contains_key(sender) && self.buckets.len() >= MAX_SENDERS {
            self.buckets.retain(|_, b| !b.is_full(now));
            if self.buckets.len() >= MAX_SENDERS {
                self.buckets.clear();
            }
        }
        let (rate, burst) = (self.rate, self.burst);
        self.buckets
            .entry(sender.to_owned())
            .or_insert_with(|| TokenBucket::new(rate, burst, now))
            .take(now)
    }

    /// Senders tracked now.
    pub fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

/// Input dropped or refused early, as `chamber status` shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LimitsStatus {
    /// Jingle `session-initiate`s per JID: sustained rate and burst.
    pub initiate_rate: String,
    /// Jingle `session-initiate`s refused with `resource-constraint` (over the rate).
    pub initiates_limited: u64,
    /// Stanzas dropped for holding more than [`MAX_STANZA_ELEMENTS`] elements.
    pub oversized_dropped: u64,
    /// Keys refused because another key is pinned for the JID.
    pub pinned_key_refusals: u64,
}

/// The node's limits and what they dropped.
#[derive(Debug)]
pub struct Limits {
    initiates: RateLimiter,
    /// Counters for status.
    pub status: LimitsStatus,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            initiates: RateLimiter::new(INITIATE_RATE, INITIATE_BURST),
            status: LimitsStatus {
                initiate_rate: format!("{INITIATE_RATE}/s, burst {INITIATE_BURST}"),
                ..LimitsStatus::default()
            },
        }
    }
}

impl Limits {
    /// Whether a `session-initiate` from `bare` may go on; counts the refused.
    pub fn initiate(&mut self, bare: &str, now: Instant) -> bool {
        let ok = self.initiates.allow(bare, now);
        if !ok {
            self.status.initiates_limited += 1;
        }
        ok
    }

    /// Whether `stanza`'s tree is small enough to look at; counts the dropped.
    pub fn stanza_fits(&mut self, element_count: usize) -> bool {
        let ok = element_count <= MAX_STANZA_ELEMENTS;
        if !ok {
            self.status.oversized_dropped += 1;
        }
        ok
    }
}

/// Elements in the trees of `payloads`, counting no further than `limit + 1`.
pub fn count_elements<'a>(
    payloads: impl IntoIterator<Item = &'a tokio_xmpp::minidom::Element>,
    limit: usize,
) -> usize {
    let mut count = 0usize;
    let mut stack: Vec<&tokio_xmpp::minidom::Element> = payloads.into_iter().collect();
    while let Some(e) = stack.pop() {
        count += 1;
        if count > limit {
            return count;
        }
        stack.extend(e.children());
    }
    count
}

/// How long a sender must stay quiet for its bucket to fill again.
pub fn refill_time(rate: f64, burst: u32) -> Duration {
    Duration::from_secs_f64(f64::from(burst) / rate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_the_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10.0, 20, t0);
        let burst = (0..100).filter(|_| b.take(t0)).count();
        assert_eq!(burst, 20);
        // 1 s later: 10 more, no more.
        let t1 = t0 + Duration::from_secs(1);
        assert_eq!((0..100).filter(|_| b.take(t1)).count(), 10);
        // Quiet long enough: full again, never beyond the burst.
        let t2 = t1 + refill_time(10.0, 20) * 5;
        assert!(b.is_full(t2));
        assert_eq!((0..100).filter(|_| b.take(t2)).count(), 20);
    }

    #[test]
    fn bucket_ignores_time_going_backwards() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut b = TokenBucket::new(10.0, 2, t0);
        assert!(b.take(t0) && b.take(t0));
        assert!(!b.take(t0 - Duration::from_secs(5)));
        assert!(!b.take(t0), "no tokens made out of a clock step back");
    }

    #[test]
    fn limiter_counts_per_sender() {
        let t0 = Instant::now();
        let mut l = Limits::default();
        let a = (0..1000).filter(|_| l.initiate("a@x", t0)).count();
        let b = (0..5).filter(|_| l.initiate("b@x", t0)).count();
        assert_eq!(a, INITIATE_BURST as usize);
        assert_eq!(b, 5, "one sender's flood does not eat another's tokens");
        assert_eq!(l.status.initiates_limited, 1000 - u64::from(INITIATE_BURST));
    }

    #[test]
    fn limiter_memory_is_bounded_and_forgets_quiet_senders_first() {
        let t0 = Instant::now();
        let mut r = RateLimiter::new(1.0, 2);
        // A busy sender, then a flood of distinct ones that each take one of their two tokens.
        assert!(r.allow("busy@x", t0) && r.allow("busy@x", t0));
        for i in 0..(MAX_SENDERS * 3) {
            r.allow(&format!("s{i}@x"), t0);
        }
        assert!(r.tracked() <= MAX_SENDERS);
        // Later, the flood's buckets are full (forgettable); a new table keeps the limit.
        let t1 = t0 + refill_time(1.0, 2);
        for i in 0..MAX_SENDERS {
            r.allow(&format!("t{i}@x"), t1);
        }
        assert!(r.tracked() <= MAX_SENDERS);
    }

    #[test]
    fn element_count_stops_at_the_limit() {
        let mut root = tokio_xmpp::minidom::Element::bare("x", "ns");
        for _ in 0..1000 {
            root.append_child(tokio_xmpp::minidom::Element::bare("y", "ns"));
        }
        assert_eq!(count_elements([&root], 10_000), 1001);
        assert_eq!(count_elements([&root], 10), 11);
        let mut l = Limits::default();
        assert!(!l.stanza_fits(count_elements([&root], MAX_STANZA_ELEMENTS)));
        assert!(l.stanza_fits(count_elements(
            [&tokio_xmpp::minidom::Element::bare("x", "ns")],
            256
        )));
        assert_eq!(l.status.oversized_dropped, 1);
    }
}
