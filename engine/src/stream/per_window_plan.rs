//! Running a DataFusion operator window by window: `ROW_NUMBER() OVER (PARTITION BY
//! window ORDER BY ...)` (Top-N per window) and other window functions partitioned by a
//! window of the input.
//!
//! The windowed input delivers each window's rows together, so the operator — with the
//! sort DataFusion puts under it — runs over one batch at a time on in-memory input. The
//! result is exactly the batch result per window, and nothing is kept between windows.

use std::any::Any;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::EmissionType;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowAggExec};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties, RecordBatchStream,
    SendableRecordBatchStream,
};
use futures::{Stream, StreamExt};

use super::window_origin::{WindowPart, expr_origin, window_origin};

/// The plan node.
#[derive(Debug)]
pub struct PerWindowPlanExec {
    input: Arc<dyn ExecutionPlan>,
    /// The operator to run per window (its child is replaced by each window's rows).
    operator: Arc<dyn ExecutionPlan>,
    /// The sort DataFusion put between the operator and its input, if any.
    sort: Option<Arc<dyn ExecutionPlan>>,
    properties: Arc<PlanProperties>,
}

impl PerWindowPlanExec {
    /// Wrap a window-function operator whose partitions include a window of its input.
    pub fn try_from_plan(node: &Arc<dyn ExecutionPlan>) -> Option<Self> {
        let any = node.as_any();
        let window_exprs = if let Some(w) = any.downcast_ref::<BoundedWindowAggExec>() {
            w.window_expr().to_vec()
        } else if let Some(w) = any.downcast_ref::<WindowAggExec>() {
            w.window_expr().to_vec()
        } else {
            return None;
        };
        let child = node.children().first().map(|c| (*c).clone())?;
        let (sort, input) = match child.as_any().downcast_ref::<SortExec>() {
            Some(s) if s.fetch().is_none() => (Some(child.clone()), s.input().clone()),
            _ => (None, child),
        };
        let by_window = window_exprs.iter().all(|w| {
            w.partition_by()
                .iter()
                .any(|e| expr_origin(&input, e).is_some())
        });
        if window_exprs.is_empty() || !by_window {
            return None;
        }
        let properties = PlanProperties::new(
            EquivalenceProperties::new(node.schema()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            input.properties().boundedness,
        );
        Some(PerWindowPlanExec {
            input,
            operator: node.clone(),
            sort,
            properties: Arc::new(properties),
        })
    }

    /// Window columns pass through (the operator appends its results after them).
    pub fn column_origin(&self, index: usize) -> Option<WindowPart> {
        window_origin(&self.input, index)
    }
}

impl DisplayAs for PerWindowPlanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "PerWindowPlanExec: runs {}{} per window, state: none between windows",
            self.operator.name(),
            if self.sort.is_some() { " (sorted)" } else { "" }
        )
    }
}

impl ExecutionPlan for PerWindowPlanExec {
    fn name(&self) -> &str {
        "PerWindowPlanExec"
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

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(PerWindowPlanExec {
            input: children.swap_remove(0),
            operator: self.operator.clone(),
            sort: self.sort.clone(),
            properties: self.properties.clone(),
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        Ok(Box::pin(PerWindowPlanStream {
            input: self.input.execute(partition, context.clone())?,
            input_schema: self.input.schema(),
            operator: self.operator.clone(),
            sort: self.sort.clone(),
            schema: self.schema(),
            context,
            running: None,
            window_output: Vec::new(),
        }))
    }
}

struct PerWindowPlanStream {
    input: SendableRecordBatchStream,
    input_schema: SchemaRef,
    operator: Arc<dyn ExecutionPlan>,
    sort: Option<Arc<dyn ExecutionPlan>>,
    schema: SchemaRef,
    context: Arc<TaskContext>,
    running: Option<SendableRecordBatchStream>,
    /// Output of the window being run, sent as one batch when it is complete.
    window_output: Vec<RecordBatch>,
}

impl PerWindowPlanStream {
    fn start(&mut self, batch: RecordBatch) -> Result<()> {
        let rows: Arc<dyn ExecutionPlan> =
            MemorySourceConfig::try_new_exec(&[vec![batch]], self.input_schema.clone(), None)?;
        let child = match &self.sort {
            Some(sort) => sort.clone().with_new_children(vec![rows])?.reset_state()?,
            None => rows,
        };
        let plan = self
            .operator
            .clone()
            .with_new_children(vec![child])?
            .reset_state()?;
        self.running = Some(plan.execute(0, self.context.clone())?);
        Ok(())
    }
}

impl Stream for PerWindowPlanStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            // One window's result goes out as one batch: operators above rely on a
            // batch holding whole windows.
            if let Some(running) = self.running.as_mut() {
                match running.poll_next_unpin(cx) {
                    Poll::Ready(Some(Ok(batch))) => {
                        if batch.num_rows() > 0 {
                            self.window_output.push(batch);
                        }
                        continue;
                    }
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                    Poll::Ready(None) => {
                        self.running = None;
                        let parts = std::mem::take(&mut self.window_output);
                        if !parts.is_empty() {
                            let whole = arrow::compute::concat_batches(&self.schema, &parts)
                                .map_err(Into::into);
                            return Poll::Ready(Some(whole));
                        }
                    }
                    Poll::Pending => return Poll::Pending,
                }
            }
            match self.input.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(batch))) if batch.num_rows() == 0 => continue,
                Poll::Ready(Some(Ok(batch))) => {
                    if let Err(e) = self.start(batch) {
                        return Poll::Ready(Some(Err(e)));
                    }
                }
                other => return other,
            }
        }
    }
}

impl RecordBatchStream for PerWindowPlanStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
