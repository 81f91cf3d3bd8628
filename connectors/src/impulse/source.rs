use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arrow::array::{Int64Array, TimestampNanosecondArray};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;

use super::ImpulseTable;
use crate::connector::{Source, SourceContext};
use crate::error::{ConnectorError, Result};
use crate::pacing::Pacer;

/// `event_rate` must be a positive, finite number.
pub(super) fn check_rate(rate: f64) -> Result<()> {
    if rate > 0.0 && rate.is_finite() {
        Ok(())
    } else {
        Err(ConnectorError::InvalidValue {
            connector: "impulse".into(),
            key: "event_rate".into(),
            value: rate.to_string(),
            expected: "a number greater than 0".into(),
        })
    }
}

/// Emits `counter` values `partition, partition + partitions, ...` at this partition's
/// share of the rate.
pub(super) struct ImpulseSource {
    schema: SchemaRef,
    partition: i64,
    partitions: i64,
    /// Rows this partition has emitted.
    emitted: u64,
    /// Rows this partition will emit, if bounded.
    limit: Option<u64>,
    event_time_interval_ns: Option<i64>,
    start_ns: i64,
    pacer: Pacer,
    batch_size: usize,
}

impl ImpulseSource {
    pub(super) fn new(table: &ImpulseTable, ctx: SourceContext) -> Result<Self> {
        check_rate(table.event_rate)?;
        let partitions = ctx.partitions.max(1) as u64;
        let partition = ctx.partition as u64;
        // Rows with counter % partitions == partition belong to this partition.
        let limit = table
            .message_count
            .map(|n| n / partitions + u64::from(partition < n % partitions));
        // A resumed source goes on from its checkpointed position with the same event times.
        let emitted = ctx.restored_u64("emitted");
        let start_ns = ctx
            .restore
            .as_ref()
            .and_then(|r| r.get("start_ns"))
            .and_then(serde_json::Value::as_i64)
            .unwrap_or_else(|| {
                SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as i64)
                    .unwrap_or_default()
            });
        let rate = table.event_rate / partitions as f64;
        Ok(ImpulseSource {
            schema: ctx.schema.clone(),
            partition: partition as i64,
            partitions: partitions as i64,
            emitted,
            limit,
            event_time_interval_ns: table.event_time_interval.map(|us| us as i64 * 1000),
            start_ns,
            pacer: Pacer::resumed(rate, emitted),
            batch_size: ctx.batch_size.max(1),
        })
    }

    fn build(&self, first: u64, rows: usize) -> Result<RecordBatch> {
        let counters = Int64Array::from_iter_values(
            (first..first + rows as u64).map(|i| i as i64 * self.partitions + self.partition),
        );
        let subtask = Int64Array::from_value(self.partition, rows);
        let timestamps: TimestampNanosecondArray = match self.event_time_interval_ns {
            Some(step) => counters
                .values()
                .iter()
                .map(|c| Some(self.start_ns + c * step))
                .collect(),
            None => {
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(|d| d.as_nanos() as i64)
                    .unwrap_or_default();
                TimestampNanosecondArray::from_value(now, rows)
            }
        };
        let columns: Vec<arrow::array::ArrayRef> =
            vec![Arc::new(counters), Arc::new(subtask), Arc::new(timestamps)];
        let full = RecordBatch::try_new(super::impulse_schema(), columns)?;
        // The table may declare a projection of the implied columns, in any order.
        let indices = self
            .schema
            .fields()
            .iter()
            .map(|f| full.schema().index_of(f.name()))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        Ok(full.project(&indices)?)
    }
}

#[async_trait]
impl Source for ImpulseSource {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let remaining = self.limit.map_or(u64::MAX, |l| l - self.emitted);
        if remaining == 0 {
            return Ok(None);
        }
        let max = (self.batch_size as u64).min(remaining) as usize;
        // Cancellation safe: waiting holds no rows; `emitted` only moves after the wait.
        let rows = self.pacer.wait_for_rows(self.emitted, max).await;
        let batch = self.build(self.emitted, rows)?;
        self.emitted += rows as u64;
        Ok(Some(batch))
    }

    fn snapshot(&self) -> serde_json::Value {
        serde_json::json!({ "emitted": self.emitted, "start_ns": self.start_ns })
    }
}
