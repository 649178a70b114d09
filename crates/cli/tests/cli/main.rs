//! The `dfpipe` binary end to end, in one test binary: commands, exit codes and help
//! (`cli`), clusters of `dfpipe worker` processes (`cluster`), OpenLineage events
//! (`openlineage`) and pipelines on a real S3 server (`s3`).

mod cli;
mod cluster;
mod openlineage;
mod s3;
mod support;
