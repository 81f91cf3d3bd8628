//! Source tables: each partition of a `StreamingTable` pulls from one connector source.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use connectors::format::BadRecord;
use connectors::{Sink, SinkContext, Source, SourceContext};
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::stream;

use crate::checkpoint::{CheckpointHub, SourcePosition};
use crate::ddl::ResolvedTable;
use crate::error::EngineError;
use crate::exec::dlq::dead_letter_batch;
use crate::metrics::Counters;
use crate::stream::watermark::{SourceWatermark, WatermarkSpec, register_source};

/// One partition of a source table.
#[derive(Debug)]
pub struct ConnectorPartition {
    table: ResolvedTable,
    partition: usize,
    partitions: usize,
    batch_size: usize,
    counters: Arc<Counters>,
    /// The dead-letter table, for `bad_data = 'dlq'`.
    dlq: Option<ResolvedTable>,
    /// How the table's watermark is derived, when it has an event time.
    event_time: Option<WatermarkSpec>,
}

impl ConnectorPartition {
    pub fn new(
        table: ResolvedTable,
        partition: usize,
        partitions: usize,
        batch_size: usize,
        counters: Arc<Counters>,
        dlq: Option<ResolvedTable>,
    ) -> Self {
        ConnectorPartition {
            table,
            partition,
            partitions,
            batch_size,
            counters,
            dlq,
            event_time: None,
        }
    }

    /// Track a watermark from the table's event time column.
    pub fn with_event_time(mut self, spec: WatermarkSpec) -> Self {
        self.event_time = Some(spec);
        self
    }
}

/// A connector error inside DataFusion, keeping its SQLSTATE; messages already name the
/// table where it matters (bad records), the rest get it here.
fn external(table: &str, e: connectors::ConnectorError) -> DataFusionError {
    let e = match e {
        connectors::ConnectorError::Io { connector, message } if !message.contains(table) => {
            connectors::ConnectorError::Io {
                connector,
                message: format!("source table '{table}': {message}"),
            }
        }
        other => other,
    };
    DataFusionError::External(Box::new(EngineError::Connector(e)))
}

impl PartitionStream for ConnectorPartition {
    fn schema(&self) -> &SchemaRef {
        &self.table.schema
    }

    fn execute(&self, task: Arc<TaskContext>) -> SendableRecordBatchStream {
        // In a pipeline that takes checkpoints: where this partition resumes, and where it
        // reports its position after each batch.
        let (position, restore) = match task.session_config().get_extension::<CheckpointHub>() {
            Some(hub) => {
                let (position, restore) = hub.register_source(&self.table.def.name, self.partition);
                (Some(position), restore)
            }
            None => (None, None),
        };
        let ctx = SourceContext {
            table_name: self.table.def.name.clone(),
            schema: self.table.schema.clone(),
            partition: self.partition,
            partitions: self.partitions,
            batch_size: self.batch_size,
            format: self.table.format.clone(),
            bad_records: self.counters.errors.clone(),
            preview: false,
            event_time: self.event_time.is_some(),
            restore,
        };
        let name = self.table.def.name.clone();
        let schema = self.table.schema.clone();
        let source = match self.table.connector.make_source(
            &self.table.profile_config,
            &self.table.def.config,
            ctx,
        ) {
            Ok(source) => source,
            Err(e) => {
                let failed = stream::once(async move { Err(external(&name, e)) });
                return Box::pin(RecordBatchStreamAdapter::new(schema, failed));
            }
        };
        let state = PartitionState {
            source,
            name,
            dead_letters: self.dlq.clone().map(DeadLetters::new),
            position,
            acked: 0,
        };
        let counters = self.counters.clone();
        // A watermark per execution: two scans of one table advance independently.
        let event_time = self.event_time.as_ref().map(|spec| {
            let watermark = SourceWatermark::new(spec);
            register_source(&watermark);
            (spec.column, watermark)
        });
        // The source is polled inline by whoever polls the query: dropping the query stream
        // drops the source, so nothing outlives a cancelled or finished query.
        let batches = stream::unfold(Some(state), move |state| {
            let counters = counters.clone();
            let event_time = event_time.clone();
            async move {
                let mut state = state?;
                if let Some(position) = &state.position {
                    let committed = position.committed();
                    if committed > state.acked {
                        state.acked = committed;
                        if let Err(e) = state.source.checkpoint_committed(committed).await {
                            return Some((Err(external(&state.name, e)), None));
                        }
                    }
                }
                let next = state.source.next_batch().await;
                let bad = state.source.take_bad_records();
                if let Some(dlq) = state.dead_letters.as_mut()
                    && let Err(e) = dlq.write(&state.name, bad).await
                {
                    return Some((Err(DataFusionError::External(Box::new(e))), None));
                }
                match next {
                    Ok(Some(batch)) => {
                        if let Some(position) = &state.position {
                            position.record(state.source.snapshot());
                        }
                        counters.add_in(batch.num_rows(), batch.get_array_memory_size());
                        if let Some((column, watermark)) = &event_time {
                            match state.source.batch_split() {
                                Some(split) => watermark.observe_split(
                                    split,
                                    &state.source.splits(),
                                    batch.column(*column),
                                ),
                                None => watermark.observe(batch.column(*column)),
                            }
                        }
                        Some((Ok(batch), Some(state)))
                    }
                    Ok(None) => {
                        if let Some((_, watermark)) = &event_time {
                            watermark.finish();
                        }
                        match state.dead_letters.as_mut() {
                            Some(dlq) => match dlq.close().await {
                                Ok(()) => None,
                                Err(e) => Some((Err(DataFusionError::External(Box::new(e))), None)),
                            },
                            None => None,
                        }
                    }
                    Err(e) => Some((Err(external(&state.name, e)), None)),
                }
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(schema, batches))
    }
}

/// What a partition's stream carries from one batch to the next.
struct PartitionState {
    source: Box<dyn Source>,
    name: String,
    dead_letters: Option<DeadLetters>,
    /// Where the position goes, in a pipeline that takes checkpoints.
    position: Option<Arc<SourcePosition>>,
    /// The newest checkpoint the source was told about.
    acked: u64,
}

/// The dead-letter table of a source, its sink opened on the first bad record.
struct DeadLetters {
    table: ResolvedTable,
    sink: Option<Box<dyn Sink>>,
}

impl DeadLetters {
    fn new(table: ResolvedTable) -> Self {
        DeadLetters { table, sink: None }
    }

    async fn write(&mut self, source: &str, records: Vec<BadRecord>) -> Result<(), EngineError> {
        if records.is_empty() {
            return Ok(());
        }
        let batch = dead_letter_batch(&self.table.schema, source, &records)?;
        let sink = match self.sink.as_mut() {
            Some(sink) => sink,
            None => {
                // Dead letters are written at least once (not part of checkpoints).
                let ctx = SinkContext {
                    table_name: self.table.def.name.clone(),
                    schema: self.table.schema.clone(),
                    format: self.table.format.clone(),
                    checkpointed: false,
                    pipeline_id: None,
                };
                let sink = self.table.connector.make_sink(
                    &self.table.profile_config,
                    &self.table.def.config,
                    ctx,
                )?;
                self.sink.insert(sink)
            }
        };
        sink.write(batch).await?;
        Ok(())
    }

    async fn close(&mut self) -> Result<(), EngineError> {
        if let Some(sink) = self.sink.as_mut() {
            sink.close().await?;
        }
        Ok(())
    }
}
