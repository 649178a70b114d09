//! Fingerprints: stable hashes of everything that decides what a view's plan computes.
//!
//! A view's fingerprint hashes, each section tagged and length-prefixed:
//! 1. its Substrait bytes with the producer version cleared (or, under
//!    `substrait = "fallback"`, the optimized plan's text),
//! 2. the planning-relevant settings of the runtime profile, sorted by key,
//! 3. the fingerprint of every relation it reads: an upstream view's fingerprint, or a
//!    source's file listing (paths, sizes, modification times), sorted by name.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// A 128-bit BLAKE3 digest, shown as 32 hex digits.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Fingerprint(pub String);

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The ingredients of a view's fingerprint.
#[derive(Debug, Clone, Copy)]
pub struct FingerprintInputs<'a> {
    /// The plan: Substrait bytes, or the fallback basis.
    pub plan: &'a [u8],
    /// Planning-relevant profile settings.
    pub settings: &'a BTreeMap<String, String>,
    /// The fingerprints of the relations read, by name.
    pub upstream: &'a BTreeMap<String, Fingerprint>,
}

impl Fingerprint {
    /// The fingerprint of a view.
    pub fn of(inputs: &FingerprintInputs<'_>) -> Self {
        let mut hasher = Hasher::default();
        hasher.section(b"plan", inputs.plan);
        for (key, value) in inputs.settings {
            hasher.section(b"setting", key.as_bytes());
            hasher.section(b"value", value.as_bytes());
        }
        for (name, fingerprint) in inputs.upstream {
            hasher.section(b"upstream", name.as_bytes());
            hasher.section(b"fingerprint", fingerprint.0.as_bytes());
        }
        hasher.finish()
    }

    /// The fingerprint of a source from its file listing: `(path, size, modified)` triples,
    /// with `modified` in nanoseconds since the Unix epoch.
    pub fn of_files(files: &[(String, u64, u128)]) -> Self {
        let mut sorted: Vec<&(String, u64, u128)> = files.iter().collect();
        sorted.sort();
        let mut hasher = Hasher::default();
        for (path, size, modified) in sorted {
            hasher.section(b"file", path.as_bytes());
            hasher.section(b"size", &size.to_le_bytes());
            hasher.section(b"modified", &modified.to_le_bytes());
        }
        hasher.finish()
    }
}

#[derive(Default)]
struct Hasher(blake3::Hasher);

impl Hasher {
    fn section(&mut self, tag: &[u8], bytes: &[u8]) {
        self.0.update(&(tag.len() as u64).to_le_bytes());
        self.0.update(tag);
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    fn finish(&self) -> Fingerprint {
        let digest = self.0.finalize();
        Fingerprint(digest.to_hex()[..32].to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(plan: &[u8], setting: &str, upstream: &str) -> Fingerprint {
        let settings = BTreeMap::from([("datafusion.execution.target_partitions".to_owned(), setting.to_owned())]);
        let upstream = BTreeMap::from([("orders".to_owned(), Fingerprint(upstream.to_owned()))]);
        Fingerprint::of(&FingerprintInputs { plan, settings: &settings, upstream: &upstream })
    }

    #[test]
    fn each_ingredient_changes_the_fingerprint() {
        let base = fp(b"plan", "2", "u1");
        assert_eq!(base, fp(b"plan", "2", "u1"));
        assert_ne!(base, fp(b"plan2", "2", "u1"));
        assert_ne!(base, fp(b"plan", "4", "u1"));
        assert_ne!(base, fp(b"plan", "2", "u2"));
        assert_eq!(base.0.len(), 32);
    }

    #[test]
    fn file_listings_are_order_independent_and_sensitive_to_each_field() {
        let a = ("a.parquet".to_owned(), 10, 1);
        let b = ("b.parquet".to_owned(), 20, 2);
        let base = Fingerprint::of_files(&[a.clone(), b.clone()]);
        assert_eq!(base, Fingerprint::of_files(&[b.clone(), a.clone()]));
        assert_ne!(base, Fingerprint::of_files(std::slice::from_ref(&a)));
        assert_ne!(base, Fingerprint::of_files(&[a.clone(), ("b.parquet".to_owned(), 21, 2)]));
        assert_ne!(base, Fingerprint::of_files(&[a, ("b.parquet".to_owned(), 20, 3)]));
    }
}
