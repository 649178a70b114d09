//! What the tests of the `dfpipe` binary share: running it, reading what it printed, cluster
//! workers, and the rows of committed outputs.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use arrow::util::display::{ArrayFormatter, FormatOptions};

/// A `dfpipe worker` process on a free port of 127.0.0.1, killed when dropped.
pub(crate) struct Worker {
    pub(crate) child: Child,
    pub(crate) address: String,
}

impl Worker {
    /// A worker with the environment of the test, less the variables named in `remove`,
    /// plus those of `set`.
    pub(crate) fn start_with(remove: &[&str], set: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dfpipe"));
        for name in remove {
            command.env_remove(name);
        }
        let mut child = command
            .envs(set.iter().copied())
            .args(["worker", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting dfpipe worker");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("its stdout")).read_line(&mut line).expect("its first line");
        let address = line.trim().strip_prefix("dfpipe worker listening on ").unwrap_or_else(|| panic!("{line}"));
        Self { address: address.to_owned(), child }
    }

    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Every row of the parquet files in `dir`, as sorted text lines.
pub(crate) fn rows(dir: &Path) -> Vec<String> {
    let mut rows = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "parquet") {
            continue;
        }
        let file = std::fs::File::open(&path).unwrap();
        let reader =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap();
        for batch in reader {
            let batch = batch.unwrap();
            let options = FormatOptions::default();
            let columns: Vec<ArrayFormatter<'_>> =
                batch.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap()).collect();
            for row in 0..batch.num_rows() {
                let values: Vec<String> = columns.iter().map(|c| c.value(row).to_string()).collect();
                rows.push(values.join("|"));
            }
        }
    }
    rows.sort();
    rows
}

/// Runs `dfpipe` with `args` and the environment of the test.
pub(crate) fn dfpipe(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dfpipe")).args(args).output().expect("running dfpipe")
}

/// What `output` printed on stderr.
pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The JSON document `output` printed on stdout; a panic shows stdout and stderr otherwise.
pub(crate) fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", String::from_utf8_lossy(&output.stdout), stderr(output)))
}
