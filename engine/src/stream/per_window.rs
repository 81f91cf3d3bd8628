//! Aggregates grouped by an upstream window (`GROUP BY window` over a windowed result).
//!
//! The window aggregate below emits every window's rows at once, so each input batch
//! holds whole windows: the groups of a batch are complete when the batch has been
//! aggregated, and are emitted at once. No state is kept between batches.
//!
//! The same operator finishes a window aggregate without keys that ran in parallel
//! partitions: its input rows are each partition's accumulator states for a window, which
//! it merges ([`PerWindowAggregateExec::merging`]).

use std::any::Any;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, RecordBatchStream,
    SendableRecordBatchStream,
};
use futures::{Stream, StreamExt};

use super::aggregates::{AggregateSpec, GroupedState};
use super::streaming_properties;
use super::window_origin::WindowPart;

/// The plan node.
#[derive(Debug)]
pub struct PerWindowAggregateExec {
    input: Arc<dyn ExecutionPlan>,
    spec: Arc<AggregateSpec>,
    /// Which output column is the window, and what part of it.
    window_key: (usize, WindowPart),
    /// Merging partial aggregates: how many state columns (after the key columns) each
    /// aggregate has.
    merges: Option<Vec<usize>>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl PerWindowAggregateExec {
    pub fn new(
        input: Arc<dyn ExecutionPlan>,
        spec: Arc<AggregateSpec>,
        window_key: (usize, WindowPart),
        schema: SchemaRef,
    ) -> Self {
        let properties = streaming_properties(schema.clone(), &input);
        PerWindowAggregateExec {
            input,
            spec,
            window_key,
            merges: None,
            schema,
            properties,
        }
    }

    /// The results of a window aggregate without keys from the partial aggregates of its
    /// partitions (see `WindowAggregateExec::partial`): `spec` groups by the window, the
    /// input's first column, and `layout` tells the state columns that follow it apart.
    pub fn merging(
        input: Arc<dyn ExecutionPlan>,
        spec: Arc<AggregateSpec>,
        layout: Vec<usize>,
        schema: SchemaRef,
    ) -> Self {
        PerWindowAggregateExec {
            merges: Some(layout),
            ..PerWindowAggregateExec::new(input, spec, (0, WindowPart::Whole), schema)
        }
    }

    pub fn window_key(&self) -> Option<(usize, WindowPart)> {
        Some(self.window_key)
    }

    /// The window, as an expression over the input.
    pub fn window_expr(&self) -> Arc<dyn PhysicalExpr> {
        self.spec.keys[self.window_key.0].clone()
    }

    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
    }
}

impl DisplayAs for PerWindowAggregateExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self.spec.keys.iter().map(|k| k.to_string()).collect();
        let functions: Vec<&str> = self.spec.functions.iter().map(|a| a.name()).collect();
        let what = if self.merges.is_some() {
            "merges the partitions' partial aggregates"
        } else {
            "aggregates"
        };
        write!(
            f,
            "PerWindowAggregateExec: keys [{}] (window {}), {what} [{}], state: none between windows",
            keys.join(", "),
            self.spec.keys[self.window_key.0],
            functions.join(", ")
        )
    }
}

impl ExecutionPlan for PerWindowAggregateExec {
    fn name(&self) -> &str {
        "PerWindowAggregateExec"
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
        let mut exec = PerWindowAggregateExec::new(
            children.swap_remove(0),
            self.spec.clone(),
            self.window_key,
            self.schema.clone(),
        );
        exec.merges = self.merges.clone();
        Ok(Arc::new(exec))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        Ok(Box::pin(PerWindowStream {
            input: self.input.execute(partition, context)?,
            spec: self.spec.clone(),
            merges: self.merges.clone(),
            schema: self.schema.clone(),
        }))
    }
}

struct PerWindowStream {
    input: SendableRecordBatchStream,
    spec: Arc<AggregateSpec>,
    merges: Option<Vec<usize>>,
    schema: SchemaRef,
}

impl PerWindowStream {
    fn aggregate(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        let state = match &self.merges {
            // The window, then the states: the layout of a snapshot.
            Some(layout) => GroupedState::from_snapshot(&self.spec, batch, layout)?,
            None => {
                let mut state = GroupedState::new(&self.spec)?;
                state.update(&self.spec.evaluate(batch)?)?;
                state
            }
        };
        let (mut columns, values) = state.emit()?;
        columns.extend(values);
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

impl Stream for PerWindowStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match self.input.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(batch))) if batch.num_rows() == 0 => continue,
                Poll::Ready(Some(Ok(batch))) => return Poll::Ready(Some(self.aggregate(&batch))),
                other => return other,
            }
        }
    }
}

impl RecordBatchStream for PerWindowStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
