//! The `austa` binary, run as an operator would, on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails by panicking

mod support;

use std::io::Write as _;

use austa_core::seed::ids;
use austa_core::Actor;
use serde_json::{json, Value};
use support::{databases, execute, postgres_url, runtime, TestDatabase, Workspace};

#[test]
fn bad_usage_exits_2_and_help_hides_environment_values() {
    let ws = Workspace::new();
    let (code, _, err) = ws.run("sqlite://x.db", &["frobnicate"]);
    assert_eq!(code, 2, "{err}");
    let out = ws.austa("postgres://app:s3cret@db/austa").arg("--help").output().expect("run");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Exit codes") && !help.contains("s3cret"), "{help}");
}

#[test]
fn concurrent_migrations_apply_once() {
    let ws = Workspace::new();
    for (backend, db) in databases(&ws, "migrate") {
        let spawn = || ws.austa(&db.url).args(["--json", "migrate"]).output().expect("run");
        let (a, b) = std::thread::scope(|s| {
            let a = s.spawn(spawn);
            let b = s.spawn(spawn);
            (a.join().expect("thread"), b.join().expect("thread"))
        });
        let parse = |o: &std::process::Output| -> Value {
            assert!(o.status.success(), "{backend}: {}", String::from_utf8_lossy(&o.stderr));
            serde_json::from_slice(&o.stdout).expect("json")
        };
        let (a, b) = (parse(&a), parse(&b));
        let counts = [a["applied"].as_array().map(Vec::len), b["applied"].as_array().map(Vec::len)];
        let total = a["total_applied"].as_u64().expect("total");
        assert!(total >= 10, "{backend}: {a}");
        assert!(
            counts == [Some(total as usize), Some(0)] || counts == [Some(0), Some(total as usize)],
            "{backend}: one run applies everything, the other finds nothing to do: {a} / {b}"
        );
        let status = ws.json(&db.url, &["status"], 0);
        assert_eq!(status["drift"], json!(false), "{backend}");
    }
}

/// Copies this backend's migrations into `dir`, applying `edit` to each file's text.
fn copy_migrations(backend: &str, dir: &std::path::Path, edit: impl Fn(&str, String) -> String) {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../migrations").join(backend);
    std::fs::create_dir_all(dir).expect("mkdir");
    for entry in std::fs::read_dir(source).expect("migrations") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).expect("name").to_string();
        let text = std::fs::read_to_string(&path).expect("read");
        std::fs::write(dir.join(&name), edit(&name, text)).expect("write");
    }
}

#[test]
fn status_detects_an_edited_migration_but_not_line_endings() {
    let ws = Workspace::new();
    for (backend, db) in databases(&ws, "status") {
        let pending = ws.json(&db.url, &["status"], 0);
        assert!(pending["migrations"].as_array().expect("list").iter().all(|m| m["state"] == "pending"), "{pending}");
        ws.json(&db.url, &["migrate"], 0);

        let crlf = ws.path(&format!("{backend}-crlf"));
        copy_migrations(backend, &crlf, |_, text| text.replace('\n', "\r\n"));
        let same = ws.json(&db.url, &["status", "--migrations", crlf.to_str().expect("path")], 0);
        assert_eq!(same["drift"], json!(false), "{backend}: CRLF is not an edit: {same}");

        let edited = ws.path(&format!("{backend}-edited"));
        copy_migrations(backend, &edited, |name, text| {
            if name.starts_with("0005") {
                text + "\n-- edited after it was applied\n"
            } else {
                text
            }
        });
        let (code, out, _) = ws.run(&db.url, &["status", "--migrations", edited.to_str().expect("path")]);
        assert_eq!(code, 1, "{backend}: drift exits 1\n{out}");
        assert!(out.lines().any(|l| l.contains("5") && l.contains("changed") && l.contains("tasy outbox")), "{out}");
    }
}

#[test]
fn seed_is_idempotent_and_reset_reseeds_once() {
    let ws = Workspace::new();
    for (backend, db) in databases(&ws, "seed") {
        ws.json(&db.url, &["migrate"], 0);
        let first = ws.json(&db.url, &["seed"], 0);
        let second = ws.json(&db.url, &["seed"], 0);
        assert!(first["created"].as_u64().expect("n") > 20, "{backend}: {first}");
        assert_eq!(second["created"], json!(0), "{backend}: {second}");

        // A development database (its name says so) is reset without questions, and seeded once.
        let reset = ws.json(&db.url, &["reset"], 0);
        assert_eq!(reset["seed"]["created"], first["created"], "{backend}: {reset}");
        assert_eq!(reset["seed"]["existing"], json!(0), "{backend}");
        assert_eq!(ws.json(&db.url, &["seed"], 0)["created"], json!(0), "{backend}");
        ws.json(&db.url, &["validate"], 0);
    }
}

#[test]
fn reset_refuses_a_database_that_does_not_look_like_development() {
    let ws = Workspace::new();
    let mut targets = vec![("sqlite", TestDatabase::sqlite(ws.dir.path(), "hospital.db"))];
    if let Some(admin) = postgres_url() {
        targets.push(("postgres", TestDatabase::postgres(&admin, "austa_cli_hospital")));
    }
    for (backend, db) in targets {
        ws.json(&db.url, &["migrate"], 0);
        ws.json(&db.url, &["seed"], 0);
        // A tenant that is not the seed's makes it look like real data.
        let rt = runtime();
        rt.block_on(async {
            let lib = ws.open(&db.url).await;
            lib.organizations()
                .create(
                    serde_json::from_value(json!({"name": "Clínica Real", "organization_type": "CLINIC"}))
                        .expect("org"),
                )
                .await
                .expect("create");
            lib.close().await;
        });
        let (code, _, err) = ws.run(&db.url, &["reset"]);
        assert_eq!(code, 3, "{backend}: refused without the flag: {err}");
        assert!(err.contains("does not look like a development database"), "{err}");

        let wrong = ws.austa(&db.url).args(["reset", "--allow-non-development"]).write_stdin("production\n").output();
        let wrong = wrong.expect("run");
        assert_eq!(wrong.status.code(), Some(3), "{backend}: a wrong name is refused");
        let orgs = ws.json(&db.url, &["keys", "status"], 0);
        assert_eq!(orgs["organizations"].as_array().map(Vec::len), Some(3), "{backend}: nothing was dropped");

        let right = ws
            .austa(&db.url)
            .args(["--json", "reset", "--allow-non-development"])
            .write_stdin(format!("{}\n", db.name))
            .output()
            .expect("run");
        assert!(right.status.success(), "{backend}: {}", String::from_utf8_lossy(&right.stderr));
        let orgs = ws.json(&db.url, &["keys", "status"], 0);
        assert_eq!(orgs["organizations"].as_array().map(Vec::len), Some(2), "{backend}: only the seed is left");
    }
}

/// Every repository's decrypted records of both seed organizations, read through the library.
async fn decrypted_records(ws: &Workspace, url: &str) -> Value {
    let db = ws.open(url).await;
    let mut all = serde_json::Map::new();
    for org in [ids::HOSPITAL, ids::CLINIC] {
        let scope = db.scope(org, Actor::system("platform")).await.expect("scope");
        for repo in
            ["patients", "providers", "conversations", "health_data", "missions", "documents", "point_transactions"]
        {
            let page = austa_bindings::call_scope(&scope, &format!("{repo}.list"), json!({"limit": 100}))
                .await
                .unwrap_or_else(|e| panic!("{repo}.list: {e}"));
            all.insert(format!("{org}/{repo}"), page);
        }
        let history = austa_bindings::call_scope(
            &scope,
            "messages.history",
            json!({"conversation_id": ids::CONVERSATION_CARLOS, "limit": 100}),
        )
        .await;
        // Carlos's conversation is the hospital's.
        match history {
            Ok(h) => {
                all.insert(format!("{org}/messages"), h);
            }
            Err(e) => assert!(org != ids::HOSPITAL, "messages.history: {e}"),
        }
    }
    db.close().await;
    Value::Object(all)
}

fn backup_restore(ws: &Workspace, source: &TestDatabase, target: &TestDatabase, label: &str) {
    ws.json(&source.url, &["migrate"], 0);
    ws.json(&source.url, &["seed"], 0);
    let data = ws.path(&format!("{label}/backup.austa.gz"));
    let keys = ws.path(&format!("{label}/keys.austa.gz"));
    let report = ws.json(&source.url, &["backup", data.to_str().expect("p"), "--keys", keys.to_str().expect("p")], 0);
    assert!(report["tables"]["patients"].as_u64() == Some(3), "{label}: {report}");

    // The backup holds no plaintext: names, phones and messages of the seed are not in it.
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut flate2::read::GzDecoder::new(std::fs::File::open(&data).expect("open")),
        &mut text,
    )
    .expect("gunzip");
    for secret in ["Carlos", "Mendes", "+5511987654321", "carlos.mendes@email.com", "123.456.789-09", "12345678909"] {
        assert!(!text.contains(secret), "{label}: the backup leaks {secret:?}");
    }
    assert!(!text.contains("wrapped_key"), "{label}: key material stays in the key file");

    let restored =
        ws.json(&target.url, &["restore", data.to_str().expect("p"), "--keys", keys.to_str().expect("p")], 0);
    assert_eq!(restored["verified"], json!(true), "{label}: {restored}");
    assert_eq!(restored["tables"], report["tables"], "{label}");

    let rt = runtime();
    let (before, after) =
        rt.block_on(async { (decrypted_records(ws, &source.url).await, decrypted_records(ws, &target.url).await) });
    assert!(before.to_string().contains("Carlos"), "{label}: fields decrypt at the source");
    assert_eq!(before, after, "{label}: every field decrypts to the same value after the restore");
    ws.json(&target.url, &["validate"], 0);
    ws.json(&target.url, &["audit", "verify"], 0);

    // Never into a database that has data.
    let (code, _, err) =
        ws.run(&target.url, &["restore", data.to_str().expect("p"), "--keys", keys.to_str().expect("p")]);
    assert_eq!(code, 3, "{label}: {err}");
    assert!(err.contains("not empty"), "{err}");
}

#[test]
fn a_sqlite_clinic_moves_to_postgres_with_backup_and_restore() {
    let ws = Workspace::new();
    let source = TestDatabase::sqlite(ws.dir.path(), "clinic_dev.db");
    match postgres_url() {
        Some(admin) => {
            let target = TestDatabase::postgres(&admin, "austa_cli_moved");
            backup_restore(&ws, &source, &target, "sqlite-to-postgres");
            // And back again.
            let back = TestDatabase::sqlite(ws.dir.path(), "back.db");
            backup_restore(&ws, &target, &back, "postgres-to-sqlite");
        }
        None => {
            let target = TestDatabase::sqlite(ws.dir.path(), "copy.db");
            backup_restore(&ws, &source, &target, "sqlite-to-sqlite");
        }
    }
}

#[test]
fn restore_refuses_damaged_files_and_backups_never_overwrite() {
    let ws = Workspace::new();
    let source = TestDatabase::sqlite(ws.dir.path(), "src_dev.db");
    ws.json(&source.url, &["migrate"], 0);
    ws.json(&source.url, &["seed"], 0);
    let data = ws.path("b.gz");
    ws.json(&source.url, &["backup", data.to_str().expect("p")], 0);
    let (code, _, err) = ws.run(&source.url, &["backup", data.to_str().expect("p")]);
    assert_eq!(code, 3, "existing files are never overwritten: {err}");

    // Truncate the compressed stream's content: decompress, drop the trailer, compress again.
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(std::fs::File::open(&data).expect("o")), &mut text)
        .expect("gunzip");
    let truncated: String = text.lines().take(text.lines().count() - 1).map(|l| format!("{l}\n")).collect();
    let damaged = ws.path("damaged.gz");
    let mut enc =
        flate2::write::GzEncoder::new(std::fs::File::create(&damaged).expect("c"), flate2::Compression::fast());
    enc.write_all(truncated.as_bytes()).expect("w");
    enc.finish().expect("finish");

    let target = TestDatabase::sqlite(ws.dir.path(), "target_dev.db");
    let (code, _, err) = ws.run(&target.url, &["restore", damaged.to_str().expect("p")]);
    assert_eq!(code, 5, "{err}");
    assert!(err.contains("truncated"), "{err}");
    let rt = runtime();
    rt.block_on(async {
        let pool = sqlx::SqlitePool::connect(&target.url).await.expect("c");
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM organizations").fetch_one(&pool).await.expect("q");
        assert_eq!(n, 0, "nothing of a damaged backup is committed");
        pool.close().await;
    });
}

#[test]
fn validate_finds_each_kind_of_planted_inconsistency() {
    let ws = Workspace::new();
    for (backend, db) in databases(&ws, "validate") {
        ws.json(&db.url, &["migrate"], 0);
        ws.json(&db.url, &["seed"], 0);
        assert_eq!(ws.json(&db.url, &["validate"], 0)["findings"], json!([]), "{backend}: a fresh seed is sound");

        let stranger = uuid::Uuid::new_v4();
        let (bad_key, orphan) = if backend == "sqlite" {
            (format!("X'0101{}{}'", "ab".repeat(16), "00".repeat(28)), format!("'{stranger}'"))
        } else {
            (format!("'\\x0101{}{}'::bytea", "ab".repeat(16), "00".repeat(28)), format!("'{stranger}'::uuid"))
        };
        let id = |u: uuid::Uuid| if backend == "sqlite" { format!("'{u}'") } else { format!("'{u}'::uuid") };
        let mut plant = vec![
            "DROP INDEX patients_active_idx".to_string(),
            format!("UPDATE health_points SET total_points = total_points + 5, available_points = available_points + 5 WHERE id = {}", id(ids::HEALTH_POINTS[0])),
            format!("UPDATE conversations SET message_count = message_count + 3 WHERE id = {}", id(ids::CONVERSATION_CARLOS)),
            format!("UPDATE patients SET first_name = {bad_key} WHERE id = {}", id(ids::PATIENT_PEDRO)),
        ];
        if backend == "sqlite" {
            plant.push(format!(
                "UPDATE documents SET patient_id = {orphan} WHERE id = {}",
                id(ids::DOCUMENT_CARLOS_LAB)
            ));
            plant.push("DROP TRIGGER audit_logs_no_update".into());
            plant.push("UPDATE audit_logs SET record_count = record_count + 1 WHERE rowid = (SELECT min(rowid) FROM audit_logs)".into());
            plant.push("CREATE TRIGGER audit_logs_no_update BEFORE UPDATE ON audit_logs\nBEGIN SELECT RAISE(ABORT, 'austa: audit_logs is append-only (UPDATE refused)'); END".into());
        } else {
            plant.push("SET session_replication_role = replica".into());
            plant.push(format!(
                "UPDATE documents SET patient_id = {orphan} WHERE id = {}",
                id(ids::DOCUMENT_CARLOS_LAB)
            ));
            plant.push("SET session_replication_role = origin".into());
            plant.push("ALTER TABLE audit_logs DISABLE TRIGGER audit_logs_append_only".into());
            plant.push("UPDATE audit_logs SET record_count = record_count + 1 WHERE id = (SELECT id FROM audit_logs ORDER BY occurred_at, id LIMIT 1)".into());
            plant.push("ALTER TABLE audit_logs ENABLE TRIGGER audit_logs_append_only".into());
        }
        let statements: Vec<&str> = plant.iter().map(String::as_str).collect();
        runtime().block_on(execute(&db.url, &statements));

        let report = ws.json(&db.url, &["validate"], 1);
        let findings = report["findings"].as_array().expect("findings");
        let has = |check: &str, needle: &str| {
            findings.iter().any(|f| f["check"] == check && f["message"].as_str().is_some_and(|m| m.contains(needle)))
        };
        assert!(has("schema", "patients_active_idx"), "{backend}: {report:#}");
        assert!(has("foreign_keys", "documents"), "{backend}: {report:#}");
        assert!(
            has("points_ledger", &ids::PATIENT_CARLOS.to_string()) || has("points_ledger", "total_points"),
            "{backend}: {report:#}"
        );
        assert!(has("message_count", &ids::CONVERSATION_CARLOS.to_string()), "{backend}: {report:#}");
        assert!(has("ciphertext_keys", "patients.first_name"), "{backend}: {report:#}");
        assert!(has("audit_chain", "broken"), "{backend}: {report:#}");
        let (code, out, _) = ws.run(&db.url, &["validate"]);
        assert_eq!(code, 1);
        assert!(out.contains("[message_count] conversation") && out.contains("finding(s)"), "{out}");
    }
}

#[test]
fn audit_commands_verify_report_and_export() {
    let ws = Workspace::new();
    for (backend, db) in databases(&ws, "audit") {
        ws.json(&db.url, &["migrate"], 0);
        ws.json(&db.url, &["seed"], 0);
        let verify = ws.json(&db.url, &["audit", "verify"], 0);
        assert_eq!(verify["intact"], json!(true), "{backend}: {verify}");
        assert_eq!(verify["chains"].as_array().map(Vec::len), Some(2));
        let one = ws.json(&db.url, &["audit", "verify", "--organization", &ids::CLINIC.to_string()], 0);
        assert_eq!(one["chains"].as_array().map(Vec::len), Some(1));

        let report = ws.json(&db.url, &["audit", "report", "--patient", &ids::PATIENT_CARLOS.to_string()], 0);
        let events = report["events"].as_array().expect("events");
        assert!(!events.is_empty(), "{backend}: the seed wrote Carlos's records: {report}");
        assert!(events.iter().all(|e| e["patient_id"] == json!(ids::PATIENT_CARLOS)
            || e["patient_ids"].as_array().is_some_and(|p| p.contains(&json!(ids::PATIENT_CARLOS)))));

        let out = ws.austa(&db.url).args(["audit", "export", "--from", "2000-01-01"]).output().expect("run");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
            .collect();
        assert!(lines.len() >= 20, "{backend}: {}", lines.len());
        assert!(lines.iter().all(|l| l["resourceType"] == "AuditEvent"));
        assert!(String::from_utf8_lossy(&out.stderr).contains("exported"), "the summary goes to stderr");

        let file = ws.path(&format!("{backend}-audit.ndjson"));
        let summary = ws.json(
            &db.url,
            &["audit", "export", "--organization", &ids::CLINIC.to_string(), "--output", file.to_str().expect("p")],
            0,
        );
        let written = std::fs::read_to_string(&file).expect("read").lines().count() as u64;
        assert_eq!(summary["exported"].as_u64(), Some(written));
    }
}

#[test]
fn audit_checkpoints_are_signed_proved_witnessed_and_a_rolled_back_log_is_named() {
    let ws = Workspace::new();
    let key = ws.path("audit-signing.key");
    let made = ws.json("sqlite://unused.db", &["audit", "keygen", "--output", key.to_str().expect("p")], 0);
    assert!(made["verifier_key"].as_str().is_some_and(|k| k.starts_with("austa-audit+")), "{made}");
    let (code, _, _) = ws.run("sqlite://unused.db", &["audit", "keygen", "--output", key.to_str().expect("p")]);
    assert_ne!(code, 0, "an existing key file is never overwritten");
    // Carlos's hospital: reading his access report adds to its log.
    let hospital = ids::HOSPITAL.to_string();
    for (backend, db) in databases(&ws, "checkpoint") {
        ws.json(&db.url, &["migrate"], 0);
        ws.json(&db.url, &["seed"], 0);
        let (first, second, proof) = (
            ws.path(&format!("{backend}-1.checkpoint")),
            ws.path(&format!("{backend}-2.checkpoint")),
            ws.path(&format!("{backend}-proof.json")),
        );
        let p = |path: &std::path::PathBuf| path.to_str().expect("path").to_owned();
        let signed = ws.json(&db.url, &["audit", "checkpoint", "--organization", &hospital, "--output", &p(&first)], 0);
        let size = signed["tree_size"].as_u64().expect("size");
        assert!(size > 0, "{backend}: {signed}");
        let verified = ws.json(&db.url, &["audit", "verify", "--organization", &hospital, "--against", &p(&first)], 0);
        assert_eq!(verified["intact"], json!(true), "{backend}: {verified}");
        runtime().block_on(execute(&db.url, &["CREATE TABLE heads_then AS SELECT * FROM audit_heads"]));

        // The log grows (a report is itself an audited read); the new checkpoint comes with its proof.
        ws.json(&db.url, &["audit", "report", "--patient", &ids::PATIENT_CARLOS.to_string()], 0);
        let args = [
            "audit",
            "checkpoint",
            "--organization",
            &hospital,
            "--output",
            &p(&second),
            "--since",
            &p(&first),
            "--proof-output",
            &p(&proof),
        ];
        let grown = ws.json(&db.url, &args, 0);
        assert!(grown["tree_size"].as_u64() > Some(size), "{backend}: {grown}");
        let witnessed = ws.json(
            &db.url,
            &["audit", "witness", "--old", &p(&first), "--new", &p(&second), "--proof", &p(&proof)],
            0,
        );
        assert_eq!(witnessed["consistent"], json!(true), "{backend}: {witnessed}");
        let backwards = ws.json(
            &db.url,
            &["audit", "witness", "--old", &p(&second), "--new", &p(&first), "--proof", &p(&proof)],
            1,
        );
        assert_eq!(backwards["consistent"], json!(false), "{backend}: {backwards}");

        // One event's inclusion proof, against the second checkpoint's size.
        let out = ws.austa(&db.url).args(["audit", "export", "--organization", &hospital]).output().expect("run");
        let first_line = String::from_utf8_lossy(&out.stdout).lines().next().map(str::to_owned).expect("an event");
        let event: Value = serde_json::from_str(&first_line).expect("json");
        let event_id = event["id"].as_str().expect("id").to_owned();
        let tree_size = grown["tree_size"].as_u64().expect("size").to_string();
        let included = ws.json(
            &db.url,
            &["audit", "prove", "--organization", &hospital, "--event", &event_id, "--tree-size", &tree_size],
            0,
        );
        assert_eq!(
            included["root"].as_str(),
            std::fs::read_to_string(&second).expect("note").lines().nth(2),
            "{backend}"
        );

        // The newest events cut, and the head put back as it was: the chain alone cannot tell.
        let cut = "DELETE FROM audit_chain WHERE seq > (SELECT seq FROM heads_then h WHERE h.organization_id = audit_chain.organization_id)";
        let head = "UPDATE audit_heads SET seq = (SELECT seq FROM heads_then h WHERE h.organization_id = audit_heads.organization_id), \
                    mac = (SELECT mac FROM heads_then h WHERE h.organization_id = audit_heads.organization_id), \
                    key_id = (SELECT key_id FROM heads_then h WHERE h.organization_id = audit_heads.organization_id), \
                    head_mac = (SELECT head_mac FROM heads_then h WHERE h.organization_id = audit_heads.organization_id), \
                    frontier = (SELECT frontier FROM heads_then h WHERE h.organization_id = audit_heads.organization_id)";
        let orphans = "DELETE FROM audit_logs WHERE NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.organization_id = audit_logs.organization_id AND c.event_id = audit_logs.id)";
        let bypass = if backend == "postgres" {
            "SET session_replication_role = replica"
        } else {
            "DROP TRIGGER audit_chain_no_delete"
        };
        let more = if backend == "postgres" { "SELECT 1" } else { "DROP TRIGGER audit_logs_no_delete" };
        runtime().block_on(execute(&db.url, &[bypass, more, cut, head, orphans]));
        let alone = ws.json(&db.url, &["audit", "verify", "--organization", &hospital], 0);
        assert_eq!(alone["intact"], json!(true), "{backend}: {alone}");
        let against = ws.json(&db.url, &["audit", "verify", "--organization", &hospital, "--against", &p(&second)], 1);
        assert_eq!(against["chains"][0]["report"]["broken"]["kind"], json!("TRUNCATED"), "{backend}: {against}");
        let (_, text, _) = ws.run(&db.url, &["audit", "verify", "--organization", &hospital, "--against", &p(&second)]);
        assert!(text.contains("does NOT extend"), "{text}");
    }
}

#[test]
fn key_commands_rotate_resume_rotate_master_and_shred() {
    let ws = Workspace::new();
    for (backend, db) in databases(&ws, "keys") {
        ws.json(&db.url, &["migrate"], 0);
        ws.json(&db.url, &["seed"], 0);
        let status = ws.json(&db.url, &["keys", "status"], 0);
        assert_eq!(status["organizations"][0]["active_version"], json!(1), "{backend}: {status}");

        // Rotation, interrupted after one batch, then resumed by the same command.
        let hospital = ids::HOSPITAL.to_string();
        let first = ws.json(
            &db.url,
            &["keys", "rotate", "--organization", &hospital, "--batch-size", "1", "--max-batches", "1"],
            0,
        );
        assert_eq!(first["completed"], json!(false), "{backend}: {first}");
        let hospital_keys = || {
            let status = ws.json(&db.url, &["keys", "status"], 0);
            let orgs = status["organizations"].as_array().expect("orgs");
            orgs.iter().find(|o| o["organization_id"] == json!(hospital)).cloned().expect("hospital")
        };
        let running = hospital_keys();
        assert_eq!(running["running_rotations"].as_array().map(Vec::len), Some(1), "{backend}: {running}");
        let second = ws.json(&db.url, &["keys", "rotate", "--organization", &hospital], 0);
        assert_eq!(
            (second["completed"].clone(), second["resumed"].clone(), second["id"].clone()),
            (json!(true), json!(true), first["id"].clone())
        );
        let after = hospital_keys();
        assert_eq!(
            (after["active_version"].clone(), after["retired_versions"].clone()),
            (json!(2), json!(1)),
            "{backend}: {after}"
        );

        // Master key rotation: afterwards only the new key opens the database.
        let new_key = ws.path(&format!("{backend}-new.key"));
        austa_core::crypto::LocalKeyProvider::create_key_file(&new_key).expect("new key");
        let rotated = ws.json(&db.url, &["keys", "rotate-master", "--new-key-file", new_key.to_str().expect("p")], 0);
        assert_eq!(rotated["organization_keys"], json!(3), "{backend}: {rotated}");
        let (code, _, err) = ws.run(&db.url, &["keys", "status"]);
        assert_eq!(code, 5, "{backend}: the old key is refused: {err}");
        assert!(err.contains("wrong master key"), "{err}");
        let with_new = |args: &[&str]| {
            let mut all = vec!["--json", "--master-key-file", new_key.to_str().expect("p")];
            all.extend_from_slice(args);
            let mut cmd = ws.austa(&db.url);
            cmd.args(all);
            cmd
        };
        assert!(with_new(&["keys", "status"]).output().expect("run").status.success());

        // Shredding asks for the patient id back.
        let pedro = ids::PATIENT_PEDRO.to_string();
        let declined = with_new(&["keys", "shred", "--patient", &pedro, "--reason", "LGPD-2026-042"])
            .write_stdin("no\n")
            .output()
            .expect("run");
        assert_eq!(declined.status.code(), Some(3), "{backend}");
        let shredded = with_new(&["keys", "shred", "--patient", &pedro, "--reason", "LGPD-2026-042"])
            .write_stdin(format!("{pedro}\n"))
            .output()
            .expect("run");
        assert!(shredded.status.success(), "{backend}: {}", String::from_utf8_lossy(&shredded.stderr));
        let receipt: Value = serde_json::from_slice(&shredded.stdout).expect("json");
        assert!(!receipt["destroyed_key_ids"].as_array().expect("ids").is_empty(), "{receipt}");
        let status: Value =
            serde_json::from_slice(&with_new(&["keys", "status"]).output().expect("run").stdout).expect("json");
        assert!(
            status["organizations"].as_array().expect("orgs").iter().any(|o| o["shredded_patients"] == json!(1)),
            "{status}"
        );
        let validate = with_new(&["validate"]).output().expect("run");
        assert!(
            validate.status.success(),
            "{backend}: a shredded patient is not an inconsistency: {}",
            String::from_utf8_lossy(&validate.stdout)
        );
    }
}
