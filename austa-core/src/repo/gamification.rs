//! Gamification repositories: mission progress, points accounts and the points ledger.
//!
//! * `scope.onboarding_progress()`: the generic operations (no delete: the table has no
//!   `deleted_at`) plus [`OnboardingProgressRepo::for_patient`] and [`OnboardingProgressRepo::find`].
//!   One row per patient and mission: a second one is a `conflict` on `mission_id`.
//! * `scope.health_points()`: create (counters start at zero), get, list, update of the fields the
//!   ledger does not own, and [`HealthPointsRepo::for_patient`]. One account per patient: a second one
//!   is a `conflict` on `patient_id`.
//! * `scope.point_transactions()`: append-only. [`PointTransactions::record`] is the only writer: in
//!   one transaction it locks the patient's account, checks the movement against it, inserts the
//!   transaction and writes the new counters. How an amount moves the counters:
//!   - positive (`EARNED`, `BONUS`, positive `ADJUSTMENT`): adds to `total_points`,
//!     `available_points`, `experience_points`, and to one bucket chosen by `source_type`:
//!     `MISSION` -> `onboarding_points`, `ENGAGEMENT` -> `engagement_points`, `ACHIEVEMENT` ->
//!     `achievement_points`, anything else -> `health_points`;
//!   - `SPENT`: moves the amount from `available_points` to `spent_points` (`total_points` unchanged);
//!   - `PENALTY`, `EXPIRED`, negative `ADJUSTMENT`: removes the amount from `total_points` and
//!     `available_points` (buckets and experience are lifetime earnings and do not decrease).
//!
//!   A negative amount larger than `available_points` is a `validation` error on `amount` and writes
//!   nothing. So at any time `total_points` equals the sum of every non-`SPENT` amount and
//!   `spent_points` the sum of the `SPENT` amounts, which [`PointTransactions::ledger_balance`]
//!   computes from the ledger alone. Whenever experience grows, `current_level` and `next_level_at`
//!   follow the threshold table ([`level_threshold`]: level `n` needs `50 * n * (n - 1)`).
//!   [`PointTransactions::spend`] is the redemption path (a `SPENT` movement, refused beyond the
//!   available points).
//!
//! The mission workflow, each step one transaction with the progress row locked and one audit event:
//! * [`OnboardingProgressRepo::start`]: refuses while a live prerequisite is not completed by the
//!   patient (`conflict` on `prerequisites`), then creates or restarts the progress (`IN_PROGRESS`,
//!   step 0 of the mission's steps); a retried start returns the row unchanged.
//! * [`OnboardingProgressRepo::advance`]: moves `current_step` forward; `progress` is derived
//!   (`100 * current_step / total_steps`).
//! * [`OnboardingProgressRepo::complete`]: with every step done, marks the progress `COMPLETED` and
//!   awards the mission's points (an `EARNED` ledger row, counters and level in the same transaction)
//!   and badge, exactly once: a retried or racing call waits for the row lock, sees `COMPLETED` and
//!   awards nothing; the unique index `point_transactions_mission_award_key` (migration 0007) allows one
//!   `EARNED` mission award per patient and mission whatever the path.
//!
//! Streaks: [`HealthPointsRepo::record_activity`] counts an activity into the daily and weekly
//! streaks by the patient's local date (their IANA `timezone`), remembered in
//! `last_active_local_date`.
//!
//! Who may run the workflow follows the access matrix: starting needs create and update on
//! `onboarding_progress`, advancing update, completing update on `onboarding_progress` and
//! `health_points` plus create on `point_transaction`, recording activity update on `health_points`,
//! spending create on `point_transaction`: administrators and the platform; patients and providers
//! read only.

use std::collections::BTreeSet;
use std::convert::Infallible;

use chrono::{DateTime, Datelike, Days, Duration, NaiveDate, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use super::{missions, patch, rows, Model, Page, PageRequest, Repo, Updatable};
use crate::access::{Action, Resource};
use crate::db::{Filter, Query, RowLock, Tx};
use crate::error::{Error, Result};
use crate::kernel::Record;
use crate::kernel::Sealed;
use crate::kernel::{check, AuditTx, Event};
use crate::model::{
    level_for_experience, level_threshold, week_start, Achievement, AuditAction, Completion, HealthPoints,
    HealthPointsPatch, Mission, NewHealthPoints, NewOnboardingProgress, NewPointTransaction, OnboardingProgress,
    OnboardingProgressPatch, PointTransaction, ProgressStatus, SourceType, TransactionType,
};
use crate::scope::Scope;
use crate::validate;
use austa_crypto::KeySet;

/// Repository of mission progress.
pub type OnboardingProgressRepo<'s> = Repo<'s, OnboardingProgress>;
/// Repository of points accounts.
pub type HealthPointsRepo<'s> = Repo<'s, HealthPoints>;
/// Repository of the points ledger.
pub type PointTransactions<'s> = Repo<'s, PointTransaction>;

impl Scope {
    /// Mission progress of this scope's organization.
    pub fn onboarding_progress(&self) -> OnboardingProgressRepo<'_> {
        Repo::new(self)
    }

    /// Points accounts of this scope's organization.
    pub fn health_points(&self) -> HealthPointsRepo<'_> {
        Repo::new(self)
    }

    /// The points ledger of this scope's organization.
    pub fn point_transactions(&self) -> PointTransactions<'_> {
        Repo::new(self)
    }
}

// ---------------------------------------------------------------------------------------------
// OnboardingProgress
// ---------------------------------------------------------------------------------------------

fn badge(field: &str, v: Option<&str>) -> Result<Option<String>> {
    validate::opt_text(field, v, 1, 100)
}

/// Rules that span fields, checked after building or patching.
fn check_progress(p: &OnboardingProgress) -> Result<()> {
    validate::range("progress", p.progress, 0.0, 100.0)?;
    validate::non_negative("current_step", p.current_step)?;
    if p.total_steps < 1 {
        return Err(Error::validation("total_steps", "must be at least 1"));
    }
    if p.current_step > p.total_steps {
        return Err(Error::validation("current_step", "must not exceed total_steps"));
    }
    validate::ordered("completed_at", p.started_at.as_ref(), p.completed_at.as_ref())?;
    validate::non_negative("points_earned", p.points_earned)?;
    validate::non_negative("attempts_count", p.attempts_count)?;
    validate::non_negative("time_spent_minutes", p.time_spent_minutes)?;
    Ok(())
}

impl Sealed for OnboardingProgress {}

impl Model for OnboardingProgress {
    type New = NewOnboardingProgress;

    fn build(organization: Uuid, id: Uuid, now: DateTime<Utc>, new: NewOnboardingProgress) -> Result<Self> {
        let p = OnboardingProgress {
            id,
            organization_id: organization,
            patient_id: new.patient_id,
            mission_id: new.mission_id,
            status: new.status.unwrap_or(ProgressStatus::NotStarted),
            progress: new.progress,
            current_step: new.current_step,
            total_steps: new.total_steps.unwrap_or(1),
            started_at: new.started_at.map(crate::time::truncate),
            completed_at: new.completed_at.map(crate::time::truncate),
            points_earned: new.points_earned,
            badge_earned: badge("badge_earned", new.badge_earned.as_deref())?,
            attempts_count: new.attempts_count,
            time_spent_minutes: new.time_spent_minutes,
            last_interaction_at: new.last_interaction_at.map(crate::time::truncate).unwrap_or(now),
            created_at: now,
            updated_at: now,
        };
        check_progress(&p)?;
        Ok(p)
    }
}

impl Updatable for OnboardingProgress {
    type Patch = OnboardingProgressPatch;

    fn apply(&mut self, p: OnboardingProgressPatch, now: DateTime<Utc>) -> Result<()> {
        patch!(self.status, p.status);
        patch!(self.progress, p.progress);
        patch!(self.current_step, p.current_step);
        patch!(self.total_steps, p.total_steps);
        patch!(self.started_at, p.started_at, |v| v.map(crate::time::truncate));
        patch!(self.completed_at, p.completed_at, |v| v.map(crate::time::truncate));
        patch!(self.points_earned, p.points_earned);
        patch!(self.badge_earned, p.badge_earned, |v| badge("badge_earned", v.as_deref())?);
        patch!(self.attempts_count, p.attempts_count);
        patch!(self.time_spent_minutes, p.time_spent_minutes);
        patch!(self.last_interaction_at, p.last_interaction_at, |v| crate::time::truncate(v));
        check_progress(self)?;
        self.updated_at = now;
        Ok(())
    }
}

impl OnboardingProgressRepo<'_> {
    /// A page of one patient's mission progress, newest first.
    pub async fn for_patient(&self, patient_id: Uuid, page: PageRequest) -> Result<Page<OnboardingProgress>> {
        rows::list_where(self.scope(), Filter::new().and_eq("patient_id", patient_id), &page).await
    }

    /// The patient's progress on the mission, if any.
    pub async fn find(&self, patient_id: Uuid, mission_id: Uuid) -> Result<Option<OnboardingProgress>> {
        rows::find_where(self.scope(), Filter::new().and_eq("patient_id", patient_id).and_eq("mission_id", mission_id))
            .await
    }
}

// ---------------------------------------------------------------------------------------------
// HealthPoints
// ---------------------------------------------------------------------------------------------

/// Badge ids: labels, no duplicates.
fn badges(v: &[String]) -> Result<Vec<String>> {
    let v = validate::labels("badges", v)?;
    if v.iter().collect::<BTreeSet<_>>().len() != v.len() {
        return Err(Error::validation("badges", "must not repeat a badge"));
    }
    Ok(v)
}

/// Achievements: at most 100, ids and names of bounded length, unique ids.
fn achievements(v: Vec<Achievement>) -> Result<Vec<Achievement>> {
    const FIELD: &str = "achievements";
    if v.len() > 100 {
        return Err(Error::validation(FIELD, "must have at most 100 entries"));
    }
    let mut seen = BTreeSet::new();
    v.into_iter()
        .map(|a| {
            let id = validate::text(FIELD, &a.id, 1, 100)?;
            if !seen.insert(id.clone()) {
                return Err(Error::validation(FIELD, "must not repeat an achievement id"));
            }
            Ok(Achievement {
                id,
                name: validate::text(FIELD, &a.name, 1, 200)?,
                earned_at: crate::time::truncate(a.earned_at),
            })
        })
        .collect()
}

/// Every rule on an account, counters included (the database checks the same).
fn check_account(h: &HealthPoints) -> Result<()> {
    for (field, value) in [
        ("total_points", h.total_points),
        ("available_points", h.available_points),
        ("spent_points", h.spent_points),
        ("onboarding_points", h.onboarding_points),
        ("engagement_points", h.engagement_points),
        ("health_points", h.health_points),
        ("achievement_points", h.achievement_points),
        ("experience_points", h.experience_points),
        ("next_level_at", h.next_level_at),
        ("daily_streak", h.daily_streak),
        ("weekly_streak", h.weekly_streak),
        ("longest_streak", h.longest_streak),
    ] {
        validate::non_negative(field, value)?;
    }
    if h.current_level < 1 {
        return Err(Error::validation("current_level", "must be at least 1"));
    }
    if h.available_points.checked_add(h.spent_points) != Some(h.total_points) {
        return Err(Error::validation("total_points", "must equal available_points plus spent_points"));
    }
    Ok(())
}

impl Sealed for HealthPoints {}

impl Model for HealthPoints {
    type New = NewHealthPoints;

    fn build(organization: Uuid, id: Uuid, now: DateTime<Utc>, new: NewHealthPoints) -> Result<Self> {
        let h = HealthPoints {
            id,
            organization_id: organization,
            patient_id: new.patient_id,
            total_points: 0,
            available_points: 0,
            spent_points: 0,
            onboarding_points: 0,
            engagement_points: 0,
            health_points: 0,
            achievement_points: 0,
            current_level: new.current_level.unwrap_or(1),
            experience_points: 0,
            next_level_at: new.next_level_at.unwrap_or(100),
            badges: badges(&new.badges)?,
            achievements: achievements(new.achievements)?,
            daily_streak: new.daily_streak,
            weekly_streak: new.weekly_streak,
            longest_streak: new.longest_streak,
            last_active_date: new.last_active_date.map(crate::time::truncate).unwrap_or(now),
            last_active_local_date: None,
            created_at: now,
            updated_at: now,
        };
        check_account(&h)?;
        Ok(h)
    }
}

impl Updatable for HealthPoints {
    type Patch = HealthPointsPatch;

    fn apply(&mut self, p: HealthPointsPatch, now: DateTime<Utc>) -> Result<()> {
        patch!(self.current_level, p.current_level);
        patch!(self.next_level_at, p.next_level_at);
        patch!(self.badges, p.badges, |v| badges(&v)?);
        patch!(self.achievements, p.achievements, |v| achievements(v)?);
        patch!(self.daily_streak, p.daily_streak);
        patch!(self.weekly_streak, p.weekly_streak);
        patch!(self.longest_streak, p.longest_streak);
        patch!(self.last_active_date, p.last_active_date, |v| crate::time::truncate(v));
        check_account(self)?;
        self.updated_at = now;
        Ok(())
    }
}

/// Awards a completed mission's points (once: an award already in the ledger is found, not repeated)
/// and badge to the patient's account inside `tx`; returns the points and the new ledger row, if any.
async fn reward(
    tx: &mut AuditTx<'_>,
    keys: &KeySet,
    patient_id: Uuid,
    progress_id: Uuid,
    mission: &Mission,
    now: DateTime<Utc>,
) -> Result<(i64, Option<PointTransaction>)> {
    let org = keys.org.organization;
    let mut points = 0;
    let mut transaction = None;
    if mission.points_reward == 0 && mission.badge_reward.is_none() {
        return Ok((points, transaction));
    }
    let mut account = account_locked(tx, keys, org, patient_id).await?;
    let mut touched = false;
    if mission.points_reward > 0 {
        match mission_award(tx, keys, org, patient_id, mission.id).await? {
            Some(existing) => points = existing.amount,
            None => {
                let new = NewPointTransaction {
                    source_mission_id: Some(mission.id),
                    metadata: Some(serde_json::json!({ "onboarding_progress_id": progress_id })),
                    ..NewPointTransaction::new(
                        patient_id,
                        TransactionType::Earned,
                        mission.points_reward,
                        "Mission completed",
                        SourceType::Mission,
                    )
                };
                let mut award = build_transaction(org, Uuid::now_v7(), now, account.id, new)?;
                // The award is a ledger row of its own: recorded with its CREATE event, so that the
                // ledger can be rebuilt from the audit trail table by table.
                let award_event = insert_movement(tx, keys, org, &mut account, &mut award, now).await?;
                tx.record(award_event).await?;
                points = award.amount;
                transaction = Some(award);
                touched = true;
            }
        }
    }
    if let Some(badge) = mission.badge_reward.as_ref().filter(|b| !account.badges.contains(b)) {
        let mut held = account.badges.clone();
        held.push(badge.clone());
        account.badges = badges(&held)?;
        account.updated_at = now;
        touched = true;
    }
    if touched {
        check_account(&account)?;
        rows::write_in(tx, keys, org, &account).await?;
    }
    Ok((points, transaction))
}

impl HealthPointsRepo<'_> {
    /// The patient's points account, if it has one.
    pub async fn for_patient(&self, patient_id: Uuid) -> Result<Option<HealthPoints>> {
        rows::find_where(self.scope(), Filter::new().and_eq("patient_id", patient_id)).await
    }
}

// ---------------------------------------------------------------------------------------------
// PointTransaction
// ---------------------------------------------------------------------------------------------

/// Checks a movement on its own (no I/O) and builds the row, minus the account id.
fn build_transaction(
    organization: Uuid,
    id: Uuid,
    now: DateTime<Utc>,
    health_points_id: Uuid,
    new: NewPointTransaction,
) -> Result<PointTransaction> {
    let amount = new.amount;
    let sign_ok = match new.transaction_type {
        TransactionType::Earned | TransactionType::Bonus => amount > 0,
        TransactionType::Spent | TransactionType::Penalty | TransactionType::Expired => amount < 0,
        TransactionType::Adjustment => amount != 0,
    };
    if amount == 0 {
        return Err(Error::validation("amount", "must not be zero"));
    }
    if !sign_ok {
        return Err(Error::validation(
            "amount",
            "must be positive for EARNED and BONUS, negative for SPENT, PENALTY and EXPIRED",
        ));
    }
    if amount == i64::MIN {
        return Err(Error::validation("amount", "is out of range"));
    }
    if new.source_type == SourceType::Mission && new.source_mission_id.is_none() {
        return Err(Error::validation("source_mission_id", "is required when source_type is MISSION"));
    }
    if let Some(m) = &new.metadata {
        if !m.is_object() {
            return Err(Error::validation("metadata", "must be a JSON object"));
        }
        if m.to_string().len() > 16 * 1024 {
            return Err(Error::validation("metadata", "must be at most 16 KiB of JSON"));
        }
    }
    Ok(PointTransaction {
        id,
        organization_id: organization,
        patient_id: new.patient_id,
        health_points_id,
        transaction_type: new.transaction_type,
        amount,
        reason: validate::text("reason", &new.reason, 1, 200)?,
        description: validate::opt_text("description", new.description.as_deref(), 1, 2000)?,
        source_type: new.source_type,
        source_mission_id: new.source_mission_id,
        source_conversation_id: new.source_conversation_id,
        metadata: new.metadata,
        created_at: now,
    })
}

/// Puts the account on the threshold table: the level of its experience and the next level's
/// threshold (see [`level_threshold`]).
fn apply_level(h: &mut HealthPoints) {
    h.current_level = level_for_experience(h.experience_points);
    h.next_level_at = level_threshold(h.current_level.saturating_add(1));
}

/// Whether a movement is a mission's award: at most one per patient and mission.
fn is_mission_award(t: &PointTransaction) -> bool {
    t.transaction_type == TransactionType::Earned && t.source_type == SourceType::Mission
}

/// The patient's points account, read inside `tx` and locked until it ends; `validation` on
/// `patient_id` when the patient has none in this organization.
async fn account_locked(tx: &mut Tx, keys: &KeySet, organization: Uuid, patient_id: Uuid) -> Result<HealthPoints> {
    let sql = format!(
        "SELECT * FROM health_points WHERE organization_id = $1 AND patient_id = $2{}",
        tx.lock(RowLock::Update)
    );
    let row = tx
        .fetch_optional(Query::new(sql).bind(organization).bind(patient_id))
        .await?
        .ok_or_else(|| Error::validation("patient_id", "has no points account in this organization"))?;
    rows::decode(keys, &row)
}

/// The `EARNED` award of `mission_id` already in the patient's ledger, if any (the unique index
/// `point_transactions_mission_award_key` allows at most one).
async fn mission_award(
    tx: &mut Tx,
    keys: &KeySet,
    organization: Uuid,
    patient_id: Uuid,
    mission_id: Uuid,
) -> Result<Option<PointTransaction>> {
    let row = tx
        .fetch_optional(
            Query::new(
                "SELECT * FROM point_transactions WHERE organization_id = $1 AND patient_id = $2 \
                 AND source_mission_id = $3 AND type = 'EARNED' AND source_type = 'MISSION' LIMIT 1",
            )
            .bind(organization)
            .bind(patient_id)
            .bind(mission_id),
        )
        .await?;
    row.map(|r| rows::decode(keys, &r)).transpose()
}

/// Inserts a validated movement of the locked `account` inside `tx` and applies it to the account in
/// memory (the caller writes the account back). A second award of a mission is a `conflict` on
/// `source_mission_id`: checked here under the account's lock, and by the unique index behind it.
/// Returns the movement's `CREATE` event.
async fn insert_movement(
    tx: &mut Tx,
    keys: &KeySet,
    organization: Uuid,
    account: &mut HealthPoints,
    transaction: &mut PointTransaction,
    now: DateTime<Utc>,
) -> Result<Event> {
    let award_conflict = || Error::Conflict { field: "source_mission_id".into() };
    transaction.health_points_id = account.id;
    if let (true, Some(mission)) = (is_mission_award(transaction), transaction.source_mission_id) {
        if mission_award(tx, keys, organization, transaction.patient_id, mission).await?.is_some() {
            return Err(award_conflict());
        }
    }
    apply_to_account(account, transaction, now)?;
    let (insert, event) = rows::insert_query(keys, organization, &*transaction)?;
    tx.execute(insert).await.map_err(|e| match e {
        Error::Conflict { .. } if is_mission_award(transaction) => award_conflict(),
        e => e,
    })?;
    Ok(event)
}

/// Applies a validated movement to the account (see the module documentation).
fn apply_to_account(h: &mut HealthPoints, t: &PointTransaction, now: DateTime<Utc>) -> Result<()> {
    let overflow = || Error::validation("amount", "would overflow the point counters");
    let add = |v: i64, by: i64| v.checked_add(by).ok_or_else(overflow);
    let amount = t.amount;
    if amount > 0 {
        h.total_points = add(h.total_points, amount)?;
        h.available_points = add(h.available_points, amount)?;
        h.experience_points = add(h.experience_points, amount)?;
        let bucket = match t.source_type {
            SourceType::Mission => &mut h.onboarding_points,
            SourceType::Engagement => &mut h.engagement_points,
            SourceType::Achievement => &mut h.achievement_points,
            _ => &mut h.health_points,
        };
        *bucket = add(*bucket, amount)?;
        apply_level(h);
    } else {
        let magnitude = amount.checked_neg().ok_or_else(overflow)?;
        if magnitude > h.available_points {
            return Err(Error::validation("amount", "exceeds the available points"));
        }
        h.available_points -= magnitude;
        if t.transaction_type == TransactionType::Spent {
            h.spent_points = add(h.spent_points, magnitude)?;
        } else {
            h.total_points -= magnitude;
        }
    }
    h.updated_at = now;
    check_account(h)
}

impl Sealed for PointTransaction {}

impl Model for PointTransaction {
    /// Uninhabited: the generic `create` cannot be called; use `record`, which also moves the account.
    type New = Infallible;

    fn build(_organization: Uuid, _id: Uuid, _now: DateTime<Utc>, new: Infallible) -> Result<Self> {
        match new {}
    }
}

impl PointTransactions<'_> {
    /// Records a movement of points and updates the patient's account, in one transaction (the
    /// account row is locked). Errors, each writing nothing: `validation` on `amount` (zero, wrong
    /// sign for the type, or a negative amount larger than the available points), on
    /// `source_mission_id` (missing for a `MISSION` source, or not a live mission of this
    /// organization), on `source_conversation_id` (not a live conversation of this organization and
    /// patient), on `patient_id` (no points account in this organization), or on `reason`,
    /// `description`, `metadata`; `conflict` on `source_mission_id` for a second `EARNED` movement with
    /// source `MISSION` for the same patient and mission (a mission pays out once; see
    /// [`OnboardingProgressRepo::complete`]). A positive amount also moves the account's level onto
    /// the threshold table ([`level_threshold`]).
    pub async fn record(&self, new: NewPointTransaction) -> Result<PointTransaction> {
        self.record_with_id(Uuid::now_v7(), new).await
    }

    /// [`PointTransactions::record`] with a caller-chosen id (the development seed's stable ids).
    pub(crate) async fn record_with_id(&self, id: Uuid, new: NewPointTransaction) -> Result<PointTransaction> {
        let scope = self.scope();
        let org = scope.organization_id();
        let now = self.scope().now();
        // Validate everything that needs no I/O first; the account id is filled in below.
        let mut transaction = build_transaction(org, id, now, Uuid::nil(), new)?;
        let patient = transaction.patient_id;
        check(
            scope,
            PointTransaction::TABLE,
            Action::Create,
            None,
            Some(patient),
            scope.authorize_patient(Resource::PointTransaction, Action::Create, patient),
        )
        .await?;
        let keys = scope.db().key_set(org, None).await?;
        let mut tx = AuditTx::begin(scope).await?;
        let mut account = account_locked(&mut tx, &keys, org, patient).await?;
        if let Some(mission) = transaction.source_mission_id {
            let found = tx
                .fetch_optional(
                    Query::new("SELECT id FROM missions WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL")
                        .bind(org)
                        .bind(mission),
                )
                .await?;
            if found.is_none() {
                return Err(Error::validation(
                    "source_mission_id",
                    "refers to a mission that does not exist in this organization",
                ));
            }
        }
        if let Some(conversation) = transaction.source_conversation_id {
            let found = tx
                .fetch_optional(
                    Query::new(
                        "SELECT id FROM conversations WHERE organization_id = $1 AND id = $2 \
                         AND patient_id = $3 AND deleted_at IS NULL",
                    )
                    .bind(org)
                    .bind(conversation)
                    .bind(transaction.patient_id),
                )
                .await?;
            if found.is_none() {
                return Err(Error::validation(
                    "source_conversation_id",
                    "refers to a conversation that does not exist for this patient in this organization",
                ));
            }
        }
        let event = insert_movement(&mut tx, &keys, org, &mut account, &mut transaction, now).await?;
        rows::write_in(&mut tx, &keys, org, &account).await?;
        // One operation, one event: the movement (the account's new counters follow from it).
        tx.record(event.patient(Some(patient))).await?;
        tx.commit().await?;
        Ok(transaction)
    }

    /// Spends `amount` (> 0) of the patient's available points: records a `SPENT` movement of
    /// `-amount` with source `PURCHASE` and moves the points from `available_points` to
    /// `spent_points`, in one transaction with the account locked (so concurrent spends cannot both
    /// use the same points). Errors, each writing nothing: `validation` on `amount` when it is not
    /// positive or exceeds the available points; on `reason` (1 to 200 characters); on `patient_id`
    /// when the patient has no points account in this organization; `permission_denied` for actors
    /// that may not create point transactions (administrators and the platform may).
    pub async fn spend(&self, patient_id: Uuid, amount: i64, reason: &str) -> Result<PointTransaction> {
        if amount <= 0 {
            return Err(Error::validation("amount", "must be a positive number of points"));
        }
        self.record(NewPointTransaction::new(patient_id, TransactionType::Spent, -amount, reason, SourceType::Purchase))
            .await
    }

    /// A page of one patient's movements, newest first.
    pub async fn for_patient(&self, patient_id: Uuid, page: PageRequest) -> Result<Page<PointTransaction>> {
        rows::list_where(self.scope(), Filter::new().and_eq("patient_id", patient_id), &page).await
    }

    /// Sums the patient's ledger: `(earned, spent)`, where `earned` is the sum of every non-`SPENT`
    /// amount (earnings net of penalties, expirations and adjustments) and `spent` the magnitude of the
    /// `SPENT` amounts. For any account, `total_points == earned`, `spent_points == spent` and
    /// `available_points == earned - spent`. A patient without movements gives `(0, 0)`.
    pub async fn ledger_balance(&self, patient_id: Uuid) -> Result<(i64, i64)> {
        let scope = self.scope();
        check(
            scope,
            PointTransaction::TABLE,
            Action::Read,
            None,
            Some(patient_id),
            scope.authorize_patient(Resource::PointTransaction, Action::Read, patient_id),
        )
        .await?;
        let org = scope.organization_id();
        let mut tx = AuditTx::begin(scope).await?;
        let row = tx
            .fetch_optional(
                Query::new(
                    "SELECT \
                     CAST(COALESCE(SUM(CASE WHEN type = 'SPENT' THEN 0 ELSE amount END), 0) AS BIGINT) AS earned, \
                     CAST(COALESCE(SUM(CASE WHEN type = 'SPENT' THEN -amount ELSE 0 END), 0) AS BIGINT) AS spent, \
                     COUNT(*) AS n \
                     FROM point_transactions WHERE organization_id = $1 AND patient_id = $2",
                )
                .bind(org)
                .bind(patient_id),
            )
            .await?;
        // An aggregate over the patient's whole ledger: the event names the patient and how many
        // movements were summed.
        let summed = row.as_ref().map(|r| r.int("n")).transpose()?.unwrap_or(0);
        tx.record(Event::on(AuditAction::Read, PointTransaction::TABLE).patient(Some(patient_id)).count(summed))
            .await?;
        tx.commit().await?;
        match row {
            Some(r) => Ok((r.int("earned")?, r.int("spent")?)),
            None => Ok((0, 0)),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The mission workflow and streaks
// ---------------------------------------------------------------------------------------------

/// How long ahead of the clock an activity may be dated (clock skew between services).
const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);

fn conflict(field: &str) -> Error {
    Error::Conflict { field: field.into() }
}

/// Runs the access check of `action` on one patient's rows of `table`, recording a refusal.
async fn allow(scope: &Scope, table: &str, resource: Resource, action: Action, patient_id: Uuid) -> Result<()> {
    check(scope, table, action, None, Some(patient_id), scope.authorize_patient(resource, action, patient_id)).await
}

/// The patient's progress on the mission, read inside `tx` and locked until it ends.
async fn progress_locked(
    tx: &mut Tx,
    keys: &KeySet,
    organization: Uuid,
    patient_id: Uuid,
    mission_id: Uuid,
) -> Result<Option<OnboardingProgress>> {
    let sql = format!(
        "SELECT * FROM onboarding_progress WHERE organization_id = $1 AND patient_id = $2 AND mission_id = $3{}",
        tx.lock(RowLock::Update)
    );
    let row = tx.fetch_optional(Query::new(sql).bind(organization).bind(patient_id).bind(mission_id)).await?;
    row.map(|r| rows::decode(keys, &r)).transpose()
}

/// Whether `patient_id` is a live patient of the organization.
async fn patient_live(tx: &mut Tx, organization: Uuid, patient_id: Uuid) -> Result<bool> {
    let row = tx
        .fetch_optional(
            Query::new("SELECT id FROM patients WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL")
                .bind(organization)
                .bind(patient_id),
        )
        .await?;
    Ok(row.is_some())
}

/// The patient's IANA time zone (validated when it was written; anything else is corrupt data).
async fn patient_timezone(tx: &mut Tx, organization: Uuid, patient_id: Uuid) -> Result<Tz> {
    let row = tx
        .fetch_optional(
            Query::new("SELECT timezone FROM patients WHERE organization_id = $1 AND id = $2")
                .bind(organization)
                .bind(patient_id),
        )
        .await?
        .ok_or_else(|| Error::not_found("patient"))?;
    row.text("timezone")?.parse::<Tz>().map_err(|_| Error::CorruptData("column patients.timezone".into()))
}

/// Fails with a `conflict` naming what keeps the patient from starting `mission` now: `is_active`
/// (deactivated), `start_date` / `end_date` (outside its availability), `prerequisites` (a live
/// prerequisite the patient has not completed).
async fn check_startable(
    tx: &mut Tx,
    organization: Uuid,
    patient_id: Uuid,
    mission: &Mission,
    now: DateTime<Utc>,
) -> Result<()> {
    if !mission.is_active {
        return Err(conflict("is_active"));
    }
    if mission.start_date.is_some_and(|start| now < start) {
        return Err(conflict("start_date"));
    }
    if mission.end_date.is_some_and(|end| now > end) {
        return Err(conflict("end_date"));
    }
    if !missions::unmet_prerequisites(tx, organization, patient_id, mission.id).await?.is_empty() {
        return Err(conflict("prerequisites"));
    }
    Ok(())
}

/// The percentage done after `step` of `total` steps.
fn percent(step: i64, total: i64) -> f64 {
    if total <= 0 {
        return 0.0;
    }
    (step as f64 * 100.0 / total as f64).clamp(0.0, 100.0)
}

/// Counts an activity on the patient's local date `day` (at instant `at`) into the account's streaks:
/// the day after the last active day extends the daily streak, a later day restarts it at 1, the same
/// day changes nothing; likewise for ISO weeks (Monday to Sunday) and the weekly streak. A day before
/// the last active one (a late report) no longer changes the streaks, which only remember the last
/// active day.
fn register_activity(h: &mut HealthPoints, day: NaiveDate, at: DateTime<Utc>) {
    // The first recorded activity replaces the account's creation-time default.
    if at > h.last_active_date || h.last_active_local_date.is_none() {
        h.last_active_date = at;
    }
    match h.last_active_local_date {
        Some(last) if day < last => {}
        Some(last) if day == last => {
            h.daily_streak = h.daily_streak.max(1);
            h.weekly_streak = h.weekly_streak.max(1);
        }
        last => {
            let next_day = last.and_then(|l| l.checked_add_days(Days::new(1)));
            h.daily_streak = if next_day == Some(day) { h.daily_streak.saturating_add(1) } else { 1 };
            let week = week_start(day);
            h.weekly_streak = match last.map(week_start) {
                Some(w) if w == week => h.weekly_streak.max(1),
                Some(w) if w.checked_add_days(Days::new(7)) == Some(week) => h.weekly_streak.saturating_add(1),
                _ => 1,
            };
            h.last_active_local_date = Some(day);
        }
    }
    h.longest_streak = h.longest_streak.max(h.daily_streak);
}

impl OnboardingProgressRepo<'_> {
    /// Starts `mission_id` for `patient_id` and returns the progress: status `IN_PROGRESS`, step 0 of
    /// the mission's [`Mission::step_count`], `started_at` now, one more attempt. A patient without
    /// progress on the mission gets a new row; one whose progress is `NOT_STARTED`, `SKIPPED` or
    /// `FAILED` starts a new attempt on it; one already `IN_PROGRESS` gets the row back unchanged
    /// (a retried start is harmless). Everything runs in one transaction with the progress row locked.
    ///
    /// Errors, each writing nothing: `not_found` when the mission or the patient is not live in this
    /// organization; `conflict` on `status` when the patient already completed the mission, on
    /// `prerequisites` while a live prerequisite of the mission is not completed by this patient, on
    /// `is_active` for a deactivated mission, on `start_date` / `end_date` outside its availability;
    /// `permission_denied` for actors that may not create and update progress (administrators and the
    /// platform may; patients and providers only read it). Recorded as `CREATE` of the new row, or
    /// `UPDATE` listing the fields that changed (none for a retried start).
    pub async fn start(&self, patient_id: Uuid, mission_id: Uuid) -> Result<OnboardingProgress> {
        let scope = self.scope();
        const TABLE: &str = OnboardingProgress::TABLE;
        allow(scope, TABLE, Resource::OnboardingProgress, Action::Create, patient_id).await?;
        allow(scope, TABLE, Resource::OnboardingProgress, Action::Update, patient_id).await?;
        let org = scope.organization_id();
        let keys = scope.db().key_set(org, None).await?;
        let now = self.scope().now();
        let mut tx = AuditTx::begin(scope).await?;
        missions::lock_graph_shared(&mut tx, org).await?;
        let mission = missions::live_mission_shared(&mut tx, &keys, org, mission_id)
            .await?
            .ok_or_else(|| Error::not_found(Mission::ENTITY))?;
        if !patient_live(&mut tx, org, patient_id).await? {
            return Err(Error::not_found("patient"));
        }
        // At most twice: a start whose insert lost a race with another start finds that row next.
        for _ in 0..2 {
            let existing = progress_locked(&mut tx, &keys, org, patient_id, mission_id).await?;
            match existing.as_ref().map(|p| p.status) {
                Some(ProgressStatus::InProgress) => {
                    let progress = existing.ok_or_else(|| Error::not_found(OnboardingProgress::ENTITY))?;
                    tx.record(rows::update_event(&progress, Vec::new(), Some(patient_id))).await?;
                    tx.commit().await?;
                    return Ok(progress);
                }
                Some(ProgressStatus::Completed) => return Err(conflict("status")),
                _ => {}
            }
            check_startable(&mut tx, org, patient_id, &mission, now).await?;
            match existing {
                Some(mut progress) => {
                    let before = rows::fingerprints(&keys, &progress)?;
                    progress.status = ProgressStatus::InProgress;
                    progress.progress = 0.0;
                    progress.current_step = 0;
                    progress.total_steps = mission.step_count();
                    progress.started_at = Some(now);
                    progress.completed_at = None;
                    progress.attempts_count = progress.attempts_count.saturating_add(1);
                    progress.last_interaction_at = now;
                    progress.updated_at = now;
                    check_progress(&progress)?;
                    let changed = rows::changed_fields(&keys, &before, &progress)?;
                    rows::write_in(&mut tx, &keys, org, &progress).await?;
                    tx.record(rows::update_event(&progress, changed, Some(patient_id))).await?;
                    tx.commit().await?;
                    return Ok(progress);
                }
                None => {
                    let new = NewOnboardingProgress {
                        patient_id,
                        mission_id,
                        status: Some(ProgressStatus::InProgress),
                        total_steps: Some(mission.step_count()),
                        started_at: Some(now),
                        attempts_count: 1,
                        last_interaction_at: Some(now),
                        ..Default::default()
                    };
                    let progress = OnboardingProgress::build(org, Uuid::now_v7(), now, new)?;
                    let (insert, event) = rows::insert_query(&keys, org, &progress)?;
                    let mut insert = crate::db::QueryBuilder::from_query(insert);
                    insert.push(" ON CONFLICT DO NOTHING");
                    if tx.execute(insert.build()).await? > 0 {
                        tx.record(event).await?;
                        tx.commit().await?;
                        return Ok(progress);
                    }
                }
            }
        }
        Err(conflict("mission_id"))
    }

    /// Moves the patient's progress on the mission `steps` (>= 1) steps forward and returns it:
    /// `current_step` grows, `progress` becomes `100 * current_step / total_steps`, and
    /// `last_interaction_at` is now. Reaching the last step does not complete the mission: call
    /// [`OnboardingProgressRepo::complete`], which awards it.
    ///
    /// Errors, each writing nothing: `validation` on `steps` when it is below 1 or would move past
    /// the last step; `not_found` when the patient has no progress on the mission; `conflict` on
    /// `status` unless the progress is `IN_PROGRESS`; `permission_denied` for actors that may not
    /// update progress. Recorded as `UPDATE` listing the fields that changed.
    pub async fn advance(&self, patient_id: Uuid, mission_id: Uuid, steps: i64) -> Result<OnboardingProgress> {
        let scope = self.scope();
        allow(scope, OnboardingProgress::TABLE, Resource::OnboardingProgress, Action::Update, patient_id).await?;
        if steps < 1 {
            return Err(Error::validation("steps", "must be at least 1"));
        }
        let org = scope.organization_id();
        let keys = scope.db().key_set(org, None).await?;
        let now = self.scope().now();
        let mut tx = AuditTx::begin(scope).await?;
        let mut progress = progress_locked(&mut tx, &keys, org, patient_id, mission_id)
            .await?
            .ok_or_else(|| Error::not_found(OnboardingProgress::ENTITY))?;
        if progress.status != ProgressStatus::InProgress {
            return Err(conflict("status"));
        }
        let step = progress
            .current_step
            .checked_add(steps)
            .filter(|s| *s <= progress.total_steps)
            .ok_or_else(|| Error::validation("steps", "would move past the mission's last step"))?;
        let before = rows::fingerprints(&keys, &progress)?;
        progress.current_step = step;
        progress.progress = percent(step, progress.total_steps);
        progress.last_interaction_at = now;
        progress.updated_at = now;
        check_progress(&progress)?;
        let changed = rows::changed_fields(&keys, &before, &progress)?;
        rows::write_in(&mut tx, &keys, org, &progress).await?;
        tx.record(rows::update_event(&progress, changed, Some(patient_id))).await?;
        tx.commit().await?;
        Ok(progress)
    }

    /// Completes the patient's mission and awards it, exactly once: in one transaction it locks the
    /// progress row and, when the progress is `IN_PROGRESS` with every step done, marks it
    /// `COMPLETED` (progress 100, `completed_at` now), records an `EARNED` transaction of the
    /// mission's `points_reward` (source `MISSION`) and adds its `badge_reward` to the account's
    /// badges, updating the (locked) account's counters and level. A retried or racing call waits for
    /// the lock, finds the mission completed and returns it with `awarded: false`, writing nothing;
    /// the database also holds at most one such award per patient and mission. When the ledger already
    /// holds the mission's award (recorded by hand), the completion links it instead of paying twice.
    ///
    /// Errors, each writing nothing: `not_found` when the patient has no progress on the mission or
    /// the mission was deleted; `conflict` on `status` unless the progress is `IN_PROGRESS` (or already
    /// `COMPLETED`), on `current_step` while steps remain; `validation` on `patient_id` when a mission
    /// with a reward meets a patient without a points account, on `badges` when the account already
    /// holds 100 badges; `permission_denied` for actors that may not update progress, create point
    /// transactions and update accounts (administrators and the platform may). Recorded as one
    /// `UPDATE` of the progress listing the fields that changed (`status`, `points_earned`,
    /// `badge_earned`, ...; none for a retried call).
    pub async fn complete(&self, patient_id: Uuid, mission_id: Uuid) -> Result<Completion> {
        let scope = self.scope();
        allow(scope, OnboardingProgress::TABLE, Resource::OnboardingProgress, Action::Update, patient_id).await?;
        allow(scope, PointTransaction::TABLE, Resource::PointTransaction, Action::Create, patient_id).await?;
        allow(scope, HealthPoints::TABLE, Resource::HealthPoints, Action::Update, patient_id).await?;
        let org = scope.organization_id();
        let keys = scope.db().key_set(org, None).await?;
        let now = self.scope().now();
        let mut tx = AuditTx::begin(scope).await?;
        let mut progress = progress_locked(&mut tx, &keys, org, patient_id, mission_id)
            .await?
            .ok_or_else(|| Error::not_found(OnboardingProgress::ENTITY))?;
        match progress.status {
            ProgressStatus::Completed => {
                tx.record(rows::update_event(&progress, Vec::new(), Some(patient_id))).await?;
                tx.commit().await?;
                return Ok(Completion { progress, awarded: false, transaction: None });
            }
            ProgressStatus::InProgress => {}
            ProgressStatus::NotStarted | ProgressStatus::Skipped | ProgressStatus::Failed => {
                return Err(conflict("status"));
            }
        }
        if progress.current_step < progress.total_steps {
            return Err(conflict("current_step"));
        }
        let mission = missions::live_mission_shared(&mut tx, &keys, org, mission_id)
            .await?
            .ok_or_else(|| Error::not_found(Mission::ENTITY))?;
        let before = rows::fingerprints(&keys, &progress)?;
        let (points, transaction) = reward(&mut tx, &keys, patient_id, progress.id, &mission, now).await?;
        progress.status = ProgressStatus::Completed;
        progress.current_step = progress.total_steps;
        progress.progress = 100.0;
        progress.completed_at = Some(now);
        progress.points_earned = points;
        if mission.badge_reward.is_some() {
            progress.badge_earned = mission.badge_reward.clone();
        }
        progress.last_interaction_at = now;
        progress.updated_at = now;
        check_progress(&progress)?;
        let changed = rows::changed_fields(&keys, &before, &progress)?;
        rows::write_in(&mut tx, &keys, org, &progress).await?;
        tx.record(rows::update_event(&progress, changed, Some(patient_id))).await?;
        tx.commit().await?;
        Ok(Completion { progress, awarded: true, transaction })
    }
}

impl HealthPointsRepo<'_> {
    /// Records that the patient was active at `at` and returns the account with its streaks counted
    /// in the patient's own time zone (`patients.timezone`): `at` falls on a local date; the day after
    /// the last active local date extends `daily_streak`, a later one restarts it at 1, the same day
    /// changes nothing; consecutive ISO weeks (Monday to Sunday, local) extend `weekly_streak` the same
    /// way; `longest_streak` keeps the longest daily streak; `last_active_date` becomes `at` when later
    /// (or on the first recorded activity) and [`HealthPoints::last_active_local_date`] the local date.
    /// So 23:30 and 00:30 in São Paulo are two days even though both fall on one UTC date. An activity
    /// dated before the last active local date (a late report) changes no streak. Runs in one
    /// transaction with the account locked.
    ///
    /// Errors, each writing nothing: `validation` on `at` when it is more than 5 minutes in the future
    /// or outside the years 1900 to 9999 (in the patient's time zone); on `patient_id` when the patient
    /// has no points account in this organization; `permission_denied` for actors that may not update
    /// accounts (administrators and the platform may). Recorded as `UPDATE` listing the fields that
    /// changed.
    pub async fn record_activity(&self, patient_id: Uuid, at: DateTime<Utc>) -> Result<HealthPoints> {
        let scope = self.scope();
        allow(scope, HealthPoints::TABLE, Resource::HealthPoints, Action::Update, patient_id).await?;
        let now = self.scope().now();
        let at = crate::time::truncate(at);
        if at > now + MAX_CLOCK_SKEW {
            return Err(Error::validation("at", "must not be in the future"));
        }
        let org = scope.organization_id();
        let keys = scope.db().key_set(org, None).await?;
        let mut tx = AuditTx::begin(scope).await?;
        let mut account = account_locked(&mut tx, &keys, org, patient_id).await?;
        let zone = patient_timezone(&mut tx, org, patient_id).await?;
        let day = at.with_timezone(&zone).date_naive();
        if !(1900..=9999).contains(&day.year()) || !(1900..=9999).contains(&at.year()) {
            return Err(Error::validation("at", "must be between the years 1900 and 9999"));
        }
        let before = rows::fingerprints(&keys, &account)?;
        register_activity(&mut account, day, at);
        let changed = rows::changed_fields(&keys, &before, &account)?;
        if !changed.is_empty() {
            account.updated_at = now;
            check_account(&account)?;
            rows::write_in(&mut tx, &keys, org, &account).await?;
        }
        tx.record(rows::update_event(&account, changed, Some(patient_id))).await?;
        tx.commit().await?;
        Ok(account)
    }
}
