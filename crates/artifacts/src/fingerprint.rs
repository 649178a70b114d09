//! Fingerprints: stable hashes of everything that decides what a view's plan computes.
//!
//! A view's fingerprint is the BLAKE3 hash of four ingredient hashes, each of them over
//! tagged, length-prefixed sections:
//! 1. `plan`: its Substrait bytes, with the producer version cleared and the extension
//!    declarations sorted (or, under `substrait = "fallback"`, the optimized plan's text);
//! 2. `settings`: the planning-relevant settings of the runtime profile, sorted by key;
//! 3. `environment`: the hashes of the `information_schema` rows that concern the relations
//!    it reads and the functions it calls (see [`Environment::relevant`](crate::Environment::relevant));
//! 4. `upstream`: the fingerprint of every relation it reads, sorted by name: an upstream
//!    view's fingerprint, or a source's file listing (paths, sizes, modification times).
//!
//! Nothing else goes in: no paths of the pipeline, no timings, no thread counts, no producer
//! versions. So the fingerprint is the same across runs, processes and machines.

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
    /// The relevant environment hashes, by `information_schema` table.
    pub environment: &'a BTreeMap<String, Fingerprint>,
    /// The fingerprints of the relations read, by name.
    pub upstream: &'a BTreeMap<String, Fingerprint>,
}

/// The hash of each ingredient of a fingerprint, so that a diff can tell which one changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ingredients {
    /// The plan's hash.
    pub plan: Fingerprint,
    /// The settings' hash.
    pub settings: Fingerprint,
    /// The relevant environment's hash.
    pub environment: Fingerprint,
    /// The upstream fingerprints' hash.
    pub upstream: Fingerprint,
}

impl Ingredients {
    /// Hashes each ingredient.
    pub fn of(inputs: &FingerprintInputs<'_>) -> Self {
        let pairs = |tag: &[u8], map: &BTreeMap<String, String>| {
            let mut hasher = Hasher::default();
            for (key, value) in map {
                hasher.section(tag, key.as_bytes());
                hasher.section(b"value", value.as_bytes());
            }
            hasher.finish()
        };
        let hashes = |tag: &[u8], map: &BTreeMap<String, Fingerprint>| {
            let mut hasher = Hasher::default();
            for (key, value) in map {
                hasher.section(tag, key.as_bytes());
                hasher.section(b"fingerprint", value.0.as_bytes());
            }
            hasher.finish()
        };
        let mut plan = Hasher::default();
        plan.section(b"plan", inputs.plan);
        Self {
            plan: plan.finish(),
            settings: pairs(b"setting", inputs.settings),
            environment: hashes(b"environment", inputs.environment),
            upstream: hashes(b"upstream", inputs.upstream),
        }
    }

    /// The names of the ingredients that differ from `other`'s.
    pub fn changed_from(&self, other: &Self) -> Vec<&'static str> {
        [
            ("plan", self.plan == other.plan),
            ("settings", self.settings == other.settings),
            ("environment", self.environment == other.environment),
            ("upstream", self.upstream == other.upstream),
        ]
        .into_iter()
        .filter_map(|(name, same)| (!same).then_some(name))
        .collect()
    }

    /// The fingerprint they make.
    pub fn fingerprint(&self) -> Fingerprint {
        let mut hasher = Hasher::default();
        for (tag, hash) in [
            (&b"plan"[..], &self.plan),
            (b"settings", &self.settings),
            (b"environment", &self.environment),
            (b"upstream", &self.upstream),
        ] {
            hasher.section(tag, hash.0.as_bytes());
        }
        hasher.finish()
    }
}

impl Fingerprint {
    /// The fingerprint of a view.
    pub fn of(inputs: &FingerprintInputs<'_>) -> Self {
        Ingredients::of(inputs).fingerprint()
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

/// BLAKE3 over tagged, length-prefixed sections, so no two inputs hash alike by accident.
#[derive(Default)]
pub(crate) struct Hasher(blake3::Hasher);

impl Hasher {
    pub(crate) fn section(&mut self, tag: &[u8], bytes: &[u8]) {
        self.0.update(&(tag.len() as u64).to_le_bytes());
        self.0.update(tag);
        self.0.update(&(bytes.len() as u64).to_le_bytes());
        self.0.update(bytes);
    }

    pub(crate) fn finish(&self) -> Fingerprint {
        let digest = self.0.finalize();
        Fingerprint(digest.to_hex()[..32].to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(plan: &[u8], setting: &str, environment: &str, upstream: &str) -> Fingerprint {
        let settings = BTreeMap::from([("datafusion.execution.target_partitions".to_owned(), setting.to_owned())]);
        let environment = BTreeMap::from([("columns".to_owned(), Fingerprint(environment.to_owned()))]);
        let upstream = BTreeMap::from([("orders".to_owned(), Fingerprint(upstream.to_owned()))]);
        Fingerprint::of(&FingerprintInputs {
            plan,
            settings: &settings,
            environment: &environment,
            upstream: &upstream,
        })
    }

    #[test]
    fn each_ingredient_changes_the_fingerprint() {
        let base = fp(b"plan", "2", "e1", "u1");
        assert_eq!(base, fp(b"plan", "2", "e1", "u1"));
        assert_ne!(base, fp(b"plan2", "2", "e1", "u1"));
        assert_ne!(base, fp(b"plan", "4", "e1", "u1"));
        assert_ne!(base, fp(b"plan", "2", "e2", "u1"));
        assert_ne!(base, fp(b"plan", "2", "e1", "u2"));
        assert_eq!(base.0.len(), 32);
    }

    #[test]
    fn ingredients_say_which_changed() {
        let settings = BTreeMap::from([("k".to_owned(), "v".to_owned())]);
        let (no_settings, none) = (BTreeMap::new(), BTreeMap::new());
        let inputs = FingerprintInputs { plan: b"p", settings: &settings, environment: &none, upstream: &none };
        let before = Ingredients::of(&inputs);
        let after = Ingredients::of(&FingerprintInputs { plan: b"q", settings: &no_settings, ..inputs });
        assert_eq!(after.changed_from(&before), ["plan", "settings"]);
        assert_eq!(before.fingerprint(), Fingerprint::of(&inputs));
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
