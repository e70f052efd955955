//! The audit log as a transparency log: signed checkpoints, inclusion and consistency proofs.
//!
//! The MAC chain proves to a holder of the data keys that no event was altered; it cannot prove that
//! the newest events were not cut together with the head, or that an older copy of the database was
//! not restored, and nobody without the keys can check it. The Merkle tree over the chain's links
//! ([`crate::kernel::tree`]) closes both gaps:
//!
//! * [`AuditTrail::checkpoint`](super::AuditTrail::checkpoint) verifies the whole chain and signs its
//!   size and tree root with an Ed25519 key that is not derived from the data keys
//!   ([`austa_crypto::checkpoint`]). Whoever keeps the note outside the database (a compliance
//!   office, a WORM bucket, a regulator) holds a fact about the log that the database cannot unsay.
//! * [`AuditTrail::verify_against`](super::AuditTrail::verify_against) verifies the chain and
//!   recomputes, from the links, the root at the checkpoint's size: fewer events than the checkpoint
//!   names is [`TamperKind::Truncated`], another root is [`TamperKind::Rewritten`].
//! * [`ConsistencyProof`] shows a checkpoint holder, with hashes only (O(log n) of them), that a
//!   newer checkpoint extends theirs; [`witness`] checks one against two signed notes.
//! * [`InclusionProof`] shows that one event's link is in the tree a checkpoint signed
//!   ([`InclusionProof::verify_against`] the opened checkpoint).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use uuid::Uuid;

pub use austa_crypto::checkpoint::{
    Checkpoint, CheckpointSigner, CheckpointVerifier, Ed25519Signer, DEFAULT_KEY_NAME, SIGNER_NAME_ENV,
    SIGNING_KEY_ENV, SIGNING_KEY_FILE_ENV, VERIFIER_KEY_ENV,
};
use austa_crypto::merkle::{self, Hash};

use super::verify::{verify_capturing, ChainBreak, ChainReport, TamperKind};
use crate::db::{Query, TxMode};
use crate::error::{Error, Result};
use crate::kernel::{chain, tree};
use crate::scope::Scope;

/// The origin line of an organization's checkpoints: names the log, so that one organization's
/// checkpoint never verifies as another's.
pub fn origin(organization_id: Uuid) -> String {
    format!("austa-audit/{organization_id}")
}

/// A proof that one event's link is leaf `leaf_index` of the tree of `tree_size` leaves whose root is
/// `root`. Hashes are base64.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InclusionProof {
    /// The organization whose log it is.
    pub organization_id: Uuid,
    /// The event.
    pub event_id: Uuid,
    /// The event's link's sequence number (the leaf index plus one).
    pub seq: i64,
    /// The link's MAC, part of the leaf.
    pub link_mac: String,
    /// The tree's size.
    pub tree_size: u64,
    /// The tree's root, as a checkpoint of that size signs it.
    pub root: String,
    /// The proof's hashes, from the leaf's sibling up (RFC 9162 §2.1.3).
    pub hashes: Vec<String>,
}

impl InclusionProof {
    /// Whether the proof holds: the leaf, rebuilt from the organization, sequence number, event and
    /// link MAC, is in the tree with this root. Needs no key.
    pub fn verify(&self) -> bool {
        let (Some(mac), Some(root), Some(hashes)) = (decode(&self.link_mac), hash(&self.root), hashes(&self.hashes))
        else {
            return false;
        };
        let Some(index) = self.seq.checked_sub(1).and_then(|i| u64::try_from(i).ok()) else { return false };
        let leaf = tree::leaf(self.organization_id, self.seq, self.event_id, &mac);
        merkle::verify_inclusion(index, self.tree_size, &leaf, &hashes, &root)
    }

    /// Whether the proof holds *and* is about the tree `checkpoint` signed: the same log (origin),
    /// size and root. This is the check that means something: [`InclusionProof::verify`] alone only
    /// shows the proof agrees with the root it carries. Open the checkpoint with a
    /// [`CheckpointVerifier`] first.
    pub fn verify_against(&self, checkpoint: &Checkpoint) -> bool {
        checkpoint.origin == origin(self.organization_id)
            && checkpoint.size == self.tree_size
            && hash(&self.root).is_some_and(|r| austa_crypto::mac_eq(&r, &checkpoint.root))
            && self.verify()
    }
}

/// A proof that the tree of `new_size` leaves (root `new_root`) extends the tree of `old_size`
/// leaves (root `old_root`). Hashes are base64.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ConsistencyProof {
    /// The organization whose log it is.
    pub organization_id: Uuid,
    /// The older tree's size.
    pub old_size: u64,
    /// The older tree's root.
    pub old_root: String,
    /// The newer tree's size.
    pub new_size: u64,
    /// The newer tree's root.
    pub new_root: String,
    /// The proof's hashes (RFC 9162 §2.1.4).
    pub hashes: Vec<String>,
}

impl ConsistencyProof {
    /// Whether the proof holds. Needs no key.
    pub fn verify(&self) -> bool {
        let (Some(old), Some(new), Some(hashes)) = (hash(&self.old_root), hash(&self.new_root), hashes(&self.hashes))
        else {
            return false;
        };
        merkle::verify_consistency(self.old_size, self.new_size, &old, &new, &hashes)
    }
}

fn decode(text: &str) -> Option<Vec<u8>> {
    STANDARD.decode(text).ok()
}

fn hash(text: &str) -> Option<Hash> {
    decode(text).and_then(|h| Hash::try_from(h).ok())
}

fn hashes(texts: &[String]) -> Option<Vec<Hash>> {
    texts.iter().map(|t| hash(t)).collect()
}

fn encode_all(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|h| STANDARD.encode(h)).collect()
}

/// What a witness checks with no access to the log: both notes carry a valid signature by
/// `verifier`'s key and name the same log, and `proof` shows that the newer extends the older.
/// Returns the newer checkpoint, which the witness keeps from then on.
pub fn witness(
    verifier: &CheckpointVerifier,
    old_note: &str,
    new_note: &str,
    proof: &ConsistencyProof,
) -> Result<Checkpoint> {
    let old = verifier.open(old_note)?;
    let new = verifier.open(new_note)?;
    let bad = |why: &str| Error::validation("proof", why);
    if old.origin != new.origin || origin(proof.organization_id) != new.origin {
        return Err(bad("the checkpoints and the proof are of different logs"));
    }
    if new.size < old.size {
        return Err(bad("the newer checkpoint is smaller than the older: the log was cut or rolled back"));
    }
    let (old_root, new_root) = (STANDARD.encode(old.root), STANDARD.encode(new.root));
    if (proof.old_size, &proof.old_root, proof.new_size, &proof.new_root) != (old.size, &old_root, new.size, &new_root)
    {
        return Err(bad("the proof is between other trees than the checkpoints"));
    }
    if !proof.verify() {
        return Err(bad("the consistency proof does not hold: the newer log does not extend the older"));
    }
    Ok(new)
}

/// Verifies the whole chain and signs a checkpoint of it; fails when the chain does not verify
/// (a checkpoint vouches only for a log that verified).
pub(crate) async fn checkpoint(scope: &Scope, signer: &dyn CheckpointSigner) -> Result<String> {
    let report = verify_capturing(scope, 1, None, None).await?.0;
    if let Some(b) = &report.broken {
        return Err(Error::CorruptData(format!(
            "the audit chain does not verify ({:?} at {:?}): no checkpoint signed",
            b.kind, b.seq
        )));
    }
    let root = report.tree_root.as_deref().and_then(hash).ok_or_else(|| Error::CorruptData("no tree root".into()))?;
    let time = scope.db().now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let size = u64::try_from(report.head_seq).map_err(|_| Error::CorruptData("negative audit head".into()))?;
    let checkpoint =
        Checkpoint { origin: origin(scope.organization_id()), size, root, extensions: vec![format!("time {time}")] };
    checkpoint.sign(signer)
}

/// Verifies the whole chain and that it extends the checkpoint in `note`.
pub(crate) async fn verify_against(scope: &Scope, note: &str, verifier: &CheckpointVerifier) -> Result<ChainReport> {
    let checkpoint = verifier.open(note)?;
    if checkpoint.origin != origin(scope.organization_id()) {
        return Err(Error::validation("checkpoint", "is of another organization's log"));
    }
    let (mut report, root) = verify_capturing(scope, 1, None, Some(checkpoint.size)).await?;
    if report.broken.is_some() {
        return Ok(report);
    }
    let head = u64::try_from(report.head_seq).unwrap_or(0);
    report.broken = if checkpoint.size > head {
        let detail = format!(
            "a signed checkpoint names {} events, the log holds {head}: its newest events were cut, or an older copy restored",
            checkpoint.size
        );
        Some(ChainBreak { seq: Some(report.head_seq + 1), event_id: None, kind: TamperKind::Truncated, detail })
    } else if root != Some(checkpoint.root) {
        let detail = format!("the first {} events are not those the signed checkpoint names", checkpoint.size);
        Some(ChainBreak { seq: None, event_id: None, kind: TamperKind::Rewritten, detail })
    } else {
        None
    };
    Ok(report)
}

/// The chain's size after linking everything pending, `size` checked against it (`None`: all of it).
async fn tree_size(tx: &mut crate::db::Tx, org: Uuid, size: Option<u64>) -> Result<u64> {
    let row = tx.fetch_optional(Query::new("SELECT seq FROM audit_heads WHERE organization_id = $1").bind(org)).await?;
    let head = u64::try_from(row.map(|r| r.int("seq")).transpose()?.unwrap_or(0)).unwrap_or(0);
    match size {
        None => Ok(head),
        Some(s) if s <= head => Ok(s),
        Some(_) => Err(Error::validation("tree_size", "is larger than the log")),
    }
}

/// The inclusion proof of `event_id` in the tree of `size` leaves (default: the whole log).
pub(crate) async fn inclusion_proof(scope: &Scope, event_id: Uuid, size: Option<u64>) -> Result<InclusionProof> {
    let org = scope.organization_id();
    chain::link_all(scope.db(), org).await?;
    let mut tx = scope.db().begin(Some(org), TxMode::Snapshot).await?;
    let tree_size = tree_size(&mut tx, org, size).await?;
    let sql = "SELECT seq, mac FROM audit_chain WHERE organization_id = $1 AND event_id = $2";
    let link = tx.fetch_optional(Query::new(sql).bind(org).bind(event_id)).await?;
    let Some(link) = link else {
        tx.commit().await?;
        return Err(Error::not_found("audit event"));
    };
    let (seq, mac) = (link.int(0)?, link.opt_bytes(1)?.unwrap_or_default());
    let index = u64::try_from(seq - 1).map_err(|_| Error::CorruptData("audit link before the first".into()))?;
    if index >= tree_size {
        tx.commit().await?;
        return Err(Error::validation("tree_size", "the event was chained after the tree of that size"));
    }
    let proof = tree::range_hashes(&mut tx, org, &merkle::inclusion_ranges(index, tree_size)).await?;
    let root = checked_root(&mut tx, org, tree_size).await?;
    tx.commit().await?;
    let proof = InclusionProof {
        organization_id: org,
        event_id,
        seq,
        link_mac: STANDARD.encode(mac),
        tree_size,
        root: STANDARD.encode(root),
        hashes: encode_all(&proof),
    };
    // A proof always holds against the root computed from the same stored nodes; this catches a
    // stored node that does not fit its neighbours. A node altered consistently shows instead as a
    // root that no signed checkpoint names, which is what whoever checks the proof compares.
    if !proof.verify() {
        return Err(tampered_tree());
    }
    Ok(proof)
}

/// The consistency proof between the trees of `old_size` and `new_size` leaves (default: the whole
/// log).
pub(crate) async fn consistency_proof(scope: &Scope, old_size: u64, new_size: Option<u64>) -> Result<ConsistencyProof> {
    let org = scope.organization_id();
    chain::link_all(scope.db(), org).await?;
    let mut tx = scope.db().begin(Some(org), TxMode::Snapshot).await?;
    let new_size = tree_size(&mut tx, org, new_size).await?;
    if old_size > new_size {
        tx.commit().await?;
        return Err(Error::validation("old_size", "is larger than the newer tree"));
    }
    let hashes = tree::range_hashes(&mut tx, org, &merkle::consistency_ranges(old_size, new_size)).await?;
    let old_root = tree::root_at(&mut tx, org, old_size).await?;
    let new_root = checked_root(&mut tx, org, new_size).await?;
    tx.commit().await?;
    let proof = ConsistencyProof {
        organization_id: org,
        old_size,
        old_root: STANDARD.encode(old_root),
        new_size,
        new_root: STANDARD.encode(new_root),
        hashes: encode_all(&hashes),
    };
    if !proof.verify() {
        return Err(tampered_tree());
    }
    Ok(proof)
}

/// The root of the first `size` leaves from the stored subtrees; at the log's full size also
/// compared with the head's frontier (which verification checks against the links), so that a stored
/// subtree that does not fit is an error here rather than a proof no checkpoint matches.
async fn checked_root(tx: &mut crate::db::Tx, org: Uuid, size: u64) -> Result<Hash> {
    let root = tree::root_at(tx, org, size).await?;
    let sql = "SELECT seq, frontier FROM audit_heads WHERE organization_id = $1";
    if let Some(row) = tx.fetch_optional(Query::new(sql).bind(org)).await? {
        let seq = row.int(0)?;
        if u64::try_from(seq).ok() == Some(size) && tree::stored_root(seq, row.opt_bytes(1)?) != Some(root) {
            return Err(tampered_tree());
        }
    }
    Ok(root)
}

fn tampered_tree() -> Error {
    Error::CorruptData("the stored audit tree does not hold together: verify the chain".into())
}
