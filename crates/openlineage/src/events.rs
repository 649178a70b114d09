//! The events: what the plan says of each view ([`Jobs`]), and the events of one run of the
//! pipeline ([`Run`]) or of none ([`Jobs::static_events`]), in the typed model of
//! `openlineage-client`.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use dfpipe_plan_walk::{Kind, Lineage, Role, Source};
use openlineage_client::event::{Dataset, Job, RUN_EVENT_SCHEMA_URL, Run as RunModel, RunEvent, RunEventType};
use openlineage_client::facets::{
    BaseFacet, ColumnLineageDatasetFacet, DatasetFacets, ErrorMessageRunFacet, FieldLineage, InputField, JobFacets,
    JobTypeJobFacet, OutputDatasetFacets, OutputStatisticsOutputDatasetFacet, ParentJob, ParentRun, ParentRunFacet,
    RunFacets, SchemaDatasetFacet, SchemaField, SqlJobFacet, Transformation, TransformationType,
};
use uuid::Uuid;

pub use openlineage_client::DatasetName;

/// The `producer` of every event and facet: this dfpipe.
const PRODUCER: &str = concat!("urn:dfpipe:", env!("CARGO_PKG_VERSION"));

// The facet schemas the facets follow, under https://openlineage.io/spec/facets/.
const SCHEMA: &str = "1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet";
const COLUMN_LINEAGE: &str = "1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet";
const OUTPUT_STATISTICS: &str =
    "1-0-2/OutputStatisticsOutputDatasetFacet.json#/$defs/OutputStatisticsOutputDatasetFacet";
const SQL: &str = "1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet";
const JOB_TYPE: &str = "2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet";
const PARENT: &str = "1-1-0/ParentRunFacet.json#/$defs/ParentRunFacet";
const ERROR_MESSAGE: &str = "1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet";

/// What a pipeline's plan says of its views, for their events.
#[derive(Debug, Clone, PartialEq)]
pub struct Jobs {
    /// The namespace of the jobs, and of the datasets that live nowhere (lazy views).
    pub namespace: String,
    /// The pipeline's name: its job's name, and the prefix of its views' jobs.
    pub pipeline: String,
    /// Where each relation the views read lives (sources, materialized views' outputs).
    /// A relation missing here (a lazy view) is a dataset of [`Jobs::namespace`].
    pub datasets: BTreeMap<String, DatasetName>,
    /// The views, in name order.
    pub views: Vec<ViewJob>,
}

/// One view, as its plan says.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewJob {
    /// The view's name.
    pub name: String,
    /// Its SQL: the query file, or the unparsed SQL of a template.
    pub sql: String,
    /// Its output columns: name and Arrow type.
    pub schema: Vec<(String, String)>,
    /// Its lineage, with relations named as the plan names them.
    pub lineage: Lineage,
    /// The figures of its last recorded write, if any.
    pub last_write: Option<Statistics>,
}

/// What a write produced: the `outputStatistics` facet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Statistics {
    /// Rows written.
    pub rows: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Files written.
    pub files: u64,
}

/// How an executed view ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewEnd {
    /// It committed; with the figures of its write when they were recorded.
    Complete(Option<Statistics>),
    /// It failed, with the reason.
    Fail(String),
    /// The run was cancelled while it ran: nothing was committed.
    Abort,
}

/// The dataset of a location: `file` and an absolute path for a local path or `file://`
/// URL, `s3://bucket` and the key for `s3://bucket/key` (the OpenLineage naming spec).
pub fn dataset_of(location: &str) -> DatasetName {
    let trimmed = if location.len() > 1 { location.trim_end_matches('/') } else { location };
    match url::Url::parse(trimmed) {
        Ok(url) if trimmed.contains("://") => DatasetName::from_location(&url),
        _ => DatasetName { namespace: "file".to_owned(), name: trimmed.to_owned() },
    }
}

impl Jobs {
    /// The events of a new run of the pipeline, with fresh run ids.
    pub fn run(self) -> Run {
        let views = self.views.iter().map(|v| (v.name.clone(), Uuid::now_v7())).collect();
        Run { jobs: self, id: Uuid::now_v7(), views }
    }

    /// One event per view, of type `OTHER` (metadata outside a run): the facets its run
    /// events carry, with the figures of its last recorded write. The run ids are derived
    /// from the job names, so printing them again gives the same events.
    pub fn static_events(&self, at: DateTime<Utc>) -> Vec<RunEvent> {
        self.views
            .iter()
            .map(|view| {
                let job = self.view_job(view);
                let id =
                    Uuid::new_v5(&Uuid::NAMESPACE_URL, format!("dfpipe:{}/{}", job.namespace, job.name).as_bytes());
                let run = RunModel { run_id: id, facets: RunFacets::default() };
                let outputs = vec![self.output(view, view.last_write)];
                event(RunEventType::Other, at, run, job, self.inputs(view), outputs)
            })
            .collect()
    }

    fn view(&self, name: &str) -> Option<&ViewJob> {
        self.views.iter().find(|v| v.name == name)
    }

    /// Where `relation` lives.
    fn dataset(&self, relation: &str) -> DatasetName {
        self.datasets
            .get(relation)
            .cloned()
            .unwrap_or_else(|| DatasetName { namespace: self.namespace.clone(), name: relation.to_owned() })
    }

    fn pipeline_job(&self) -> Job {
        let facets = JobFacets { job_type: Some(job_type("PIPELINE")), ..JobFacets::default() };
        Job { namespace: self.namespace.clone(), name: self.pipeline.clone(), facets }
    }

    fn view_job(&self, view: &ViewJob) -> Job {
        let facets = JobFacets {
            sql: Some(SqlJobFacet { base: base(SQL), query: view.sql.clone() }),
            job_type: Some(job_type("VIEW")),
            ..JobFacets::default()
        };
        Job { namespace: self.namespace.clone(), name: format!("{}.{}", self.pipeline, view.name), facets }
    }

    fn inputs(&self, view: &ViewJob) -> Vec<Dataset> {
        (view.lineage.depends_on.iter())
            .map(|relation| {
                let DatasetName { namespace, name } = self.dataset(relation);
                Dataset { namespace, name, facets: DatasetFacets::default(), input_facets: None, output_facets: None }
            })
            .collect()
    }

    /// The view's output: its schema and column lineage, and `statistics` when given.
    fn output(&self, view: &ViewJob, statistics: Option<Statistics>) -> Dataset {
        let DatasetName { namespace, name } = self.dataset(&view.name);
        let fields = (view.schema.iter())
            .map(|(name, data_type)| SchemaField { name: name.clone(), type_: data_type.clone(), description: None })
            .collect();
        let facets = DatasetFacets {
            schema: Some(SchemaDatasetFacet { base: base(SCHEMA), fields }),
            column_lineage: Some(self.column_lineage(&view.lineage)),
            ..DatasetFacets::default()
        };
        let output_facets = statistics.map(|s| OutputDatasetFacets {
            output_statistics: Some(OutputStatisticsOutputDatasetFacet {
                base: base(OUTPUT_STATISTICS),
                row_count: Some(s.rows as i64),
                size: Some(s.bytes as i64),
                file_count: Some(s.files as i64),
            }),
            extra: serde_json::Map::new(),
        });
        Dataset { namespace, name, facets, input_facets: None, output_facets }
    }

    /// `columnLineage` in the per-field layout: each output field lists the columns whose
    /// values flow into it (`DIRECT`), then every inspected column (`INDIRECT`), which decides
    /// the rows of every field.
    fn column_lineage(&self, lineage: &Lineage) -> ColumnLineageDatasetFacet {
        let indirect: Vec<(DatasetName, &str, Transformation)> = (lineage.inspected.iter())
            .map(|i| {
                (
                    self.dataset(&i.relation),
                    i.column.as_str(),
                    transformation(TransformationType::Indirect, role(i.role)),
                )
            })
            .collect();
        let fields = (lineage.columns.iter())
            .map(|column| {
                let mut inputs: BTreeMap<(DatasetName, &str), Vec<Transformation>> = BTreeMap::new();
                for source in &column.sources {
                    let direct = transformation(TransformationType::Direct, direct_subtype(source));
                    inputs.entry((self.dataset(&source.relation), source.column.as_str())).or_default().push(direct);
                }
                for (dataset, field, indirect) in &indirect {
                    inputs.entry((dataset.clone(), field)).or_default().push(indirect.clone());
                }
                let input_fields = (inputs.into_iter())
                    .map(|((DatasetName { namespace, name }, field), transformations)| InputField {
                        namespace,
                        name,
                        field: Some(field.to_owned()),
                        transformations,
                    })
                    .collect();
                (column.name.clone(), FieldLineage { input_fields })
            })
            .collect();
        ColumnLineageDatasetFacet { base: base(COLUMN_LINEAGE), fields, dataset: Vec::new() }
    }
}

/// The events of one run of a pipeline: its own run, and a child run per executed view.
#[derive(Debug, Clone)]
pub struct Run {
    jobs: Jobs,
    id: Uuid,
    views: BTreeMap<String, Uuid>,
}

impl Run {
    /// The pipeline run's id.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// What the events are built from.
    pub fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    /// The pipeline run starts.
    pub fn start(&self, at: DateTime<Utc>) -> RunEvent {
        let run = RunModel { run_id: self.id, facets: RunFacets::default() };
        event(RunEventType::Start, at, run, self.jobs.pipeline_job(), Vec::new(), Vec::new())
    }

    /// The pipeline run ends: `COMPLETE`, or `FAIL` with `error`.
    pub fn end(&self, at: DateTime<Utc>, error: Option<&str>) -> RunEvent {
        let facets = RunFacets { error_message: error.map(error_message), ..RunFacets::default() };
        let kind = if error.is_some() { RunEventType::Fail } else { RunEventType::Complete };
        event(kind, at, RunModel { run_id: self.id, facets }, self.jobs.pipeline_job(), Vec::new(), Vec::new())
    }

    /// View `view` starts executing. `None` for a name that is not one of the views.
    pub fn view_start(&self, view: &str, at: DateTime<Utc>) -> Option<RunEvent> {
        self.view_event(view, at, RunEventType::Start, None, None)
    }

    /// View `view` ended. `None` for a name that is not one of the views.
    pub fn view_end(&self, view: &str, at: DateTime<Utc>, end: &ViewEnd) -> Option<RunEvent> {
        match end {
            ViewEnd::Complete(statistics) => self.view_event(view, at, RunEventType::Complete, None, *statistics),
            ViewEnd::Fail(message) => self.view_event(view, at, RunEventType::Fail, Some(message), None),
            ViewEnd::Abort => self.view_event(view, at, RunEventType::Abort, None, None),
        }
    }

    fn view_event(
        &self,
        name: &str,
        at: DateTime<Utc>,
        kind: RunEventType,
        error: Option<&str>,
        statistics: Option<Statistics>,
    ) -> Option<RunEvent> {
        let (view, id) = (self.jobs.view(name)?, *self.views.get(name)?);
        let parent = ParentRunFacet {
            base: base(PARENT),
            run: ParentRun { run_id: self.id.to_string() },
            job: ParentJob { namespace: self.jobs.namespace.clone(), name: self.jobs.pipeline.clone() },
            root: None,
        };
        let facets =
            RunFacets { parent: Some(parent), error_message: error.map(error_message), ..RunFacets::default() };
        let outputs = vec![self.jobs.output(view, statistics)];
        Some(event(
            kind,
            at,
            RunModel { run_id: id, facets },
            self.jobs.view_job(view),
            self.jobs.inputs(view),
            outputs,
        ))
    }
}

fn event(
    kind: RunEventType,
    at: DateTime<Utc>,
    run: RunModel,
    job: Job,
    inputs: Vec<Dataset>,
    outputs: Vec<Dataset>,
) -> RunEvent {
    RunEvent {
        event_type: kind,
        event_time: at.to_rfc3339_opts(SecondsFormat::Millis, true),
        run,
        job,
        inputs,
        outputs,
        producer: PRODUCER.to_owned(),
        schema_url: RUN_EVENT_SCHEMA_URL.to_owned(),
    }
}

fn base(schema: &str) -> BaseFacet {
    BaseFacet::new(PRODUCER, schema)
}

fn job_type(kind: &str) -> JobTypeJobFacet {
    JobTypeJobFacet {
        base: base(JOB_TYPE),
        processing_type: "BATCH".to_owned(),
        integration: "DFPIPE".to_owned(),
        job_type: kind.to_owned(),
    }
}

fn error_message(message: &str) -> ErrorMessageRunFacet {
    ErrorMessageRunFacet {
        base: base(ERROR_MESSAGE),
        message: message.to_owned(),
        programming_language: "Rust".to_owned(),
        stack_trace: None,
    }
}

fn transformation(kind: TransformationType, subtype: &str) -> Transformation {
    Transformation { type_: kind, subtype: Some(subtype.to_owned()), description: String::new(), masking: false }
}

/// `copy` is `IDENTITY`; `transform` is `AGGREGATION` through an aggregate function, else
/// `TRANSFORMATION`.
fn direct_subtype(source: &Source) -> &'static str {
    match source.kind {
        Kind::Copy => "IDENTITY",
        Kind::Transform if source.aggregated => "AGGREGATION",
        Kind::Transform => "TRANSFORMATION",
    }
}

fn role(role: Role) -> &'static str {
    match role {
        Role::Filter => "FILTER",
        Role::Join => "JOIN",
        Role::Group => "GROUP_BY",
        Role::Sort => "SORT",
        Role::Window => "WINDOW",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datasets_are_named_after_where_they_live() {
        let check = |location: &str, namespace: &str, name: &str| {
            let dataset = dataset_of(location);
            assert_eq!((dataset.namespace.as_str(), dataset.name.as_str()), (namespace, name), "{location}");
        };
        check("/tmp/shop/data/orders/", "file", "/tmp/shop/data/orders");
        check("file:///tmp/shop/out/q01", "file", "/tmp/shop/out/q01");
        check("s3://shop-data/raw/orders/", "s3://shop-data", "raw/orders");
        check("gs://lake/t", "gs://lake", "t");
        check("/", "file", "/");
    }
}
