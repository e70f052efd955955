//! `austa keys status | rotate-master | rotate | shred`.

use std::fmt::Write as _;
use std::sync::Arc;

use austa_core::crypto::{KeyProvider, LocalKeyProvider, RotationTarget, RunOptions};
use austa_core::ops::Progress;
use austa_core::Database;
use serde_json::json;
use uuid::Uuid;

use super::audit::platform_scope;
use crate::cli::{Cli, KeysCommand};
use crate::config;
use crate::confirm;
use crate::outcome::{to_json, Failure, Report};
use crate::progress::Reporter;

/// The environment variable that may hold the new master key for `rotate-master`.
const NEW_MASTER_KEY_ENV: &str = "AUSTA_NEW_MASTER_KEY";

pub async fn run(cli: &Cli, command: &KeysCommand) -> Result<Report, Failure> {
    let db = config::open(cli).await?;
    let result = match command {
        KeysCommand::Status => status(&db).await,
        KeysCommand::RotateMaster { new_key_file } => rotate_master(&db, new_key_file.as_deref()).await,
        KeysCommand::Rotate { organization, batch_size, max_batches } => {
            rotate(&db, *organization, RunOptions { batch_size: *batch_size, max_batches: *max_batches }).await
        }
        KeysCommand::Shred { patient, organization, reason, yes } => {
            shred(&db, *patient, *organization, reason, *yes).await
        }
    };
    db.close().await;
    result
}

async fn status(db: &Database) -> Result<Report, Failure> {
    let status = db.key_status().await?;
    let mut text = format!(
        "master key: set {}, last rotated {}\n",
        status.master_key_set_at.as_deref().unwrap_or("-"),
        status.master_key_rotated_at.as_deref().unwrap_or("never")
    );
    for o in &status.organizations {
        let _ = writeln!(
            text,
            "organization {}: key v{} active, {} retired; {} patient keys, {} shredded patient(s); {} unfinished rotation(s)",
            o.organization_id,
            o.active_version.map(|v| v.to_string()).unwrap_or_else(|| "-".into()),
            o.retired_versions,
            o.patient_keys,
            o.shredded_patients,
            o.running_rotations.len()
        );
    }
    let _ = write!(text, "{} organization(s) with keys", status.organizations.len());
    Ok(Report::new(to_json(&status), text))
}

async fn rotate_master(db: &Database, new_key_file: Option<&std::path::Path>) -> Result<Report, Failure> {
    let new: Arc<dyn KeyProvider> = match new_key_file {
        Some(path) => Arc::new(LocalKeyProvider::from_file(path)?),
        None => match std::env::var(NEW_MASTER_KEY_ENV) {
            Ok(v) if !v.trim().is_empty() => {
                Arc::new(LocalKeyProvider::from_base64(v.trim(), format!("env:{NEW_MASTER_KEY_ENV}"))?)
            }
            _ => {
                return Err(Failure::config(format!(
                    "rotate-master needs the new master key: --new-key-file PATH or {NEW_MASTER_KEY_ENV}"
                )))
            }
        },
    };
    let rotation = db.rotate_master_key(new).await?;
    let text = format!(
        "re-wrapped {} organization key version(s) under the new master key; the old one opens nothing now: \
         configure the new one (AUSTA_MASTER_KEY or the key file) everywhere",
        rotation.organization_keys
    );
    Ok(Report::new(to_json(&rotation), text))
}

async fn rotate(db: &Database, organization: Uuid, options: RunOptions) -> Result<Report, Failure> {
    let scope = platform_scope(db, organization).await?;
    let keys = scope.keys();
    let running = keys.running_rotations().await?.into_iter().find(|r| r.target == RotationTarget::Organization);
    let (status, resumed) = match running {
        Some(r) => (r, true),
        None => (keys.start_rotation(RotationTarget::Organization).await?, false),
    };
    let mut reporter = Reporter::new();
    reporter.start("rotate", Some(u64::try_from(status.rows_total).unwrap_or(0)));
    reporter.advance(u64::try_from(status.rows_done).unwrap_or(0));
    let mut done = status.rows_done;
    let status = keys
        .run_rotation(status.id, options, |s| {
            reporter.advance(u64::try_from(s.rows_done - done).unwrap_or(0));
            done = s.rows_done;
        })
        .await?;
    reporter.finish();
    let text = if status.completed {
        format!(
            "rotation {} of organization {organization} {}: {} rows re-encrypted under key {}",
            status.id,
            if resumed { "resumed and completed" } else { "completed" },
            status.rows_done,
            status.new_key_id
        )
    } else {
        format!(
            "rotation {} paused at {}/{} rows (--max-batches); run the same command again to resume",
            status.id, status.rows_done, status.rows_total
        )
    };
    let mut json = to_json(&status);
    json["resumed"] = json!(resumed);
    Ok(Report::new(json, text))
}

async fn shred(
    db: &Database,
    patient: Uuid,
    organization: Option<Uuid>,
    reason: &str,
    yes: bool,
) -> Result<Report, Failure> {
    let organization = match organization {
        Some(o) => o,
        None => db.organization_of_patient(patient).await?,
    };
    if !yes {
        confirm::typed_back(
            &format!(
                "Crypto-shredding destroys patient {patient}'s keys: their data becomes unreadable everywhere, \
                 backups included. Type the patient id to confirm"
            ),
            &patient.to_string(),
        )?;
    }
    let scope = platform_scope(db, organization).await?;
    let receipt = scope.keys().shred_patient(patient, reason).await?;
    let text = format!(
        "patient {patient} shredded: {} key version(s) destroyed at {}",
        receipt.destroyed_key_ids.len(),
        receipt.shredded_at.format("%Y-%m-%dT%H:%M:%SZ")
    );
    Ok(Report::new(to_json(&receipt), text))
}
