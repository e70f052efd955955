//! The benchmarks of austa-core: criterion micro-benchmarks (`benches/`), and the workload runner
//! (`src/bin/workloads.rs`) that measures the platform's workloads on the library and on two baselines
//! written here with sqlx (see [`baseline`]). Modules by concern: [`target`] (databases per backend),
//! [`synthetic`] (data), [`library`] and [`baseline`] (the subjects), [`subject`] (one interface over
//! them), [`stats`], [`memory`] and [`report`].
//!
//! The fixtures below serve the criterion benchmarks.

pub mod baseline;
pub mod library;
pub mod memory;
pub mod report;
pub mod stats;
pub mod subject;
pub mod synthetic;
pub mod target;

use austa_core::crypto::{DataKey, LocalKeyProvider};
use austa_core::model::{
    MessageDirection, MessageType, NewConversation, NewOrganization, NewPatient, OrganizationType, SenderKind,
};
use austa_core::{Actor, Database, Result, Scope};
use uuid::Uuid;

/// A migrated SQLite database in a temporary directory (removed on drop).
pub struct Fixture {
    /// The database.
    pub db: Database,
    /// A system scope in the fixture's organization.
    pub scope: Scope,
    _dir: tempfile::TempDir,
}

/// A fresh SQLite database with one organization.
pub async fn sqlite_fixture() -> Result<Fixture> {
    let dir = tempfile::tempdir().map_err(|e| austa_core::Error::Config(e.to_string()))?;
    let url = format!("sqlite://{}", dir.path().join("bench.db").display());
    let db = Database::connect(&url, LocalKeyProvider::from_key(&DataKey::generate(), "bench")).await?;
    db.migrate().await?;
    let org = db.organizations().create(NewOrganization::new("Hospital Bench", OrganizationType::Hospital)).await?;
    let scope = db.scope(org.id, Actor::platform()).await?;
    Ok(Fixture { db, scope, _dir: dir })
}

/// Creates a patient with one conversation holding `messages` inbound text messages; returns the
/// conversation id.
pub async fn patient_with_messages(scope: &Scope, phone: &str, messages: usize) -> Result<Uuid> {
    let patient = scope
        .patients()
        .create(NewPatient {
            first_name: "Carlos".into(),
            last_name: "Mendes".into(),
            phone: phone.into(),
            ..Default::default()
        })
        .await?;
    let conversation = scope
        .conversations()
        .create(NewConversation { patient_id: patient.id, whatsapp_chat_id: phone.into(), ..Default::default() })
        .await?;
    for i in 0..messages {
        scope
            .messages()
            .append(austa_core::model::NewMessage {
                content: Some(format!("Mensagem {i}: tomei a Losartana 50mg às 8h, posso tomar café?").into()),
                ..austa_core::model::NewMessage::new(
                    conversation.id,
                    MessageDirection::Inbound,
                    MessageType::Text,
                    SenderKind::Patient,
                )
            })
            .await?;
    }
    Ok(conversation.id)
}
