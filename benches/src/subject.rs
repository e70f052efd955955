//! What a workload runs against: the library or one of the baselines, behind one interface.

use std::sync::Arc;

use uuid::Uuid;

use crate::baseline::{Baseline, Mode, Result};
use crate::library::Library;

/// The library or a baseline.
#[derive(Clone)]
pub enum Subject {
    /// The library.
    Library(Arc<Library>),
    /// A hand-written baseline.
    Baseline(Arc<Baseline>, Mode),
}

impl Subject {
    /// The column name of the subject in the report.
    pub fn name(&self) -> &'static str {
        match self {
            Subject::Library(_) => "library",
            Subject::Baseline(_, Mode::Plaintext) => "plaintext",
            Subject::Baseline(_, Mode::HandSecured) => "hand-secured",
        }
    }

    /// Inserts synthetic patients `range`, in batches.
    pub async fn add_patients(&self, range: std::ops::Range<usize>, batch: usize) -> Result<()> {
        match self {
            Subject::Library(l) => l.add_patients(range, batch).await,
            Subject::Baseline(b, _) => b.add_patients(range, batch).await,
        }
    }

    /// Refreshes the planner's statistics of the subject's tables. A service that has run for a
    /// while has them (autovacuum analyzes a table after 10 % of it changed, at most a minute later);
    /// a database filled seconds ago has none, and the planner then guesses every table tiny and
    /// picks indexes by chance. The runner calls it after the set-up and the warm-up, for every
    /// subject alike.
    pub async fn analyze(&self) -> Result<()> {
        match self {
            Subject::Library(l) => l.analyze().await,
            Subject::Baseline(b, _) => b.analyze().await,
        }
    }

    /// Ingests one webhook body.
    pub async fn ingest(&self, body: &str) -> Result<()> {
        match self {
            Subject::Library(l) => l.ingest(body).await,
            Subject::Baseline(b, _) => b.ingest(body).await,
        }
    }

    /// Looks a patient up by phone; whether it was found.
    pub async fn lookup(&self, phone: &str) -> Result<bool> {
        match self {
            Subject::Library(l) => l.lookup(phone).await,
            Subject::Baseline(b, _) => b.lookup(phone).await,
        }
    }

    /// The conversation of synthetic patient `i`.
    pub async fn conversation_of(&self, i: usize) -> Result<Uuid> {
        match self {
            Subject::Library(l) => l.conversation_of(i).await,
            Subject::Baseline(b, _) => b.conversation_of(i).await,
        }
    }

    /// Reads the latest 50 messages of a conversation; how many came back.
    pub async fn history(&self, conversation: Uuid) -> Result<usize> {
        match self {
            Subject::Library(l) => l.history(conversation).await,
            Subject::Baseline(b, _) => b.history(conversation).await,
        }
    }

    /// The id of synthetic patient `i`.
    pub async fn patient_id(&self, i: usize) -> Result<Uuid> {
        match self {
            Subject::Library(l) => l.patient_id(i).await,
            Subject::Baseline(b, _) => b.patient_id(i).await,
        }
    }

    /// Imports `rows` health data rows for `patient`, `batch` at a time.
    pub async fn bulk(&self, patient: Uuid, rows: usize, batch: usize) -> Result<()> {
        match self {
            Subject::Library(l) => l.bulk(patient, rows, batch).await,
            Subject::Baseline(b, _) => b.bulk(patient, rows, batch).await,
        }
    }

    /// Brings the audit trail to at least `events` events; `None` for the plaintext baseline.
    pub async fn fill_audit(&self, events: usize, writers: usize) -> Result<Option<()>> {
        match self {
            Subject::Library(l) => {
                let have = l.verify().await? as usize;
                l.fill_audit(events.saturating_sub(have), writers).await.map(Some)
            }
            Subject::Baseline(_, Mode::Plaintext) => Ok(None),
            Subject::Baseline(b, Mode::HandSecured) => {
                let have = b.verify().await? as usize;
                b.fill_audit(events.saturating_sub(have), 1_000).await.map(Some)
            }
        }
    }

    /// Verifies the audit chain; `None` for the plaintext baseline.
    pub async fn verify(&self) -> Result<Option<u64>> {
        match self {
            Subject::Library(l) => l.verify().await.map(Some),
            Subject::Baseline(_, Mode::Plaintext) => Ok(None),
            Subject::Baseline(b, Mode::HandSecured) => b.verify().await.map(Some),
        }
    }

    /// Closes the subject's pools.
    pub async fn close(&self) {
        match self {
            Subject::Library(l) => l.db.close().await,
            Subject::Baseline(b, _) => b.close().await,
        }
    }
}
