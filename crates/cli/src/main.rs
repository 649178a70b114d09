//! The `dfpipe` command line: plan-first pipelines of views on DataFusion.

// Printing is what a command line does; library crates are held to `print_stdout`.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod openlineage;
mod output;
mod show;

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand, ValueEnum};
use dfpipe_demo::DemoError;
use dfpipe_engine::{CancelToken, EngineError, Event, Pipeline, RunOptions, RunStatus};
use indicatif::{ProgressBar, ProgressStyle};

/// dfpipe runs pipelines of SQL views on Apache DataFusion, plan first: every view is planned,
/// fingerprinted and scheduled before anything executes.
#[derive(Debug, Parser)]
#[command(
    name = "dfpipe",
    version,
    after_help = "Exit codes: 0 success, 1 a view or contract failed, 2 usage or specification error, \
                  3 internal or environment failure (IO, the store, a bug).\n\
                  Environment: RUST_LOG sets log levels (logs go to stderr); DFPIPE_DEMO_DIR is where the \
                  built-in demo is laid out (default: the system temporary directory)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Plan every view, then execute those whose fingerprint changed, and commit their outputs.
    Run {
        #[command(flatten)]
        pipeline: PipelineArgs,
        /// Execute every view, changed or not.
        #[arg(long)]
        full: bool,
        /// Execute only these views (repeat the flag or separate with commas).
        #[arg(long, value_name = "VIEW", value_delimiter = ',', num_args = 1..)]
        select: Vec<String>,
        /// How many views execute at once.
        #[arg(long, value_name = "N", default_value_t = default_workers())]
        workers: usize,
        /// Start no view after the first failure (views already running finish).
        #[arg(long)]
        fail_fast: bool,
        /// Re-rank the views still to run by the durations measured as the run goes.
        #[arg(long)]
        dynamic: bool,
        /// One run of a pipeline at a time: wait up to SECONDS for another run of it to end
        /// (its lock is `.dfpipe/run.lock`), then give up with exit code 2, naming that run.
        /// 0 refuses at once.
        #[arg(long, value_name = "SECONDS", default_value_t = 0.0)]
        lock_timeout: f64,
        /// Send OpenLineage run events to the endpoint at URL (to `URL/api/v1/lineage`, with
        /// the key of $OPENLINEAGE_API_KEY if set), or append them to a file with file:PATH.
        /// Wins over `[openlineage] url` of dfpipe.toml. Failing to send is only a warning.
        #[arg(long, value_name = "URL|file:PATH")]
        openlineage: Option<String>,
        /// Print one JSON document on stdout instead of the summary table.
        #[arg(long)]
        json: bool,
    },
    /// Plan every view and execute nothing: the DAG, fingerprints, what would run, and the
    /// predicted schedule.
    Plan {
        #[command(flatten)]
        pipeline: PipelineArgs,
        /// How many workers the predicted schedule uses.
        #[arg(long, value_name = "N", default_value_t = default_workers())]
        workers: usize,
        /// Print one JSON document on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Show which relations, columns and functions each view reads, from its plan.
    Lineage {
        #[command(flatten)]
        pipeline: PipelineArgs,
        /// Show only this view.
        #[arg(long, value_name = "VIEW")]
        view: Option<String>,
        /// Resolve lineage through views down to the sources.
        #[arg(long)]
        deep: bool,
        /// Output format: text, json, dot for Graphviz, or openlineage: one OpenLineage event
        /// per view (JSON lines), with the facets `run --openlineage` sends.
        #[arg(long, value_enum, default_value_t = LineageFormat::Text)]
        format: LineageFormat,
    },
    /// Show one view's captured plan.
    Explain {
        #[command(flatten)]
        pipeline: PipelineArgs,
        /// The view to explain.
        #[arg(long, value_name = "VIEW")]
        view: String,
        /// Which form of the plan to show.
        #[arg(long, value_enum, default_value_t = ExplainFormat::Optimized)]
        format: ExplainFormat,
    },
    /// Check the declared contracts (keys, not-null, foreign keys) on the sources and on the
    /// committed outputs of materialized views.
    Check {
        #[command(flatten)]
        pipeline: PipelineArgs,
        /// Print one JSON document on stdout.
        #[arg(long)]
        json: bool,
        /// Sample rows reported per violated constraint.
        #[arg(long, value_name = "N", default_value_t = 5)]
        samples: usize,
    },
    /// Show what changed between two recorded runs: views, fingerprint ingredients, schema,
    /// settings and plans, each change categorized as breaking, non-breaking or metadata.
    Diff {
        #[command(flatten)]
        pipeline: PipelineArgs,
        /// The older run (default: the run before `--to`).
        #[arg(long, value_name = "RUN")]
        from: Option<String>,
        /// The newer run (default: the latest).
        #[arg(long, value_name = "RUN")]
        to: Option<String>,
        /// Print one JSON document on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Stream a view's rows to stdout and write nothing: no output, nothing recorded (like
    /// `dbt show`). The view runs from its plan, lazy or materialized, with its parameters
    /// bound; a materialized view it reads is read from its committed output (empty before
    /// its first run).
    Show {
        #[command(flatten)]
        pipeline: PipelineArgs,
        /// The view to show.
        #[arg(long, value_name = "VIEW")]
        view: String,
        /// Stop after N rows. Default: 20 rows for `table`, every row for the other formats,
        /// which stream in bounded memory whatever the view's size.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// How the rows are written.
        #[arg(long, value_enum, default_value_t = show::ShowFormat::Table)]
        format: show::ShowFormat,
    },
    /// Write one self-contained HTML page of the pipeline: the DAG coloured by each view's
    /// last status, columns and lineage down to the sources, the last run's Gantt chart
    /// beside the predicted schedule, and per view its tree explain, last write, contract
    /// results and diff against the previous run. Plans and checks contracts; runs no view.
    /// The page fetches nothing when opened.
    Report {
        #[command(flatten)]
        pipeline: PipelineArgs,
        /// Where to write the page (default: `<DIR>/.dfpipe/report.html`, beside the store).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// How many workers the predicted schedule uses before any run.
        #[arg(long, value_name = "N", default_value_t = default_workers())]
        workers: usize,
    },
    /// Serve as a cluster worker: run the stages of plans that `dfpipe run --cluster` sends,
    /// until Ctrl-C or SIGTERM. Prints the address it listens on once it is ready.
    Worker {
        /// Where to listen, HOST:PORT (port 0 picks a free one).
        #[arg(long, value_name = "HOST:PORT")]
        listen: String,
    },
    /// Generate data sets.
    Gen {
        #[command(subcommand)]
        what: GenCommand,
    },
}

#[derive(Debug, Subcommand)]
enum GenCommand {
    /// Write the eight TPC-H tables as parquet, one directory per table.
    Tpch {
        /// TPC-H scale factor: 1 is about 6 million lineitem rows.
        #[arg(long, value_name = "F")]
        scale_factor: f64,
        /// The directory to write `<table>/part-N.parquet` under.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
}

#[derive(Debug, Args)]
struct PipelineArgs {
    /// The pipeline directory, holding dfpipe.toml and views/. Without it, the built-in
    /// TPC-H demo is used.
    #[arg(value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Scale factor of the built-in demo's generated data (ignored with DIR).
    #[arg(long, value_name = "F", default_value_t = 0.1)]
    scale_factor: f64,
    /// A view parameter, over the value in dfpipe.toml: VIEW.NAME=VALUE, where VALUE is a
    /// TOML value (10, "text", [1, 2], 1994-01-01) or else text. Repeat for more.
    #[arg(long = "param", value_name = "VIEW.NAME=VALUE")]
    params: Vec<String>,
    /// Run the views' plans on these `dfpipe worker`s, over `[cluster] workers` of
    /// dfpipe.toml (repeat the flag or separate with commas).
    #[arg(long, value_name = "HOST:PORT", value_delimiter = ',', num_args = 1..)]
    cluster: Vec<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LineageFormat {
    Text,
    Json,
    Dot,
    Openlineage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ExplainFormat {
    /// The logical plan as written.
    Logical,
    /// The optimized logical plan.
    Optimized,
    /// The physical plan.
    Physical,
    /// The physical plan drawn as a tree (`EXPLAIN FORMAT TREE`).
    Tree,
    /// The plan after each optimizer rule that changed it (`EXPLAIN VERBOSE`).
    Verbose,
    /// The physical plan with the metrics of its last execution (`EXPLAIN ANALYZE`).
    Analyze,
    /// The Substrait plan bytes, hex encoded.
    Substrait,
    /// The logical plan unparsed to SQL.
    Sql,
    /// The whole plan bundle, as JSON.
    Bundle,
    /// The report of the view's last write: files, rows, bytes, options and knobs, as JSON.
    Write,
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let json = matches!(
        cli.command,
        Command::Run { json: true, .. }
            | Command::Plan { json: true, .. }
            | Command::Check { json: true, .. }
            | Command::Diff { json: true, .. }
    ) || matches!(cli.command, Command::Lineage { format: LineageFormat::Json, .. });
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(execute(cli.command)) {
        Ok(code) => code,
        Err(error) => {
            output::error(&error, json);
            ExitCode::from(if error.is_internal() { 3 } else { 2 })
        }
    }
}

async fn execute(command: Command) -> Result<ExitCode, EngineError> {
    match command {
        Command::Run { pipeline, full, select, workers, fail_fast, dynamic, lock_timeout, openlineage, json } => {
            let params = pipeline.params.clone();
            let lock_timeout =
                std::time::Duration::try_from_secs_f64(lock_timeout).map_err(|e| EngineError::Usage {
                    flag: "--lock-timeout".to_owned(),
                    message: format!("`{lock_timeout}` is not a number of seconds: {e}"),
                })?;
            let target = openlineage
                .map(|t| dfpipe_openlineage::Target::parse(&t))
                .transpose()
                .map_err(|e| EngineError::Usage { flag: "--openlineage".to_owned(), message: e.to_string() })?;
            let pipeline = load(&pipeline)?;
            let target = target
                .or_else(|| pipeline.spec().openlineage.as_ref().and_then(dfpipe_engine::OpenLineageSection::target));
            let cancel = CancelToken::new();
            stop_on_ctrl_c(&cancel);
            let options = RunOptions {
                full,
                select,
                workers,
                params,
                fail_fast,
                dynamic,
                cancel,
                lock_timeout: Some(lock_timeout),
                ..RunOptions::default()
            };
            let planned = pipeline.plan(&options).await?;
            if options.cancel.is_cancelled() {
                eprintln!("cancelled while planning: nothing ran");
                return Ok(ExitCode::from(1));
            }
            let events = target.and_then(|target| openlineage::Events::start(target, &planned));
            let bar = progress_bar(json);
            let shown = bar.clone();
            let followed = events.clone();
            let report = planned
                .run(Arc::new(move |event| {
                    if let Some(events) = &followed {
                        events.on(&event);
                    }
                    if let Some(bar) = &shown {
                        match event {
                            Event::Started { total } => bar.set_length(total as u64),
                            Event::ViewStarted { view } => bar.set_message(view),
                            Event::ViewFinished { .. } => bar.inc(1),
                        }
                    }
                }))
                .await;
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            if let Some(events) = events {
                events.finish(&pipeline, report.as_ref()).await;
            }
            let report = report?;
            output::run(&report, json);
            Ok(if report.status == RunStatus::Succeeded { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Plan { pipeline, workers, json } => {
            let params = pipeline.params.clone();
            let planned = load(&pipeline)?.plan(&RunOptions { workers, params, ..RunOptions::default() }).await?;
            output::plan(&planned.report()?, json);
            Ok(ExitCode::SUCCESS)
        }
        Command::Lineage { pipeline, view, deep, format } => {
            if deep && matches!(format, LineageFormat::Openlineage) {
                return Err(EngineError::Usage {
                    flag: "--deep".to_owned(),
                    message: "OpenLineage events name the relations each view reads, sources and views alike; \
                              drop --deep with --format openlineage"
                        .to_owned(),
                });
            }
            let params = pipeline.params.clone();
            let planned = load(&pipeline)?.plan(&RunOptions { workers: 1, params, ..RunOptions::default() }).await?;
            let mut report = planned.lineage(deep);
            if let Some(view) = view {
                if planned.bundle(&view).is_none() {
                    return Err(planned.unknown_view(&view));
                }
                report.views.retain(|v| v.name == view);
            }
            match format {
                LineageFormat::Text => output::lineage_text(&report),
                LineageFormat::Json => output::json(&report),
                LineageFormat::Dot => output::lineage_dot(&report),
                LineageFormat::Openlineage => {
                    let mut jobs = planned.openlineage_with_last_writes()?;
                    jobs.views.retain(|v| report.views.iter().any(|r| r.name == v.name));
                    for event in jobs.static_events(chrono::Utc::now()) {
                        output::say!("{}", serde_json::to_string(&event).unwrap_or_default());
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Explain { pipeline, view, format } => {
            let options = RunOptions {
                workers: 1,
                explain_verbose: format == ExplainFormat::Verbose,
                params: pipeline.params.clone(),
                ..RunOptions::default()
            };
            let planned = load(&pipeline)?.plan(&options).await?;
            let bundle = planned.bundle(&view).ok_or_else(|| planned.unknown_view(&view))?;
            let text = match format {
                ExplainFormat::Logical => bundle.logical.clone(),
                ExplainFormat::Optimized => bundle.optimized.clone(),
                ExplainFormat::Physical => planned.distributed_plan(&view).unwrap_or_else(|| bundle.physical.clone()),
                ExplainFormat::Tree => bundle.tree.clone(),
                ExplainFormat::Verbose => output::verbose(bundle),
                ExplainFormat::Analyze => match planned.executed_bundle(&view)? {
                    Some(executed) => output::analyze(&executed),
                    None => format!(
                        "view `{view}` has not run with its current plan, so there are no metrics yet; \
                         run `dfpipe run` first (lazy views never execute on their own)"
                    ),
                },
                ExplainFormat::Substrait => match &bundle.substrait_fallback {
                    Some(reason) => format!("no Substrait plan: {reason}"),
                    None => bundle.substrait.iter().fold(String::new(), |mut hex, b| {
                        use std::fmt::Write;
                        let _ = write!(hex, "{b:02x}");
                        hex
                    }),
                },
                ExplainFormat::Sql => match planned.unparsed(&view).await.unwrap_or_default() {
                    dfpipe_engine::Unparsed { sql: Some(sql), error: None } => sql,
                    dfpipe_engine::Unparsed { sql: Some(sql), error: Some(error) } => format!("{sql}\n-- {error}"),
                    dfpipe_engine::Unparsed { sql: None, error } => {
                        format!("-- cannot unparse: {}", error.as_deref().unwrap_or("unknown"))
                    }
                },
                ExplainFormat::Bundle => serde_json::to_string_pretty(bundle).unwrap_or_default(),
                ExplainFormat::Write => match planned.last_write(&view)? {
                    Some((run_id, report)) => format!(
                        "-- the last write of `{view}`, in run {run_id}\n{}",
                        serde_json::to_string_pretty(&report).unwrap_or_default()
                    ),
                    None => format!(
                        "view `{view}` has no recorded write; run `dfpipe run` first (lazy views are never written)"
                    ),
                },
            };
            output::say!("{}", text.trim_end());
            Ok(ExitCode::SUCCESS)
        }
        Command::Diff { pipeline, from, to, json } => {
            let diff = load(&pipeline)?.diff(from.as_deref(), to.as_deref())?;
            output::diff(&diff, json);
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { pipeline, json, samples } => {
            let pipeline = load(&pipeline)?;
            let report = pipeline.check(samples).await?;
            output::check(&report, json);
            Ok(if report.passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
        }
        Command::Show { pipeline, view, limit, format } => {
            let params = pipeline.params.clone();
            let planned = load(&pipeline)?.plan(&RunOptions { workers: 1, params, ..RunOptions::default() }).await?;
            show::show(&planned, &view, limit, format).await
        }
        Command::Report { pipeline, out, workers } => {
            let params = pipeline.params.clone();
            let pipeline = load(&pipeline)?;
            let page = pipeline.html_report(&RunOptions { workers, params, ..RunOptions::default() }).await?;
            let out = out.unwrap_or_else(|| pipeline.dir().join(".dfpipe").join("report.html"));
            write_report(&out, &page)?;
            output::say!("{}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker { listen } => worker(&listen).await,
        Command::Gen { what: GenCommand::Tpch { scale_factor, out } } => {
            let rows = dfpipe_demo::generate(scale_factor, &out, default_workers()).map_err(demo_error)?;
            for (table, n) in rows {
                output::say!("{table:<10} {n:>12} rows  {}", out.join(table).display());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Loads the pipeline in `args.dir`, or prepares the built-in demo.
fn load(args: &PipelineArgs) -> Result<Pipeline, EngineError> {
    let dir = if let Some(dir) = &args.dir {
        dir.clone()
    } else {
        let base =
            std::env::var_os("DFPIPE_DEMO_DIR").map_or_else(|| std::env::temp_dir().join("dfpipe-demo"), PathBuf::from);
        let dir = base.join(format!("sf-{}", args.scale_factor));
        tracing::info!(dir = %dir.display(), "preparing the built-in TPC-H demo");
        dfpipe_demo::prepare_demo(&dir, args.scale_factor).map_err(demo_error)?
    };
    let pipeline = Pipeline::load(dir)?;
    if args.cluster.is_empty() { Ok(pipeline) } else { pipeline.with_cluster(&args.cluster) }
}

/// `dfpipe worker`: serves until Ctrl-C or SIGTERM.
async fn worker(listen: &str) -> Result<ExitCode, EngineError> {
    use tokio::signal::unix::{SignalKind, signal};
    // Both handlers are in place before the worker says it is ready.
    let handler = |kind: SignalKind| {
        signal(kind).map_err(|e| EngineError::Internal(format!("cannot handle the signals that stop a worker: {e}")))
    };
    let (mut interrupt, mut terminate) = (handler(SignalKind::interrupt())?, handler(SignalKind::terminate())?);
    let shutdown = async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        eprintln!("worker stopping");
    };
    let ready = |address: std::net::SocketAddr| {
        output::say!("dfpipe worker listening on {address}");
    };
    dfpipe_cluster::serve(listen, ready, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}

/// A demo failure as the engine's errors say it: a bad `--scale-factor` is a usage error, a
/// write that fails an environment one.
fn demo_error(error: DemoError) -> EngineError {
    match error {
        DemoError::ScaleFactor(_) => {
            EngineError::Usage { flag: "--scale-factor".to_owned(), message: error.to_string() }
        }
        DemoError::Io { action, path, source } => EngineError::Io { action, path, source },
    }
}

/// Writes the report page to `out`, creating its directory; a failure names the file.
fn write_report(out: &std::path::Path, page: &str) -> Result<(), EngineError> {
    if out.is_dir() {
        return Err(EngineError::Usage {
            flag: "--out".to_owned(),
            message: format!(
                "{} is a directory; give the file to write, like {}",
                out.display(),
                out.join("report.html").display()
            ),
        });
    }
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|source| EngineError::Io {
            action: "cannot create",
            path: dir.to_owned(),
            source,
        })?;
    }
    std::fs::write(out, page).map_err(|source| EngineError::Io { action: "cannot write", path: out.to_owned(), source })
}

fn progress_bar(json: bool) -> Option<ProgressBar> {
    if json || !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new(0);
    if let Ok(style) = ProgressStyle::with_template("{spinner} [{elapsed}] {pos}/{len} views  {msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(bar)
}

/// The first Ctrl-C cancels the run: no view starts after it, and running views stop before
/// their commit, so every output stays whole. A second Ctrl-C exits at once; the next run
/// cleans up what that leaves behind.
fn stop_on_ctrl_c(cancel: &CancelToken) {
    let cancel = cancel.clone();
    let installed = ctrlc::set_handler(move || {
        if cancel.is_cancelled() {
            eprintln!("\nstopped");
            std::process::exit(130);
        }
        eprintln!("\nstopping: no new view starts, running views stop before their commit (Ctrl-C again to quit now)");
        cancel.cancel();
    });
    if let Err(e) = installed {
        tracing::warn!("cannot handle Ctrl-C, which will stop the run at once: {e}");
    }
}
