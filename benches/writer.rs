//! Comparison harness: TPC-H `lineitem` at scale factor 1, generated into memory, written to
//! zstd parquet by (a) DataFusion's writer with its default knobs, (b) dfpipe's writer with
//! the tuned knobs of `WriterKnobs::tuned`, and (c) a single-threaded arrow-rs `ArrowWriter`.
//!
//! Each configuration runs in a child process of this binary, so that its peak resident
//! memory (`VmHWM`) is its own. Multi-second iterations make criterion's sampling pointless,
//! so this is a plain `harness = false` main. Options: `DFPIPE_BENCH_SF` (default 1),
//! `DFPIPE_BENCH_ROUNDS` (default 5), `DFPIPE_BENCH_CONFIGS` (default `a,b,c`; `x` takes
//! its knobs from `DFPIPE_BENCH_KNOBS=files,row_group_writers,buffered_batches,single_file_parallelism`).
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fs::File;
use std::sync::Arc;
use std::time::Instant;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use dfpipe_writer::{WriteSpec, WriterKnobs, write};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use tpchgen::generators::LineItemGenerator;
use tpchgen_arrow::LineItemArrow;

const CHILD: &str = "DFPIPE_WRITER_BENCH_CHILD";

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is ignored.
    if let Ok(config) = std::env::var(CHILD) {
        child(&config);
        return;
    }
    let sf = env_or("DFPIPE_BENCH_SF", "1");
    let rounds: usize = env_or("DFPIPE_BENCH_ROUNDS", "5").parse().expect("a round count");
    let configs = env_or("DFPIPE_BENCH_CONFIGS", "a,b,c");
    let configs: Vec<&str> = configs.split(',').collect();
    let exe = std::env::current_exe().expect("the bench binary");
    // Rounds interleave the configurations, so that load from elsewhere on the machine falls
    // on all of them alike; every run is a fresh process, so its peak memory is its own.
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); configs.len()];
    for round in 0..rounds {
        for (i, config) in configs.iter().enumerate() {
            let output = std::process::Command::new(&exe)
                .env(CHILD, config)
                .stderr(std::process::Stdio::inherit())
                .output()
                .expect("the child process");
            assert!(output.status.success(), "configuration {config} failed");
            let run = Run::parse(&String::from_utf8_lossy(&output.stdout));
            eprintln!("round {round} {config}: {:.2} s, load {}", run.seconds, load_average());
            runs[i].push(run);
        }
    }
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!("lineitem SF {sf}, zstd(3), {cores} cores, {rounds} rounds; times are min / median");
    println!(
        "{:<42} {:>9} {:>13} {:>15} {:>15} {:>9} {:>9} {:>9}",
        "configuration", "rows", "seconds", "Mrows/s", "in MB/s", "out MB", "data MiB", "peak MiB"
    );
    for (config, mut runs) in configs.iter().zip(runs) {
        runs.sort_by(|a, b| a.seconds.total_cmp(&b.seconds));
        let (best, median) = (&runs[0], &runs[runs.len() / 2]);
        let rate = |run: &Run, amount: f64| amount / run.seconds / 1e6;
        println!(
            "{:<42} {:>9} {:>6.2} / {:<5.2} {:>6.2} / {:<6.2} {:>6.0} / {:<6.0} {:>9.1} {:>9.0} {:>9.0}",
            label(config),
            best.rows,
            best.seconds,
            median.seconds,
            rate(best, best.rows as f64),
            rate(median, median.rows as f64),
            rate(best, best.in_bytes as f64),
            rate(median, median.in_bytes as f64),
            best.out_bytes as f64 / 1e6,
            runs.iter().map(|r| r.data_kib).max().unwrap_or(0) as f64 / 1024.0,
            runs.iter().map(|r| r.peak_kib).max().unwrap_or(0) as f64 / 1024.0,
        );
    }
}

/// One timed write, as a child reports it.
#[derive(Clone)]
struct Run {
    seconds: f64,
    rows: u64,
    in_bytes: u64,
    out_bytes: u64,
    data_kib: u64,
    peak_kib: u64,
}

impl Run {
    fn parse(text: &str) -> Self {
        let fields: Vec<&str> = text.split_whitespace().collect();
        let n = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok()).expect("a child's report");
        Self {
            seconds: fields.first().and_then(|f| f.parse().ok()).expect("a child's report"),
            rows: n(1),
            in_bytes: n(2),
            out_bytes: n(3),
            data_kib: n(4),
            peak_kib: n(5),
        }
    }
}

fn label(config: &str) -> &'static str {
    match config {
        "a" => "(a) DataFusion writer, default knobs",
        "b" => "(b) dfpipe writer, tuned knobs",
        "c" => "(c) arrow-rs ArrowWriter, 1 thread",
        "x" => "(x) DataFusion writer, DFPIPE_BENCH_KNOBS",
        other => panic!("unknown configuration {other}"),
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg").unwrap_or_default().split_whitespace().next().unwrap_or("?").to_owned()
}

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

/// Runs one configuration and prints its row of the table.
fn child(config: &str) {
    let sf: f64 = env_or("DFPIPE_BENCH_SF", "1").parse().expect("a scale factor");
    let partitions = 2;
    // Generated in two parts, one per core, as two in-memory partitions.
    let parts: Vec<Vec<RecordBatch>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (1..=partitions)
            .map(|part| {
                scope.spawn(move || {
                    let generator = LineItemGenerator::new(sf, part as i32, partitions as i32);
                    LineItemArrow::new(generator)
                        .with_batch_size(8192)
                        .collect::<Result<Vec<_>, _>>()
                        .expect("lineitem batches")
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("the generator")).collect()
    });
    let schema = LineItemArrow::schema_ref();
    let rows: usize = parts.iter().flatten().map(RecordBatch::num_rows).sum();
    let in_bytes: usize = parts.iter().flatten().map(RecordBatch::get_array_memory_size).sum();
    let data_rss = vm_kib("VmRSS");

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(partitions).enable_all().build().unwrap();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let target = dir.path().join("out");
    let started = Instant::now();
    let out_bytes = if config == "c" {
        std::fs::create_dir_all(&target).unwrap();
        let file = File::create(target.join("part-0.parquet")).unwrap();
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap()))
            .set_max_row_group_row_count(Some(1024 * 1024))
            .build();
        let mut writer = ArrowWriter::try_new(file, Arc::clone(&schema), Some(props)).unwrap();
        for batch in parts.iter().flatten() {
            writer.write(batch).unwrap();
        }
        writer.close().unwrap();
        std::fs::metadata(target.join("part-0.parquet")).unwrap().len()
    } else {
        let knobs = match config {
            "b" => WriterKnobs::tuned(partitions),
            "x" => custom_knobs(),
            _ => WriterKnobs::default(),
        };
        let spec = WriteSpec {
            target: target.to_string_lossy().into_owned(),
            options: [("compression".to_owned(), "zstd(3)".to_owned())].into(),
            knobs,
            ..WriteSpec::default()
        };
        let config = SessionConfig::new().with_target_partitions(partitions);
        let ctx = SessionContext::new_with_config(config);
        let table = MemTable::try_new(Arc::clone(&schema), parts.clone()).unwrap();
        ctx.register_table("lineitem", Arc::new(table)).unwrap();
        runtime.block_on(async {
            let plan = ctx.sql("select * from lineitem").await.unwrap().create_physical_plan().await.unwrap();
            let report = write(plan, &ctx.state(), &spec).await.unwrap().commit().await.unwrap();
            assert_eq!(report.rows as usize, rows);
            report.bytes
        })
    };
    let seconds = started.elapsed().as_secs_f64();
    // seconds rows in_bytes out_bytes data_kib peak_kib
    println!("{seconds} {rows} {in_bytes} {out_bytes} {data_rss} {}", vm_kib("VmHWM"));
}

/// Knobs from `DFPIPE_BENCH_KNOBS`: `files,row_group_writers,buffered_batches,single_file_parallelism`.
fn custom_knobs() -> WriterKnobs {
    let text = env_or("DFPIPE_BENCH_KNOBS", "4,1,2,true");
    let fields: Vec<&str> = text.split(',').collect();
    let n = |i: usize| fields.get(i).and_then(|f| f.parse().ok());
    let knobs = WriterKnobs {
        minimum_parallel_output_files: n(0),
        soft_max_rows_per_output_file: None,
        maximum_parallel_row_group_writers: n(1),
        maximum_buffered_record_batches_per_stream: n(2),
        allow_single_file_parallelism: fields.get(3).and_then(|f| f.parse().ok()),
    };
    eprintln!("(x) knobs: {knobs:?}");
    knobs
}

/// A `kB` line of `/proc/self/status`, like `VmHWM` (peak resident set) or `VmRSS`.
fn vm_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':')?.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or(0)
}
