//! A filter that emits each filtered batch at once.
//!
//! DataFusion's `FilterExec` coalesces its output up to `batch_size` rows, which is right
//! for batch queries and wrong for streams: a selective filter over a slow stream would
//! hold rows back for seconds. Laminar swaps it for this operator after physical planning.

use std::any::Any;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow::compute::filter_record_batch;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::common::cast::as_boolean_array;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::limit::GlobalLimitExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, RecordBatchStream,
    SendableRecordBatchStream,
};
use futures::{Stream, StreamExt};

/// Filters each input batch and passes it on immediately.
#[derive(Debug)]
pub struct StreamingFilterExec {
    predicate: Arc<dyn PhysicalExpr>,
    input: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl StreamingFilterExec {
    pub fn new(predicate: Arc<dyn PhysicalExpr>, input: Arc<dyn ExecutionPlan>) -> Self {
        let properties = input.properties().clone();
        StreamingFilterExec {
            predicate,
            input,
            properties,
        }
    }
}

impl DisplayAs for StreamingFilterExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StreamingFilterExec: {}", self.predicate)
    }
}

impl ExecutionPlan for StreamingFilterExec {
    fn name(&self) -> &str {
        "StreamingFilterExec"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.swap_remove(0);
        Ok(Arc::new(StreamingFilterExec::new(
            self.predicate.clone(),
            input,
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        Ok(Box::pin(FilterStream {
            schema: self.input.schema(),
            predicate: self.predicate.clone(),
            input: self.input.execute(partition, context)?,
        }))
    }
}

struct FilterStream {
    schema: SchemaRef,
    predicate: Arc<dyn PhysicalExpr>,
    input: SendableRecordBatchStream,
}

impl FilterStream {
    fn apply_predicate(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let mask = self
            .predicate
            .evaluate(batch)?
            .into_array(batch.num_rows())?;
        Ok(filter_record_batch(batch, as_boolean_array(&mask)?)?)
    }
}

impl Stream for FilterStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match self.input.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(batch))) => {
                    let filtered = self.apply_predicate(&batch);
                    match filtered {
                        // Skip empty results rather than waking the consumer for nothing.
                        Ok(b) if b.num_rows() == 0 => continue,
                        other => return Poll::Ready(Some(other)),
                    }
                }
                other => return other,
            }
        }
    }
}

impl RecordBatchStream for FilterStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// Replace every `FilterExec` in `plan` with a [`StreamingFilterExec`] (plus a projection
/// when the filter carried one).
pub fn use_streaming_filters(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let Some(filter) = node.as_any().downcast_ref::<FilterExec>() else {
            return Ok(Transformed::no(node));
        };
        let input = filter.input().clone();
        let input_schema = input.schema();
        let streaming: Arc<dyn ExecutionPlan> =
            Arc::new(StreamingFilterExec::new(filter.predicate().clone(), input));
        let replaced: Arc<dyn ExecutionPlan> = match filter.projection() {
            None => streaming,
            Some(indices) => {
                let exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = indices
                    .iter()
                    .map(|&i| {
                        let name = input_schema.field(i).name().clone();
                        (
                            Arc::new(Column::new(&name, i)) as Arc<dyn PhysicalExpr>,
                            name,
                        )
                    })
                    .collect();
                Arc::new(ProjectionExec::try_new(exprs, streaming)?)
            }
        };
        // DataFusion pushes LIMIT into FilterExec; keep it as a limit above our filter.
        let limited: Arc<dyn ExecutionPlan> = match ExecutionPlan::fetch(filter) {
            Some(fetch) => Arc::new(GlobalLimitExec::new(replaced, 0, Some(fetch))),
            None => replaced,
        };
        Ok(Transformed::yes(limited))
    })
    .map(|t| t.data)
}
