//! WhatsApp Cloud API webhook ingest: `db.whatsapp().ingest(body)` stores a webhook
//! body exactly as Meta posts it, in one transaction.
//!
//! **Organization.** A body names the hospital's business number (`metadata.phone_number_id`), not an
//! organization. Organization settings are encrypted under the organization's key, so they cannot be
//! searched before the organization is known; a blind index has the same problem (its key is the
//! organization's). The number is therefore registered in a table of its own, `whatsapp_numbers`, with
//! [`Scope::register_whatsapp_number`] (administrators and platform tooling). The number id is Meta's
//! identifier of the business line, not personal data, stored in plain text, held by one organization
//! at most (checked when registering; a number two organizations hold is never routed).
//! On PostgreSQL the table is under row-level security: an organization sees its own numbers, and the
//! webhook's lookup, which names the number in a transaction-local setting, sees that one row only;
//! nobody can list other organizations' numbers. An unregistered number is a `validation` error on
//! `entry[i].changes[j].value.metadata.phone_number_id` and nothing is stored. A body whose numbers
//! belong to two organizations is refused the same way (one body is one transaction, bound to one
//! organization). A handle remembers where each number's last body went; a body whose numbers it
//! remembers runs as one transaction that first checks, under that organization's tenant, that each
//! number is still registered to it alone and that it is live; when that fails (a moved number, a
//! deleted organization) the body is routed afresh. The memory saves a transaction, never a check.
//!
//! **Who.** The ingest runs as `Actor::system("whatsapp-webhook")` in the found organization. The sender
//! (`messages[].from`, a WhatsApp id) is the chat: an open conversation of that chat (ACTIVE, PAUSED,
//! ESCALATED) decides the patient; otherwise the patient is found by WhatsApp id, then by phone
//! `+<wa_id>` (blind indexes; soft-deleted patients are matched too, since their identifiers stay
//! taken); otherwise a new, unverified patient is created with the profile name of `contacts[]`
//! (first word as first name, the rest as last name; `WhatsApp` stands in for a missing part) and phone
//! `+<wa_id>`. A chat without an open conversation (none yet, or the last one COMPLETED or ARCHIVED)
//! gets a new ACTIVE conversation starting at the message's time.
//!
//! **Messages.** Stored INBOUND from the PATIENT, status DELIVERED, `sent_at` = the WhatsApp timestamp.
//! `content` holds the text, the media caption, the button or list-row title, or the reaction emoji;
//! `media_type` the MIME type without parameters (`audio/ogg`); the encrypted `metadata` holds the raw
//! message object without `id`, `from` and `timestamp` (media id, SHA-256, file name, location,
//! contacts, reply context, ...) plus `whatsapp_type` (Meta's type name). Types map to
//! [`MessageType`](crate::model::MessageType) as: text TEXT; image, audio, video, document, sticker,
//! location their namesakes; contacts CONTACT; interactive (button_reply, list_reply, flows), button
//! (template quick reply) and reaction INTERACTIVE (told apart by `whatsapp_type`). Any other type, or a
//! known type missing its part (a text without body, a media object without id), is stored as
//! INTERACTIVE with metadata `unsupported: true`: never dropped, never failing the body.
//!
//! **Idempotence.** A message whose wamid is already stored (retried delivery, repeated within the body)
//! is skipped and counted as a duplicate; the lookup runs in the transaction. Two concurrent ingests of
//! the same body race on the unique indexes (wamid, the patient's WhatsApp id, the open chat): on
//! PostgreSQL the loser's transaction aborts with a unique violation, so the whole body is retried
//! (up to three attempts), and then finds the winner's rows.
//!
//! **Statuses.** `statuses[]` (sent, delivered, read, failed) update the outbound message with that
//! wamid and never move it backwards: PENDING < SENT < DELIVERED < READ; FAILED replaces anything but READ and is
//! final. READ sets `read_at` when unset; FAILED with `errors[]` appends `{code, title}` to the
//! message's encrypted metadata under `whatsapp_errors`. A status that would not move the message is
//! counted stale. A status for a message not stored yet is kept in `whatsapp_pending_statuses` (its wamid
//! only as a blind index) and applied when a message with that wamid is recorded: by this ingest, and
//! by any recorder that calls the crate-private `apply_pending_statuses` in its transaction. Other status values are
//! skipped (counted ignored). A status naming an inbound message (a patient's wamid) changes nothing
//! and is counted in `statuses_not_outbound`; kept statuses whose wamid turns out to be an inbound
//! message's are dropped when that message is stored.
//!
//! **Counters and audit.** Each stored message moves its conversation's `message_count` and
//! `last_message_at` with the same statement as `scope.messages().append`. Every created patient,
//! conversation and message records its CREATE event, every status change an UPDATE event, and the body
//! one IMPORT event on messages listing the stored message ids, all in the body's transaction.
//!
//! **Times.** A message's or status's `timestamp` (Unix seconds) must fall between seven days before
//! its business number was registered ([`BEFORE_REGISTRATION`], WhatsApp's retry window) and five
//! minutes after now ([`CLOCK_SKEW`]); outside that the body fails with `validation` on the
//! timestamp's path.
//!
//! **Errors.** Malformed JSON, a wrong shape, an invalid id or timestamp fail with `validation` naming the
//! JSON path (`entry[0].changes[0].value.messages[1].timestamp`), before anything is written.

mod payload;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::access::{Action, Resource};
use crate::db::{Database, Query, QueryBuilder, RowLock, Tx, TxMode, TENANT_SETTING};
use crate::error::{CryptoErrorKind, Error, Result};
use crate::kernel::rows;
use crate::kernel::Model;
use crate::kernel::{check, AuditTx, Event};
use crate::model::{
    AuditAction, Conversation, MessageDirection, NewConversation, NewMessage, NewPatient, Patient, SenderKind,
};
use crate::repo::delivery_status::{
    apply_pending_statuses, apply_status, find_message, is_outbound, keep_pending, lock_wamid, Reported,
};
use crate::scope::{Actor, RequestContext, Scope};
use crate::validate;
use austa_crypto::{BlindIndexKind, KeySet, Sensitive};

use payload::{Inbound, Payload, StatusUpdate};

/// The system actor the ingest runs as.
pub const WEBHOOK_ACTOR: &str = "whatsapp-webhook";

/// Attempts of one body when concurrent writers race on a unique index.
const MAX_ATTEMPTS: usize = 3;

/// Business numbers whose route a handle remembers (more are forgotten all at once).
const MAX_ROUTE_HINTS: usize = 4096;

/// What one webhook body did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct IngestReport {
    /// The organization the body's business number belongs to (`None` when the body held no message
    /// notifications at all).
    pub organization_id: Option<Uuid>,
    /// Messages stored.
    pub messages_stored: u32,
    /// Ids of the stored messages, in body order.
    pub message_ids: Vec<Uuid>,
    /// Messages already stored (same wamid), skipped.
    pub duplicates_skipped: u32,
    /// Messages stored with metadata `unsupported: true` (types the platform does not model).
    pub unsupported_stored: u32,
    /// Statuses that moved their message forward.
    pub statuses_applied: u32,
    /// Statuses of a known message that would not move it (late or repeated), ignored.
    pub statuses_stale: u32,
    /// Statuses of a message not stored yet, kept for later matching.
    pub statuses_pending: u32,
    /// Statuses with a value the platform does not model, skipped.
    pub statuses_ignored: u32,
    /// Statuses naming an inbound message (statuses describe what the business sent), ignored: the
    /// message is left as it is.
    pub statuses_not_outbound: u32,
    /// Patients created for unknown senders.
    pub patients_created: u32,
    /// Conversations opened.
    pub conversations_created: u32,
    /// Earlier-kept statuses applied to messages stored by this body.
    pub pending_statuses_applied: u32,
}

/// The WhatsApp webhook entry point of a [`Database`]; see the [module documentation](self).
pub struct WhatsApp<'d> {
    db: &'d Database,
}

impl Database {
    /// The WhatsApp Cloud API webhook ingest.
    pub fn whatsapp(&self) -> WhatsApp<'_> {
        WhatsApp { db: self }
    }
}

/// Checks a business phone number id (Meta's numeric id of the line): 1 to 64 characters, no spaces.
pub(crate) fn phone_number_id(field: &str, v: &str) -> Result<String> {
    let v = v.trim();
    if v.is_empty() || v.len() > 64 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Error::validation(field, "must be 1 to 64 characters without spaces"));
    }
    Ok(v.to_string())
}

/// How long before its number's registration a message may be dated: WhatsApp retries a webhook
/// delivery for up to seven days, so a message sent just before the number moved to this platform may
/// still arrive.
pub const BEFORE_REGISTRATION: chrono::TimeDelta = chrono::TimeDelta::days(7);
/// How far ahead of this machine's clock a message may be dated (clock skew between Meta and us).
pub const CLOCK_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(5);

impl WhatsApp<'_> {
    /// The organization that registered this business phone number id, if any.
    pub async fn organization_for(&self, phone_number_id: &str) -> Result<Option<Uuid>> {
        let id = self::phone_number_id("phone_number_id", phone_number_id)?;
        let mut tx = self.db.begin(None, TxMode::Read).await?;
        let found = registration_in(&mut tx, &id).await?;
        tx.commit().await?;
        Ok(found.map(|r| r.organization))
    }

    /// Stores one webhook body as Meta posts it (see the [module documentation](self)): messages,
    /// patients and conversations they need, status changes, all in one transaction.
    ///
    /// Errors: `validation` naming the JSON path for malformed JSON, a wrong shape, an unregistered or
    /// mixed business number; `not_found` when the number's organization was deleted; `erased` when a
    /// status names a message of a crypto-shredded patient; `conflict` when writers kept racing after
    /// three attempts. Nothing is stored on error.
    pub async fn ingest(&self, body: &[u8]) -> Result<IngestReport> {
        let payload = payload::parse(body)?;
        if payload.changes.is_empty() {
            return Ok(IngestReport::default());
        }
        // The steady state: the body's numbers were routed before, and one transaction on cached
        // keys checks the route again and stores everything. Anything else (a new or moved number,
        // a race; with a key store of its own also a new sender or a patient whose keys are not
        // cached) takes the full path below.
        if let Some(organization) = self.hinted(&payload) {
            let scope = Scope::new(self.db, organization, Actor::system(WEBHOOK_ACTOR), RequestContext::default());
            authorize_ingest(&scope).await?;
            // Known senders whose keys are not cached: load them and stay on the hint once.
            let mut warmed = false;
            loop {
                match Box::pin(ingest_once(&scope, &payload, Pass::Hinted)).await {
                    Ok(report) => return Ok(report),
                    Err(Attempt::Failed(e)) => return Err(e),
                    Err(Attempt::Prepare(known)) if !known.is_empty() && !warmed => {
                        self.db.key_set(organization, known).await?;
                        warmed = true;
                    }
                    Err(Attempt::Reroute | Attempt::Prepare(_) | Attempt::Retry(_)) => break,
                }
            }
        }
        let scope = self.route(&payload).await?;
        authorize_ingest(&scope).await?;
        // The first attempt runs on cached keys (the steady state: known senders, keys in the
        // cache). When the key store shares the data database, the attempt reads a known patient's
        // uncached keys and creates a new sender's key inside its own transaction. With a key store
        // of its own, a patient whose keys are not cached, or a new sender, makes it roll back, and
        // the body runs again after the read-only pass that creates and loads them.
        // A first attempt that found only known patients whose keys were not cached loads those keys
        // and tries again on the cache, without the read-only pass.
        let (mut prepared, mut warmed, mut conflicts, mut last) = (false, false, 0, None);
        while conflicts < MAX_ATTEMPTS {
            // Boxed: the attempt's future is large (one transaction over the whole body).
            let pass = if prepared { Pass::Prepared } else { Pass::Cached };
            match Box::pin(ingest_once(&scope, &payload, pass)).await {
                Ok(report) => return Ok(report),
                // Routed just now: not a reason to route again.
                Err(Attempt::Reroute) => return Err(Error::Conflict { field: "phone_number_id".into() }),
                Err(Attempt::Prepare(known)) if !known.is_empty() && !warmed => {
                    scope.db().key_set(scope.organization_id(), known).await?;
                    warmed = true;
                }
                Err(Attempt::Prepare(_)) => prepared = true,
                // A concurrent writer took a unique key first (on PostgreSQL this aborted our
                // transaction): start over, and find its rows this time.
                Err(Attempt::Retry(e)) => {
                    (prepared, conflicts, last) = (true, conflicts + 1, Some(e));
                }
                Err(Attempt::Failed(e)) => return Err(e),
            }
        }
        Err(last.unwrap_or(Error::Conflict { field: "whatsapp_message_id".into() }))
    }

    /// The organization the hints name for every number of the body, when they name one.
    fn hinted(&self, body: &Payload) -> Option<Uuid> {
        let routes = self.db.inner.routes.lock().ok()?;
        let mut organization = None;
        for change in &body.changes {
            let org = routes.get(&change.phone_number_id)?;
            if organization.is_some_and(|o| o != *org) {
                return None;
            }
            organization = Some(*org);
        }
        organization
    }

    /// Remembers the organization the body's numbers were routed to.
    fn remember(&self, body: &Payload, organization: Uuid) {
        if let Ok(mut routes) = self.db.inner.routes.lock() {
            if routes.len() >= MAX_ROUTE_HINTS {
                routes.clear();
            }
            for change in &body.changes {
                routes.insert(change.phone_number_id.clone(), organization);
            }
        }
    }

    /// The scope a body is ingested in, from one read-only transaction: the organization of each
    /// change's business number (all the same), checked to exist, and the body's times checked
    /// against the number's registration.
    async fn route(&self, body: &Payload) -> Result<Scope> {
        let mut tx = self.db.begin(None, TxMode::Read).await?;
        let mut organization = None;
        let mut seen: HashMap<&str, (Uuid, DateTime<Utc>)> = HashMap::new();
        for change in &body.changes {
            let field = format!("{}.metadata.phone_number_id", change.path);
            let (found, registered_at) = match seen.get(change.phone_number_id.as_str()) {
                Some(r) => *r,
                None => {
                    let r = registration_in(&mut tx, &change.phone_number_id)
                        .await?
                        .map(|r| (r.organization, r.registered_at))
                        .ok_or_else(|| Error::validation(&field, "is not registered with any organization"))?;
                    seen.insert(&change.phone_number_id, r);
                    r
                }
            };
            check_times(change, registered_at, self.db.now())?;
            match organization {
                None => organization = Some(found),
                Some(o) if o != found => {
                    return Err(Error::validation(
                        field,
                        "belongs to another organization than the body's first number",
                    ))
                }
                Some(_) => {}
            }
        }
        let Some(organization) = organization else {
            let path = body.changes.first().map_or("entry[0].changes[0].value", |c| c.path.as_str());
            return Err(Error::validation(format!("{path}.metadata.phone_number_id"), "is required"));
        };
        // The organization, as `Database::scope` checks it for a system actor (which has no row of
        // its own to check), in the same transaction.
        tx.set_local(TENANT_SETTING, &organization.to_string()).await?;
        let live = tx
            .fetch_optional(
                Query::new("SELECT id FROM organizations WHERE id = $1 AND deleted_at IS NULL").bind(organization),
            )
            .await?;
        tx.commit().await?;
        if live.is_none() {
            return Err(Error::not_found("organization"));
        }
        self.remember(body, organization);
        Ok(Scope::new(self.db, organization, Actor::system(WEBHOOK_ACTOR), RequestContext::default()))
    }
}

/// Checks the webhook actor's rights to everything an ingest may do (recording any refusal).
async fn authorize_ingest(scope: &Scope) -> Result<()> {
    for (resource, action, table) in [
        (Resource::Message, Action::Create, "messages"),
        (Resource::Message, Action::Update, "messages"),
        (Resource::Patient, Action::Create, "patients"),
        (Resource::Conversation, Action::Create, "conversations"),
    ] {
        check(scope, table, action, None, None, scope.authorize(resource, action).map(|_| ())).await?;
    }
    Ok(())
}

/// Checks, in the ingest's own transaction, that every number of `body` is registered to `org` alone
/// and `org` is live (what [`WhatsApp::route`] found for an earlier body), and the body's times
/// against the registration. `false`: the route changed.
async fn route_holds(tx: &mut Tx, body: &Payload, org: Uuid, now: DateTime<Utc>) -> Result<bool> {
    let mut checked: HashMap<&str, DateTime<Utc>> = HashMap::new();
    for change in &body.changes {
        let registered_at = match checked.get(change.phone_number_id.as_str()) {
            Some(at) => *at,
            None => match registration_in(tx, &change.phone_number_id).await? {
                Some(r) if r.organization == org && r.live => {
                    checked.insert(&change.phone_number_id, r.registered_at);
                    r.registered_at
                }
                _ => return Ok(false),
            },
        };
        check_times(change, registered_at, now)?;
    }
    Ok(true)
}

/// A business number's registration as one transaction reads it.
#[derive(Clone, Copy)]
struct Registration {
    /// The organization that registered the number.
    organization: Uuid,
    /// When it did.
    registered_at: DateTime<Utc>,
    /// Whether the reader sees that organization live (not deleted). On PostgreSQL the organizations
    /// table is under row-level security, so this is `true` only in a transaction already running in
    /// that organization's tenant; a transaction that is still looking for the tenant checks the
    /// organization once it has set it.
    live: bool,
}

/// The registration of a (checked) number id, read in `tx` with one statement; `conflict` when two
/// organizations hold it (registration refuses this, and a body is never routed to one of two
/// claimants).
async fn registration_in(tx: &mut Tx, phone_number_id: &str) -> Result<Option<Registration>> {
    name_number(tx, phone_number_id).await?;
    let rows = tx
        .fetch_all(
            Query::new(
                "SELECT n.organization_id, n.created_at, o.id AS live FROM whatsapp_numbers n \
                 LEFT JOIN organizations o ON o.id = n.organization_id AND o.deleted_at IS NULL \
                 WHERE n.phone_number_id = $1 LIMIT 2",
            )
            .bind(phone_number_id.to_string()),
        )
        .await?;
    if rows.len() > 1 {
        return Err(Error::Conflict { field: "phone_number_id".into() });
    }
    rows.first()
        .map(|r| {
            Ok(Registration {
                organization: r.uuid("organization_id")?,
                registered_at: r.time("created_at")?,
                live: r.opt_uuid("live")?.is_some(),
            })
        })
        .transpose()
}

impl Scope {
    /// Registers a WhatsApp Business phone number id (Meta's `metadata.phone_number_id`) as this
    /// organization's, so that webhook bodies naming it are ingested here. Registering the same number
    /// again is a no-op; a number registered by another organization is `conflict` on
    /// `phone_number_id` (checked under a per-number lock on PostgreSQL, since the table is distributed
    /// by organization and cannot carry a platform-wide unique index). Needs the right to update the
    /// organization (administrators, platform).
    pub async fn register_whatsapp_number(&self, phone_number_id: &str) -> Result<()> {
        let id = self::phone_number_id("phone_number_id", phone_number_id)?;
        let org = self.organization_id();
        check(
            self,
            "organizations",
            Action::Update,
            Some(org),
            None,
            self.authorize(Resource::Organization, Action::Update).map(|_| ()),
        )
        .await?;
        let mut tx = AuditTx::begin(self).await?;
        name_number(&mut tx, &id).await?;
        // Serializes registrations of one number across organizations.
        tx.advisory_lock("austa:whatsapp_number", &id, false).await?;
        let owners = tx
            .fetch_all(
                Query::new("SELECT organization_id FROM whatsapp_numbers WHERE phone_number_id = $1").bind(id.clone()),
            )
            .await?;
        for owner in &owners {
            if owner.uuid("organization_id")? != org {
                return Err(Error::Conflict { field: "phone_number_id".into() });
            }
        }
        if !owners.is_empty() {
            return Ok(()); // already this organization's; the unused transaction rolls back
        }
        tx.execute(
            Query::new(
                "INSERT INTO whatsapp_numbers (phone_number_id, organization_id, created_at) VALUES ($1, $2, $3)",
            )
            .bind(id)
            .bind(org)
            .bind(self.now()),
        )
        .await
        .map_err(|e| match e {
            Error::Conflict { .. } => Error::Conflict { field: "phone_number_id".into() },
            e => e,
        })?;
        tx.record(number_event(org)).await?;
        tx.commit().await
    }

    /// Removes this organization's registration of a business phone number id; `not_found` when it
    /// has none. Needs the right to update the organization.
    pub async fn unregister_whatsapp_number(&self, phone_number_id: &str) -> Result<()> {
        let id = self::phone_number_id("phone_number_id", phone_number_id)?;
        let org = self.organization_id();
        check(
            self,
            "organizations",
            Action::Update,
            Some(org),
            None,
            self.authorize(Resource::Organization, Action::Update).map(|_| ()),
        )
        .await?;
        let mut tx = AuditTx::begin(self).await?;
        let n = tx
            .execute(
                Query::new("DELETE FROM whatsapp_numbers WHERE phone_number_id = $1 AND organization_id = $2")
                    .bind(id)
                    .bind(org),
            )
            .await?;
        if n == 0 {
            return Err(Error::not_found("whatsapp number"));
        }
        tx.record(number_event(org)).await?;
        tx.commit().await
    }
}

/// On PostgreSQL, lets this transaction see the `whatsapp_numbers` row of `phone_number_id` whatever
/// its organization (the table's row-level security policy admits the number a transaction names, so
/// that the webhook can find the organization of a number it knows without being able to list others).
async fn name_number(tx: &mut Tx, phone_number_id: &str) -> Result<()> {
    tx.set_local("austa.whatsapp_phone_number_id", phone_number_id).await
}

fn number_event(org: Uuid) -> Event {
    Event::on(AuditAction::ConfigChange, "organizations").entity(org).records([org]).changed(["whatsapp_numbers"])
}

/// Checks that every message and status of `change` is dated like a real delivery to a number
/// registered at `registered_at`: not more than [`BEFORE_REGISTRATION`] before it and not more than
/// [`CLOCK_SKEW`] after `now` (WhatsApp's timestamps are seconds since the epoch, near now; `0`, a
/// negative number or a year far ahead is a broken or forged body, and would misplace the message in
/// every history).
fn check_times(change: &payload::Change, registered_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<()> {
    let (earliest, latest) = (registered_at - BEFORE_REGISTRATION, now + CLOCK_SKEW);
    let times =
        change.messages.iter().map(|m| (&m.path, m.sent_at)).chain(change.statuses.iter().map(|s| (&s.path, s.at)));
    for (path, at) in times {
        if at < earliest {
            return Err(Error::validation(
                format!("{path}.timestamp"),
                "is more than 7 days before the business number was registered",
            ));
        }
        if at > latest {
            return Err(Error::validation(format!("{path}.timestamp"), "is more than 5 minutes in the future"));
        }
    }
    Ok(())
}

/// Why one attempt ended without a report.
enum Attempt {
    /// The remembered route of a number no longer holds: route the body again.
    Reroute,
    /// The attempt ran on cached keys and met a patient they do not cover (listed), or a new sender
    /// (nothing listed): load those keys, or run the body after the read-only pass.
    Prepare(Vec<Uuid>),
    /// A unique index was taken by a concurrent writer, or a row appeared whose key was not loaded:
    /// run the body again.
    Retry(Error),
    /// A real error.
    Failed(Error),
}

impl From<Error> for Attempt {
    fn from(e: Error) -> Self {
        Attempt::Failed(e)
    }
}

/// Unique violations are worth another attempt; anything else is final.
fn retry_on_conflict(e: Error) -> Attempt {
    match e {
        Error::Conflict { .. } => Attempt::Retry(e),
        e => Attempt::Failed(e),
    }
}

/// Prefixes a validation error's field with the JSON path of the object it came from.
fn at_path(path: &str) -> impl Fn(Error) -> Error + '_ {
    move |e| match e {
        Error::Validation { field, reason } => Error::Validation { field: format!("{path}.{field}"), reason },
        e => e,
    }
}

/// Who a sender's messages belong to.
#[derive(Clone, Copy, Default)]
struct Resolved {
    /// The chat's open conversation and its patient.
    conversation: Option<(Uuid, Uuid)>,
    /// The patient with that WhatsApp id or phone (looked up only without an open conversation).
    patient: Option<Uuid>,
}

/// Looks up a sender's open conversation and, when it has none, its patient through the blind
/// indexes, locking the conversation row when `lock` is set.
async fn resolve(tx: &mut Tx, keys: &KeySet, org: Uuid, wa_id: &str, lock: bool) -> Result<Resolved> {
    let lock = if lock { tx.lock(RowLock::Update) } else { "" };
    let mut q = QueryBuilder::new("SELECT id, patient_id FROM conversations WHERE organization_id = ");
    q.push_bind(org)
        .push(" AND whatsapp_chat_id_bidx IN (")
        .push_binds(keys.blinds(BlindIndexKind::WhatsappChatId, wa_id));
    q.push(") AND status IN ('ACTIVE','PAUSED','ESCALATED') AND deleted_at IS NULL ORDER BY id LIMIT 1").push(lock);
    let row = tx.fetch_optional(q.build()).await?;
    let conversation = row.map(|r| Ok::<_, Error>((r.uuid("id")?, r.uuid("patient_id")?))).transpose()?;
    if conversation.is_some() {
        // The open conversation decides the patient.
        return Ok(Resolved { conversation, patient: None });
    }
    let mut patient = None;
    let phone = validate::phone("phone", &format!("+{wa_id}")).ok();
    let lookups = [
        (BlindIndexKind::WhatsappId, "whatsapp_id_bidx", Some(wa_id.to_string())),
        (BlindIndexKind::Phone, "phone_bidx", phone),
    ];
    for (kind, column, value) in lookups {
        let Some(value) = value else { continue };
        let mut q = QueryBuilder::new("SELECT id FROM patients WHERE organization_id = ");
        q.push_bind(org).push(format_args!(" AND {column} IN (")).push_binds(keys.blinds(kind, &value));
        q.push(") ORDER BY (deleted_at IS NOT NULL), id LIMIT 1");
        let row = tx.fetch_optional(q.build()).await?;
        if let Some(r) = row {
            patient = Some(r.uuid("id")?);
            break;
        }
    }
    Ok(Resolved { conversation, patient })
}

/// First and last name from a WhatsApp profile name; `WhatsApp` stands in for a missing part.
fn split_name(name: Option<&str>) -> (String, String) {
    let cleaned = name.and_then(payload::clean_text).unwrap_or_default();
    let mut words = cleaned.split_whitespace();
    let first: String = words.next().unwrap_or("WhatsApp").chars().take(100).collect();
    let rest: String = words.collect::<Vec<_>>().join(" ").chars().take(100).collect();
    (first, if rest.is_empty() { "WhatsApp".to_string() } else { rest })
}

/// One attempt at the whole body in one audited transaction. [`Pass::Prepared`]: a read-only pass
/// first finds who the senders are and which patients' keys are needed, and keys are created and
/// loaded (never while holding the write transaction); otherwise the transaction runs on the keys the
/// handle has cached and gives up with [`Attempt::Prepare`] at the first patient it lacks.
/// [`Pass::Hinted`]: the transaction first checks the remembered route ([`Attempt::Reroute`] when it
/// no longer holds).
async fn ingest_once(scope: &Scope, body: &Payload, pass: Pass) -> Result<IngestReport, Attempt> {
    let prepared = pass == Pass::Prepared;
    let (keys, new_patients) = if prepared {
        prepare(scope, body).await?
    } else {
        (scope.db().key_set(scope.organization_id(), None).await?, HashMap::new())
    };
    let org = scope.organization_id();
    let mut tx = AuditTx::begin(scope).await?;
    if pass == Pass::Hinted && !route_holds(&mut tx, body, org, scope.now()).await? {
        return Err(Attempt::Reroute);
    }
    let report = IngestReport { organization_id: Some(org), ..IngestReport::default() };
    let mut body_tx = BodyTx {
        db: scope.db(),
        tx,
        keys,
        org,
        now: scope.now(),
        new_patients,
        prepared,
        report,
        events: Vec::new(),
        chats: HashMap::new(),
        created_keys: Vec::new(),
    };
    for change in &body.changes {
        for m in &change.messages {
            body_tx.message(change, m).await?;
        }
        for s in &change.statuses {
            body_tx.status(s).await?;
        }
    }
    body_tx.commit().await
}

/// How an attempt finds its keys and its organization.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    /// The organization is a remembered route, checked in the attempt's transaction; keys cached.
    Hinted,
    /// Routed just before; keys cached.
    Cached,
    /// Routed just before; keys created and loaded by the read-only pass.
    Prepared,
}

/// The read-only pass of a body: the keys its transaction needs (of the patients it names, and of new
/// patients for unknown senders, created in the key store now), and the ids chosen for those new
/// patients by WhatsApp id.
async fn prepare<'b>(scope: &Scope, body: &'b Payload) -> Result<(KeySet, HashMap<&'b str, Uuid>), Attempt> {
    let (org, db) = (scope.organization_id(), scope.db());
    let mut seen = HashSet::new();
    let senders: Vec<&str> =
        body.changes.iter().flat_map(|c| &c.messages).map(|m| m.from.as_str()).filter(|f| seen.insert(*f)).collect();
    let org_keys = db.key_set(org, None).await?;
    let mut owners: HashSet<Uuid> = HashSet::new();
    let mut new_patients: HashMap<&str, Uuid> = HashMap::new();
    let mut tx = db.begin(Some(org), TxMode::Read).await?;
    for &from in &senders {
        let r = resolve(&mut tx, &org_keys, org, from, false).await?;
        match (r.conversation, r.patient) {
            (Some((_, p)), _) | (None, Some(p)) => {
                owners.insert(p);
            }
            (None, None) => {
                new_patients.insert(from, Uuid::now_v7());
            }
        }
    }
    for s in body.changes.iter().flat_map(|c| &c.statuses) {
        match find_message(&mut tx, &org_keys, org, &s.wamid, false).await? {
            Some(row) if is_outbound(&row)? => {
                owners.insert(row.uuid("patient_id")?);
            }
            _ => {}
        }
    }
    tx.commit().await?;
    db.create_patient_keys(org, new_patients.values().copied()).await?;
    let keys = db.key_set(org, owners.iter().copied().chain(new_patients.values().copied())).await?;
    Ok((keys, new_patients))
}

/// The transaction of one body and what it has done so far.
struct BodyTx<'s, 'b> {
    db: &'s Database,
    tx: AuditTx<'s>,
    keys: KeySet,
    org: Uuid,
    now: DateTime<Utc>,
    /// Ids chosen for the patients of unknown senders, by WhatsApp id.
    new_patients: HashMap<&'b str, Uuid>,
    /// Whether the read-only pass ran: without it, `keys` hold only what the handle had cached.
    prepared: bool,
    report: IngestReport,
    events: Vec<Event>,
    /// The conversation and patient of each sender's chat, once found.
    chats: HashMap<String, (Uuid, Uuid)>,
    /// Patients whose first key this transaction created (cached once it commits).
    created_keys: Vec<Uuid>,
}

impl BodyTx<'_, '_> {
    /// Stores one inbound message (unless its wamid is stored already) in its chat's conversation.
    async fn message(&mut self, change: &payload::Change, m: &Inbound) -> Result<(), Attempt> {
        if find_message(&mut self.tx, &self.keys, self.org, &m.wamid, false).await?.is_some() {
            self.report.duplicates_skipped += 1;
            return Ok(());
        }
        let (conversation, patient) = match self.chats.get(&m.from) {
            Some(c) => *c,
            None => {
                let c = Box::pin(self.chat_for(change, m)).await?;
                self.chats.insert(m.from.clone(), c);
                c
            }
        };
        let id = Box::pin(self.store_message(m, conversation, patient)).await?;
        let pending =
            Box::pin(apply_pending_statuses(&mut self.tx, &self.keys, self.org, id, &m.wamid, self.now)).await?;
        self.report.pending_statuses_applied += u32::try_from(pending.len()).unwrap_or(u32::MAX);
        self.events.extend(pending);
        self.report.messages_stored += 1;
        self.report.unsupported_stored += u32::from(m.unsupported);
        self.report.message_ids.push(id);
        Ok(())
    }

    /// Applies one status to its outbound message, or keeps it for a message not stored yet.
    async fn status(&mut self, s: &StatusUpdate) -> Result<(), Attempt> {
        let Some(status) = s.status else {
            self.report.statuses_ignored += 1;
            return Ok(());
        };
        let reported = Reported { status, at: s.at, errors: &s.errors };
        lock_wamid(&mut self.tx, &self.keys, self.org, &s.wamid).await?;
        let found = find_message(&mut self.tx, &self.keys, self.org, &s.wamid, true).await?;
        if let Some(row) = &found {
            // Errors are appended to the message's encrypted metadata: its patient's keys are needed.
            if is_outbound(row)? && !s.errors.is_empty() {
                self.need_keys(row.uuid("patient_id")?, "message").await?;
            }
        }
        let (tx, keys, org) = (&mut self.tx, &self.keys, self.org);
        match found {
            Some(row) if !is_outbound(&row)? => self.report.statuses_not_outbound += 1,
            Some(row) => {
                match apply_status(tx, keys, org, &row, reported, self.now).await.map_err(at_path(&s.path))? {
                    Some(event) => {
                        self.report.statuses_applied += 1;
                        self.events.push(event);
                    }
                    None => self.report.statuses_stale += 1,
                }
            }
            None => {
                keep_pending(tx, keys, org, &s.wamid, reported, self.now).await?;
                self.report.statuses_pending += 1;
            }
        }
        Ok(())
    }

    /// Makes sure the body's keys cover `patient`: from the handle's cache, or read inside this
    /// transaction when the key store shares the data database; otherwise the attempt ends, to be
    /// run again once its keys are loaded (or, after the read-only pass, because the row appeared
    /// meanwhile and its key was not loaded: `not_found` on `what`, retried). A key under an
    /// organization key version these keys lack (a rotation elsewhere) also ends the attempt: the
    /// key set is then reloaded outside the transaction.
    async fn need_keys(&mut self, patient: Uuid, what: &'static str) -> Result<(), Attempt> {
        if self.db.keyring().add_cached_patient(&mut self.keys, patient) {
            return Ok(());
        }
        match self.db.add_patient_keys_in(&mut self.tx, &mut self.keys, patient).await {
            Ok(Some(true)) => return Ok(()),
            Ok(Some(false) | None) | Err(Error::Crypto { kind: CryptoErrorKind::UnknownKey, .. }) => {}
            Err(e) => return Err(Attempt::Failed(e)),
        }
        if self.prepared {
            Err(Attempt::Retry(Error::not_found(what)))
        } else {
            Err(Attempt::Prepare(vec![patient]))
        }
    }

    /// Records every event and the body's IMPORT event, and commits.
    async fn commit(mut self) -> Result<IngestReport, Attempt> {
        for event in std::mem::take(&mut self.events) {
            self.tx.record(event).await?;
        }
        let patients: Vec<Uuid> = self.chats.values().map(|(_, p)| *p).collect::<HashSet<_>>().into_iter().collect();
        let r = &self.report;
        let reason = format!(
            "whatsapp webhook: {} stored, {} duplicate, {} statuses applied, {} kept",
            r.messages_stored, r.duplicates_skipped, r.statuses_applied, r.statuses_pending
        );
        let import = Event::on(AuditAction::Import, "messages").records(r.message_ids.clone()).patients(patients);
        self.tx.record(import.reason(reason)).await?;
        self.tx.commit().await?;
        // Keys created in the transaction are real now.
        self.db.keyring().cache_created(&self.keys, &self.created_keys);
        Ok(self.report)
    }

    /// The conversation (and its patient) of a sender's chat inside the body's transaction: the open
    /// one, or a new one for the patient found, or for a new patient.
    async fn chat_for(&mut self, change: &payload::Change, m: &Inbound) -> Result<(Uuid, Uuid), Attempt> {
        let (org, now) = (self.org, self.now);
        let r = resolve(&mut self.tx, &self.keys, org, &m.from, true).await?;
        if let Some((conversation, patient)) = r.conversation {
            self.need_keys(patient, "patient").await?;
            return Ok((conversation, patient));
        }
        let patient = match r.patient {
            Some(p) => {
                self.need_keys(p, "patient").await?;
                p
            }
            None => {
                let id = match self.new_patients.get(m.from.as_str()) {
                    Some(&id) => id,
                    None => {
                        // A new sender: its patient's key is created here when the key store shares
                        // this database (it then commits or rolls back with the patient), else by
                        // the read-only pass.
                        let id = Uuid::now_v7();
                        if !self.db.create_patient_key_in(&mut self.tx, &mut self.keys, id).await? {
                            return Err(if self.prepared {
                                Attempt::Retry(Error::not_found("patient"))
                            } else {
                                Attempt::Prepare(Vec::new())
                            });
                        }
                        self.created_keys.push(id);
                        id
                    }
                };
                let name = change.names.iter().find(|(wa, _)| *wa == m.from).and_then(|(_, n)| n.as_deref());
                let patient = Patient::build(org, id, now, new_patient(&m.from, name))
                    .map_err(at_path(&format!("{}.from", m.path)))?;
                self.keys.require_patient(id, "patient_id")?;
                let event =
                    rows::insert_in(&mut self.tx, &self.keys, org, &patient).await.map_err(retry_on_conflict)?;
                self.events.push(event);
                self.report.patients_created += 1;
                id
            }
        };
        let new = NewConversation {
            patient_id: patient,
            whatsapp_chat_id: Sensitive::new(m.from.clone()),
            started_at: Some(m.sent_at),
            ..NewConversation::default()
        };
        let conversation = Conversation::build(org, Uuid::now_v7(), now, new).map_err(at_path(&m.path))?;
        let event = rows::insert_in(&mut self.tx, &self.keys, org, &conversation).await.map_err(retry_on_conflict)?;
        self.events.push(event);
        self.report.conversations_created += 1;
        Ok((conversation.id, patient))
    }

    /// Inserts one inbound message and counts it in its conversation; returns its id.
    async fn store_message(&mut self, m: &Inbound, conversation: Uuid, patient: Uuid) -> Result<Uuid, Attempt> {
        let (org, now) = (self.org, self.now);
        let mut new = NewMessage::new(conversation, MessageDirection::Inbound, m.message_type, SenderKind::Patient);
        new.whatsapp_message_id = Some(Sensitive::new(m.wamid.clone()));
        new.content = m.content.clone().map(Sensitive::new);
        new.media_type = m.media_type.clone();
        new.metadata = Some(Sensitive::new(m.metadata.clone()));
        new.sent_at = Some(m.sent_at);
        let mut message =
            crate::repo::messages::build_message(org, Uuid::now_v7(), now, new).map_err(at_path(&m.path))?;
        message.patient_id = patient;
        let event = rows::insert_in(&mut self.tx, &self.keys, org, &message)
            .await
            .map_err(|e| retry_on_conflict(at_path(&m.path)(e)))?;
        self.events.push(event);
        let counted =
            crate::repo::messages::count_in_conversation(&mut self.tx, org, conversation, message.sent_at, now).await?;
        if counted != 1 {
            return Err(Attempt::Retry(Error::not_found("conversation")));
        }
        Ok(message.id)
    }
}

/// The patient an unknown sender becomes: named after the WhatsApp profile name, unverified.
fn new_patient(wa_id: &str, profile_name: Option<&str>) -> NewPatient {
    let (first, last) = split_name(profile_name);
    NewPatient {
        first_name: Sensitive::new(first),
        last_name: Sensitive::new(last),
        phone: Sensitive::new(format!("+{wa_id}")),
        whatsapp_id: Some(Sensitive::new(wa_id.to_string())),
        is_verified: false,
        ..NewPatient::default()
    }
}
