//! The JSON form of proofs, as served by `GET /v1/audit/proofs/inclusion?seq=&treeSize=` and
//! `GET /v1/audit/proofs/consistency?from=&to=` and read by `writ-verify`.
//!
//! ```json
//! {"seq":3,"treeSize":5,"leafHash":"<base64>","proof":["<base64>",…],"rootHash":"<base64>"}
//! {"fromSize":3,"toSize":5,"fromRoot":"<base64>","toRoot":"<base64>","proof":["<base64>",…]}
//! ```
//!
//! Hashes are standard base64 like in checkpoints, so `rootHash` can be compared with a
//! checkpoint's third line as text.

use serde::{Deserialize, Serialize};

use crate::error::ProofError;
use crate::hash::{Hash, base64_hash, base64_hashes};
use crate::merkle;

/// Proof that the entry with `seq` is leaf `seq − 1` of the tree of `treeSize` leaves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InclusionProof {
    pub seq: u64,
    pub tree_size: u64,
    /// `SHA-256(0x00 ‖ entry hash)`.
    #[serde(with = "base64_hash")]
    pub leaf_hash: Hash,
    /// From the leaf's sibling up to the root's child.
    #[serde(with = "base64_hashes")]
    pub proof: Vec<Hash>,
    #[serde(with = "base64_hash")]
    pub root_hash: Hash,
}

impl InclusionProof {
    /// Builds the proof for `entry_hash` (the entry's `hash`) at `seq` from the node hashes the
    /// database fetched for [`merkle::inclusion_proof_nodes`]`(seq − 1, tree_size)`, one
    /// `Vec<Hash>` per proof element, in the same order.
    pub fn from_node_hashes(
        seq: u64,
        tree_size: u64,
        entry_hash: &Hash,
        element_hashes: &[Vec<Hash>],
        root_hash: Hash,
    ) -> InclusionProof {
        InclusionProof {
            seq,
            tree_size,
            leaf_hash: merkle::leaf_hash(entry_hash),
            proof: element_hashes
                .iter()
                .map(|e| merkle::fold_range(e))
                .collect(),
            root_hash,
        }
    }

    /// Leaf index, `seq − 1`.
    pub fn leaf_index(&self) -> Result<u64, ProofError> {
        self.seq.checked_sub(1).ok_or(ProofError::ZeroSeq)
    }

    /// Checks the proof leads from `leafHash` to `rootHash`.
    pub fn verify(&self) -> Result<(), ProofError> {
        merkle::verify_inclusion(
            &self.leaf_hash,
            self.leaf_index()?,
            self.tree_size,
            &self.proof,
            &self.root_hash,
        )
    }

    /// Checks the proof is about the entry whose `hash` is `entry_hash`, then verifies it.
    pub fn verify_entry_hash(&self, entry_hash: &Hash) -> Result<(), ProofError> {
        if merkle::leaf_hash(entry_hash) != self.leaf_hash {
            return Err(ProofError::LeafMismatch);
        }
        self.verify()
    }

    pub fn from_json(bytes: &[u8]) -> Result<InclusionProof, ProofError> {
        serde_json::from_slice(bytes).map_err(|e| ProofError::Malformed(e.to_string()))
    }

    pub fn to_json(&self) -> String {
        json_string(self)
    }
}

/// Proof that the tree of `fromSize` leaves (root `fromRoot`) is a prefix of the tree of
/// `toSize` leaves (root `toRoot`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsistencyProof {
    pub from_size: u64,
    pub to_size: u64,
    #[serde(with = "base64_hash")]
    pub from_root: Hash,
    #[serde(with = "base64_hash")]
    pub to_root: Hash,
    #[serde(with = "base64_hashes")]
    pub proof: Vec<Hash>,
}

impl ConsistencyProof {
    /// Builds the proof from the node hashes fetched for
    /// [`merkle::consistency_proof_nodes`]`(from_size, to_size)`.
    pub fn from_node_hashes(
        from_size: u64,
        to_size: u64,
        from_root: Hash,
        to_root: Hash,
        element_hashes: &[Vec<Hash>],
    ) -> ConsistencyProof {
        ConsistencyProof {
            from_size,
            to_size,
            from_root,
            to_root,
            proof: element_hashes
                .iter()
                .map(|e| merkle::fold_range(e))
                .collect(),
        }
    }

    pub fn verify(&self) -> Result<(), ProofError> {
        merkle::verify_consistency(
            self.from_size,
            self.to_size,
            &self.from_root,
            &self.to_root,
            &self.proof,
        )
    }

    pub fn from_json(bytes: &[u8]) -> Result<ConsistencyProof, ProofError> {
        serde_json::from_slice(bytes).map_err(|e| ProofError::Malformed(e.to_string()))
    }

    pub fn to_json(&self) -> String {
        json_string(self)
    }
}

fn json_string<T: Serialize>(value: &T) -> String {
    // These types hold only integers and strings; serializing them cannot fail.
    serde_json::to_string_pretty(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape() {
        let proof = InclusionProof {
            seq: 1,
            tree_size: 1,
            leaf_hash: Hash([1; 32]),
            proof: vec![],
            root_hash: Hash([1; 32]),
        };
        let v: serde_json::Value = serde_json::from_str(&proof.to_json()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "seq": 1, "treeSize": 1,
                "leafHash": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
                "proof": [],
                "rootHash": "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="
            })
        );
        assert_eq!(
            InclusionProof::from_json(proof.to_json().as_bytes()).unwrap(),
            proof
        );
        assert!(proof.verify().is_ok());
        assert!(InclusionProof::from_json(b"{\"seq\":1}").is_err());
        assert!(InclusionProof::from_json(b"\xff").is_err());
        let zero = InclusionProof { seq: 0, ..proof };
        assert_eq!(zero.verify(), Err(ProofError::ZeroSeq));
    }
}
