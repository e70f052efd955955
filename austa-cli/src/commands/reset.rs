//! `austa seed` and `austa reset`.

use austa_core::ops::development;
use austa_core::seed::{self, SeedReport};
use serde_json::json;

use crate::cli::Cli;
use crate::config;
use crate::confirm;
use crate::outcome::{to_json, Failure, Report};

fn seed_report(report: &SeedReport) -> serde_json::Value {
    let mut json = to_json(report);
    json["created"] = json!(report.created());
    json["existing"] = json!(report.existing());
    json
}

pub async fn seed(cli: &Cli) -> Result<Report, Failure> {
    let db = config::open(cli).await?;
    let report = seed::run(&db).await?;
    db.close().await;
    let text = format!("seed: {} rows created, {} already present", report.created(), report.existing());
    Ok(Report::new(seed_report(&report), text))
}

pub async fn reset(cli: &Cli, allow_non_development: bool) -> Result<Report, Failure> {
    let options = config::options(cli)?;
    let keys = config::master_key(cli)?;
    let check = development::check_development(&options.url).await?;
    let confirmed = if check.looks_like_development() {
        None
    } else if !allow_non_development {
        return Err(Failure::refused(format!(
            "{} does not look like a development database (it must be on this machine and named for development, \
             e.g. austa_dev, or hold only the development seed); to reset it anyway pass --allow-non-development \
             and type its name",
            check.database
        )));
    } else {
        confirm::typed_back(
            &format!("This drops every row of {}. Type the database name to confirm", check.database),
            &check.database,
        )?;
        Some(check.database.as_str())
    };
    let (db, report) = development::reset(&options, keys, confirmed).await?;
    db.close().await;
    let text = format!("reset {}: recreated, migrated, seeded ({} rows)", check.database, report.created());
    Ok(Report::new(json!({ "database": check.database, "seed": seed_report(&report) }), text))
}
