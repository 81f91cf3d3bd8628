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
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::windows::{BoundedWindowAggExec, WindowAggExec};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, RecordBatchStream,
    SendableRecordBatchStream,
};
use futures::{Stream, StreamExt};

use super::streaming_properties;
use super::window_origin::expr_origin;
use super::window_run::{WindowRun, memory_input, rebuilt};
use crate::checkpoint::arrow_state::{decode, encode};
use crate::checkpoint::{CheckpointHub, OperatorSnapshot};

/// The plan node.
#[derive(Debug)]
pub struct PerWindowPlanExec {
    input: Arc<dyn ExecutionPlan>,
    /// The operator to run per window (its child is replaced by each window's rows).
    operator: Arc<dyn ExecutionPlan>,
    /// The sort DataFusion put between the operator and its input, if any.
    sort: Option<Arc<dyn ExecutionPlan>>,
    /// A window the operator partitions by, over the input.
    window: Arc<dyn PhysicalExpr>,
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
        let windows: Option<Vec<Arc<dyn PhysicalExpr>>> = window_exprs
            .iter()
            .map(|w| {
                w.partition_by()
                    .iter()
                    .find(|e| expr_origin(&input, e).is_some())
                    .cloned()
            })
            .collect();
        let window = windows?.into_iter().next()?;
        let properties = streaming_properties(node.schema(), &input);
        Some(PerWindowPlanExec {
            input,
            operator: node.clone(),
            sort,
            window,
            properties,
        })
    }

    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
    }

    /// The window the operator partitions by, as an expression over the input.
    pub fn window_expr(&self) -> &Arc<dyn PhysicalExpr> {
        &self.window
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
        let input = children.swap_remove(0);
        let properties = streaming_properties(self.operator.schema(), &input);
        Ok(Arc::new(PerWindowPlanExec {
            input,
            operator: self.operator.clone(),
            sort: self.sort.clone(),
            window: self.window.clone(),
            properties,
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let running: Arc<Mutex<Option<RecordBatch>>> = Arc::default();
        let mut resumed = None;
        // In a pipeline that takes checkpoints: the window being run is state (its rows
        // were taken from the input, its result is not out yet).
        if let Some(hub) = context.session_config().get_extension::<CheckpointHub>() {
            let snapshots = Arc::new(RunningWindow {
                running: running.clone(),
            });
            if let Some(saved) = hub.register_operator(self.name(), snapshots)
                && let Some(text) = saved.as_str()
            {
                let batch = decode(text)?;
                resumed = Some(RecordBatch::try_new(
                    self.input.schema(),
                    batch.columns().to_vec(),
                )?);
            }
        }
        let mut stream = PerWindowPlanStream {
            input: self.input.execute(partition, context.clone())?,
            input_schema: self.input.schema(),
            operator: self.operator.clone(),
            sort: self.sort.clone(),
            schema: self.schema(),
            context,
            run: WindowRun::default(),
            running,
        };
        if let Some(batch) = resumed {
            stream.start(batch)?;
        }
        Ok(Box::pin(stream))
    }
}

struct PerWindowPlanStream {
    input: SendableRecordBatchStream,
    input_schema: SchemaRef,
    operator: Arc<dyn ExecutionPlan>,
    sort: Option<Arc<dyn ExecutionPlan>>,
    schema: SchemaRef,
    context: Arc<TaskContext>,
    /// The window being run.
    run: WindowRun,
    /// Its rows, until its result is out (for checkpoints).
    running: Arc<Mutex<Option<RecordBatch>>>,
}

fn lock(cell: &Mutex<Option<RecordBatch>>) -> MutexGuard<'_, Option<RecordBatch>> {
    cell.lock().unwrap_or_else(|p| p.into_inner())
}

/// Hands the rows of the window being run to checkpoints.
struct RunningWindow {
    running: Arc<Mutex<Option<RecordBatch>>>,
}

impl OperatorSnapshot for RunningWindow {
    fn snapshot(&self) -> crate::error::Result<serde_json::Value> {
        Ok(match lock(&self.running).as_ref() {
            Some(batch) => serde_json::Value::String(encode(batch)?),
            None => serde_json::Value::Null,
        })
    }
}

impl PerWindowPlanStream {
    fn start(&mut self, batch: RecordBatch) -> Result<()> {
        *lock(&self.running) = Some(batch.clone());
        let rows = memory_input(vec![batch], self.input_schema.clone())?;
        let child = match &self.sort {
            Some(sort) => rebuilt(sort, vec![rows])?,
            None => rows,
        };
        let plan = rebuilt(&self.operator, vec![child])?;
        self.run.start(plan, self.context.clone())
    }
}

impl Stream for PerWindowPlanStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            // One window's result goes out as one batch: operators above rely on a
            // batch holding whole windows.
            let schema = self.schema.clone();
            match self.run.poll(cx, &schema) {
                Poll::Ready(Some(whole)) => {
                    *lock(&self.running) = None;
                    return Poll::Ready(Some(whole));
                }
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => *lock(&self.running) = None,
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
