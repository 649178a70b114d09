//! A complete walk of DataFusion logical plans, and the lineage it finds.
//!
//! `dfpipe-plan-walk` depends on `datafusion-expr` and `datafusion-common` only. The walk is
//! built on DataFusion's TreeNode APIs and enters the plans embedded in expressions
//! (scalar, `EXISTS` and `IN` subqueries), so nothing a view reads is missed.

mod lineage;

pub use lineage::{Lineage, Scan};
