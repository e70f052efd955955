//! Tasy integrations and their sync runs.
//!
//! * [`TasyIntegrations`]: the generic operations plus [`list_active`](TasyIntegrations::list_active)
//!   and [`due_for_sync`](TasyIntegrations::due_for_sync), the scheduler's query.
//! * [`TasySyncLogs`]: [`start`](TasySyncLogs::start) a run, [`finish`](TasySyncLogs::finish) it once,
//!   and list the runs of an integration. Finishing writes the run and the integration's schedule,
//!   counters and status in one transaction (the run first, then the integration, both locked on
//!   PostgreSQL), so the integration never disagrees with its runs.
//!
//! Outcome rules applied to the integration when a run finishes:
//! * `last_sync_at` = the run's `completed_at`; `next_sync_at` = `completed_at + sync_interval_seconds`;
//! * `records_processed` += succeeded + failed + skipped; `records_failed` += failed;
//! * `avg_sync_time_seconds` = running mean of the durations of all finished runs;
//! * `FAILED`: `error_count` + 1, `last_error`, `last_error_at`, status `ERROR`; `COMPLETED`: status
//!   `ACTIVE`; `CANCELLED` leaves status and errors alone. A status set by an operator (`INACTIVE`,
//!   `SUSPENDED`, `MAINTENANCE`) is never overwritten by a run's outcome: only `ACTIVE` and `ERROR`
//!   switch into each other.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use super::{patch, rows, Model, Page, PageRequest, Repo, SoftDeletable, Updatable};
use crate::access::{Action, Resource};
use crate::db::{Filter, Query, RowLock, Tx};
use crate::error::{Error, Result};
use crate::kernel::Record;
use crate::kernel::Sealed;
use crate::kernel::{check, AuditTx, Event};
use crate::model::{
    AuditAction, IntegrationStatus, NewTasyIntegration, NewTasySync, SyncOutcome, SyncStatus, TasyIntegration,
    TasyIntegrationPatch, TasySyncLog, TasySyncStart,
};
use crate::scope::Scope;
use crate::validate;
use austa_crypto::Sensitive;

/// Repository of Tasy integrations.
pub type TasyIntegrations<'s> = Repo<'s, TasyIntegration>;

/// Repository of Tasy sync runs.
pub type TasySyncLogs<'s> = Repo<'s, TasySyncLog>;

impl Scope {
    /// Tasy integrations of this scope's organization.
    pub fn tasy_integrations(&self) -> TasyIntegrations<'_> {
        Repo::new(self)
    }

    /// Tasy sync runs of this scope's organization.
    pub fn tasy_sync_logs(&self) -> TasySyncLogs<'_> {
        Repo::new(self)
    }
}

/// Longest accepted sync interval: one year.
const MAX_INTERVAL_SECONDS: i64 = 31_536_000;
/// Largest accepted JSON document (serialized) for mappings, filters, error details and summaries.
const MAX_JSON_BYTES: usize = 64 * 1024;

/// Checks and normalizes a Tasy instance base URL without a URL crate: scheme `https` or `http`,
/// a DNS host name, IPv4 address or bracketed IPv6 address, an optional port and an optional path.
/// User info, query strings and fragments are rejected so that no credential can end up in this
/// plaintext column. Scheme and host are lower-cased and trailing slashes removed.
fn instance_url(field: &str, input: &str) -> Result<String> {
    let fail = |reason: &str| Error::validation(field, reason);
    let s = input.trim();
    if !(8..=2048).contains(&s.chars().count()) {
        return Err(fail("must be 8 to 2048 characters"));
    }
    if !s.is_ascii() || s.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
        return Err(fail("must be an ASCII URL without spaces (use punycode for international hosts)"));
    }
    let lower = s.to_ascii_lowercase();
    let (scheme, rest) = if lower.starts_with("https://") {
        ("https", &s[8..])
    } else if lower.starts_with("http://") {
        ("http", &s[7..])
    } else {
        return Err(fail("must start with https:// or http://"));
    };
    if rest.contains(['?', '#']) {
        return Err(fail("must not have a query string or fragment"));
    }
    let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
    if authority.contains('@') {
        return Err(fail("must not contain user info (credentials belong in api_key)"));
    }
    let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
        let (inner, after) = bracketed.split_once(']').ok_or_else(|| fail("has an unterminated IPv6 address"))?;
        if inner.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(fail("has an invalid IPv6 address"));
        }
        let port = match after {
            "" => None,
            p => Some(p.strip_prefix(':').ok_or_else(|| fail("has an invalid port"))?),
        };
        (format!("[{}]", inner.to_ascii_lowercase()), port)
    } else {
        let (h, p) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        (dns_host(h).ok_or_else(|| fail("must have a valid host name or IP address"))?, p)
    };
    let port = match port {
        None => String::new(),
        Some(p) => {
            let ok = (1..=5).contains(&p.len())
                && p.bytes().all(|b| b.is_ascii_digit())
                && p.parse::<u16>().is_ok_and(|n| n != 0);
            if !ok {
                return Err(fail("has an invalid port"));
            }
            format!(":{p}")
        }
    };
    const PATH_PUNCTUATION: &[u8] = b"-._~!$&'()*+,;=:@/%";
    if !path.bytes().all(|b| b.is_ascii_alphanumeric() || PATH_PUNCTUATION.contains(&b)) {
        return Err(fail("has characters not allowed in a URL path"));
    }
    let normalized = format!("{scheme}://{host}{port}{}", path.trim_end_matches('/'));
    if normalized.len() < 8 {
        return Err(fail("must be 8 to 2048 characters"));
    }
    Ok(normalized)
}

/// A lower-cased DNS host name (labels of letters, digits and inner hyphens) or dotted IPv4 address.
fn dns_host(host: &str) -> Option<String> {
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if host.is_empty() || host.len() > 253 {
        return None;
    }
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return host.parse::<std::net::Ipv4Addr>().ok().map(|_| host);
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    host.split('.').all(label_ok).then_some(host)
}

/// Checks the serialized size of a JSON value.
fn json_size(field: &str, v: &serde_json::Value) -> Result<()> {
    let len = serde_json::to_vec(v).map_err(|_| Error::validation(field, "is not serializable JSON"))?.len();
    if len > MAX_JSON_BYTES {
        return Err(Error::validation(field, format!("must be at most {MAX_JSON_BYTES} bytes of JSON")));
    }
    Ok(())
}

/// Checks that a JSON value is an object of bounded size.
fn json_object(field: &str, v: &serde_json::Value) -> Result<()> {
    if !v.is_object() {
        return Err(Error::validation(field, "must be a JSON object"));
    }
    json_size(field, v)
}

fn api_version(v: &str) -> Result<String> {
    validate::text("api_version", v, 1, 20)
}

fn api_key(v: &Sensitive<String>) -> Result<Sensitive<String>> {
    validate::text("api_key", v.expose()?, 1, 4096).map(Sensitive::new)
}

fn client_id(v: Option<&str>) -> Result<Option<String>> {
    validate::opt_text("client_id", v, 1, 200)
}

fn interval(v: i64) -> Result<i64> {
    if !(1..=MAX_INTERVAL_SECONDS).contains(&v) {
        return Err(Error::validation(
            "sync_interval_seconds",
            format!("must be between 1 and {MAX_INTERVAL_SECONDS}"),
        ));
    }
    Ok(v)
}

impl Sealed for TasyIntegration {}

impl Model for TasyIntegration {
    type New = NewTasyIntegration;

    fn build(organization: Uuid, id: Uuid, now: DateTime<Utc>, new: NewTasyIntegration) -> Result<Self> {
        json_object("field_mapping", &new.field_mapping)?;
        if let Some(f) = &new.filters {
            json_object("filters", f)?;
        }
        Ok(TasyIntegration {
            id,
            organization_id: organization,
            tasy_instance_url: instance_url("tasy_instance_url", &new.tasy_instance_url)?,
            api_version: api_version(new.api_version.as_deref().unwrap_or("v1"))?,
            is_active: true,
            api_key: api_key(&new.api_key)?,
            client_id: client_id(new.client_id.as_deref())?,
            last_auth_at: None,
            sync_enabled: new.sync_enabled.unwrap_or(true),
            sync_interval_seconds: interval(new.sync_interval_seconds.unwrap_or(300))?,
            last_sync_at: None,
            next_sync_at: new.next_sync_at.map(crate::time::truncate),
            field_mapping: new.field_mapping,
            filters: new.filters,
            status: IntegrationStatus::Active,
            error_count: 0,
            last_error: None,
            last_error_at: None,
            avg_sync_time_seconds: None,
            records_processed: 0,
            records_failed: 0,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        })
    }
}

impl Updatable for TasyIntegration {
    type Patch = TasyIntegrationPatch;

    fn apply(&mut self, p: TasyIntegrationPatch, now: DateTime<Utc>) -> Result<()> {
        patch!(self.tasy_instance_url, p.tasy_instance_url, |v| instance_url("tasy_instance_url", &v)?);
        patch!(self.api_version, p.api_version, |v| api_version(&v)?);
        patch!(self.is_active, p.is_active);
        patch!(self.api_key, p.api_key, |v| api_key(&v)?);
        patch!(self.client_id, p.client_id, |v| client_id(v.as_deref())?);
        patch!(self.last_auth_at, p.last_auth_at, |v| v.map(crate::time::truncate));
        patch!(self.sync_enabled, p.sync_enabled);
        patch!(self.sync_interval_seconds, p.sync_interval_seconds, |v| interval(v)?);
        patch!(self.next_sync_at, p.next_sync_at, |v| v.map(crate::time::truncate));
        if let Some(v) = p.field_mapping {
            json_object("field_mapping", &v)?;
            self.field_mapping = v;
        }
        if let Some(v) = p.filters {
            if let Some(f) = &v {
                json_object("filters", f)?;
            }
            self.filters = v;
        }
        patch!(self.status, p.status);
        self.updated_at = now;
        Ok(())
    }
}

impl SoftDeletable for TasyIntegration {}

impl TasyIntegrations<'_> {
    /// A page of active integrations, newest first.
    pub async fn list_active(&self, page: PageRequest) -> Result<Page<TasyIntegration>> {
        rows::list_where(self.scope(), Filter::new().and_eq("is_active", true), &page).await
    }

    /// A page of integrations due for a scheduled run at `now`: active, sync enabled, status `ACTIVE`
    /// or `ERROR` (not suspended, in maintenance or inactive), and `next_sync_at` at or before `now`
    /// or not set. Newest first.
    pub async fn due_for_sync(&self, now: DateTime<Utc>, page: PageRequest) -> Result<Page<TasyIntegration>> {
        let filter = Filter::new()
            .and_eq("is_active", true)
            .and_eq("sync_enabled", true)
            .and_in("status", [IntegrationStatus::Active.as_str(), IntegrationStatus::Error.as_str()])
            .push(" AND (next_sync_at IS NULL OR next_sync_at <= ")
            .push_bind(crate::time::truncate(now))
            .push(")");
        rows::list_where(self.scope(), filter, &page).await
    }
}

fn record_type(v: &str) -> Result<String> {
    validate::text("record_type", v, 1, 100)
}

impl Sealed for TasySyncLog {}

impl Model for TasySyncLog {
    type New = TasySyncStart;

    fn build(organization: Uuid, id: Uuid, now: DateTime<Utc>, new: TasySyncStart) -> Result<Self> {
        Ok(TasySyncLog {
            id,
            organization_id: organization,
            integration_id: new.integration_id,
            sync_type: new.sync.sync_type,
            direction: new.sync.direction,
            record_type: record_type(&new.sync.record_type)?,
            records_attempted: 0,
            records_succeeded: 0,
            records_failed: 0,
            records_skipped: 0,
            status: SyncStatus::Running,
            started_at: now,
            completed_at: None,
            duration_seconds: None,
            error_message: None,
            error_details: None,
            summary: None,
            created_at: now,
        })
    }
}

/// Validates an outcome before any I/O; returns it with its error message trimmed.
fn checked_outcome(mut o: SyncOutcome) -> Result<SyncOutcome> {
    if !matches!(o.status, SyncStatus::Completed | SyncStatus::Failed | SyncStatus::Cancelled) {
        return Err(Error::validation("status", "must be COMPLETED, FAILED or CANCELLED"));
    }
    validate::non_negative("records_attempted", o.records_attempted)?;
    validate::non_negative("records_succeeded", o.records_succeeded)?;
    validate::non_negative("records_failed", o.records_failed)?;
    validate::non_negative("records_skipped", o.records_skipped)?;
    let handled = i128::from(o.records_succeeded) + i128::from(o.records_failed) + i128::from(o.records_skipped);
    if handled > i128::from(o.records_attempted) {
        return Err(Error::validation(
            "records_attempted",
            "must be at least records_succeeded + records_failed + records_skipped",
        ));
    }
    o.error_message = validate::opt_text("error_message", o.error_message.as_deref(), 1, 4000)?;
    if let Some(v) = &o.error_details {
        json_size("error_details", v)?;
    }
    if let Some(v) = &o.summary {
        json_size("summary", v)?;
    }
    Ok(o)
}

/// The integration columns a finishing run reads and writes.
struct IntegrationTally {
    sync_interval_seconds: i64,
    status: IntegrationStatus,
    error_count: i64,
    avg_sync_time_seconds: Option<f64>,
    records_processed: i64,
    records_failed: i64,
}

/// Writes a run's outcome into the run, completed at `completed_at`.
fn close_run(run: &mut TasySyncLog, outcome: SyncOutcome, completed_at: DateTime<Utc>) {
    let micros = (completed_at - run.started_at).num_microseconds().unwrap_or(i64::MAX);
    run.records_attempted = outcome.records_attempted;
    run.records_succeeded = outcome.records_succeeded;
    run.records_failed = outcome.records_failed;
    run.records_skipped = outcome.records_skipped;
    run.status = outcome.status;
    run.completed_at = Some(completed_at);
    run.duration_seconds = Some(micros as f64 / 1_000_000.0);
    run.error_message = outcome.error_message;
    run.error_details = outcome.error_details;
    run.summary = outcome.summary;
}

/// How many other runs of `run`'s integration have finished (the weight of the mean duration so far).
async fn finished_runs(tx: &mut Tx, org: Uuid, run: &TasySyncLog) -> Result<i64> {
    let sql = "SELECT COUNT(*) AS n FROM tasy_sync_logs WHERE organization_id = $1 \
               AND integration_id = $2 AND completed_at IS NOT NULL AND id <> $3";
    let row = tx.fetch_optional(Query::new(sql).bind(org).bind(run.integration_id).bind(run.id)).await?;
    Ok(row.map(|r| r.int("n")).transpose()?.unwrap_or(0))
}

impl IntegrationTally {
    /// The integration's counters, its row locked in `tx`.
    async fn lock(tx: &mut Tx, org: Uuid, integration: Uuid) -> Result<Self> {
        let sql = format!(
            "SELECT sync_interval_seconds, status, error_count, avg_sync_time_seconds, \
             records_processed, records_failed FROM tasy_integrations \
             WHERE organization_id = $1 AND id = $2{}",
            tx.lock(RowLock::Update)
        );
        let row = tx
            .fetch_optional(Query::new(sql).bind(org).bind(integration))
            .await?
            .ok_or_else(|| Error::CorruptData("tasy_sync_logs.integration_id has no integration".into()))?;
        Ok(Self {
            sync_interval_seconds: row.int("sync_interval_seconds")?,
            status: row.enumeration("status")?,
            error_count: row.int("error_count")?,
            avg_sync_time_seconds: row.opt_float("avg_sync_time_seconds")?,
            records_processed: row.int("records_processed")?,
            records_failed: row.int("records_failed")?,
        })
    }

    /// Counts the finished `run` in: the mean duration over `finished_before + 1` runs, the records,
    /// and the error state (an operator's status, suspended or in maintenance, is kept).
    fn count(&mut self, run: &TasySyncLog, finished_before: i64) {
        let duration = run.duration_seconds.unwrap_or(0.0);
        self.avg_sync_time_seconds = Some(match self.avg_sync_time_seconds {
            Some(avg) if finished_before > 0 => {
                let n = finished_before as f64;
                (avg * n + duration) / (n + 1.0)
            }
            _ => duration,
        });
        self.records_processed = self
            .records_processed
            .saturating_add(run.records_succeeded)
            .saturating_add(run.records_failed)
            .saturating_add(run.records_skipped);
        self.records_failed = self.records_failed.saturating_add(run.records_failed);
        let operator_status = !matches!(self.status, IntegrationStatus::Active | IntegrationStatus::Error);
        match run.status {
            SyncStatus::Failed => {
                self.error_count = self.error_count.saturating_add(1);
                if !operator_status {
                    self.status = IntegrationStatus::Error;
                }
            }
            SyncStatus::Completed if !operator_status => self.status = IntegrationStatus::Active,
            _ => {}
        }
    }

    /// Writes the tally and the next scheduled run back to the integration.
    async fn write(&self, tx: &mut Tx, org: Uuid, run: &TasySyncLog, completed_at: DateTime<Utc>) -> Result<()> {
        let next_sync_at = TimeDelta::try_seconds(self.sync_interval_seconds)
            .and_then(|d| completed_at.checked_add_signed(d))
            .ok_or_else(|| Error::CorruptData("tasy_integrations.sync_interval_seconds out of range".into()))?;
        // The new last error, NULL when the run did not fail (last_error is then kept).
        let set_error = (run.status == SyncStatus::Failed)
            .then(|| run.error_message.clone().unwrap_or_else(|| "sync run failed without an error message".into()));
        let update = Query::new(
            "UPDATE tasy_integrations SET last_sync_at = $2, next_sync_at = $3, records_processed = $4, \
             records_failed = $5, avg_sync_time_seconds = $6, error_count = $7, status = $8, \
             last_error = COALESCE($9, last_error), \
             last_error_at = CASE WHEN $9 IS NULL THEN last_error_at ELSE $2 END, \
             updated_at = $2 WHERE organization_id = $1 AND id = $10",
        )
        .bind(org)
        .bind(completed_at)
        .bind(next_sync_at)
        .bind(self.records_processed)
        .bind(self.records_failed)
        .bind(self.avg_sync_time_seconds)
        .bind(self.error_count)
        .bind(self.status.as_str())
        .bind(set_error)
        .bind(run.integration_id);
        if tx.execute(update).await? != 1 {
            return Err(Error::CorruptData("tasy_integrations row vanished during finish".into()));
        }
        Ok(())
    }
}

impl TasySyncLogs<'_> {
    /// Starts a run of integration `integration_id`: status `RUNNING`, `started_at` now. The
    /// integration must be live (not soft-deleted) in this organization, otherwise a validation error
    /// on `integration_id`.
    pub async fn start(&self, integration_id: Uuid, new: NewTasySync) -> Result<TasySyncLog> {
        let scope = self.scope();
        check(
            scope,
            TasySyncLog::TABLE,
            Action::Create,
            None,
            None,
            scope.authorize(Resource::TasySyncLog, Action::Create),
        )
        .await?;
        let org = scope.organization_id();
        let now = self.scope().now();
        let run = TasySyncLog::build(org, Uuid::now_v7(), now, TasySyncStart { integration_id, sync: new })?;
        let keys = scope.db().key_set(org, None).await?;
        let (insert, created) = rows::insert_query(&keys, org, &run)?;
        // Starting a run is recorded as a SYNC of the new run (with the columns it wrote).
        let event = Event { action: AuditAction::Sync, ..created };
        let mut tx = AuditTx::begin(scope).await?;
        let live = tx
            .fetch_optional(
                Query::new(
                    "SELECT id FROM tasy_integrations \
                     WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL",
                )
                .bind(org)
                .bind(integration_id),
            )
            .await?;
        if live.is_none() {
            return Err(Error::validation(
                "integration_id",
                "refers to a row that does not exist in this organization",
            ));
        }
        tx.execute(insert).await?;
        tx.record(event).await?;
        tx.commit().await?;
        Ok(run)
    }

    /// Finishes run `id` with `outcome`: sets its counts, status, `completed_at` and
    /// `duration_seconds`, and in the same transaction updates the integration's schedule, counters,
    /// mean duration and error state (see the [module documentation](self)). A run can be finished
    /// once: finishing it again is a `conflict` on `status`. Validation errors write nothing.
    pub async fn finish(&self, id: Uuid, outcome: SyncOutcome) -> Result<TasySyncLog> {
        let outcome = checked_outcome(outcome)?;
        let scope = self.scope();
        let access = rows::access::<TasySyncLog>(scope, Action::Update, Some(id)).await?;
        let allowed = scope.authorize(Resource::TasyIntegration, Action::Update);
        check(scope, TasyIntegration::TABLE, Action::Update, None, None, allowed).await?;
        let org = scope.organization_id();
        let keys = scope.db().key_set(org, None).await?;
        let mut tx = AuditTx::begin(scope).await?;
        let mut run: TasySyncLog = rows::get_in(&mut tx, &keys, org, id, &access, true).await?;
        if !matches!(run.status, SyncStatus::Running | SyncStatus::Pending) {
            return Err(Error::Conflict { field: "status".into() });
        }
        let before = rows::fingerprints(&keys, &run)?;
        let completed_at = scope.now().max(run.started_at);
        close_run(&mut run, outcome, completed_at);
        // The integration, locked after the run (every finish takes the locks in this order).
        let mut tally = IntegrationTally::lock(&mut tx, org, run.integration_id).await?;
        let finished_before = finished_runs(&mut tx, org, &run).await?;
        tally.count(&run, finished_before);
        rows::write_in(&mut tx, &keys, org, &run).await?;
        tally.write(&mut tx, org, &run, completed_at).await?;
        // One event for the finished run; the integration's schedule, counters and status follow from it.
        let changed = rows::changed_fields(&keys, &before, &run)?;
        tx.record(Event::on(AuditAction::Sync, TasySyncLog::TABLE).entity(run.id).records([run.id]).changed(changed))
            .await?;
        tx.commit().await?;
        Ok(run)
    }

    /// A page of the runs of integration `integration_id`, newest first.
    pub async fn for_integration(&self, integration_id: Uuid, page: PageRequest) -> Result<Page<TasySyncLog>> {
        rows::list_where(self.scope(), Filter::new().and_eq("integration_id", integration_id), &page).await
    }
}
