//! One debug line per kind of ignored input and sender, not one per stanza: a stranger who
//! floods us with forged announces must not flood the log too.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a logged key stays quiet.
const QUIET_FOR: Duration = Duration::from_secs(600);
/// Keys remembered at most; beyond this the table starts over (a flood of distinct senders
/// gets a few repeated lines, never unbounded memory).
const MAX_KEYS: usize = 4096;

#[derive(Default)]
pub(crate) struct QuietLog {
    seen: HashMap<String, Instant>,
    suppressed: u64,
}

impl QuietLog {
    /// Whether to log `key` now; counts the suppressed ones.
    pub(crate) fn allow(&mut self, key: String, now: Instant) -> bool {
        if let Some(at) = self.seen.get(&key)
            && now.saturating_duration_since(*at) < QUIET_FOR
        {
            self.suppressed += 1;
            return false;
        }
        if self.seen.len() >= MAX_KEYS {
            self.seen.clear();
        }
        self.seen.insert(key, now);
        true
    }

    /// Lines not logged so far.
    pub(crate) fn suppressed(&self) -> u64 {
        self.suppressed
    }
}

/// Logs an ignored stanza at debug level, once per `(reason, sender)` per quiet period.
macro_rules! ignored {
    ($quiet:expr, $now:expr, $reason:expr, $from:expr $(, $($rest:tt)*)?) => {{
        let from = &$from;
        if $quiet.allow(format!("{}|{}", $reason, from), $now) {
            tracing::debug!(from = %from, $($($rest)*,)? "ignored: {}", $reason);
        }
    }};
}
pub(crate) use ignored;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_per_key_per_period() {
        let mut q = QuietLog::default();
        let t = Instant::now();
        assert!(q.allow("a".into(), t));
        assert!(!q.allow("a".into(), t + Duration::from_secs(1)));
        assert!(q.allow("b".into(), t));
        assert!(q.allow("a".into(), t + QUIET_FOR));
        assert_eq!(q.suppressed(), 1);
    }
}
