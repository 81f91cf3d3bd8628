//! Window joins: two windowed streams joined on their window (plus any other keys and
//! conditions), window by window.
//!
//! Each side emits every window's rows together and in window order. The join keeps each
//! side's rows of windows the other side has not reached, and once both sides are past a
//! window it runs DataFusion's own join over just that window's rows — so every join type
//! and residual condition DataFusion supports works here, and state never outlives a window.

use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use datafusion::common::JoinType;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::joins::HashJoinExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, RecordBatchStream,
    SendableRecordBatchStream,
};
use futures::{Stream, StreamExt};

use super::streaming_properties;
use super::window_origin::{
    WindowColumn, WindowPart, split_by_window, window_column, window_keys, window_origin,
};
use super::window_run::{WindowRun, memory_input, rebuilt};
use crate::checkpoint::arrow_state::{decode, encode};
use crate::checkpoint::{CheckpointHub, OperatorSnapshot};

/// The plan node.
#[derive(Debug)]
pub struct WindowJoinExec {
    left: Arc<dyn ExecutionPlan>,
    right: Arc<dyn ExecutionPlan>,
    /// The DataFusion join this replaces; run per window over that window's rows.
    join: Arc<dyn ExecutionPlan>,
    join_type: JoinType,
    /// The window column of each side.
    left_key: (usize, WindowPart),
    right_key: (usize, WindowPart),
    /// For each output column, the side (0 left, 1 right) and input column it comes from.
    output_columns: Vec<(usize, usize)>,
    properties: Arc<PlanProperties>,
}

impl WindowJoinExec {
    /// A window join for `join` (whose children are the two windowed streams), if its
    /// equality keys include a window column of each side.
    pub fn try_from_join(join: &Arc<dyn ExecutionPlan>) -> Option<Self> {
        let (on, join_type, projection) =
            if let Some(hash) = join.as_any().downcast_ref::<HashJoinExec>() {
                (
                    hash.on().to_vec(),
                    *hash.join_type(),
                    hash.projection
                        .as_ref()
                        .map(|p| p.iter().copied().collect::<Vec<_>>()),
                )
            } else if let Some(shj) =
                join.as_any()
                    .downcast_ref::<datafusion::physical_plan::joins::SymmetricHashJoinExec>()
            {
                (shj.on().to_vec(), *shj.join_type(), None)
            } else {
                return None;
            };
        let children = join.children();
        let (left, right) = (children[0].clone(), children[1].clone());
        let (left_key, right_key) = on.iter().find_map(|(l, r)| {
            let l_col = l
                .as_any()
                .downcast_ref::<datafusion::physical_expr::expressions::Column>()?;
            let r_col = r
                .as_any()
                .downcast_ref::<datafusion::physical_expr::expressions::Column>()?;
            let l_part = window_origin(&left, l_col.index())?;
            let r_part = window_origin(&right, r_col.index())?;
            (l_part == r_part).then_some(((l_col.index(), l_part), (r_col.index(), r_part)))
        })?;
        let left_width = left.schema().fields().len();
        let right_width = right.schema().fields().len();
        let joined: Vec<(usize, usize)> = match join_type {
            JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full => (0..left_width)
                .map(|i| (0, i))
                .chain((0..right_width).map(|i| (1, i)))
                .collect(),
            JoinType::LeftSemi | JoinType::LeftAnti => (0..left_width).map(|i| (0, i)).collect(),
            JoinType::RightSemi | JoinType::RightAnti => (0..right_width).map(|i| (1, i)).collect(),
            _ => return None,
        };
        let output_columns = match projection {
            Some(p) => p.iter().filter_map(|&i| joined.get(i).copied()).collect(),
            None => joined,
        };
        let schema = join.schema();
        let properties = streaming_properties(schema, &left);
        Some(WindowJoinExec {
            left,
            right,
            join: join.clone(),
            join_type,
            left_key,
            right_key,
            output_columns,
            properties,
        })
    }

    /// The window an output column carries, if any.
    pub fn column_window(&self, index: usize) -> Option<WindowColumn> {
        let (side, column) = *self.output_columns.get(index)?;
        match side {
            0 => window_column(&self.left, column),
            _ => window_column(&self.right, column),
        }
    }

    /// Per input, its window column.
    pub fn window_keys(&self) -> [(usize, WindowPart); 2] {
        [self.left_key, self.right_key]
    }
}

impl DisplayAs for WindowJoinExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "WindowJoinExec: join_type={}, window columns {}@left = {}@right, per window: {}, state: rows of windows one side has not reached",
            self.join_type,
            self.left_key.0,
            self.right_key.0,
            self.join.name()
        )
    }
}

impl ExecutionPlan for WindowJoinExec {
    fn name(&self) -> &str {
        "WindowJoinExec"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.left, &self.right]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let join = self.join.clone().with_new_children(children)?;
        match WindowJoinExec::try_from_join(&join) {
            Some(rebuilt) => Ok(Arc::new(rebuilt)),
            None => datafusion::common::internal_err!("window join lost its window keys"),
        }
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let core = Arc::new(Mutex::new(Core::default()));
        // In a pipeline that takes checkpoints: resume with the rows of windows not joined
        // yet, and hand them over at every checkpoint.
        if let Some(hub) = context.session_config().get_extension::<CheckpointHub>() {
            let snapshots = Arc::new(JoinSnapshots { core: core.clone() });
            if let Some(saved) = hub.register_operator(self.name(), snapshots.clone()) {
                snapshots.restore(&saved, [self.left.schema(), self.right.schema()])?;
            }
        }
        Ok(Box::pin(WindowJoinStream {
            sides: [
                Side::new(
                    self.left.execute(partition, context.clone())?,
                    self.left_key,
                ),
                Side::new(
                    self.right.execute(partition, context.clone())?,
                    self.right_key,
                ),
            ],
            join: self.join.clone(),
            schema: self.schema(),
            context,
            run: WindowRun::default(),
            core,
        }))
    }
}

/// One input of the join.
struct Side {
    input: SendableRecordBatchStream,
    key: (usize, WindowPart),
    ended: bool,
}

impl Side {
    fn new(input: SendableRecordBatchStream, key: (usize, WindowPart)) -> Self {
        Side {
            input,
            key,
            ended: false,
        }
    }
}

/// The rows of one window of both sides.
type WindowRows = (Vec<RecordBatch>, Vec<RecordBatch>);

/// What a checkpoint captures of the join (shared with [`JoinSnapshots`]).
struct Core {
    /// Per side: rows per window not joined yet.
    pending: [BTreeMap<i64, Vec<RecordBatch>>; 2],
    /// Per side: the latest window delivered (it never goes back), `MAX` once ended.
    reached: [i64; 2],
    /// Windows ready to join: both sides are past them.
    ready: VecDeque<WindowRows>,
    /// The window being joined, until its result is out.
    running: Option<WindowRows>,
}

impl Default for Core {
    fn default() -> Self {
        Core {
            pending: [BTreeMap::new(), BTreeMap::new()],
            reached: [i64::MIN, i64::MIN],
            ready: VecDeque::new(),
            running: None,
        }
    }
}

fn lock(core: &Mutex<Core>) -> MutexGuard<'_, Core> {
    core.lock().unwrap_or_else(|p| p.into_inner())
}

impl Core {
    fn add(&mut self, side: usize, key: (usize, WindowPart), batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let keys = window_keys(batch.column(key.0), key.1)?;
        for (k, part) in split_by_window(&batch, &keys)? {
            self.reached[side] = self.reached[side].max(k);
            self.pending[side].entry(k).or_default().push(part);
        }
        Ok(())
    }

    /// Move every window both sides have reached to `ready`.
    fn collect_ready(&mut self) {
        let done = self.reached[0].min(self.reached[1]);
        let mut keys: Vec<i64> = self.pending[0]
            .range(..=done)
            .map(|(k, _)| *k)
            .chain(self.pending[1].range(..=done).map(|(k, _)| *k))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            let left = self.pending[0].remove(&key).unwrap_or_default();
            let right = self.pending[1].remove(&key).unwrap_or_default();
            self.ready.push_back((left, right));
        }
    }
}

struct WindowJoinStream {
    sides: [Side; 2],
    join: Arc<dyn ExecutionPlan>,
    schema: SchemaRef,
    context: Arc<TaskContext>,
    /// The join of one window, being drained.
    run: WindowRun,
    core: Arc<Mutex<Core>>,
}

impl WindowJoinStream {
    fn start_join(&mut self, left: Vec<RecordBatch>, right: Vec<RecordBatch>) -> Result<()> {
        let children = self.join.children();
        let left = memory_input(left, children[0].schema())?;
        let right = memory_input(right, children[1].schema())?;
        let plan = rebuilt(&self.join, vec![left, right])?;
        self.run.start(plan, self.context.clone())
    }
}

impl Stream for WindowJoinStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            // Drain the window being joined.
            // One window's result goes out as one batch: operators above rely on a
            // batch holding whole windows.
            let schema = self.schema.clone();
            match self.run.poll(cx, &schema) {
                Poll::Ready(Some(whole)) => {
                    lock(&self.core).running = None;
                    return Poll::Ready(Some(whole));
                }
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    lock(&self.core).running = None;
                }
            }
            let next = {
                let mut core = lock(&self.core);
                let next = core.ready.pop_front();
                core.running = next.clone();
                next
            };
            if let Some((left, right)) = next {
                if let Err(e) = self.start_join(left, right) {
                    return Poll::Ready(Some(Err(e)));
                }
                continue;
            }
            if self.sides.iter().all(|s| s.ended) {
                return Poll::Ready(None);
            }
            // Read from whichever side has data.
            let mut progressed = false;
            for i in 0..2 {
                if self.sides[i].ended {
                    continue;
                }
                match self.sides[i].input.poll_next_unpin(cx) {
                    Poll::Ready(Some(Ok(batch))) => {
                        let key = self.sides[i].key;
                        if let Err(e) = lock(&self.core).add(i, key, batch) {
                            return Poll::Ready(Some(Err(e)));
                        }
                        progressed = true;
                    }
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                    Poll::Ready(None) => {
                        self.sides[i].ended = true;
                        lock(&self.core).reached[i] = i64::MAX;
                        progressed = true;
                    }
                    Poll::Pending => {}
                }
            }
            if !progressed {
                return Poll::Pending;
            }
            lock(&self.core).collect_ready();
        }
    }
}

/// Hands the rows of windows not joined yet (and the window being joined) to checkpoints.
struct JoinSnapshots {
    core: Arc<Mutex<Core>>,
}

fn encode_all(batches: &[RecordBatch]) -> Result<Vec<String>> {
    batches.iter().map(encode).collect()
}

impl OperatorSnapshot for JoinSnapshots {
    fn snapshot(&self) -> crate::error::Result<serde_json::Value> {
        let core = lock(&self.core);
        let mut pending = Vec::with_capacity(2);
        for side in &core.pending {
            let mut windows = Vec::with_capacity(side.len());
            for (window, batches) in side {
                windows
                    .push(serde_json::json!({ "window": window, "batches": encode_all(batches)? }));
            }
            pending.push(serde_json::Value::Array(windows));
        }
        // The window being joined goes back to the front of the ready ones.
        let mut ready = Vec::new();
        for (left, right) in core.running.iter().chain(core.ready.iter()) {
            ready.push(serde_json::json!([encode_all(left)?, encode_all(right)?]));
        }
        Ok(serde_json::json!({
            "pending": pending,
            "reached": core.reached,
            "ready": ready,
        }))
    }
}

impl JoinSnapshots {
    fn restore(&self, saved: &serde_json::Value, schemas: [SchemaRef; 2]) -> Result<()> {
        let bad = || {
            datafusion::error::DataFusionError::Internal(format!(
                "checkpointed window join state is unreadable: {saved}"
            ))
        };
        // Snapshots keep columns; the inputs' schemas give the names back.
        let decode_all = |values: &serde_json::Value, side: usize| -> Result<Vec<RecordBatch>> {
            values
                .as_array()
                .ok_or_else(bad)?
                .iter()
                .map(|v| {
                    let batch = decode(v.as_str().ok_or_else(bad)?)?;
                    Ok(RecordBatch::try_new(
                        schemas[side].clone(),
                        batch.columns().to_vec(),
                    )?)
                })
                .collect()
        };
        let mut core = lock(&self.core);
        for (side, windows) in saved["pending"]
            .as_array()
            .ok_or_else(bad)?
            .iter()
            .enumerate()
            .take(2)
        {
            for window in windows.as_array().ok_or_else(bad)? {
                let key = window["window"].as_i64().ok_or_else(bad)?;
                core.pending[side].insert(key, decode_all(&window["batches"], side)?);
            }
        }
        let reached: Vec<i64> =
            serde_json::from_value(saved["reached"].clone()).map_err(|_| bad())?;
        for (side, value) in reached.into_iter().enumerate().take(2) {
            core.reached[side] = value;
        }
        for pair in saved["ready"].as_array().ok_or_else(bad)? {
            core.ready
                .push_back((decode_all(&pair[0], 0)?, decode_all(&pair[1], 1)?));
        }
        Ok(())
    }
}

impl RecordBatchStream for WindowJoinStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
