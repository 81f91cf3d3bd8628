//! Whole windows again, after a keyed window aggregate ran in several partitions.
//!
//! Operators that take a window's rows as one batch (aggregates over windows, Top-N per
//! window, window joins) need every partition's part of a window, together. Each partition
//! of a window aggregate hands a window downstream before its output watermark passes the
//! window's end, and the merge below this operator passes on the lowest of those watermarks
//! after the rows sent before it. So once the merged watermark reaches a window's end, every
//! row of the window is here: the window goes out as one batch, windows in order.

use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, RecordBatchStream,
    SendableRecordBatchStream,
};
use futures::{Stream, StreamExt};

use super::exchange::ExchangeExec;
use super::streaming_properties;
use super::watermark::{
    SourceWatermark, WATERMARK_MAX, WATERMARK_MIN, Watermarks, collect_sources_apart,
    register_source,
};
use super::window_origin::{WindowColumn, WindowPart, split_by_window, window_keys};
use crate::checkpoint::arrow_state::{decode, encode};
use crate::checkpoint::{CheckpointHub, OperatorSnapshot};

/// The plan node.
#[derive(Debug)]
pub struct WindowAssemblyExec {
    /// A merge of the window aggregate's partitions.
    input: Arc<dyn ExecutionPlan>,
    /// The window, as an expression over the input.
    window: Arc<dyn PhysicalExpr>,
    column: WindowColumn,
    properties: Arc<PlanProperties>,
}

impl WindowAssemblyExec {
    pub fn new(
        input: Arc<dyn ExecutionPlan>,
        window: Arc<dyn PhysicalExpr>,
        column: WindowColumn,
    ) -> Self {
        let properties = streaming_properties(input.schema(), &input);
        WindowAssemblyExec {
            input,
            window,
            column,
            properties,
        }
    }

    /// What the merge below takes its rows from.
    pub fn unmerged_input(&self) -> &Arc<dyn ExecutionPlan> {
        match self.input.as_any().downcast_ref::<ExchangeExec>() {
            Some(exchange) => exchange.input(),
            None => &self.input,
        }
    }
}

impl DisplayAs for WindowAssemblyExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WindowAssemblyExec: whole windows of {} once the watermark passes their end, state: rows of windows not complete in every partition",
            self.window
        )
    }
}

impl ExecutionPlan for WindowAssemblyExec {
    fn name(&self) -> &str {
        "WindowAssemblyExec"
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
        Ok(Arc::new(WindowAssemblyExec::new(
            children.swap_remove(0),
            self.window.clone(),
            self.column,
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let core = Arc::new(Mutex::new(Core {
            pending: BTreeMap::new(),
            output: VecDeque::new(),
            watermark: WATERMARK_MIN,
        }));
        if let Some(hub) = context.session_config().get_extension::<CheckpointHub>() {
            let snapshots = Arc::new(AssemblySnapshots { core: core.clone() });
            if let Some(saved) = hub.register_operator(self.name(), snapshots.clone()) {
                snapshots.restore(&saved, &self.input.schema())?;
            }
        }
        // Operators above see the watermark of the windows handed to them.
        let (input, watermarks) = collect_sources_apart(|| self.input.execute(partition, context));
        let released = SourceWatermark::derived("window assembly");
        register_source(&released);
        Ok(Box::pin(AssemblyStream {
            input: input?,
            watermarks,
            released,
            window: self.window.clone(),
            column: self.column,
            schema: self.schema(),
            core,
            finished: false,
        }))
    }
}

/// What a checkpoint captures (shared with [`AssemblySnapshots`]).
struct Core {
    /// Rows per window end, until the watermark passes it.
    pending: BTreeMap<i64, Vec<RecordBatch>>,
    /// Whole windows not handed downstream yet.
    output: VecDeque<RecordBatch>,
    /// The watermark windows have been released up to.
    watermark: i64,
}

fn lock(core: &Mutex<Core>) -> MutexGuard<'_, Core> {
    core.lock().unwrap_or_else(|p| p.into_inner())
}

struct AssemblyStream {
    input: SendableRecordBatchStream,
    /// The merged watermark of the window aggregate's partitions.
    watermarks: Watermarks,
    /// This operator's output watermark.
    released: Arc<SourceWatermark>,
    window: Arc<dyn PhysicalExpr>,
    column: WindowColumn,
    schema: SchemaRef,
    core: Arc<Mutex<Core>>,
    finished: bool,
}

impl AssemblyStream {
    /// Each row's window end, in nanoseconds.
    fn window_ends(&self, batch: &RecordBatch) -> Result<Vec<i64>> {
        let window = self.window.evaluate(batch)?.into_array(batch.num_rows())?;
        let mut keys = window_keys(&window, self.column.part)?;
        if self.column.part != WindowPart::End {
            for key in &mut keys {
                *key = key.saturating_add(self.column.width);
            }
        }
        Ok(keys)
    }

    fn add(&self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let ends = self.window_ends(batch)?;
        let mut core = lock(&self.core);
        for (end, part) in split_by_window(batch, &ends)? {
            if end <= core.watermark {
                tracing::warn!(
                    window_end = end,
                    watermark = core.watermark,
                    "a window's rows arrived after the watermark passed it"
                );
            }
            core.pending.entry(end).or_default().push(part);
        }
        Ok(())
    }

    /// Hand on every window the watermark has passed, each as one batch.
    fn release(&self, watermark: i64) -> Result<()> {
        let mut core = lock(&self.core);
        let watermark = core.watermark.max(watermark);
        core.watermark = watermark;
        while let Some(entry) = core.pending.first_entry() {
            if *entry.key() > watermark {
                break;
            }
            let parts = entry.remove();
            let whole = arrow::compute::concat_batches(&self.schema, &parts)?;
            core.output.push_back(whole);
        }
        if core.output.is_empty() {
            self.released.advance_to(core.watermark);
        }
        Ok(())
    }
}

impl Stream for AssemblyStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let queued = {
                let mut core = lock(&self.core);
                let queued = core.output.pop_front();
                if core.output.is_empty() {
                    self.released.advance_to(core.watermark);
                }
                queued
            };
            if let Some(batch) = queued {
                return Poll::Ready(Some(Ok(batch)));
            }
            if self.finished {
                return Poll::Ready(None);
            }
            let step = match self.input.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(batch))) => self
                    .add(&batch)
                    .and_then(|()| self.release(self.watermarks.current())),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => {
                    // Every partition ended: every window is whole.
                    self.finished = true;
                    self.release(WATERMARK_MAX)
                }
                Poll::Pending => {
                    // Watermarks arrive on their own, too.
                    if let Err(e) = self.release(self.watermarks.current()) {
                        return Poll::Ready(Some(Err(e)));
                    }
                    if lock(&self.core).output.is_empty() {
                        return Poll::Pending;
                    }
                    Ok(())
                }
            };
            if let Err(e) = step {
                self.finished = true;
                return Poll::Ready(Some(Err(e)));
            }
        }
    }
}

impl RecordBatchStream for AssemblyStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// Hands the rows of incomplete windows and the whole windows not sent yet to checkpoints.
struct AssemblySnapshots {
    core: Arc<Mutex<Core>>,
}

impl OperatorSnapshot for AssemblySnapshots {
    fn snapshot(&self) -> crate::error::Result<serde_json::Value> {
        let core = lock(&self.core);
        let mut pending = Vec::with_capacity(core.pending.len());
        for (end, batches) in &core.pending {
            let batches = batches.iter().map(encode).collect::<Result<Vec<_>>>()?;
            pending.push(serde_json::json!({ "end": end, "batches": batches }));
        }
        let output = core.output.iter().map(encode).collect::<Result<Vec<_>>>()?;
        Ok(serde_json::json!({
            "pending": pending,
            "output": output,
            "watermark": core.watermark,
        }))
    }
}

impl AssemblySnapshots {
    fn restore(&self, saved: &serde_json::Value, schema: &SchemaRef) -> Result<()> {
        let bad = || {
            DataFusionError::Internal(format!(
                "checkpointed window assembly state is unreadable: {saved}"
            ))
        };
        // Snapshots keep columns; the input's schema gives the names back.
        let batch = |value: &serde_json::Value| -> Result<RecordBatch> {
            let batch = decode(value.as_str().ok_or_else(bad)?)?;
            Ok(RecordBatch::try_new(
                schema.clone(),
                batch.columns().to_vec(),
            )?)
        };
        let mut core = lock(&self.core);
        core.watermark = saved["watermark"].as_i64().ok_or_else(bad)?;
        for window in saved["pending"].as_array().ok_or_else(bad)? {
            let end = window["end"].as_i64().ok_or_else(bad)?;
            let batches = window["batches"]
                .as_array()
                .ok_or_else(bad)?
                .iter()
                .map(&batch)
                .collect::<Result<Vec<_>>>()?;
            core.pending.insert(end, batches);
        }
        for value in saved["output"].as_array().ok_or_else(bad)? {
            core.output.push_back(batch(value)?);
        }
        Ok(())
    }
}
