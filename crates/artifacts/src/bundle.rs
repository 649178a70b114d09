//! Capturing a plan bundle: one planning of a view, kept whole.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::config::ConfigOptions;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_optimizer::{PhysicalOptimizerContext, PhysicalOptimizerRule};
use datafusion::physical_plan::{ExecutionPlan, displayable};
use datafusion::sql::sqlparser::keywords::ALL_KEYWORDS;
use datafusion::sql::unparser::Unparser;
use datafusion::sql::unparser::dialect::Dialect;
use datafusion_substrait::logical_plan::consumer::from_substrait_plan;
use datafusion_substrait::logical_plan::producer::to_substrait_plan;
use datafusion_substrait::substrait::proto::Plan;
use datafusion_substrait::substrait::proto::extensions::simple_extension_declaration::MappingType;
use dfpipe_plan_walk::Lineage;
use prost::Message;
use serde::{Deserialize, Serialize};

use crate::metrics::{AnalyzeLevel, OperatorMetrics, collect};
use crate::{ArtifactError, Environment, Fingerprint, FingerprintInputs, Ingredients, Result};

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

/// What [`capture`] records beyond the plans, lineage and Substrait bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureOptions {
    /// What to do when a plan has no Substrait form.
    pub substrait: SubstraitMode,
    /// Consume the Substrait bytes back and compare (`validate_substrait` in the profile).
    pub validate_substrait: bool,
    /// Record the plan after every logical and physical optimizer rule that changed it
    /// (`explain_verbose`).
    pub explain_verbose: bool,
    /// Unparse the plan to SQL into the bundle (see [`unparse`]): for a view whose only SQL
    /// is its plan, such as one built by a Rust template. A view written in SQL has its file.
    pub unparse: bool,
}

/// Everything one planning of a view produced, and, once it ran, what its execution measured.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanBundle {
    /// The view.
    pub view: String,
    /// The logical plan as written, indented.
    pub logical: String,
    /// The optimized logical plan, indented.
    pub optimized: String,
    /// The physical plan, with partition counts, repartitions and sort requirements.
    pub physical: String,
    /// The physical plan as `EXPLAIN FORMAT TREE` draws it.
    #[serde(default)]
    pub tree: String,
    /// `EXPLAIN VERBOSE`: the logical plan after each analyzer and optimizer rule that changed
    /// it, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub verbose: Vec<RuleDelta>,
    /// `EXPLAIN VERBOSE`: the physical plan after each physical optimizer rule that changed it,
    /// in order, from the physical planning at capture.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub physical_verbose: Vec<RuleDelta>,
    /// The output columns and their types.
    #[serde(default)]
    pub schema: Vec<Column>,
    /// What the plan reads, computes and calls.
    pub lineage: Lineage,
    /// Substrait bytes of the optimized plan, canonicalized (see [`capture`]).
    #[serde(with = "serde_bytes_compat")]
    pub substrait: Vec<u8>,
    /// Why there are no Substrait bytes, under `substrait = "fallback"`. The fingerprint's
    /// basis is then the optimized plan's text.
    pub substrait_fallback: Option<String>,
    /// The result of consuming the Substrait bytes back, when asked for.
    #[serde(default)]
    pub substrait_validation: Option<Validation>,
    /// The unoptimized plan unparsed to SQL, and whether that SQL plans again: captured
    /// with [`CaptureOptions::unparse`] only.
    #[serde(default)]
    pub sql: Option<Unparsed>,
    /// What went into the fingerprint, and the hash of each ingredient.
    #[serde(default)]
    pub fingerprint: FingerprintRecord,
    /// Per-operator metrics of the execution that wrote the view's output, if it ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<OperatorMetrics>,
}

/// One output column.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Column {
    /// Its name.
    pub name: String,
    /// Its Arrow type, displayed.
    pub data_type: String,
    /// Whether it may be null.
    pub nullable: bool,
}

/// The plan after one optimizer rule changed it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleDelta {
    /// The rule.
    pub rule: String,
    /// The plan it produced, indented.
    pub plan: String,
}

/// The outcome of consuming Substrait bytes back into a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validation {
    /// The consumed plan has the optimized plan's schema, and its Substrait is stable.
    pub round_trips: bool,
    /// The consumed plan, optimized, gives back exactly the same bytes.
    #[serde(default)]
    pub exact: bool,
    /// What differed, or the consumer's error.
    pub detail: Option<String>,
}

/// The unoptimized plan unparsed to SQL.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unparsed {
    /// The SQL, when the unparser could produce it.
    pub sql: Option<String>,
    /// Why it could not, or why the SQL does not plan again. Never fatal.
    pub error: Option<String>,
}

/// The ingredients of a view's fingerprint, kept so that a diff can say what changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FingerprintRecord {
    /// The fingerprint.
    pub fingerprint: Fingerprint,
    /// The hash of each ingredient.
    pub ingredients: Ingredients,
    /// The settings that went in.
    pub settings: BTreeMap<String, String>,
    /// The relevant environment hashes that went in, by `information_schema` table.
    pub environment: BTreeMap<String, Fingerprint>,
    /// The upstream fingerprints that went in, by relation.
    pub upstream: BTreeMap<String, Fingerprint>,
}

impl PlanBundle {
    /// The rows the view's plan produced in the execution its metrics are from: those of the
    /// first operator down the plan's first-child spine that counts rows (an operator such as
    /// `ScalarSubqueryExec` passes rows through without counting them).
    pub fn output_rows(&self) -> Option<u64> {
        let mut depth = 0;
        for operator in &self.metrics {
            if operator.depth == depth {
                if operator.output_rows.is_some() {
                    return operator.output_rows;
                }
                depth += 1;
            }
        }
        None
    }

    /// Records the execution that wrote the view's output: `plan` is the physical plan that
    /// actually ran (it may have been planned again at execution, from the same optimized
    /// plan), after it ran. Its explains replace the bundle's physical and tree explains, and
    /// its operators' metrics at `level` become the bundle's metrics. The physical rule deltas
    /// stay those of the planning at capture.
    pub fn record_execution(&mut self, plan: &dyn ExecutionPlan, level: AnalyzeLevel) {
        self.physical = physical_text(plan);
        self.tree = tree_text(plan);
        self.metrics = collect(plan, level);
    }

    /// Computes the view's fingerprint from its plan and `settings`, the part of
    /// `environment` that concerns it, and its `upstream` fingerprints (see
    /// [`crate::fingerprint`]), and records them all in the bundle.
    pub fn seal(
        &mut self,
        settings: BTreeMap<String, String>,
        environment: &Environment,
        upstream: BTreeMap<String, Fingerprint>,
    ) -> Fingerprint {
        let environment = environment.relevant(&self.lineage.depends_on, &self.lineage.functions);
        let basis = match &self.substrait_fallback {
            None => self.substrait.as_slice(),
            Some(_) => self.optimized.as_bytes(),
        };
        let inputs =
            FingerprintInputs { plan: basis, settings: &settings, environment: &environment, upstream: &upstream };
        let ingredients = Ingredients::of(&inputs);
        let fingerprint = ingredients.fingerprint();
        self.fingerprint =
            FingerprintRecord { fingerprint: fingerprint.clone(), ingredients, settings, environment, upstream };
        fingerprint
    }
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
///
/// The Substrait plan is canonicalized so that its bytes depend on the plan alone: the
/// producer's version is cleared, and the extension declarations, which the producer emits
/// in hash-map order, are sorted by anchor.
pub async fn capture(
    view: &str,
    logical: &LogicalPlan,
    state: &SessionState,
    options: CaptureOptions,
) -> Result<Captured> {
    let dferr = |source| ArtifactError::DataFusion { view: view.to_owned(), source };
    let (optimized, verbose) = optimize(logical, state, options.explain_verbose).map_err(dferr)?;
    // Lineage is what the view's SQL says; the walk gives the same answer on either plan. Scans
    // are what is physically read, from the optimized plan with its pushed projections.
    let mut lineage = Lineage::of(logical).map_err(dferr)?;
    lineage.scans = dfpipe_plan_walk::scans(&optimized).map_err(dferr)?;
    lineage.mark_udfs(|f| builtin_functions().contains(f));
    let (physical, physical_verbose) =
        plan_physical(&optimized, state, options.explain_verbose).await.map_err(dferr)?;
    let (substrait, substrait_fallback, substrait_validation) = match to_substrait_plan(&optimized, state) {
        Ok(mut plan) => {
            canonicalize(&mut plan);
            let validation =
                if options.validate_substrait { Some(validate(&plan, &optimized, state).await) } else { None };
            (plan.encode_to_vec(), None, validation)
        }
        Err(e) if options.substrait == SubstraitMode::Fallback => (Vec::new(), Some(unsupported(&e)), None),
        Err(e) => return Err(ArtifactError::Substrait { view: view.to_owned(), message: unsupported(&e) }),
    };
    let schema = optimized
        .schema()
        .fields()
        .iter()
        .map(|f| Column { name: f.name().clone(), data_type: f.data_type().to_string(), nullable: f.is_nullable() })
        .collect();
    let bundle = PlanBundle {
        view: view.to_owned(),
        logical: logical.display_indent_schema().to_string(),
        optimized: optimized.display_indent().to_string(),
        physical: physical_text(physical.as_ref()),
        tree: tree_text(physical.as_ref()),
        verbose,
        physical_verbose,
        schema,
        lineage,
        substrait,
        substrait_fallback,
        substrait_validation,
        sql: if options.unparse { Some(unparse(logical, state).await) } else { None },
        fingerprint: FingerprintRecord::default(),
        metrics: Vec::new(),
    };
    Ok(Captured { bundle, optimized, physical })
}

/// Analyzes and optimizes `plan` as [`SessionState::optimize`] does, recording the plan
/// after each rule that changed it when `verbose`.
fn optimize(plan: &LogicalPlan, state: &SessionState, verbose: bool) -> DfResult<(LogicalPlan, Vec<RuleDelta>)> {
    if !verbose {
        return Ok((state.optimize(plan)?, Vec::new()));
    }
    let mut deltas: Vec<RuleDelta> = Vec::new();
    let mut last = plan.display_indent().to_string();
    let mut record = |plan: &LogicalPlan, rule: &str| {
        let shown = plan.display_indent().to_string();
        if shown != last {
            deltas.push(RuleDelta { rule: rule.to_owned(), plan: shown.clone() });
            last = shown;
        }
    };
    let analyzed = state.analyzer().execute_and_check(plan.clone(), state.config_options(), |p, rule| {
        record(p, rule.name());
    })?;
    let optimized = state.optimizer().optimize(analyzed, state, |p, rule| record(p, rule.name()))?;
    Ok((optimized, deltas))
}

/// The physical plan as the bundle shows it: indented, with partition counts, repartitions
/// and sort requirements.
fn physical_text(plan: &dyn ExecutionPlan) -> String {
    displayable(plan).indent(true).to_string()
}

/// The physical plan as `EXPLAIN FORMAT TREE` draws it.
fn tree_text(plan: &dyn ExecutionPlan) -> String {
    displayable(plan).tree_render().to_string()
}

/// Plans `optimized` physically, once, through the session's query planner; when `verbose`,
/// records the plan after each physical optimizer rule that changed it.
///
/// The query planner offers no observer of the physical optimizer, so the rules are wrapped:
/// the planning runs on a copy of the session whose rules are the same ones, each recording
/// what it produced. Views that the plan reads may be planned (and physically optimized)
/// inside its planning, before the plan's own pass of the physical optimizer, which comes
/// last: each pass starts the record afresh.
async fn plan_physical(
    optimized: &LogicalPlan,
    state: &SessionState,
    verbose: bool,
) -> DfResult<(Arc<dyn ExecutionPlan>, Vec<RuleDelta>)> {
    if !verbose {
        return Ok((state.query_planner().create_physical_plan(optimized, state).await?, Vec::new()));
    }
    let deltas = Arc::new(Mutex::new(PhysicalDeltas::default()));
    let rules = (state.physical_optimizers().iter().enumerate())
        .map(|(at, rule)| {
            let recording = Recording { rule: Arc::clone(rule), first: at == 0, deltas: Arc::clone(&deltas) };
            Arc::new(recording) as Arc<dyn PhysicalOptimizerRule + Send + Sync>
        })
        .collect();
    let recording = SessionStateBuilder::new_from_existing(state.clone()).with_physical_optimizer_rules(rules).build();
    let physical = recording.query_planner().create_physical_plan(optimized, &recording).await?;
    let deltas = std::mem::take(&mut deltas.lock().unwrap_or_else(PoisonError::into_inner).deltas);
    Ok((physical, deltas))
}

/// What the physical optimizer's current pass did so far.
#[derive(Debug, Default)]
struct PhysicalDeltas {
    /// The plan as the last rule left it (or as planned, before the first rule).
    last: String,
    /// The plan after each rule that changed it.
    deltas: Vec<RuleDelta>,
}

/// A physical optimizer rule that records the plan it produced when it changed it.
#[derive(Debug)]
struct Recording {
    rule: Arc<dyn PhysicalOptimizerRule + Send + Sync>,
    /// Whether it is the first rule: it starts a pass.
    first: bool,
    deltas: Arc<Mutex<PhysicalDeltas>>,
}

impl Recording {
    fn record(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        optimize: impl FnOnce(Arc<dyn ExecutionPlan>) -> DfResult<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let mut deltas = self.deltas.lock().unwrap_or_else(PoisonError::into_inner);
        if self.first {
            deltas.deltas.clear();
            deltas.last = physical_text(plan.as_ref());
        }
        let optimized = optimize(plan)?;
        let shown = physical_text(optimized.as_ref());
        if deltas.last != shown {
            deltas.deltas.push(RuleDelta { rule: self.rule.name().to_owned(), plan: shown.clone() });
            deltas.last = shown;
        }
        Ok(optimized)
    }
}

impl PhysicalOptimizerRule for Recording {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, config: &ConfigOptions) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.record(plan, |plan| self.rule.optimize(plan, config))
    }

    fn optimize_with_context(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        context: &dyn PhysicalOptimizerContext,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        self.record(plan, |plan| self.rule.optimize_with_context(plan, context))
    }

    fn name(&self) -> &str {
        self.rule.name()
    }

    fn schema_check(&self) -> bool {
        self.rule.schema_check()
    }
}

/// The Substrait producer's refusal in one line: the plan node or expression it cannot encode,
/// without the debug dump of the whole plan that its message carries.
fn unsupported(error: &DataFusionError) -> String {
    let message = match error.find_root() {
        DataFusionError::NotImplemented(message) => message.clone(),
        root => root.strip_backtrace(),
    };
    // The leading identifier of a debug dump: `Unnest { input: ... }` names `Unnest`.
    let named = |dump: &str| -> Option<String> {
        let name: String = dump.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        (!name.is_empty()).then_some(name)
    };
    let node = message
        .strip_prefix("Unsupported plan type: ")
        .and_then(named)
        .map(|name| match name.as_str() {
            "Unnest" => "the plan node Unnest (UNNEST)".to_owned(),
            "RecursiveQuery" => "the plan node RecursiveQuery (WITH RECURSIVE)".to_owned(),
            _ => format!("the plan node {name}"),
        })
        .or_else(|| {
            message.strip_prefix("Cannot convert ").and_then(named).map(|name| format!("the expression {name}"))
        });
    if let Some(node) = node {
        return format!("{node} is not supported by the Substrait producer");
    }
    // Some other refusal: its first line, without any dump it carries.
    let line = message.lines().next().unwrap_or_default();
    let before_dump = &line[..line.find('{').unwrap_or(line.len())];
    let short: String = before_dump.chars().take(160).collect();
    let short = short.trim_end();
    if short.len() < line.len() { format!("{short} …") } else { short.to_owned() }
}

/// Consumes `plan` back into a logical plan and checks it: it must have the schema of
/// `optimized`, and produce the same Substrait again once optimized. The consumer adds
/// projections of its own, so the plan consumed as is rarely gives identical bytes; when the
/// optimized one does not either, the bytes must at least be stable under a second round trip.
async fn validate(plan: &Plan, optimized: &LogicalPlan, state: &SessionState) -> Validation {
    let failed = |detail: String| Validation { round_trips: false, exact: false, detail: Some(detail) };
    let round_trip = |plan: Plan| async move {
        let consumed =
            from_substrait_plan(state, &plan).await.map_err(|e| format!("cannot consume: {}", e.strip_backtrace()))?;
        let consumed = state
            .optimize(&consumed)
            .map_err(|e| format!("cannot optimize the consumed plan: {}", e.strip_backtrace()))?;
        let mut again = to_substrait_plan(&consumed, state)
            .map_err(|e| format!("cannot produce again: {}", e.strip_backtrace()))?;
        canonicalize(&mut again);
        Ok::<_, String>((consumed, *again))
    };
    let (consumed, again) = match round_trip(plan.clone()).await {
        Ok(done) => done,
        Err(detail) => return failed(detail),
    };
    let fields = |p: &LogicalPlan| -> Vec<(String, String)> {
        p.schema().fields().iter().map(|f| (f.name().clone(), f.data_type().to_string())).collect()
    };
    if fields(&consumed) != fields(optimized) {
        return failed(format!("schema {:?} came back as {:?}", fields(optimized), fields(&consumed)));
    }
    if again.encode_to_vec() == plan.encode_to_vec() {
        return Validation { round_trips: true, exact: true, detail: None };
    }
    match round_trip(again.clone()).await {
        Ok((_, third)) if third.encode_to_vec() == again.encode_to_vec() => Validation {
            round_trips: true,
            exact: false,
            detail: Some("the consumed plan differs in shape; its Substrait is stable from then on".to_owned()),
        },
        Ok(_) => failed("the Substrait bytes change with every round trip".to_owned()),
        Err(detail) => failed(detail),
    }
}

/// Unparses `plan` (a view's unoptimized plan) to SQL, and plans that SQL again in `state`
/// to say whether it means something to DataFusion.
pub async fn unparse(plan: &LogicalPlan, state: &SessionState) -> Unparsed {
    let sql = match Unparser::new(&DefaultQuoting).plan_to_sql(plan) {
        Ok(statement) => statement.to_string(),
        Err(e) => return Unparsed { sql: None, error: Some(e.strip_backtrace()) },
    };
    let error = state
        .create_logical_plan(&sql)
        .await
        .err()
        .map(|e| format!("the SQL does not plan again: {}", e.strip_backtrace()));
    Unparsed { sql: Some(sql), error }
}

/// DataFusion's default unparser dialect, whose quoting compiles a regex for every identifier
/// (a tenth of the time of planning a small view): the same rule, checked by hand.
struct DefaultQuoting;

impl Dialect for DefaultQuoting {
    fn identifier_quote_style(&self, identifier: &str) -> Option<char> {
        let upper = identifier.to_uppercase();
        // "ID" is a keyword of some dialects that DataFusion's default leaves unquoted.
        let keyword = upper != "ID" && ALL_KEYWORDS.binary_search(&upper.as_str()).is_ok();
        let mut chars = identifier.chars();
        let plain = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        (keyword || !plain).then_some('"')
    }
}

/// Makes a Substrait plan's bytes depend on the plan alone: clears the producer version, and
/// sorts the extension declarations by anchor.
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
pub(crate) mod serde_bytes_compat {
    use serde::{Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(bytes)
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
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

#[cfg(test)]
mod tests {
    use datafusion::sql::unparser::dialect::{DefaultDialect, Dialect};

    use super::DefaultQuoting;

    #[test]
    fn quoting_is_datafusion_s_default() {
        let identifiers =
            ["l_orderkey", "_x1", "id", "ID", "select", "Select", "order", "MixedCase", "1st", "a b", "é", "", "x-y"];
        for identifier in identifiers {
            assert_eq!(
                DefaultQuoting.identifier_quote_style(identifier),
                DefaultDialect {}.identifier_quote_style(identifier),
                "{identifier:?}"
            );
        }
    }
}
