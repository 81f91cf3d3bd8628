//! Running a DataFusion operator over one window's rows, held in memory.
//!
//! Window joins and per-window plans (Top-N) both rebuild a DataFusion plan on in-memory
//! input per window, run it, and emit its whole output as one batch: operators above rely
//! on a batch holding whole windows.

use std::sync::Arc;
use std::task::{Context, Poll};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::{ExecutionPlan, SendableRecordBatchStream};
use futures::StreamExt;

/// `batches` as a plan input.
pub fn memory_input(
    batches: Vec<RecordBatch>,
    schema: SchemaRef,
) -> Result<Arc<dyn ExecutionPlan>> {
    Ok(MemorySourceConfig::try_new_exec(&[batches], schema, None)?)
}

/// `plan` over new children, with its run-time state reset (a hash join, for one, caches
/// its build side across executions).
pub fn rebuilt(
    plan: &Arc<dyn ExecutionPlan>,
    children: Vec<Arc<dyn ExecutionPlan>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.clone().with_new_children(children)?.reset_state()
}

/// The plan of the window being run, and its output so far.
#[derive(Default)]
pub struct WindowRun {
    running: Option<SendableRecordBatchStream>,
    parts: Vec<RecordBatch>,
}

impl WindowRun {
    /// Start running `plan` (over one window's rows).
    pub fn start(&mut self, plan: Arc<dyn ExecutionPlan>, context: Arc<TaskContext>) -> Result<()> {
        self.running = Some(plan.execute(0, context)?);
        Ok(())
    }

    /// Drive the current run: `Ready(Some(..))` with the window's whole output (or an
    /// error), `Ready(None)` when nothing is running or the run produced no rows,
    /// `Pending` while it runs.
    pub fn poll(
        &mut self,
        cx: &mut Context<'_>,
        schema: &SchemaRef,
    ) -> Poll<Option<Result<RecordBatch>>> {
        let Some(running) = self.running.as_mut() else {
            return Poll::Ready(None);
        };
        loop {
            match running.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(batch))) => {
                    if batch.num_rows() > 0 {
                        self.parts.push(batch);
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    self.running = None;
                    self.parts.clear();
                    return Poll::Ready(Some(Err(e)));
                }
                Poll::Ready(None) => {
                    self.running = None;
                    let parts = std::mem::take(&mut self.parts);
                    if parts.is_empty() {
                        return Poll::Ready(None);
                    }
                    return Poll::Ready(Some(
                        arrow::compute::concat_batches(schema, &parts).map_err(Into::into),
                    ));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
