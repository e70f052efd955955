//! Quickstart: the platform's main path on an embedded SQLite file, with no server and no configuration.
//!
//! ```sh
//! cargo run --example quickstart                                   # SQLite file ./austa.db
//! DATABASE_URL=postgres://user@127.0.0.1/austa cargo run --example quickstart
//! ```
//!
//! It opens the database, migrates it, loads the development seed (a no-op when already there), then: a
//! WhatsApp Cloud API webhook body arrives with a text from +5511987654321 and goes through the webhook
//! ingest (organization by number, patient by WhatsApp id or phone through the blind indexes, message
//! stored encrypted in their open conversation); the conversation history is read back decrypted. Then Carlos asks who looked at his record: his access report, built from the audit trail
//! the library wrote along the way, one of its events as a FHIR `AuditEvent`, the verification of
//! the organization's tamper-evident chain and a signed checkpoint of it. Without a configured master key it creates a development key
//! file (mode 0600).

use std::path::Path;
use std::sync::Arc;

use austa_core::audit::transparency::{CheckpointVerifier, Ed25519Signer};
use austa_core::crypto::{provider_from_env, KeyProvider, LocalKeyProvider};
use austa_core::model::{AuditLog, SenderKind};
use austa_core::repo::PageRequest;
use austa_core::{Actor, Database, Error};

const DEV_KEY_FILE: &str = ".austa/master.key";

/// The configured master key, or the development key file (created on first use).
fn master_key() -> Result<Arc<dyn KeyProvider>, Error> {
    if std::env::var_os("AUSTA_MASTER_KEY").is_some() || std::env::var_os("AUSTA_MASTER_KEY_FILE").is_some() {
        let provider = provider_from_env()?;
        println!("master key     {}", provider.describe());
        return Ok(provider);
    }
    let path = Path::new(DEV_KEY_FILE);
    if path.exists() {
        println!("master key     development key file {DEV_KEY_FILE}");
        return Ok(Arc::new(LocalKeyProvider::from_file(path)?));
    }
    let provider = LocalKeyProvider::create_key_file(path)?;
    println!("master key     created a development key file {DEV_KEY_FILE} (mode 0600).");
    println!("               Keep it: without it this database cannot be decrypted. In production set");
    println!("               AUSTA_MASTER_KEY or AUSTA_MASTER_KEY_FILE instead.");
    Ok(Arc::new(provider))
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| austa_core::db::DEFAULT_DATABASE_URL.to_string());
    println!("database       {}", austa_core::db::redact_password(&url));
    let db = Database::connect_with(&url, master_key()?).await?;
    db.migrate().await?;
    println!("migrations     applied ({:?})", db.backend());

    let seed = austa_core::seed::run(&db).await?;
    println!("seed           {} rows created, {} already present", seed.created(), seed.existing());
    print!("{seed}");

    // A WhatsApp text arrives at the hospital's number: the body exactly as Meta posts it.
    let from = "5511987654321";
    let text = "Bom dia! Tomei a Losartana às 8h. Posso tomar um café agora?";
    let wamid = format!("wamid.quickstart.{}", uuid::Uuid::now_v7().simple());
    let body = serde_json::json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": "102290129340398", "changes": [{ "field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": { "display_phone_number": "551134567890",
                          "phone_number_id": austa_core::seed::ids::HOSPITAL_WHATSAPP_NUMBER },
            "contacts": [{ "profile": { "name": "Carlos Mendes" }, "wa_id": from }],
            "messages": [{ "from": from, "id": wamid, "timestamp": chrono::Utc::now().timestamp().to_string(),
                           "type": "text", "text": { "body": text } }]
        }}]}]
    });
    println!("\nincoming       WhatsApp webhook: a text from +{from}");

    // 1-3. One call: organization by the number, patient by WhatsApp id or phone (blind indexes; the
    // columns themselves are ciphertext), their open conversation for the chat, the message stored
    // encrypted with the conversation's counters, all in one transaction with its audit events.
    let body = serde_json::to_vec(&body).map_err(|e| Error::Config(format!("webhook body: {e}")))?;
    let ingest = db.whatsapp().ingest(&body).await?;
    println!(
        "ingest         {} stored, {} duplicates, {} patients created (retrying the same body stores nothing)",
        ingest.messages_stored, ingest.duplicates_skipped, ingest.patients_created
    );
    let scope = db.scope(seed.hospital_id, Actor::system("whatsapp-webhook")).await?;
    let stored =
        scope.messages().find_by_whatsapp_message_id(&wamid).await?.ok_or(Error::NotFound { entity: "message" })?;
    let patient = scope.patients().get(stored.patient_id).await?;
    println!(
        "patient        {} ({} {}.)",
        patient.id,
        patient.first_name.expose()?,
        patient.last_name.expose()?.chars().next().unwrap_or(' ')
    );
    let conversation = scope.conversations().get(stored.conversation_id).await?;
    println!("conversation   {} ({:?})", conversation.id, conversation.status);
    println!("stored         message {} (content encrypted with AES-256-GCM)", stored.id);

    // 4. Read the history back, newest first, decrypted.
    let history = scope.messages().history(conversation.id, PageRequest::first(5)).await?;
    println!("\nhistory        latest {} messages, newest first:", history.items.len());
    for m in &history.items {
        let who = match m.sender_kind {
            SenderKind::Patient => "patient",
            SenderKind::Bot => "bot",
            SenderKind::Provider => "provider",
            SenderKind::System => "system",
        };
        let body = match &m.content {
            Some(c) => c.expose().map(String::as_str).unwrap_or("(erased)"),
            None => "(no text)",
        };
        println!("  {} {:<8} {}", m.sent_at.format("%Y-%m-%d %H:%M:%S"), who, body);
    }
    let conversation = scope.conversations().get(conversation.id).await?;
    println!(
        "\nconversation   now has {} messages; last at {}",
        conversation.message_count, conversation.last_message_at
    );

    // 5. "Who looked at my record?": Carlos's own access report over the last hour.
    let carlos = db.scope(seed.hospital_id, Actor::patient(patient.id)).await?;
    let now = chrono::Utc::now();
    let report = carlos
        .audit()
        .access_report(patient.id, now - chrono::Duration::hours(1), now, PageRequest::first(500))
        .await?;
    let latest = &report.items[report.items.len().saturating_sub(6)..];
    println!("\naccess report  who touched Carlos's data in the last hour: {} events, the latest:", report.items.len());
    for e in latest {
        println!("  {}", describe(e));
    }
    if let Some(e) = report.items.iter().rev().find(|e| e.action == austa_core::model::AuditAction::Read) {
        println!("\nFHIR           {}", austa_core::audit::to_fhir(e));
    }
    let admin = db.scope(seed.hospital_id, Actor::platform()).await?;
    let chain = admin.audit().verify().await?;
    println!(
        "\naudit chain    {} events verified, head at {}: {}",
        chain.verified,
        chain.head_seq,
        if chain.is_intact() { "intact" } else { "BROKEN" }
    );
    // A signed checkpoint, for someone outside the database to keep (here with a throwaway key; in
    // production AUSTA_AUDIT_SIGNING_KEY_FILE or a KMS): the log must keep extending it.
    let signer = Ed25519Signer::generate("quickstart")?;
    let note = admin.audit().checkpoint(&signer).await?;
    let extends = admin.audit().verify_against(&note, &CheckpointVerifier::of(&signer)?).await?.is_intact();
    println!(
        "checkpoint     {} events under Merkle root {}, signed; the log extends it: {extends}",
        note.lines().nth(1).unwrap_or_default(),
        note.lines().nth(2).unwrap_or_default()
    );
    db.close().await;
    Ok(())
}

/// One line of an access report: when, who, what, why.
fn describe(e: &AuditLog) -> String {
    let who = match (&e.actor_name, e.actor_id) {
        (Some(name), _) => format!("{} {name}", e.actor_kind.as_str()),
        (None, Some(id)) => format!("{} {}", e.actor_kind.as_str(), &id.to_string()[..8]),
        (None, None) => e.actor_kind.as_str().to_string(),
    };
    format!(
        "{}  {:<26} {:<6} {:<13} {} row(s){}",
        e.occurred_at.format("%H:%M:%S%.3f"),
        who,
        e.action.as_str(),
        e.entity_type.as_str(),
        e.record_count,
        e.purpose.as_deref().map(|p| format!("  purpose: {p}")).unwrap_or_default()
    )
}
