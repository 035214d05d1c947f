//! RFC 9162 Merkle tree over the entries of one agency.
//!
//! Leaf `i` (entry seq `i + 1`) is `SHA-256(0x00 ‖ entry hash bytes)`, an interior node is
//! `SHA-256(0x01 ‖ left ‖ right)`, the empty tree's root is `SHA-256("")`.
//!
//! Storage model for the database: node `(level, index)` is the hash of the complete subtree
//! over leaves `[index·2^level, (index+1)·2^level)`; level 0 holds the leaf hashes. Every node
//! becomes final once its last leaf is appended ([`CompactRange::append`] returns them), and every
//! proof is a list of such nodes, so a proof is one indexed query of O(log n) rows.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ProofError;
use crate::hash::Hash;

/// `SHA-256(0x00 ‖ entry_hash)`: the leaf of an entry whose `hash` is `entry_hash`.
pub fn leaf_hash(entry_hash: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(entry_hash.0);
    Hash(h.finalize().into())
}

/// `SHA-256(0x01 ‖ left ‖ right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

/// Root of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    Hash::of(b"")
}

/// A complete, aligned subtree: leaves `[index·2^level, (index+1)·2^level)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NodeId {
    pub level: u8,
    pub index: u64,
}

impl NodeId {
    pub const fn new(level: u8, index: u64) -> NodeId {
        NodeId { level, index }
    }

    pub const fn leaf(index: u64) -> NodeId {
        NodeId { level: 0, index }
    }

    /// The leaves the node covers, `[begin, end)`, or `None` if that overflows u64.
    pub fn leaf_range(&self) -> Option<(u64, u64)> {
        let width = 1u64.checked_shl(u32::from(self.level))?;
        let begin = self.index.checked_mul(width)?;
        let end = begin.checked_add(width)?;
        Some((begin, end))
    }
}

/// Right-to-left fold of subtree hashes: `H(h0, H(h1, … H(hk−1, hk)))`. Folding the nodes of
/// one proof element (or of a frontier) gives the Merkle tree hash of the range they cover.
/// An empty slice folds to the empty-tree root.
pub fn fold_range(hashes: &[Hash]) -> Hash {
    let mut iter = hashes.iter().rev();
    let Some(last) = iter.next() else {
        return empty_root();
    };
    iter.fold(*last, |acc, h| node_hash(h, &acc))
}

/// Largest power of two strictly below `n` (`n ≥ 2`).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The complete subtrees covering `[begin, end)`, left to right, largest first. Only called on
/// ranges that occur in RFC 9162 proofs (`begin` is a multiple of the smallest power of two
/// ≥ `end − begin`), where folding them yields MTH of the range.
fn range_nodes(begin: u64, end: u64) -> Vec<NodeId> {
    let mut nodes = Vec::new();
    let mut pos = begin;
    let mut remaining = end.saturating_sub(begin);
    while remaining > 0 {
        let level = 63 - remaining.leading_zeros();
        let width = 1u64 << level;
        nodes.push(NodeId::new(level as u8, pos >> level));
        pos += width;
        remaining -= width;
    }
    nodes
}

/// The nodes whose hashes form the inclusion proof of leaf `index` in the tree of `size`
/// leaves: one `Vec<NodeId>` per proof hash, in proof order (from the leaf's sibling up). Each
/// element's hash is [`fold_range`] of its nodes' hashes.
pub fn inclusion_proof_nodes(index: u64, size: u64) -> Result<Vec<Vec<NodeId>>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // Walk down RFC 9162 §2.1.3.1 PATH; [lo, hi) is the current subtree.
    let (mut lo, mut hi) = (0u64, size);
    let mut elements = Vec::new();
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index - lo < k {
            elements.push(range_nodes(lo + k, hi));
            hi = lo + k;
        } else {
            elements.push(range_nodes(lo, lo + k));
            lo += k;
        }
    }
    elements.reverse();
    Ok(elements)
}

fn check_consistency_sizes(from: u64, to: u64) -> Result<(), ProofError> {
    if from > to {
        return Err(ProofError::SizesOutOfOrder { from, to });
    }
    if from == 0 && to > 0 {
        return Err(ProofError::FromEmptyTree);
    }
    Ok(())
}

/// The nodes whose hashes form the consistency proof from tree size `from` to tree size `to`
/// (RFC 9162 §2.1.4.1), in proof order. Empty when `from` equals `to`; an error from size 0
/// to a larger size (see [`verify_consistency`]).
pub fn consistency_proof_nodes(from: u64, to: u64) -> Result<Vec<Vec<NodeId>>, ProofError> {
    check_consistency_sizes(from, to)?;
    if from == to {
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[lo:hi], b); `m` counts leaves of the old tree inside [lo, hi).
    let (mut lo, mut hi, mut m, mut whole_old_tree) = (0u64, to, from, true);
    let mut elements = Vec::new();
    loop {
        let n = hi - lo;
        if m == n {
            if !whole_old_tree {
                elements.push(range_nodes(lo, hi));
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            elements.push(range_nodes(lo + k, hi));
            hi = lo + k;
        } else {
            elements.push(range_nodes(lo, lo + k));
            lo += k;
            m -= k;
            whole_old_tree = false;
        }
    }
    elements.reverse();
    Ok(elements)
}

/// The Merkle tree hash (RFC 9162 §2.1.1) of `leaves`.
pub fn root(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// Inclusion proof of leaf `index` in the tree formed by the first `size` of `leaves`,
/// computed straight from the RFC 9162 definition (independent of the node-list functions).
pub fn inclusion_proof(leaves: &[Hash], index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let tree = prefix(leaves, size)?;
    fn path(m: usize, d: &[Hash], out: &mut Vec<Hash>) {
        if d.len() <= 1 {
            return;
        }
        let k = split_point(d.len() as u64) as usize;
        if m < k {
            path(m, &d[..k], out);
            out.push(root(&d[k..]));
        } else {
            path(m - k, &d[k..], out);
            out.push(root(&d[..k]));
        }
    }
    let mut out = Vec::new();
    path(index as usize, tree, &mut out);
    Ok(out)
}

/// Consistency proof from the tree of the first `from` leaves to the tree of the first `to`
/// leaves, straight from the RFC 9162 definition.
pub fn consistency_proof(leaves: &[Hash], from: u64, to: u64) -> Result<Vec<Hash>, ProofError> {
    check_consistency_sizes(from, to)?;
    let tree = prefix(leaves, to)?;
    if from == to {
        return Ok(Vec::new());
    }
    fn subproof(m: usize, d: &[Hash], b: bool, out: &mut Vec<Hash>) {
        let n = d.len();
        if m == n {
            if !b {
                out.push(root(d));
            }
            return;
        }
        let k = split_point(n as u64) as usize;
        if m <= k {
            subproof(m, &d[..k], b, out);
            out.push(root(&d[k..]));
        } else {
            subproof(m - k, &d[k..], false, out);
            out.push(root(&d[..k]));
        }
    }
    let mut out = Vec::new();
    subproof(from as usize, tree, true, &mut out);
    Ok(out)
}

fn prefix(leaves: &[Hash], size: u64) -> Result<&[Hash], ProofError> {
    usize::try_from(size)
        .ok()
        .and_then(|s| leaves.get(..s))
        .ok_or(ProofError::NotEnoughLeaves {
            needed: size,
            available: leaves.len() as u64,
        })
}

/// RFC 9162 §2.1.3.2: does `proof` show that `leaf` is leaf `index` of the tree of `size`
/// leaves whose root is `root`?
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::ProofTooLong);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::ProofTooShort);
    }
    if r != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// RFC 9162 §2.1.4.2: does `proof` show that the tree of `from` leaves with root `from_root`
/// is a prefix of the tree of `to` leaves with root `to_root`?
///
/// Equal sizes need an empty proof and equal roots (the empty-tree root for size 0). A proof
/// from size 0 to a larger size is refused, as transparency-dev/merkle does: it would prove
/// nothing, so asking for one is a caller's mistake.
pub fn verify_consistency(
    from: u64,
    to: u64,
    from_root: &Hash,
    to_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if from > to {
        return Err(ProofError::SizesOutOfOrder { from, to });
    }
    if from == 0 && to > 0 {
        return Err(ProofError::FromEmptyTree);
    }
    if from == to {
        if !proof.is_empty() {
            return Err(ProofError::ProofNotEmpty);
        }
        if from_root != to_root {
            return Err(ProofError::RootMismatch);
        }
        if from == 0 && *from_root != empty_root() {
            return Err(ProofError::OldRootMismatch);
        }
        return Ok(());
    }
    let (first, rest) = match proof.split_first() {
        Some(split) => split,
        None => return Err(ProofError::ProofTooShort),
    };
    // When `from` is a power of two the old root is itself the first node of the path.
    let (start, path) = if from.is_power_of_two() {
        (from_root, proof)
    } else {
        (first, rest)
    };
    let (mut fnode, mut snode) = (from - 1, to - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*start, *start);
    for c in path {
        if snode == 0 {
            return Err(ProofError::ProofTooLong);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::ProofTooShort);
    }
    if fr != *from_root {
        return Err(ProofError::OldRootMismatch);
    }
    if sr != *to_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// The frontier of a tree: the hashes of the complete subtrees covering `[0, size)`, one per
/// set bit of `size`, largest (leftmost) first. Enough to append leaves and compute the root
/// without holding the leaves.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CompactRange {
    size: u64,
    hashes: Vec<Hash>,
}

impl CompactRange {
    /// The empty tree.
    pub fn new() -> CompactRange {
        CompactRange::default()
    }

    /// Which nodes make up the frontier of a tree of `size` leaves, in the order
    /// [`CompactRange::from_parts`] expects their hashes.
    pub fn frontier_ids(size: u64) -> Vec<NodeId> {
        range_nodes(0, size)
    }

    /// Rebuilds the frontier from its node hashes (as listed by [`CompactRange::frontier_ids`]).
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Result<CompactRange, ProofError> {
        let expected = size.count_ones() as usize;
        if hashes.len() != expected {
            return Err(ProofError::FrontierLength {
                size,
                expected,
                found: hashes.len(),
            });
        }
        Ok(CompactRange { size, hashes })
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The frontier's node hashes, in [`CompactRange::frontier_ids`] order.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// The frontier as (node, hash) pairs.
    pub fn frontier(&self) -> Vec<(NodeId, Hash)> {
        CompactRange::frontier_ids(self.size)
            .into_iter()
            .zip(self.hashes.iter().copied())
            .collect()
    }

    /// Appends leaf `size` and returns every node that it completes, the leaf itself first and
    /// then upwards: exactly the rows to store.
    pub fn append(&mut self, leaf: Hash) -> Result<Vec<(NodeId, Hash)>, ProofError> {
        let index = self.size;
        let new_size = index.checked_add(1).ok_or(ProofError::TreeFull)?;
        let mut completed = vec![(NodeId::leaf(index), leaf)];
        let mut hash = leaf;
        let mut level: u8 = 0;
        // Each set low bit of the old size is a left sibling waiting for this leaf.
        while (index >> level) & 1 == 1 {
            let Some(left) = self.hashes.pop() else {
                return Err(ProofError::FrontierLength {
                    size: self.size,
                    expected: self.size.count_ones() as usize,
                    found: self.hashes.len(),
                });
            };
            hash = node_hash(&left, &hash);
            level += 1;
            completed.push((NodeId::new(level, index >> level), hash));
        }
        self.hashes.push(hash);
        self.size = new_size;
        Ok(completed)
    }

    /// The Merkle tree hash of the leaves appended so far.
    pub fn root(&self) -> Hash {
        fold_range(&self.hashes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n)
            .map(|i| leaf_hash(&Hash::of(&(i as u64).to_be_bytes())))
            .collect()
    }

    #[test]
    fn empty_tree() {
        assert_eq!(
            empty_root().to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(CompactRange::new().root(), empty_root());
        assert_eq!(root(&[]), empty_root());
    }

    #[test]
    fn node_ranges() {
        assert_eq!(NodeId::new(3, 2).leaf_range(), Some((16, 24)));
        assert_eq!(NodeId::new(64, 0).leaf_range(), None);
        assert_eq!(NodeId::new(1, u64::MAX).leaf_range(), None);
        assert_eq!(
            CompactRange::frontier_ids(13),
            vec![NodeId::new(3, 0), NodeId::new(2, 2), NodeId::new(0, 12)]
        );
    }

    #[test]
    fn compact_range_tracks_the_root_and_emits_every_node() {
        let l = leaves(300);
        let mut cr = CompactRange::new();
        let mut stored = std::collections::HashMap::new();
        for (i, leaf) in l.iter().enumerate() {
            for (id, h) in cr.append(*leaf).unwrap() {
                let (b, e) = id.leaf_range().unwrap();
                assert_eq!(h, root(&l[b as usize..e as usize]), "node {id:?}");
                assert!(stored.insert(id, h).is_none(), "node {id:?} emitted twice");
            }
            assert_eq!(cr.size(), i as u64 + 1);
            assert_eq!(cr.root(), root(&l[..=i]));
            // The frontier can be reloaded from stored nodes.
            let ids = CompactRange::frontier_ids(cr.size());
            let hashes = ids.iter().map(|id| stored[id]).collect();
            assert_eq!(CompactRange::from_parts(cr.size(), hashes).unwrap(), cr);
        }
    }

    #[test]
    fn from_parts_checks_the_length_and_append_never_overflows() {
        assert!(CompactRange::from_parts(5, vec![Hash::default()]).is_err());
        let full = CompactRange::from_parts(u64::MAX, vec![Hash::default(); 64]).unwrap();
        assert_eq!(
            full.clone().append(Hash::default()),
            Err(ProofError::TreeFull)
        );
    }

    #[test]
    fn proof_node_lists_never_touch_incomplete_subtrees() {
        for size in 1..=70u64 {
            for index in 0..size {
                for element in inclusion_proof_nodes(index, size).unwrap() {
                    for id in element {
                        assert!(id.leaf_range().unwrap().1 <= size);
                    }
                }
            }
            for from in 1..=size {
                for element in consistency_proof_nodes(from, size).unwrap() {
                    for id in element {
                        assert!(id.leaf_range().unwrap().1 <= size);
                    }
                }
            }
        }
    }

    #[test]
    fn rejects_impossible_requests() {
        assert!(inclusion_proof_nodes(5, 5).is_err());
        assert!(inclusion_proof_nodes(0, 0).is_err());
        assert!(consistency_proof_nodes(6, 5).is_err());
        assert!(consistency_proof_nodes(0, 5).is_err());
        assert_eq!(consistency_proof_nodes(0, 0), Ok(vec![]));
        assert!(inclusion_proof(&leaves(3), 1, 4).is_err());
        assert!(consistency_proof(&leaves(3), 1, 4).is_err());
        let r = root(&leaves(4));
        assert!(verify_inclusion(&Hash::default(), u64::MAX, u64::MAX, &[], &r).is_err());
        assert!(verify_consistency(u64::MAX, 1, &r, &r, &[]).is_err());
    }
}
