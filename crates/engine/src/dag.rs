//! Stage "DAG": the dependency graph of the views, from their lineage alone.

use std::collections::HashMap;

use dfpipe_scheduler::TaskGraph;

use crate::Result;

/// The DAG of views `names` (task `i` is `names[i]`), where `depends_on[i]` lists the
/// relations view `i` reads; those that are not views (sources) add no edge.
pub(crate) fn dag(names: &[&str], depends_on: &[&[String]]) -> Result<TaskGraph<()>> {
    let mut graph = TaskGraph::new();
    let ids: HashMap<&str, usize> = names.iter().map(|name| (*name, graph.add_task(*name, ()))).collect();
    for (id, reads) in depends_on.iter().enumerate() {
        for dependency in reads.iter().filter_map(|d| ids.get(d.as_str())) {
            graph.add_dependency(*dependency, id)?;
        }
    }
    Ok(graph)
}

/// Which views read a committed output, directly or through lazy views: their physical
/// plans list files, so they are built again when they execute, after their upstream
/// views committed. `written[i]` says whether view `i` is materialized.
pub(crate) fn reads_outputs(graph: &TaskGraph<()>, written: &[bool]) -> Result<Vec<bool>> {
    let mut reads = vec![false; graph.len()];
    for id in graph.topological_order()? {
        reads[id] = graph.dependencies(id).into_iter().any(|dep| written[dep] || reads[dep]);
    }
    Ok(reads)
}

#[cfg(test)]
mod tests {
    use super::{dag, reads_outputs};

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn edges_come_from_lineage_and_sources_add_none() {
        let reads = [strings(&["orders"]), strings(&["a", "lineitem"]), strings(&["b"])];
        let reads: Vec<&[String]> = reads.iter().map(Vec::as_slice).collect();
        let graph = dag(&["a", "b", "c"], &reads).unwrap();
        assert_eq!(graph.dependencies(1), [0]);
        assert_eq!(graph.dependencies(2), [1]);
        assert!(graph.dependencies(0).is_empty());
        // `a` is written: `b` reads its output, and so does `c` through the lazy `b`.
        assert_eq!(reads_outputs(&graph, &[true, false, false]).unwrap(), [false, true, true]);
        assert_eq!(reads_outputs(&graph, &[false, false, false]).unwrap(), [false, false, false]);
    }

    #[test]
    fn a_cycle_is_the_one_cycle_error_in_reading_order() {
        let reads = [strings(&["b"]), strings(&["a"])];
        let reads: Vec<&[String]> = reads.iter().map(Vec::as_slice).collect();
        let graph = dag(&["a", "b"], &reads).unwrap();
        let error = crate::EngineError::from(graph.topological_order().unwrap_err());
        assert_eq!(error.kind(), "cycle");
        assert!(error.to_string().starts_with("views read each other in a cycle: "), "{error}");
    }
}
