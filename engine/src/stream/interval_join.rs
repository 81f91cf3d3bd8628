//! Interval joins: two streams joined on keys and an event-time interval, e.g.
//! `a JOIN b ON a.id = b.id AND b.ts BETWEEN a.ts - INTERVAL '1' MINUTE AND a.ts + INTERVAL
//! '1' MINUTE`.
//!
//! Each side keeps the rows that may still match a row the other side has yet to send: a row
//! is dropped once the other side's watermark has passed the end of its interval. A new batch
//! is matched against the other side's kept rows through a hash index on the join keys, the
//! interval is checked on the event times, and the join's whole condition is then evaluated
//! on the candidate pairs, so every pair is emitted exactly once, when its later row arrives.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use arrow::compute::{cast, filter_record_batch, interleave};
use arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampNanosecondType};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use arrow::row::{RowConverter, SortField};
use datafusion::common::{JoinSide, JoinType, ScalarValue};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};
use datafusion::physical_plan::joins::SymmetricHashJoinExec;
use datafusion::physical_plan::joins::utils::JoinFilter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, RecordBatchStream,
    SendableRecordBatchStream,
};
use futures::{Stream, StreamExt};

use super::streaming_properties;
use super::watermark::{WATERMARK_MIN, Watermarks, collect_sources};
use crate::checkpoint::arrow_state::{decode, encode};
use crate::checkpoint::{CheckpointHub, OperatorSnapshot};
use crate::metrics::{Counters, OperatorStats};

type Keys = Vec<(Arc<dyn PhysicalExpr>, Arc<dyn PhysicalExpr>)>;

/// The plan node.
#[derive(Debug)]
pub struct IntervalJoinExec {
    left: Arc<dyn ExecutionPlan>,
    right: Arc<dyn ExecutionPlan>,
    on: Keys,
    filter: JoinFilter,
    /// Event-time columns of each input.
    left_time: usize,
    right_time: usize,
    /// `right time - left time` lies in `[lower, upper]` (nanoseconds).
    lower: i64,
    upper: i64,
    schema: SchemaRef,
    counters: Arc<Counters>,
    properties: Arc<PlanProperties>,
}

/// A filter operand: a filter column plus a constant offset in nanoseconds.
fn column_plus_offset(expr: &Arc<dyn PhysicalExpr>) -> Option<(usize, i64)> {
    if let Some(column) = expr.as_any().downcast_ref::<Column>() {
        return Some((column.index(), 0));
    }
    let binary = expr.as_any().downcast_ref::<BinaryExpr>()?;
    let column = binary.left().as_any().downcast_ref::<Column>()?;
    let literal = binary.right().as_any().downcast_ref::<Literal>()?;
    let nanos = interval_nanos(literal.value())?;
    match binary.op() {
        Operator::Plus => Some((column.index(), nanos)),
        Operator::Minus => Some((column.index(), nanos.checked_neg()?)),
        _ => None,
    }
}

/// A fixed-length interval in nanoseconds (months have no fixed length).
fn interval_nanos(value: &ScalarValue) -> Option<i64> {
    match value {
        ScalarValue::IntervalMonthDayNano(Some(v)) if v.months == 0 => i64::from(v.days)
            .checked_mul(86_400_000_000_000)?
            .checked_add(v.nanoseconds),
        ScalarValue::IntervalDayTime(Some(v)) => i64::from(v.days)
            .checked_mul(86_400_000_000_000)?
            .checked_add(i64::from(v.milliseconds).checked_mul(1_000_000)?),
        ScalarValue::DurationSecond(Some(v)) => v.checked_mul(1_000_000_000),
        ScalarValue::DurationMillisecond(Some(v)) => v.checked_mul(1_000_000),
        ScalarValue::DurationMicrosecond(Some(v)) => v.checked_mul(1_000),
        ScalarValue::DurationNanosecond(Some(v)) => Some(*v),
        _ => None,
    }
}

fn conjuncts<'a>(expr: &'a Arc<dyn PhysicalExpr>, out: &mut Vec<&'a Arc<dyn PhysicalExpr>>) {
    match expr.as_any().downcast_ref::<BinaryExpr>() {
        Some(binary) if *binary.op() == Operator::And => {
            conjuncts(binary.left(), out);
            conjuncts(binary.right(), out);
        }
        _ => out.push(expr),
    }
}

/// The time columns and `[lower, upper]` bounds of `right time - left time` the filter
/// implies, if it bounds the difference on both sides.
fn interval_bounds(filter: &JoinFilter) -> Option<(usize, usize, i64, i64)> {
    let mut parts = Vec::new();
    conjuncts(filter.expression(), &mut parts);
    let (mut lower, mut upper) = (None::<i64>, None::<i64>);
    let mut times: Option<(usize, usize)> = None;
    let sides = filter.column_indices();
    for part in parts {
        let Some(binary) = part.as_any().downcast_ref::<BinaryExpr>() else {
            continue;
        };
        let at_least = match binary.op() {
            Operator::GtEq | Operator::Gt => true,
            Operator::LtEq | Operator::Lt => false,
            _ => continue,
        };
        let (Some((a, a_off)), Some((b, b_off))) = (
            column_plus_offset(binary.left()),
            column_plus_offset(binary.right()),
        ) else {
            continue;
        };
        let (a_side, b_side) = (sides.get(a)?, sides.get(b)?);
        // a + a_off OP b + b_off, as a bound on right - left.
        let (value, at_least, pair) = match (a_side.side, b_side.side) {
            (JoinSide::Right, JoinSide::Left) => (
                b_off.checked_sub(a_off)?,
                at_least,
                (b_side.index, a_side.index),
            ),
            (JoinSide::Left, JoinSide::Right) => (
                a_off.checked_sub(b_off)?,
                !at_least,
                (a_side.index, b_side.index),
            ),
            _ => continue,
        };
        if *times.get_or_insert(pair) != pair {
            return None;
        }
        if at_least {
            lower = Some(lower.map_or(value, |l| l.max(value)));
        } else {
            upper = Some(upper.map_or(value, |u| u.min(value)));
        }
    }
    let (left_time, right_time) = times?;
    Some((left_time, right_time, lower?, upper?))
}

fn is_time(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Timestamp(_, _))
}

impl IntervalJoinExec {
    /// An interval join for an inner join of two streams whose condition bounds the
    /// difference of their event times on both sides.
    pub fn try_from_join(node: &Arc<dyn ExecutionPlan>, counters: &Arc<Counters>) -> Option<Self> {
        let join = node.as_any().downcast_ref::<SymmetricHashJoinExec>()?;
        if *join.join_type() != JoinType::Inner || join.on().is_empty() {
            return None;
        }
        let filter = join.filter()?.clone();
        let (left_time, right_time, lower, upper) = interval_bounds(&filter)?;
        let (left, right) = (join.left().clone(), join.right().clone());
        if lower > upper
            || !is_time(left.schema().field(left_time).data_type())
            || !is_time(right.schema().field(right_time).data_type())
        {
            return None;
        }
        let schema = join.schema();
        let properties = streaming_properties(schema.clone(), &left);
        Some(IntervalJoinExec {
            left,
            right,
            on: join.on().to_vec(),
            filter,
            left_time,
            right_time,
            lower,
            upper,
            schema,
            counters: counters.clone(),
            properties,
        })
    }
}

impl DisplayAs for IntervalJoinExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self.on.iter().map(|(l, r)| format!("({l}, {r})")).collect();
        write!(
            f,
            "IntervalJoinExec: on [{}], right time - left time in [{}, {}], filter {}, state: rows of each side until the other side's watermark passes their interval",
            keys.join(", "),
            super::window::human(self.lower),
            super::window::human(self.upper),
            self.filter.expression()
        )
    }
}

impl ExecutionPlan for IntervalJoinExec {
    fn name(&self) -> &str {
        "IntervalJoinExec"
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
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let right = children.swap_remove(1);
        let left = children.swap_remove(0);
        let properties = streaming_properties(self.schema.clone(), &left);
        Ok(Arc::new(IntervalJoinExec {
            left,
            right,
            on: self.on.clone(),
            filter: self.filter.clone(),
            left_time: self.left_time,
            right_time: self.right_time,
            lower: self.lower,
            upper: self.upper,
            schema: self.schema.clone(),
            counters: self.counters.clone(),
            properties,
        }))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let hub = context.session_config().get_extension::<CheckpointHub>();
        let (left, left_marks) = collect_sources(|| self.left.execute(partition, context.clone()));
        let (right, right_marks) = collect_sources(|| self.right.execute(partition, context));
        let side = |input, watermarks, time, keys| Side {
            input,
            watermarks,
            done: false,
            kept: Arc::new(Mutex::new(Kept {
                time,
                keys,
                converter: None,
                batches: Vec::new(),
                times: Vec::new(),
                index: HashMap::new(),
                evicted_to: WATERMARK_MIN,
            })),
        };
        let left_keys = self.on.iter().map(|(l, _)| l.clone()).collect();
        let right_keys = self.on.iter().map(|(_, r)| r.clone()).collect();
        let left = side(left?, left_marks, self.left_time, left_keys);
        let right = side(right?, right_marks, self.right_time, right_keys);
        // In a pipeline that takes checkpoints: resume with the kept rows, and hand them
        // over at every checkpoint.
        if let Some(hub) = hub {
            let snapshots = Arc::new(KeptSnapshots {
                sides: [left.kept.clone(), right.kept.clone()],
            });
            if let Some(saved) = hub.register_operator(self.name(), snapshots.clone()) {
                snapshots.restore(&saved)?;
            }
        }
        Ok(Box::pin(IntervalJoinStream {
            left,
            right,
            filter: self.filter.clone(),
            lower: self.lower,
            upper: self.upper,
            schema: self.schema.clone(),
            stats: self.counters.register_operator(self),
            counters: self.counters.clone(),
            reported_state: 0,
            next_first: 0,
        }))
    }
}

/// One input and the rows it keeps.
struct Side {
    input: SendableRecordBatchStream,
    watermarks: Watermarks,
    done: bool,
    /// Shared with checkpoints.
    kept: Arc<Mutex<Kept>>,
}

/// The rows a side keeps, indexed by join key.
struct Kept {
    time: usize,
    keys: Vec<Arc<dyn PhysicalExpr>>,
    converter: Option<RowConverter>,
    batches: Vec<RecordBatch>,
    /// Event time (ns) per kept row, per batch.
    times: Vec<Vec<i64>>,
    /// Key bytes → (batch, row) of kept rows.
    index: HashMap<Box<[u8]>, Vec<(u32, u32)>>,
    /// Rows before this time were dropped.
    evicted_to: i64,
}

fn lock(kept: &Mutex<Kept>) -> MutexGuard<'_, Kept> {
    kept.lock().unwrap_or_else(|p| p.into_inner())
}

fn nanos(column: &ArrayRef) -> Result<Vec<i64>> {
    let as_nanos = cast(column, &DataType::Timestamp(TimeUnit::Nanosecond, None))?;
    let times = as_nanos.as_primitive::<TimestampNanosecondType>();
    Ok((0..times.len())
        .map(|i| {
            if times.is_valid(i) {
                times.value(i)
            } else {
                i64::MIN
            }
        })
        .collect())
}

impl Kept {
    /// Key bytes per row of `batch` (`None` where a key is NULL: such rows never match).
    fn key_rows(&mut self, batch: &RecordBatch) -> Result<Vec<Option<Box<[u8]>>>> {
        let columns = self
            .keys
            .iter()
            .map(|k| k.evaluate(batch)?.into_array(batch.num_rows()))
            .collect::<Result<Vec<_>>>()?;
        let converter = match &mut self.converter {
            Some(c) => c,
            None => {
                let fields = columns
                    .iter()
                    .map(|c| SortField::new(c.data_type().clone()))
                    .collect();
                self.converter.insert(RowConverter::new(fields)?)
            }
        };
        let rows = converter.convert_columns(&columns)?;
        Ok((0..batch.num_rows())
            .map(|i| {
                columns
                    .iter()
                    .all(|c| c.is_valid(i))
                    .then(|| rows.row(i).as_ref().into())
            })
            .collect())
    }

    fn add(&mut self, batch: RecordBatch, keys: Vec<Option<Box<[u8]>>>, times: Vec<i64>) {
        let b = self.batches.len() as u32;
        for (row, key) in keys.into_iter().enumerate() {
            if let Some(key) = key {
                self.index.entry(key).or_default().push((b, row as u32));
            }
        }
        self.batches.push(batch);
        self.times.push(times);
    }

    /// Drop rows older than `before`, rebuilding the index.
    fn evict(&mut self, before: i64) -> Result<()> {
        if before <= self.evicted_to {
            return Ok(());
        }
        self.evicted_to = before;
        let old_batches = std::mem::take(&mut self.batches);
        let old_times = std::mem::take(&mut self.times);
        self.index.clear();
        for (batch, times) in old_batches.into_iter().zip(old_times) {
            if times.iter().all(|t| *t < before) {
                continue;
            }
            let (batch, times) = if times.iter().any(|t| *t < before) {
                let keep: BooleanArray = times.iter().map(|t| Some(*t >= before)).collect();
                let kept_times = times.into_iter().filter(|t| *t >= before).collect();
                (filter_record_batch(&batch, &keep)?, kept_times)
            } else {
                (batch, times)
            };
            let keys = self.key_rows(&batch)?;
            self.add(batch, keys, times);
        }
        Ok(())
    }

    fn size(&self) -> usize {
        self.batches
            .iter()
            .map(RecordBatch::get_array_memory_size)
            .sum::<usize>()
            + self.times.iter().map(|t| t.len() * 8).sum::<usize>()
    }
}

struct IntervalJoinStream {
    left: Side,
    right: Side,
    filter: JoinFilter,
    lower: i64,
    upper: i64,
    schema: SchemaRef,
    stats: Arc<OperatorStats>,
    counters: Arc<Counters>,
    reported_state: u64,
    /// Which side to poll first (alternates, so neither starves the other).
    next_first: usize,
}

/// Columns of `side`'s kept batches taken at `refs` ((batch, row) pairs).
fn gather(batches: &[RecordBatch], column: usize, refs: &[(usize, usize)]) -> Result<ArrayRef> {
    let arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(column).as_ref()).collect();
    Ok(interleave(&arrays, refs)?)
}

impl IntervalJoinStream {
    /// Match a new batch of side `from` (0 left, 1 right) against the other side's rows,
    /// then keep it.
    fn process(&mut self, from: usize, batch: RecordBatch) -> Result<Option<RecordBatch>> {
        let (left_kept, right_kept) = (self.left.kept.clone(), self.right.kept.clone());
        let mut left = lock(&left_kept);
        let mut right = lock(&right_kept);
        let (this, other) = if from == 0 {
            (&mut *left, &mut *right)
        } else {
            (&mut *right, &mut *left)
        };
        let keys = this.key_rows(&batch)?;
        let times = nanos(batch.column(this.time))?;
        let new_batch = this.batches.len();
        let mut pairs: Vec<((usize, usize), (usize, usize))> = Vec::new();
        for (row, key) in keys.iter().enumerate() {
            let Some(key) = key else { continue };
            let Some(matches) = other.index.get(key) else {
                continue;
            };
            let t = times[row];
            for &(b, r) in matches {
                let other_t = other.times[b as usize][r as usize];
                let diff = if from == 0 {
                    other_t.saturating_sub(t)
                } else {
                    t.saturating_sub(other_t)
                };
                if diff >= self.lower && diff <= self.upper {
                    let mine = (new_batch, row);
                    let theirs = (b as usize, r as usize);
                    pairs.push(if from == 0 {
                        (mine, theirs)
                    } else {
                        (theirs, mine)
                    });
                }
            }
        }
        this.add(batch, keys, times);
        if pairs.is_empty() {
            return Ok(None);
        }
        let left_refs: Vec<(usize, usize)> = pairs.iter().map(|p| p.0).collect();
        let right_refs: Vec<(usize, usize)> = pairs.iter().map(|p| p.1).collect();
        // The join's whole condition on the candidates (strict bounds, other terms).
        let filter_columns = self
            .filter
            .column_indices()
            .iter()
            .map(|c| match c.side {
                JoinSide::Left => gather(&left.batches, c.index, &left_refs),
                _ => gather(&right.batches, c.index, &right_refs),
            })
            .collect::<Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(pairs.len()));
        let intermediate = RecordBatch::try_new_with_options(
            self.filter.schema().clone(),
            filter_columns,
            &options,
        )?;
        let mask = self
            .filter
            .expression()
            .evaluate(&intermediate)?
            .into_array(pairs.len())?;
        let mask = mask.as_boolean();
        let mut columns = Vec::with_capacity(self.schema.fields().len());
        for c in 0..left.batches[0].num_columns() {
            columns.push(gather(&left.batches, c, &left_refs)?);
        }
        for c in 0..right.batches[0].num_columns() {
            columns.push(gather(&right.batches, c, &right_refs)?);
        }
        let joined = RecordBatch::try_new(self.schema.clone(), columns)?;
        let joined = filter_record_batch(&joined, mask)?;
        Ok((joined.num_rows() > 0).then_some(joined))
    }

    /// Drop rows the other side's watermark has passed the interval of.
    fn evict(&mut self) -> Result<()> {
        let (left_mark, right_mark) = (
            self.left.watermarks.current(),
            self.right.watermarks.current(),
        );
        let mut left = lock(&self.left.kept);
        let mut right = lock(&self.right.kept);
        if !self.right.watermarks.is_empty() && right_mark > WATERMARK_MIN {
            // A future right row r has r >= right watermark and needs r - l <= upper.
            left.evict(right_mark.saturating_sub(self.upper))?;
        }
        if !self.left.watermarks.is_empty() && left_mark > WATERMARK_MIN {
            // A future left row l has l >= left watermark and needs r - l >= lower.
            right.evict(left_mark.saturating_add(self.lower))?;
        }
        let bytes = (left.size() + right.size()) as u64;
        drop((left, right));
        self.stats.state_bytes.store(bytes, Ordering::Relaxed);
        self.counters.report_state(&mut self.reported_state, bytes);
        Ok(())
    }
}

impl Stream for IntervalJoinStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.left.done && self.right.done {
                return Poll::Ready(None);
            }
            let first = self.next_first;
            self.next_first = 1 - first;
            let mut progressed = false;
            for from in [first, 1 - first] {
                let side = if from == 0 {
                    &mut self.left
                } else {
                    &mut self.right
                };
                if side.done {
                    continue;
                }
                match side.input.poll_next_unpin(cx) {
                    Poll::Ready(Some(Ok(batch))) => {
                        progressed = true;
                        let out = self.process(from, batch).and_then(|out| {
                            self.evict()?;
                            Ok(out)
                        });
                        match out {
                            Ok(Some(joined)) => {
                                self.stats
                                    .records_out
                                    .fetch_add(joined.num_rows() as u64, Ordering::Relaxed);
                                return Poll::Ready(Some(Ok(joined)));
                            }
                            Ok(None) => {}
                            Err(e) => return Poll::Ready(Some(Err(e))),
                        }
                    }
                    Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(e))),
                    Poll::Ready(None) => {
                        side.done = true;
                        progressed = true;
                    }
                    Poll::Pending => {}
                }
            }
            if !progressed {
                return Poll::Pending;
            }
        }
    }
}

/// Hands both sides' kept rows to checkpoints.
struct KeptSnapshots {
    sides: [Arc<Mutex<Kept>>; 2],
}

impl OperatorSnapshot for KeptSnapshots {
    fn snapshot(&self) -> crate::error::Result<serde_json::Value> {
        let mut sides = Vec::with_capacity(2);
        for side in &self.sides {
            let kept = lock(side);
            let batches = kept
                .batches
                .iter()
                .map(encode)
                .collect::<Result<Vec<_>>>()?;
            sides.push(serde_json::json!({ "evicted_to": kept.evicted_to, "batches": batches }));
        }
        Ok(serde_json::Value::Array(sides))
    }
}

impl KeptSnapshots {
    fn restore(&self, saved: &serde_json::Value) -> Result<()> {
        let bad = || {
            datafusion::error::DataFusionError::Internal(format!(
                "checkpointed join state is unreadable: {saved}"
            ))
        };
        for (side, state) in self.sides.iter().zip(saved.as_array().ok_or_else(bad)?) {
            let mut kept = lock(side);
            kept.evicted_to = state["evicted_to"].as_i64().ok_or_else(bad)?;
            for batch in state["batches"].as_array().ok_or_else(bad)? {
                let batch = decode(batch.as_str().ok_or_else(bad)?)?;
                let times = nanos(batch.column(kept.time))?;
                let keys = kept.key_rows(&batch)?;
                kept.add(batch, keys, times);
            }
        }
        Ok(())
    }
}

impl RecordBatchStream for IntervalJoinStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
