//! `austa migrate` and `austa status`.

use std::fmt::Write as _;
use std::path::Path;

use austa_core::ops::MigrationState;
use serde_json::json;

use crate::cli::Cli;
use crate::config;
use crate::outcome::{to_json, Failure, Report};

pub async fn migrate(cli: &Cli) -> Result<Report, Failure> {
    let db = config::open(cli).await?;
    let applied = db.apply_migrations().await?;
    let status = db.migration_status(None).await?;
    db.close().await;
    let total = status.count(MigrationState::Applied);
    let text = if applied.is_empty() {
        format!("nothing to do: {total} migrations applied, none pending")
    } else {
        let list: Vec<String> = applied.iter().map(i64::to_string).collect();
        format!("applied {} migration(s): {}", applied.len(), list.join(", "))
    };
    Ok(Report::new(json!({ "applied": applied, "total_applied": total }), text))
}

pub async fn status(cli: &Cli, source: Option<&Path>) -> Result<Report, Failure> {
    let db = config::open(cli).await?;
    let status = db.migration_status(source).await?;
    db.close().await;
    let mut text = format!("{:>8}  {:<8}  {:<8}  {:<28}  applied at\n", "version", "set", "state", "description");
    for m in &status.migrations {
        let state = to_json(&m.state).as_str().unwrap_or_default().to_string();
        let _ = writeln!(
            text,
            "{:>8}  {:<8}  {:<8}  {:<28}  {}",
            m.version,
            m.set,
            state,
            m.description,
            m.applied_at.as_deref().unwrap_or("-")
        );
    }
    let drift = status.has_drift();
    let _ = write!(
        text,
        "{} applied, {} pending, {} drifted (changed {}, failed {}, unknown {})",
        status.count(MigrationState::Applied),
        status.count(MigrationState::Pending),
        status.migrations.iter().filter(|m| m.state.is_drift()).count(),
        status.count(MigrationState::Changed),
        status.count(MigrationState::Failed),
        status.count(MigrationState::Unknown),
    );
    let mut json = to_json(&status);
    json["drift"] = json!(drift);
    Ok(Report::new(json, text).findings_if(drift))
}
