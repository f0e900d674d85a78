//! The sliding replay window of RFC 6479 (the one WireGuard uses): a ring of 64-bit blocks
//! covering the last [`WINDOW`] counters, so accepting a packet costs O(1) and reordering within
//! the window is tolerated.

/// Counters older than the newest one minus this are refused.
pub const WINDOW: u64 = 2048;

const BLOCK_BITS: u64 = 64;
/// One block more than the window, so the block being recycled is never inside it.
const BLOCKS: usize = (WINDOW / BLOCK_BITS) as usize + 1;

/// Which counters have been seen.
#[derive(Debug, Clone)]
pub struct ReplayWindow {
    /// The highest counter accepted so far (meaningless while `empty`).
    top: u64,
    empty: bool,
    bitmap: [u64; BLOCKS],
}

impl Default for ReplayWindow {
    fn default() -> Self {
        ReplayWindow {
            top: 0,
            empty: true,
            bitmap: [0; BLOCKS],
        }
    }
}

impl ReplayWindow {
    /// Whether `counter` could be new. Call before the costly decryption; call [`Self::commit`]
    /// only after the packet authenticated (a forged counter must not move the window).
    pub fn check(&self, counter: u64) -> bool {
        if self.empty || counter > self.top {
            return true;
        }
        if self.top - counter >= WINDOW {
            return false;
        }
        let (block, bit) = Self::position(counter);
        self.bitmap[block] & (1 << bit) == 0
    }

    /// Marks `counter` as seen; returns false if it was a replay or too old.
    pub fn commit(&mut self, counter: u64) -> bool {
        if !self.check(counter) {
            return false;
        }
        if self.empty || counter > self.top {
            let (old_block, _) = Self::position(self.top);
            let (new_block, _) = Self::position(counter);
            let advance = if self.empty {
                BLOCKS
            } else {
                ((counter / BLOCK_BITS) - (self.top / BLOCK_BITS)).min(BLOCKS as u64) as usize
            };
            // Clear the blocks the window slides over.
            for i in 1..=advance {
                self.bitmap[(old_block + i) % BLOCKS] = 0;
            }
            if self.empty {
                self.bitmap[new_block] = 0;
            }
            self.top = counter;
            self.empty = false;
        }
        let (block, bit) = Self::position(counter);
        self.bitmap[block] |= 1 << bit;
        true
    }

    fn position(counter: u64) -> (usize, u64) {
        (
            ((counter / BLOCK_BITS) % BLOCKS as u64) as usize,
            counter % BLOCK_BITS,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_each_counter_once() {
        let mut w = ReplayWindow::default();
        assert!(w.commit(0));
        assert!(!w.commit(0));
        assert!(w.commit(5));
        assert!(w.commit(3));
        assert!(!w.commit(3));
        assert!(!w.commit(5));
        assert!(w.commit(1));
    }

    #[test]
    fn refuses_counters_behind_the_window() {
        let mut w = ReplayWindow::default();
        assert!(w.commit(10_000));
        assert!(!w.check(10_000 - WINDOW));
        assert!(w.check(10_000 - WINDOW + 1));
        assert!(w.commit(10_000 - WINDOW + 1));
        assert!(!w.commit(10_000 - WINDOW + 1));
    }

    #[test]
    fn sliding_forgets_old_bits_but_not_recent_ones() {
        let mut w = ReplayWindow::default();
        for c in 0..5000u64 {
            assert!(w.commit(c), "{c}");
        }
        for c in 5000 - WINDOW + 1..5000 {
            assert!(!w.check(c), "{c} replayed");
        }
        // A big jump clears everything in between.
        assert!(w.commit(1_000_000));
        assert!(w.commit(1_000_000 - 1));
        assert!(w.commit(1_000_000 - 100));
        assert!(!w.commit(1_000_000 - 100));
    }

    #[test]
    fn matches_a_naive_model() {
        // A deterministic pseudo-random walk of counters, with reordering and duplicates.
        let mut w = ReplayWindow::default();
        let mut seen = std::collections::BTreeSet::new();
        let mut top = 0u64;
        let mut x = 0x1234_5678_u64;
        for _ in 0..100_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let c = match x % 4 {
                0 => top + 1 + x % 3000,
                _ => top.saturating_sub(x % 2200),
            };
            let expect = !seen.contains(&c) && (seen.is_empty() || c + WINDOW > top);
            assert_eq!(w.commit(c), expect, "counter {c} top {top}");
            if expect {
                seen.insert(c);
                top = top.max(c);
            }
        }
    }
}
