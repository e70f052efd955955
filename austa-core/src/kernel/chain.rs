//! The sequencer: links committed events into each organization's chain, in order.
//!
//! Events are written with their work, each with its own MAC, and listed in `audit_pending`. Linking
//! takes the organization's chain head (`audit_heads`, locked), then, for each pending event in id
//! order (UUIDv7: creation order), checks the event's MAC, appends a link
//!
//! ```text
//! link.mac = HMAC(audit key, org ‖ event id ‖ event mac ‖ previous link's mac)
//! ```
//!
//! and finally moves the head, itself under a MAC. Each link is also a leaf of the organization's
//! Merkle tree ([`tree`](super::tree)), appended in the same transaction: the head carries the tree's
//! frontier, and the complete subtrees it completes are stored. A pending event whose MAC does not verify was not
//! written by the library: it is dropped from the queue unlinked, and verification reports it as
//! inserted.
//!
//! On PostgreSQL linking runs after the work's commit, in the background
//! ([`sequencer`](super::sequencer)), one transaction per batch. Hence the window documented in
//! docs/audit.md: an event is recorded (and durable) at commit, and chained moments later. Verification first
//! links everything pending, waiting for the head.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::event::{decode_from, event_columns_of, event_mac};
use super::tree;
use crate::db::{Database, IntoValue, Query, QueryBuilder, RowLock, Tx, TxMode};
use crate::error::{Error, Result};
use austa_crypto::merkle::Frontier;
use austa_crypto::OrgKeys;

pub(crate) const LINK_MAC_LABEL: &[u8] = b"austa:audit-link:v1";
pub(crate) const HEAD_MAC_LABEL: &[u8] = b"austa:audit-head:v1";
/// The previous mac of the first link.
pub(crate) const GENESIS: [u8; 32] = [0; 32];
/// Events linked per statement.
const BATCH: i64 = 256;

/// The chain's last link, and the Merkle tree over the chain's links ([`tree`]).
#[derive(Debug, Clone)]
pub(crate) struct Head {
    pub(crate) seq: i64,
    pub(crate) mac: Vec<u8>,
    pub(crate) frontier: Frontier,
}

impl Head {
    /// Appends the link of `event` (with the event's MAC `event_mac`) after the head, returning the
    /// link as the INSERT wants it (sequence number, event, previous MAC), and adding the complete
    /// subtrees it completes to `nodes`.
    fn append(
        &mut self,
        keys: &OrgKeys,
        key_id: Uuid,
        org: Uuid,
        event: Uuid,
        event_mac: &[u8],
        nodes: &mut Vec<tree::Node>,
    ) -> Result<(i64, Uuid, Vec<u8>)> {
        let mac = link_mac(keys, key_id, org, event, event_mac, &self.mac)?;
        self.seq += 1;
        tree::append(&mut self.frontier, tree::leaf(org, self.seq, event, &mac), nodes);
        Ok((self.seq, event, std::mem::replace(&mut self.mac, mac.to_vec())))
    }
}

/// The head from its row (`seq`, `mac`, `frontier`), building the frontier when the row has none.
async fn head_of(tx: &mut Tx, org: Uuid, row: &crate::db::Row) -> Result<Head> {
    let (seq, mac) = (row.int("seq")?, row.opt_bytes("mac")?.unwrap_or_default());
    let frontier = tree::frontier_of(tx, org, seq, row.opt_bytes("frontier")?).await?;
    Ok(Head { seq, mac, frontier })
}

pub(crate) fn link_mac(
    keys: &OrgKeys,
    key_id: Uuid,
    org: Uuid,
    event: Uuid,
    event_mac: &[u8],
    prev: &[u8],
) -> Result<[u8; 32]> {
    keys.audit_mac(key_id, &[LINK_MAC_LABEL, org.as_bytes(), event.as_bytes(), event_mac, prev])
}

pub(crate) fn head_mac(keys: &OrgKeys, key_id: Uuid, org: Uuid, seq: i64, mac: &[u8]) -> Result<[u8; 32]> {
    keys.audit_mac(key_id, &[HEAD_MAC_LABEL, org.as_bytes(), &seq.to_be_bytes(), mac])
}

/// Reads the head, locked until `tx` ends (SQLite: the write transaction holds the database), creating
/// the genesis head on first use.
pub(crate) async fn lock_head(tx: &mut Tx, keys: &OrgKeys, org: Uuid, now: DateTime<Utc>) -> Result<Head> {
    let lock = tx.lock(RowLock::Update);
    let select = format!("SELECT seq, mac, frontier FROM audit_heads WHERE organization_id = $1{lock}");
    if let Some(row) = tx.fetch_optional(Query::new(select.clone()).bind(org)).await? {
        return head_of(tx, org, &row).await;
    }
    let key_id = keys.active_id();
    let genesis = Head { seq: 0, mac: GENESIS.to_vec(), frontier: Frontier::default() };
    let created = tx
        .execute(
            Query::new(
                "INSERT INTO audit_heads (organization_id, seq, mac, key_id, head_mac, updated_at, frontier) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (organization_id) DO NOTHING",
            )
            .bind(org)
            .bind(genesis.seq)
            .bind(genesis.mac.clone())
            .bind(key_id)
            .bind(head_mac(keys, key_id, org, 0, &GENESIS)?.to_vec())
            .bind(now)
            .bind(genesis.frontier.to_bytes()),
        )
        .await?;
    if created == 1 {
        return Ok(genesis);
    }
    // Created concurrently by another transaction (which we waited for): read it, locked.
    match tx.fetch_optional(Query::new(select).bind(org)).await? {
        Some(row) => head_of(tx, org, &row).await,
        None => Err(Error::CorruptData("audit head vanished".into())),
    }
}

/// What a linking pass did.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Linked {
    /// Events linked.
    pub(crate) linked: u64,
    /// The pending event it stopped at, MACed under a key version these keys lack (created by
    /// another process's rotation, or forged): the caller reloads the keys and links again with
    /// [`Keys::FreshUpTo`] that event.
    pub(crate) stalled_at: Option<Uuid>,
}

/// How fresh the keys of a linking pass are, which decides what an event under a key version they
/// lack is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keys {
    /// Cached: the version may be another process's rotation, newer than the cache. The pass stops
    /// there (later events must not be linked before it) and says where it stalled.
    Cached,
    /// Read from the key store after the pending event with this id (and every one before it) had
    /// been read: a key is committed before any event uses it, so for those events a version the
    /// store lacks was never a key. Such an event is forged, dequeued unlinked like any other
    /// forgery, and linking goes on: a forgery cannot stall the chain. A later event under an
    /// unknown version may come from a rotation newer than these keys: the pass stalls there.
    FreshUpTo(Uuid),
}

impl Keys {
    /// Whether the pending event `id`, under a key version these keys lack, is a forgery.
    fn unknown_is_forged(self, id: Uuid) -> bool {
        matches!(self, Keys::FreshUpTo(bound) if id <= bound)
    }
}

/// Whether an event row is genuine (its MAC verifies), forged (it does not, or the row cannot even be
/// read), or not checkable with these keys.
enum Check {
    Genuine(Uuid, Vec<u8>),
    Forged,
    UnknownKey,
}

fn check_event(keys: &OrgKeys, row: &crate::db::Row) -> Check {
    // The pending event's id comes first in the select list, then the event's columns.
    let Ok(e) = decode_from(row, 1) else { return Check::Forged };
    if !keys.has_version(e.key_id) {
        return Check::UnknownKey;
    }
    match event_mac(keys, &e.log, e.reason.as_deref(), e.key_id) {
        Ok(mac) if austa_crypto::mac_eq(&mac, &e.mac) => Check::Genuine(e.log.id, e.mac),
        _ => Check::Forged,
    }
}

/// The INSERT of new `links` (sequence number, event, previous MAC): the MAC of link i is the
/// previous MAC of link i + 1, or `head_mac` for the last.
fn insert_links(org: Uuid, key_id: Uuid, links: &[(i64, Uuid, Vec<u8>)], head_mac: &[u8], now: DateTime<Utc>) -> Query {
    let mut q = QueryBuilder::new(
        "INSERT INTO audit_chain (organization_id, seq, event_id, prev_mac, mac, key_id, chained_at) VALUES ",
    );
    for (i, (seq, event, prev)) in links.iter().enumerate() {
        if i > 0 {
            q.push(", ");
        }
        let mac = links.get(i + 1).map_or_else(|| head_mac.to_vec(), |l| l.2.clone());
        q.push_tuple([
            org.into_value(),
            seq.into_value(),
            event.into_value(),
            prev.clone().into_value(),
            mac.into_value(),
            key_id.into_value(),
            now.into_value(),
        ]);
    }
    q.build()
}

/// Links every pending event of `org` visible to `tx`, in id order, dating the links `now`.
pub(crate) async fn link_pending(
    tx: &mut Tx,
    keys: &OrgKeys,
    freshness: Keys,
    org: Uuid,
    now: DateTime<Utc>,
) -> Result<Linked> {
    let mut head = lock_head(tx, keys, org, now).await?;
    let start = head.seq;
    let mut stalled_at = None;
    // The last queue entry a batch took: the next batch starts after it, so that entries left in
    // the queue (those whose event is gone) are passed over rather than taken again.
    let mut after = Uuid::nil();
    loop {
        // The batch is taken from the queue first (a derived table with a LIMIT, which neither
        // backend flattens into the join), then its events and links are probed by key: every
        // statement costs O(batch) whatever the chain's length. Joined first and limited after, the
        // planners walked the organization's events from the first (SQLite at 60,000 events: 90
        // messages/s) or hashed the whole chain for the `already_linked` test (PostgreSQL with a
        // backlog: 150 ms a batch at 36,000 links, and growing).
        let rows = tx
            .fetch_all(
                Query::new(format!(
                    "SELECT p.event_id AS pending_id, {}, EXISTS (SELECT 1 FROM audit_chain c \
                     WHERE c.organization_id = p.organization_id AND c.event_id = p.event_id) AS already_linked \
                     FROM (SELECT organization_id, event_id FROM audit_pending WHERE organization_id = $1 \
                     AND event_id > $2 ORDER BY event_id LIMIT $3) p LEFT JOIN audit_logs e \
                     ON e.organization_id = p.organization_id AND e.id = p.event_id \
                     ORDER BY p.event_id",
                    event_columns_of("e")
                ))
                .bind(org)
                .bind(after)
                .bind(BATCH),
            )
            .await?;
        let Some(last) = rows.last() else { break };
        after = last.uuid(0)?;
        let key_id = keys.active_id();
        let mut links = Vec::with_capacity(rows.len());
        let mut nodes = Vec::new();
        let mut done = Vec::with_capacity(rows.len());
        for row in &rows {
            let pending = row.uuid(0)?;
            // A queue entry whose event is gone (deleted before it was linked) stays queued and
            // unlinked: verification names it, and later events are linked past it.
            if matches!(row.opt_uuid(2), Ok(None)) {
                continue;
            }
            // A queue entry for an event the chain already holds was not written by the library
            // (it queues an event once, and dequeues it as it links it): dropped, so that it can
            // neither fail the link's unique key on every pass nor be linked twice.
            if row.bool("already_linked")? {
                done.push(pending);
                continue;
            }
            let (id, stored) = match check_event(keys, row) {
                Check::Genuine(id, stored) => (id, stored),
                // Not written by the library (or under a key version that never was one): dequeued
                // unlinked, so verification reports it.
                Check::Forged => {
                    done.push(pending);
                    continue;
                }
                Check::UnknownKey if freshness.unknown_is_forged(pending) => {
                    done.push(pending);
                    continue;
                }
                // Order matters: stop here rather than link later events before this one.
                Check::UnknownKey => {
                    stalled_at = Some(pending);
                    break;
                }
            };
            done.push(id);
            links.push(head.append(keys, key_id, org, id, &stored, &mut nodes)?);
        }
        if !links.is_empty() {
            tx.execute(insert_links(org, key_id, &links, &head.mac, now)).await?;
            tree::store(tx, org, &nodes).await?;
        }
        if !done.is_empty() {
            let mut q = QueryBuilder::new("DELETE FROM audit_pending WHERE organization_id = ");
            q.push_bind(org).push(" AND event_id IN (").push_binds(done).push(")");
            tx.execute(q.build()).await?;
        }
        if stalled_at.is_some() || (rows.len() as i64) < BATCH {
            break;
        }
    }
    let linked = (head.seq - start) as u64;
    if linked > 0 {
        move_head(tx, keys, org, head, now).await?;
    }
    Ok(Linked { linked, stalled_at })
}

/// Moves the chain head of `org` to `head`, under a new head MAC, with the tree's new frontier.
async fn move_head(tx: &mut Tx, keys: &OrgKeys, org: Uuid, head: Head, now: DateTime<Utc>) -> Result<()> {
    let key_id = keys.active_id();
    let head_mac = head_mac(keys, key_id, org, head.seq, &head.mac)?.to_vec();
    let sql = "UPDATE audit_heads SET seq = $1, mac = $2, key_id = $3, head_mac = $4, updated_at = $5, frontier = $6 \
               WHERE organization_id = $7";
    let q = Query::new(sql).bind(head.seq).bind(head.mac).bind(key_id).bind(head_mac).bind(now);
    tx.execute(q.bind(head.frontier.to_bytes()).bind(org)).await?;
    Ok(())
}

/// Links `events` (id and MAC of events this transaction has just written, in id order, not queued)
/// right after the head, when the queue of `org` is empty: their MACs are known, so nothing is read
/// back or checked again. Returns `false`, having linked nothing, when the queue holds events
/// (another writer's, waiting for keys this handle lacks): those come first, through
/// [`link_pending`]. (Reading the head of a chain that predates its Merkle tree builds the tree
/// first, either way.) For writers the database serializes (SQLite), inside their transaction.
pub(crate) async fn link_written(
    tx: &mut Tx,
    keys: &OrgKeys,
    org: Uuid,
    events: &[(Uuid, [u8; 32])],
    now: DateTime<Utc>,
) -> Result<bool> {
    // The head and whether the queue holds anything, in one statement (the head exists but for the
    // organization's first events: then it is created, and the queue asked apart).
    let lock = tx.lock(RowLock::Update);
    let both = format!(
        "SELECT seq, mac, frontier, EXISTS (SELECT 1 FROM audit_pending p WHERE p.organization_id = $1) AS queued \
         FROM audit_heads WHERE organization_id = $1{lock}"
    );
    let (mut head, queued) = match tx.fetch_optional(Query::new(both).bind(org)).await? {
        Some(row) => (head_of(tx, org, &row).await?, row.bool("queued")?),
        None => {
            let head = lock_head(tx, keys, org, now).await?;
            let queued = Query::new("SELECT event_id FROM audit_pending WHERE organization_id = $1 LIMIT 1").bind(org);
            (head, tx.fetch_optional(queued).await?.is_some())
        }
    };
    if queued {
        return Ok(false);
    }
    let key_id = keys.active_id();
    let mut links = Vec::with_capacity(events.len());
    let mut nodes = Vec::new();
    for (id, mac) in events {
        links.push(head.append(keys, key_id, org, *id, mac, &mut nodes)?);
    }
    let per_statement = usize::try_from(BATCH).unwrap_or(256);
    for (i, chunk) in links.chunks(per_statement).enumerate() {
        // The MAC of a chunk's last link is the next chunk's first previous MAC, or the new head.
        let last = links.get((i + 1) * per_statement).map_or(head.mac.as_slice(), |next| next.2.as_slice());
        tx.execute(insert_links(org, key_id, chunk, last, now)).await?;
    }
    tree::store(tx, org, &nodes).await?;
    if !links.is_empty() {
        move_head(tx, keys, org, head, now).await?;
    }
    Ok(true)
}

/// Links every pending event of `org`, waiting for any other linker; when an event names a key version
/// the cached keys lack, reloads them from the key store and goes on, the reloaded keys treating
/// a version the store lacks as a forgery up to that event ([`Keys::FreshUpTo`]). Every pass past
/// a stall dequeues the event it stalled at or links it, so this ends with every event pending at
/// the call linked or dequeued.
pub(crate) async fn link_all(db: &Database, org: Uuid) -> Result<u64> {
    let mut keys = db.org_keys(org).await?;
    let mut freshness = Keys::Cached;
    let mut total = 0;
    loop {
        let mut tx = db.begin(Some(org), TxMode::Write).await?;
        let pass = link_pending(&mut tx, &keys, freshness, org, db.now()).await?;
        tx.commit().await?;
        total += pass.linked;
        let Some(stalled_at) = pass.stalled_at else { return Ok(total) };
        keys = db.keyring().load_org_keys(org).await?;
        freshness = Keys::FreshUpTo(stalled_at);
    }
}

/// [`link_pending`] inside the caller's transaction, reloading the keys from the key store and
/// going on whenever a pass stalls at an unknown key version (see [`Keys::FreshUpTo`]): for writers
/// that link inside their own transaction (SQLite), so that a forged queue entry never leaves
/// later events queued.
pub(crate) async fn link_pending_reloading(
    tx: &mut Tx,
    db: &Database,
    keys: &OrgKeys,
    org: Uuid,
    now: DateTime<Utc>,
) -> Result<()> {
    let mut pass = link_pending(tx, keys, Keys::Cached, org, now).await?;
    while let Some(stalled_at) = pass.stalled_at {
        let fresh = db.keyring().load_org_keys(org).await?;
        pass = link_pending(tx, &fresh, Keys::FreshUpTo(stalled_at), org, now).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::Keys;
    use uuid::Uuid;

    #[test]
    fn reloaded_keys_call_an_unknown_version_forged_only_up_to_the_event_that_stalled() {
        let (earlier, stalled, later) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
        let fresh = Keys::FreshUpTo(stalled);
        assert!(fresh.unknown_is_forged(earlier) && fresh.unknown_is_forged(stalled));
        assert!(!fresh.unknown_is_forged(later), "committed after the reload: maybe a newer rotation");
        assert!(!Keys::Cached.unknown_is_forged(earlier), "cached keys never decide it");
    }
}
