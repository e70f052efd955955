//! The audit log's Merkle tree at scale: what appending costs, and the size and time of proofs.
//!
//! Records `--events` application events in one organization through the library (`--writers`
//! concurrent writers, each event its own transaction, chained and appended to the tree as in
//! production), then measures: a signed checkpoint (which verifies the whole chain first), inclusion
//! proofs of random events and consistency proofs from random older sizes (time per proof, hashes
//! and bytes per proof), each proof checked. It also times the tree alone, in memory: leaf hashing and
//! appends, to separate the hashing from the database.
//!
//! ```text
//! cargo run --release -p austa-benches --bin transparency -- --events 1000000 --writers 8 \
//!     --postgres-url postgres://postgres@127.0.0.1:5432/postgres
//! ```
//!
//! Prints one JSON document. Without a PostgreSQL URL it runs on SQLite.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use austa_benches::stats::{rate, Latencies};
use austa_benches::target::Target;
use austa_core::audit::transparency::Ed25519Signer;
use austa_core::crypto::{DataKey, KeyProvider, LocalKeyProvider};
use austa_core::model::{AppEvent, NewOrganization, OrganizationType};
use austa_core::{Actor, Database};
use austa_crypto::merkle::{leaf_hash, Frontier};
use clap::Parser;
use rand::Rng;
use serde_json::json;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The audit log's Merkle tree at scale.
#[derive(Debug, Parser)]
struct Args {
    /// Events to record.
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// Concurrent writers.
    #[arg(long, default_value_t = 8)]
    writers: u64,
    /// Proofs of each kind to take.
    #[arg(long, default_value_t = 1_000)]
    proofs: usize,
    /// A PostgreSQL server where the user may create databases (else SQLite).
    #[arg(long, env = "AUSTA_BENCH_DATABASE_URL")]
    postgres_url: Option<String>,
}

fn summary(l: &Latencies) -> serde_json::Value {
    json!({ "p50_ms": l.quantile_ms(0.5), "p99_ms": l.quantile_ms(0.99), "max_ms": l.quantile_ms(1.0) })
}

/// The tree alone, in memory: `n` leaves hashed and appended.
fn in_memory(n: u64) -> serde_json::Value {
    let started = Instant::now();
    let mut tree = Frontier::default();
    for i in 0..n {
        tree.push(leaf_hash(&i.to_be_bytes()), |_, _, _| {});
    }
    let root = tree.root();
    let elapsed = started.elapsed();
    json!({ "leaves": n, "seconds": elapsed.as_secs_f64(), "leaves_per_s": rate(n, elapsed), "root_byte0": root[0] })
}

async fn run(args: Args) -> Result<serde_json::Value> {
    let target = match &args.postgres_url {
        Some(url) => Target::postgres(url)?,
        None => Target::sqlite()?,
    };
    let url = target.database("transparency").await?;
    let keys: Arc<dyn KeyProvider> = Arc::new(LocalKeyProvider::from_key(&DataKey::generate(), "bench"));
    let db = Database::connect_with(&url, keys).await?;
    db.migrate().await?;
    let org = db.organizations().create(NewOrganization::new("Hospital Árvore", OrganizationType::Hospital)).await?;
    let scope = Arc::new(db.scope(org.id, Actor::platform()).await?);

    // Append: every event its own transaction, chained and appended to the tree as in production.
    let done = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.writers {
        let (scope, done, total) = (Arc::clone(&scope), Arc::clone(&done), args.events);
        tasks.push(tokio::spawn(async move {
            while done.fetch_add(1, Ordering::Relaxed) < total {
                scope.audit().record(AppEvent::Login).await?;
            }
            Ok::<_, austa_core::Error>(())
        }));
    }
    let mut last = Instant::now();
    while tasks.iter().any(|t| !t.is_finished()) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if last.elapsed() > Duration::from_secs(30) {
            eprintln!("transparency: {} of {} events", done.load(Ordering::Relaxed).min(args.events), args.events);
            last = Instant::now();
        }
    }
    for t in tasks {
        t.await??;
    }
    db.flush_audit().await?;
    let append = started.elapsed();

    let signer = Ed25519Signer::generate("bench")?;
    let checkpoint_started = Instant::now();
    let note = scope.audit().checkpoint(&signer).await?;
    let checkpoint_time = checkpoint_started.elapsed();
    let size: u64 = note.lines().nth(1).and_then(|l| l.parse().ok()).ok_or("no size in the checkpoint")?;

    // Events by position, to draw random ones from.
    let ids = db_event_ids(&url, org.id).await?;
    let mut rng = rand::thread_rng();
    let (mut inclusion, mut inclusion_hashes, mut inclusion_bytes) = (Latencies::default(), 0usize, 0usize);
    for _ in 0..args.proofs {
        let event = ids[rng.gen_range(0..ids.len())];
        let t = Instant::now();
        let proof = scope.audit().inclusion_proof(event, Some(size)).await?;
        inclusion.push(t.elapsed());
        if !proof.verify() {
            return Err("an inclusion proof does not verify".into());
        }
        inclusion_hashes = inclusion_hashes.max(proof.hashes.len());
        inclusion_bytes = inclusion_bytes.max(serde_json::to_vec(&proof)?.len());
    }
    let (mut consistency, mut consistency_hashes, mut consistency_bytes) = (Latencies::default(), 0usize, 0usize);
    for _ in 0..args.proofs {
        let old = rng.gen_range(1..=size);
        let t = Instant::now();
        let proof = scope.audit().consistency_proof(old, Some(size)).await?;
        consistency.push(t.elapsed());
        if !proof.verify() {
            return Err("a consistency proof does not verify".into());
        }
        consistency_hashes = consistency_hashes.max(proof.hashes.len());
        consistency_bytes = consistency_bytes.max(serde_json::to_vec(&proof)?.len());
    }
    db.close().await;
    target.cleanup().await;
    Ok(json!({
        "backend": target.backend.name(),
        "events": args.events,
        "tree_size": size,
        "writers": args.writers,
        "append": { "seconds": append.as_secs_f64(), "events_per_s": rate(args.events, append) },
        "checkpoint_with_full_verification_s": checkpoint_time.as_secs_f64(),
        "inclusion_proof": { "latency": summary(&inclusion), "max_hashes": inclusion_hashes, "max_json_bytes": inclusion_bytes },
        "consistency_proof": { "latency": summary(&consistency), "max_hashes": consistency_hashes, "max_json_bytes": consistency_bytes },
        "tree_in_memory": in_memory(size),
    }))
}

/// The ids of the organization's chained events.
async fn db_event_ids(url: &str, org: uuid::Uuid) -> Result<Vec<uuid::Uuid>> {
    let sql = "SELECT CAST(event_id AS TEXT) FROM audit_chain WHERE organization_id = ";
    let texts: Vec<String> = if url.starts_with("sqlite:") {
        let pool = sqlx::SqlitePool::connect(url).await?;
        let rows = sqlx::query_scalar(&format!("{sql}'{org}'")).fetch_all(&pool).await?;
        pool.close().await;
        rows
    } else {
        let pool = sqlx::PgPool::connect(url).await?;
        let rows = sqlx::query_scalar(&format!("{sql}'{org}'")).fetch_all(&pool).await?;
        pool.close().await;
        rows
    };
    Ok(texts.iter().filter_map(|t| t.parse().ok()).collect())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("transparency: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(report) => {
            println!("{report:#}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("transparency: error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
