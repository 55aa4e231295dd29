//! Names in the simulated cluster: its Kubernetes nodes (the satellites of the generated LINSTOR
//! database) and Kubernetes-style generated name suffixes.

use sha2::{Digest, Sha256};

/// The Kubernetes nodes the Piraeus installation's satellites run on.
pub(crate) const CR_NODES: [&str; 4] = linstor_fake::dataset::PIRAEUS_NODES;

/// Ten-plus characters of Kubernetes' name alphabet derived from `s` (pod-template-hash style).
pub(crate) fn short_hash(s: &str) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char)
        .collect()
}
