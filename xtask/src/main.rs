//! `cargo xtask`: project automation for dfpipe.
//!
//! - `cargo xtask golden`: regenerate the insta snapshots under `golden/`.
//! - `cargo xtask tidy`: check crate layering, module doc headers, and no should_panic attributes.
//! - `cargo xtask ci`: what `.ci/run` runs: fmt, clippy, tidy and the tests.
//! - `cargo xtask fuzz [--seconds N] [--cases N]`: the `fuzz_*` property tests (the
//!   `dfpipe.toml` loader, the store's decoder, the view SQL entry) with N cases each
//!   (`DFPIPE_FUZZ_CASES`, default 20000), round after round with new seeds, for N seconds.
//! - `cargo xtask compare [SCALE_FACTOR]`: the TPC-H demo through dfpipe beside plain
//!   DataFusion, in one process, in release mode (`benches/compare.rs`; default scale factor 1).
//! - `cargo xtask compare --peers [--scale-factor F] [--rounds N] [--dfpipe PATH]`: the demo
//!   and the `lineitem` rewrite by dfpipe beside DuckDB and Polars, whole processes in
//!   alternating rounds (`peers.rs`, `benches/scripts/peers.py`).
//! - `cargo xtask compare --cluster N [--scale-factor F] [--rounds N] [--dfpipe PATH]`: the
//!   demo run on this machine alone beside the same run on 1 and N local `dfpipe worker`s,
//!   whole processes in alternating rounds, as ratios (`cluster.rs`).

// Printing is what a command line does; library crates are held to `print_stdout`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod cluster;
mod peers;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = project_root();
    match args.first().map(String::as_str) {
        Some("golden") => golden(&root),
        Some("tidy") => {
            let problems = tidy::check(&root)?;
            if problems.is_empty() {
                println!("tidy: ok");
                Ok(())
            } else {
                for p in &problems {
                    eprintln!("tidy: {p}");
                }
                bail!("tidy found {} problem(s)", problems.len())
            }
        }
        Some("ci") => ci(&root),
        Some("fuzz") => fuzz(&root, &args[1..]),
        Some("compare") if args.iter().any(|a| a == "--peers") => peers::run(&root, &peers::parse(&args[1..])?),
        Some("compare") if args.iter().any(|a| a == "--cluster") => cluster::run(&root, &cluster::parse(&args[1..])?),
        Some("compare") => {
            let scale_factor = args.get(1).map_or("1", String::as_str);
            cargo(
                root.as_path(),
                &["bench", "--workspace", "--bench", "compare"],
                &[("DFPIPE_COMPARE_SF", scale_factor)],
            )
        }
        _ => {
            eprintln!(
                "usage: cargo xtask <golden|tidy|ci|fuzz [--seconds N] [--cases N]|compare [SCALE_FACTOR]|compare --peers [--scale-factor F] [--rounds N] [--dfpipe PATH]|compare --cluster N [--scale-factor F] [--rounds N] [--dfpipe PATH]>"
            );
            std::process::exit(2);
        }
    }
}

/// The workspace root: the parent of this crate's directory.
fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn cargo(root: &Path, args: &[&str], envs: &[(&str, &str)]) -> Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(&cargo);
    // What `cargo run` set for this xtask is not the build's: a package's variables make
    // build scripts that read them (ring's) rerun, and DataFusion rebuild behind them.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
            ]
            .contains(&key.as_ref())
        {
            command.env_remove(key.as_ref());
        }
    }
    let status = command
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(root)
        .status()
        .with_context(|| format!("running {cargo} {}", args.join(" ")))?;
    if !status.success() {
        bail!("`cargo {}` failed", args.join(" "));
    }
    Ok(())
}

fn golden(root: &Path) -> Result<()> {
    cargo(root, &["test", "--workspace", "--", "golden"], &[("INSTA_UPDATE", "always"), ("INSTA_FORCE_PASS", "1")])?;
    println!("golden snapshots regenerated under golden/; review them with `git diff golden/`");
    Ok(())
}

/// `cargo xtask fuzz`: rounds of the `fuzz_*` tests, each with fresh random seeds and
/// `--cases` inputs per strategy, until `--seconds` have passed (at least one round).
fn fuzz(root: &Path, args: &[String]) -> Result<()> {
    let flag = |name: &str, default: u64| -> Result<u64> {
        match args.iter().position(|a| a == name) {
            None => Ok(default),
            Some(i) => args.get(i + 1).and_then(|v| v.parse().ok()).with_context(|| format!("{name} takes a number")),
        }
    };
    let (seconds, cases) = (flag("--seconds", 60)?, flag("--cases", 20_000)?);
    let started = std::time::Instant::now();
    let mut rounds = 0;
    while rounds == 0 || started.elapsed().as_secs() < seconds {
        rounds += 1;
        println!("fuzz: round {rounds}, {cases} inputs per strategy");
        let cases = cases.to_string();
        cargo(root, &["test", "--workspace", "--tests", "--", "fuzz_"], &[("DFPIPE_FUZZ_CASES", &cases)])?;
    }
    println!("fuzz: {rounds} round(s) in {}s, no panic", started.elapsed().as_secs());
    Ok(())
}

fn ci(root: &Path) -> Result<()> {
    cargo(root, &["fmt", "--all", "--", "--check"], &[])?;
    cargo(root, &["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"], &[])?;
    cargo(root, &["test", "--workspace"], &[("INSTA_UPDATE", "no")])
}
