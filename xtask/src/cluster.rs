//! `cargo xtask compare --cluster N`: the demo run by dfpipe on this machine alone, beside the
//! same run on 1 and on N `dfpipe worker` processes of this machine (issue 14).
//!
//! Every round runs each side as a whole process (`dfpipe run --full`, plan to commit), in
//! alternating order, on the data and the demo of `compare --peers`. The figures are
//! medians and their ratios to the run without a cluster: on one machine workers cannot be
//! faster, so what they show is the cost of cutting plans into stages and moving rows over
//! Arrow Flight.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

/// Views run at once on every side: `dfpipe run --workers`.
const THREADS: &str = "2";

/// What `compare --cluster` was asked for.
#[derive(Debug, PartialEq)]
pub(crate) struct Options {
    /// Workers of the largest cluster.
    workers: usize,
    scale_factor: f64,
    rounds: u32,
    /// The dfpipe binary; `None` builds it in release.
    dfpipe: Option<PathBuf>,
}

/// Parses `--cluster N [--scale-factor F] [--rounds N] [--dfpipe PATH]`.
pub(crate) fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options { workers: 2, scale_factor: 1.0, rounds: 3, dfpipe: None };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} takes a value"));
        let count = |text: &str, what: &str| {
            text.parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .with_context(|| format!("{what} takes a whole number of at least 1, not `{text}`"))
        };
        match flag.as_str() {
            "--cluster" => options.workers = count(value()?, "--cluster")? as usize,
            "--rounds" => options.rounds = count(value()?, "--rounds")?,
            "--scale-factor" => {
                let text = value()?;
                options.scale_factor = text
                    .parse()
                    .ok()
                    .filter(|f: &f64| *f > 0.0 && f.is_finite())
                    .with_context(|| format!("--scale-factor takes a positive number, not `{text}`"))?;
            }
            "--dfpipe" => options.dfpipe = Some(PathBuf::from(value()?)),
            other => bail!(
                "`compare --cluster` does not know `{other}`; it takes N, --scale-factor F, --rounds N and --dfpipe PATH"
            ),
        }
    }
    Ok(options)
}

/// A `dfpipe worker` on a free port of 127.0.0.1, stopped when dropped.
struct Worker {
    child: Child,
    address: String,
}

impl Worker {
    fn start(dfpipe: &Path) -> Result<Self> {
        let mut child = Command::new(dfpipe)
            .args(["worker", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("starting {} worker", dfpipe.display()))?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().context("the worker's stdout")?).read_line(&mut line)?;
        let address = line.trim().strip_prefix("dfpipe worker listening on ").map(str::to_owned);
        let Some(address) = address else {
            let _ = child.kill();
            bail!("the worker did not say where it listens: `{}`", line.trim());
        };
        Ok(Self { child, address })
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the comparison for `options` in the workspace at `root`.
pub(crate) fn run(root: &Path, options: &Options) -> Result<()> {
    let dfpipe = if let Some(path) = &options.dfpipe {
        path.clone()
    } else {
        crate::cargo(root, &["build", "--release", "-p", "dfpipe"], &[])?;
        root.join("target").join("release").join("dfpipe")
    };
    ensure!(dfpipe.is_file(), "the dfpipe binary {} does not exist; pass --dfpipe PATH", dfpipe.display());
    let work = root.join("target").join("dfpipe-peers").join(format!("sf-{}", options.scale_factor));
    crate::peers::generate(&dfpipe, &work, options.scale_factor)?;
    crate::peers::lay_out(root, &work)?;
    let demo = work.join("demo");
    let workers: Vec<Worker> = (0..options.workers).map(|_| Worker::start(&dfpipe)).collect::<Result<_>>()?;
    let addresses: Vec<&str> = workers.iter().map(|w| w.address.as_str()).collect();
    let mut sides = vec![("one machine".to_owned(), None), ("1 worker".to_owned(), Some(addresses[0].to_owned()))];
    if options.workers > 1 {
        sides.push((format!("{} workers", options.workers), Some(addresses.join(","))));
    }
    // A warm-up round, then timed rounds in alternating order.
    let mut times: Vec<Vec<Duration>> = vec![Vec::new(); sides.len()];
    for round in 0..=options.rounds {
        let mut order: Vec<usize> = (0..sides.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let took = time_run(&dfpipe, &demo, sides[i].1.as_deref())?;
            if round > 0 {
                times[i].push(took);
            }
        }
    }
    let medians: Vec<Duration> = times.iter_mut().map(|t| median(t)).collect();
    println!(
        "cluster: the demo at scale factor {}, `dfpipe run --full --workers {THREADS}`, median of {} rounds",
        options.scale_factor, options.rounds
    );
    println!("{:<14} {:>10} {:>8}", "side", "seconds", "ratio");
    for ((name, _), median) in sides.iter().zip(&medians) {
        println!("{name:<14} {:>10.2} {:>8.2}", median.as_secs_f64(), median.as_secs_f64() / medians[0].as_secs_f64());
    }
    Ok(())
}

/// One whole `dfpipe run --full` of `demo`, on `cluster` when given.
fn time_run(dfpipe: &Path, demo: &Path, cluster: Option<&str>) -> Result<Duration> {
    let mut command = Command::new(dfpipe);
    command.arg("run").arg(demo).args(["--full", "--workers", THREADS]).stdout(Stdio::null());
    if let Some(cluster) = cluster {
        command.args(["--cluster", cluster]);
    }
    let started = Instant::now();
    let status = command.status().with_context(|| format!("running {}", dfpipe.display()))?;
    let took = started.elapsed();
    ensure!(status.success(), "`dfpipe run` of {} failed (cluster: {})", demo.display(), cluster.unwrap_or("none"));
    Ok(took)
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(args: &[&str]) -> Result<Options> {
        parse(&args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn flags_parse_with_defaults() {
        let options = check(&["--cluster", "3", "--rounds", "5"]).unwrap();
        assert_eq!(options, Options { workers: 3, scale_factor: 1.0, rounds: 5, dfpipe: None });
        assert!(check(&["--cluster", "0"]).unwrap_err().to_string().contains("at least 1"));
        assert!(check(&["--cluster"]).unwrap_err().to_string().contains("takes a value"));
        assert!(check(&["--cluster", "2", "--wat"]).unwrap_err().to_string().contains("--wat"));
    }
}
