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
//!   computes from the ledger alone.

use std::collections::BTreeSet;
use std::convert::Infallible;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{table, Model, Page, PageRequest, Repo, Sealed, Updatable};
use crate::access::{Action, Resource};
use crate::audit::{check, AuditTx, Event};
use crate::crypto::RowCrypto;
use crate::db::{IntoValue, Query, Row, Value};
use crate::error::{Error, Result};
use crate::model::{
    Achievement, AuditAction, HealthPoints, HealthPointsPatch, NewHealthPoints, NewOnboardingProgress,
    NewPointTransaction, OnboardingProgress, OnboardingProgressPatch, PointTransaction, ProgressStatus, SourceType,
    TransactionType,
};
use crate::scope::Scope;
use crate::validate;

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

fn json_of<T: serde::Serialize>(field: &str, v: &T) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|_| Error::validation(field, "cannot be serialized"))
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
    const TABLE: &'static str = "onboarding_progress";
    const ENTITY: &'static str = "onboarding_progress";
    const SOFT_DELETE: bool = false;

    fn id(&self) -> Uuid {
        self.id
    }

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

    fn columns(&self, _c: &RowCrypto<'_>) -> Result<Vec<(&'static str, Value)>> {
        Ok(vec![
            ("id", self.id.into_value()),
            ("patient_id", self.patient_id.into_value()),
            ("mission_id", self.mission_id.into_value()),
            ("status", self.status.as_str().into_value()),
            ("progress", self.progress.into_value()),
            ("current_step", self.current_step.into_value()),
            ("total_steps", self.total_steps.into_value()),
            ("started_at", self.started_at.into_value()),
            ("completed_at", self.completed_at.into_value()),
            ("points_earned", self.points_earned.into_value()),
            ("badge_earned", self.badge_earned.clone().into_value()),
            ("attempts_count", self.attempts_count.into_value()),
            ("time_spent_minutes", self.time_spent_minutes.into_value()),
            ("last_interaction_at", self.last_interaction_at.into_value()),
            ("created_at", self.created_at.into_value()),
            ("updated_at", self.updated_at.into_value()),
        ])
    }

    fn from_row(row: &Row, _c: &RowCrypto<'_>) -> Result<Self> {
        Ok(OnboardingProgress {
            id: row.uuid("id")?,
            organization_id: row.uuid("organization_id")?,
            patient_id: row.uuid("patient_id")?,
            mission_id: row.uuid("mission_id")?,
            status: row.enumeration("status")?,
            progress: row.float("progress")?,
            current_step: row.int("current_step")?,
            total_steps: row.int("total_steps")?,
            started_at: row.opt_time("started_at")?,
            completed_at: row.opt_time("completed_at")?,
            points_earned: row.int("points_earned")?,
            badge_earned: row.opt_text("badge_earned")?,
            attempts_count: row.int("attempts_count")?,
            time_spent_minutes: row.int("time_spent_minutes")?,
            last_interaction_at: row.time("last_interaction_at")?,
            created_at: row.time("created_at")?,
            updated_at: row.time("updated_at")?,
        })
    }
}

impl Updatable for OnboardingProgress {
    type Patch = OnboardingProgressPatch;

    fn apply(&mut self, p: OnboardingProgressPatch, now: DateTime<Utc>) -> Result<()> {
        if let Some(v) = p.status {
            self.status = v;
        }
        if let Some(v) = p.progress {
            self.progress = v;
        }
        if let Some(v) = p.current_step {
            self.current_step = v;
        }
        if let Some(v) = p.total_steps {
            self.total_steps = v;
        }
        if let Some(v) = p.started_at {
            self.started_at = v.map(crate::time::truncate);
        }
        if let Some(v) = p.completed_at {
            self.completed_at = v.map(crate::time::truncate);
        }
        if let Some(v) = p.points_earned {
            self.points_earned = v;
        }
        if let Some(v) = p.badge_earned {
            self.badge_earned = badge("badge_earned", v.as_deref())?;
        }
        if let Some(v) = p.attempts_count {
            self.attempts_count = v;
        }
        if let Some(v) = p.time_spent_minutes {
            self.time_spent_minutes = v;
        }
        if let Some(v) = p.last_interaction_at {
            self.last_interaction_at = crate::time::truncate(v);
        }
        check_progress(self)?;
        self.updated_at = now;
        Ok(())
    }
}

impl OnboardingProgressRepo<'_> {
    /// A page of one patient's mission progress, newest first.
    pub async fn for_patient(&self, patient_id: Uuid, page: PageRequest) -> Result<Page<OnboardingProgress>> {
        table::list_where(self.scope(), " AND patient_id = $2", vec![patient_id.into_value()], &page).await
    }

    /// The patient's progress on the mission, if any.
    pub async fn find(&self, patient_id: Uuid, mission_id: Uuid) -> Result<Option<OnboardingProgress>> {
        table::find_where(
            self.scope(),
            " AND patient_id = $2 AND mission_id = $3",
            vec![patient_id.into_value(), mission_id.into_value()],
        )
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
    const TABLE: &'static str = "health_points";
    const ENTITY: &'static str = "health_points";
    const SOFT_DELETE: bool = false;

    fn id(&self) -> Uuid {
        self.id
    }

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
            created_at: now,
            updated_at: now,
        };
        check_account(&h)?;
        Ok(h)
    }

    fn columns(&self, _c: &RowCrypto<'_>) -> Result<Vec<(&'static str, Value)>> {
        Ok(vec![
            ("id", self.id.into_value()),
            ("patient_id", self.patient_id.into_value()),
            ("total_points", self.total_points.into_value()),
            ("available_points", self.available_points.into_value()),
            ("spent_points", self.spent_points.into_value()),
            ("onboarding_points", self.onboarding_points.into_value()),
            ("engagement_points", self.engagement_points.into_value()),
            ("health_points", self.health_points.into_value()),
            ("achievement_points", self.achievement_points.into_value()),
            ("current_level", self.current_level.into_value()),
            ("experience_points", self.experience_points.into_value()),
            ("next_level_at", self.next_level_at.into_value()),
            ("badges", json_of("badges", &self.badges)?.into_value()),
            ("achievements", json_of("achievements", &self.achievements)?.into_value()),
            ("daily_streak", self.daily_streak.into_value()),
            ("weekly_streak", self.weekly_streak.into_value()),
            ("longest_streak", self.longest_streak.into_value()),
            ("last_active_date", self.last_active_date.into_value()),
            ("created_at", self.created_at.into_value()),
            ("updated_at", self.updated_at.into_value()),
        ])
    }

    fn from_row(row: &Row, _c: &RowCrypto<'_>) -> Result<Self> {
        Ok(HealthPoints {
            id: row.uuid("id")?,
            organization_id: row.uuid("organization_id")?,
            patient_id: row.uuid("patient_id")?,
            total_points: row.int("total_points")?,
            available_points: row.int("available_points")?,
            spent_points: row.int("spent_points")?,
            onboarding_points: row.int("onboarding_points")?,
            engagement_points: row.int("engagement_points")?,
            health_points: row.int("health_points")?,
            achievement_points: row.int("achievement_points")?,
            current_level: row.int("current_level")?,
            experience_points: row.int("experience_points")?,
            next_level_at: row.int("next_level_at")?,
            badges: row.string_list("badges")?,
            achievements: serde_json::from_value(row.json("achievements")?)
                .map_err(|e| Error::CorruptData(format!("column achievements: {e}")))?,
            daily_streak: row.int("daily_streak")?,
            weekly_streak: row.int("weekly_streak")?,
            longest_streak: row.int("longest_streak")?,
            last_active_date: row.time("last_active_date")?,
            created_at: row.time("created_at")?,
            updated_at: row.time("updated_at")?,
        })
    }
}

impl Updatable for HealthPoints {
    type Patch = HealthPointsPatch;

    fn apply(&mut self, p: HealthPointsPatch, now: DateTime<Utc>) -> Result<()> {
        if let Some(v) = p.current_level {
            self.current_level = v;
        }
        if let Some(v) = p.next_level_at {
            self.next_level_at = v;
        }
        if let Some(v) = p.badges {
            self.badges = badges(&v)?;
        }
        if let Some(v) = p.achievements {
            self.achievements = achievements(v)?;
        }
        if let Some(v) = p.daily_streak {
            self.daily_streak = v;
        }
        if let Some(v) = p.weekly_streak {
            self.weekly_streak = v;
        }
        if let Some(v) = p.longest_streak {
            self.longest_streak = v;
        }
        if let Some(v) = p.last_active_date {
            self.last_active_date = crate::time::truncate(v);
        }
        check_account(self)?;
        self.updated_at = now;
        Ok(())
    }
}

impl HealthPointsRepo<'_> {
    /// The patient's points account, if it has one.
    pub async fn for_patient(&self, patient_id: Uuid) -> Result<Option<HealthPoints>> {
        table::find_where(self.scope(), " AND patient_id = $2", vec![patient_id.into_value()]).await
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
    const TABLE: &'static str = "point_transactions";
    const ENTITY: &'static str = "point_transaction";
    const SOFT_DELETE: bool = false;

    fn id(&self) -> Uuid {
        self.id
    }

    fn build(_organization: Uuid, _id: Uuid, _now: DateTime<Utc>, new: Infallible) -> Result<Self> {
        match new {}
    }

    fn columns(&self, _c: &RowCrypto<'_>) -> Result<Vec<(&'static str, Value)>> {
        Ok(vec![
            ("id", self.id.into_value()),
            ("patient_id", self.patient_id.into_value()),
            ("health_points_id", self.health_points_id.into_value()),
            ("type", self.transaction_type.as_str().into_value()),
            ("amount", self.amount.into_value()),
            ("reason", self.reason.clone().into_value()),
            ("description", self.description.clone().into_value()),
            ("source_type", self.source_type.as_str().into_value()),
            ("source_mission_id", self.source_mission_id.into_value()),
            ("source_conversation_id", self.source_conversation_id.into_value()),
            ("metadata", self.metadata.clone().into_value()),
            ("created_at", self.created_at.into_value()),
        ])
    }

    fn from_row(row: &Row, _c: &RowCrypto<'_>) -> Result<Self> {
        Ok(PointTransaction {
            id: row.uuid("id")?,
            organization_id: row.uuid("organization_id")?,
            patient_id: row.uuid("patient_id")?,
            health_points_id: row.uuid("health_points_id")?,
            transaction_type: row.enumeration("type")?,
            amount: row.int("amount")?,
            reason: row.text("reason")?,
            description: row.opt_text("description")?,
            source_type: row.enumeration("source_type")?,
            source_mission_id: row.opt_uuid("source_mission_id")?,
            source_conversation_id: row.opt_uuid("source_conversation_id")?,
            metadata: row.opt_json("metadata")?,
            created_at: row.time("created_at")?,
        })
    }
}

impl PointTransactions<'_> {
    /// Records a movement of points and updates the patient's account, in one transaction (the
    /// account row is locked). Errors, each writing nothing: `validation` on `amount` (zero, wrong
    /// sign for the type, or a negative amount larger than the available points), on
    /// `source_mission_id` (missing for a `MISSION` source, or not a live mission of this
    /// organization), on `source_conversation_id` (not a live conversation of this organization and
    /// patient), on `patient_id` (no points account in this organization), or on `reason`,
    /// `description`, `metadata`.
    pub async fn record(&self, new: NewPointTransaction) -> Result<PointTransaction> {
        self.record_with_id(Uuid::now_v7(), new).await
    }

    /// [`PointTransactions::record`] with a caller-chosen id (the development seed's stable ids).
    pub(crate) async fn record_with_id(&self, id: Uuid, new: NewPointTransaction) -> Result<PointTransaction> {
        let scope = self.scope();
        let org = scope.organization_id();
        let now = crate::time::now();
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
        let sql = format!(
            "SELECT * FROM health_points WHERE organization_id = $1 AND patient_id = $2{}",
            table::lock_clause(&tx)
        );
        let row = tx
            .fetch_optional(Query::new(sql).bind(org).bind(transaction.patient_id))
            .await?
            .ok_or_else(|| Error::validation("patient_id", "has no points account in this organization"))?;
        let mut account: HealthPoints = table::decode(&keys, &row)?;
        transaction.health_points_id = account.id;
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
        apply_to_account(&mut account, &transaction, now)?;
        let (insert, event) = table::insert_query(&keys, org, &transaction)?;
        tx.execute(insert).await?;
        table::write_in(&mut tx, &keys, org, &account).await?;
        // One operation, one event: the movement (the account's new counters follow from it).
        tx.record(event.patient(Some(patient))).await?;
        tx.commit().await?;
        Ok(transaction)
    }

    /// A page of one patient's movements, newest first.
    pub async fn for_patient(&self, patient_id: Uuid, page: PageRequest) -> Result<Page<PointTransaction>> {
        table::list_where(self.scope(), " AND patient_id = $2", vec![patient_id.into_value()], &page).await
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
