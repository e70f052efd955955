//! Tasy ERP integration: the per-organization connection settings ([`TasyIntegration`]) and the record
//! of each synchronization run ([`TasySyncLog`]).
//!
//! Design decisions:
//! * The API key is a credential: it is encrypted at rest, redacted in `Debug` and, unlike other
//!   sensitive fields, never serialized (write-only; read it with [`Sensitive::expose`]).
//! * The instance URL is a base URL: `https://` or `http://`, a host name or IP address, an optional
//!   port and path, and nothing that could carry a secret into a plaintext column (no user info, query
//!   string or fragment).
//! * A sync run's lifecycle is `start` then `finish`; finishing updates the integration's schedule and
//!   counters in the same transaction. Sync logs have no `updated_at` and are not `Updatable`: the only
//!   change a run ever sees is its completion. The original's `recordsFailured` is `records_failed`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::record::Record;
use uuid::Uuid;

use super::enums::{IntegrationStatus, SyncDirection, SyncStatus, SyncType};
use austa_crypto::Sensitive;

/// Connection and schedule of one organization's Tasy ERP instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Record)]
#[record(table = "tasy_integrations", soft_delete)]
pub struct TasyIntegration {
    /// UUIDv7 id.
    pub id: Uuid,
    /// Owning organization.
    #[record(organization)]
    pub organization_id: Uuid,
    /// Base URL of the Tasy instance (scheme and host lower case, no trailing slash).
    pub tasy_instance_url: String,
    /// Tasy API version, default `v1`.
    pub api_version: String,
    /// Whether the integration is enabled.
    pub is_active: bool,
    /// API key (encrypted; write-only: never serialized).
    #[serde(skip_serializing, default)]
    pub api_key: Sensitive<String>,
    /// OAuth client id, if the instance uses one.
    pub client_id: Option<String>,
    /// Last successful authentication against the instance.
    pub last_auth_at: Option<DateTime<Utc>>,
    /// Whether scheduled synchronization runs.
    pub sync_enabled: bool,
    /// Seconds between scheduled runs, default 300.
    pub sync_interval_seconds: i64,
    /// Completion time of the last run.
    pub last_sync_at: Option<DateTime<Utc>>,
    /// When the next run is due (`None`: due now).
    pub next_sync_at: Option<DateTime<Utc>>,
    /// Field mapping configuration (a JSON object).
    pub field_mapping: serde_json::Value,
    /// Data filters for sync (a JSON object).
    pub filters: Option<serde_json::Value>,
    /// Health of the integration.
    pub status: IntegrationStatus,
    /// Number of failed runs.
    pub error_count: i64,
    /// Error message of the last failed run.
    pub last_error: Option<String>,
    /// Completion time of the last failed run.
    pub last_error_at: Option<DateTime<Utc>>,
    /// Mean duration of finished runs, in seconds.
    pub avg_sync_time_seconds: Option<f64>,
    /// Records processed (succeeded, failed or skipped) over all runs.
    pub records_processed: i64,
    /// Records that failed over all runs (the original's `recordsFailured`).
    pub records_failed: i64,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Soft-deletion time.
    pub deleted_at: Option<DateTime<Utc>>,
}

/// Input of `scope.tasy_integrations().create(...)`.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NewTasyIntegration {
    /// Base URL, `https://` or `http://`, 8 to 2048 characters, no user info, query or fragment.
    pub tasy_instance_url: String,
    /// API version, 1 to 20 characters; default `v1`.
    pub api_version: Option<String>,
    /// API key, 1 to 4096 characters (required; stored encrypted).
    pub api_key: Sensitive<String>,
    /// OAuth client id, 1 to 200 characters.
    pub client_id: Option<String>,
    /// Whether scheduled synchronization runs; default true.
    pub sync_enabled: Option<bool>,
    /// Seconds between runs, 1 to 31 536 000 (one year); default 300.
    pub sync_interval_seconds: Option<i64>,
    /// When the first run is due; default `None` (due now).
    pub next_sync_at: Option<DateTime<Utc>>,
    /// Field mapping configuration: a JSON object (required), at most 64 KiB.
    pub field_mapping: serde_json::Value,
    /// Data filters: a JSON object, at most 64 KiB.
    pub filters: Option<serde_json::Value>,
}

/// Input of `scope.tasy_integrations().update(...)`. Run counters and error fields are maintained by
/// finishing sync runs and are not patchable.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TasyIntegrationPatch {
    /// New base URL.
    pub tasy_instance_url: Option<String>,
    /// New API version.
    pub api_version: Option<String>,
    /// Enable or disable.
    pub is_active: Option<bool>,
    /// New API key (rotation).
    pub api_key: Option<Sensitive<String>>,
    /// New client id (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub client_id: Option<Option<String>>,
    /// Record an authentication (`Some(None)` clears it).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub last_auth_at: Option<Option<DateTime<Utc>>>,
    /// Enable or disable scheduled runs.
    pub sync_enabled: Option<bool>,
    /// New interval in seconds.
    pub sync_interval_seconds: Option<i64>,
    /// Reschedule the next run (`Some(None)`: due now).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub next_sync_at: Option<Option<DateTime<Utc>>>,
    /// New field mapping.
    pub field_mapping: Option<serde_json::Value>,
    /// New filters (`Some(None)` clears them).
    #[serde(default, deserialize_with = "crate::model::double_option")]
    pub filters: Option<Option<serde_json::Value>>,
    /// New status (e.g. `MAINTENANCE`, `SUSPENDED`, or back to `ACTIVE`).
    pub status: Option<IntegrationStatus>,
}

/// One synchronization run of a [`TasyIntegration`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Record)]
#[record(table = "tasy_sync_logs")]
pub struct TasySyncLog {
    /// UUIDv7 id.
    pub id: Uuid,
    /// Owning organization.
    #[record(organization)]
    pub organization_id: Uuid,
    /// The integration that ran.
    pub integration_id: Uuid,
    /// Full, incremental, differential or real-time.
    pub sync_type: SyncType,
    /// Import, export or both.
    pub direction: SyncDirection,
    /// Kind of record synced (e.g. `patient`, `appointment`).
    pub record_type: String,
    /// Records the run tried to process.
    pub records_attempted: i64,
    /// Records processed successfully.
    pub records_succeeded: i64,
    /// Records that failed.
    pub records_failed: i64,
    /// Records skipped.
    pub records_skipped: i64,
    /// `RUNNING` until finished, then `COMPLETED`, `FAILED` or `CANCELLED`.
    pub status: SyncStatus,
    /// Start time.
    pub started_at: DateTime<Utc>,
    /// Completion time.
    pub completed_at: Option<DateTime<Utc>>,
    /// `completed_at - started_at` in seconds.
    pub duration_seconds: Option<f64>,
    /// Error message of a failed run.
    pub error_message: Option<String>,
    /// Structured error information.
    pub error_details: Option<serde_json::Value>,
    /// Summary of the run's results.
    pub summary: Option<serde_json::Value>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// What a sync run is: input of `scope.tasy_sync_logs().start(integration_id, ...)`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTasySync {
    /// Full, incremental, differential or real-time.
    pub sync_type: SyncType,
    /// Import, export or both.
    pub direction: SyncDirection,
    /// Kind of record synced, 1 to 100 characters.
    pub record_type: String,
}

/// How a sync run ended: input of `scope.tasy_sync_logs().finish(id, ...)`.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SyncOutcome {
    /// Records the run tried to process (at least the sum of the other three).
    pub records_attempted: i64,
    /// Records processed successfully.
    pub records_succeeded: i64,
    /// Records that failed.
    pub records_failed: i64,
    /// Records skipped.
    pub records_skipped: i64,
    /// `COMPLETED`, `FAILED` or `CANCELLED`.
    pub status: SyncStatus,
    /// Error message, 1 to 4000 characters. Must not contain patient data (stored in plain text).
    pub error_message: Option<String>,
    /// Structured error information (JSON, at most 64 KiB).
    pub error_details: Option<serde_json::Value>,
    /// Summary of the results (JSON, at most 64 KiB).
    pub summary: Option<serde_json::Value>,
}

impl SyncOutcome {
    /// A successful run with the given counts.
    pub fn completed(attempted: i64, succeeded: i64, failed: i64, skipped: i64) -> Self {
        Self {
            records_attempted: attempted,
            records_succeeded: succeeded,
            records_failed: failed,
            records_skipped: skipped,
            status: SyncStatus::Completed,
            error_message: None,
            error_details: None,
            summary: None,
        }
    }

    /// A failed run with an error message and no records processed.
    pub fn failed(error_message: impl Into<String>) -> Self {
        Self { status: SyncStatus::Failed, error_message: Some(error_message.into()), ..Self::completed(0, 0, 0, 0) }
    }

    /// A cancelled run with no records processed.
    pub fn cancelled() -> Self {
        Self { status: SyncStatus::Cancelled, ..Self::completed(0, 0, 0, 0) }
    }
}
