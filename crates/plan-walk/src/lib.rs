//! A complete walk of DataFusion logical plans, and the lineage it finds.
//!
//! `dfpipe-plan-walk` depends on `datafusion-expr` and `datafusion-common` only. The walk is
//! a [`TreeNodeVisitor`](datafusion_common::tree_node::TreeNodeVisitor) driven by
//! `LogicalPlan::visit_with_subqueries`, so it enters the plans embedded in expressions
//! (scalar, `EXISTS`, `IN` and `ANY`/`ALL` subqueries, correlated or not) and nothing a view
//! reads is missed. [`Lineage::of`] gives, for one plan, the relations it reads, the sources
//! of each output column (`copy` or `transform`), the columns it inspects (`filter`, `join`,
//! `group`, `sort`, `window`) and the functions it calls.

mod lineage;
mod walk;

pub use lineage::{ColumnLineage, Inspected, Kind, Lineage, Role, Scan, Source, scans};
