//! What a summary keeps of each row, in 48 bytes: the SHA-256 of its primary-key text (which is
//! also its object's name in the `k8s` backend) and the first 16 bytes of the SHA-256 of its
//! contents, in one vector sorted by key. A 100k-row export summarizes into about 5 MB (a map of
//! key texts took three times that), and two summaries compare by one merge of the two vectors.
//! Key texts are not kept: a report names the rows that differ by reading the export again
//! ([`super::compare::name_examples`]).

use sha2::{Digest, Sha256};

/// The SHA-256 of a row's primary-key text; for a table without a primary key, the row's own
/// digest.
pub type RowKey = [u8; 32];

/// The first half of a row's digest ([`super::export::row_digest`]): 128 bits tell rows apart.
pub type RowDigest = [u8; 16];

/// One row: its key and its digest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RowEntry {
    pub key: RowKey,
    pub digest: RowDigest,
}

impl RowEntry {
    pub fn new(key: RowKey, digest: &[u8; 32]) -> Self {
        let mut d = [0; 16];
        d.copy_from_slice(&digest[..16]);
        RowEntry { key, digest: d }
    }
}

/// How a row differs between two indexes (`self` and `other` of [`RowIndex::diff`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Difference {
    /// Both have the key, with different digests.
    Changed,
    /// Only `self` has it.
    Missing,
    /// Only `other` has it.
    Extra,
}

/// The rows of one table, sorted by key (then digest). Rows of a table without a primary key
/// are keyed by their digest and may repeat.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RowIndex(Vec<RowEntry>);

/// The index of a table that has no rows.
pub static NO_ROWS: RowIndex = RowIndex(Vec::new());

impl RowIndex {
    /// Sorts `entries`; returns the index and every key that appears more than once.
    pub fn build(mut entries: Vec<RowEntry>) -> (Self, Vec<RowKey>) {
        entries.sort_unstable();
        entries.shrink_to_fit();
        let mut repeated: Vec<RowKey> = entries
            .windows(2)
            .filter(|w| w[0].key == w[1].key)
            .map(|w| w[0].key)
            .collect();
        repeated.dedup();
        (RowIndex(entries), repeated)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &RowEntry> {
        self.0.iter()
    }

    /// The digest of the row with `key` (the first, if it repeats).
    pub fn get(&self, key: &RowKey) -> Option<&RowDigest> {
        let i = self.0.partition_point(|e| e.key < *key);
        self.0.get(i).filter(|e| e.key == *key).map(|e| &e.digest)
    }

    /// SHA-256 over the row digests in key order: equal tables have equal digests.
    pub fn table_digest(&self) -> String {
        let mut h = Sha256::new();
        for e in &self.0 {
            h.update(e.digest);
        }
        hex::encode(h.finalize())
    }

    /// Walks two indexes side by side, calling `each` for every row that is not the same in
    /// both. Repeated keys pair up in order.
    pub fn diff(&self, other: &RowIndex, mut each: impl FnMut(&RowKey, Difference)) {
        let (a, b) = (&self.0, &other.0);
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            match (a.get(i), b.get(j)) {
                (Some(x), Some(y)) if x.key == y.key => {
                    if x.digest != y.digest {
                        each(&x.key, Difference::Changed);
                    }
                    i += 1;
                    j += 1;
                }
                (Some(x), Some(y)) if x.key < y.key => {
                    each(&x.key, Difference::Missing);
                    i += 1;
                }
                (Some(x), None) => {
                    each(&x.key, Difference::Missing);
                    i += 1;
                }
                (_, Some(y)) => {
                    each(&y.key, Difference::Extra);
                    j += 1;
                }
                (None, None) => unreachable!("the loop stops when both sides are done"),
            }
        }
    }
}

/// The naming rule (once, in `linstor-model`): a row's primary-key text and its SHA-256, which
/// is the row's key here and its object's name in the backend.
pub use linstor_model::naming::{key_hash, key_text};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linstor::export::Row;
    use linstor_fake::Release;

    fn entry(k: u8, d: u8) -> RowEntry {
        RowEntry {
            key: [k; 32],
            digest: [d; 16],
        }
    }

    #[test]
    fn build_sorts_and_names_repeated_keys() {
        let (index, repeated) = RowIndex::build(vec![entry(3, 1), entry(1, 1), entry(3, 2), entry(2, 9)]);
        let keys: Vec<u8> = index.iter().map(|e| e.key[0]).collect();
        assert_eq!(keys, vec![1, 2, 3, 3]);
        assert_eq!(repeated, vec![[3; 32]]);
        assert_eq!(index.get(&[2; 32]), Some(&[9; 16]));
        assert_eq!(index.get(&[4; 32]), None);
    }

    #[test]
    fn diff_names_missing_extra_and_changed_keys() {
        let (a, _) = RowIndex::build(vec![entry(1, 1), entry(2, 2), entry(3, 3), entry(5, 5)]);
        let (b, _) = RowIndex::build(vec![
            entry(1, 1),
            entry(2, 7),
            entry(4, 4),
            entry(5, 5),
            entry(6, 6),
        ]);
        let mut seen = Vec::new();
        a.diff(&b, |k, d| seen.push((k[0], d)));
        use Difference::*;
        assert_eq!(seen, vec![(2, Changed), (3, Missing), (4, Extra), (6, Extra)]);
        let mut none = 0;
        a.diff(&a.clone(), |_, _| none += 1);
        assert_eq!(none, 0);
        assert_ne!(a.table_digest(), b.table_digest());
    }

    #[test]
    fn key_texts_join_the_key_columns_and_hash_to_the_object_name() {
        let vd = Release::LATEST.table("VOLUME_DEFINITIONS").unwrap();
        let row: Row =
            serde_json::from_str(r#"{"resource_name": "DB0", "snapshot_name": "", "vlm_nr": 1}"#).unwrap();
        assert_eq!(key_text(vd, &row).as_deref(), Some("DB0::1"));
        // fixtures/linstor-1.33.3/k8s/naming.txt
        assert_eq!(
            hex::encode(key_hash("DB0::1")),
            "93b8c0352bb8069b44801293e87bb1d581e60adcfb0981466c776de86b20e1a1"
        );
        assert_eq!(
            key_text(Release::LATEST.table("TRACKING_DATE").unwrap(), &row),
            None
        );
    }
}
