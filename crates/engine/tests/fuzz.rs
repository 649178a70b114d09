//! Fuzzing of the `dfpipe.toml` loader, [`PipelineSpec::parse`] and the profile it yields:
//! random text, the demo's spec with lines dropped, duplicated, swapped, truncated or given
//! other values, and tables built from the spec's keys with random values. Nothing panics,
//! and every error names the file.
//!
//! `DFPIPE_FUZZ_CASES` sets the number of inputs per strategy (`cargo xtask fuzz`).

use std::path::Path;

use dfpipe_engine::PipelineSpec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

#[allow(dead_code, unreachable_pub)]
#[path = "../../views/tests/views/common/edits.rs"]
mod edits;
use edits::Edit;

const DEMO: &str = include_str!("../../../examples/tpch/dfpipe.toml");

/// Values of every TOML type, and strings the spec's own parsers read.
const VALUES: &[&str] = &[
    "\"x\"",
    "\"\"",
    "0",
    "-1",
    "1.5",
    "18446744073709551616",
    "nan",
    "inf",
    "true",
    "[]",
    "[\"a\", \"b\"]",
    "[1, \"a\"]",
    "{}",
    "{ a = 1 }",
    "1994-01-01",
    "1994-01-01T00:00:00Z",
    "\"4GiB\"",
    "\"1e309GiB\"",
    "\"99999999999999999999\"",
    "\".5k\"",
    "\"zstd(99)\"",
    "\"gzip(-1)\"",
    "\"strict\"",
    "\"fallback\"",
    "\"parquet\"",
    "\"csv\"",
    "\"dev\"",
    "\"page\"",
    "\"datafusion.nope\"",
    "\"s3://bucket/x\"",
    "\"../../etc\"",
    "\"\\u0000\"",
];

/// Lines of tables and keys the spec knows, and some it does not.
const LINES: &[&str] = &[
    "[pipeline]",
    "[profile]",
    "[profile.settings]",
    "[profile.writer]",
    "[sources.x]",
    "[views.q01]",
    "[views.q01.params]",
    "[contracts.orders]",
    "[contracts.q01]",
    "[[views]]",
    "[storage.\"s3://b\"]",
    "[openlineage]",
    "[nope]",
    "name = \"p\"",
    "output_dir = \"out\"",
    "materialize = \"parquet\"",
    "materialize = \"lazy\"",
    "path = \"data/\"",
    "format = \"csv\"",
    "partition_by = [\"l_returnflag\"]",
    "sort_by = [\"a DESC\", \"\"]",
    "repartition_by = [\"a\"]",
    "primary_key = [\"o_orderkey\"]",
    "unique = [[\"a\"], []]",
    "not_null = []",
    "columns = [{ name = \"a\" }]",
    "foreign_keys = [{ columns = [\"o_custkey\"], references = \"customer\", referenced_columns = [\"c_custkey\"] }]",
    "\"datafusion.optimizer.max_passes\" = \"3\"",
    "\"datafusion.execution.batch_size\" = \"0\"",
    "memory_limit = \"4GiB\"",
    "memory_limit = \"1e400\"",
    "target_partitions = 0",
    "batch_size = -1",
    "compression = \"zstd(3)\"",
    "compression = \"brotli(999)\"",
    "max_row_group_size = 0",
    "params = { a = 1 }",
    "substrait = \"strict\"",
    "analyze_level = \"dev\"",
    "explain_verbose = true",
    "statistics_enabled = \"x\"",
    "url = \"http://marquez:5000\"",
    "url = \"file:\"",
    "url = \"marquez:5000\"",
    "namespace = \"shop\"",
];

/// One edit of a spec.
#[derive(Debug, Clone)]
enum SpecEdit {
    /// Lines dropped, duplicated, swapped, inserted, or replaced by a line with the same key
    /// and another value.
    Line(Edit<&'static str>),
    /// Cut the text at this fraction of its length.
    Truncate(f64),
    /// Put a character in, at this fraction of the text's length.
    Char(f64, char),
}

fn spec_edit() -> impl Strategy<Value = SpecEdit> {
    prop_oneof![
        edits::edit(LINES).prop_map(SpecEdit::Line),
        (any::<usize>(), prop::sample::select(VALUES)).prop_map(|(i, v)| SpecEdit::Line(Edit::Replace(i, v))),
        (0.0..1.0f64).prop_map(SpecEdit::Truncate),
        (0.0..1.0f64, prop::sample::select(&['"', '[', ']', '=', '\n', '.', '\'', '{', '#', '\u{feff}'][..]))
            .prop_map(|(at, c)| SpecEdit::Char(at, c)),
    ]
}

/// The demo's spec with `edits` applied.
fn edited(edits: &[SpecEdit]) -> String {
    let mut lines: Vec<String> = DEMO.lines().map(str::to_owned).collect();
    let mut cut: Option<(f64, Option<char>)> = None;
    for edit in edits {
        match edit {
            // A replaced `key = value` line keeps its key; other lines are replaced whole.
            SpecEdit::Line(edit) => edits::apply(
                &mut lines,
                edit,
                |l| (*l).to_owned(),
                |old, new| match (old.split_once('='), new.contains('=')) {
                    (Some((key, _)), false) => format!("{key}= {new}"),
                    _ => (*new).to_owned(),
                },
            ),
            SpecEdit::Truncate(at) => cut = Some((*at, None)),
            SpecEdit::Char(at, c) => cut = Some((*at, Some(*c))),
        }
    }
    let mut text = lines.join("\n");
    if let Some((at, c)) = cut {
        let mut at = (text.len() as f64 * at) as usize;
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        match c {
            Some(c) => text.insert(at, c),
            None => text.truncate(at),
        }
    }
    text
}

/// A spec of random tables, each with random keys and values.
fn built() -> impl Strategy<Value = String> {
    let table = (prop::sample::select(LINES), prop::collection::vec(prop::sample::select(LINES), 0..6));
    (prop::collection::vec(table, 0..6), prop::collection::vec(prop::sample::select(VALUES), 0..6)).prop_map(
        |(tables, values)| {
            let mut text = String::from("[pipeline]\nname = \"p\"\n");
            for (i, (header, keys)) in tables.iter().enumerate() {
                text.push_str(header);
                text.push('\n');
                for (j, key) in keys.iter().enumerate() {
                    match (key.split_once('='), values.get((i + j) % values.len().max(1))) {
                        (Some((key, _)), Some(value)) if (i + j) % 2 == 0 => {
                            text.push_str(key);
                            text.push_str("= ");
                            text.push_str(value);
                        }
                        _ => text.push_str(key),
                    }
                    text.push('\n');
                }
            }
            text
        },
    )
}

/// Loads `text` as a `dfpipe.toml`, and a spec that parses into its session and writer
/// options: any error must name the file.
fn load(text: &str) -> Result<(), TestCaseError> {
    let file = Path::new("/pipeline/dfpipe.toml");
    let named = |error: dfpipe_engine::EngineError| {
        let message = error.to_string();
        prop_assert!(message.contains("/pipeline/dfpipe.toml"), "{message}\n--- input:\n{text}");
        Ok(())
    };
    match PipelineSpec::parse(file, text) {
        Err(error) => named(error),
        Ok(spec) => {
            let _ = spec.profile.parquet_options();
            let _ = spec.profile.writer_knobs();
            spec.profile.session(file).map(drop).or_else(named)
        }
    }
}

fn config(cases: u32) -> Config {
    let cases = std::env::var("DFPIPE_FUZZ_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(cases);
    Config { cases, failure_persistence: None, ..Config::default() }
}

fn fuzz(cases: u32, strategy: impl Strategy<Value = String>) {
    if let Err(failure) = TestRunner::new(config(cases)).run(&strategy, |text| load(&text)) {
        panic!("{failure}");
    }
}

#[test]
fn fuzz_spec_random_text() {
    fuzz(20000, prop_oneof![any::<String>(), "[\\[\\]a-z_.=\"' 0-9\n{},#-]{0,200}"]);
}

#[test]
fn fuzz_spec_mutated_demo() {
    fuzz(10000, prop::collection::vec(spec_edit(), 1..8).prop_map(|edits| edited(&edits)));
}

#[test]
fn fuzz_spec_built_from_keys() {
    fuzz(20000, built());
}

#[test]
fn the_demo_spec_loads() {
    load(DEMO).unwrap();
    assert_eq!(edited(&[]), DEMO.trim_end_matches('\n'));
}
