use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use tokio::time::Instant;

use super::NexmarkTable;
use super::generator::NexmarkGenerator;
use crate::connector::{Source, SourceContext};
use crate::error::Result;
use crate::pacing::Pacer;

/// Emits event indices `partition, partition + partitions, ...` at this partition's share
/// of the rate, so all partitions together produce exactly the single-partition stream.
pub(super) struct NexmarkSource {
    /// Event time of the first event, kept in snapshots.
    base_time_ms: u64,
    generator: NexmarkGenerator,
    /// Columns of the full schema the table declares, if not all of them in order.
    projection: Option<Vec<usize>>,
    partition: u64,
    partitions: u64,
    /// Events this partition has emitted.
    emitted: u64,
    /// Events this partition will emit, if bounded.
    limit: Option<u64>,
    /// When `runtime` is up, even if the source fell behind its rate.
    deadline: Option<Instant>,
    pacer: Pacer,
    batch_size: usize,
}

impl NexmarkSource {
    pub(super) fn new(table: &NexmarkTable, ctx: SourceContext) -> Result<Self> {
        table.validate()?;
        let projection = super::projection(&ctx.schema)?;
        let partitions = ctx.partitions.max(1) as u64;
        let partition = ctx.partition as u64;
        // Of the first `total` events, those with index % partitions == partition are ours.
        let share = |total: u64| total / partitions + u64::from(partition < total % partitions);
        let mut limit = table.message_count.map(share);
        if let Some(runtime) = table.runtime {
            // Events due before the runtime ends (the cast saturates).
            let due = share((runtime * table.event_rate).ceil() as u64);
            limit = Some(limit.map_or(due, |l| l.min(due)));
        }
        let now = Instant::now();
        let deadline = table
            .runtime
            .and_then(|r| Duration::try_from_secs_f64(r).ok())
            .and_then(|r| now.checked_add(r));
        // Truncated to the second so partitions started together agree on event times; a
        // resumed source keeps the base time it started with.
        let restored_base = ctx
            .restore
            .as_ref()
            .and_then(|r| r.get("base_time_ms"))
            .and_then(serde_json::Value::as_u64);
        let base_time_ms = table.base_time.or(restored_base).unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() * 1000)
                .unwrap_or_default()
        });
        let generator = NexmarkGenerator::new(
            table.seed.unwrap_or(0),
            table.first_event_id.unwrap_or(0),
            base_time_ms,
            table.event_time_rate.unwrap_or(table.event_rate),
        );
        let emitted = ctx.restored_u64("emitted");
        Ok(NexmarkSource {
            base_time_ms,
            generator,
            projection,
            partition,
            partitions,
            emitted,
            limit,
            deadline,
            pacer: Pacer::resumed(table.event_rate / partitions as f64, emitted),
            batch_size: ctx.batch_size.max(1),
        })
    }
}

#[async_trait]
impl Source for NexmarkSource {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let remaining = self
            .limit
            .map_or(u64::MAX, |l| l.saturating_sub(self.emitted));
        if remaining == 0 || self.deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        let max = (self.batch_size as u64).min(remaining) as usize;
        // Cancellation safe: waiting holds no rows; `emitted` only moves after the wait.
        let rows = self.pacer.wait_for_rows(self.emitted, max).await;
        let first = self.partition + self.emitted * self.partitions;
        let batch = self.generator.build_batch(first, self.partitions, rows)?;
        self.emitted += rows as u64;
        Ok(Some(match &self.projection {
            Some(indices) => batch.project(indices)?,
            None => batch,
        }))
    }

    fn snapshot(&self) -> serde_json::Value {
        serde_json::json!({ "emitted": self.emitted, "base_time_ms": self.base_time_ms })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::Schema;

    use super::*;
    use crate::connector::Connector;
    use crate::error::ConnectorError;
    use crate::format::FormatSpec;
    use crate::nexmark::{NexmarkConnector, nexmark_schema};

    fn table(event_rate: f64) -> NexmarkTable {
        NexmarkTable {
            event_rate,
            event_time_rate: None,
            message_count: None,
            runtime: None,
            seed: None,
            base_time: Some(1_700_000_000_000),
            first_event_id: None,
        }
    }

    fn ctx(partition: usize, partitions: usize) -> SourceContext {
        SourceContext {
            table_name: "nexmark".into(),
            schema: nexmark_schema(),
            partition,
            partitions,
            batch_size: 1_000,
            format: FormatSpec::default(),
            bad_records: Default::default(),
            preview: false,
            event_time: false,
            restore: None,
        }
    }

    async fn drain(source: &mut dyn Source) -> Vec<RecordBatch> {
        let mut batches = Vec::new();
        while let Some(batch) = source.next_batch().await.unwrap() {
            batches.push(batch);
        }
        batches
    }

    #[tokio::test]
    async fn message_count_bounds_each_partition_and_the_total() {
        let mut table = table(1e9);
        table.message_count = Some(10_001);
        let mut total = 0;
        for partition in 0..3 {
            let mut source = NexmarkSource::new(&table, ctx(partition, 3)).unwrap();
            let rows: usize = drain(&mut source).await.iter().map(|b| b.num_rows()).sum();
            assert_eq!(rows, [3_334, 3_334, 3_333][partition]);
            assert_eq!(source.snapshot()["emitted"], rows);
            assert!(source.next_batch().await.unwrap().is_none());
            total += rows;
        }
        assert_eq!(total, 10_001);
    }

    #[tokio::test]
    async fn a_restored_source_continues_the_same_stream() {
        let mut table = table(1e9);
        table.message_count = Some(5_000);
        // No configured base time: the restored source must keep the one it started with.
        table.base_time = None;
        let mut first = NexmarkSource::new(&table, ctx(0, 1)).unwrap();
        let mut seen = vec![first.next_batch().await.unwrap().unwrap()];
        seen.push(first.next_batch().await.unwrap().unwrap());
        let snapshot = first.snapshot();
        let mut restored_ctx = ctx(0, 1);
        restored_ctx.restore = Some(snapshot.clone());
        let mut rest = NexmarkSource::new(&table, restored_ctx).unwrap();
        seen.extend(drain(&mut rest).await);
        table.base_time = snapshot["base_time_ms"].as_u64();
        let all = drain(&mut NexmarkSource::new(&table, ctx(0, 1)).unwrap()).await;
        let concat = |b: &[RecordBatch]| arrow::compute::concat_batches(&b[0].schema(), b).unwrap();
        assert_eq!(concat(&seen), concat(&all));
    }

    #[tokio::test]
    async fn batches_respect_batch_size() {
        let mut table = table(1e9);
        table.message_count = Some(2_500);
        let mut source = NexmarkSource::new(&table, ctx(0, 1)).unwrap();
        let sizes: Vec<usize> = drain(&mut source)
            .await
            .iter()
            .map(|b| b.num_rows())
            .collect();
        assert!(sizes.iter().all(|&n| n <= 1_000));
        assert_eq!(sizes.iter().sum::<usize>(), 2_500);
    }

    #[tokio::test]
    async fn runtime_bounds_the_source() {
        let mut table = table(1_000.0);
        table.runtime = Some(0.05);
        let mut source = NexmarkSource::new(&table, ctx(0, 1)).unwrap();
        let rows: usize = drain(&mut source).await.iter().map(|b| b.num_rows()).sum();
        assert!(rows > 0 && rows <= 50, "{rows} rows");
    }

    #[tokio::test]
    async fn declared_columns_are_projected() {
        let full = nexmark_schema();
        let schema = Arc::new(Schema::new(vec![
            full.field_with_name("bid").unwrap().clone(),
            full.field_with_name("event_type").unwrap().clone(),
        ]));
        let mut table = table(1e9);
        table.message_count = Some(100);
        let mut context = ctx(0, 1);
        context.schema = schema.clone();
        let mut source = NexmarkSource::new(&table, context).unwrap();
        let batch = source.next_batch().await.unwrap().unwrap();
        assert_eq!(batch.schema(), schema);
    }

    #[test]
    fn unknown_columns_and_bad_rates_are_rejected() {
        let mut context = ctx(0, 1);
        context.schema = Arc::new(Schema::new(vec![arrow::datatypes::Field::new(
            "price",
            arrow::datatypes::DataType::Int64,
            false,
        )]));
        assert!(matches!(
            NexmarkSource::new(&table(10.0), context),
            Err(ConnectorError::Config(_))
        ));
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                NexmarkConnector.make_source(&Default::default(), &table(rate), ctx(0, 1)),
                Err(ConnectorError::InvalidValue { .. })
            ));
        }
        let mut bad_runtime = table(10.0);
        bad_runtime.runtime = Some(0.0);
        assert!(matches!(
            NexmarkSource::new(&bad_runtime, ctx(0, 1)),
            Err(ConnectorError::InvalidValue { .. })
        ));
    }

    #[test]
    fn boundedness_follows_the_options() {
        let mut table = table(10.0);
        assert!(!NexmarkConnector.bounded(&table));
        table.runtime = Some(1.0);
        assert!(NexmarkConnector.bounded(&table));
    }
}
