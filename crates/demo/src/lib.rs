//! The built-in dfpipe demo: TPC-H data generated in-process with tpchgen-arrow and written
//! as parquet, and the example pipeline of `examples/tpch/` (embedded) laid out beside it.
//!
//! The command line composes it (`dfpipe gen tpch`, and every command run without a pipeline
//! directory); the engine knows nothing about it.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatchReader;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use tpchgen::generators::{
    CustomerGenerator, LineItemGenerator, NationGenerator, OrderGenerator, PartGenerator, PartSuppGenerator,
    RegionGenerator, SupplierGenerator,
};
use tpchgen_arrow::{
    CustomerArrow, LineItemArrow, NationArrow, OrderArrow, PartArrow, PartSuppArrow, RegionArrow, SupplierArrow,
};

/// Errors raised while laying out the demo or generating its data.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The scale factor is not a positive number.
    #[error("scale factor {0} must be a positive number, like 0.1")]
    ScaleFactor(f64),
    /// A file or directory cannot be written.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The path.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// The crate's result type.
pub type Result<T, E = DemoError> = std::result::Result<T, E>;

/// The name of a pipeline's spec file, as the engine reads it (`dfpipe_engine::SPEC_FILE`):
/// every end-to-end test lays out the demo here and loads it with the engine.
const SPEC_FILE: &str = "dfpipe.toml";

/// The eight TPC-H tables.
pub const TABLES: [&str; 8] = ["customer", "lineitem", "nation", "orders", "part", "partsupp", "region", "supplier"];

/// The demo's `dfpipe.toml`: `examples/tpch/dfpipe.toml`.
pub const DEMO_SPEC: &str = include_str!("../../../examples/tpch/dfpipe.toml");

/// The demo's view files, `examples/tpch/views/*.sql`, by view name.
pub const DEMO_VIEWS: &[(&str, &str)] = &[
    ("q01", include_str!("../../../examples/tpch/views/q01.sql")),
    ("q02", include_str!("../../../examples/tpch/views/q02.sql")),
    ("q03", include_str!("../../../examples/tpch/views/q03.sql")),
    ("q04", include_str!("../../../examples/tpch/views/q04.sql")),
    ("q05", include_str!("../../../examples/tpch/views/q05.sql")),
    ("q06", include_str!("../../../examples/tpch/views/q06.sql")),
    ("q07", include_str!("../../../examples/tpch/views/q07.sql")),
    ("q08", include_str!("../../../examples/tpch/views/q08.sql")),
    ("q09", include_str!("../../../examples/tpch/views/q09.sql")),
    ("q10", include_str!("../../../examples/tpch/views/q10.sql")),
    ("q11", include_str!("../../../examples/tpch/views/q11.sql")),
    ("q12", include_str!("../../../examples/tpch/views/q12.sql")),
    ("q13", include_str!("../../../examples/tpch/views/q13.sql")),
    ("q14", include_str!("../../../examples/tpch/views/q14.sql")),
    ("q15", include_str!("../../../examples/tpch/views/q15.sql")),
    ("q16", include_str!("../../../examples/tpch/views/q16.sql")),
    ("q17", include_str!("../../../examples/tpch/views/q17.sql")),
    ("q18", include_str!("../../../examples/tpch/views/q18.sql")),
    ("q19", include_str!("../../../examples/tpch/views/q19.sql")),
    ("q20", include_str!("../../../examples/tpch/views/q20.sql")),
    ("q21", include_str!("../../../examples/tpch/views/q21.sql")),
    ("q22", include_str!("../../../examples/tpch/views/q22.sql")),
    ("stg_customer", include_str!("../../../examples/tpch/views/stg_customer.sql")),
    ("stg_lineitem", include_str!("../../../examples/tpch/views/stg_lineitem.sql")),
    ("stg_nation", include_str!("../../../examples/tpch/views/stg_nation.sql")),
    ("stg_orders", include_str!("../../../examples/tpch/views/stg_orders.sql")),
    ("stg_part", include_str!("../../../examples/tpch/views/stg_part.sql")),
    ("stg_partsupp", include_str!("../../../examples/tpch/views/stg_partsupp.sql")),
    ("stg_region", include_str!("../../../examples/tpch/views/stg_region.sql")),
    ("stg_supplier", include_str!("../../../examples/tpch/views/stg_supplier.sql")),
];

/// The file that records which scale factor a data directory holds, written last.
const COMPLETE_MARKER: &str = ".complete";

/// Writes the eight TPC-H tables at `scale_factor` as parquet under `out/<table>/`, in
/// `parts` files per large table. Returns the rows written per table.
pub fn generate(scale_factor: f64, out: &Path, parts: usize) -> Result<Vec<(&'static str, u64)>> {
    if !(scale_factor > 0.0 && scale_factor.is_finite()) {
        return Err(DemoError::ScaleFactor(scale_factor));
    }
    let parts = parts.max(1);
    let mut jobs: Vec<(&'static str, usize, usize)> = Vec::new();
    for table in TABLES {
        let count = if matches!(table, "nation" | "region") { 1 } else { parts };
        jobs.extend((1..=count).map(|part| (table, part, count)));
    }
    let results: Vec<Result<(&'static str, u64)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = jobs
            .iter()
            .map(|&(table, part, count)| scope.spawn(move || write_part(scale_factor, out, table, part, count)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err(io_error(out, "the generator thread panicked"))))
            .collect()
    });
    let mut rows: Vec<(&'static str, u64)> = TABLES.iter().map(|t| (*t, 0)).collect();
    for result in results {
        let (table, n) = result?;
        if let Some(entry) = rows.iter_mut().find(|(t, _)| *t == table) {
            entry.1 += n;
        }
    }
    Ok(rows)
}

/// The rows of part `part` (from 1) of `parts` of TPC-H table `table` at `scale_factor`, as
/// Arrow batches generated as they are read; `None` for a name that is not one of [`TABLES`].
pub fn batches(table: &str, scale_factor: f64, part: i32, parts: i32) -> Option<Box<dyn RecordBatchReader + Send>> {
    Some(match table {
        "customer" => Box::new(CustomerArrow::new(CustomerGenerator::new(scale_factor, part, parts))),
        "lineitem" => Box::new(LineItemArrow::new(LineItemGenerator::new(scale_factor, part, parts))),
        "nation" => Box::new(NationArrow::new(NationGenerator::new(scale_factor, part, parts))),
        "orders" => Box::new(OrderArrow::new(OrderGenerator::new(scale_factor, part, parts))),
        "part" => Box::new(PartArrow::new(PartGenerator::new(scale_factor, part, parts))),
        "partsupp" => Box::new(PartSuppArrow::new(PartSuppGenerator::new(scale_factor, part, parts))),
        "region" => Box::new(RegionArrow::new(RegionGenerator::new(scale_factor, part, parts))),
        "supplier" => Box::new(SupplierArrow::new(SupplierGenerator::new(scale_factor, part, parts))),
        _ => return None,
    })
}

fn write_part(
    scale_factor: f64,
    out: &Path,
    table: &'static str,
    part: usize,
    count: usize,
) -> Result<(&'static str, u64)> {
    let dir = out.join(table);
    std::fs::create_dir_all(&dir).map_err(|source| DemoError::Io {
        action: "cannot create",
        path: dir.clone(),
        source,
    })?;
    let path = dir.join(format!("part-{part}.parquet"));
    let file =
        File::create(&path).map_err(|source| DemoError::Io { action: "cannot create", path: path.clone(), source })?;
    let reader = batches(table, scale_factor, part as i32, count as i32)
        .ok_or_else(|| io_error(&path, &format!("`{table}` is not a TPC-H table")))?;
    let props = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default())).build();
    let parquet_error = |e: parquet::errors::ParquetError| io_error(&path, &e.to_string());
    let mut writer = ArrowWriter::try_new(file, reader.schema(), Some(props)).map_err(parquet_error)?;
    let mut rows = 0u64;
    for batch in reader {
        let batch = batch.map_err(|e| io_error(&path, &e.to_string()))?;
        rows += batch.num_rows() as u64;
        writer.write(&batch).map_err(parquet_error)?;
    }
    writer.close().map_err(parquet_error)?;
    Ok((table, rows))
}

fn io_error(path: &Path, message: &str) -> DemoError {
    DemoError::Io {
        action: "cannot write TPC-H data to",
        path: path.to_owned(),
        source: std::io::Error::other(message.to_owned()),
    }
}

/// Lays out the demo pipeline in `dir` (spec and views, refreshed every time) with TPC-H
/// data at `scale_factor` under `dir/data`, generated only when missing or of another scale.
pub fn prepare_demo(dir: &Path, scale_factor: f64) -> Result<PathBuf> {
    let write = |path: PathBuf, text: &str| {
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text) {
            std::fs::write(&path, text).map_err(|source| DemoError::Io { action: "cannot write", path, source })?;
        }
        Ok::<_, DemoError>(())
    };
    let views = dir.join("views");
    std::fs::create_dir_all(&views).map_err(|source| DemoError::Io {
        action: "cannot create",
        path: views.clone(),
        source,
    })?;
    write(dir.join(SPEC_FILE), DEMO_SPEC)?;
    for (name, sql) in DEMO_VIEWS {
        write(views.join(format!("{name}.sql")), sql)?;
    }
    let data = dir.join("data");
    let marker = data.join(COMPLETE_MARKER);
    let wanted = format!("scale_factor = {scale_factor}\n");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(wanted.as_str()) {
        if data.exists() {
            std::fs::remove_dir_all(&data).map_err(|source| DemoError::Io {
                action: "cannot clear",
                path: data.clone(),
                source,
            })?;
        }
        let parts = std::thread::available_parallelism().map_or(2, usize::from);
        generate(scale_factor, &data, parts)?;
        write(marker, &wanted)?;
    }
    Ok(dir.to_owned())
}
