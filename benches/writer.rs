//! Comparison harness: TPC-H `lineitem` at scale factor 1, generated into memory, written to
//! zstd parquet by (a) DataFusion's writer with its default knobs, (b) dfpipe's writer with
//! the tuned knobs of `WriterKnobs::tuned`, and (c) a single-threaded arrow-rs `ArrowWriter`.
//!
//! Each configuration runs in a child process of this binary, so that its peak resident
//! memory (`VmHWM`) is its own. Multi-second iterations make criterion's sampling pointless,
//! so this is a plain `harness = false` main. Options: `DFPIPE_BENCH_SF` (default 1),
//! `DFPIPE_BENCH_ITERATIONS` (default 3), `DFPIPE_BENCH_CONFIGS` (default `a,b,c`; `x` takes
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
    let configs = env_or("DFPIPE_BENCH_CONFIGS", "a,b,c");
    let exe = std::env::current_exe().expect("the bench binary");
    println!("lineitem SF {sf}, zstd(3), {} cores", std::thread::available_parallelism().map_or(0, usize::from));
    println!(
        "{:<44} {:>10} {:>12} {:>9} {:>9} {:>9} {:>10} {:>10}",
        "configuration", "rows", "median s", "Mrows/s", "in MB/s", "out MB/s", "data MiB", "peak MiB"
    );
    for config in configs.split(',') {
        let output = std::process::Command::new(&exe)
            .env(CHILD, config)
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("the child process");
        assert!(output.status.success(), "configuration {config} failed");
        print!("{}", String::from_utf8_lossy(&output.stdout));
    }
}

fn env_or(key: &str, default: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| default.to_owned())
}

/// Runs one configuration and prints its row of the table.
fn child(config: &str) {
    let sf: f64 = env_or("DFPIPE_BENCH_SF", "1").parse().expect("a scale factor");
    let iterations: usize = env_or("DFPIPE_BENCH_ITERATIONS", "3").parse().expect("an iteration count");
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
    let mut times = Vec::new();
    let mut out_bytes = 0;
    let label = match config {
        "a" => "(a) DataFusion writer, default knobs",
        "b" => "(b) dfpipe writer, tuned knobs",
        "c" => "(c) arrow-rs ArrowWriter, 1 thread",
        "x" => "(x) DataFusion writer, DFPIPE_BENCH_KNOBS",
        other => panic!("unknown configuration {other}"),
    };
    for iteration in 0..iterations {
        let target = dir.path().join(format!("out-{iteration}"));
        let started = Instant::now();
        out_bytes = if config == "c" {
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
        times.push(started.elapsed().as_secs_f64());
        std::fs::remove_dir_all(&target).unwrap();
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let mib = |kib: u64| kib as f64 / 1024.0;
    println!(
        "{label:<44} {rows:>10} {median:>12.2} {:>9.2} {:>9.1} {:>9.1} {:>10.0} {:>10.0}",
        rows as f64 / median / 1e6,
        in_bytes as f64 / median / 1e6,
        out_bytes as f64 / median / 1e6,
        mib(data_rss),
        mib(vm_kib("VmHWM")),
    );
    eprintln!("{label}: times {times:.2?} s, output {:.1} MB", out_bytes as f64 / 1e6);
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
