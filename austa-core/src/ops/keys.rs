//! `Database::key_status`: what the key store holds, per organization, without unwrapping anything.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::db::{Database, Pool};
use crate::error::{Error, Result};
use crate::keys::RotationStatus;
use crate::scope::Scope;

/// One organization's keys.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OrganizationKeyStatus {
    /// The organization.
    pub organization_id: Uuid,
    /// The version of its active key (`None`: no key yet).
    pub active_version: Option<i64>,
    /// Retired versions (kept: older ciphertexts and audit events still name them).
    pub retired_versions: i64,
    /// Active patient keys.
    pub patient_keys: i64,
    /// Patients whose keys were destroyed (crypto-shredded).
    pub shredded_patients: i64,
    /// Data key rotations not completed yet (resume them with `austa keys rotate`).
    pub running_rotations: Vec<RotationStatus>,
}

/// The key store's state.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KeyStatus {
    /// When the key check value was written (the master key was set).
    pub master_key_set_at: Option<String>,
    /// When the master key was last rotated.
    pub master_key_rotated_at: Option<String>,
    /// Every organization that has keys.
    pub organizations: Vec<OrganizationKeyStatus>,
}

fn bad_id() -> Error {
    Error::CorruptData("key store: an id is not a UUID".into())
}

impl Database {
    /// The key store's state: master key dates, and per organization its key versions, patient keys,
    /// shredded patients and unfinished rotations. Unwraps no key; the master key was checked when the
    /// database was opened.
    pub async fn key_status(&self) -> Result<KeyStatus> {
        let store = self.inner.keyring.store();
        let meta = "SELECT CAST(created_at AS TEXT), CAST(rotated_at AS TEXT) FROM keystore_meta WHERE id = 1";
        let orgs = "SELECT CAST(organization_id AS TEXT), \
                      MAX(CASE WHEN state = 'ACTIVE' THEN version END), \
                      COUNT(CASE WHEN state = 'RETIRED' THEN 1 END) \
                    FROM organization_keys GROUP BY organization_id ORDER BY 1";
        let patients = "SELECT CAST(organization_id AS TEXT), \
                          COUNT(CASE WHEN state = 'ACTIVE' THEN 1 END), \
                          COUNT(DISTINCT CASE WHEN state = 'DESTROYED' THEN patient_id END) \
                        FROM patient_keys GROUP BY organization_id";
        type MetaRow = (Option<String>, Option<String>);
        // COUNT, not SUM: it is a 64-bit integer on both backends (PostgreSQL's SUM of integers is numeric).
        type OrgRow = (String, Option<i64>, i64);
        type PatientRow = (String, i64, i64);
        let (meta, orgs, patients): (Option<MetaRow>, Vec<OrgRow>, Vec<PatientRow>) = match store {
            Pool::Sqlite(p) => (
                sqlx::query_as(meta).fetch_optional(p).await?,
                sqlx::query_as(orgs).fetch_all(p).await?,
                sqlx::query_as(patients).fetch_all(p).await?,
            ),
            Pool::Postgres(p) => (
                sqlx::query_as(meta).fetch_optional(p).await?,
                sqlx::query_as(orgs).fetch_all(p).await?,
                sqlx::query_as(patients).fetch_all(p).await?,
            ),
        };
        let patients: BTreeMap<String, (i64, i64)> =
            patients.into_iter().map(|(o, active, shredded)| (o, (active, shredded))).collect();
        let mut organizations = Vec::with_capacity(orgs.len());
        for (org, active_version, retired) in orgs {
            let organization_id = Uuid::parse_str(&org).map_err(|_| bad_id())?;
            let (patient_keys, shredded_patients) = patients.get(&org).copied().unwrap_or((0, 0));
            // Keys of an organization whose insert failed have no row to scope to.
            let running_rotations = if self.organizations().exists(organization_id).await? {
                Scope::platform_for(self, organization_id).keys().running_rotations().await?
            } else {
                Vec::new()
            };
            organizations.push(OrganizationKeyStatus {
                organization_id,
                active_version,
                retired_versions: retired,
                patient_keys,
                shredded_patients,
                running_rotations,
            });
        }
        let (master_key_set_at, master_key_rotated_at) = meta.unwrap_or((None, None));
        Ok(KeyStatus { master_key_set_at, master_key_rotated_at, organizations })
    }
}

impl Database {
    /// The organization a patient belongs to, for operator commands given only a patient id. Reads
    /// across organizations: on PostgreSQL the runtime role sees no patient here (row-level security),
    /// so operators pass the organization or connect as the owner.
    pub async fn organization_of_patient(&self, patient_id: Uuid) -> Result<Uuid> {
        let found: Option<String> = match &self.inner.pool {
            Pool::Sqlite(p) => {
                sqlx::query_scalar("SELECT organization_id FROM patients WHERE id = $1")
                    .bind(patient_id.hyphenated().to_string())
                    .fetch_optional(p)
                    .await?
            }
            Pool::Postgres(p) => {
                sqlx::query_scalar("SELECT organization_id::text FROM patients WHERE id = $1")
                    .bind(patient_id)
                    .fetch_optional(p)
                    .await?
            }
        };
        let org = found.ok_or_else(|| Error::not_found("patient"))?;
        Uuid::parse_str(&org).map_err(|_| bad_id())
    }
}
