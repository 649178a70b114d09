//! The writer through its public API: commits, failure injection, crash repair, bad specs,
//! options as seen in the written files, knobs, reports, read-back and bounded memory.

mod common;
mod failures;
mod memory;
mod options;
mod readback;
mod types;
