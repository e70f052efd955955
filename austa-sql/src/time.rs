//! Timestamps and clocks.
//!
//! Timestamps are UTC, truncated to microseconds (PostgreSQL's `timestamptz` resolution), so that a
//! value read back equals the value written on both backends. The library reads the time from a
//! [`Clock`] held by its database handle, never from the system directly, so that tests and
//! simulations can make time pass (a lease running out, an emergency grant expiring) without waiting.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

/// The current time, truncated to whole microseconds, from the system clock.
pub fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}

/// Truncates a timestamp to whole microseconds.
pub fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}

/// Where the library reads the time. Implementations return UTC; the library truncates to
/// microseconds itself.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// The system clock moved ahead by an offset that the caller advances: time keeps flowing, and a test
/// can skip over a lease or a grant instead of sleeping through it.
///
/// ```
/// use austa_sql::time::{Clock, OffsetClock};
/// let clock = OffsetClock::default();
/// let before = clock.now();
/// clock.advance(chrono::TimeDelta::hours(2));
/// assert!(clock.now() - before >= chrono::TimeDelta::hours(2));
/// ```
#[derive(Debug, Default)]
pub struct OffsetClock {
    offset_micros: AtomicI64,
}

impl OffsetClock {
    /// Moves the clock ahead by `by` (negative values move it back).
    pub fn advance(&self, by: TimeDelta) {
        self.offset_micros.fetch_add(by.num_microseconds().unwrap_or(i64::MAX), Ordering::SeqCst);
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + TimeDelta::microseconds(self.offset_micros.load(Ordering::SeqCst))
    }
}
