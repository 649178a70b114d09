//! `cargo xtask compare --peers`: dfpipe beside DuckDB, Polars and dbt-duckdb (issue 18,
//! goals P4 and P6).
//!
//! Installs the peers from PyPI into virtual environments under `target/` when missing
//! (nothing of them enters the Rust build; dbt has its own, for its own pins), generates
//! TPC-H data once with the dfpipe binary, lays out the demo and a one-view writer pipeline
//! over it, and hands over to `benches/scripts/peers.py`, which times every side as a whole
//! process in alternating rounds.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail, ensure};

/// The DuckDB release the peers' environment pins.
const DUCKDB: &str = "2.0.1";
/// The Polars release the peers' environment pins.
const POLARS: &str = "2.1.0";
/// The dbt-core release dbt's environment pins (over the same DuckDB). dbt-core 1.11 and
/// later fetch a parser from GitHub when installed, which this machine cannot reach.
const DBT_CORE: &str = "1.10.23";
/// The dbt-duckdb release dbt's environment pins.
const DBT_DUCKDB: &str = "1.10.1";
/// Threads every side gets: dfpipe's `--workers`, DuckDB's `threads`, `POLARS_MAX_THREADS`.
const THREADS: &str = "2";
/// The writer pipeline's one view.
const WRITER_VIEW: &str = "lineitem_zstd";

/// What `compare --peers` was asked for.
#[derive(Debug, PartialEq)]
pub(crate) struct Options {
    /// TPC-H scale factor.
    scale_factor: f64,
    /// Timed rounds after the warm-up.
    rounds: u32,
    /// The dfpipe binary; `None` builds it in release.
    dfpipe: Option<PathBuf>,
}

/// Parses the arguments after `compare`: `--peers [--scale-factor F] [--rounds N] [--dfpipe PATH]`.
pub(crate) fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options { scale_factor: 1.0, rounds: 3, dfpipe: None };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} takes a value"));
        match flag.as_str() {
            "--peers" => {}
            "--scale-factor" => {
                let text = value()?;
                options.scale_factor =
                    text.parse().ok().filter(|f: &f64| *f > 0.0 && f.is_finite()).with_context(|| {
                        format!("--scale-factor takes a positive number, like 1 or 0.1, not `{text}`")
                    })?;
            }
            "--rounds" => {
                let text = value()?;
                options.rounds = text
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .with_context(|| format!("--rounds takes a whole number of at least 1, not `{text}`"))?;
            }
            "--dfpipe" => options.dfpipe = Some(PathBuf::from(value()?)),
            other => bail!(
                "`compare --peers` does not know `{other}`; it takes --scale-factor F, --rounds N and --dfpipe PATH"
            ),
        }
    }
    Ok(options)
}

/// Runs the side-by-side harness for `options` in the workspace at `root`.
pub(crate) fn run(root: &Path, options: &Options) -> Result<()> {
    let python = venv_python(&root.join("target").join("peers-venv"), &[("duckdb", DUCKDB), ("polars", POLARS)])?;
    let dbt_pins = [("dbt-core", DBT_CORE), ("dbt-duckdb", DBT_DUCKDB), ("duckdb", DUCKDB)];
    let dbt = venv_python(&root.join("target").join("dbt-venv"), &dbt_pins)?.with_file_name("dbt");
    let dfpipe = if let Some(path) = &options.dfpipe {
        path.clone()
    } else {
        crate::cargo(root, &["build", "--release", "-p", "dfpipe"], &[])?;
        root.join("target").join("release").join("dfpipe")
    };
    ensure!(dfpipe.is_file(), "the dfpipe binary {} does not exist; pass --dfpipe PATH", dfpipe.display());
    let work = root.join("target").join("dfpipe-peers").join(format!("sf-{}", options.scale_factor));
    generate(&dfpipe, &work, options.scale_factor)?;
    lay_out(root, &work)?;
    let script = root.join("benches").join("scripts").join("peers.py");
    let rounds = options.rounds.to_string();
    let status = Command::new(&python)
        .arg(&script)
        .args(["harness", "--threads", THREADS, "--rounds", &rounds, "--dfpipe"])
        .arg(&dfpipe)
        .arg("--dbt")
        .arg(&dbt)
        .arg("--work")
        .arg(&work)
        .status()
        .with_context(|| format!("running {} {}", python.display(), script.display()))?;
    ensure!(status.success(), "{} failed", script.display());
    Ok(())
}

/// The Python of the virtual environment `venv` with the packages `pins` at their versions,
/// created and installed from PyPI first when missing.
fn venv_python(venv: &Path, pins: &[(&str, &str)]) -> Result<PathBuf> {
    let python = venv.join("bin").join("python");
    let wanted: Vec<String> = pins.iter().map(|(package, version)| format!("{package}=={version}")).collect();
    let (packages, versions): (Vec<&str>, Vec<&str>) = pins.iter().copied().unzip();
    let check = format!(
        "import sys; from importlib.metadata import version; sys.exit([version(p) for p in {packages:?}] != {versions:?})"
    );
    let ready = || Command::new(&python).args(["-c", &check]).output().is_ok_and(|o| o.status.success());
    if ready() {
        return Ok(python);
    }
    if !python.exists() {
        println!("peers: creating the virtual environment {}", venv.display());
        let venv_arg = venv.to_string_lossy();
        command("python3", &["-m", "venv", &venv_arg]).context("python3 -m venv needs Python 3.11 or later")?;
    }
    println!("peers: installing {} from PyPI", wanted.join(", "));
    let python_arg = python.to_string_lossy();
    let mut args = vec!["-m", "pip", "install", "--disable-pip-version-check", "--quiet"];
    args.extend(wanted.iter().map(String::as_str));
    command(&python_arg, &args)?;
    ensure!(ready(), "{} still lacks {}", python.display(), wanted.join(", "));
    Ok(python)
}

fn command(program: &str, args: &[&str]) -> Result<()> {
    let status =
        Command::new(program).args(args).status().with_context(|| format!("running {program} {}", args.join(" ")))?;
    ensure!(status.success(), "`{program} {}` failed", args.join(" "));
    Ok(())
}

/// TPC-H parquet under `work/data`, generated by `dfpipe gen tpch` unless a finished
/// generation at this scale factor is already there.
pub(crate) fn generate(dfpipe: &Path, work: &Path, scale_factor: f64) -> Result<()> {
    let data = work.join("data");
    let marker = work.join("data.complete");
    let wanted = format!("scale_factor = {scale_factor}\n");
    if std::fs::read_to_string(&marker).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(());
    }
    if data.exists() {
        std::fs::remove_dir_all(&data).with_context(|| format!("clearing {}", data.display()))?;
    }
    println!("peers: generating TPC-H at scale factor {scale_factor} into {}", data.display());
    let (dfpipe_arg, data_arg, sf) = (dfpipe.to_string_lossy(), data.to_string_lossy(), scale_factor.to_string());
    command(&dfpipe_arg, &["gen", "tpch", "--scale-factor", &sf, "--out", &data_arg])?;
    std::fs::write(&marker, wanted).with_context(|| format!("writing {}", marker.display()))
}

/// `work/demo`: the demo of `examples/tpch` reading `../data`; `work/writer`: `lineitem`
/// rewritten by one materialized view with the demo's profile.
pub(crate) fn lay_out(root: &Path, work: &Path) -> Result<()> {
    let example = root.join("examples").join("tpch");
    let spec_path = example.join("dfpipe.toml");
    let spec = std::fs::read_to_string(&spec_path).with_context(|| format!("reading {}", spec_path.display()))?;
    let demo = work.join("demo");
    write(&demo.join("dfpipe.toml"), &demo_spec(&spec)?)?;
    let views = example.join("views");
    for entry in std::fs::read_dir(&views).with_context(|| format!("reading {}", views.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "sql") {
            let sql = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
            write(&demo.join("views").join(path.file_name().context("a view file has a name")?), &sql)?;
        }
    }
    let writer = work.join("writer");
    write(&writer.join("dfpipe.toml"), &writer_spec(&spec)?)?;
    write(&writer.join("views").join(format!("{WRITER_VIEW}.sql")), "select * from lineitem\n")
}

/// Writes `text` to `path` (and its directory) unless it is already there.
fn write(path: &Path, text: &str) -> Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// The demo's spec with its sources read from the shared `../data`.
fn demo_spec(spec: &str) -> Result<String> {
    ensure!(spec.contains("path = \"data/"), "the demo's dfpipe.toml no longer reads its sources from data/");
    Ok(spec.replace("path = \"data/", "path = \"../data/"))
}

/// The writer pipeline's spec: the demo's `[profile]` (writer options included), the
/// `lineitem` source and one materialized view over it.
fn writer_spec(spec: &str) -> Result<String> {
    let start = spec.find("\n[profile]").context("the demo's dfpipe.toml has no [profile]")?;
    let end = spec[start..].find("\n[sources.").map_or(spec.len(), |i| start + i);
    let profile = spec[start..end].trim();
    Ok(format!(
        "[pipeline]\nname = \"lineitem_rewrite\"\noutput_dir = \"out\"\n\n{profile}\n\n\
         [sources.lineitem]\npath = \"../data/lineitem/\"\nformat = \"parquet\"\n\n\
         [views.{WRITER_VIEW}]\nmaterialize = \"parquet\"\n"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(args: &[&str]) -> Result<Options> {
        parse(&args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_parse_with_defaults() {
        assert_eq!(check(&["--peers"]).unwrap(), Options { scale_factor: 1.0, rounds: 3, dfpipe: None });
        assert_eq!(
            check(&["--peers", "--rounds", "5", "--scale-factor", "0.1", "--dfpipe", "target/debug/dfpipe"]).unwrap(),
            Options { scale_factor: 0.1, rounds: 5, dfpipe: Some(PathBuf::from("target/debug/dfpipe")) }
        );
    }

    #[test]
    fn bad_flags_are_named() {
        for (args, expected) in [
            (&["--peers", "--rounds", "0"][..], "--rounds takes a whole number of at least 1, not `0`"),
            (&["--peers", "--rounds"][..], "--rounds takes a value"),
            (
                &["--peers", "--scale-factor", "-1"][..],
                "--scale-factor takes a positive number, like 1 or 0.1, not `-1`",
            ),
            (&["--peers", "--scale-factor", "one"][..], "not `one`"),
            (&["--peers", "--threads", "4"][..], "does not know `--threads`"),
        ] {
            let error = check(args).unwrap_err().to_string();
            assert!(error.contains(expected), "{args:?}: {error}");
        }
    }

    #[test]
    fn the_writer_pipeline_keeps_the_demo_profile() {
        let spec = include_str!("../../examples/tpch/dfpipe.toml");
        let writer = writer_spec(spec).unwrap();
        assert!(writer.contains("[profile.writer]\ncompression = \"zstd(3)\""), "{writer}");
        assert!(writer.contains("target_partitions = 2"), "{writer}");
        assert_eq!(writer.matches("[sources.").count(), 1, "{writer}");
        assert!(!writer.contains("[contracts."), "{writer}");
        let demo = demo_spec(spec).unwrap();
        assert_eq!(demo.matches("path = \"../data/").count(), spec.matches("[sources.").count());
        assert!(demo_spec("[pipeline]\n").unwrap_err().to_string().contains("data/"));
    }
}
