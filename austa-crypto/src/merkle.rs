//! Merkle trees as RFC 9162 (Certificate Transparency 2.0, §2.1) defines them, for the audit log.
//!
//! A tree over leaves `d[0..n)` hashes a leaf as `SHA-256(0x00 ‖ entry)` and an interior node as
//! `SHA-256(0x01 ‖ left ‖ right)`, splitting a range of `n > 1` leaves at the largest power of two
//! below `n`; the empty tree's hash is `SHA-256("")`. Two facts make the structure cheap to keep in a
//! database:
//!
//! * a *complete* subtree (`2^level` leaves starting at a multiple of `2^level`) never changes once
//!   its last leaf is appended, so it is stored once, by `(level, index)`;
//! * the whole tree is summed up by its [`Frontier`]: the complete subtrees along its right edge, one
//!   per bit of `n` (at most 64 hashes), from which the root follows and to which a leaf is appended
//!   in O(log n).
//!
//! Proofs are planned here, without storage: [`inclusion_ranges`] and [`consistency_ranges`] name the
//! leaf ranges whose hashes make up a proof, [`complete_nodes`] splits each range into complete
//! subtrees, and [`range_hash`] folds those hashes back into the range's. The caller fetches the
//! complete subtrees from wherever it keeps them. [`verify_inclusion`] and [`verify_consistency`]
//! check proofs with RFC 9162's own algorithms (§2.1.3.2, §2.1.4.2), which share no code with the
//! planning, so a planning error cannot hide itself.
//!
//! ```
//! use austa_crypto::merkle::{leaf_hash, verify_inclusion, Frontier};
//! let leaves: Vec<_> = (0u8..5).map(|i| leaf_hash(&[i])).collect();
//! let mut tree = Frontier::default();
//! for leaf in &leaves {
//!     tree.push(*leaf, |_, _, _| {});
//! }
//! assert_eq!(tree.size(), 5);
//! // The inclusion proof of leaf 4 in a tree of 5 is the hash of the first four leaves.
//! let mut first_four = Frontier::default();
//! leaves[..4].iter().for_each(|l| first_four.push(*l, |_, _, _| {}));
//! assert!(verify_inclusion(4, 5, &leaves[4], &[first_four.root()], &tree.root()));
//! ```

use std::ops::Range;

use sha2::{Digest, Sha256};

/// A node's hash.
pub type Hash = [u8; 32];

/// The hash of a leaf whose entry is `entry`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    Sha256::new().chain_update([0u8]).chain_update(entry).finalize().into()
}

/// The hash of the interior node over `left` and `right`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new().chain_update([1u8]).chain_update(left).chain_update(right).finalize().into()
}

/// The root of the empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The right edge of a tree: the roots of its complete subtrees, largest (leftmost) first, one per
/// set bit of the tree's size. Appending a leaf and computing the root need nothing else.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    peaks: Vec<Hash>,
}

impl Frontier {
    /// The frontier of a tree of `size` leaves, from its peaks as [`Frontier::to_bytes`] wrote them.
    /// `None` when the bytes do not hold exactly one hash per set bit of `size`.
    pub fn from_bytes(size: u64, bytes: &[u8]) -> Option<Self> {
        if bytes.len() != size.count_ones() as usize * 32 {
            return None;
        }
        let peaks = bytes.chunks_exact(32).map(|c| c.try_into().unwrap_or([0; 32])).collect();
        Some(Self { size, peaks })
    }

    /// The peaks, concatenated (largest first): what [`Frontier::from_bytes`] reads back.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.peaks.concat()
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf. `completed` is called for every complete subtree above the leaf that the leaf
    /// completes, bottom up, with its level (1 and up), index at that level and hash: what a store of
    /// complete subtrees must add.
    pub fn push(&mut self, leaf: Hash, mut completed: impl FnMut(u32, u64, &Hash)) {
        let index = self.size;
        let mut hash = leaf;
        let mut level = 0;
        // Each trailing one bit of the old size is a peak of the same height as `hash`: merge them.
        while index >> level & 1 == 1 {
            let Some(left) = self.peaks.pop() else { break };
            hash = node_hash(&left, &hash);
            level += 1;
            completed(level, index >> level, &hash);
        }
        self.peaks.push(hash);
        self.size += 1;
    }

    /// The tree's root (RFC 9162's `MTH`).
    pub fn root(&self) -> Hash {
        fold_right(&self.peaks)
    }
}

/// Folds subtree hashes, left to right in the tree, into the hash of the range they cover:
/// `H(h0, H(h1, … H(h_{k-2}, h_{k-1})))`, the shape RFC 9162 gives a range that is not complete.
fn fold_right(hashes: &[Hash]) -> Hash {
    let mut rest = hashes.iter().rev();
    let Some(last) = rest.next() else { return empty_root() };
    rest.fold(*last, |right, left| node_hash(left, &right))
}

/// The hash of a range from the hashes of its [`complete_nodes`], in their order.
pub fn range_hash(nodes: &[Hash]) -> Hash {
    fold_right(nodes)
}

/// The complete subtrees, as `(level, index)`, that cover `range`, left to right. `range` must be a
/// node of an RFC 9162 tree (its start a multiple of the smallest power of two not below its
/// length), as every range [`inclusion_ranges`] and [`consistency_ranges`] name is.
pub fn complete_nodes(range: &Range<u64>) -> Vec<(u32, u64)> {
    let mut nodes = Vec::new();
    let mut at = range.start;
    let len = range.end.saturating_sub(range.start);
    for level in (0..64u32).rev() {
        if len >> level & 1 == 1 {
            nodes.push((level, at >> level));
            at += 1 << level;
        }
    }
    nodes
}

/// The largest power of two below `n` (`n > 1`).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// The leaf ranges whose hashes form the inclusion proof of leaf `index` in the tree of `size` leaves
/// (RFC 9162 §2.1.3.1 `PATH`), from the leaf's sibling up. Empty when `index >= size`.
pub fn inclusion_ranges(index: u64, size: u64) -> Vec<Range<u64>> {
    let mut ranges = Vec::new();
    if index < size {
        path(index, 0..size, &mut ranges);
    }
    ranges
}

fn path(m: u64, d: Range<u64>, out: &mut Vec<Range<u64>>) {
    let n = d.end - d.start;
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, d.start..d.start + k, out);
        out.push(d.start + k..d.end);
    } else {
        path(m - k, d.start + k..d.end, out);
        out.push(d.start..d.start + k);
    }
}

/// The leaf ranges whose hashes form the consistency proof between the trees of `old` and `new`
/// leaves (RFC 9162 §2.1.4.1 `PROOF`). Empty when `old == 0`, `old >= new` (nothing to prove, or
/// nothing provable).
pub fn consistency_ranges(old: u64, new: u64) -> Vec<Range<u64>> {
    let mut ranges = Vec::new();
    if 0 < old && old < new {
        subproof(old, 0..new, true, &mut ranges);
    }
    ranges
}

fn subproof(m: u64, d: Range<u64>, whole: bool, out: &mut Vec<Range<u64>>) {
    let n = d.end - d.start;
    if m == n {
        if !whole {
            out.push(d);
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, d.start..d.start + k, whole, out);
        out.push(d.start + k..d.end);
    } else {
        subproof(m - k, d.start + k..d.end, false, out);
        out.push(d.start..d.start + k);
    }
}

/// Whether `proof` shows the leaf with hash `leaf` at `index` in the tree of `size` leaves whose root
/// is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(index: u64, size: u64, leaf: &Hash, proof: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f_n, mut s_n) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && crate::mac_eq(&r, root)
}

/// Whether `proof` shows that the tree of `new` leaves with root `new_root` extends the tree of
/// `old` leaves with root `old_root`: the same first `old` leaves, others only appended
/// (RFC 9162 §2.1.4.2). Equal sizes need equal roots and an empty proof.
pub fn verify_consistency(old: u64, new: u64, old_root: &Hash, new_root: &Hash, proof: &[Hash]) -> bool {
    if old > new {
        return false;
    }
    if old == new {
        return proof.is_empty() && crate::mac_eq(old_root, new_root);
    }
    if old == 0 {
        // Every tree extends the empty one, whose root is known.
        return proof.is_empty() && crate::mac_eq(old_root, &empty_root());
    }
    if proof.is_empty() {
        return false;
    }
    let mut proof = proof.iter();
    // A power of two: the old root is itself the first node of the proof.
    let mut path: Vec<&Hash> = Vec::with_capacity(proof.len() + 1);
    if old.is_power_of_two() {
        path.push(old_root);
    }
    path.extend(&mut proof);
    let mut path = path.into_iter();
    let (mut f_n, mut s_n) = (old - 1, new - 1);
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    let Some(first) = path.next() else { return false };
    let (mut fr, mut sr) = (*first, *first);
    for c in path {
        if s_n == 0 {
            return false;
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    s_n == 0 && crate::mac_eq(&fr, old_root) && crate::mac_eq(&sr, new_root)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9162's `MTH`, straight from its recursive definition.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    /// A range's hash from its complete subtrees, each computed from the leaves.
    fn hash_of(all: &[Hash], range: &Range<u64>) -> Hash {
        let nodes: Vec<Hash> = complete_nodes(range)
            .into_iter()
            .map(|(level, index)| {
                let start = (index << level) as usize;
                mth(&all[start..start + (1usize << level)])
            })
            .collect();
        let hash = range_hash(&nodes);
        assert_eq!(hash, mth(&all[range.start as usize..range.end as usize]), "range {range:?}");
        hash
    }

    #[test]
    fn the_empty_tree_and_one_leaf_match_the_rfc() {
        // SHA-256 of the empty string.
        assert_eq!(
            empty_root().iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut f = Frontier::default();
        assert_eq!(f.root(), empty_root());
        f.push(leaf_hash(b""), |_, _, _| unreachable!("one leaf completes no interior node"));
        // RFC 6962's test vector for the single empty leaf.
        assert_eq!(
            f.root().iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
    }

    #[test]
    fn the_frontier_gives_the_root_and_every_completed_subtree() {
        let all = leaves(70);
        let mut f = Frontier::default();
        for (i, leaf) in all.iter().enumerate() {
            let mut seen = Vec::new();
            f.push(*leaf, |level, index, hash| seen.push((level, index, *hash)));
            for (level, index, hash) in &seen {
                let start = (index << level) as usize;
                assert_eq!(start + (1 << level), i + 1, "a subtree completes with its last leaf");
                assert_eq!(*hash, mth(&all[start..=i]));
            }
            assert_eq!(seen.len() as u32, (i as u64 + 1).trailing_zeros());
            assert_eq!(f.root(), mth(&all[..=i]));
            let back = Frontier::from_bytes(f.size(), &f.to_bytes()).unwrap();
            assert_eq!(back, f);
        }
        assert!(Frontier::from_bytes(70, &[0; 32]).is_none(), "70 has three set bits");
    }

    #[test]
    fn inclusion_proofs_verify_for_every_leaf_and_size_and_fail_when_altered() {
        let all = leaves(40);
        for size in 1..=40u64 {
            let root = mth(&all[..size as usize]);
            for index in 0..size {
                let proof: Vec<Hash> = inclusion_ranges(index, size).iter().map(|r| hash_of(&all, r)).collect();
                assert!(proof.len() <= 64 - (size - 1).leading_zeros() as usize);
                assert!(verify_inclusion(index, size, &all[index as usize], &proof, &root), "{index} in {size}");
                let other = all[(index as usize + 1) % all.len()];
                assert!(!verify_inclusion(index, size, &other, &proof, &root));
                if let Some(first) = proof.first() {
                    let mut bad = proof.clone();
                    bad[0] = node_hash(first, first);
                    assert!(!verify_inclusion(index, size, &all[index as usize], &bad, &root));
                    assert!(!verify_inclusion(index, size, &all[index as usize], &proof[1..], &root));
                }
            }
        }
    }

    #[test]
    fn consistency_proofs_verify_for_every_pair_of_sizes_and_fail_for_other_histories() {
        let all = leaves(40);
        let mut forked = all.clone();
        forked[3] = leaf_hash(b"rewritten");
        for new in 1..=40u64 {
            let new_root = mth(&all[..new as usize]);
            for old in 1..=new {
                let old_root = mth(&all[..old as usize]);
                let proof: Vec<Hash> = consistency_ranges(old, new).iter().map(|r| hash_of(&all, r)).collect();
                assert!(verify_consistency(old, new, &old_root, &new_root, &proof), "{old} -> {new}");
                if old > 3 {
                    let forked_root = mth(&forked[..old as usize]);
                    assert!(!verify_consistency(old, new, &forked_root, &new_root, &proof), "fork {old} -> {new}");
                }
                if old < new {
                    assert!(!verify_consistency(new, old, &new_root, &old_root, &proof), "shrinking");
                }
                assert!(verify_consistency(0, new, &empty_root(), &new_root, &[]));
                assert!(!verify_consistency(0, new, &old_root, &new_root, &[]), "the empty tree has one root");
            }
        }
    }
}
