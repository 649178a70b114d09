//! Capturing a plan bundle: one planning of a view, kept whole.

use std::sync::Arc;

use datafusion::execution::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::{ExecutionPlan, displayable};
use datafusion_substrait::logical_plan::producer::to_substrait_plan;
use datafusion_substrait::substrait::proto::Plan;
use datafusion_substrait::substrait::proto::extensions::simple_extension_declaration::MappingType;
use dfpipe_plan_walk::Lineage;
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::{ArtifactError, Result};

/// What to do when a plan has no Substrait form.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubstraitMode {
    /// Fail, naming the view and the unsupported node.
    #[default]
    Strict,
    /// Record why, and fingerprint the optimized plan's text instead.
    Fallback,
}

/// Everything one planning of a view produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanBundle {
    /// The view.
    pub view: String,
    /// The logical plan as written, indented.
    pub logical: String,
    /// The optimized logical plan, indented.
    pub optimized: String,
    /// The physical plan, with partition counts and sort requirements.
    pub physical: String,
    /// What the plan reads and calls.
    pub lineage: Lineage,
    /// Substrait bytes of the optimized plan, with the producer version cleared.
    #[serde(with = "serde_bytes_compat")]
    pub substrait: Vec<u8>,
    /// Why there are no Substrait bytes, under `substrait = "fallback"`.
    pub substrait_fallback: Option<String>,
}

/// The products of planning one view: its bundle, and the plans to execute.
pub struct Captured {
    /// The bundle.
    pub bundle: PlanBundle,
    /// The optimized logical plan.
    pub optimized: LogicalPlan,
    /// The physical plan, built from `optimized` without optimizing again.
    pub physical: Arc<dyn ExecutionPlan>,
}

/// Optimizes and physically plans `logical` once, and captures the bundle of view `view`.
pub async fn capture(view: &str, logical: &LogicalPlan, state: &SessionState, mode: SubstraitMode) -> Result<Captured> {
    let dferr = |source| ArtifactError::DataFusion { view: view.to_owned(), source };
    let optimized = state.optimize(logical).map_err(dferr)?;
    // Lineage is what the view's SQL says; the walk gives the same answer on either plan. Scans
    // are what is physically read, from the optimized plan with its pushed projections.
    let mut lineage = Lineage::of(logical).map_err(dferr)?;
    lineage.scans = dfpipe_plan_walk::scans(&optimized).map_err(dferr)?;
    lineage.mark_udfs(|f| builtin_functions().contains(f));
    let physical = state.query_planner().create_physical_plan(&optimized, state).await.map_err(dferr)?;
    let (substrait, substrait_fallback) = match to_substrait_plan(&optimized, state) {
        Ok(mut plan) => {
            canonicalize(&mut plan);
            (plan.encode_to_vec(), None)
        }
        Err(e) if mode == SubstraitMode::Fallback => (Vec::new(), Some(e.strip_backtrace())),
        Err(e) => return Err(ArtifactError::Substrait { view: view.to_owned(), message: e.strip_backtrace() }),
    };
    let bundle = PlanBundle {
        view: view.to_owned(),
        logical: logical.display_indent_schema().to_string(),
        optimized: optimized.display_indent().to_string(),
        physical: displayable(physical.as_ref()).indent(true).to_string(),
        lineage,
        substrait,
        substrait_fallback,
    };
    Ok(Captured { bundle, optimized, physical })
}

/// Makes a Substrait plan's bytes depend on the plan alone: clears the producer version, and
/// sorts the extension declarations, which the producer emits in hash-map order, by anchor.
fn canonicalize(plan: &mut Plan) {
    plan.version = None;
    plan.extension_urns.sort_by_key(|u| u.extension_urn_anchor);
    plan.extensions.sort_by_key(|e| match &e.mapping_type {
        Some(MappingType::ExtensionType(t)) => (0, t.type_anchor),
        Some(MappingType::ExtensionTypeVariation(v)) => (1, v.type_variation_anchor),
        Some(MappingType::ExtensionFunction(f)) => (2, f.function_anchor),
        None => (3, 0),
    });
}

/// Serializes bytes as a msgpack binary rather than an array of integers.
mod serde_bytes_compat {
    use serde::{Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        struct Bytes;
        impl serde::de::Visitor<'_> for Bytes {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
        }
        d.deserialize_bytes(Bytes)
    }
}

/// The names of DataFusion's own functions: anything else a plan calls is a UDF.
fn builtin_functions() -> &'static std::collections::BTreeSet<String> {
    static BUILTINS: std::sync::OnceLock<std::collections::BTreeSet<String>> = std::sync::OnceLock::new();
    BUILTINS.get_or_init(|| {
        let state = datafusion::execution::SessionStateBuilder::new().with_default_features().build();
        let scalar = state.scalar_functions().keys();
        scalar.chain(state.aggregate_functions().keys()).chain(state.window_functions().keys()).cloned().collect()
    })
}
