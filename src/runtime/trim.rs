//! Handing freed memory back to the system. A ring node's links come and go in bursts (every
//! ICE agent with its sockets, tasks and TURN clients' buffers), and glibc's allocator keeps
//! what they free inside its heaps: a third of a settled node's heap in the 50-node lab
//! (docs/benchmarks.md, "Memory with 50 peers"). `malloc_trim` returns those pages; it walks
//! the free lists only, well under a millisecond at a daemon's size.

use std::time::Duration;

/// How often freed memory is returned.
pub(super) const EVERY: Duration = Duration::from_secs(30);

/// Returns the allocator's free pages to the system (glibc only; elsewhere nothing to do).
pub(super) fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let started = std::time::Instant::now();
        // SAFETY: malloc_trim only walks and releases the allocator's own free chunks; it
        // takes no pointer and is safe to call from any thread at any time.
        let released = unsafe { libc::malloc_trim(0) };
        tracing::trace!(released, took = ?started.elapsed(), "freed memory returned");
    }
}
