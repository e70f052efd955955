//! `austa audit verify | report | export`.

use std::fmt::Write as _;
use std::io::Write;

use austa_core::ops::ChainCheck;
use austa_core::repo::PageRequest;
use austa_core::{Actor, Database, Scope};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;
use uuid::Uuid;

use crate::cli::{AuditCommand, Cli, Window};
use crate::config;
use crate::outcome::{to_json, Failure, Report};

/// The operator's scope on one organization: the platform actor, which the access matrix allows
/// everything and which the audit trail records as `SYSTEM:platform`.
pub(super) async fn platform_scope(db: &Database, organization: Uuid) -> Result<Scope, Failure> {
    Ok(db.scope(organization, Actor::system("platform")).await?)
}

fn parse_time(flag: &str, value: &str) -> Result<DateTime<Utc>, Failure> {
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(t.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| Failure::config(format!("--{flag}: expected an RFC 3339 time or a YYYY-MM-DD day")))
}

fn window(w: &Window) -> Result<(DateTime<Utc>, DateTime<Utc>), Failure> {
    let from = w.from.as_deref().map(|v| parse_time("from", v)).transpose()?.unwrap_or(DateTime::<Utc>::UNIX_EPOCH);
    let to = w.to.as_deref().map(|v| parse_time("to", v)).transpose()?.unwrap_or_else(Utc::now);
    Ok((from, to))
}

async fn organizations(db: &Database, only: Option<Uuid>) -> Result<Vec<Uuid>, Failure> {
    if let Some(org) = only {
        return Ok(vec![org]);
    }
    let mut ids = Vec::new();
    let mut page = PageRequest::first(500);
    loop {
        let p = db.organizations().list(page).await?;
        ids.extend(p.items.iter().map(|o| o.id));
        match p.next {
            Some(next) => page = PageRequest { limit: Some(500), after: Some(next) },
            None => return Ok(ids),
        }
    }
}

fn describe(chain: &ChainCheck, text: &mut String) {
    let _ = match (&chain.report, &chain.error) {
        (Some(r), _) if r.is_intact() => writeln!(
            text,
            "organization {}: intact, {} events verified (head {})",
            chain.organization_id, r.verified, r.head_seq
        ),
        (Some(r), _) => {
            let b = r.broken.as_ref();
            writeln!(
                text,
                "organization {}: BROKEN at seq {} ({}: {})",
                chain.organization_id,
                b.and_then(|b| b.seq).map(|s| s.to_string()).unwrap_or_else(|| "-".into()),
                b.map(|b| to_json(&b.kind).as_str().unwrap_or_default().to_string()).unwrap_or_default(),
                b.map(|b| b.detail.as_str()).unwrap_or_default()
            )
        }
        (None, e) => writeln!(
            text,
            "organization {}: NOT VERIFIED ({})",
            chain.organization_id,
            e.as_deref().unwrap_or("unknown error")
        ),
    };
}

pub async fn run(cli: &Cli, command: &AuditCommand) -> Result<Report, Failure> {
    let db = config::open(cli).await?;
    let result = match command {
        AuditCommand::Verify { organization } => verify(&db, organization.organization).await,
        AuditCommand::Report { patient, organization, window: w } => report(&db, *patient, *organization, w).await,
        AuditCommand::Export { organization, window: w, output } => {
            export(&db, organization.organization, w, output.as_deref()).await
        }
    };
    db.close().await;
    result
}

async fn verify(db: &Database, only: Option<Uuid>) -> Result<Report, Failure> {
    let chains = match only {
        Some(org) => {
            let scope = platform_scope(db, org).await?;
            let (report, error) = match scope.audit().verify().await {
                Ok(r) => (Some(r), None),
                Err(e) => (None, Some(e.to_string())),
            };
            vec![ChainCheck { organization_id: org, report, error }]
        }
        None => db.verify_audit_chains().await?,
    };
    let mut text = String::new();
    for c in &chains {
        describe(c, &mut text);
    }
    let intact = chains.iter().all(ChainCheck::is_intact);
    let _ = write!(text, "{} chain(s) checked: {}", chains.len(), if intact { "all intact" } else { "NOT all intact" });
    Ok(Report::new(json!({ "intact": intact, "chains": to_json(&chains) }), text).findings_if(!intact))
}

async fn report(db: &Database, patient: Uuid, organization: Option<Uuid>, w: &Window) -> Result<Report, Failure> {
    let (from, to) = window(w)?;
    let organization = match organization {
        Some(o) => o,
        None => db.organization_of_patient(patient).await?,
    };
    let scope = platform_scope(db, organization).await?;
    let mut events = Vec::new();
    let mut page = PageRequest::first(500);
    loop {
        let p = scope.audit().access_report(patient, from, to, page).await?;
        events.extend(p.items);
        match p.next {
            Some(next) => page = PageRequest { limit: Some(500), after: Some(next) },
            None => break,
        }
    }
    let mut text = String::new();
    for e in &events {
        let _ = writeln!(
            text,
            "{}  {:<14} {:<9} {}:{}  {} {}",
            e.occurred_at.format("%Y-%m-%dT%H:%M:%SZ"),
            to_json(&e.action).as_str().unwrap_or_default(),
            to_json(&e.outcome).as_str().unwrap_or_default(),
            to_json(&e.actor_kind).as_str().unwrap_or_default(),
            e.actor_name.clone().or(e.actor_id.map(|i| i.to_string())).unwrap_or_else(|| "-".into()),
            to_json(&e.entity_type).as_str().unwrap_or_default(),
            e.entity_id.map(|i| i.to_string()).unwrap_or_default(),
        );
    }
    let _ = write!(text, "{} access event(s) for patient {patient}", events.len());
    Ok(Report::new(json!({ "patient_id": patient, "organization_id": organization, "events": to_json(&events) }), text))
}

async fn export(
    db: &Database,
    only: Option<Uuid>,
    w: &Window,
    output: Option<&std::path::Path>,
) -> Result<Report, Failure> {
    let (from, to) = window(w)?;
    let mut out: Box<dyn Write> = match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            austa_core::ops::create_private_file(path)
                .map_err(|e| Failure::io(&format!("creating {}", path.display()), e))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut total = 0u64;
    for org in organizations(db, only).await? {
        let scope = platform_scope(db, org).await?;
        total += scope.audit().export_fhir(&mut out, from, to).await?;
    }
    out.flush().map_err(|e| Failure::io("writing the export", e))?;
    let text = format!("exported {total} FHIR AuditEvent line(s)");
    let report = Report::new(json!({ "exported": total, "output": output.map(|p| p.display().to_string()) }), text);
    // The events went to stdout: the summary must not mix with them.
    Ok(if output.is_none() { report.quiet() } else { report })
}
