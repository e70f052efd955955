//! Verification: walks an organization's chain and names the first place where it breaks.
//!
//! For each link in sequence order the walk recomputes the event's MAC from its stored content and the
//! link's MAC from the event's MAC and the previous link's, and checks that the link points at its
//! predecessor. The first failure is classified:
//!
//! | what the walk sees at sequence *n* | kind |
//! |---|---|
//! | the event named by link *n* is gone, or sequence numbers skip *n*, or link *n* points at a MAC that no link has | [`TamperKind::Deleted`] |
//! | link *n* or its event fails its MAC, and link *n + 1* still points at link *n* | [`TamperKind::Modified`] |
//! | link *n* or its event fails its MAC, and link *n + 1* points past it, at link *n − 1* | [`TamperKind::Inserted`] |
//! | link *n* is intact but points at a link that sits elsewhere in the chain | [`TamperKind::Reordered`] |
//!
//! After the last link the head must name it (else the newest events were removed, or links added
//! behind the sequencer's back); and, for a whole-chain verification, every event must be linked or
//! still pending: an event outside the chain was inserted by someone without the key. An event still
//! queued before verification began and still queued after it linked everything is
//! [`TamperKind::Stalled`]. A whole-chain walk also rebuilds the
//! Merkle tree over the links and checks the head's frontier against it; the root it reports is the
//! one checkpoints sign ([`super::transparency`]).
//!
//! The chain is read in pages of [`PAGE`] links, in one snapshot: the links, then their events by one
//! range of ids (see [`fetch_links`]). Each page's MACs are checked on
//! every core (they do not depend on each other) while the next page is read; the order checks then
//! walk the page in sequence, so the first break found is the same as a one-by-one walk's.

use std::sync::Arc;

use uuid::Uuid;

use crate::db::{Query, Row, Tx, TxMode};
use crate::error::{Error, Result};
use crate::kernel::chain::{self, head_mac, link_mac, GENESIS};
use crate::kernel::event::{decode_from, event_columns_of, event_mac};
use crate::kernel::tree;
use crate::scope::Scope;
use austa_crypto::merkle::{self, Frontier, Hash};
use austa_crypto::OrgKeys;
use base64::Engine as _;

/// How the chain was tampered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TamperKind {
    /// An event's content (or its link) was changed.
    Modified,
    /// One or more events were removed.
    Deleted,
    /// An event that the library did not record was added.
    Inserted,
    /// Events were moved to other positions.
    Reordered,
    /// The log holds fewer events than a signed checkpoint of it: its newest events were cut (with
    /// the head), or an older copy of the database was restored.
    Truncated,
    /// The log's first events are not those a signed checkpoint of them names: its history was
    /// rewritten, by someone holding the data keys but not the checkpoint signing key.
    Rewritten,
    /// An event was waiting to be chained when verification began and still was after verification
    /// linked everything: it cannot be chained (its queue entry names an event that is not there,
    /// or linking it failed), and would wait forever.
    Stalled,
}

/// Where and how a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainBreak {
    /// The sequence number where the break shows (`None` for an event outside the chain).
    pub seq: Option<i64>,
    /// The event involved, when known.
    pub event_id: Option<Uuid>,
    /// What happened.
    pub kind: TamperKind,
    /// What the verifier saw, in words (ids and numbers only).
    pub detail: String,
}

/// The result of verifying (part of) an organization's chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChainReport {
    /// The organization.
    pub organization_id: Uuid,
    /// First sequence number checked.
    pub from_seq: i64,
    /// Last sequence number checked (0 for an empty chain).
    pub to_seq: i64,
    /// Links whose event and MACs verified before the first break (all of them when intact).
    pub verified: u64,
    /// Sequence number of the chain's head.
    pub head_seq: i64,
    /// Events recorded but not yet linked when verification read the chain (committed meanwhile).
    pub unchained: u64,
    /// The root of the Merkle tree over the chain's links (base64), recomputed from the links by a
    /// whole-chain verification; what a checkpoint of the same size signs.
    pub tree_root: Option<String>,
    /// The first break, if any.
    pub broken: Option<ChainBreak>,
}

impl ChainReport {
    /// Whether the checked part of the chain is intact.
    pub fn is_intact(&self) -> bool {
        self.broken.is_none()
    }
}

/// One link joined with its event (absent when deleted).
struct Link {
    seq: i64,
    event_id: Uuid,
    prev: Vec<u8>,
    mac: Vec<u8>,
    key_id: Uuid,
    event: Option<Event>,
}

/// An event's row and where its columns start in it.
struct Event {
    row: Row,
    at: usize,
}

const PAGE: i64 = 2000;
/// Where the event's columns start in [`fetch_joined`]'s select list.
const EVENT_AT: usize = 5;
/// Events read per page by id range, at most: a page whose events lie further apart than this (links
/// far out of id order, as after reordering) is read through the join instead.
const RANGE_CAP: i64 = 4 * PAGE;

/// The links `after < seq <= to` (at most [`PAGE`]) with their events. The links are read in sequence
/// order, then their events by one range of ids (the sequencer links events in id order, so a page's
/// events sit together in the events' primary key): two range scans instead of a join that probes the
/// events' index once per link, which cost the server twice as much.
async fn fetch_links(tx: &mut Tx, org: Uuid, after: i64, to: i64) -> Result<Vec<Link>> {
    let sql = "SELECT seq, event_id, prev_mac, mac, key_id FROM audit_chain \
               WHERE organization_id = $1 AND seq > $2 AND seq <= $3 ORDER BY seq LIMIT $4";
    let rows = tx.fetch_all(Query::new(sql).bind(org).bind(after).bind(to).bind(PAGE)).await?;
    let mut links = rows.iter().map(link_of).collect::<Result<Vec<_>>>()?;
    let (Some(low), Some(high)) = (links.iter().map(|l| l.event_id).min(), links.iter().map(|l| l.event_id).max())
    else {
        return Ok(links);
    };
    let events = tx
        .fetch_all(
            Query::new(format!(
                "SELECT {} FROM audit_logs e WHERE e.organization_id = $1 AND e.id >= $2 AND e.id <= $3 \
                 ORDER BY e.id LIMIT $4",
                event_columns_of("e")
            ))
            .bind(org)
            .bind(low)
            .bind(high)
            .bind(RANGE_CAP),
        )
        .await?;
    if events.len() as i64 >= RANGE_CAP {
        return fetch_joined(tx, org, after, to).await;
    }
    // Keyed by the event's id (column 1 of the event columns). A row whose id does not even parse
    // (written by hand on SQLite) belongs to no link; `outside_the_chain` deals with it.
    let mut by_id = std::collections::HashMap::with_capacity(events.len());
    for row in events {
        if let Ok(Some(id)) = row.opt_uuid(1) {
            by_id.insert(id, row);
        }
    }
    for link in &mut links {
        link.event = by_id.remove(&link.event_id).map(|row| Event { row, at: 0 });
    }
    Ok(links)
}

/// [`fetch_links`] through a join of the links with their events: for pages whose events are far
/// apart.
async fn fetch_joined(tx: &mut Tx, org: Uuid, after: i64, to: i64) -> Result<Vec<Link>> {
    let rows = tx
        .fetch_all(
            Query::new(format!(
                "SELECT c.seq AS link_seq, c.event_id AS link_event, c.prev_mac AS link_prev, c.mac AS link_mac, \
                 c.key_id AS link_key, {} FROM audit_chain c LEFT JOIN audit_logs e \
                 ON e.organization_id = c.organization_id AND e.id = c.event_id \
                 WHERE c.organization_id = $1 AND c.seq > $2 AND c.seq <= $3 ORDER BY c.seq LIMIT $4",
                event_columns_of("e")
            ))
            .bind(org)
            .bind(after)
            .bind(to)
            .bind(PAGE),
        )
        .await?;
    // Decoded by position (the select list above): five link columns, then the event's.
    rows.into_iter()
        .map(|row| {
            let mut link = link_of(&row)?;
            if row.opt_uuid(EVENT_AT + 1)?.is_some() {
                link.event = Some(Event { row, at: EVENT_AT });
            }
            Ok(link)
        })
        .collect()
}

/// A link, without its event, from the first five columns of `row` (sequence number, event id,
/// previous MAC, MAC, key).
fn link_of(row: &Row) -> Result<Link> {
    Ok(Link {
        seq: row.int(0)?,
        event_id: row.uuid(1)?,
        prev: row.opt_bytes(2)?.unwrap_or_default(),
        mac: row.opt_bytes(3)?.unwrap_or_default(),
        key_id: row.uuid(4)?,
        event: None,
    })
}

/// The link's Merkle leaf when the link and its event carry valid MACs, `None` when they do not.
fn checked_leaf(keys: &OrgKeys, org: Uuid, link: &Link) -> Option<Hash> {
    self_consistent(keys, org, link).then(|| tree::leaf(org, link.seq, link.event_id, &link.mac))
}

/// Whether a link and its event carry valid MACs.
fn self_consistent(keys: &OrgKeys, org: Uuid, link: &Link) -> bool {
    let Some(event) = &link.event else { return false };
    let Ok(e) = decode_from(&event.row, event.at) else { return false };
    let event_ok = e.log.id == link.event_id
        && e.log.organization_id == org
        && event_mac(keys, &e.log, e.reason.as_deref(), e.key_id).is_ok_and(|m| austa_crypto::mac_eq(&m, &e.mac));
    event_ok
        && link_mac(keys, link.key_id, org, link.event_id, &e.mac, &link.prev)
            .is_ok_and(|m| austa_crypto::mac_eq(&m, &link.mac))
}

/// Links per thread below which a page is not split further (a thread costs more than it saves).
const MIN_LINKS_PER_THREAD: usize = 256;

/// A page's links, each with its Merkle leaf when its MACs verify ([`checked_leaf`]).
type CheckedPage = (Vec<Link>, Vec<Option<Hash>>);

/// [`checked_leaf`] for every link of a page, on every core, off the async runtime: the MACs are
/// independent of each other (only the order checks need the walk), so the page is split among
/// threads while the caller fetches the next page.
fn check_page(keys: Arc<OrgKeys>, org: Uuid, links: Vec<Link>) -> tokio::task::JoinHandle<Result<CheckedPage>> {
    tokio::task::spawn_blocking(move || {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let per_thread = links.len().div_ceil(threads).max(MIN_LINKS_PER_THREAD);
        let consistent = std::thread::scope(|s| {
            let keys = &*keys;
            let parts: Vec<_> = links
                .chunks(per_thread)
                .map(|part| s.spawn(move || part.iter().map(|l| checked_leaf(keys, org, l)).collect::<Vec<_>>()))
                .collect();
            parts.into_iter().try_fold(Vec::with_capacity(links.len()), |mut all, part| {
                all.extend(part.join().map_err(|_| thread_failed())?);
                Ok::<_, Error>(all)
            })
        })?;
        Ok((links, consistent))
    })
}

fn thread_failed() -> Error {
    Error::Io(std::io::Error::other("an audit verification thread failed"))
}

async fn seq_of_mac(tx: &mut Tx, org: Uuid, mac: &[u8]) -> Result<Option<i64>> {
    let row = tx
        .fetch_optional(
            Query::new("SELECT seq FROM audit_chain WHERE organization_id = $1 AND mac = $2 LIMIT 1")
                .bind(org)
                .bind(mac.to_vec()),
        )
        .await?;
    row.map(|r| r.int("seq")).transpose()
}

fn brk(seq: Option<i64>, event_id: Option<Uuid>, kind: TamperKind, detail: String) -> Option<ChainBreak> {
    Some(ChainBreak { seq, event_id, kind, detail })
}

/// The chain head as stored: its sequence number, whether its MAC verifies, the MAC of the last
/// link it names, and the root of the Merkle tree its frontier gives (`None` when it has none that
/// fits its size).
struct Head {
    seq: i64,
    mac_ok: bool,
    last: Vec<u8>,
    root: Option<Hash>,
}

async fn read_head(tx: &mut Tx, keys: &OrgKeys, org: Uuid) -> Result<Option<Head>> {
    let sql = "SELECT seq, mac, key_id, head_mac, frontier FROM audit_heads WHERE organization_id = $1";
    let Some(r) = tx.fetch_optional(Query::new(sql).bind(org)).await? else { return Ok(None) };
    let (seq, mac, key, stored) =
        (r.int("seq")?, r.opt_bytes("mac")?.unwrap_or_default(), r.uuid("key_id")?, r.opt_bytes("head_mac")?);
    let mac_ok = head_mac(keys, key, org, seq, &mac)
        .is_ok_and(|m| stored.as_deref().is_some_and(|s| austa_crypto::mac_eq(&m, s)));
    let root = tree::stored_root(seq, r.opt_bytes("frontier")?);
    Ok(Some(Head { seq, mac_ok, last: mac, root }))
}

/// Where a walk along the chain stands: what the next link must follow and be numbered.
struct Walk {
    expected_prev: Vec<u8>,
    expected_seq: i64,
    verified: u64,
    last_seen: i64,
    /// The Merkle tree over the links verified so far, for a walk from the first link.
    tree: Option<Frontier>,
    /// The stored levels' subtrees the tree completed since they were last compared with
    /// `audit_tree` (level, index, hash as the links give it).
    subtrees: Vec<tree::Node>,
    /// A tree size whose root to keep (a checkpoint's), and the root once the walk got there.
    capture: Option<(u64, Option<Hash>)>,
}

impl Walk {
    /// Checks `link`, whose successor (the next link, or the head) names `next_prev` as its
    /// predecessor; the break it shows, if any.
    /// `leaf`: the link's Merkle leaf when the link and its event carry valid MACs ([`checked_leaf`]).
    async fn check(
        &mut self,
        tx: &mut Tx,
        org: Uuid,
        link: Link,
        leaf: Option<Hash>,
        next_prev: &[u8],
    ) -> Result<Option<ChainBreak>> {
        self.last_seen = link.seq;
        if link.event.is_none() {
            let detail = "the event of this link is gone".into();
            return Ok(brk(Some(link.seq), Some(link.event_id), TamperKind::Deleted, detail));
        }
        let Some(leaf) = leaf else {
            // Does the chain still vouch for this link (its successor points at it)?
            let kind = if next_prev != link.mac && next_prev == self.expected_prev {
                TamperKind::Inserted
            } else {
                TamperKind::Modified
            };
            return Ok(brk(Some(link.seq), Some(link.event_id), kind, "MAC does not match the stored content".into()));
        };
        if link.prev != self.expected_prev {
            // An intact link that does not follow its predecessor: what it follows sits elsewhere
            // (reordered) or nowhere (deleted).
            let (kind, seq) = match seq_of_mac(tx, org, &link.prev).await? {
                Some(_) => (TamperKind::Reordered, link.seq),
                None => (TamperKind::Deleted, self.expected_seq),
            };
            let detail = format!("link {} does not follow link {}", link.seq, self.expected_seq - 1);
            return Ok(brk(Some(seq), Some(link.event_id), kind, detail));
        }
        if link.seq != self.expected_seq {
            // Linked correctly but renumbered: the sequence numbers were edited.
            let detail = format!("sequence number {} where {} was expected", link.seq, self.expected_seq);
            return Ok(brk(Some(self.expected_seq), Some(link.event_id), TamperKind::Modified, detail));
        }
        self.verified += 1;
        self.expected_prev = link.mac;
        self.expected_seq += 1;
        if let Some(tree) = &mut self.tree {
            tree::append(tree, leaf, &mut self.subtrees);
            if let Some((size, root @ None)) = &mut self.capture {
                if tree.size() == *size {
                    *root = Some(tree.root());
                }
            }
        }
        Ok(None)
    }

    /// Compares the subtrees completed since the last call with the ones `audit_tree` stores, which
    /// proofs are built from: one a link does not give is named (a proof built on it would match no
    /// checkpoint).
    async fn check_subtrees(&mut self, tx: &mut Tx, org: Uuid) -> Result<Option<ChainBreak>> {
        let computed = std::mem::take(&mut self.subtrees);
        if computed.is_empty() {
            return Ok(None);
        }
        let stored = tree::stored_like(tx, org, &computed).await?;
        for (level, index, hash) in &computed {
            if stored.get(&(*level, *index)).is_none_or(|h| !austa_crypto::mac_eq(h, hash)) {
                let last = i64::try_from((index + 1) << level).unwrap_or(i64::MAX);
                let detail = format!("the stored Merkle subtree {index} at level {level} does not match the links");
                return Ok(brk(Some(last), None, TamperKind::Modified, detail));
            }
        }
        Ok(None)
    }

    /// Once the walk reached the head: the head must verify and name the last link walked.
    fn check_head(&self, head: &Head) -> Option<ChainBreak> {
        if !head.mac_ok {
            brk(Some(head.seq), None, TamperKind::Modified, "the chain head fails its MAC".into())
        } else if self.last_seen < head.seq {
            let detail = format!("the head names link {}, the chain ends at {}", head.seq, self.last_seen);
            brk(Some(self.last_seen + 1), None, TamperKind::Deleted, detail)
        } else if self.last_seen > head.seq {
            brk(Some(head.seq + 1), None, TamperKind::Inserted, "links beyond the chain head".into())
        } else if self.expected_prev != head.last {
            brk(Some(head.seq), None, TamperKind::Modified, "the chain head names another last link".into())
        } else if self.tree.as_ref().is_some_and(|t| head.root != Some(t.root())) {
            let detail = "the chain head's Merkle frontier does not match the links".into();
            brk(Some(head.seq), None, TamperKind::Modified, detail)
        } else {
            None
        }
    }
}

/// The MAC link `from` must follow: the genesis value, or link `from - 1`'s.
async fn predecessor(tx: &mut Tx, org: Uuid, from: i64) -> Result<Vec<u8>> {
    if from == 1 {
        return Ok(GENESIS.to_vec());
    }
    let sql = "SELECT mac FROM audit_chain WHERE organization_id = $1 AND seq = $2";
    let row = tx.fetch_optional(Query::new(sql).bind(org).bind(from - 1)).await?;
    Ok(row.and_then(|r| r.opt_bytes("mac").ok().flatten()).unwrap_or_default())
}

/// Verifies links `from..=to` (clamped to the head) of the scope's organization after linking every
/// pending event, reading one snapshot. When the range reaches the head, also checks the head and that
/// no event sits outside the chain.
pub(crate) async fn verify(scope: &Scope, from: i64, to: Option<i64>) -> Result<ChainReport> {
    Ok(verify_capturing(scope, from, to, None).await?.0)
}

/// [`verify`], also returning the root of the tree's first `capture` leaves as recomputed from the
/// links (when the walk starts at the first link and gets that far).
pub(crate) async fn verify_capturing(
    scope: &Scope,
    from: i64,
    to: Option<i64>,
    capture: Option<u64>,
) -> Result<(ChainReport, Option<Hash>)> {
    let org = scope.organization_id();
    let db = scope.db();
    // Fresh from the key store: a version created by another process must verify too.
    let waiting = oldest_queued(db, org).await?;
    chain::link_all(db, org).await?;
    let keys = db.keyring().load_org_keys(org).await?;
    let from = from.max(1);
    let mut tx = db.begin(Some(org), TxMode::Snapshot).await?;
    let head = read_head(&mut tx, &keys, org).await?;
    let head_seq = head.as_ref().map_or(0, |h| h.seq);
    if from > head_seq.max(1) {
        tx.commit().await?;
        return Err(Error::validation("from", "is beyond the chain's head"));
    }
    // The root of the empty tree is known without walking.
    let capture = capture.map(|size| (size, (size == 0).then(merkle::empty_root)));
    let to = to.unwrap_or(head_seq).min(head_seq);
    let report = |verified, to_seq, unchained, tree_root: Option<Hash>, broken| ChainReport {
        organization_id: org,
        from_seq: from,
        to_seq,
        verified,
        head_seq,
        unchained,
        tree_root: tree_root.map(|r| base64::engine::general_purpose::STANDARD.encode(r)),
        broken,
    };
    let Some(head) = head.filter(|h| h.seq > 0) else {
        // Every organization records its own creation, so after linking a chain is never empty: its
        // events, its links and its head were all removed.
        tx.commit().await?;
        let gone = brk(Some(1), None, TamperKind::Deleted, "the chain head is gone".into());
        return Ok((report(0, 0, 0, None, gone), capture.and_then(|c| c.1)));
    };
    let mut walk = Walk {
        expected_prev: predecessor(&mut tx, org, from).await?,
        expected_seq: from,
        verified: 0,
        last_seen: from - 1,
        tree: (from == 1).then(Frontier::default),
        subtrees: Vec::new(),
        capture,
    };
    // Pages are checked on other threads while the next one is read; the walk then goes through
    // each page in order. One link past the range (when there is one) tells whether the chain
    // vouches for the last.
    let keys = Arc::new(keys);
    let mut broken = None;
    let mut page = fetch_links(&mut tx, org, from - 1, to.saturating_add(1)).await?;
    'walk: while !page.is_empty() {
        let (exhausted, cursor) = ((page.len() as i64) < PAGE, page.last().map_or(to, |l| l.seq));
        let checking = check_page(Arc::clone(&keys), org, page);
        let next = if exhausted { Vec::new() } else { fetch_links(&mut tx, org, cursor, to.saturating_add(1)).await? };
        let (links, leaves) = checking.await.map_err(|_| thread_failed())??;
        let mut links = links.into_iter().zip(leaves).peekable();
        while let Some((link, leaf)) = links.next() {
            if link.seq > to && link.seq <= head_seq {
                break 'walk;
            }
            let next_prev = match links.peek() {
                Some((n, _)) => n.prev.as_slice(),
                None => next.first().map_or(head.last.as_slice(), |n| n.prev.as_slice()),
            };
            broken = walk.check(&mut tx, org, link, leaf, next_prev).await?;
            if broken.is_some() {
                break 'walk;
            }
        }
        broken = walk.check_subtrees(&mut tx, org).await?;
        if broken.is_some() {
            break 'walk;
        }
        page = next;
    }
    if broken.is_none() && to == head_seq {
        broken = walk.check_head(&head);
    }
    let pending = count(&mut tx, "SELECT count(*) AS n FROM audit_pending WHERE organization_id = $1", org).await?;
    if broken.is_none() && from == 1 && to == head_seq {
        broken = outside_the_chain(&mut tx, org).await?;
    }
    if broken.is_none() && pending > 0 {
        broken = stalled(&mut tx, org, waiting).await?;
    }
    tx.commit().await?;
    let whole = broken.is_none() && from == 1 && to == head_seq;
    let root = walk.tree.as_ref().filter(|_| whole).map(Frontier::root);
    let captured = walk.capture.and_then(|c| c.1);
    Ok((report(walk.verified, walk.last_seen.max(0), pending, root, broken), captured))
}

/// The oldest queue entry of `org` (linking takes the queue in this order), before linking.
async fn oldest_queued(db: &crate::db::Database, org: Uuid) -> Result<Option<Uuid>> {
    let mut tx = db.begin(Some(org), TxMode::Read).await?;
    let sql = "SELECT event_id FROM audit_pending WHERE organization_id = $1 ORDER BY event_id LIMIT 1";
    let row = tx.fetch_optional(Query::new(sql).bind(org)).await?;
    tx.commit().await?;
    row.map(|r| r.uuid(0)).transpose()
}

/// A queue entry that was already queued when verification began (at or before `waiting`, the
/// oldest entry then) and is still queued after linking, which took every visible entry in order:
/// one that linking cannot take. Clock-free: a long transaction that commits its event during
/// verification is not mistaken for one.
async fn stalled(tx: &mut Tx, org: Uuid, waiting: Option<Uuid>) -> Result<Option<ChainBreak>> {
    let Some(waiting) = waiting else { return Ok(None) };
    let sql = "SELECT event_id FROM audit_pending WHERE organization_id = $1 AND event_id <= $2 \
               ORDER BY event_id LIMIT 1";
    let Some(row) = tx.fetch_optional(Query::new(sql).bind(org).bind(waiting)).await? else { return Ok(None) };
    let detail = "an event queued before verification began is still not chained after it linked everything".into();
    Ok(brk(None, Some(row.uuid(0)?), TamperKind::Stalled, detail))
}

/// Events that are neither linked nor queued (inserted by someone without the key, or dropped by the
/// sequencer because their MAC failed), and queue entries whose event is gone (deleted before linking).
async fn outside_the_chain(tx: &mut Tx, org: Uuid) -> Result<Option<ChainBreak>> {
    let orphan = tx
        .fetch_optional(
            Query::new(
                "SELECT e.id FROM audit_logs e WHERE e.organization_id = $1 \
                 AND NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.organization_id = e.organization_id AND c.event_id = e.id) \
                 AND NOT EXISTS (SELECT 1 FROM audit_pending p WHERE p.organization_id = e.organization_id AND p.event_id = e.id) \
                 ORDER BY e.id LIMIT 1",
            )
            .bind(org),
        )
        .await?;
    if let Some(row) = orphan {
        return Ok(brk(None, Some(row.uuid("id")?), TamperKind::Inserted, "an event outside the chain".into()));
    }
    let lost = tx
        .fetch_optional(
            Query::new(
                "SELECT p.event_id FROM audit_pending p WHERE p.organization_id = $1 \
                 AND NOT EXISTS (SELECT 1 FROM audit_logs e WHERE e.organization_id = p.organization_id AND e.id = p.event_id) \
                 ORDER BY p.event_id LIMIT 1",
            )
            .bind(org),
        )
        .await?;
    match lost {
        Some(row) => Ok(brk(
            None,
            Some(row.uuid("event_id")?),
            TamperKind::Deleted,
            "a recorded event removed before it was linked".into(),
        )),
        None => Ok(None),
    }
}

async fn count(tx: &mut Tx, sql: &str, org: Uuid) -> Result<u64> {
    let row = tx.fetch_optional(Query::new(sql).bind(org)).await?;
    Ok(row.map(|r| r.int("n")).transpose()?.unwrap_or(0).max(0) as u64)
}
