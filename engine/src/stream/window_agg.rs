//! The window aggregate: `GROUP BY tumble(...) | hop(...) | session(...)` over a stream.
//!
//! Rows are assigned to windows by event time (or arrival time, for tables without one);
//! each open window keeps one set of DataFusion group accumulators — partial aggregates,
//! never raw rows. A window's rows are emitted once, when the watermark passes its end;
//! rows that arrive for a window already emitted are late: dropped and counted.

use std::any::Any;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use arrow::array::{Array, ArrayRef, AsArray, StructArray, TimestampNanosecondArray, UInt32Array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Fields, SchemaRef, TimeUnit, TimestampNanosecondType};
use arrow::record_batch::RecordBatch;
use datafusion::common::internal_err;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, RecordBatchStream,
    SendableRecordBatchStream,
};
use futures::{FutureExt, Stream, StreamExt};

use super::aggregates::{AggregateSpec, GroupedState, Inputs};
use super::session::Sessions;
use super::streaming_properties;
use super::watermark::{
    SourceWatermark, WATERMARK_MAX, WATERMARK_MIN, Watermarks, collect_sources_apart,
    register_source,
};
use super::window::WindowSpec;
use crate::checkpoint::arrow_state::{decode, encode};
use crate::checkpoint::{CheckpointHub, OperatorSnapshot};
use crate::metrics::Counters;

/// How often an event-time window operator with open windows re-reads the watermark
/// while its input is quiet (idle partitions can move it without new rows).
const WATERMARK_POLL: Duration = Duration::from_millis(200);

/// Everything a window aggregate needs, shared by the plan node and its stream.
#[derive(Debug)]
pub struct WindowAggregate {
    pub window: WindowSpec,
    /// Position of the window column among the output's group columns.
    pub window_index: usize,
    /// The event time expression; `None` windows by processing time.
    pub time: Option<Arc<dyn PhysicalExpr>>,
    pub spec: AggregateSpec,
    /// Source tables with a watermark below (for EXPLAIN).
    pub watermark_tables: Vec<String>,
    pub schema: SchemaRef,
    pub counters: Arc<Counters>,
    /// Emit each window's accumulator states (a partial aggregate of one partition's rows,
    /// merged later) instead of its results.
    pub partial: bool,
}

/// A window aggregate without keys as partial aggregates and their merge.
pub struct PartialSplit {
    /// Emits each window's accumulator states.
    pub partial: Arc<dyn ExecutionPlan>,
    /// Groups by the window (the partial output's first column) and merges states.
    pub merging: AggregateSpec,
    /// How many state columns each aggregate has.
    pub layout: Vec<usize>,
}

/// The plan node.
#[derive(Debug)]
pub struct WindowAggregateExec {
    input: Arc<dyn ExecutionPlan>,
    shared: Arc<WindowAggregate>,
    properties: Arc<PlanProperties>,
}

impl WindowAggregateExec {
    /// The `GROUP BY` keys other than the window: rows of one key meet in one partition.
    pub fn keys(&self) -> &[Arc<dyn datafusion::physical_expr::PhysicalExpr>] {
        &self.shared.spec.keys
    }

    pub fn new(input: Arc<dyn ExecutionPlan>, shared: Arc<WindowAggregate>) -> Self {
        let properties = streaming_properties(shared.schema.clone(), &input);
        WindowAggregateExec {
            input,
            shared,
            properties,
        }
    }
}

impl WindowAggregateExec {
    /// Position of the window column in the output.
    pub fn window_index(&self) -> usize {
        self.shared.window_index
    }

    /// Whether this aggregate emits partial aggregates (see [`WindowAggregateExec::partial`]).
    pub fn is_partial(&self) -> bool {
        self.shared.partial
    }

    /// A window aggregate without keys split in two: this aggregate, emitting each window's
    /// accumulator states, runs over each partition of `input`; an aggregate over its
    /// windows merges them (`PerWindowAggregateExec::merging`). Returns the partial
    /// aggregate and the merging aggregate's spec and state layout; `None` for sessions
    /// (they merge by gaps, not by window) and aggregates with keys.
    pub fn partial(&self, input: Arc<dyn ExecutionPlan>) -> Result<Option<PartialSplit>> {
        let s = &self.shared;
        if !s.spec.keys.is_empty() || s.partial || matches!(s.window, WindowSpec::Session { .. }) {
            return Ok(None);
        }
        let (state_fields, layout) = s.spec.state_fields()?;
        let window_field = s.schema.field(s.window_index).clone();
        let fields: Vec<arrow::datatypes::FieldRef> = std::iter::once(Arc::new(window_field))
            .chain(state_fields)
            .collect();
        let schema = Arc::new(arrow::datatypes::Schema::new(fields));
        let partial = WindowAggregate {
            window: s.window,
            window_index: 0,
            time: s.time.clone(),
            spec: s.spec.clone(),
            watermark_tables: s.watermark_tables.clone(),
            schema: schema.clone(),
            counters: s.counters.clone(),
            partial: true,
        };
        // The merge groups by the window (the partial output's first column) and reads
        // states, not arguments.
        let window_key: Arc<dyn PhysicalExpr> = Arc::new(
            datafusion::physical_expr::expressions::Column::new(schema.field(0).name(), 0),
        );
        let key_schema = Arc::new(arrow::datatypes::Schema::new(vec![schema.field(0).clone()]));
        let merging = AggregateSpec::new(
            vec![window_key],
            key_schema,
            s.spec.functions.clone(),
            vec![None; s.spec.functions.len()],
        )?;
        Ok(Some(PartialSplit {
            partial: Arc::new(WindowAggregateExec::new(input, Arc::new(partial))),
            merging,
            layout,
        }))
    }

    /// The windows' length (a session's gap).
    pub fn window_width(&self) -> i64 {
        self.shared.window.width()
    }

    /// Whether windows come out in window order, each in one batch (not so for sessions,
    /// which close per key in any order).
    pub fn emits_in_window_order(&self) -> bool {
        !matches!(self.shared.window, WindowSpec::Session { .. })
    }
}

impl DisplayAs for WindowAggregateExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.shared;
        write!(f, "WindowAggregateExec: {}", s.window)?;
        match &s.time {
            Some(time) => write!(f, ", event time {time}")?,
            None => write!(f, ", processing time")?,
        }
        if !s.spec.keys.is_empty() {
            let keys: Vec<String> = s.spec.keys.iter().map(|k| k.to_string()).collect();
            write!(f, ", keys [{}]", keys.join(", "))?;
        }
        let functions: Vec<&str> = s.spec.functions.iter().map(|a| a.name()).collect();
        write!(f, ", aggregates [{}]", functions.join(", "))?;
        if s.partial {
            write!(f, " (partial: emits accumulator states)")?;
        }
        if s.time.is_some() && !s.watermark_tables.is_empty() {
            write!(f, ", watermark from [{}]", s.watermark_tables.join(", "))?;
        }
        write!(f, ", state: partial aggregates per open window")
    }
}

impl ExecutionPlan for WindowAggregateExec {
    fn name(&self) -> &str {
        "WindowAggregateExec"
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
        Ok(Arc::new(WindowAggregateExec::new(
            children.swap_remove(0),
            self.shared.clone(),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let shared = self.shared.clone();
        let state = match shared.window {
            WindowSpec::Session { gap } => {
                State::Sessions(Sessions::new(gap, &shared.spec.key_schema)?)
            }
            _ => State::Fixed(BTreeMap::new()),
        };
        let hub = context.session_config().get_extension::<CheckpointHub>();
        // Operators above see this operator's output watermark, not its sources': a window
        // goes out some time after the sources' watermark passed its end.
        let (input, watermarks) = collect_sources_apart(|| self.input.execute(partition, context));
        let released = SourceWatermark::derived("window");
        register_source(&released);
        let stats = shared.counters.register_operator(self);
        let core = Arc::new(Mutex::new(Core {
            state,
            watermark: WATERMARK_MIN,
            output: VecDeque::new(),
        }));
        // In a pipeline that takes checkpoints: resume with the checkpointed windows, and
        // hand them over at every checkpoint.
        if let Some(hub) = hub {
            let snapshots = Arc::new(WindowSnapshots {
                core: core.clone(),
                shared: shared.clone(),
            });
            if let Some(saved) = hub.register_operator(self.name(), snapshots.clone()) {
                snapshots.restore(&saved)?;
            }
        }
        Ok(Box::pin(WindowAggregateStream {
            input: input?,
            watermarks,
            stats,
            shared,
            core,
            released,
            finished: false,
            timer: None,
            reported_state: 0,
        }))
    }
}

enum State {
    /// Tumbling and hopping windows by start time.
    Fixed(BTreeMap<i64, GroupedState>),
    Sessions(Sessions),
}

/// What a checkpoint captures of the operator (shared with [`WindowSnapshots`]).
struct Core {
    state: State,
    /// The watermark windows have been emitted up to.
    watermark: i64,
    /// Closed windows not yet handed downstream.
    output: VecDeque<RecordBatch>,
}

/// Lock the core; a panic elsewhere cannot leave it half-updated in a way that matters
/// (the job fails with that panic).
fn lock(core: &Mutex<Core>) -> MutexGuard<'_, Core> {
    core.lock().unwrap_or_else(|p| p.into_inner())
}

struct WindowAggregateStream {
    input: SendableRecordBatchStream,
    /// The watermarks of the source partitions this operator's input started.
    watermarks: Watermarks,
    /// This operator's own counters.
    stats: Arc<crate::metrics::OperatorStats>,
    shared: Arc<WindowAggregate>,
    core: Arc<Mutex<Core>>,
    /// The output watermark: every window ending at or before it has been handed
    /// downstream (what an exchange above forwards with this partition's rows).
    released: Arc<SourceWatermark>,
    finished: bool,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// State bytes last added to the job's counter.
    reported_state: u64,
}

pub(super) fn now_nanos() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_nanos()).unwrap_or(i64::MAX)
}

/// A column of nanosecond timestamps.
fn nanos(array: &ArrayRef) -> Result<ArrayRef> {
    match array.data_type() {
        DataType::Timestamp(TimeUnit::Nanosecond, None) => Ok(array.clone()),
        DataType::Timestamp(_, _) | DataType::Date32 | DataType::Date64 => Ok(cast(
            array,
            &DataType::Timestamp(TimeUnit::Nanosecond, None),
        )?),
        other => internal_err!("window time column has type {other}, expected TIMESTAMP"),
    }
}

impl WindowAggregateStream {
    fn current_watermark(&self) -> i64 {
        match self.shared.time {
            None => now_nanos(),
            Some(_) => self.watermarks.current(),
        }
    }

    fn count_late(&self, rows: usize) {
        if rows > 0 {
            self.shared
                .counters
                .late_records
                .fetch_add(rows as u64, Ordering::Relaxed);
        }
    }

    fn process(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let shared = self.shared.clone();
        let inputs = shared.spec.evaluate(batch)?;
        let times = match &shared.time {
            Some(time) => nanos(&time.evaluate(batch)?.into_array(batch.num_rows())?)?,
            None => Arc::new(TimestampNanosecondArray::from_value(
                now_nanos(),
                batch.num_rows(),
            )) as ArrayRef,
        };
        let times = times.as_primitive::<TimestampNanosecondType>();
        let mut core = lock(&self.core);
        let watermark = core.watermark;
        match &mut core.state {
            State::Fixed(windows) => {
                let late = assign_fixed(&shared, windows, &inputs, times, watermark)?;
                self.count_late(late);
            }
            State::Sessions(sessions) => {
                let gap = shared.window.width();
                let mut rows: Vec<u32> = Vec::with_capacity(inputs.rows);
                let mut late = 0;
                for (i, t) in times.iter().enumerate() {
                    match t {
                        Some(t) if t.saturating_add(gap) > watermark => rows.push(i as u32),
                        _ => late += 1,
                    }
                }
                sessions.update(&shared.spec, &inputs, &mut rows, times.values())?;
                self.count_late(late);
            }
        }
        Ok(())
    }

    /// Emit every window the watermark has passed.
    fn advance(&mut self, watermark: i64) -> Result<()> {
        let mut core = lock(&self.core);
        if watermark <= core.watermark {
            self.release(&core);
            return Ok(());
        }
        core.watermark = watermark;
        let shared = self.shared.clone();
        let Core { state, output, .. } = &mut *core;
        match state {
            State::Fixed(windows) => {
                let width = shared.window.width();
                while let Some(entry) = windows.first_entry() {
                    let start = *entry.key();
                    if start.saturating_add(width) > watermark {
                        break;
                    }
                    let state = entry.remove();
                    let rows = state.num_groups();
                    let (keys, values) = if shared.partial {
                        state.emit_states()?
                    } else {
                        state.emit()?
                    };
                    let starts = vec![start; rows];
                    let ends = vec![start + width; rows];
                    output.push_back(output_batch(&shared, keys, starts, ends, values)?);
                }
            }
            State::Sessions(sessions) => {
                if let Some(closed) = sessions.close(watermark)? {
                    output.push_back(output_batch(
                        &shared,
                        closed.keys,
                        closed.starts,
                        closed.ends,
                        closed.values,
                    )?);
                }
            }
        }
        let bytes = state_size(&core.state) as u64;
        self.release(&core);
        drop(core);
        self.stats.state_bytes.store(bytes, Ordering::Relaxed);
        self.shared
            .counters
            .report_state(&mut self.reported_state, bytes);
        Ok(())
    }

    /// Once every closed window has gone out, the output watermark is the operator's.
    fn release(&self, core: &Core) {
        if core.output.is_empty() {
            self.released.advance_to(core.watermark);
        }
    }

    /// When the quiet operator should look at the clock or the watermark again. Without
    /// open windows it still follows them, for its output watermark.
    fn next_wakeup(&self) -> Option<Duration> {
        let next_end = match &lock(&self.core).state {
            State::Fixed(windows) => windows
                .keys()
                .next()
                .map(|start| start.saturating_add(self.shared.window.width())),
            State::Sessions(sessions) => sessions.next_close(),
        };
        let Some(next_end) = next_end else {
            return (self.shared.time.is_none() || !self.watermarks.is_empty())
                .then_some(WATERMARK_POLL);
        };
        match self.shared.time {
            None => {
                let wait = next_end.saturating_sub(now_nanos()).max(0);
                Some(Duration::from_nanos(wait as u64) + Duration::from_millis(1))
            }
            Some(_) if !self.watermarks.is_empty() => Some(WATERMARK_POLL),
            Some(_) => None,
        }
    }
}

fn state_size(state: &State) -> usize {
    match state {
        State::Fixed(windows) => windows.values().map(GroupedState::size).sum(),
        State::Sessions(sessions) => sessions.size(),
    }
}

/// Put each row of `inputs` into its windows; returns the number of late rows.
fn assign_fixed(
    shared: &WindowAggregate,
    windows: &mut BTreeMap<i64, GroupedState>,
    inputs: &Inputs,
    times: &arrow::array::PrimitiveArray<TimestampNanosecondType>,
    watermark: i64,
) -> Result<usize> {
    let width = shared.window.width();
    // Rows per window start; a batch usually spans one or two windows.
    let mut buckets: Vec<(i64, Vec<u32>)> = Vec::new();
    let mut late = 0;
    for (row, t) in times.iter().enumerate() {
        let Some(t) = t else {
            late += 1;
            continue;
        };
        let (last_start, step, count) = shared.window.assign(t);
        let mut placed = false;
        for j in 0..count as i64 {
            let start = last_start - j * step;
            if start.saturating_add(width) <= watermark {
                continue;
            }
            placed = true;
            match buckets.iter_mut().rev().find(|(s, _)| *s == start) {
                Some((_, rows)) => rows.push(row as u32),
                None => buckets.push((start, vec![row as u32])),
            }
        }
        if !placed {
            late += 1;
        }
    }
    for (start, rows) in buckets {
        let part = if rows.len() == inputs.rows {
            // Every row, in order (a row appears at most once per window).
            inputs.clone()
        } else {
            inputs.take(&UInt32Array::from(rows))?
        };
        let state = match windows.entry(start) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(GroupedState::new(&shared.spec)?)
            }
        };
        state.update(&part)?;
    }
    Ok(late)
}

/// Assemble output rows: key columns with the window column in its place, then aggregates.
fn output_batch(
    shared: &WindowAggregate,
    keys: Vec<ArrayRef>,
    starts: Vec<i64>,
    ends: Vec<i64>,
    values: Vec<ArrayRef>,
) -> Result<RecordBatch> {
    let window_field = shared.schema.field(shared.window_index);
    let DataType::Struct(fields) = window_field.data_type() else {
        return internal_err!("window column has type {}", window_field.data_type());
    };
    let window: ArrayRef = Arc::new(StructArray::try_new(
        Fields::clone(fields),
        vec![
            Arc::new(TimestampNanosecondArray::from(starts)),
            Arc::new(TimestampNanosecondArray::from(ends)),
        ],
        None,
    )?);
    let mut columns = keys;
    columns.insert(shared.window_index, window);
    columns.extend(values);
    Ok(RecordBatch::try_new(shared.schema.clone(), columns)?)
}

impl Stream for WindowAggregateStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            let queued = {
                let mut core = lock(&self.core);
                let queued = core.output.pop_front();
                self.release(&core);
                queued
            };
            if let Some(batch) = queued {
                self.stats
                    .records_out
                    .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                return Poll::Ready(Some(Ok(batch)));
            }
            if self.finished {
                return Poll::Ready(None);
            }
            match self.input.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(batch))) => {
                    self.timer = None;
                    let watermark = self.current_watermark();
                    let step = self.process(&batch).and_then(|()| self.advance(watermark));
                    if let Err(e) = step {
                        self.finished = true;
                        return Poll::Ready(Some(Err(e)));
                    }
                }
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                Poll::Ready(None) => {
                    // End of input: every window is complete.
                    self.finished = true;
                    if let Err(e) = self.advance(WATERMARK_MAX) {
                        return Poll::Ready(Some(Err(e)));
                    }
                }
                Poll::Pending => {
                    // The input's watermark may have moved without rows (an exchange below
                    // passes watermarks on their own).
                    let watermark = self.current_watermark();
                    if let Err(e) = self.advance(watermark) {
                        self.finished = true;
                        return Poll::Ready(Some(Err(e)));
                    }
                    if !lock(&self.core).output.is_empty() {
                        continue;
                    }
                    let Some(wait) = self.next_wakeup() else {
                        return Poll::Pending;
                    };
                    let timer = self
                        .timer
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(wait)));
                    if timer.poll_unpin(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.timer = None;
                    let watermark = self.current_watermark();
                    if let Err(e) = self.advance(watermark) {
                        self.finished = true;
                        return Poll::Ready(Some(Err(e)));
                    }
                    if lock(&self.core).output.is_empty() {
                        // Nothing closed yet: arm the next timer before sleeping.
                        let Some(wait) = self.next_wakeup() else {
                            return Poll::Pending;
                        };
                        let mut timer = Box::pin(tokio::time::sleep(wait));
                        if timer.poll_unpin(cx).is_pending() {
                            self.timer = Some(timer);
                            return Poll::Pending;
                        }
                    }
                }
            }
        }
    }
}

/// Hands the open windows (partial aggregates) and closed-but-unsent results to checkpoints.
struct WindowSnapshots {
    core: Arc<Mutex<Core>>,
    shared: Arc<WindowAggregate>,
}

impl OperatorSnapshot for WindowSnapshots {
    fn snapshot(&self) -> crate::error::Result<serde_json::Value> {
        let mut core = lock(&self.core);
        let mut open = Vec::new();
        let mut sessions = serde_json::Value::Null;
        match &mut core.state {
            State::Fixed(windows) => {
                for (start, groups) in windows.iter_mut() {
                    let (batch, layout) = groups.snapshot(&self.shared.spec)?;
                    open.push(serde_json::json!({
                        "start": start,
                        "layout": layout,
                        "groups": encode(&batch)?,
                    }));
                }
            }
            State::Sessions(state) => {
                let (batch, layout) = state.snapshot(&self.shared.spec)?;
                sessions = serde_json::json!({ "layout": layout, "sessions": encode(&batch)? });
            }
        }
        let output = core.output.iter().map(encode).collect::<Result<Vec<_>>>()?;
        Ok(serde_json::json!({
            "watermark": core.watermark,
            "windows": open,
            "sessions": sessions,
            "output": output,
        }))
    }
}

impl WindowSnapshots {
    fn restore(&self, saved: &serde_json::Value) -> Result<()> {
        let bad = || {
            datafusion::error::DataFusionError::Internal(format!(
                "checkpointed window state is unreadable: {saved}"
            ))
        };
        let mut core = lock(&self.core);
        core.watermark = saved["watermark"].as_i64().ok_or_else(bad)?;
        if let State::Sessions(sessions) = &mut core.state {
            let saved_sessions = &saved["sessions"];
            let layout: Vec<usize> =
                serde_json::from_value(saved_sessions["layout"].clone()).map_err(|_| bad())?;
            let batch = decode(saved_sessions["sessions"].as_str().ok_or_else(bad)?)?;
            sessions.restore(&self.shared.spec, &batch, &layout)?;
        }
        let windows_saved = saved["windows"].as_array().ok_or_else(bad)?;
        if let State::Fixed(windows) = &mut core.state {
            for window in windows_saved {
                let start = window["start"].as_i64().ok_or_else(bad)?;
                let layout: Vec<usize> =
                    serde_json::from_value(window["layout"].clone()).map_err(|_| bad())?;
                let batch = decode(window["groups"].as_str().ok_or_else(bad)?)?;
                windows.insert(
                    start,
                    GroupedState::from_snapshot(&self.shared.spec, &batch, &layout)?,
                );
            }
        }
        for batch in saved["output"].as_array().ok_or_else(bad)? {
            let batch = decode(batch.as_str().ok_or_else(bad)?)?;
            // Restore the output schema's names (snapshots keep columns only).
            core.output.push_back(RecordBatch::try_new(
                self.shared.schema.clone(),
                batch.columns().to_vec(),
            )?);
        }
        Ok(())
    }
}

impl RecordBatchStream for WindowAggregateStream {
    fn schema(&self) -> SchemaRef {
        self.shared.schema.clone()
    }
}
