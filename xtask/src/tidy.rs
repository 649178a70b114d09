//! Tidy checks: the crate layering of PRODUCT.md, `//!` headers, no should_panic attributes, no
//! SQL built with `format!` in library code, one build for both README commands, and one
//! integration-test binary per package.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use serde_json::Value;

/// Packages that are tooling, not library crates: they may depend on anything of ours.
const TOOLING: [&str; 3] = ["xtask", "dfpipe-tests", "dfpipe-benches"];

/// Crates no library crate may pull in.
const CLI_ONLY: [&str; 2] = ["clap", "indicatif"];

/// Crates only the demo may pull in (other crates' tests may use them).
const DEMO_ONLY: [&str; 2] = ["tpchgen", "tpchgen-arrow"];

/// Runs every tidy check on the workspace at `root`, returning the problems found.
pub(crate) fn check(root: &Path) -> Result<Vec<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .current_dir(root)
        .output()
        .context("running cargo metadata")?;
    anyhow::ensure!(output.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
    let metadata: Value = serde_json::from_slice(&output.stdout).context("parsing cargo metadata")?;
    let mut problems = layering(&metadata);
    let architecture = root.join("ARCHITECTURE.md");
    let text = std::fs::read_to_string(&architecture).with_context(|| format!("reading {}", architecture.display()))?;
    problems.extend(diagram(&metadata, &text));
    problems.extend(test_binaries(&metadata));
    problems.extend(sources(root)?);
    problems.extend(one_build(root)?);
    Ok(problems)
}

/// Checks that `cargo run -p dfpipe` and `cargo test --workspace` resolve the same features
/// for every dependency not of ours, so the second reuses the first's build instead of
/// rebuilding DataFusion (our own crates, quick to build, may differ by their `default`).
fn one_build(root: &Path) -> Result<Vec<String>> {
    let run = features(root, &["-p", "dfpipe", "-e", "normal,build"])?;
    let test = features(root, &["--workspace", "-e", "normal,build,dev"])?;
    Ok(feature_differences(&run, &test))
}

/// Each package's enabled features, by `name version`, from `cargo tree` with `selection`.
fn features(root: &Path, selection: &[&str]) -> Result<BTreeMap<String, BTreeSet<String>>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .arg("tree")
        .args(selection)
        .args(["--prefix", "none", "--format", "{p} {f}", "--offline"])
        .current_dir(root)
        .output()
        .context("running cargo tree")?;
    anyhow::ensure!(output.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&output.stderr));
    Ok(parse_features(&String::from_utf8_lossy(&output.stdout)))
}

/// `cargo tree --format "{p} {f}"` lines as features by package.
fn parse_features(tree: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut packages: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in tree.lines() {
        let mut words = line.split(' ');
        let (Some(name), Some(version)) = (words.next(), words.next()) else { continue };
        let features = packages.entry(format!("{name} {version}")).or_default();
        for word in words.filter(|w| !w.starts_with('(')) {
            features.extend(word.split(',').filter(|f| !f.is_empty()).map(str::to_owned));
        }
    }
    packages
}

/// The packages not of ours whose features differ between the two builds.
fn feature_differences(
    run: &BTreeMap<String, BTreeSet<String>>,
    test: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<String> {
    (run.iter())
        .filter(|(package, _)| !package.starts_with("dfpipe"))
        .filter_map(|(package, features)| {
            let other = test.get(package)?;
            (features != other).then(|| {
                let only_test: Vec<&String> = other.difference(features).collect();
                let only_run: Vec<&String> = features.difference(other).collect();
                format!(
                    "`{package}` is built with other features by `cargo test --workspace` (adds {only_test:?}) than \
                     by `cargo run -p dfpipe` (adds {only_run:?}), so one rebuilds what the other built: enable them \
                     in [workspace.dependencies]"
                )
            })
        })
        .collect()
}

/// The crates of ours each library crate depends on (normal and build dependencies), from
/// `cargo metadata`.
fn edges(metadata: &Value) -> BTreeMap<String, BTreeSet<String>> {
    let empty = Vec::new();
    (metadata["packages"].as_array().unwrap_or(&empty).iter())
        .filter_map(|package| {
            let name = package["name"].as_str()?;
            (!TOOLING.contains(&name)).then_some(package)
        })
        .map(|package| {
            let deps = (package["dependencies"].as_array().unwrap_or(&empty).iter())
                .filter(|dep| dep["kind"].as_str() != Some("dev"))
                .filter_map(|dep| dep["name"].as_str())
                .filter(|name| *name == "dfpipe" || name.starts_with("dfpipe-"))
                .map(str::to_owned)
                .collect();
            (package["name"].as_str().unwrap_or_default().to_owned(), deps)
        })
        .collect()
}

/// Checks the edge list of ARCHITECTURE.md's first `text` block (`crate -> a, b` or
/// `crate -> nothing of ours`, a note after `;`) against `cargo metadata`.
pub(crate) fn diagram(metadata: &Value, architecture: &str) -> Vec<String> {
    let block = architecture.split("```text\n").nth(1).and_then(|rest| rest.split("```").next()).unwrap_or_default();
    let mut drawn: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in block.lines() {
        let Some((name, deps)) = line.split_once("->") else { continue };
        let name = name.split_whitespace().next().unwrap_or_default().to_owned();
        let deps = deps.split(';').next().unwrap_or_default();
        let deps = deps.split(',').map(str::trim).filter(|d| d.starts_with("dfpipe")).map(str::to_owned).collect();
        drawn.insert(name, deps);
    }
    let mut problems = Vec::new();
    for (name, actual) in edges(metadata) {
        let list = |deps: &BTreeSet<String>| {
            if deps.is_empty() {
                "nothing of ours".to_owned()
            } else {
                deps.iter().cloned().collect::<Vec<_>>().join(", ")
            }
        };
        match drawn.remove(&name) {
            None => problems.push(format!(
                "ARCHITECTURE.md's crate edges have no line for `{name}`; add `{name} -> {}`",
                list(&actual)
            )),
            Some(said) if said != actual => problems.push(format!(
                "ARCHITECTURE.md says `{name} -> {}`, but cargo metadata says `{name} -> {}`; update the crate edges",
                list(&said),
                list(&actual)
            )),
            Some(_) => {}
        }
    }
    for name in drawn.keys() {
        problems.push(format!("ARCHITECTURE.md's crate edges name `{name}`, which is not a crate of the workspace"));
    }
    problems
}

/// The dfpipe crates each crate may depend on (normal and build dependencies).
fn allowed(package: &str) -> Option<&'static [&'static str]> {
    Some(match package {
        // The demo and the object-store builders are capabilities of their own: they know
        // none of our crates, and only the command line (the demo) or the engine (storage)
        // composes them.
        "dfpipe-scheduler" | "dfpipe-plan-walk" | "dfpipe-demo" | "dfpipe-storage" => &[],
        // OpenLineage events are a capability of their own too, made of plan-walk's lineage;
        // the engine builds their facts and the command line sends them.
        "dfpipe-contract" | "dfpipe-views" | "dfpipe-writer" | "dfpipe-artifacts" | "dfpipe-openlineage" => {
            &["dfpipe-plan-walk"]
        }
        // The cluster backend builds the workers' object stores; the engine composes it, and
        // the command line serves workers with it.
        "dfpipe-cluster" => &["dfpipe-storage"],
        "dfpipe-engine" => &[
            "dfpipe-cluster",
            "dfpipe-scheduler",
            "dfpipe-plan-walk",
            "dfpipe-contract",
            "dfpipe-views",
            "dfpipe-writer",
            "dfpipe-artifacts",
            "dfpipe-storage",
            "dfpipe-openlineage",
            "dfpipe-report",
        ],
        // The HTML report renders the records of the crates below it; only the engine
        // composes it.
        "dfpipe-report" => &["dfpipe-artifacts", "dfpipe-contract", "dfpipe-plan-walk", "dfpipe-writer"],
        "dfpipe" => &["dfpipe-engine", "dfpipe-cluster", "dfpipe-demo", "dfpipe-openlineage"],
        _ => return None,
    })
}

/// Checks `cargo metadata` output against the layering rules.
pub(crate) fn layering(metadata: &Value) -> Vec<String> {
    let mut problems = Vec::new();
    let empty = Vec::new();
    for package in metadata["packages"].as_array().unwrap_or(&empty) {
        let name = package["name"].as_str().unwrap_or_default();
        if TOOLING.contains(&name) {
            continue;
        }
        let Some(allowed) = allowed(name) else {
            problems.push(format!("package `{name}` is not in the layering table of xtask/src/tidy.rs; add it there"));
            continue;
        };
        for dep in package["dependencies"].as_array().unwrap_or(&empty) {
            let dep_name = dep["name"].as_str().unwrap_or_default();
            let dev = dep["kind"].as_str() == Some("dev");
            let ours = dep_name == "dfpipe" || dep_name.starts_with("dfpipe-");
            if ours && !allowed.contains(&dep_name) {
                problems.push(format!(
                    "forbidden edge: `{name}` depends on `{dep_name}` (see the layering in ARCHITECTURE.md)"
                ));
            }
            if dev {
                continue;
            }
            if name == "dfpipe-scheduler" && dep_name.starts_with("datafusion") {
                problems.push(format!(
                    "forbidden edge: `dfpipe-scheduler` depends on `{dep_name}`; it knows nothing about DataFusion"
                ));
            }
            if name == "dfpipe-plan-walk"
                && dep_name.starts_with("datafusion")
                && !["datafusion-expr", "datafusion-common"].contains(&dep_name)
            {
                problems.push(format!("forbidden edge: `dfpipe-plan-walk` depends on `{dep_name}`; only datafusion-expr and datafusion-common are allowed"));
            }
            if name != "dfpipe" && CLI_ONLY.contains(&dep_name) {
                problems.push(format!("forbidden edge: library crate `{name}` depends on CLI crate `{dep_name}`"));
            }
            if name != "dfpipe-demo" && DEMO_ONLY.contains(&dep_name) {
                problems.push(format!(
                    "forbidden edge: `{name}` depends on `{dep_name}`; TPC-H data generation belongs to `dfpipe-demo`"
                ));
            }
        }
    }
    problems
}

/// Checks that each package has at most one integration-test binary: every test binary links
/// DataFusion, and `cargo test` runs binaries one after another but a binary's tests side by
/// side. More test files are modules of `tests/<name>/main.rs`.
fn test_binaries(metadata: &Value) -> Vec<String> {
    let empty = Vec::new();
    let mut problems = Vec::new();
    for package in metadata["packages"].as_array().unwrap_or(&empty) {
        let tests: Vec<&str> = package["targets"]
            .as_array()
            .unwrap_or(&empty)
            .iter()
            .filter(|t| t["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "test")))
            .filter_map(|t| t["name"].as_str())
            .collect();
        if tests.len() > 1 {
            problems.push(format!(
                "package `{}` has {} integration-test binaries ({}); make them modules of one `tests/<name>/main.rs`",
                package["name"].as_str().unwrap_or_default(),
                tests.len(),
                tests.join(", ")
            ));
        }
    }
    problems
}

/// Checks every Rust source file: a `//!` header, and no should_panic attributes.
fn sources(root: &Path) -> Result<Vec<String>> {
    let mut problems = Vec::new();
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "tests", "benches"] {
        collect_rs(&root.join(dir), &mut files)?;
    }
    files.sort();
    let should_panic = ["#[should", "_panic"].concat();
    // Library crates never print or exit: they return errors and events to their callers.
    let forbidden_in_libraries = ["println!", "eprintln!", "print!(", "eprint!(", "process::exit"];
    for file in files {
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        let shown = file.strip_prefix(root).unwrap_or(&file).display().to_string();
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or_default();
        if !first.starts_with("//!") {
            problems.push(format!("{shown}: a module starts with a `//!` doc comment saying what it is for"));
        }
        let library = shown.starts_with("crates/") && !shown.starts_with("crates/cli/") && shown.contains("/src/");
        if library {
            for (line, literal) in sql_in_format(&text) {
                problems.push(format!(
                    "{shown}:{line}: `format!` builds SQL ({literal:?}); bind values as parameters, build plans with \
                     the DataFrame/Expr API, or parse a user's fragment with `parse_sql_expr`"
                ));
            }
            for forbidden in forbidden_in_libraries {
                if text.contains(forbidden) {
                    problems
                        .push(format!("{shown}: library crates never use `{forbidden}`; return an error or an event"));
                }
            }
        }
        if text.contains(&should_panic) {
            problems.push(format!("{shown}: no `{should_panic}]`; assert on the returned error instead"));
        }
    }
    Ok(problems)
}

/// Every `format!` whose format string reads as SQL, as (line, format string). SQL is a
/// `SELECT … FROM`, a `FROM … WHERE`, `INSERT INTO`, `DELETE FROM`, or `CREATE`/`DROP` of a
/// table or view, in any case; English prose ("read from a file where …") rarely has those
/// shapes, so the words alone are not enough.
pub(crate) fn sql_in_format(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("format!(") {
        let offset = text.len() - rest.len() + at;
        rest = &rest[at + "format!(".len()..];
        let Some(literal) = string_literal(rest.trim_start()) else { continue };
        if reads_as_sql(&literal) {
            let line = text[..offset].matches('\n').count() + 1;
            found.push((line, literal));
        }
    }
    found
}

/// The contents of the string literal `text` starts with: `"…"`, `r"…"` or `r#"…"#`.
fn string_literal(text: &str) -> Option<String> {
    if let Some(raw) = text.strip_prefix('r') {
        let hashes = raw.len() - raw.trim_start_matches('#').len();
        let body = raw[hashes..].strip_prefix('"')?;
        let end = body.find(&format!("\"{}", "#".repeat(hashes)))?;
        return Some(body[..end].to_owned());
    }
    let body = text.strip_prefix('"')?;
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => return Some(body[..i].to_owned()),
            _ => {}
        }
    }
    None
}

fn reads_as_sql(literal: &str) -> bool {
    let lower = literal.to_lowercase();
    let words: Vec<&str> =
        lower.split(|c: char| !(c.is_alphanumeric() || c == '_')).filter(|w| !w.is_empty()).collect();
    let position = |word: &str| words.iter().position(|w| *w == word);
    let followed_by = |first: &str, next: &[&str]| words.windows(2).any(|w| w[0] == first && next.contains(&w[1]));
    let in_order = |a: &str, b: &str| position(a).is_some_and(|i| words[i + 1..].contains(&b));
    in_order("select", "from")
        || in_order("from", "where")
        || followed_by("insert", &["into"])
        || followed_by("delete", &["from"])
        || followed_by("create", &["table", "view", "schema"])
        || followed_by("drop", &["table", "view", "schema"])
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Ok(()) };
    for entry in entries {
        let path = entry?.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            collect_rs(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workspace_metadata() -> Value {
        let root = crate::project_root();
        let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()))
            .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
            .current_dir(root)
            .output()
            .unwrap();
        serde_json::from_slice(&output.stdout).unwrap()
    }

    fn add_dependency(metadata: &mut Value, package: &str, dependency: &str) {
        let packages = metadata["packages"].as_array_mut().unwrap();
        let target = packages.iter_mut().find(|p| p["name"] == package).unwrap();
        target["dependencies"].as_array_mut().unwrap().push(serde_json::json!({"name": dependency, "kind": null}));
    }

    #[test]
    fn feature_differences_name_the_package_and_the_features() {
        let run = parse_features("serde v1.0.1 derive,std\ndfpipe-engine v0.1.0 (/x)\nsimilar v2.7.0 text (*)\n");
        let test =
            parse_features("serde v1.0.1 alloc,derive,std\ndfpipe-engine v0.1.0 (/x) default\nsimilar v2.7.0 text\n");
        let problems = feature_differences(&run, &test);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("`serde v1.0.1`") && problems[0].contains("\"alloc\""), "{problems:?}");
    }

    #[test]
    fn the_workspace_is_tidy() {
        let problems = check(&crate::project_root()).unwrap();
        assert!(problems.is_empty(), "run `cargo xtask tidy`:\n{}", problems.join("\n"));
    }

    #[test]
    fn sql_built_with_format_is_caught() {
        let library = [
            r#"let sql = format!("SELECT {cols} FROM {table} WHERE k = {k}");"#,
            r#"let sql = format!(
                "select count(*) from {relation}"
            );"#,
            r#"format!(r"delete from {t}")"#,
            r##"format!(r#"Insert Into "{t}" values (1)"#)"##,
            r#"format!("FROM {table} where {col} = 1")"#,
            r#"format!("create view {name} as {query}")"#,
            r#"format!("DROP TABLE {name}")"#,
        ];
        for text in library {
            assert_eq!(sql_in_format(text).len(), 1, "{text}");
        }
        // Prose with SQL words, SQL outside `format!`, and an escaped quote before the SQL.
        let prose = [
            r#"format!("cannot read {} from {}", a, b)"#,
            r#"format!("holds a {} where a {kind} was expected", k)"#,
            r#"format!("--select names `{x}`, which is not a view of this pipeline")"#,
            r#"let q = "select a from t where b"; format!("{q}")"#,
            r#"format!("\"{x}\" is not a key", x)"#,
        ];
        for text in prose {
            assert!(sql_in_format(text).is_empty(), "{text}");
        }
        // The line is reported.
        let file = "//! A module.\n\nfn f() -> String {\n    format!(\"SELECT a FROM {t}\")\n}\n";
        assert_eq!(sql_in_format(file), [(4, "SELECT a FROM {t}".to_owned())]);
    }

    #[test]
    fn a_second_test_binary_is_caught() {
        let mut metadata = workspace_metadata();
        assert!(test_binaries(&metadata).is_empty());
        let packages = metadata["packages"].as_array_mut().unwrap();
        let views = packages.iter_mut().find(|p| p["name"] == "dfpipe-views").unwrap();
        views["targets"].as_array_mut().unwrap().push(serde_json::json!({"name": "shared", "kind": ["test"]}));
        let problems = test_binaries(&metadata);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("`dfpipe-views` has 2 integration-test binaries (views, shared)"), "{problems:?}");
    }

    #[test]
    fn the_architecture_diagram_is_checked_against_the_metadata() {
        let metadata = workspace_metadata();
        let text = std::fs::read_to_string(crate::project_root().join("ARCHITECTURE.md")).unwrap();
        assert!(diagram(&metadata, &text).is_empty());
        // An edge drawn that does not exist, an edge missing, and a crate not drawn.
        let wrong = text.replace("dfpipe-contract   -> nothing of ours", "dfpipe-contract   -> dfpipe-plan-walk");
        let problems = diagram(&metadata, &wrong);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("`dfpipe-contract -> nothing of ours`"), "{problems:?}");
        let missing = text.replace("dfpipe-views      -> dfpipe-plan-walk", "dfpipe-views      -> nothing of ours");
        assert_eq!(diagram(&metadata, &missing).len(), 1);
        let undrawn = text.replace("dfpipe-demo       -> nothing of ours; tpchgen-arrow and parquet\n", "");
        assert!(diagram(&metadata, &undrawn)[0].contains("no line for `dfpipe-demo`"));
    }

    #[test]
    fn forbidden_edges_are_caught() {
        for (package, dependency) in [
            ("dfpipe-scheduler", "datafusion"),
            ("dfpipe-scheduler", "dfpipe-plan-walk"),
            ("dfpipe-plan-walk", "datafusion"),
            ("dfpipe-artifacts", "dfpipe-contract"),
            ("dfpipe-views", "dfpipe-writer"),
            ("dfpipe-engine", "dfpipe"),
            ("dfpipe-writer", "clap"),
            ("dfpipe-engine", "indicatif"),
            ("dfpipe-engine", "dfpipe-demo"),
            ("dfpipe-demo", "dfpipe-engine"),
            ("dfpipe-engine", "tpchgen"),
            ("dfpipe-storage", "dfpipe-writer"),
            ("dfpipe-writer", "dfpipe-storage"),
        ] {
            let mut metadata = workspace_metadata();
            assert!(layering(&metadata).is_empty());
            add_dependency(&mut metadata, package, dependency);
            let problems = layering(&metadata);
            assert_eq!(problems.len(), 1, "{package} -> {dependency}: {problems:?}");
            assert!(problems[0].contains(dependency), "{problems:?}");
        }
    }
}
