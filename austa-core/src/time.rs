//! Timestamps: UTC, truncated to microseconds (PostgreSQL's `timestamptz` resolution), so that a value
//! read back equals the value written on both backends.

use chrono::{DateTime, DurationRound, TimeDelta, Utc};

/// The current time, truncated to whole microseconds.
pub fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}

/// Truncates a timestamp to whole microseconds.
pub fn truncate(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(t)
}
