//! The artifacts crate through its public API, in one test binary: bundles captured from
//! real plans and the store (`bundles`), and fuzzing of the store's decoder (`fuzz`).

mod bundles;
mod fuzz;

/// Stores written by earlier versions of the store, committed: `tests/fixtures/v<N>/`.
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
