//! The library as a service would use it, on one backend: patients through the bulk path, webhook
//! bodies through `db.whatsapp().ingest`, lookups, histories, bulk health data, audit verification.
//! On PostgreSQL it connects as the runtime role `austa_app` (row-level security on), as in
//! production; the owner only migrates.

use std::sync::Arc;

use austa_core::crypto::{DataKey, KeyProvider, LocalKeyProvider};
use austa_core::model::{
    AppEvent, HealthCategory, HealthDataType, NewHealthData, NewOrganization, NewPatient, OrganizationType,
};
use austa_core::repo::PageRequest;
use austa_core::{Actor, Database, Scope};
use uuid::Uuid;

use crate::baseline::Result;
use crate::synthetic;
use crate::target::{as_user, Backend, Target};

/// The library on one backend, with one organization.
pub struct Library {
    /// The database handle.
    pub db: Database,
    /// The scope every workload runs in.
    pub scope: Scope,
    /// Whether PostgreSQL runs under row-level security (as `austa_app`).
    pub as_runtime_role: bool,
    /// The database's URL as its owner (who may `ANALYZE` its tables).
    owner_url: String,
}

impl Library {
    /// Opens and migrates the target, and prepares an organization with its WhatsApp number.
    pub async fn open(target: &Target) -> Result<Self> {
        let url = target.database("library").await?;
        let keys: Arc<dyn KeyProvider> = Arc::new(LocalKeyProvider::from_key(&DataKey::generate(), "bench"));
        let owner = Database::connect_with(&url, keys.clone()).await?;
        owner.migrate().await?;
        let (db, as_runtime_role) = match target.backend {
            Backend::Sqlite => (owner, false),
            Backend::Postgres => {
                owner.close().await;
                let admin = sqlx::PgPool::connect(&url).await?;
                let _ = sqlx::query("ALTER ROLE austa_app LOGIN").execute(&admin).await;
                admin.close().await;
                match Database::connect_with(&as_user(&url, "austa_app"), keys.clone()).await {
                    Ok(db) => (db, true),
                    Err(e) => {
                        eprintln!("note: cannot connect as austa_app ({e}); the library runs as the owner");
                        (Database::connect_with(&url, keys).await?, false)
                    }
                }
            }
        };
        let org = db.organizations().create(NewOrganization::new("Hospital Bench", OrganizationType::Hospital)).await?;
        let scope = db.scope(org.id, Actor::platform()).await?;
        scope.register_whatsapp_number(synthetic::BUSINESS_NUMBER).await?;
        Ok(Self { db, scope, as_runtime_role, owner_url: url })
    }

    /// Patients `range` through `create_many`, `batch` per call.
    pub async fn add_patients(&self, range: std::ops::Range<usize>, batch: usize) -> Result<()> {
        let all: Vec<usize> = range.collect();
        for chunk in all.chunks(batch) {
            let news = chunk.iter().map(|&i| NewPatient {
                first_name: "Paciente".into(),
                last_name: format!("Número {i}").into(),
                phone: synthetic::phone(i).into(),
                whatsapp_id: Some(synthetic::wa_id(i).into()),
                ..Default::default()
            });
            self.scope.patients().create_many(news).await?;
        }
        Ok(())
    }

    /// Refreshes the planner's statistics of every table, as the owner (see
    /// [`Subject::analyze`](crate::subject::Subject::analyze)).
    pub async fn analyze(&self) -> Result<()> {
        crate::target::analyze(&self.owner_url).await
    }

    /// Ingests one webhook body.
    pub async fn ingest(&self, body: &str) -> Result<()> {
        self.db.whatsapp().ingest(body.as_bytes()).await?;
        Ok(())
    }

    /// Looks a patient up by phone; whether it was found.
    pub async fn lookup(&self, phone: &str) -> Result<bool> {
        Ok(self.scope.patients().find_by_phone(phone).await?.is_some())
    }

    /// The id of patient `i`'s open conversation.
    pub async fn conversation_of(&self, i: usize) -> Result<Uuid> {
        let c = self.scope.conversations().open_for_chat(&synthetic::wa_id(i)).await?;
        Ok(c.ok_or("no open conversation")?.id)
    }

    /// Reads the latest 50 messages of a conversation; how many came back.
    pub async fn history(&self, conversation: Uuid) -> Result<usize> {
        Ok(self.scope.messages().history(conversation, PageRequest::first(50)).await?.items.len())
    }

    /// The id of synthetic patient `i`.
    pub async fn patient_id(&self, i: usize) -> Result<Uuid> {
        let p = self.scope.patients().find_by_phone(&synthetic::phone(i)).await?;
        Ok(p.ok_or("no such patient")?.id)
    }

    /// `rows` vital signs readings of `patient` through `create_many`, `batch` per call.
    pub async fn bulk(&self, patient: Uuid, rows: usize, batch: usize) -> Result<()> {
        let all: Vec<usize> = (0..rows).collect();
        for chunk in all.chunks(batch) {
            let news = chunk.iter().map(|&i| NewHealthData {
                vital_signs: Some(synthetic::vital_signs(i).into()),
                ..NewHealthData::new(patient, HealthDataType::VitalSign, HealthCategory::Cardiology)
            });
            self.scope.health_data().create_many(news).await?;
        }
        Ok(())
    }

    /// Streams every health data row of the organization (keyset pages of `page` rows, decrypted),
    /// returning how many there were.
    pub async fn export(&self, page: u32) -> Result<u64> {
        let repo = self.scope.health_data();
        let mut request = PageRequest::first(page);
        let mut n = 0u64;
        loop {
            let p = repo.list(request).await?;
            n += p.items.len() as u64;
            match p.next {
                Some(next) => request = PageRequest::after(next, page),
                None => return Ok(n),
            }
        }
    }

    /// Records `n` application events (`LOGIN`) from `writers` concurrent tasks.
    pub async fn fill_audit(self: &Arc<Self>, n: usize, writers: usize) -> Result<()> {
        let mut tasks = Vec::new();
        for w in 0..writers {
            let me = self.clone();
            let share = n / writers + usize::from(w < n % writers);
            tasks.push(tokio::spawn(async move {
                for _ in 0..share {
                    me.scope.audit().record(AppEvent::Login).await?;
                }
                Ok::<_, austa_core::Error>(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        self.db.flush_audit().await?;
        Ok(())
    }

    /// Verifies the organization's chain; returns the events verified.
    pub async fn verify(&self) -> Result<u64> {
        let report = self.scope.audit().verify().await?;
        if !report.is_intact() {
            return Err("the library's audit chain is broken".into());
        }
        Ok(report.verified)
    }
}
