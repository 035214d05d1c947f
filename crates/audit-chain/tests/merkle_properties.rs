//! Round trips of every proof over many tree shapes, and agreement between the in-memory
//! proofs (straight from the RFC's recursive definitions) and the node-list proofs the database
//! serves.

use std::collections::HashMap;

use writ_audit_chain::merkle::{self, CompactRange, NodeId};
use writ_audit_chain::{Hash, ProofError, fold_range, leaf_hash};

fn leaves(n: u64) -> Vec<Hash> {
    (0..n)
        .map(|i| leaf_hash(&Hash::of(&i.to_be_bytes())))
        .collect()
}

/// Every node the database would hold for `leaves`, as CompactRange::append emits them.
fn node_store(leaves: &[Hash]) -> HashMap<NodeId, Hash> {
    let mut tree = CompactRange::new();
    let mut store = HashMap::new();
    for leaf in leaves {
        store.extend(tree.append(*leaf).expect("append"));
    }
    store
}

fn from_nodes(elements: &[Vec<NodeId>], store: &HashMap<NodeId, Hash>) -> Vec<Hash> {
    elements
        .iter()
        .map(|element| {
            let hashes: Vec<Hash> = element.iter().map(|id| store[id]).collect();
            fold_range(&hashes)
        })
        .collect()
}

fn check_size(all: &[Hash], store: &HashMap<NodeId, Hash>, size: u64, every_index: bool) {
    let root = merkle::root(&all[..size as usize]);
    let indices: Vec<u64> = if every_index {
        (0..size).collect()
    } else {
        vec![0, size / 3, size / 2, size - 1]
    };
    for index in indices {
        let proof = merkle::inclusion_proof(all, index, size).expect("inclusion proof");
        let nodes = merkle::inclusion_proof_nodes(index, size).expect("inclusion nodes");
        assert_eq!(
            from_nodes(&nodes, store),
            proof,
            "inclusion {index} in {size}"
        );
        merkle::verify_inclusion(&all[index as usize], index, size, &proof, &root)
            .unwrap_or_else(|e| panic!("inclusion {index} in {size}: {e}"));
        // Any other leaf or a damaged proof must fail.
        let other = all[((index + 1) % size) as usize];
        if size > 1 {
            assert!(merkle::verify_inclusion(&other, index, size, &proof, &root).is_err());
        }
        if let Some(first) = proof.first() {
            let mut bad = proof.clone();
            bad[0] = Hash::of(first.as_bytes());
            assert!(
                merkle::verify_inclusion(&all[index as usize], index, size, &bad, &root).is_err()
            );
            assert!(
                merkle::verify_inclusion(&all[index as usize], index, size, &proof[1..], &root)
                    .is_err()
            );
        }
        let mut longer = proof.clone();
        longer.push(root);
        assert!(
            merkle::verify_inclusion(&all[index as usize], index, size, &longer, &root).is_err()
        );
    }
}

fn check_consistency(all: &[Hash], store: &HashMap<NodeId, Hash>, from: u64, to: u64) {
    let (root_from, root_to) = (
        merkle::root(&all[..from as usize]),
        merkle::root(&all[..to as usize]),
    );
    let proof = merkle::consistency_proof(all, from, to).expect("consistency proof");
    let nodes = merkle::consistency_proof_nodes(from, to).expect("consistency nodes");
    assert_eq!(
        from_nodes(&nodes, store),
        proof,
        "consistency {from} -> {to}"
    );
    merkle::verify_consistency(from, to, &root_from, &root_to, &proof)
        .unwrap_or_else(|e| panic!("consistency {from} -> {to}: {e}"));
    if from < to {
        let wrong_old = Hash::of(root_from.as_bytes());
        assert!(merkle::verify_consistency(from, to, &wrong_old, &root_to, &proof).is_err());
        let wrong_new = Hash::of(root_to.as_bytes());
        assert!(merkle::verify_consistency(from, to, &root_from, &wrong_new, &proof).is_err());
        assert!(merkle::verify_consistency(from, to, &root_from, &root_to, &proof[1..]).is_err());
        if from > 1 {
            let wrong_size = merkle::verify_consistency(from - 1, to, &root_from, &root_to, &proof);
            assert!(wrong_size.is_err());
        }
    }
}

#[test]
fn every_proof_in_every_tree_up_to_70_leaves() {
    let all = leaves(70);
    let store = node_store(&all);
    for size in 1..=70 {
        check_size(&all, &store, size, true);
        for from in 1..=size {
            check_consistency(&all, &store, from, size);
        }
    }
}

#[test]
fn sizes_around_powers_of_two_up_to_1100() {
    let all = leaves(1100);
    let store = node_store(&all);
    let mut sizes: Vec<u64> = Vec::new();
    for p in 0..=10 {
        let power = 1u64 << p;
        sizes.extend([power - 1, power, power + 1]);
    }
    sizes.extend([1000, 1023, 1024, 1025, 1099, 1100]);
    sizes.retain(|s| (1..=1100).contains(s));
    sizes.sort_unstable();
    sizes.dedup();
    for &size in &sizes {
        check_size(&all, &store, size, size <= 130 || size.is_power_of_two());
        for &from in &sizes {
            if from <= size {
                check_consistency(&all, &store, from, size);
            }
        }
        for from in [1, size / 2, size - 1].into_iter().filter(|f| *f >= 1) {
            check_consistency(&all, &store, from, size);
        }
    }
}

#[test]
fn proof_lengths_are_logarithmic() {
    for size in [1u64, 2, 3, 1000, 1 << 20, (1 << 40) + 12345, u64::MAX] {
        for index in [0, size / 2, size - 1] {
            let nodes = merkle::inclusion_proof_nodes(index, size).expect("nodes");
            assert!(nodes.len() <= 64);
            // An element is a handful of subtrees, never a scan.
            assert!(nodes.iter().all(|e| !e.is_empty() && e.len() <= 64));
        }
        if size > 1 {
            let nodes = merkle::consistency_proof_nodes(size / 2 + 1, size).expect("nodes");
            assert!(nodes.len() <= 128);
        }
    }
}

#[test]
fn impossible_sizes_are_errors_not_panics() {
    assert!(matches!(
        merkle::inclusion_proof_nodes(3, 3),
        Err(ProofError::IndexOutOfRange { .. })
    ));
    assert!(matches!(
        merkle::consistency_proof_nodes(4, 3),
        Err(ProofError::SizesOutOfOrder { .. })
    ));
    assert!(matches!(
        merkle::inclusion_proof(&leaves(2), 0, 3),
        Err(ProofError::NotEnoughLeaves { .. })
    ));
    let root = merkle::root(&leaves(3));
    for size in [0u64, 1, u64::MAX] {
        for index in [0u64, 1, u64::MAX] {
            let _ = merkle::verify_inclusion(&root, index, size, &[root; 70], &root);
            let _ = merkle::verify_consistency(index, size, &root, &root, &[root; 70]);
        }
    }
}
