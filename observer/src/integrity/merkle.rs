//! RFC 6962 Merkle trees over a chain's event hashes: the leaf data of leaf `i` is the 32-byte hash of the event with
//! `seq` `i + 1`.

use sha2::{Digest as _, Sha256};

use super::Digest;

/// RFC 6962 leaf hash: SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Digest {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    Digest(h.finalize().into())
}

/// RFC 6962 interior node hash: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left.0);
    h.update(right.0);
    Digest(h.finalize().into())
}

/// The RFC 6962 root (MTH) of the tree whose leaves are `event_hashes` (each leaf's data is the 32-byte hash). The
/// root of the empty tree is SHA-256 of the empty string.
pub fn merkle_root(event_hashes: &[Digest]) -> Digest {
    let mut tree = MerkleTree::new();
    for h in event_hashes {
        tree.push(h);
    }
    tree.root()
}

/// An append-only Merkle tree that keeps only its right edge (one node per set bit of the size: the roots of the
/// perfect subtrees the size decomposes into), so that pushing a leaf costs amortised O(1) hashes and the root
/// O(log n).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerkleTree {
    size: u64,
    /// Roots of perfect subtrees, largest (leftmost) first.
    edge: Vec<Digest>,
}

impl MerkleTree {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends the leaf whose data is `event_hash`.
    pub fn push(&mut self, event_hash: &Digest) {
        let mut node = leaf_hash(&event_hash.0);
        let mut size = self.size;
        while size & 1 == 1 {
            let left = self.edge.pop().expect("one edge node per set bit");
            node = node_hash(&left, &node);
            size >>= 1;
        }
        self.edge.push(node);
        self.size += 1;
    }

    /// The RFC 6962 root of the leaves pushed so far.
    pub fn root(&self) -> Digest {
        let mut iter = self.edge.iter().rev();
        let Some(last) = iter.next() else {
            return Digest::sha256(b"");
        };
        iter.fold(*last, |right, left| node_hash(left, &right))
    }

    /// The right edge (perfect subtree roots, largest first): with [`MerkleTree::from_edge`] a tree can be resumed
    /// without its leaves (e.g. from a state directory).
    pub fn edge(&self) -> &[Digest] {
        &self.edge
    }

    /// Rebuilds a tree of `size` leaves from its right edge. `None` if `edge` has not one node per set bit of `size`.
    pub fn from_edge(size: u64, edge: Vec<Digest>) -> Option<Self> {
        (edge.len() == size.count_ones() as usize).then_some(Self { size, edge })
    }
}

/// The RFC 6962 audit path (inclusion proof) of leaf `index` in the tree of `event_hashes`; `None` if `index` is
/// out of range.
pub fn inclusion_proof(event_hashes: &[Digest], index: u64) -> Option<Vec<Digest>> {
    let index = usize::try_from(index).ok()?;
    if index >= event_hashes.len() {
        return None;
    }
    let mut proof = Vec::new();
    path(index, event_hashes, &mut proof);
    Some(proof)
}

fn path(m: usize, leaves: &[Digest], out: &mut Vec<Digest>) {
    let n = leaves.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, &leaves[..k], out);
        out.push(merkle_root(&leaves[k..]));
    } else {
        path(m - k, &leaves[k..], out);
        out.push(merkle_root(&leaves[..k]));
    }
}

/// The largest power of two smaller than `n` (n ≥ 2).
fn split(n: usize) -> usize {
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// Verifies an inclusion proof (RFC 9162 section 2.1.3.2): the leaf with data `event_hash` at `index` in a tree of
/// `size` leaves whose root is `root`.
pub fn verify_inclusion(event_hash: &Digest, index: u64, size: u64, proof: &[Digest], root: &Digest) -> bool {
    if index >= size {
        return false;
    }
    let (mut fnum, mut snum) = (index, size - 1);
    let mut r = leaf_hash(&event_hash.0);
    for p in proof {
        if snum == 0 {
            return false;
        }
        if fnum & 1 == 1 || fnum == snum {
            r = node_hash(p, &r);
            if fnum & 1 == 0 {
                while fnum & 1 == 0 && fnum != 0 {
                    fnum >>= 1;
                    snum >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnum >>= 1;
        snum >>= 1;
    }
    snum == 0 && r == *root
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The leaves of the RFC 6962 / certificate-transparency reference test tree (leaf data, not hashes).
    const LEAVES: [&str; 8] =
        ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];
    /// Roots of the trees of the first 1..=8 of those leaves (certificate-transparency `merkle_tree_test`).
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

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    /// Merkle tree hashing over arbitrary leaf data (the reference vectors use leaf data of any length).
    fn root_of(data: &[Vec<u8>]) -> Digest {
        match data.len() {
            0 => Digest::sha256(b""),
            1 => leaf_hash(&data[0]),
            n => {
                let k = split(n);
                node_hash(&root_of(&data[..k]), &root_of(&data[k..]))
            }
        }
    }

    #[test]
    fn rfc6962_reference_roots() {
        let data: Vec<Vec<u8>> = LEAVES.iter().map(|l| hex(l)).collect();
        for (n, expected) in ROOTS.iter().enumerate() {
            assert_eq!(root_of(&data[..=n]).to_hex(), *expected, "tree of {} leaves", n + 1);
        }
        assert_eq!(Digest::sha256(b"").to_hex(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    fn hashes(n: usize) -> Vec<Digest> {
        (0..n).map(|i| Digest::sha256(&(i as u64).to_be_bytes())).collect()
    }

    #[test]
    fn incremental_tree_matches_recursive_definition() {
        let hs = hashes(70);
        let mut tree = MerkleTree::new();
        assert_eq!(tree.root(), Digest::sha256(b""));
        for n in 1..=hs.len() {
            tree.push(&hs[n - 1]);
            let data: Vec<Vec<u8>> = hs[..n].iter().map(|h| h.0.to_vec()).collect();
            assert_eq!(tree.root(), root_of(&data), "size {n}");
            assert_eq!(tree.size(), n as u64);
            let resumed = MerkleTree::from_edge(tree.size(), tree.edge().to_vec()).unwrap();
            assert_eq!(resumed.root(), tree.root());
        }
        assert!(MerkleTree::from_edge(3, vec![Digest::GENESIS]).is_none());
    }

    #[test]
    fn inclusion_proofs_verify_and_reject() {
        let hs = hashes(37);
        for n in 1..=hs.len() {
            let root = merkle_root(&hs[..n]);
            for i in 0..n {
                let proof = inclusion_proof(&hs[..n], i as u64).unwrap();
                assert!(verify_inclusion(&hs[i], i as u64, n as u64, &proof, &root), "n={n} i={i}");
                // Wrong leaf, wrong index, truncated or extended proof: rejected.
                assert!(!verify_inclusion(&hs[(i + 1) % n], i as u64, n as u64, &proof, &root) || n == 1);
                if n > 1 {
                    assert!(!verify_inclusion(&hs[i], ((i + 1) % n) as u64, n as u64, &proof, &root));
                }
                // (The same path may also fit a larger size with the same root: the checkpoint's signature binds the
                // size to the root, so a proof is only ever checked against a signed (size, root) pair.)
                if !proof.is_empty() {
                    assert!(!verify_inclusion(&hs[i], i as u64, n as u64, &proof[1..], &root));
                }
                let mut longer = proof.clone();
                longer.push(Digest::GENESIS);
                assert!(!verify_inclusion(&hs[i], i as u64, n as u64, &longer, &root));
            }
        }
        assert!(inclusion_proof(&hs, 37).is_none());
    }

    /// RFC 6962 reference audit path: leaf 0 of the 8-leaf reference tree (certificate-transparency test vector).
    #[test]
    fn rfc6962_reference_path() {
        let data: Vec<Vec<u8>> = LEAVES.iter().map(|l| hex(l)).collect();
        // path(0, 8) = [leaf 1, MTH(2..4), MTH(4..8)]
        let expected = [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ];
        assert_eq!(leaf_hash(&data[1]).to_hex(), expected[0]);
        assert_eq!(root_of(&data[2..4]).to_hex(), expected[1]);
        assert_eq!(root_of(&data[4..8]).to_hex(), expected[2]);
    }
}
