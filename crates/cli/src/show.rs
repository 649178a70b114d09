//! `dfpipe show`: a view's rows on stdout as a table, CSV, JSON lines or an Arrow IPC stream.
//!
//! The view's partition streams are merged as their batches come (`select_all`) and each
//! batch is written as soon as it arrives, so memory stays bounded by a few batches whatever
//! the view's size (the table keeps its rows, at most `--limit` of them, to size its columns).
//! Reaching `--limit` or a closed stdout drops the streams, which stops the work.

use std::io::{self, BufWriter, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow::array::RecordBatch;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use arrow::json::writer::LineDelimited;
use clap::ValueEnum;
use dfpipe_engine::{EngineError, Planned};
use futures::StreamExt;

/// How `show` writes rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ShowFormat {
    /// A pretty table of the first rows (20 unless `--limit` says otherwise).
    Table,
    /// CSV with a header line.
    Csv,
    /// Newline-delimited JSON: one object per row, nulls included.
    Json,
    /// An Arrow IPC stream (schema, then one message per batch).
    Arrow,
}

/// The rows a table shows without `--limit`.
pub(crate) const TABLE_LIMIT: usize = 20;

/// Streams the rows of `view` to stdout in `format`, up to `limit` rows (default: every row,
/// and [`TABLE_LIMIT`] for a table). A view that fails while it streams exits 1; a closed
/// stdout (`dfpipe show … | head`) ends the command successfully.
pub(crate) async fn show(
    planned: &Planned,
    view: &str,
    limit: Option<usize>,
    format: ShowFormat,
) -> Result<ExitCode, EngineError> {
    let streams = planned.stream(view).await?;
    let schema = streams.first().map_or_else(|| Arc::new(Schema::empty()), |s| s.schema());
    let given = limit;
    let limit = limit.or((format == ShowFormat::Table).then_some(TABLE_LIMIT));
    let closed = Arc::new(AtomicBool::new(false));
    let out = BufWriter::new(Stdout { closed: Arc::clone(&closed) });
    let mut sink = Sink::new(format, out, &schema).map_err(|e| output_error(&e))?;
    let mut rows = futures::stream::select_all(streams);
    let mut remaining = limit;
    let mut more = false;
    while let Some(batch) = rows.next().await {
        let batch = match batch {
            Ok(batch) if batch.num_rows() == 0 => continue,
            Ok(batch) => batch,
            // Past the limit, what the view does next does not matter.
            Err(_) if remaining == Some(0) => break,
            Err(e) => {
                eprintln!("error: view `{view}` failed while streaming its rows: {}", e.strip_backtrace());
                return Ok(ExitCode::from(1));
            }
        };
        if remaining == Some(0) {
            more = true;
            break;
        }
        let batch = match remaining {
            Some(n) if batch.num_rows() > n => {
                more = true;
                batch.slice(0, n)
            }
            _ => batch,
        };
        remaining = remaining.map(|n| n - batch.num_rows());
        sink.write(&batch).map_err(|e| output_error(&e))?;
        if closed.load(Ordering::Relaxed) {
            return Ok(ExitCode::SUCCESS);
        }
        // Only a table says whether rows were left out; the other formats stop at once.
        if remaining == Some(0) && (more || format != ShowFormat::Table) {
            break;
        }
    }
    drop(rows);
    sink.finish(&schema).map_err(|e| output_error(&e))?;
    if more && format == ShowFormat::Table && !closed.load(Ordering::Relaxed) {
        match given {
            Some(n) => eprintln!("(the first {n} rows of `{view}`)"),
            None => eprintln!("(the first {TABLE_LIMIT} rows of `{view}`; --limit N shows more)"),
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the rows go, in one of the formats.
enum Sink<W: Write> {
    /// The rows kept to print at the end, and where.
    Table(Vec<RecordBatch>, W),
    /// The writer, and whether it wrote a batch (and so the header).
    Csv(Box<arrow::csv::Writer<W>>, bool),
    Json(arrow::json::Writer<W, LineDelimited>),
    Arrow(Box<arrow::ipc::writer::StreamWriter<W>>),
}

impl<W: Write> Sink<W> {
    fn new(format: ShowFormat, out: W, schema: &SchemaRef) -> Result<Self, ArrowError> {
        Ok(match format {
            ShowFormat::Table => Self::Table(Vec::new(), out),
            ShowFormat::Csv => {
                Self::Csv(Box::new(arrow::csv::WriterBuilder::new().with_header(true).build(out)), false)
            }
            ShowFormat::Json => {
                Self::Json(arrow::json::WriterBuilder::new().with_explicit_nulls(true).build::<_, LineDelimited>(out))
            }
            ShowFormat::Arrow => Self::Arrow(Box::new(arrow::ipc::writer::StreamWriter::try_new(out, schema)?)),
        })
    }

    /// Writes `batch` through to the output (a table keeps it for the end).
    fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        match self {
            Self::Table(batches, _) => batches.push(batch.clone()),
            // The CSV writer flushes after every batch.
            Self::Csv(writer, written) => {
                writer.write(batch)?;
                *written = true;
            }
            Self::Json(writer) => {
                writer.write(batch)?;
                writer.get_mut().flush()?;
            }
            Self::Arrow(writer) => {
                writer.write(batch)?;
                writer.flush()?;
            }
        }
        Ok(())
    }

    /// Ends the output: the table itself, CSV's header when no row came, the end of the IPC
    /// stream.
    fn finish(self, schema: &SchemaRef) -> Result<(), ArrowError> {
        match self {
            Self::Table(batches, mut out) => {
                let table = arrow::util::pretty::pretty_format_batches_with_schema(Arc::clone(schema), &batches)?;
                writeln!(out, "{table}")?;
                out.flush()?;
            }
            Self::Csv(mut writer, written) => {
                if !written {
                    writer.write(&RecordBatch::new_empty(Arc::clone(schema)))?;
                }
            }
            Self::Json(mut writer) => {
                writer.finish()?;
                writer.get_mut().flush()?;
            }
            Self::Arrow(mut writer) => {
                writer.finish()?;
                writer.flush()?;
            }
        }
        Ok(())
    }
}

/// Stdout that takes its reader going away (a broken pipe) as the end of the output: the
/// write is dropped and `closed` is set, so that `show` stops.
struct Stdout {
    closed: Arc<AtomicBool>,
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.closed.load(Ordering::Relaxed) {
            return Ok(buf.len());
        }
        match io::stdout().write(buf) {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed.store(true, Ordering::Relaxed);
                Ok(buf.len())
            }
            other => other,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.closed.load(Ordering::Relaxed) {
            return Ok(());
        }
        match io::stdout().flush() {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
                self.closed.store(true, Ordering::Relaxed);
                Ok(())
            }
            other => other,
        }
    }
}

/// A failure to encode or write the rows: the environment's, not the view's.
fn output_error(error: &ArrowError) -> EngineError {
    EngineError::Io {
        action: "cannot write the rows to",
        path: "stdout".into(),
        source: io::Error::other(error.to_string()),
    }
}
