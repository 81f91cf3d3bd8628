//! Sink tables: `INSERT INTO` plans end in a `DataSinkExec` writing to a connector sink.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use connectors::{Sink, SinkContext};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::datasource::sink::{DataSink, DataSinkExec};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::logical_expr::dml::InsertOp;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, SendableRecordBatchStream,
};

use crate::checkpoint::CheckpointHub;
use crate::checkpoint::cut::{Cuts, Step, TOP_SEGMENT, next_step};
use crate::ddl::ResolvedTable;
use crate::error::EngineError;
use crate::metrics::Counters;
use crate::stream::updating::with_op_column;

/// A sink table as DataFusion sees it: insertable, never scannable.
#[derive(Debug)]
pub struct SinkTable {
    table: ResolvedTable,
    counters: Arc<Counters>,
}

impl SinkTable {
    pub fn new(table: ResolvedTable, counters: Arc<Counters>) -> Self {
        SinkTable { table, counters }
    }

    /// Declared without columns: the query writing it decides them.
    pub fn schema_is_open(&self) -> bool {
        self.table.schema.fields().is_empty()
    }

    /// The same table with the columns of the query that writes it, checked by its
    /// connector (a `sink.key_field` must be one of them, ...).
    pub fn with_schema(&self, schema: SchemaRef) -> Result<Self, EngineError> {
        let mut table = self.table.clone();
        table.connector.validate_table(
            &table.profile_config,
            &table.def.config,
            table.role,
            &schema,
        )?;
        table.schema = schema;
        Ok(SinkTable {
            table,
            counters: self.counters.clone(),
        })
    }
}

fn external(e: impl Into<EngineError>) -> DataFusionError {
    DataFusionError::External(Box::new(e.into()))
}

#[async_trait]
impl TableProvider for SinkTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.table.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Err(external(EngineError::WrongObjectType(format!(
            "cannot read from sink table '{}'",
            self.table.def.name
        ))))
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        _insert_op: InsertOp,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let sink = ConnectorDataSink {
            table: self.table.clone(),
            counters: self.counters.clone(),
            input_schema: self.table.schema.clone(),
        };
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }
}

/// The sink table a pipeline's plan writes, if it writes one.
pub(crate) fn sink_table(plan: &Arc<dyn ExecutionPlan>) -> Option<&ResolvedTable> {
    let sink = plan.as_any().downcast_ref::<DataSinkExec>()?;
    sink.sink()
        .as_any()
        .downcast_ref::<ConnectorDataSink>()
        .map(|s| &s.table)
}

/// What a sink instance of `table` is told; `pipeline_id` when it runs with checkpoints.
pub(crate) fn sink_context(table: &ResolvedTable, pipeline_id: Option<&str>) -> SinkContext {
    SinkContext {
        table_name: table.def.name.clone(),
        schema: table.schema.clone(),
        format: table.format.clone(),
        checkpointed: pipeline_id.is_some(),
        pipeline_id: pipeline_id.map(str::to_string),
    }
}

/// Writes every batch of the input to one connector sink instance.
#[derive(Debug)]
struct ConnectorDataSink {
    table: ResolvedTable,
    counters: Arc<Counters>,
    /// What the plan feeds in: the table's columns, plus `_op` for a sink of changes.
    input_schema: SchemaRef,
}

impl DisplayAs for ConnectorDataSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "ConnectorSink: table={} connector={}",
            self.table.def.name, self.table.def.connector
        )
    }
}

#[async_trait]
impl DataSink for ConnectorDataSink {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> &SchemaRef {
        &self.input_schema
    }

    async fn write_all(
        &self,
        mut data: SendableRecordBatchStream,
        context: &Arc<TaskContext>,
    ) -> DfResult<u64> {
        let hub = context.session_config().get_extension::<CheckpointHub>();
        let ctx = sink_context(&self.table, hub.as_ref().map(|h| h.pipeline_id.as_str()));
        let mut sink = self
            .table
            .connector
            .make_sink(&self.table.profile_config, &self.table.def.config, ctx)
            .map_err(external)?;
        // Resuming: finish the commit of the checkpoint resumed from, which a crash may
        // have interrupted (sinks make it idempotent).
        if let Some((epoch, prepared)) = hub.as_ref().and_then(|h| h.restored_sink()) {
            sink.commit(epoch, prepared).await.map_err(external)?;
        }
        let mut written = 0u64;
        // Sinks with time-based work (rolling files) get ticks while no data arrives.
        let mut ticks = sink.tick_interval().map(tokio::time::interval);
        let mut checkpoints = hub.as_ref().map(|h| {
            let mut timer =
                tokio::time::interval_at(tokio::time::Instant::now() + h.interval, h.interval);
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            timer
        });
        // The barriers reaching the loop's part of the plan (see crate::checkpoint::cut).
        let mut cuts = hub.clone().map(|h| Cuts::new(h, TOP_SEGMENT));
        let mut stopping = false;
        loop {
            let step = tokio::select! {
                step = next_step(cuts.as_ref(), &mut data) => step,
                _ = every(&mut ticks) => {
                    sink.tick().await.map_err(external)?;
                    continue;
                }
                _ = every(&mut checkpoints) => {
                    if let Some(hub) = &hub {
                        hub.request_next();
                    }
                    continue;
                }
                _ = async {
                    match &hub {
                        Some(hub) => hub.stop.cancelled().await,
                        None => futures::future::pending::<()>().await,
                    }
                }, if !stopping => {
                    // A graceful stop: a last checkpoint, where the resumed job starts.
                    stopping = true;
                    if let Some(hub) = &hub {
                        hub.request_next();
                    }
                    continue;
                }
            };
            let batch = match step {
                Step::Barrier(epoch) => {
                    if let (Some(hub), Some(cuts)) = (&hub, &mut cuts) {
                        take_checkpoint(sink.as_mut(), hub, epoch, written).await?;
                        cuts.passed(epoch);
                    }
                    if stopping {
                        return Ok(written);
                    }
                    continue;
                }
                Step::Next(None) => break,
                Step::Next(Some(batch)) => batch?,
            };
            let rows = batch.num_rows();
            let bytes = batch.get_array_memory_size();
            sink.write(batch).await.map_err(external)?;
            self.counters.add_out(rows, bytes);
            written += rows as u64;
        }
        // The input ended: a last checkpoint covers everything, so a crash before the job
        // is recorded as finished does not write anything twice.
        if let Some(hub) = &hub {
            hub.top_ended();
            take_checkpoint(sink.as_mut(), hub, hub.next_epoch(), written).await?;
        }
        sink.close().await.map_err(external)?;
        Ok(written)
    }
}

/// The next tick of an optional timer (never, without one).
async fn every(timer: &mut Option<tokio::time::Interval>) {
    match timer.as_mut() {
        Some(t) => {
            t.tick().await;
        }
        None => futures::future::pending::<()>().await,
    }
}

/// Prepare the sink, write the checkpoint, commit: see crate::checkpoint.
/// Recovery tests reach the moment between a durable checkpoint and its commit this way:
/// with `LAMINAR_TEST_CRASH_AFTER_CHECKPOINT=n` the process aborts there once the sink has
/// written `n` rows.
fn crash_for_tests(written: u64) {
    static AFTER_ROWS: std::sync::OnceLock<Option<u64>> = std::sync::OnceLock::new();
    let after = AFTER_ROWS.get_or_init(|| {
        std::env::var("LAMINAR_TEST_CRASH_AFTER_CHECKPOINT")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if after.is_some_and(|n| written >= n) {
        tracing::error!(written, "LAMINAR_TEST_CRASH_AFTER_CHECKPOINT: aborting");
        std::process::abort();
    }
}

async fn take_checkpoint(
    sink: &mut dyn Sink,
    hub: &CheckpointHub,
    epoch: u64,
    written: u64,
) -> DfResult<()> {
    let started = catalog::now_millis();
    let prepared = sink.prepare(epoch).await.map_err(external)?;
    let record = hub
        .write(epoch, started, prepared.clone())
        .map_err(external)?;
    crash_for_tests(written);
    sink.commit(epoch, prepared).await.map_err(external)?;
    hub.committed(epoch);
    tracing::debug!(
        pipeline = %hub.pipeline_id,
        epoch,
        took_ms = record.finish_time.saturating_sub(started),
        "checkpoint complete"
    );
    Ok(())
}

/// The same sink taking changes (rows with a last `_op` column), if its table can write
/// them (`debezium_json`, or a connector's own way such as Kafka's keyed upserts).
pub fn changes_sink(sink: &dyn DataSink) -> Option<Arc<dyn DataSink>> {
    let sink = sink.as_any().downcast_ref::<ConnectorDataSink>()?;
    let accepts = sink
        .table
        .connector
        .accepts_changes(&sink.table.def.config, &sink.table.format)
        .unwrap_or(false);
    accepts.then(|| {
        Arc::new(ConnectorDataSink {
            table: sink.table.clone(),
            counters: sink.counters.clone(),
            input_schema: with_op_column(&sink.table.schema),
        }) as Arc<dyn DataSink>
    })
}

/// The table a `DataSinkExec` writes, for messages.
pub fn sink_table_name(sink: &dyn DataSink) -> Option<String> {
    sink.as_any()
        .downcast_ref::<ConnectorDataSink>()
        .map(|s| s.table.def.name.clone())
}
