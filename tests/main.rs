//! End-to-end tests of the workspace on the TPC-H demo, in one test binary.

mod artifacts;
mod demo;
mod golden;
mod lineage;
mod openlineage;
mod report;
mod show;
mod stages;
