//! Opening one new SQLite file from many places at once.
//!
//! The first connection to a new file switches it to WAL, under an exclusive lock that SQLite does not
//! wait for; `Database::open` retries that step, so services or `austa migrate` runs started together
//! on a fresh file all open it, and exactly one of them applies the migrations (data and key store
//! alike: they share one lock when they share the file).

use std::sync::Arc;

use austa_core::crypto::{DataKey, KeyProvider, LocalKeyProvider};
use austa_core::Database;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_opens_of_a_new_file_all_succeed_and_migrate_once_sqlite() {
    let keys: Arc<dyn KeyProvider> = Arc::new(LocalKeyProvider::from_key(&DataKey::generate(), "test"));
    for round in 0..10 {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("new.db").display());
        let runs: Vec<_> = (0..6)
            .map(|_| {
                let (url, keys) = (url.clone(), keys.clone());
                tokio::spawn(async move {
                    let db = Database::connect_with(&url, keys).await?;
                    let applied = db.apply_migrations().await?;
                    db.close().await;
                    Ok::<_, austa_core::Error>(applied.len())
                })
            })
            .collect();
        let mut counts = Vec::new();
        for run in runs {
            counts.push(run.await.expect("task").unwrap_or_else(|e| panic!("round {round}: {e}")));
        }
        counts.sort_unstable();
        assert_eq!(counts[..5], [0; 5], "round {round}: only one run applies: {counts:?}");
        assert!(counts[5] >= 10, "round {round}: {counts:?}");
    }
}
