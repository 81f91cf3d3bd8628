//! `SUBSCRIBE ... WITH (PROGRESS)`: every row carries the time it was sent, and while no
//! change arrives a progress row (`_progressed = true`, data columns NULL) says that
//! everything up to its `_timestamp` has been delivered — so a client can tell "nothing
//! changed" from "nothing arrived yet" (Materialize's `mz_progressed`).

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{
    ArrayRef, BooleanArray, RecordBatch, TimestampMicrosecondArray, new_null_array,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::error::DataFusionError;
use datafusion::physical_plan::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;
use tokio::time::{Instant, MissedTickBehavior, interval_at};

use crate::error::Result;

/// How often an idle subscription reports progress.
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// `stream` with `_timestamp` and `_progressed` columns in front, and a progress row
/// every `every` without changes.
pub fn with_progress(
    stream: SendableRecordBatchStream,
    every: Duration,
) -> Result<SendableRecordBatchStream> {
    let input = stream.schema();
    let mut fields = vec![
        Arc::new(Field::new(
            "_timestamp",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        )),
        Arc::new(Field::new("_progressed", DataType::Boolean, false)),
    ];
    // Progress rows have no data, so every data column may be NULL.
    fields.extend(
        input
            .fields()
            .iter()
            .map(|f| Arc::new(f.as_ref().clone().with_nullable(true))),
    );
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let mut ticks = interval_at(Instant::now() + every, every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let out_schema = schema.clone();
    let state = (stream, ticks);
    let merged = futures::stream::unfold(state, move |(mut stream, mut ticks)| {
        let schema = out_schema.clone();
        async move {
            let item = tokio::select! {
                next = stream.next() => {
                    let batch = next?;
                    ticks.reset();
                    batch.and_then(|b| stamped(&schema, &b))
                }
                _ = ticks.tick() => progress_row(&schema),
            };
            Some((item, (stream, ticks)))
        }
    });
    Ok(Box::pin(RecordBatchStreamAdapter::new(schema, merged)))
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

fn timestamps(n: usize) -> ArrayRef {
    Arc::new(TimestampMicrosecondArray::from(vec![now_micros(); n]).with_timezone("UTC"))
}

/// A batch of changes, stamped with the time it is sent.
fn stamped(schema: &SchemaRef, batch: &RecordBatch) -> Result<RecordBatch, DataFusionError> {
    let n = batch.num_rows();
    let mut columns = vec![
        timestamps(n),
        Arc::new(BooleanArray::from(vec![false; n])) as ArrayRef,
    ];
    columns.extend(batch.columns().iter().cloned());
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// One row saying everything up to now has been sent.
fn progress_row(schema: &SchemaRef) -> Result<RecordBatch, DataFusionError> {
    let mut columns = vec![
        timestamps(1),
        Arc::new(BooleanArray::from(vec![true])) as ArrayRef,
    ];
    columns.extend(
        schema
            .fields()
            .iter()
            .skip(2)
            .map(|f| new_null_array(f.data_type(), 1)),
    );
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Array, Int64Array};

    #[tokio::test]
    async fn changes_are_stamped_and_idle_time_reports_progress() {
        let input = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let batch =
            RecordBatch::try_new(input.clone(), vec![Arc::new(Int64Array::from(vec![7, 8]))])
                .unwrap();
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let changes = tokio_stream_from(rx);
        let stream = Box::pin(RecordBatchStreamAdapter::new(input, changes));
        let mut out = with_progress(stream, Duration::from_millis(50)).unwrap();
        tx.send(Ok(batch)).await.unwrap();
        let first = out.next().await.unwrap().unwrap();
        assert_eq!(first.num_rows(), 2);
        let progressed = first
            .column(1)
            .as_any()
            .downcast_ref::<BooleanArray>()
            .unwrap();
        assert!(!progressed.value(0));
        // Nothing more arrives: a progress row follows, data columns NULL.
        let idle = out.next().await.unwrap().unwrap();
        assert_eq!(idle.num_rows(), 1);
        let progressed = idle
            .column(1)
            .as_any()
            .downcast_ref::<BooleanArray>()
            .unwrap();
        assert!(progressed.value(0));
        assert!(idle.column(2).is_null(0));
    }

    fn tokio_stream_from(
        mut rx: tokio::sync::mpsc::Receiver<Result<RecordBatch, DataFusionError>>,
    ) -> impl futures::Stream<Item = Result<RecordBatch, DataFusionError>> {
        futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
    }
}
