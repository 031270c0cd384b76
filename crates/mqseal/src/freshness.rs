//! Freshness: a sender timestamp checked against a maximum age and skew.
//!
//! For commands that must not be acted on late (a delayed "move arm" is as bad
//! as a replayed one). The sender puts its clock's time in the authenticated
//! header; the receiver rejects a message older than `max_age` or more than
//! `max_skew` in its future. Time comes through the [`Clock`] trait so tests
//! are deterministic.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::Rejection;

/// A source of wall-clock time.
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// Milliseconds since the Unix epoch, for the key-age limits (measured in
    /// days), read on every seal: it may lag [`Clock::now_ms`] by a clock
    /// tick (a few milliseconds) and be cheaper to read; it is never ahead of
    /// it. Timestamps, freshness checks and scheduled retirements use
    /// [`Clock::now_ms`]. Defaults to [`Clock::now_ms`].
    fn coarse_now_ms(&self) -> u64 {
        self.now_ms()
    }
}

/// A duration in whole milliseconds, saturating at `u64::MAX`.
pub(crate) fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, duration_ms)
    }

    /// `CLOCK_REALTIME_COARSE` on Linux: the same clock as
    /// [`SystemClock::now_ms`] at the last tick, read without the time
    /// counter (about 11 ns against 48 ns on the project's VM).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn coarse_now_ms(&self) -> u64 {
        use rustix::time::{ClockId, DynamicClockId, clock_gettime_dynamic};
        // A kernel or sandbox that refuses the clock gets the precise one.
        let Ok(t) = clock_gettime_dynamic(DynamicClockId::Known(ClockId::RealtimeCoarse)) else {
            return self.now_ms();
        };
        // Before 1970 (a clock never set) reads as 0, as in `now_ms`.
        let Ok(secs) = u64::try_from(t.tv_sec) else {
            return 0;
        };
        let ms = u64::try_from(t.tv_nsec).unwrap_or(0) / 1_000_000;
        secs.saturating_mul(1000).saturating_add(ms)
    }
}

/// A clock that only moves when told to; clones share the time.
#[derive(Debug, Clone, Default)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock reading `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        ManualClock(Arc::new(AtomicU64::new(now_ms)))
    }

    /// Sets the time.
    pub fn set(&self, now_ms: u64) {
        self.0.store(now_ms, Ordering::SeqCst);
    }

    /// Moves the time forward.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(duration_ms(by), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// How old, and how far ahead, a timestamp may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// The maximum age of a message.
    pub max_age: Duration,
    /// How far ahead of the receiver's clock a sender's may run.
    pub max_skew: Duration,
}

impl Freshness {
    /// A maximum age, with a clock skew allowance of one second.
    pub fn max_age(max_age: Duration) -> Self {
        Freshness {
            max_age,
            max_skew: Duration::from_secs(1),
        }
    }

    /// Sets the allowed skew.
    pub fn with_skew(mut self, max_skew: Duration) -> Self {
        self.max_skew = max_skew;
        self
    }

    /// Checks a timestamp against the receiver's time.
    pub fn check(&self, timestamp_ms: u64, now_ms: u64) -> Result<(), Rejection> {
        let age = duration_ms(self.max_age);
        let skew = duration_ms(self.max_skew);
        if timestamp_ms > now_ms.saturating_add(skew) {
            return Err(Rejection::FromFuture);
        }
        if now_ms.saturating_sub(timestamp_ms) > age {
            return Err(Rejection::Stale);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn age_and_skew() {
        let f = Freshness::max_age(Duration::from_secs(2)).with_skew(Duration::from_millis(500));
        assert_eq!(f.check(10_000, 10_000), Ok(()));
        assert_eq!(f.check(8_000, 10_000), Ok(()));
        assert_eq!(f.check(7_999, 10_000), Err(Rejection::Stale));
        assert_eq!(f.check(10_500, 10_000), Ok(()));
        assert_eq!(f.check(10_501, 10_000), Err(Rejection::FromFuture));
    }

    #[test]
    fn manual_clock_is_shared() {
        let c = ManualClock::new(5);
        let d = c.clone();
        c.advance(Duration::from_millis(10));
        assert_eq!(d.now_ms(), 15);
        assert_eq!(d.coarse_now_ms(), 15);
    }

    #[test]
    fn system_clock_coarse_reading_is_the_same_clock() {
        let c = SystemClock;
        for _ in 0..1000 {
            let before = c.now_ms();
            let coarse = c.coarse_now_ms();
            let after = c.now_ms();
            // The coarse clock is the same clock at its last tick: never
            // ahead of a later precise reading, and at most a tick (bounded
            // generously here) behind an earlier one. A clock in another
            // unit or epoch would be off by years.
            assert!(coarse <= after + 1, "{coarse} > {after}");
            assert!(coarse + 1000 >= before, "{coarse} << {before}");
        }
    }
}
