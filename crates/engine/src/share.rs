//! Stage "share": the lazy views that the run's executing plans would expand more than once
//! are computed once instead, for all their readers (`LazyView::share`).
//!
//! A reader plans a lazy view inline, with its projection and filters pushed in. Inline, a
//! view that two plans read, or that one plan reaches by two paths, is planned and computed
//! once per path; diamonds of lazy views multiply the paths, so planning and execution grow
//! exponentially. Knowing every plan up front, this stage counts the paths: a lazy view
//! expanded at most once stays inline; any other is shared, its columns those its readers'
//! lineage reads. Lineage, Substrait and fingerprints see only the logical plans, which do
//! not change.

use std::collections::{BTreeMap, BTreeSet};

use datafusion::catalog::TableProvider as _;
use datafusion::prelude::SessionContext;
use dfpipe_plan_walk::Lineage;
use dfpipe_views::LazyView;

use crate::dag::{dag, reads_outputs};
use crate::spec::Materialize;
use crate::views::LogicalView;
use crate::{EngineError, Result};

/// A lazy view to compute once per run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SharedView {
    pub(crate) name: String,
    /// How many times the executing plans would expand it inline.
    pub(crate) readers: usize,
    /// Whether it reads, through lazy views, the output of a materialized view.
    pub(crate) reads_outputs: bool,
}

/// Which lazy views of `views` (in dependency order) to share. A materialized view's plan
/// expands each lazy view it reads; a shared view's plan, computed once, counts as one
/// expansion of what it reads; an inline lazy view passes on the expansions of its readers.
pub(crate) fn shared_views(views: &[LogicalView]) -> Result<Vec<SharedView>> {
    let names: Vec<&str> = views.iter().map(|v| v.name.as_str()).collect();
    let depends_on: Vec<&[String]> = views.iter().map(|v| v.depends_on.as_slice()).collect();
    let graph = dag(&names, &depends_on)?;
    let written: Vec<bool> = views.iter().map(|v| v.write.is_some()).collect();
    let reads_outputs = reads_outputs(&graph, &written)?;
    let lazy = |i: usize| views[i].spec.materialize == Materialize::Lazy;
    let mut expansions = vec![0usize; views.len()];
    let mut shared = vec![false; views.len()];
    for reader in (0..views.len()).rev() {
        shared[reader] = lazy(reader) && expansions[reader] > 1;
        let passed = if lazy(reader) && !shared[reader] { expansions[reader] } else { 1 };
        for read in graph.dependencies(reader).into_iter().filter(|&read| lazy(read)) {
            expansions[read] += passed;
        }
    }
    Ok((0..views.len())
        .filter(|&i| shared[i])
        .map(|i| SharedView { name: views[i].name.clone(), readers: expansions[i], reads_outputs: reads_outputs[i] })
        .collect())
}

/// Shares `shared` in `ctx`, in dependency order: each computes the columns its readers'
/// lineage reads of it.
pub(crate) async fn share_all(ctx: &SessionContext, views: &[LogicalView], shared: &[SharedView]) -> Result<()> {
    let names: BTreeSet<&str> = shared.iter().map(|s| s.name.as_str()).collect();
    let mut read: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for view in views.iter().filter(|v| v.depends_on.iter().any(|d| names.contains(d.as_str()))) {
        let lineage = Lineage::of(&view.plan)?;
        let sources = lineage.columns.iter().flat_map(|c| c.sources.iter().map(|s| (&s.relation, &s.column)));
        let inspected = lineage.inspected.iter().map(|i| (&i.relation, &i.column));
        for (relation, column) in sources.chain(inspected) {
            if let Some(name) = names.get(relation.as_str()) {
                read.entry(name).or_default().insert(column.clone());
            }
        }
    }
    let state = ctx.state();
    for view in shared {
        let provider = ctx.table_provider(view.name.as_str()).await?;
        let Some(lazy) = provider.downcast_ref::<LazyView>() else {
            return Err(EngineError::Internal(format!("view `{}` is not registered as a lazy view", view.name)));
        };
        let columns = read.get(view.name.as_str());
        let schema = lazy.schema();
        let mut indices: Vec<usize> = (schema.fields().iter().enumerate())
            .filter(|(_, f)| columns.is_some_and(|c| c.contains(f.name())))
            .map(|(i, _)| i)
            .collect();
        // Readers that only count rows still need rows: one column carries them.
        if indices.is_empty() {
            indices.push(0);
        }
        lazy.share(&state, indices, view.readers, view.reads_outputs)?;
    }
    Ok(())
}
