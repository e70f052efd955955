//! The workload runner: the platform's workloads on SQLite and PostgreSQL, on the library and on the
//! plaintext and hand-secured baselines, measured in one run. Prints a Markdown table and writes JSON.
//!
//! ```sh
//! cargo run --release -p austa-benches --bin workloads                 # full sizes
//! cargo run -p austa-benches --bin workloads -- --quick                # small sizes (CI): checks the runner
//! ```
//!
//! PostgreSQL comes from `--postgres-url`, `AUSTA_BENCH_DATABASE_URL` or `AUSTA_TEST_DATABASE_URL` (a
//! role that may create databases); without one only SQLite runs, unless `CI=true`, where that is an
//! error. `--quick` asserts nothing about speed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use austa_benches::baseline::{Baseline, Mode, Result};
use austa_benches::library::Library;
use austa_benches::report::{self, Better, Row};
use austa_benches::stats::{rate, Latencies};
use austa_benches::subject::Subject;
use austa_benches::target::{Backend, Target};
use austa_benches::{memory, synthetic};
use clap::Parser;
use serde_json::json;

#[derive(Debug, Clone, Parser)]
#[command(about = "Run the platform's workloads on the library and on the two baselines")]
struct Args {
    /// Small sizes, to check that the runner works (asserts nothing about speed).
    #[arg(long)]
    quick: bool,
    /// `sqlite`, `postgres` or `both` (default: both when a PostgreSQL URL is configured).
    #[arg(long)]
    backend: Option<String>,
    /// A PostgreSQL URL of a role that may create databases.
    #[arg(long, env = "AUSTA_BENCH_DATABASE_URL", hide_env_values = true)]
    postgres_url: Option<String>,
    /// Patients in the organization (lookups pick among them).
    #[arg(long)]
    patients: Option<usize>,
    /// Known patients the webhook bodies come from.
    #[arg(long)]
    ingest_patients: Option<usize>,
    /// Webhook bodies per ingest run.
    #[arg(long)]
    messages: Option<usize>,
    /// Lookups timed.
    #[arg(long)]
    lookups: Option<usize>,
    /// Messages in the conversation whose history is read, and history reads timed.
    #[arg(long)]
    history_reads: Option<usize>,
    /// Health data rows of the bulk import.
    #[arg(long)]
    bulk_rows: Option<usize>,
    /// Audit events verified.
    #[arg(long)]
    audit_events: Option<usize>,
    /// Rows of the memory measurement (bulk import, then a streamed export, in a child process).
    #[arg(long)]
    memory_rows: Option<usize>,
    /// A Python interpreter with `austa` installed, for the bulk import from Python (default:
    /// target/py-venv/bin/python when it exists).
    #[arg(long)]
    python: Option<PathBuf>,
    /// Where to write the JSON results.
    #[arg(long, default_value = "target/bench/workloads.json")]
    json: PathBuf,
    /// Internal: measure memory in this process (see --memory-rows) and print JSON.
    #[arg(long, hide = true)]
    memory_child: Option<String>,
}

/// The sizes of one run.
#[derive(Debug, Clone, serde::Serialize)]
struct Sizes {
    patients: usize,
    ingest_patients: usize,
    messages: usize,
    lookups: usize,
    history_messages: usize,
    history_reads: usize,
    bulk_rows: usize,
    batch: usize,
    audit_events: usize,
    memory_rows: usize,
}

impl Sizes {
    fn of(a: &Args) -> Self {
        let full = |quick: usize, full: usize| if a.quick { quick } else { full };
        Self {
            patients: a.patients.unwrap_or(full(300, 100_000)),
            ingest_patients: a.ingest_patients.unwrap_or(full(100, 10_000)),
            messages: a.messages.unwrap_or(full(200, 20_000)),
            lookups: a.lookups.unwrap_or(full(50, 2_000)),
            history_messages: 200,
            history_reads: a.history_reads.unwrap_or(full(20, 1_000)),
            bulk_rows: a.bulk_rows.unwrap_or(full(1_000, 100_000)),
            batch: full(200, 2_000),
            audit_events: a.audit_events.unwrap_or(full(1_000, 1_000_000)),
            memory_rows: a.memory_rows.unwrap_or(full(2_000, 1_000_000)),
        }
    }
}

/// Audit verifications timed per subject; the report shows their median.
const VERIFY_RUNS: usize = 3;

/// Webhook bodies each subject ingests before the timed runs (see `run_backend`).
const WARMUP_BODIES: usize = 200;

/// Runs `bodies` through `subject` from `writers` concurrent tasks; returns messages per second.
async fn ingest(subject: &Subject, bodies: Arc<Vec<String>>, writers: usize) -> Result<f64> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let (s, bodies, next) = (subject.clone(), bodies.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { return Ok::<_, austa_benches::baseline::Error>(()) };
                s.ingest(body).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(rate(bodies.len() as u64, start.elapsed()))
}

/// A deterministic spread of patient indexes (no RNG dependency on timing).
fn spread(n: usize, among: usize) -> impl Iterator<Item = usize> {
    (0..n).map(move |k| (k.wrapping_mul(2_654_435_761) + 12_345) % among)
}

struct Figures {
    rows: Vec<Row>,
}

impl Figures {
    /// Adds a row from `values` = (library, plaintext, hand-secured).
    fn add(&mut self, workload: &str, backend: Backend, metric: &str, better: Better, v: [Option<f64>; 3]) {
        if let Some(lib) = v[0] {
            self.rows.push(Row::new(workload, backend.name(), metric, better, lib).baselines(v[1], v[2]));
        }
    }
}

async fn run_backend(target: &Target, sizes: &Sizes, python: Option<&PathBuf>, figures: &mut Figures) -> Result<()> {
    let backend = target.backend;
    eprintln!("== {}: opening the library and the baselines", backend.name());
    let library = Arc::new(Library::open(target).await?);
    let subjects = [
        Subject::Library(library.clone()),
        Subject::Baseline(Arc::new(Baseline::open(target, Mode::Plaintext).await?), Mode::Plaintext),
        Subject::Baseline(Arc::new(Baseline::open(target, Mode::HandSecured).await?), Mode::HandSecured),
    ];
    for s in &subjects {
        eprintln!("{}: {} patients", s.name(), sizes.patients);
        s.add_patients(0..sizes.patients, sizes.batch).await?;
    }

    // A warm-up, then the planner's statistics: the steady state of a service that has run a while
    // (its tables analyzed, its pools' statements prepared). The warm-up's senders are patients
    // outside the timed ones, so that the first timed run still meets each of its patients for the
    // first time.
    let warmup = sizes.patients.saturating_sub(sizes.ingest_patients + 1).min(WARMUP_BODIES);
    let ts = chrono::Utc::now().timestamp() - warmup as i64;
    for s in &subjects {
        for w in 0..warmup {
            let patient = sizes.ingest_patients + 1 + w;
            s.ingest(&synthetic::webhook_body(patient, &format!("wamid.warmup.{w}"), ts + w as i64)).await?;
        }
        s.analyze().await?;
    }

    // 1. Ingest: one writer meeting each patient for the first time since the handle opened (a new
    // conversation; the library unwraps the patient's key), one writer and eight writers with
    // returning patients (an open conversation; keys cached). Each run has message ids of its own.
    let runs = [
        ("ingest, 1 writer, first message of each patient", "first", 1usize),
        ("ingest, 1 writer(s)", "1", 1),
        ("ingest, 8 writer(s)", "8", 8),
    ];
    for (workload, tag, writers) in runs {
        // Message times end now: the ingest refuses times far from the clock.
        let ts = chrono::Utc::now().timestamp() - sizes.messages as i64;
        let mut v = [None; 3];
        for (k, s) in subjects.iter().enumerate() {
            let bodies: Vec<String> = (0..sizes.messages)
                .map(|m| synthetic::webhook_body(m % sizes.ingest_patients, &format!("wamid.{tag}.{m}"), ts + m as i64))
                .collect();
            v[k] = Some(ingest(s, Arc::new(bodies), writers).await?);
            eprintln!("{workload}, {}: {:.0} msgs/s", s.name(), v[k].unwrap_or(0.0));
        }
        figures.add(workload, backend, "msgs/s", Better::Higher, v);
    }

    // 2. Lookup by phone among all patients.
    let mut p50 = [None; 3];
    let mut p99 = [None; 3];
    for (k, s) in subjects.iter().enumerate() {
        let mut lat = Latencies::default();
        for i in spread(sizes.lookups, sizes.patients) {
            let phone = synthetic::phone(i);
            let t = Instant::now();
            if !s.lookup(&phone).await? {
                return Err(format!("{}: patient {i} not found", s.name()).into());
            }
            lat.push(t.elapsed());
        }
        (p50[k], p99[k]) = (Some(lat.quantile_ms(0.5)), Some(lat.quantile_ms(0.99)));
    }
    figures.add(&format!("lookup by phone among {}", sizes.patients), backend, "p50 ms", Better::Lower, p50);
    figures.add(&format!("lookup by phone among {}", sizes.patients), backend, "p99 ms", Better::Lower, p99);

    // 3. History: the latest 50 of a conversation's messages, decrypted.
    let patient = sizes.ingest_patients.min(sizes.patients - 1);
    let history_start = chrono::Utc::now().timestamp() - sizes.history_messages as i64;
    for (k, s) in subjects.iter().enumerate() {
        for m in 0..sizes.history_messages {
            s.ingest(&synthetic::webhook_body(patient, &format!("wamid.history.{m}"), history_start + m as i64))
                .await?;
        }
        let conversation = s.conversation_of(patient).await?;
        let mut lat = Latencies::default();
        for _ in 0..sizes.history_reads {
            let t = Instant::now();
            let n = s.history(conversation).await?;
            lat.push(t.elapsed());
            if n != 50 {
                return Err(format!("{}: history returned {n} messages", s.name()).into());
            }
        }
        (p50[k], p99[k]) = (Some(lat.quantile_ms(0.5)), Some(lat.quantile_ms(0.99)));
    }
    figures.add("history: latest 50 messages", backend, "p50 ms", Better::Lower, p50);
    figures.add("history: latest 50 messages", backend, "p99 ms", Better::Lower, p99);

    // 4. Bulk import of health data.
    let mut v = [None; 3];
    for (k, s) in subjects.iter().enumerate() {
        let id = s.patient_id(0).await?;
        let t = Instant::now();
        s.bulk(id, sizes.bulk_rows, sizes.batch).await?;
        v[k] = Some(rate(sizes.bulk_rows as u64, t.elapsed()));
        eprintln!("bulk import, {}: {:.0} rows/s", s.name(), v[k].unwrap_or(0.0));
    }
    let rust_rate = v[0];
    figures.add(&format!("bulk import of {} rows, Rust", sizes.bulk_rows), backend, "rows/s", Better::Higher, v);
    if let Some(py) = python {
        match python_bulk(py, target, sizes).await {
            Ok(r) => {
                figures.add(
                    &format!("bulk import of {} rows, Python", sizes.bulk_rows),
                    backend,
                    "rows/s",
                    Better::Higher,
                    [Some(r), None, None],
                );
                if let Some(rust) = rust_rate {
                    figures.add(
                        "bulk import, Python / Rust",
                        backend,
                        "ratio",
                        Better::Higher,
                        [Some(r / rust), None, None],
                    );
                }
            }
            Err(e) => eprintln!("note: the Python bulk import did not run: {e}"),
        }
    }

    // 5. Audit verification.
    let mut v = [None; 3];
    for (k, s) in subjects.iter().enumerate() {
        if s.fill_audit(sizes.audit_events, 8).await?.is_none() {
            continue;
        }
        // The median of a few runs: one run of a few hundred milliseconds swings by a quarter on a
        // shared two-core machine.
        let mut rates = Vec::with_capacity(VERIFY_RUNS);
        let mut verified = 0;
        for _ in 0..VERIFY_RUNS {
            let t = Instant::now();
            verified = s.verify().await?.unwrap_or(0);
            rates.push(rate(verified, t.elapsed()));
        }
        rates.sort_by(f64::total_cmp);
        v[k] = rates.get(rates.len() / 2).copied();
        eprintln!(
            "audit verification, {}: {verified} events, {:.0} events/s (median of {VERIFY_RUNS})",
            s.name(),
            v[k].unwrap_or(0.0)
        );
    }
    figures.add(&format!("audit verification, {} events", sizes.audit_events), backend, "events/s", Better::Higher, v);

    for s in &subjects {
        s.close().await;
    }
    Ok(())
}

/// Runs `benches/python/bulk_import.py` on a database of its own; returns its rows per second.
async fn python_bulk(python: &PathBuf, target: &Target, sizes: &Sizes) -> Result<f64> {
    let url = target.database("python").await?;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/bulk_import.py");
    // Nothing else runs meanwhile: waiting on the child blocks nobody.
    let out = std::process::Command::new(python)
        .args([script, "--url", &url, "--rows", &sizes.bulk_rows.to_string(), "--batch", &sizes.batch.to_string()])
        .output()?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    v["rows_per_second"].as_f64().ok_or_else(|| "no rows_per_second".into())
}

/// In a child process: a bulk import of `rows` rows, then a streamed export of them; the peak
/// resident memory of each phase.
async fn memory_child(backend: &str, admin: Option<&str>, rows: usize, batch: usize) -> Result<serde_json::Value> {
    let target = match backend {
        "postgres" => Target::postgres(admin.ok_or("no PostgreSQL URL")?)?,
        _ => Target::sqlite()?,
    };
    let library = Library::open(&target).await?;
    library.add_patients(0..1, 1).await?;
    let patient = library.patient_id(0).await?;
    let before = memory::rss();
    memory::reset_peak();
    library.bulk(patient, rows, batch).await?;
    let import_peak = memory::peak_rss();
    let reset = memory::reset_peak();
    let exported = library.export(500).await?;
    let export_peak = memory::peak_rss();
    library.db.close().await;
    target.cleanup().await;
    Ok(json!({
        "rows": rows, "exported": exported, "rss_before_bytes": before,
        "import_peak_bytes": import_peak, "export_peak_bytes": export_peak, "peak_reset": reset,
    }))
}

async fn memory_rows(args: &Args, backend: Backend, sizes: &Sizes, figures: &mut Figures) -> Result<serde_json::Value> {
    let exe = std::env::current_exe()?;
    let mut results = Vec::new();
    // Two sizes: a flat export keeps the same peak for ten times the rows.
    for rows in [sizes.memory_rows / 10, sizes.memory_rows] {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args(["--memory-child", backend.name(), "--memory-rows", &rows.to_string()]);
        if args.quick {
            cmd.arg("--quick");
        }
        if let Some(url) = &args.postgres_url {
            cmd.args(["--postgres-url", url]);
        }
        let out = cmd.output()?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
        let mb = |key: &str| v[key].as_f64().map(|b| b / 1_048_576.0);
        figures.add(
            &format!("peak memory, bulk import of {rows} rows"),
            backend,
            "MiB",
            Better::Lower,
            [mb("import_peak_bytes"), None, None],
        );
        figures.add(
            &format!("peak memory, streamed export of {rows} rows"),
            backend,
            "MiB",
            Better::Lower,
            [mb("export_peak_bytes"), None, None],
        );
        results.push(v);
    }
    Ok(json!(results))
}

fn default_python() -> Option<PathBuf> {
    let p = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/py-venv/bin/python"));
    p.exists().then_some(p)
}

async fn main_async(args: Args) -> Result<()> {
    let sizes = Sizes::of(&args);
    let postgres =
        args.postgres_url.clone().or_else(|| std::env::var("AUSTA_TEST_DATABASE_URL").ok()).filter(|u| !u.is_empty());
    if let Some(backend) = &args.memory_child {
        let v = memory_child(backend, postgres.as_deref(), sizes.memory_rows, sizes.batch).await?;
        println!("{v}");
        return Ok(());
    }
    let backends: Vec<Backend> = match (args.backend.as_deref(), &postgres) {
        (Some("sqlite"), _) => vec![Backend::Sqlite],
        (Some("postgres"), Some(_)) => vec![Backend::Postgres],
        (Some("postgres"), None) => return Err("--backend postgres needs a PostgreSQL URL".into()),
        (_, Some(_)) => vec![Backend::Sqlite, Backend::Postgres],
        (_, None) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            return Err("CI=true but no PostgreSQL URL (AUSTA_BENCH_DATABASE_URL or AUSTA_TEST_DATABASE_URL)".into())
        }
        (_, None) => {
            eprintln!("note: no PostgreSQL URL; SQLite only");
            vec![Backend::Sqlite]
        }
    };
    let python = args.python.clone().or_else(default_python);
    let mut figures = Figures { rows: Vec::new() };
    let mut memory = serde_json::Map::new();
    let started = chrono::Utc::now();
    for backend in backends {
        let target = match backend {
            Backend::Sqlite => Target::sqlite()?,
            Backend::Postgres => Target::postgres(postgres.as_deref().unwrap_or_default())?,
        };
        let result = run_backend(&target, &sizes, python.as_ref(), &mut figures).await;
        target.cleanup().await;
        result?;
        let args = Args { postgres_url: postgres.clone(), ..args.clone() };
        memory.insert(backend.name().into(), memory_rows(&args, backend, &sizes, &mut figures).await?);
    }
    let table = report::markdown(&figures.rows);
    println!("{table}");
    let doc = json!({
        "started_at": started.to_rfc3339(),
        "quick": args.quick,
        "sizes": sizes,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "rows": figures.rows,
        "memory": memory,
    });
    if let Some(dir) = args.json.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&args.json, serde_json::to_string_pretty(&doc)?)?;
    eprintln!("results written to {}", args.json.display());
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("workloads: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(main_async(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("workloads: error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
