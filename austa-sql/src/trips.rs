//! Counting round trips: how many statements (`BEGIN` and `COMMIT` included) one operation sends to
//! the database, so that a test can hold an operation to a budget and a regression in round trips
//! fails a test rather than a benchmark.
//!
//! The count belongs to the task that awaits [`count_round_trips`]: statements of other tasks (the
//! audit sequencer, concurrent callers) are not in it. Outside a counted future the bookkeeping is
//! one failed thread-local lookup per statement.
//!
//! ```
//! # async fn demo(pool: &austa_sql::Pool) -> austa_error::Result<()> {
//! use austa_sql::{begin_on, count_round_trips, Query, TxMode};
//! let (result, trips) = count_round_trips(async {
//!     let mut tx = begin_on(pool, None, TxMode::Read).await?;
//!     tx.fetch_optional(Query::new("SELECT 1")).await?;
//!     tx.commit().await
//! })
//! .await;
//! result?;
//! assert!(trips >= 3); // BEGIN, SELECT, COMMIT (and the tenant setting on PostgreSQL)
//! # Ok(()) }
//! ```

use std::cell::Cell;
use std::future::Future;

tokio::task_local! {
    static TRIPS: Cell<u64>;
}

/// Runs `operation` and returns its output with the number of round trips it made.
pub async fn count_round_trips<F: Future>(operation: F) -> (F::Output, u64) {
    TRIPS
        .scope(Cell::new(0), async move {
            let output = operation.await;
            let trips = TRIPS.try_with(Cell::get).unwrap_or(0);
            (output, trips)
        })
        .await
}

/// Records one round trip of the current task, when it is being counted.
pub(crate) fn record() {
    let _ = TRIPS.try_with(|trips| trips.set(trips.get() + 1));
}
