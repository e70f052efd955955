//! The Merkle tree over each organization's chain, as stored (RFC 9162 hashing, [`austa_crypto::merkle`]).
//!
//! Leaf `i` is link `i + 1` of the chain: its entry is `org ‖ seq ‖ event id ‖ link MAC` (the link's
//! MAC covers the event's MAC, which covers the event's content), so the tree commits to every event
//! in chain order, and a proof about it can be checked by anyone holding only hashes.
//!
//! What is stored, next to the chain and in the same transaction as the links:
//!
//! * the head's `frontier` ([`Frontier`]): the right edge, from which the root follows;
//! * `audit_tree`: every complete subtree at a level that is a multiple of [`STRIDE`] (16, 256,
//!   4,096 … leaves): one row per 15 links. A node at another level is computed from at most
//!   `2^(STRIDE-1)` stored nodes below it, a node below level [`STRIDE`] from the links themselves.
//!
//! So a proof at a million events reads a few hundred short rows, and appending costs one node row
//! per 15 links, written in the links' transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use austa_crypto::merkle::{self, Frontier, Hash};
use uuid::Uuid;

use crate::db::{IntoValue, Query, QueryBuilder, Tx};
use crate::error::{Error, Result};

/// Levels stored in `audit_tree` are the multiples of this.
pub(crate) const STRIDE: u32 = 4;
/// Rows inserted per statement.
const NODES_PER_STATEMENT: usize = 256;
/// Links read per page when building a tree from its chain.
const REBUILD_PAGE: i64 = 10_000;

/// The leaf of link `seq`.
pub(crate) fn leaf(org: Uuid, seq: i64, event: Uuid, link_mac: &[u8]) -> Hash {
    let mut entry = Vec::with_capacity(16 + 8 + 16 + link_mac.len());
    entry.extend_from_slice(org.as_bytes());
    entry.extend_from_slice(&seq.to_be_bytes());
    entry.extend_from_slice(event.as_bytes());
    entry.extend_from_slice(link_mac);
    merkle::leaf_hash(&entry)
}

/// A complete subtree to store: level, index, hash.
pub(crate) type Node = (u32, u64, Hash);

/// Appends `leaf` to `frontier`, adding to `nodes` the complete subtrees it completes that are stored.
pub(crate) fn append(frontier: &mut Frontier, leaf: Hash, nodes: &mut Vec<Node>) {
    frontier.push(leaf, |level, index, hash| {
        if level % STRIDE == 0 {
            nodes.push((level, index, *hash));
        }
    });
}

/// Stores complete subtrees. A subtree already stored (a tree rebuilt over one stored before) is left
/// as it is: a complete subtree never changes.
pub(crate) async fn store(tx: &mut Tx, org: Uuid, nodes: &[Node]) -> Result<()> {
    for chunk in nodes.chunks(NODES_PER_STATEMENT) {
        let mut q = QueryBuilder::new("INSERT INTO audit_tree (organization_id, level, idx, hash) VALUES ");
        for (i, (level, index, hash)) in chunk.iter().enumerate() {
            if i > 0 {
                q.push(", ");
            }
            q.push_tuple([
                org.into_value(),
                i64::from(*level).into_value(),
                index_value(*index)?,
                hash.to_vec().into_value(),
            ]);
        }
        q.push(" ON CONFLICT (organization_id, level, idx) DO NOTHING");
        tx.execute(q.build()).await?;
    }
    Ok(())
}

fn index_value(index: u64) -> Result<crate::db::Value> {
    i64::try_from(index)
        .map(IntoValue::into_value)
        .map_err(|_| Error::CorruptData("audit tree index out of range".into()))
}

/// The frontier of a chain of `seq` links as the head stores it; built from the chain (and its
/// complete subtrees stored) when the head has none yet, as for a chain linked before the tree
/// existed.
pub(crate) async fn frontier_of(tx: &mut Tx, org: Uuid, seq: i64, stored: Option<Vec<u8>>) -> Result<Frontier> {
    let size = u64::try_from(seq).map_err(|_| Error::CorruptData("negative audit head".into()))?;
    match stored {
        Some(bytes) => Frontier::from_bytes(size, &bytes)
            .ok_or_else(|| Error::CorruptData("the audit head's Merkle frontier does not match its size".into())),
        None => rebuild(tx, org, seq).await,
    }
}

/// The root of the tree whose frontier the head stores (`frontier` of a head at `seq`); `None` when
/// the head has none, or one that does not fit its size.
pub(crate) fn stored_root(seq: i64, frontier: Option<Vec<u8>>) -> Option<Hash> {
    Frontier::from_bytes(u64::try_from(seq).ok()?, &frontier?).map(|f| f.root())
}

/// The stored subtrees at the places of `nodes` (as a walk along the links computed them), by
/// level and index. A page of links completes a run of consecutive subtrees at each stored level,
/// so they are read as one index range per level.
pub(crate) async fn stored_like(tx: &mut Tx, org: Uuid, nodes: &[Node]) -> Result<HashMap<(u32, u64), Vec<u8>>> {
    let mut ranges: BTreeMap<u32, (u64, u64)> = BTreeMap::new();
    for (level, index, _) in nodes {
        let range = ranges.entry(*level).or_insert((*index, *index));
        range.0 = range.0.min(*index);
        range.1 = range.1.max(*index);
    }
    let mut stored = HashMap::with_capacity(nodes.len());
    if ranges.is_empty() {
        return Ok(stored);
    }
    let mut q = QueryBuilder::new("SELECT level, idx, hash FROM audit_tree WHERE organization_id = ");
    q.push_bind(org).push(" AND (");
    for (i, (level, (low, high))) in ranges.iter().enumerate() {
        if i > 0 {
            q.push(" OR ");
        }
        q.push("(level = ").push_bind(i64::from(*level)).push(" AND idx >= ").push_bind(index_value(*low)?);
        q.push(" AND idx <= ").push_bind(index_value(*high)?).push(")");
    }
    q.push(")");
    for row in tx.fetch_all(q.build()).await? {
        let (level, index) = (u32::try_from(row.int(0)?), u64::try_from(row.int(1)?));
        if let (Ok(level), Ok(index)) = (level, index) {
            stored.insert((level, index), row.opt_bytes(2)?.unwrap_or_default());
        }
    }
    Ok(stored)
}

/// Builds the tree of links `1..=seq` from the chain, storing its complete subtrees.
async fn rebuild(tx: &mut Tx, org: Uuid, seq: i64) -> Result<Frontier> {
    let mut frontier = Frontier::default();
    let mut after = 0;
    while after < seq {
        let sql = "SELECT seq, event_id, mac FROM audit_chain WHERE organization_id = $1 AND seq > $2 AND seq <= $3 \
                   ORDER BY seq LIMIT $4";
        let rows = tx.fetch_all(Query::new(sql).bind(org).bind(after).bind(seq).bind(REBUILD_PAGE)).await?;
        let mut nodes = Vec::new();
        for row in &rows {
            let link = row.int(0)?;
            if link != after + 1 {
                return Err(Error::CorruptData(format!(
                    "the audit chain lacks link {}: verify it before building its Merkle tree",
                    after + 1
                )));
            }
            append(&mut frontier, leaf(org, link, row.uuid(1)?, &row.opt_bytes(2)?.unwrap_or_default()), &mut nodes);
            after = link;
        }
        if rows.is_empty() {
            return Err(Error::CorruptData(format!("the audit chain ends at link {after}, its head names {seq}")));
        }
        store(tx, org, &nodes).await?;
    }
    // Kept, so that the next pass starts from it even if it links nothing.
    let sql = "UPDATE audit_heads SET frontier = $1 WHERE organization_id = $2 AND seq = $3";
    tx.execute(Query::new(sql).bind(frontier.to_bytes()).bind(org).bind(seq)).await?;
    Ok(frontier)
}

/// The hashes of the complete subtrees `wanted` (level, index), read from the stored subtrees and the
/// chain. Fails, naming the node, when one is missing.
pub(crate) async fn nodes(tx: &mut Tx, org: Uuid, wanted: &BTreeSet<(u32, u64)>) -> Result<HashMap<(u32, u64), Hash>> {
    // Each wanted node from the stored level at or below it: the base level and its indices there.
    let mut base: BTreeMap<u32, BTreeSet<u64>> = BTreeMap::new();
    for &(level, index) in wanted {
        let at = level - level % STRIDE;
        let span = 1u64 << (level - at);
        base.entry(at).or_default().extend(index * span..(index + 1) * span);
    }
    let mut known: HashMap<(u32, u64), Hash> = HashMap::new();
    for (level, indices) in base {
        let rows = if level == 0 {
            let seqs = indices.iter().map(|i| index_value(i + 1)).collect::<Result<Vec<_>>>()?;
            let mut q = QueryBuilder::new("SELECT seq, event_id, mac FROM audit_chain WHERE organization_id = ");
            q.push_bind(org).push(" AND seq IN (").push_binds(seqs).push(")");
            tx.fetch_all(q.build()).await?
        } else {
            let idx = indices.iter().map(|i| index_value(*i)).collect::<Result<Vec<_>>>()?;
            let mut q = QueryBuilder::new("SELECT idx, hash FROM audit_tree WHERE organization_id = ");
            q.push_bind(org)
                .push(" AND level = ")
                .push_bind(i64::from(level))
                .push(" AND idx IN (")
                .push_binds(idx)
                .push(")");
            tx.fetch_all(q.build()).await?
        };
        for row in rows {
            let (index, hash) = if level == 0 {
                let seq = row.int(0)?;
                (seq - 1, leaf(org, seq, row.uuid(1)?, &row.opt_bytes(2)?.unwrap_or_default()))
            } else {
                let hash = row.opt_bytes(1)?.and_then(|h| Hash::try_from(h).ok());
                (row.int(0)?, hash.ok_or_else(|| Error::CorruptData("an audit tree node is not a hash".into()))?)
            };
            known.insert((level, u64::try_from(index).unwrap_or(u64::MAX)), hash);
        }
    }
    let mut out = HashMap::with_capacity(wanted.len());
    for &(level, index) in wanted {
        out.insert((level, index), combine(&known, level, index)?);
    }
    Ok(out)
}

/// Node `(level, index)` from the stored nodes at the stored level at or below it.
fn combine(known: &HashMap<(u32, u64), Hash>, level: u32, index: u64) -> Result<Hash> {
    let at = level - level % STRIDE;
    let span = 1u64 << (level - at);
    let mut row = (index * span..(index + 1) * span)
        .map(|i| {
            known.get(&(at, i)).copied().ok_or_else(|| {
                Error::CorruptData(format!("the audit tree lacks node {i} at level {at}: verify the chain"))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    while row.len() > 1 {
        row = row.chunks(2).map(|pair| merkle::node_hash(&pair[0], pair.get(1).unwrap_or(&pair[0]))).collect();
    }
    row.pop().ok_or_else(|| Error::CorruptData("empty audit tree node".into()))
}

/// The hashes of `ranges` (each a node of the RFC 9162 tree), from stored nodes.
pub(crate) async fn range_hashes(tx: &mut Tx, org: Uuid, ranges: &[std::ops::Range<u64>]) -> Result<Vec<Hash>> {
    let parts: Vec<Vec<(u32, u64)>> = ranges.iter().map(merkle::complete_nodes).collect();
    let wanted: BTreeSet<(u32, u64)> = parts.iter().flatten().copied().collect();
    let hashes = nodes(tx, org, &wanted).await?;
    parts
        .iter()
        .map(|part| {
            let got = part.iter().map(|n| hashes.get(n).copied()).collect::<Option<Vec<_>>>();
            got.map(|g| merkle::range_hash(&g)).ok_or_else(|| Error::CorruptData("audit tree node missing".into()))
        })
        .collect()
}

/// The root of the first `size` leaves, from stored nodes.
pub(crate) async fn root_at(tx: &mut Tx, org: Uuid, size: u64) -> Result<Hash> {
    if size == 0 {
        return Ok(merkle::empty_root());
    }
    let whole = std::iter::once(0..size).collect::<Vec<_>>();
    Ok(range_hashes(tx, org, &whole).await?.pop().unwrap_or_else(merkle::empty_root))
}
