//! `austa validate`.

use std::fmt::Write as _;

use crate::cli::Cli;
use crate::config;
use crate::outcome::{to_json, Failure, Report};

pub async fn validate(cli: &Cli) -> Result<Report, Failure> {
    let db = config::open(cli).await?;
    let report = db.validate().await?;
    db.close().await;
    let mut text = String::new();
    for f in &report.findings {
        let check = to_json(&f.check).as_str().unwrap_or_default().to_string();
        let _ = writeln!(text, "[{check}] {}", f.message);
    }
    let _ = write!(text, "validate: {} checks, {} finding(s)", report.checks.len(), report.findings.len());
    let found = !report.is_clean();
    Ok(Report::new(to_json(&report), text).findings_if(found))
}
