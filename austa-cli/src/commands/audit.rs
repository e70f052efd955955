//! `austa audit verify | report | export | checkpoint | prove | witness | keygen`.

use std::fmt::Write as _;
use std::io::Write;

use std::path::Path;

use austa_core::audit::transparency::{
    CheckpointVerifier, Ed25519Signer, DEFAULT_KEY_NAME, SIGNER_NAME_ENV, SIGNING_KEY_ENV, SIGNING_KEY_FILE_ENV,
    VERIFIER_KEY_ENV,
};
use austa_core::audit::{witness as witness_check, ConsistencyProof};
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
    // The commands that need no database.
    match command {
        AuditCommand::Witness { old, new, proof } => return witness(old, new, proof),
        AuditCommand::Keygen { output, name } => return keygen(output, name.as_deref()),
        _ => {}
    }
    let db = config::open(cli).await?;
    let result = match command {
        AuditCommand::Verify { organization, against: Some(note) } => {
            let org = organization.organization.ok_or_else(|| Failure::config("--against needs --organization"))?;
            verify_against(&db, org, note).await
        }
        AuditCommand::Verify { organization, against: None } => verify(&db, organization.organization).await,
        AuditCommand::Report { patient, organization, window: w } => report(&db, *patient, *organization, w).await,
        AuditCommand::Export { organization, window: w, output } => {
            export(&db, organization.organization, w, output.as_deref()).await
        }
        AuditCommand::Checkpoint { organization, output, since, proof_output } => {
            checkpoint(&db, *organization, output.as_deref(), since.as_deref(), proof_output.as_deref()).await
        }
        AuditCommand::Prove { organization, event, tree_size } => prove(&db, *organization, *event, *tree_size).await,
        AuditCommand::Witness { .. } | AuditCommand::Keygen { .. } => Err(Failure::config("needs no database")),
    };
    db.close().await;
    result
}

fn signer() -> Result<Ed25519Signer, Failure> {
    Ed25519Signer::from_env()?.ok_or_else(|| {
        Failure::config(format!("no checkpoint signing key: set {SIGNING_KEY_ENV} or {SIGNING_KEY_FILE_ENV}"))
    })
}

fn verifier() -> Result<CheckpointVerifier, Failure> {
    CheckpointVerifier::from_env()?.ok_or_else(|| {
        Failure::config(format!("no checkpoint verifier key: set {VERIFIER_KEY_ENV} (or the signing key)"))
    })
}

fn read(path: &Path) -> Result<String, Failure> {
    std::fs::read_to_string(path).map_err(|e| Failure::io(&format!("reading {}", path.display()), e))
}

fn write(path: &Path, content: &str) -> Result<(), Failure> {
    std::fs::write(path, content).map_err(|e| Failure::io(&format!("writing {}", path.display()), e))
}

async fn verify_against(db: &Database, org: Uuid, note: &Path) -> Result<Report, Failure> {
    let (note, verifier) = (read(note)?, verifier()?);
    let scope = platform_scope(db, org).await?;
    let report = scope.audit().verify_against(&note, &verifier).await?;
    let chain = ChainCheck { organization_id: org, report: Some(report), error: None };
    let mut text = String::new();
    describe(&chain, &mut text);
    let intact = chain.is_intact();
    let _ = write!(
        text,
        "{}",
        if intact { "the log extends the checkpoint" } else { "the log does NOT extend the checkpoint" }
    );
    Ok(Report::new(json!({ "intact": intact, "chains": to_json(&[chain]) }), text).findings_if(!intact))
}

async fn checkpoint(
    db: &Database,
    org: Uuid,
    output: Option<&Path>,
    since: Option<&Path>,
    proof_output: Option<&Path>,
) -> Result<Report, Failure> {
    let signer = signer()?;
    let scope = platform_scope(db, org).await?;
    let mut old_size = None;
    let mut old_note = None;
    if let Some(old) = since {
        let old = read(old)?;
        let report = scope.audit().verify_against(&old, &CheckpointVerifier::of(&signer)?).await?;
        if let Some(b) = report.broken {
            let kind = to_json(&b.kind);
            let text = format!(
                "organization {org}: the log does NOT extend the earlier checkpoint ({}: {})",
                kind.as_str().unwrap_or_default(),
                b.detail
            );
            return Ok(Report::new(json!({ "signed": false, "broken": to_json(&b) }), text).findings_if(true));
        }
        old_size = Some(tree_size_of(&old));
        old_note = Some(old);
    }
    let note = match scope.audit().checkpoint(&signer).await {
        Ok(note) => note,
        Err(austa_core::Error::CorruptData(why)) => {
            return Ok(Report::new(json!({ "signed": false, "reason": why }), format!("organization {org}: {why}"))
                .findings_if(true));
        }
        Err(e) => return Err(e.into()),
    };
    let size = tree_size_of(&note);
    let proof = match old_size {
        Some(old_size) => Some(scope.audit().consistency_proof(old_size, Some(size)).await?),
        None => None,
    };
    // What the witness will check, checked before anything is handed over.
    if let (Some(old), Some(p)) = (&old_note, &proof) {
        witness_check(&CheckpointVerifier::of(&signer)?, old, &note, p)?;
    }
    if let (Some(path), Some(p)) = (proof_output, &proof) {
        write(path, &format!("{}\n", to_json(p)))?;
    }
    let json = json!({ "signed": true, "organization_id": org, "tree_size": size, "checkpoint": note, "consistency": proof.as_ref().map(to_json) });
    match output {
        Some(path) => {
            write(path, &note)?;
            Ok(Report::new(
                json,
                format!("organization {org}: checkpoint of {size} events written to {}", path.display()),
            ))
        }
        None => Ok(Report::new(json, note.trim_end().to_owned())),
    }
}

/// The tree size a checkpoint names (its second line; the note was opened and checked before).
fn tree_size_of(note: &str) -> u64 {
    note.lines().nth(1).and_then(|l| l.parse::<u64>().ok()).unwrap_or(0)
}

async fn prove(db: &Database, org: Uuid, event: Uuid, tree_size: Option<u64>) -> Result<Report, Failure> {
    let scope = platform_scope(db, org).await?;
    let proof = scope.audit().inclusion_proof(event, tree_size).await?;
    let text = format!(
        "event {event} is leaf {} of the tree of {} events (root {})",
        proof.seq - 1,
        proof.tree_size,
        proof.root
    );
    Ok(Report::new(to_json(&proof), text))
}

fn witness(old: &Path, new: &Path, proof: &Path) -> Result<Report, Failure> {
    let (old, new, verifier) = (read(old)?, read(new)?, verifier()?);
    let proof: ConsistencyProof = serde_json::from_str(&read(proof)?)
        .map_err(|e| Failure::config(format!("the proof is not a consistency proof: {e}")))?;
    match witness_check(&verifier, &old, &new, &proof) {
        Ok(kept) => Ok(Report::new(
            json!({ "consistent": true, "tree_size": kept.size }),
            format!(
                "the log grew from {} to {} events without changing any: keep the new checkpoint",
                proof.old_size, kept.size
            ),
        )),
        Err(e) => {
            Ok(Report::new(json!({ "consistent": false, "reason": e.to_string() }), format!("NOT consistent: {e}"))
                .findings_if(true))
        }
    }
}

fn keygen(output: &Path, name: Option<&str>) -> Result<Report, Failure> {
    let name = name
        .map(str::to_owned)
        .or_else(|| std::env::var(SIGNER_NAME_ENV).ok())
        .unwrap_or_else(|| DEFAULT_KEY_NAME.to_owned());
    let signer = Ed25519Signer::create_key_file(&name, output)?;
    let verifier = CheckpointVerifier::of(&signer)?.to_string();
    let text = format!("created {}; give witnesses this verifier key:\n{verifier}", output.display());
    Ok(Report::new(json!({ "key_file": output.display().to_string(), "verifier_key": verifier }), text))
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
