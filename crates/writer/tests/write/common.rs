//! Shared fixtures: a small table, sources that fail or stall mid-stream, object stores.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Int64Array, StringArray};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::streaming::StreamingTable;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::object_store::memory::InMemory;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use datafusion::prelude::{SessionConfig, SessionContext};
use dfpipe_writer::{WriteSpec, WriterKnobs};
use futures::StreamExt;

/// The schema of table `t`: a key, its text, and a group `k % 3`.
pub(crate) fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("k", DataType::Int64, false),
        Field::new("v", DataType::Utf8, false),
        Field::new("g", DataType::Int64, false),
    ]))
}

/// Batch `b` of 100 rows of `t`, keys `100 b ..`.
pub(crate) fn batch(b: usize) -> RecordBatch {
    let keys: Vec<i64> = (0..100).map(|i| (b * 100 + i) as i64).collect();
    let values: Vec<String> = keys.iter().map(|k| format!("value {k}")).collect();
    let groups: Vec<i64> = keys.iter().map(|k| k % 3).collect();
    RecordBatch::try_new(
        schema(),
        vec![Arc::new(Int64Array::from(keys)), Arc::new(StringArray::from(values)), Arc::new(Int64Array::from(groups))],
    )
    .unwrap()
}

/// A context with `t` of `batches` batches in two partitions, and a `memory://bucket` store.
pub(crate) fn context(batches: usize) -> SessionContext {
    // Small batches, as the sink splits files at batch boundaries.
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_batch_size(100));
    let data: Vec<RecordBatch> = (0..batches).map(batch).collect();
    let (first, second) = data.split_at(batches / 2);
    let table = MemTable::try_new(schema(), vec![first.to_vec(), second.to_vec()]).unwrap();
    ctx.register_table("t", Arc::new(table)).unwrap();
    let url = ObjectStoreUrl::parse("memory://bucket").unwrap();
    ctx.register_object_store(url.as_ref(), Arc::new(InMemory::new()));
    ctx
}

/// A partition that yields `good` batches of `t`, then fails, or stalls forever if `stall`.
#[derive(Debug)]
struct Faulty {
    schema: SchemaRef,
    good: usize,
    stall: bool,
}

impl PartitionStream for Faulty {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let good = futures::stream::iter((0..self.good).map(|b| Ok(batch(b))));
        let tail = if self.stall {
            futures::stream::pending().boxed()
        } else {
            let error = DataFusionError::Execution(format!("injected failure after {} batches", self.good));
            futures::stream::once(async move { Err(error) }).boxed()
        };
        Box::pin(RecordBatchStreamAdapter::new(Arc::clone(&self.schema), good.chain(tail)))
    }
}

/// Registers `faulty`: `good` batches, then an error (or a stall).
pub(crate) fn register_faulty(ctx: &SessionContext, good: usize, stall: bool) {
    let partition = Faulty { schema: schema(), good, stall };
    let table = StreamingTable::try_new(schema(), vec![Arc::new(partition)]).unwrap();
    ctx.register_table("faulty", Arc::new(table)).unwrap();
}

pub(crate) async fn plan(ctx: &SessionContext, sql: &str) -> Arc<dyn ExecutionPlan> {
    ctx.sql(sql).await.unwrap().create_physical_plan().await.unwrap()
}

pub(crate) fn spec(target: &str, options: &[(&str, &str)]) -> WriteSpec {
    WriteSpec {
        target: target.to_owned(),
        options: options.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<BTreeMap<_, _>>(),
        knobs: WriterKnobs::default(),
        ..WriteSpec::default()
    }
}

/// All rows of a query, as one batch.
pub(crate) async fn rows(ctx: &SessionContext, sql: &str) -> RecordBatch {
    let df = ctx.sql(sql).await.unwrap();
    let schema = Arc::new(df.schema().as_arrow().clone());
    concat_batches(&schema, &df.collect().await.unwrap()).unwrap()
}

/// How many rows a query returns.
pub(crate) async fn count(ctx: &SessionContext, sql: &str) -> usize {
    ctx.sql(sql).await.unwrap().count().await.unwrap()
}
