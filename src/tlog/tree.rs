//! RFC 6962 Merkle trees over stored hashes.
//!
//! A tree of `n` leaves is kept as the hashes of its complete subtrees, each written once when
//! it completes and never changed: Go's tlog layout, where leaf `n`'s hashes go at
//! [`stored_hash_index`]`(0, n)` onwards. Appending a leaf writes about two hashes on average
//! and reads at most `log₂ n`; a root, an inclusion proof or a consistency proof reads
//! `O(log n)` of them. Where the hashes live (memory here, PostgreSQL for the server, tiles for
//! an auditor) is a [`HashReader`].

pub use tlog_tiles::tlog::{
    EMPTY_HASH, Error, HASH_SIZE, Hash, HashReader, node_hash, record_hash as leaf_hash,
    stored_hash_count, stored_hash_index,
};

/// The hashes to store when leaf `n` (0-based) with bytes `leaf` is appended to a tree of `n`
/// leaves whose stored hashes `stored` reads; they go at `stored_hash_index(0, n)` onwards.
pub fn hashes_to_store<R: HashReader>(n: u64, leaf: &[u8], stored: &R) -> Result<Vec<Hash>, Error> {
    tlog_tiles::tlog::stored_hashes(n, leaf, stored)
}

/// The root of the tree of the first `size` leaves.
pub fn root<R: HashReader>(size: u64, stored: &R) -> Result<Hash, Error> {
    tlog_tiles::tlog::tree_hash(size, stored)
}

/// The RFC 9162 §2.1.3 inclusion proof of leaf `index` in the tree of `size` leaves.
pub fn inclusion_proof<R: HashReader>(
    index: u64,
    size: u64,
    stored: &R,
) -> Result<Vec<Hash>, Error> {
    if index >= size {
        return Err(Error::InvalidInput(format!(
            "leaf {index} is not in a tree of {size}"
        )));
    }
    tlog_tiles::tlog::prove_record(size, index, stored)
}

/// Checks that `proof` shows the leaf hashed `leaf` at `index` in the tree of `size` leaves
/// with root `root`.
pub fn check_inclusion(
    proof: &[Hash],
    size: u64,
    root: Hash,
    index: u64,
    leaf: Hash,
) -> Result<(), Error> {
    tlog_tiles::tlog::check_record(&proof.to_vec(), size, root, index, leaf)
}

/// The RFC 9162 §2.1.4 consistency proof from the tree of `old` leaves to the tree of `new`.
pub fn consistency_proof<R: HashReader>(
    old: u64,
    new: u64,
    stored: &R,
) -> Result<Vec<Hash>, Error> {
    if old == 0 || old > new {
        return Err(Error::InvalidInput(format!(
            "no consistency proof from {old} to {new} leaves"
        )));
    }
    tlog_tiles::tlog::prove_tree(new, old, stored)
}

/// Checks that `proof` shows the tree of `old` leaves with root `old_root` is a prefix of the
/// tree of `new` leaves with root `new_root`.
pub fn check_consistency(
    proof: &[Hash],
    new: u64,
    new_root: Hash,
    old: u64,
    old_root: Hash,
) -> Result<(), Error> {
    tlog_tiles::tlog::check_tree(&proof.to_vec(), new, new_root, old, old_root)
}

/// A tree held in memory: for tests, and for an auditor recomputing a log it fetched.
#[derive(Debug, Clone, Default)]
pub struct MemoryTree {
    stored: Vec<Hash>,
    size: u64,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a leaf; returns its index.
    pub fn append(&mut self, leaf: &[u8]) -> u64 {
        let index = self.size;
        let hashes = hashes_to_store(index, leaf, self).expect("a memory tree reads every hash");
        debug_assert_eq!(self.stored.len() as u64, stored_hash_index(0, index));
        self.stored.extend(hashes);
        self.size += 1;
        index
    }

    /// How many leaves it holds.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root of its first `size` leaves.
    pub fn root_at(&self, size: u64) -> Hash {
        root(size, self).expect("a memory tree reads every hash")
    }
}

impl HashReader for MemoryTree {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, Error> {
        indexes
            .iter()
            .map(|&i| {
                self.stored
                    .get(i as usize)
                    .copied()
                    .ok_or(Error::IndexesNotInTree)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ct_merkle::CtMerkleTree;
    use proptest::prelude::*;
    use sha2::Sha256;

    /// The eight leaves of RFC 6962's test vectors (and of transparency-dev/merkle's).
    const LEAVES: [&str; 8] = [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ];

    /// The roots of the trees of the first 1..=8 of them.
    const ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    #[test]
    fn the_rfc_6962_roots_of_the_eight_standard_leaves() {
        let mut tree = MemoryTree::new();
        assert_eq!(
            hex::encode(tree.root_at(0).0),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        for (i, leaf) in LEAVES.iter().enumerate() {
            tree.append(&hex::decode(leaf).unwrap());
            assert_eq!(
                hex::encode(tree.root_at(i as u64 + 1).0),
                ROOTS[i],
                "size {}",
                i + 1
            );
        }
        // Earlier roots stay computable from the same stored hashes.
        for (i, expected) in ROOTS.iter().enumerate() {
            assert_eq!(hex::encode(tree.root_at(i as u64 + 1).0), *expected);
        }
    }

    /// The same leaves in this tree and in ct-merkle's, an independent implementation.
    fn both(size: usize) -> (MemoryTree, CtMerkleTree<Sha256, Vec<u8>>, Vec<Vec<u8>>) {
        let mut ours = MemoryTree::new();
        let mut theirs = CtMerkleTree::<Sha256, Vec<u8>>::new();
        let leaves: Vec<Vec<u8>> = (0..size)
            .map(|i| format!("leaf {i}").into_bytes())
            .collect();
        for leaf in &leaves {
            ours.append(leaf);
            theirs.push(leaf.clone());
        }
        (ours, theirs, leaves)
    }

    fn flat(proof: &[Hash]) -> Vec<u8> {
        proof.iter().flat_map(|h| h.0).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn inclusion_proofs_agree_with_an_independent_implementation_and_fail_when_changed(
            size in 1usize..300,
            pick in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
        ) {
            let (ours, theirs, leaves) = both(size);
            let root = ours.root_at(size as u64);
            prop_assert_eq!(root.0.to_vec(), theirs.root().as_bytes().to_vec());
            let index = pick.index(size);
            let proof = inclusion_proof(index as u64, size as u64, &ours).unwrap();
            prop_assert_eq!(flat(&proof), theirs.prove_inclusion(index).as_bytes().to_vec());
            let leaf = leaf_hash(&leaves[index]);
            prop_assert!(check_inclusion(&proof, size as u64, root, index as u64, leaf).is_ok());
            prop_assert!(theirs
                .root()
                .verify_inclusion(&leaves[index], index, &theirs.prove_inclusion(index))
                .is_ok());
            // Any one bit changed, in the proof, the root or the leaf, and it fails.
            if !proof.is_empty() {
                let mut bad = proof.clone();
                let at = flip.index(bad.len() * HASH_SIZE * 8);
                bad[at / (HASH_SIZE * 8)].0[(at / 8) % HASH_SIZE] ^= 1 << (at % 8);
                prop_assert!(check_inclusion(&bad, size as u64, root, index as u64, leaf).is_err());
            }
            let mut bad_root = root;
            bad_root.0[flip.index(HASH_SIZE)] ^= 1;
            prop_assert!(check_inclusion(&proof, size as u64, bad_root, index as u64, leaf).is_err());
            let mut bad_leaf = leaf;
            bad_leaf.0[flip.index(HASH_SIZE)] ^= 0x80;
            prop_assert!(check_inclusion(&proof, size as u64, root, index as u64, bad_leaf).is_err());
        }

        #[test]
        fn consistency_proofs_agree_with_an_independent_implementation_and_fail_when_changed(
            new in 1usize..300,
            pick in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
        ) {
            let (ours, theirs, leaves) = both(new);
            let old = pick.index(new) + 1;
            let (old_root, new_root) = (ours.root_at(old as u64), ours.root_at(new as u64));
            let proof = consistency_proof(old as u64, new as u64, &ours).unwrap();
            let mut prefix = CtMerkleTree::<Sha256, Vec<u8>>::new();
            for leaf in &leaves[..old] {
                prefix.push(leaf.clone());
            }
            prop_assert_eq!(old_root.0.to_vec(), prefix.root().as_bytes().to_vec());
            let expected = theirs.prove_consistency(old);
            prop_assert_eq!(flat(&proof), expected.as_bytes().to_vec());
            prop_assert!(theirs.root().verify_consistency(&prefix.root(), &expected).is_ok());
            prop_assert!(check_consistency(&proof, new as u64, new_root, old as u64, old_root).is_ok());
            if !proof.is_empty() {
                let mut bad = proof.clone();
                let at = flip.index(bad.len() * HASH_SIZE * 8);
                bad[at / (HASH_SIZE * 8)].0[(at / 8) % HASH_SIZE] ^= 1 << (at % 8);
                prop_assert!(check_consistency(&bad, new as u64, new_root, old as u64, old_root).is_err());
            }
            let mut bad_old = old_root;
            bad_old.0[flip.index(HASH_SIZE)] ^= 1;
            prop_assert!(check_consistency(&proof, new as u64, new_root, old as u64, bad_old).is_err());
        }
    }

    #[test]
    fn proofs_outside_the_tree_are_refused() {
        let (ours, _, _) = both(5);
        assert!(inclusion_proof(5, 5, &ours).is_err());
        assert!(consistency_proof(0, 5, &ours).is_err());
        assert!(consistency_proof(6, 5, &ours).is_err());
    }
}
