//! Source tables: each partition of a `StreamingTable` pulls from one connector source.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use connectors::SourceContext;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use futures::stream;

use crate::ddl::ResolvedTable;
use crate::error::EngineError;
use crate::metrics::Counters;

/// One partition of a source table.
#[derive(Debug)]
pub struct ConnectorPartition {
    table: ResolvedTable,
    partition: usize,
    partitions: usize,
    batch_size: usize,
    counters: Arc<Counters>,
}

impl ConnectorPartition {
    pub fn new(
        table: ResolvedTable,
        partition: usize,
        partitions: usize,
        batch_size: usize,
        counters: Arc<Counters>,
    ) -> Self {
        ConnectorPartition {
            table,
            partition,
            partitions,
            batch_size,
            counters,
        }
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

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let ctx = SourceContext {
            table_name: self.table.def.name.clone(),
            schema: self.table.schema.clone(),
            partition: self.partition,
            partitions: self.partitions,
            batch_size: self.batch_size,
            format: self.table.format.clone(),
            bad_records: self.counters.errors.clone(),
        };
        let name = self.table.def.name.clone();
        let source = self.table.connector.make_source(
            &self.table.profile_config,
            &self.table.def.config,
            ctx,
        );
        let counters = self.counters.clone();
        let schema = self.table.schema.clone();
        // The source is polled inline by whoever polls the query: dropping the query stream
        // drops the source, so nothing outlives a cancelled or finished query.
        let batches = stream::unfold(Some((source, name)), move |state| {
            let counters = counters.clone();
            async move {
                let (source, name) = state?;
                let mut source = match source {
                    Ok(source) => source,
                    Err(e) => return Some((Err(external(&name, e)), None)),
                };
                match source.next_batch().await {
                    Ok(Some(batch)) => {
                        counters.add_in(batch.num_rows(), batch.get_array_memory_size());
                        Some((Ok(batch), Some((Ok(source), name))))
                    }
                    Ok(None) => None,
                    Err(e) => Some((Err(external(&name, e)), None)),
                }
            }
        });
        Box::pin(RecordBatchStreamAdapter::new(schema, batches))
    }
}
