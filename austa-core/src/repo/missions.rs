//! Missions: the generic operations, the currently active missions, and prerequisites.
//!
//! Prerequisites live in `mission_prerequisites`, a join table with composite foreign keys. The API:
//! * [`Missions::create_with_prerequisites`] validates the mission, checks every prerequisite (a live
//!   mission of this organization, else `validation` on `prerequisites`), and writes the mission and
//!   its prerequisite rows in one transaction: on any error nothing is written. The generic
//!   [`Repo::create`] inserts only the mission row, so it rejects a non-empty `prerequisites` list
//!   (`validation` on `prerequisites`) rather than silently dropping it.
//! * [`Missions::add_prerequisite`] / [`Missions::remove_prerequisite`] edit one edge; adding rejects
//!   a self-reference and any edge that would close a cycle (a mission that can never be started).
//!   Graph edits are serialized per organization (an advisory lock on PostgreSQL; SQLite write
//!   transactions already are serialized), so two concurrent edits cannot build a cycle together.
//! * [`Missions::prerequisites`] lists the live prerequisites: a soft-deleted mission can no longer be
//!   completed, so it stops counting as a requirement.
//! * `onboarding_progress().start` refuses a mission while any live prerequisite is not completed by
//!   that patient; it reads the graph under the shared side of the edits' lock, so an edge added
//!   concurrently is either seen or added after the start commits.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{patch, rows, Model, Page, PageRequest, Repo, SoftDeletable, Updatable};
use crate::access::{Action, Resource};
use crate::db::{Filter, Query, RowLock, Tx};
use crate::error::{Error, Result};
use crate::kernel::event::read_event;
use crate::kernel::Record;
use crate::kernel::Sealed;
use crate::kernel::{check, AuditTx, Event};
use crate::model::{AuditAction, Mission, MissionPatch, NewMission};
use crate::scope::Scope;
use crate::validate;
use austa_crypto::KeySet;

/// Repository of missions.
pub type Missions<'s> = Repo<'s, Mission>;

impl Scope {
    /// Missions of this scope's organization.
    pub fn missions(&self) -> Missions<'_> {
        Repo::new(self)
    }
}

/// Most prerequisites a mission may have.
const MAX_PREREQUISITES: usize = 100;
/// Largest serialized `required_actions` accepted, in bytes.
const MAX_REQUIRED_ACTIONS_BYTES: usize = 16 * 1024;

fn title(v: &str) -> Result<String> {
    validate::text("title", v, 1, 200)
}

fn description(v: &str) -> Result<String> {
    validate::text("description", v, 1, 2000)
}

fn badge_reward(v: Option<&str>) -> Result<Option<String>> {
    validate::opt_text("badge_reward", v, 1, 100)
}

fn unlock_reward(v: Option<&str>) -> Result<Option<String>> {
    validate::opt_text("unlock_reward", v, 1, 200)
}

fn opt_minutes(v: Option<i64>) -> Result<Option<i64>> {
    v.map(|m| validate::non_negative("estimated_time_minutes", m)).transpose()
}

/// A JSON object of bounded size; its `steps`, when present, a list of objects with unique string
/// ids and optional boolean `completed`.
fn required_actions(v: serde_json::Value) -> Result<serde_json::Value> {
    const FIELD: &str = "required_actions";
    let Some(object) = v.as_object() else {
        return Err(Error::validation(FIELD, "must be a JSON object"));
    };
    if v.to_string().len() > MAX_REQUIRED_ACTIONS_BYTES {
        return Err(Error::validation(FIELD, "must be at most 16 KiB of JSON"));
    }
    if let Some(steps) = object.get("steps") {
        let Some(steps) = steps.as_array() else {
            return Err(Error::validation(FIELD, "steps must be a list"));
        };
        let mut seen = BTreeSet::new();
        for step in steps {
            let id = step
                .get("id")
                .and_then(|i| i.as_str())
                .ok_or_else(|| Error::validation(FIELD, "every step must be an object with a string id"))?;
            validate::text(FIELD, id, 1, 100)?;
            if !seen.insert(id) {
                return Err(Error::validation(FIELD, "step ids must be unique"));
            }
            if step.get("completed").is_some_and(|c| !c.is_boolean()) {
                return Err(Error::validation(FIELD, "a step's completed must be a boolean"));
            }
        }
    }
    Ok(v)
}

fn check_dates(m: &Mission) -> Result<()> {
    validate::ordered("end_date", m.start_date.as_ref(), m.end_date.as_ref())
}

impl Sealed for Mission {}

impl Model for Mission {
    type New = NewMission;

    fn build(organization: Uuid, id: Uuid, now: DateTime<Utc>, new: NewMission) -> Result<Self> {
        if !new.prerequisites.is_empty() {
            return Err(Error::validation(
                "prerequisites",
                "create only inserts the mission: use create_with_prerequisites",
            ));
        }
        let mission = Mission {
            id,
            organization_id: organization,
            title: title(&new.title)?,
            description: description(&new.description)?,
            category: new.category,
            difficulty: new.difficulty.unwrap_or(crate::model::DifficultyLevel::Easy),
            points_reward: validate::non_negative("points_reward", new.points_reward)?,
            badge_reward: badge_reward(new.badge_reward.as_deref())?,
            unlock_reward: unlock_reward(new.unlock_reward.as_deref())?,
            required_actions: required_actions(new.required_actions)?,
            is_active: new.is_active.unwrap_or(true),
            start_date: new.start_date.map(crate::time::truncate),
            end_date: new.end_date.map(crate::time::truncate),
            estimated_time_minutes: opt_minutes(new.estimated_time_minutes)?,
            tags: validate::labels("tags", &new.tags)?,
            created_at: now,
            updated_at: now,
            deleted_at: None,
        };
        check_dates(&mission)?;
        Ok(mission)
    }
}

impl Updatable for Mission {
    type Patch = MissionPatch;

    fn apply(&mut self, p: MissionPatch, now: DateTime<Utc>) -> Result<()> {
        patch!(self.title, p.title, |v| title(&v)?);
        patch!(self.description, p.description, |v| description(&v)?);
        patch!(self.category, p.category);
        patch!(self.difficulty, p.difficulty);
        patch!(self.points_reward, p.points_reward, |v| validate::non_negative("points_reward", v)?);
        patch!(self.badge_reward, p.badge_reward, |v| badge_reward(v.as_deref())?);
        patch!(self.unlock_reward, p.unlock_reward, |v| unlock_reward(v.as_deref())?);
        patch!(self.required_actions, p.required_actions, |v| required_actions(v)?);
        patch!(self.is_active, p.is_active);
        patch!(self.start_date, p.start_date, |v| v.map(crate::time::truncate));
        patch!(self.end_date, p.end_date, |v| v.map(crate::time::truncate));
        patch!(self.estimated_time_minutes, p.estimated_time_minutes, |v| opt_minutes(v)?);
        patch!(self.tags, p.tags, |v| validate::labels("tags", &v)?);
        check_dates(self)?;
        self.updated_at = now;
        Ok(())
    }
}

impl SoftDeletable for Mission {}

/// Whether `id` is a live mission of `organization`, locking it (PostgreSQL) so it cannot be
/// soft-deleted before the transaction ends.
async fn live_mission_locked(tx: &mut Tx, organization: Uuid, id: Uuid) -> Result<bool> {
    let sql = format!(
        "SELECT id FROM missions WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL{}",
        tx.lock(RowLock::Update)
    );
    Ok(tx.fetch_optional(Query::new(sql).bind(organization).bind(id)).await?.is_some())
}

fn insert_edge(organization: Uuid, mission: Uuid, prerequisite: Uuid, now: DateTime<Utc>) -> Query {
    Query::new(
        "INSERT INTO mission_prerequisites \
         (organization_id, mission_id, prerequisite_mission_id, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT DO NOTHING",
    )
    .bind(organization)
    .bind(mission)
    .bind(prerequisite)
    .bind(now)
}

/// The advisory lock namespace of an organization's mission prerequisite graph.
const GRAPH_LOCK: &str = "austa:mission-graph";

/// Serializes prerequisite-graph edits of one organization until the transaction ends (PostgreSQL;
/// SQLite write transactions hold the database's write lock already).
async fn lock_graph(tx: &mut Tx, organization: Uuid) -> Result<()> {
    tx.advisory_lock(GRAPH_LOCK, &organization.to_string(), false).await
}

/// Holds the organization's prerequisite graph steady until the transaction ends (PostgreSQL: the
/// shared side of [`lock_graph`]'s advisory lock, so that missions can be started concurrently while
/// graph edits wait; SQLite write transactions are serialized already). Used by
/// `onboarding_progress().start`, whose prerequisite check must not race an `add_prerequisite`.
pub(crate) async fn lock_graph_shared(tx: &mut Tx, organization: Uuid) -> Result<()> {
    tx.advisory_lock(GRAPH_LOCK, &organization.to_string(), true).await
}

/// The live mission `id` of `organization`, read inside `tx` with a share lock (PostgreSQL) so that it
/// cannot be soft-deleted or changed before the transaction ends; `None` when there is none.
pub(crate) async fn live_mission_shared(
    tx: &mut Tx,
    keys: &KeySet,
    organization: Uuid,
    id: Uuid,
) -> Result<Option<Mission>> {
    let share = tx.lock(RowLock::Share);
    let sql = format!("SELECT * FROM missions WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL{share}");
    let row = tx.fetch_optional(Query::new(sql).bind(organization).bind(id)).await?;
    row.map(|r| rows::decode(keys, &r)).transpose()
}

/// The live prerequisites of `mission_id` that `patient_id` has not completed (no progress row with
/// status `COMPLETED`), in the order [`Missions::prerequisites`] lists them.
pub(crate) async fn unmet_prerequisites(
    tx: &mut Tx,
    organization: Uuid,
    patient_id: Uuid,
    mission_id: Uuid,
) -> Result<Vec<Uuid>> {
    let rows = tx
        .fetch_all(
            Query::new(
                "SELECT p.prerequisite_mission_id FROM mission_prerequisites p \
                 JOIN missions m ON m.organization_id = p.organization_id \
                  AND m.id = p.prerequisite_mission_id AND m.deleted_at IS NULL \
                 WHERE p.organization_id = $1 AND p.mission_id = $2 \
                 AND NOT EXISTS (SELECT 1 FROM onboarding_progress o \
                   WHERE o.organization_id = p.organization_id AND o.patient_id = $3 \
                   AND o.mission_id = p.prerequisite_mission_id AND o.status = 'COMPLETED') \
                 ORDER BY p.created_at, p.prerequisite_mission_id",
            )
            .bind(organization)
            .bind(mission_id)
            .bind(patient_id),
        )
        .await?;
    rows.iter().map(|r| r.uuid("prerequisite_mission_id")).collect()
}

/// Marks a live mission changed (which also locks its row); `not_found` when there is none.
async fn touch_mission(tx: &mut Tx, organization: Uuid, id: Uuid, now: DateTime<Utc>) -> Result<()> {
    let affected = tx
        .execute(
            Query::new(
                "UPDATE missions SET updated_at = $1 \
                 WHERE organization_id = $2 AND id = $3 AND deleted_at IS NULL",
            )
            .bind(now)
            .bind(organization)
            .bind(id),
        )
        .await?;
    if affected == 0 {
        return Err(Error::not_found(Mission::ENTITY));
    }
    Ok(())
}

/// The event of a change to a mission's prerequisites.
fn mission_update(mission_id: Uuid) -> Event {
    Event::on(AuditAction::Update, Mission::TABLE).entity(mission_id).records([mission_id]).changed(["prerequisites"])
}

impl Missions<'_> {
    /// Validates `new` and stores the mission and its prerequisite rows in one transaction; returns
    /// the mission. Every prerequisite must be a live mission of this organization, else the error is
    /// `validation` on `prerequisites` and nothing is written (not even the mission). Duplicate
    /// prerequisite ids are ignored.
    pub async fn create_with_prerequisites(&self, new: NewMission) -> Result<Mission> {
        self.create_with_prerequisites_and_id(Uuid::now_v7(), new).await
    }

    /// [`Missions::create_with_prerequisites`] with a caller-chosen id (the development seed's stable
    /// ids).
    pub(crate) async fn create_with_prerequisites_and_id(&self, id: Uuid, mut new: NewMission) -> Result<Mission> {
        let scope = self.scope();
        check(scope, Mission::TABLE, Action::Create, None, None, scope.authorize(Resource::Mission, Action::Create))
            .await?;
        let prerequisites: Vec<Uuid> =
            std::mem::take(&mut new.prerequisites).into_iter().collect::<BTreeSet<_>>().into_iter().collect();
        if prerequisites.len() > MAX_PREREQUISITES {
            return Err(Error::validation("prerequisites", "must have at most 100 entries"));
        }
        if prerequisites.contains(&id) {
            return Err(Error::validation("prerequisites", "a mission cannot be its own prerequisite"));
        }
        let org = scope.organization_id();
        let now = self.scope().now();
        let mission = Mission::build(org, id, now, new)?;
        let keys = scope.db().key_set(org, None).await?;
        let (insert, mut event) = rows::insert_query(&keys, org, &mission)?;
        if !prerequisites.is_empty() {
            event = event.changed(["prerequisites"]);
        }
        let mut tx = AuditTx::begin(scope).await?;
        // Sorted ids: concurrent creations lock shared prerequisites in the same order.
        for p in &prerequisites {
            if !live_mission_locked(&mut tx, org, *p).await? {
                return Err(Error::validation(
                    "prerequisites",
                    "refers to a mission that does not exist in this organization",
                ));
            }
        }
        tx.execute(insert).await?;
        for p in &prerequisites {
            tx.execute(insert_edge(org, mission.id, *p, now)).await?;
        }
        tx.record(event).await?;
        tx.commit().await?;
        Ok(mission)
    }

    /// The live prerequisites of a live mission, ordered by when they were added, then by id;
    /// `not_found` when the mission does not exist in this organization.
    pub async fn prerequisites(&self, mission_id: Uuid) -> Result<Vec<Uuid>> {
        let scope = self.scope();
        check(
            scope,
            Mission::TABLE,
            Action::Read,
            Some(mission_id),
            None,
            scope.authorize(Resource::Mission, Action::Read),
        )
        .await?;
        let org = scope.organization_id();
        let mut tx = AuditTx::begin_read(scope).await?;
        let exists = tx
            .fetch_optional(
                Query::new(
                    "SELECT id FROM missions \
                     WHERE organization_id = $1 AND id = $2 AND deleted_at IS NULL",
                )
                .bind(org)
                .bind(mission_id),
            )
            .await?
            .is_some();
        if !exists {
            // Like `get`: a read naming a missing mission is recorded as NOT_FOUND.
            tx.record(read_event(Mission::TABLE, &[], Some(mission_id))?).await?;
            tx.commit().await?;
            return Err(Error::not_found(Mission::ENTITY));
        }
        let rows = tx
            .fetch_all(
                Query::new(
                    "SELECT p.prerequisite_mission_id FROM mission_prerequisites p \
                     JOIN missions m ON m.organization_id = p.organization_id \
                      AND m.id = p.prerequisite_mission_id AND m.deleted_at IS NULL \
                     WHERE p.organization_id = $1 AND p.mission_id = $2 \
                     ORDER BY p.created_at, p.prerequisite_mission_id",
                )
                .bind(org)
                .bind(mission_id),
            )
            .await?;
        let ids = rows.iter().map(|r| r.uuid("prerequisite_mission_id")).collect::<Result<Vec<_>>>()?;
        tx.record(Event::on(AuditAction::Read, Mission::TABLE).entity(mission_id).records(ids.iter().copied())).await?;
        tx.commit().await?;
        Ok(ids)
    }

    /// Makes `prerequisite_id` a prerequisite of `mission_id`. Returns false when it already was.
    /// Errors: `not_found` when `mission_id` is not a live mission of this organization; `validation`
    /// on `prerequisite_mission_id` for a self-reference, a prerequisite that is not a live mission of
    /// this organization, or an edge that would make a cycle.
    pub async fn add_prerequisite(&self, mission_id: Uuid, prerequisite_id: Uuid) -> Result<bool> {
        const FIELD: &str = "prerequisite_mission_id";
        let scope = self.scope();
        check(
            scope,
            Mission::TABLE,
            Action::Update,
            Some(mission_id),
            None,
            scope.authorize(Resource::Mission, Action::Update),
        )
        .await?;
        if mission_id == prerequisite_id {
            return Err(Error::validation(FIELD, "a mission cannot be its own prerequisite"));
        }
        let org = scope.organization_id();
        let now = self.scope().now();
        let mut tx = AuditTx::begin(scope).await?;
        lock_graph(&mut tx, org).await?;
        touch_mission(&mut tx, org, mission_id, now).await?;
        if !live_mission_locked(&mut tx, org, prerequisite_id).await? {
            return Err(Error::validation(FIELD, "refers to a mission that does not exist in this organization"));
        }
        // A cycle appears if the prerequisite already (transitively) requires the mission.
        let cycle = tx
            .fetch_optional(
                Query::new(
                    "WITH RECURSIVE reach(id) AS ( \
                       SELECT prerequisite_mission_id FROM mission_prerequisites \
                       WHERE organization_id = $1 AND mission_id = $2 \
                       UNION \
                       SELECT p.prerequisite_mission_id FROM mission_prerequisites p \
                       JOIN reach r ON p.mission_id = r.id WHERE p.organization_id = $1 \
                     ) SELECT id FROM reach WHERE id = $3 LIMIT 1",
                )
                .bind(org)
                .bind(prerequisite_id)
                .bind(mission_id),
            )
            .await?
            .is_some();
        if cycle {
            return Err(Error::validation(FIELD, "would make a cycle: the prerequisite already requires this mission"));
        }
        let count = tx
            .fetch_optional(
                Query::new(
                    "SELECT COUNT(*) AS n FROM mission_prerequisites \
                     WHERE organization_id = $1 AND mission_id = $2",
                )
                .bind(org)
                .bind(mission_id),
            )
            .await?
            .map(|r| r.int("n"))
            .transpose()?
            .unwrap_or(0);
        let added = tx.execute(insert_edge(org, mission_id, prerequisite_id, now)).await? > 0;
        if !added {
            // Already a prerequisite: nothing changed, so the transaction is dropped (rolled back),
            // leaving the mission's updated_at alone, as remove_prerequisite does.
            return Ok(false);
        }
        if count >= MAX_PREREQUISITES as i64 {
            return Err(Error::validation("prerequisites", "must have at most 100 entries"));
        }
        tx.record(mission_update(mission_id)).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Removes `prerequisite_id` from the prerequisites of `mission_id`. Returns false when it was not
    /// one; `not_found` when `mission_id` is not a live mission of this organization.
    pub async fn remove_prerequisite(&self, mission_id: Uuid, prerequisite_id: Uuid) -> Result<bool> {
        let scope = self.scope();
        check(
            scope,
            Mission::TABLE,
            Action::Update,
            Some(mission_id),
            None,
            scope.authorize(Resource::Mission, Action::Update),
        )
        .await?;
        let org = scope.organization_id();
        let now = self.scope().now();
        let mut tx = AuditTx::begin(scope).await?;
        touch_mission(&mut tx, org, mission_id, now).await?;
        let removed = tx
            .execute(
                Query::new(
                    "DELETE FROM mission_prerequisites \
                     WHERE organization_id = $1 AND mission_id = $2 AND prerequisite_mission_id = $3",
                )
                .bind(org)
                .bind(mission_id)
                .bind(prerequisite_id),
            )
            .await?
            > 0;
        if !removed {
            // Nothing changed: do not bump the mission's updated_at (the transaction is dropped).
            return Ok(false);
        }
        tx.record(mission_update(mission_id)).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Missions patients can take now: active, not deleted, and now within the start and end dates
    /// where they are set. Newest first.
    pub async fn active(&self, page: PageRequest) -> Result<Page<Mission>> {
        self.active_at(self.scope().now(), page).await
    }

    /// Missions that are (or were, or will be) available at `at`: active, not deleted, and `at`
    /// within the start and end dates where they are set. Newest first.
    pub async fn active_at(&self, at: DateTime<Utc>, page: PageRequest) -> Result<Page<Mission>> {
        let at = crate::time::truncate(at);
        let filter = Filter::new()
            .and_eq("is_active", true)
            .push(" AND (start_date IS NULL OR start_date <= ")
            .push_bind(at)
            .push(") AND (end_date IS NULL OR end_date >= ")
            .push_bind(at)
            .push(")");
        rows::list_where(self.scope(), filter, &page).await
    }
}
