//! `LIMIT` / `OFFSET` over a stream, with checkpoints.
//!
//! DataFusion's `GlobalLimitExec` counts rows in its stream only; a pipeline with a `LIMIT`
//! that resumes after a crash must know how many rows it already skipped and passed. This
//! operator counts them where checkpoints see them, and ends its stream once the limit is
//! reached (the pipeline then finishes).

use std::any::Any;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::Boundedness;
use datafusion::physical_plan::limit::GlobalLimitExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties,
    Partitioning, PlanProperties, RecordBatchStream, SendableRecordBatchStream,
};
use futures::{Stream, StreamExt};

use crate::checkpoint::{CheckpointHub, OperatorSnapshot};

/// The plan node.
#[derive(Debug)]
pub struct StreamingLimitExec {
    input: Arc<dyn ExecutionPlan>,
    skip: usize,
    fetch: Option<usize>,
    properties: Arc<PlanProperties>,
}

impl StreamingLimitExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, skip: usize, fetch: Option<usize>) -> Self {
        // With a fetch, the output is finite (as DataFusion's limit says): a client may read
        // it whole.
        let boundedness = match fetch {
            Some(_) => Boundedness::Bounded,
            None => input.properties().boundedness,
        };
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(input.schema()),
            Partitioning::UnknownPartitioning(1),
            input.pipeline_behavior(),
            boundedness,
        ));
        StreamingLimitExec {
            input,
            skip,
            fetch,
            properties,
        }
    }
}

/// Replace every `GlobalLimitExec` in `plan` with a [`StreamingLimitExec`].
pub fn use_streaming_limits(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let Some(limit) = node.as_any().downcast_ref::<GlobalLimitExec>() else {
            return Ok(Transformed::no(node));
        };
        Ok(Transformed::yes(Arc::new(StreamingLimitExec::new(
            limit.input().clone(),
            limit.skip(),
            limit.fetch(),
        ))))
    })
    .map(|t| t.data)
}

impl DisplayAs for StreamingLimitExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let fetch = self.fetch.map_or("none".to_string(), |n| n.to_string());
        write!(
            f,
            "StreamingLimitExec: skip={}, fetch={fetch}, state: rows skipped and passed",
            self.skip
        )
    }
}

impl ExecutionPlan for StreamingLimitExec {
    fn name(&self) -> &str {
        "StreamingLimitExec"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn required_input_distribution(&self) -> Vec<Distribution> {
        vec![Distribution::SinglePartition]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(StreamingLimitExec::new(
            children.swap_remove(0),
            self.skip,
            self.fetch,
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let counts = Arc::new(Mutex::new(Counts::default()));
        if let Some(hub) = context.session_config().get_extension::<CheckpointHub>() {
            let snapshots = Arc::new(CountSnapshots {
                counts: counts.clone(),
            });
            if let Some(saved) = hub.register_operator(self.name(), snapshots) {
                *lock(&counts) = serde_json::from_value(saved.clone()).map_err(|e| {
                    DataFusionError::Internal(format!(
                        "checkpointed limit state {saved} is unreadable: {e}"
                    ))
                })?;
            }
        }
        Ok(Box::pin(LimitStream {
            input: self.input.execute(partition, context)?,
            skip: self.skip,
            fetch: self.fetch,
            counts,
            schema: self.schema(),
        }))
    }
}

/// Rows skipped and passed so far (what a checkpoint captures).
#[derive(Debug, Default, Clone, Copy, serde::Deserialize)]
struct Counts {
    skipped: usize,
    passed: usize,
}

fn lock(counts: &Mutex<Counts>) -> MutexGuard<'_, Counts> {
    counts.lock().unwrap_or_else(|p| p.into_inner())
}

struct CountSnapshots {
    counts: Arc<Mutex<Counts>>,
}

impl OperatorSnapshot for CountSnapshots {
    fn snapshot(&self) -> crate::error::Result<serde_json::Value> {
        let counts = *lock(&self.counts);
        Ok(serde_json::json!({ "skipped": counts.skipped, "passed": counts.passed }))
    }
}

struct LimitStream {
    input: SendableRecordBatchStream,
    skip: usize,
    fetch: Option<usize>,
    counts: Arc<Mutex<Counts>>,
    schema: SchemaRef,
}

impl LimitStream {
    fn done(&self, counts: &Counts) -> bool {
        self.fetch.is_some_and(|fetch| counts.passed >= fetch)
    }
}

impl Stream for LimitStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.done(&lock(&self.counts)) {
                return Poll::Ready(None);
            }
            let batch = match self.input.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(batch))) => batch,
                other => return other,
            };
            let mut counts = lock(&self.counts);
            let skipped = (self.skip - counts.skipped).min(batch.num_rows());
            counts.skipped += skipped;
            let left = batch.num_rows() - skipped;
            let taken = match self.fetch {
                Some(fetch) => left.min(fetch - counts.passed),
                None => left,
            };
            counts.passed += taken;
            drop(counts);
            if taken > 0 {
                return Poll::Ready(Some(Ok(batch.slice(skipped, taken))));
            }
        }
    }
}

impl RecordBatchStream for LimitStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
