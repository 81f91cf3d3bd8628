//! Joins with a stream on at least one side, in one operator with three modes (shown by
//! EXPLAIN as `IntervalJoinExec`, `UpdatingJoinExec` and `LookupJoinExec`).
//!
//! Interval joins: two streams joined on keys and an event-time interval, e.g.
//! `a JOIN b ON a.id = b.id AND b.ts BETWEEN a.ts - INTERVAL '1' MINUTE AND a.ts + INTERVAL
//! '1' MINUTE`.
//!
//! Each side keeps the rows that may still match a row the other side has yet to send: a row
//! is dropped once the other side's watermark has passed the end of its interval. A new batch
//! is matched against the other side's kept rows through a hash index on the join keys, the
//! interval is checked on the event times, and the join's whole condition is then evaluated
//! on the candidate pairs, so every pair is emitted exactly once, when its later row arrives.
//!
//! The same operator runs regular (updating) joins of two streams, inner or outer (LEFT,
//! RIGHT, FULL), whose condition bounds no time difference: each row is kept from its arrival
//! until the state TTL (`updating_ttl`) has passed. An outer join emits a row of a preserved
//! side without a match at once, padded with NULLs (`+I`), and when its first match arrives
//! retracts that row (`-U`) for the joined one (`+U`); its output carries the `_op` column of
//! changes. Rows expiring by TTL
//! retract nothing (as in Flink).
//!
//! And it runs lookup joins: a stream joined with a bounded (static) input, which DataFusion
//! puts on the left. The static side is read whole first, from its start at every
//! (re)start of the query, and kept; each stream batch is then matched against it and not
//! kept. `INNER` and stream-preserving outer joins (`RIGHT` here, written `stream LEFT JOIN
//! static`) are append-only: the static side is complete before any stream row is matched.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use arrow::array::make_comparator;
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int64Array, StringArray, UInt32Array, new_null_array,
};
use arrow::compute::{SortOptions, cast, filter_record_batch, interleave, take_record_batch};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit, TimestampNanosecondType};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use arrow::row::{RowConverter, SortField};
use datafusion::common::{JoinSide, JoinType, ScalarValue};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};
use datafusion::physical_plan::joins::utils::JoinFilter;
use datafusion::physical_plan::joins::{HashJoinExec, SymmetricHashJoinExec};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
    RecordBatchStream, SendableRecordBatchStream,
};
use futures::{Stream, StreamExt};

use super::streaming_properties;
use super::updating::is_changelog;
use super::watermark::{WATERMARK_MIN, Watermarks, collect_sources};
use crate::checkpoint::arrow_state::{decode, encode};
use crate::checkpoint::{CheckpointHub, OperatorSnapshot};
use crate::metrics::{Counters, OperatorStats};

type Keys = Vec<(Arc<dyn PhysicalExpr>, Arc<dyn PhysicalExpr>)>;
/// A kept row: (batch, row).
type RowRef = (usize, usize);
/// A joined pair: (left row, right row).
type Pair = (RowRef, RowRef);
/// An output row: left and right rows (or NULLs) and change kind.
type Change = (Option<RowRef>, Option<RowRef>, &'static str);

/// The plan node (interval, regular or lookup join: see the module docs).
#[derive(Debug)]
pub struct StreamJoinExec {
    left: Arc<dyn ExecutionPlan>,
    right: Arc<dyn ExecutionPlan>,
    on: Keys,
    filter: Option<JoinFilter>,
    /// Event-time columns of each input; `None` for a regular join, whose rows carry their
    /// arrival time instead.
    times: Option<(usize, usize)>,
    /// `right time - left time` lies in `[lower, upper]` (nanoseconds).
    lower: i64,
    upper: i64,
    /// Regular joins: how long a row is kept after it arrived (nanoseconds).
    ttl: i64,
    /// LEFT or FULL JOIN (regular joins only): unmatched left rows padded with NULLs, as
    /// changes.
    left_outer: bool,
    /// A lookup join: the left input is static (read first, again at every start).
    static_left: bool,
    /// RIGHT or FULL JOIN: unmatched right rows padded with NULLs (as changes in a regular
    /// join; at once and for good in a lookup join, whose right side is the stream).
    right_outer: bool,
    /// A lookup join that only filters the stream (`IN`, `EXISTS`, `NOT EXISTS`).
    existence: Option<Existence>,
    schema: SchemaRef,
    counters: Arc<Counters>,
    properties: Arc<PlanProperties>,
}

/// Which stream rows a semi or anti lookup join passes on (each once, unchanged).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existence {
    /// Those with a match in the static side.
    Semi,
    /// Those without one.
    Anti,
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

impl StreamJoinExec {
    /// The join of two streams: an interval join for an inner join whose condition bounds
    /// the difference of their event times on both sides, a regular join (rows kept for
    /// `ttl`) for other inner and LEFT equi-joins.
    /// The replacement of a join node: this operator, under a projection when DataFusion's
    /// hash join had one built in.
    pub fn replace_join(
        node: &Arc<dyn ExecutionPlan>,
        counters: &Arc<Counters>,
        ttl: std::time::Duration,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let hash_join = node.as_any().downcast_ref::<HashJoinExec>();
        let projection = hash_join.and_then(|j| j.projection.clone());
        let fetch = hash_join.and_then(|j| j.fetch());
        let Some(join) = Self::try_from_join(node, counters, ttl) else {
            return Ok(None);
        };
        if join.reads_changes() {
            join.check_changes_supported()?;
        }
        let mut join: Arc<dyn ExecutionPlan> = Arc::new(join);
        // A LIMIT DataFusion pushed into its join.
        if let Some(fetch) = fetch {
            join = Arc::new(datafusion::physical_plan::limit::GlobalLimitExec::new(
                join,
                0,
                Some(fetch),
            ));
        }
        let Some(projection) = projection else {
            return Ok(Some(join));
        };
        let schema = join.schema();
        let mut columns: Vec<usize> = projection.to_vec();
        if is_changelog(&schema) {
            columns.push(schema.fields().len() - 1);
        }
        let exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = columns
            .into_iter()
            .map(|i| {
                let name = schema.field(i).name().clone();
                (
                    Arc::new(Column::new(&name, i)) as Arc<dyn PhysicalExpr>,
                    name,
                )
            })
            .collect();
        Ok(Some(Arc::new(
            datafusion::physical_plan::projection::ProjectionExec::try_new(exprs, join)?,
        )))
    }

    fn try_from_join(
        node: &Arc<dyn ExecutionPlan>,
        counters: &Arc<Counters>,
        ttl: std::time::Duration,
    ) -> Option<Self> {
        let (join_type, on, filter, left, right) =
            if let Some(join) = node.as_any().downcast_ref::<SymmetricHashJoinExec>() {
                (
                    *join.join_type(),
                    join.on().to_vec(),
                    join.filter().cloned(),
                    join.left().clone(),
                    join.right().clone(),
                )
            } else {
                let join = node.as_any().downcast_ref::<HashJoinExec>()?;
                (
                    *join.join_type(),
                    join.on().to_vec(),
                    join.filter().cloned(),
                    join.left().clone(),
                    join.right().clone(),
                )
            };
        // Both inputs' columns (a hash join's own schema may be projected), without the
        // change kind (`_op`) of inputs that emit changes: the output has its own.
        let join_schema = Arc::new(
            datafusion::physical_plan::joins::utils::build_join_schema(
                &data_schema(&left.schema()),
                &data_schema(&right.schema()),
                &join_type,
            )
            .0,
        );
        // With parallelism above 1 the inputs' partitions differ here; the plan's exchanges
        // are placed afterwards (crate::stream::parallel).
        let static_left = match (
            left.properties().boundedness.is_unbounded(),
            right.properties().boundedness.is_unbounded(),
        ) {
            (true, true) => false,
            // `static LEFT/FULL JOIN stream`: a static row's match may come at any time, so
            // it runs as a regular join whose static side ends (and is then kept for good).
            (false, true) => !matches!(join_type, JoinType::Left | JoinType::Full),
            _ => return None,
        };
        let existence = match (join_type, static_left) {
            (JoinType::RightSemi, true) => Some(Existence::Semi),
            (JoinType::RightAnti, true) => Some(Existence::Anti),
            _ => None,
        };
        let (left_outer, right_outer) = match (join_type, static_left) {
            (JoinType::Inner, _) => (false, false),
            (JoinType::RightSemi | JoinType::RightAnti, true) => (false, false),
            (JoinType::Left, false) => (true, false),
            (JoinType::Right, _) => (false, true),
            (JoinType::Full, false) => (true, true),
            _ => return None,
        };
        let changes_in = is_changelog(&left.schema()) || is_changelog(&right.schema());
        let changes = (!static_left && (left_outer || right_outer)) || changes_in;
        if on.is_empty() {
            return None;
        }
        let bounds = filter
            .as_ref()
            .and_then(interval_bounds)
            .filter(|(left_time, right_time, lower, upper)| {
                lower <= upper
                    && is_time(left.schema().field(*left_time).data_type())
                    && is_time(right.schema().field(*right_time).data_type())
            })
            .filter(|_| !changes && !static_left);
        let (times, lower, upper) = match bounds {
            Some((left_time, right_time, lower, upper)) => {
                (Some((left_time, right_time)), lower, upper)
            }
            None => (None, i64::MIN, i64::MAX),
        };
        let schema = if changes {
            super::updating::with_op_column(&join_schema)
        } else {
            join_schema
        };
        let properties = Self::properties_for(&schema, &left, &right, static_left);
        Some(StreamJoinExec {
            left,
            right,
            on,
            filter,
            times,
            lower,
            upper,
            ttl: i64::try_from(ttl.as_nanos()).unwrap_or(i64::MAX),
            left_outer,
            static_left,
            right_outer,
            existence,
            schema,
            counters: counters.clone(),
            properties,
        })
    }
}

/// `schema` without its `_op` column, if it has one (the data columns of a changelog).
fn data_schema(schema: &SchemaRef) -> SchemaRef {
    if !is_changelog(schema) {
        return schema.clone();
    }
    let fields = &schema.fields()[..schema.fields().len() - 1];
    Arc::new(Schema::new_with_metadata(
        fields.to_vec(),
        schema.metadata().clone(),
    ))
}

fn changes_refused(what: &str) -> datafusion::error::DataFusionError {
    datafusion::error::DataFusionError::External(Box::new(crate::error::EngineError::Unsupported(
        format!(
            "{what} over changes (of an updating aggregate, an outer join or a debezium_json source) is not supported yet; \
             regular joins of streams (inner and outer) and joins of a stream with a static table are"
        ),
    )))
}

impl StreamJoinExec {
    /// Whether an input emits changes (`_op`).
    pub fn reads_changes(&self) -> bool {
        is_changelog(&self.left.schema()) || is_changelog(&self.right.schema())
    }

    /// Joins that take retractions back: a regular join of streams (a retracted row takes
    /// its pairs back; an outer join pads a row again when it loses its last match), and a
    /// lookup join whose stream emits changes (each row's pairs keep its kind). Interval
    /// joins over changes are refused.
    fn check_changes_supported(&self) -> Result<()> {
        if self.times.is_some() {
            return Err(changes_refused("an interval join"));
        }
        if self.static_left && is_changelog(&self.left.schema()) {
            return Err(changes_refused("a join with a static table of changes"));
        }
        Ok(())
    }

    /// This join after an input started to emit changes (DataFusion's projections under it
    /// pass `_op` on now): checked, and with `_op` in its output.
    pub fn over_changes(&self) -> Result<StreamJoinExec> {
        self.check_changes_supported()?;
        let schema = if is_changelog(&self.schema) {
            self.schema.clone()
        } else {
            super::updating::with_op_column(&self.schema)
        };
        Ok(self.with_parts(self.left.clone(), self.right.clone(), schema))
    }

    /// This join over `left` and `right`, with `schema`.
    fn with_parts(
        &self,
        left: Arc<dyn ExecutionPlan>,
        right: Arc<dyn ExecutionPlan>,
        schema: SchemaRef,
    ) -> StreamJoinExec {
        let properties = Self::properties_for(&schema, &left, &right, self.static_left);
        StreamJoinExec {
            left,
            right,
            on: self.on.clone(),
            filter: self.filter.clone(),
            times: self.times,
            lower: self.lower,
            upper: self.upper,
            ttl: self.ttl,
            left_outer: self.left_outer,
            static_left: self.static_left,
            right_outer: self.right_outer,
            existence: self.existence,
            schema,
            counters: self.counters.clone(),
            properties,
        }
    }

    /// A lookup join, whose left side is static and read again at every start.
    pub fn reads_static_left(&self) -> bool {
        self.static_left
    }

    /// The equi-join keys of each side.
    pub fn side_keys(&self) -> [Vec<Arc<dyn PhysicalExpr>>; 2] {
        [
            self.on.iter().map(|(l, _)| l.clone()).collect(),
            self.on.iter().map(|(_, r)| r.clone()).collect(),
        ]
    }

    /// A lookup join runs in the stream side's partitions (its static side is read whole
    /// by each); other joins in their (co-partitioned) inputs'.
    fn properties_for(
        schema: &SchemaRef,
        left: &Arc<dyn ExecutionPlan>,
        right: &Arc<dyn ExecutionPlan>,
        static_left: bool,
    ) -> Arc<PlanProperties> {
        streaming_properties(schema.clone(), if static_left { right } else { left })
    }
}

impl DisplayAs for StreamJoinExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys: Vec<String> = self.on.iter().map(|(l, r)| format!("({l}, {r})")).collect();
        let filter = self
            .filter
            .as_ref()
            .map_or("none".to_string(), |f| f.expression().to_string());
        if self.static_left {
            return write!(
                f,
                "LookupJoinExec: {} on [{}], filter {filter}, state: the static (left) side's rows, read again at every start",
                match (self.existence, self.right_outer) {
                    (Some(Existence::Semi), _) => "SEMI",
                    (Some(Existence::Anti), _) => "ANTI",
                    (None, true) => "RIGHT",
                    (None, false) => "INNER",
                },
                keys.join(", "),
            );
        }
        match self.times {
            Some(_) => write!(
                f,
                "IntervalJoinExec: on [{}], right time - left time in [{}, {}], filter {filter}, state: rows of each side until the other side's watermark passes their interval",
                keys.join(", "),
                super::window::human(self.lower),
                super::window::human(self.upper),
            ),
            None => write!(
                f,
                "UpdatingJoinExec: {} on [{}], filter {filter}, state: rows of each side for {} after they arrive",
                match (self.left_outer, self.right_outer) {
                    (false, false) => "INNER",
                    (true, false) => "LEFT",
                    (false, true) => "RIGHT",
                    (true, true) => "FULL",
                },
                keys.join(", "),
                super::window::human(self.ttl),
            ),
        }
    }
}

impl ExecutionPlan for StreamJoinExec {
    fn name(&self) -> &str {
        if self.static_left {
            "LookupJoinExec"
        } else if self.times.is_some() {
            "IntervalJoinExec"
        } else {
            "UpdatingJoinExec"
        }
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
        Ok(Arc::new(self.with_parts(left, right, self.schema.clone())))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let hub = context.session_config().get_extension::<CheckpointHub>();
        // The static side of a lookup join runs without checkpoints: read from its start.
        let left_context = if self.static_left {
            crate::checkpoint::task_context_without_hub(&context)
        } else {
            context.clone()
        };
        // Every partition of a lookup join reads the whole static side.
        let left_partition =
            if self.static_left && self.left.output_partitioning().partition_count() == 1 {
                0
            } else {
                partition
            };
        let (left, left_marks) =
            collect_sources(|| self.left.execute(left_partition, left_context));
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
                matches: Vec::new(),
                index: HashMap::new(),
                evicted_to: WATERMARK_MIN,
                ended: false,
            })),
        };
        let left_keys = self.on.iter().map(|(l, _)| l.clone()).collect();
        let right_keys = self.on.iter().map(|(_, r)| r.clone()).collect();
        let (left_time, right_time) = match self.times {
            Some((l, r)) => (Some(l), Some(r)),
            None => (None, None),
        };
        let left = side(left?, left_marks, left_time, left_keys);
        let right = side(right?, right_marks, right_time, right_keys);
        // In a pipeline that takes checkpoints: resume with the kept rows, and hand them
        // over at every checkpoint.
        if let Some(hub) = hub.filter(|_| !self.static_left) {
            let snapshots = Arc::new(KeptSnapshots {
                sides: [left.kept.clone(), right.kept.clone()],
            });
            if let Some(saved) = hub.register_operator(self.name(), snapshots.clone()) {
                snapshots.restore(&saved)?;
            }
        }
        let (mut left, mut right) = (left, right);
        left.done = lock(&left.kept).ended;
        right.done = lock(&right.kept).ended;
        Ok(Box::pin(StreamJoinStream {
            left,
            right,
            filter: self.filter.clone(),
            lower: self.lower,
            upper: self.upper,
            ttl: (self.times.is_none() && !self.static_left).then_some(self.ttl),
            next_expiry: 0,
            left_outer: self.left_outer,
            static_left: self.static_left,
            right_outer: self.right_outer,
            existence: self.existence,
            left_width: data_schema(&self.left.schema()).fields().len(),
            right_width: data_schema(&self.right.schema()).fields().len(),
            ops: [&self.left, &self.right].map(|input| {
                let schema = input.schema();
                is_changelog(&schema).then(|| schema.fields().len() - 1)
            }),
            emits_changes: is_changelog(&self.schema) && self.existence.is_none(),
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
    /// The event-time column; `None`: rows carry their arrival time.
    time: Option<usize>,
    keys: Vec<Arc<dyn PhysicalExpr>>,
    converter: Option<RowConverter>,
    batches: Vec<RecordBatch>,
    /// Event (or arrival) time (ns) per kept row, per batch.
    times: Vec<Vec<i64>>,
    /// How many kept rows of the other side each kept row matches (outer joins use it for
    /// preserved sides: a row without matches goes out padded).
    matches: Vec<Vec<u32>>,
    /// Key bytes → (batch, row) of kept rows.
    index: HashMap<Box<[u8]>, Vec<(u32, u32)>>,
    /// Rows before this time were dropped.
    evicted_to: i64,
    /// The side's input ended: its rows are kept for good (a static side), and a resumed
    /// query does not read it again.
    ended: bool,
}

/// The time of a kept row a retraction took back.
const REMOVED: i64 = i64::MIN;

/// The change kind of a join output row from a row that adds (`false`) or takes back.
fn kind(retract: bool) -> &'static str {
    if retract { "-D" } else { "+I" }
}

/// Per row of a `_op` column: whether it takes a row back (`-U`, `-D`).
fn retractions(ops: &ArrayRef) -> Result<Vec<bool>> {
    let Some(ops) = ops.as_string_opt::<i32>() else {
        return datafusion::common::internal_err!("_op column has type {}", ops.data_type());
    };
    Ok(ops
        .iter()
        .map(|op| op.is_some_and(|op| op.starts_with('-')))
        .collect())
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
    /// The time of each row of a new batch: its event time, or now.
    fn times_of(&self, batch: &RecordBatch) -> Result<Vec<i64>> {
        match self.time {
            Some(column) => nanos(batch.column(column)),
            None => Ok(vec![super::window_agg::now_nanos(); batch.num_rows()]),
        }
    }

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

    fn add(
        &mut self,
        batch: RecordBatch,
        keys: Vec<Option<Box<[u8]>>>,
        times: Vec<i64>,
        matches: Vec<u32>,
    ) {
        let b = self.batches.len() as u32;
        for (row, key) in keys.into_iter().enumerate() {
            // A row taken back (kept for checkpoints until its batch goes) matches nothing.
            if let Some(key) = key.filter(|_| times[row] != REMOVED) {
                self.index.entry(key).or_default().push((b, row as u32));
            }
        }
        self.batches.push(batch);
        self.times.push(times);
        self.matches.push(matches);
    }

    /// Drop rows older than `before`, rebuilding the index.
    fn evict(&mut self, before: i64) -> Result<()> {
        if before <= self.evicted_to {
            return Ok(());
        }
        self.evicted_to = before;
        let old_batches = std::mem::take(&mut self.batches);
        let old_times = std::mem::take(&mut self.times);
        let old_matches = std::mem::take(&mut self.matches);
        self.index.clear();
        for ((batch, times), matches) in old_batches.into_iter().zip(old_times).zip(old_matches) {
            if times.iter().all(|t| *t < before) {
                continue;
            }
            let (batch, times, matches) = if times.iter().any(|t| *t < before) {
                let keep: BooleanArray = times.iter().map(|t| Some(*t >= before)).collect();
                let kept = |i: &usize| times[*i] >= before;
                let kept_matches = (0..times.len()).filter(kept).map(|i| matches[i]).collect();
                let kept_times = times.iter().copied().filter(|t| *t >= before).collect();
                (
                    filter_record_batch(&batch, &keep)?,
                    kept_times,
                    kept_matches,
                )
            } else {
                (batch, times, matches)
            };
            let keys = self.key_rows(&batch)?;
            self.add(batch, keys, times, matches);
        }
        Ok(())
    }

    /// Stop matching a kept row equal to `batch`'s row `row` in its first `width` columns
    /// (the one a retraction takes back), if there is one.
    fn remove_equal(
        &mut self,
        key: &[u8],
        batch: &RecordBatch,
        row: usize,
        width: usize,
    ) -> Result<()> {
        let Some(candidates) = self.index.get_mut(key) else {
            return Ok(());
        };
        let mut found = None;
        'candidates: for (i, &(b, r)) in candidates.iter().enumerate() {
            let kept = &self.batches[b as usize];
            for c in 0..width {
                let compare = make_comparator(
                    kept.column(c).as_ref(),
                    batch.column(c).as_ref(),
                    SortOptions::default(),
                )?;
                if compare(r as usize, row) != std::cmp::Ordering::Equal {
                    continue 'candidates;
                }
            }
            found = Some(i);
            break;
        }
        if let Some(i) = found {
            let (b, r) = candidates.swap_remove(i);
            self.times[b as usize][r as usize] = REMOVED;
        }
        Ok(())
    }

    /// Forget the last batch added.
    fn pop(&mut self) {
        self.batches.pop();
        self.times.pop();
        self.matches.pop();
    }

    /// Forget every kept row.
    fn clear(&mut self) {
        self.batches.clear();
        self.times.clear();
        self.matches.clear();
        self.index.clear();
    }

    fn size(&self) -> usize {
        self.batches
            .iter()
            .map(RecordBatch::get_array_memory_size)
            .sum::<usize>()
            + self.times.iter().map(|t| t.len() * 9).sum::<usize>()
    }
}

struct StreamJoinStream {
    left: Side,
    right: Side,
    filter: Option<JoinFilter>,
    lower: i64,
    upper: i64,
    /// Regular joins: rows older than this (ns) are dropped.
    ttl: Option<i64>,
    /// When (ns) to look for expired rows next.
    next_expiry: i64,
    left_outer: bool,
    static_left: bool,
    right_outer: bool,
    existence: Option<Existence>,
    /// Data columns of each input (without `_op`).
    left_width: usize,
    right_width: usize,
    /// Each input's `_op` column, if it emits changes.
    ops: [Option<usize>; 2],
    /// The output carries `_op`.
    emits_changes: bool,
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

impl StreamJoinStream {
    /// Match a new batch of side `from` (0 left, 1 right) against the other side's rows,
    /// then keep it. Rows of an input of changes that take a row back (`-U`, `-D`) take
    /// their pairs back, in order: a regular join works through runs of one kind.
    fn process(&mut self, from: usize, batch: RecordBatch) -> Result<Option<RecordBatch>> {
        let Some(op) = self.ops[from] else {
            return self.process_rows(from, batch, None);
        };
        let retracts = retractions(batch.column(op))?;
        if self.static_left {
            // A lookup join keeps no stream rows: each row's pairs take its kind.
            return self.process_rows(from, batch, Some(&retracts));
        }
        let mut outputs = Vec::new();
        let mut start = 0;
        while start < retracts.len() {
            let kind = retracts[start];
            let end = retracts[start..]
                .iter()
                .position(|r| *r != kind)
                .map_or(retracts.len(), |n| start + n);
            let run = batch.slice(start, end - start);
            if let Some(out) = self.process_rows(from, run, Some(&retracts[start..end]))? {
                outputs.push(out);
            }
            start = end;
        }
        match outputs.len() {
            0 => Ok(None),
            1 => Ok(outputs.pop()),
            _ => Ok(Some(arrow::compute::concat_batches(
                &self.schema,
                &outputs,
            )?)),
        }
    }

    /// [`StreamJoinStream::process`] of rows whose kinds are `retracts` (all alike in a
    /// regular join; `None`: every row adds).
    fn process_rows(
        &mut self,
        from: usize,
        batch: RecordBatch,
        retracts: Option<&[bool]>,
    ) -> Result<Option<RecordBatch>> {
        let width = if from == 0 {
            self.left_width
        } else {
            self.right_width
        };
        let retracted = |row: usize| retracts.and_then(|r| r.get(row)) == Some(&true);
        let taking_back = !self.static_left && retracted(0);
        let (left_kept, right_kept) = (self.left.kept.clone(), self.right.kept.clone());
        let mut left = lock(&left_kept);
        let mut right = lock(&right_kept);
        let rows = batch.num_rows();
        let (new_batch, candidates) = {
            let (this, other) = if from == 0 {
                (&mut *left, &mut *right)
            } else {
                (&mut *right, &mut *left)
            };
            let keys = this.key_rows(&batch)?;
            let times = this.times_of(&batch)?;
            let new_batch = this.batches.len();
            let mut pairs: Vec<Pair> = Vec::new();
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
            if taking_back {
                // The kept rows these take back stop matching; the batch is only held
                // while its pairs go out.
                for (row, key) in keys.iter().enumerate() {
                    if let Some(key) = key {
                        this.remove_equal(key, &batch, row, width)?;
                    }
                }
                this.add(batch, vec![None; rows], vec![REMOVED; rows], vec![0; rows]);
            } else {
                this.add(batch, keys, times, vec![0; rows]);
            }
            (new_batch, pairs)
        };
        let pairs = self.passing(&left, &right, candidates)?;
        // (left row, right row or NULLs, change kind), in output order.
        let mut out: Vec<Change> = Vec::with_capacity(pairs.len());
        if self.static_left && from == 0 {
            // A lookup join's static rows: kept; no stream row has come yet.
        } else if let Some(existence) = self.existence {
            // A semi or anti lookup join: the stream rows with (without) a match, once.
            let mut hit = vec![false; rows];
            for &(_, r) in &pairs {
                hit[r.1] = true;
            }
            let keep = existence == Existence::Semi;
            let passing: Vec<u32> = (0..rows as u32)
                .filter(|row| hit[*row as usize] == keep)
                .collect();
            let output = if passing.is_empty() {
                None
            } else {
                let rows =
                    take_record_batch(&right.batches[new_batch], &UInt32Array::from(passing))?;
                Some(RecordBatch::try_new(
                    self.schema.clone(),
                    rows.columns().to_vec(),
                )?)
            };
            right.clear();
            return Ok(output);
        } else if self.static_left {
            // A lookup join's stream rows: the static side is complete, so a row without a
            // match is final.
            let mut hit = vec![false; rows];
            for &(l, r) in &pairs {
                hit[r.1] = true;
                out.push((Some(l), Some(r), kind(retracted(r.1))));
            }
            if self.right_outer {
                out.extend(
                    (0..rows)
                        .filter(|row| !hit[*row])
                        .map(|row| (None, Some((new_batch, row)), kind(retracted(row)))),
                );
            }
        } else if !self.left_outer && !self.right_outer {
            let change = kind(taking_back);
            out.extend(pairs.into_iter().map(|(l, r)| (Some(l), Some(r), change)));
        } else {
            // An outer join of two streams: a row of a preserved side goes out padded with
            // NULLs while it has no match; its first match replaces that row (-U, +U), and
            // when a retraction takes its last match away, it comes back (-D, +I).
            let outer = [self.left_outer, self.right_outer];
            let mut hits = vec![0u32; rows];
            for (l, r) in pairs {
                let (mine, theirs) = if from == 0 { (l, r) } else { (r, l) };
                hits[mine.1] += 1;
                let other = if from == 0 { &mut *right } else { &mut *left };
                let matches = &mut other.matches[theirs.0][theirs.1];
                let theirs_padded = if from == 0 {
                    (None, Some(r))
                } else {
                    (Some(l), None)
                };
                if taking_back {
                    *matches = matches.saturating_sub(1);
                    out.push((Some(l), Some(r), "-D"));
                    if outer[1 - from] && *matches == 0 {
                        out.push((theirs_padded.0, theirs_padded.1, "+I"));
                    }
                } else {
                    *matches += 1;
                    if outer[1 - from] && *matches == 1 {
                        out.push((theirs_padded.0, theirs_padded.1, "-U"));
                        out.push((Some(l), Some(r), "+U"));
                    } else {
                        out.push((Some(l), Some(r), "+I"));
                    }
                }
            }
            let this = if from == 0 { &mut *left } else { &mut *right };
            for (row, hits) in hits.into_iter().enumerate() {
                this.matches[new_batch][row] = hits;
                if hits == 0 && outer[from] {
                    // A row taken back without matches had gone out padded.
                    let padded = Some((new_batch, row));
                    let change = kind(taking_back);
                    out.push(if from == 0 {
                        (padded, None, change)
                    } else {
                        (None, padded, change)
                    });
                }
            }
        }
        let output = self.output(&left, &right, &out);
        // A lookup join keeps no stream rows: no static row comes after them.
        if self.static_left && from == 1 {
            right.clear();
        }
        if taking_back {
            let this = if from == 0 { &mut *left } else { &mut *right };
            this.pop();
        }
        output
    }

    /// The output batch of `out`, or `None` when it is empty.
    fn output(&self, left: &Kept, right: &Kept, out: &[Change]) -> Result<Option<RecordBatch>> {
        if out.is_empty() {
            return Ok(None);
        }
        // NULLs come from one extra array after the kept batches.
        let left_refs: Vec<(usize, usize)> = out
            .iter()
            .map(|o| o.0.unwrap_or((left.batches.len(), 0)))
            .collect();
        let right_refs: Vec<(usize, usize)> = out
            .iter()
            .map(|o| o.1.unwrap_or((right.batches.len(), 0)))
            .collect();
        let mut columns = Vec::with_capacity(self.schema.fields().len());
        for c in 0..self.left_width {
            let data_type = self.schema.field(c).data_type();
            columns.push(gather_or_null(&left.batches, c, &left_refs, data_type)?);
        }
        for c in 0..self.right_width {
            let data_type = self.schema.field(self.left_width + c).data_type();
            columns.push(gather_or_null(&right.batches, c, &right_refs, data_type)?);
        }
        if self.emits_changes {
            columns.push(Arc::new(StringArray::from_iter_values(
                out.iter().map(|o| o.2),
            )));
        }
        Ok(Some(RecordBatch::try_new(self.schema.clone(), columns)?))
    }

    /// The candidate pairs that satisfy the join's whole condition (strict bounds, other
    /// terms).
    fn passing(&self, left: &Kept, right: &Kept, pairs: Vec<Pair>) -> Result<Vec<Pair>> {
        let Some(filter) = self.filter.as_ref().filter(|_| !pairs.is_empty()) else {
            return Ok(pairs);
        };
        let left_refs: Vec<(usize, usize)> = pairs.iter().map(|p| p.0).collect();
        let right_refs: Vec<(usize, usize)> = pairs.iter().map(|p| p.1).collect();
        let filter_columns = filter
            .column_indices()
            .iter()
            .map(|c| match c.side {
                JoinSide::Left => gather(&left.batches, c.index, &left_refs),
                _ => gather(&right.batches, c.index, &right_refs),
            })
            .collect::<Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(pairs.len()));
        let intermediate =
            RecordBatch::try_new_with_options(filter.schema().clone(), filter_columns, &options)?;
        let mask = filter
            .expression()
            .evaluate(&intermediate)?
            .into_array(pairs.len())?;
        let mask = mask.as_boolean();
        Ok(pairs
            .into_iter()
            .enumerate()
            .filter(|(i, _)| mask.is_valid(*i) && mask.value(*i))
            .map(|(_, p)| p)
            .collect())
    }

    /// Regular joins, before a batch is matched: drop rows older than the TTL.
    fn expire(&mut self) -> Result<()> {
        let Some(ttl) = self.ttl else {
            return Ok(());
        };
        let now = super::window_agg::now_nanos();
        if now >= self.next_expiry {
            // Rebuilding the index costs the whole state: at most ten times per TTL.
            self.next_expiry = now.saturating_add((ttl / 10).clamp(1_000_000, 1_000_000_000));
            let before = now.saturating_sub(ttl);
            for side in [&self.left, &self.right] {
                let mut kept = lock(&side.kept);
                if !kept.ended {
                    kept.evict(before)?;
                }
            }
        }
        Ok(())
    }

    /// Interval joins, after a batch: drop rows the other side's watermark has passed the
    /// interval of. Both: report the state's size.
    fn evict(&mut self) -> Result<()> {
        let mut left = lock(&self.left.kept);
        let mut right = lock(&self.right.kept);
        if self.ttl.is_none() {
            let (left_mark, right_mark) = (
                self.left.watermarks.current(),
                self.right.watermarks.current(),
            );
            if !self.right.watermarks.is_empty() && right_mark > WATERMARK_MIN {
                // A future right row r has r >= right watermark and needs r - l <= upper.
                left.evict(right_mark.saturating_sub(self.upper))?;
            }
            if !self.left.watermarks.is_empty() && left_mark > WATERMARK_MIN {
                // A future left row l has l >= left watermark and needs r - l >= lower.
                right.evict(left_mark.saturating_add(self.lower))?;
            }
        }
        let bytes = (left.size() + right.size()) as u64;
        drop((left, right));
        self.stats.state_bytes.store(bytes, Ordering::Relaxed);
        self.counters.report_state(&mut self.reported_state, bytes);
        Ok(())
    }
}

/// Like [`gather`], where `(batches.len(), 0)` stands for NULL.
fn gather_or_null(
    batches: &[RecordBatch],
    column: usize,
    refs: &[(usize, usize)],
    data_type: &DataType,
) -> Result<ArrayRef> {
    let null = new_null_array(data_type, 1);
    let mut arrays: Vec<&dyn Array> = batches.iter().map(|b| b.column(column).as_ref()).collect();
    arrays.push(null.as_ref());
    Ok(interleave(&arrays, refs)?)
}

impl Stream for StreamJoinStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.left.done && self.right.done {
                return Poll::Ready(None);
            }
            let first = self.next_first;
            self.next_first = 1 - first;
            let mut progressed = false;
            // A lookup join reads its static side whole before any stream row.
            let order: &[usize] = if self.static_left && !self.left.done {
                &[0]
            } else if first == 0 {
                &[0, 1]
            } else {
                &[1, 0]
            };
            for &from in order {
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
                        let out = self
                            .expire()
                            .and_then(|_| self.process(from, batch))
                            .and_then(|out| {
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
                        lock(&side.kept).ended = true;
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

/// A kept batch with each row's time and number of matches as two more columns, for
/// checkpoints.
fn with_row_state(batch: &RecordBatch, times: &[i64], matches: &[u32]) -> Result<RecordBatch> {
    let mut fields: Vec<Field> = batch
        .schema()
        .fields()
        .iter()
        .map(|f| f.as_ref().clone())
        .collect();
    fields.push(Field::new("__time", DataType::Int64, false));
    fields.push(Field::new("__matches", DataType::UInt32, false));
    let mut columns = batch.columns().to_vec();
    columns.push(Arc::new(Int64Array::from(times.to_vec())));
    columns.push(Arc::new(UInt32Array::from(matches.to_vec())));
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// The batch, times and numbers of matches [`with_row_state`] stored (checkpoints before
/// those counts kept a matched flag: one match or none).
fn without_row_state(mut batch: RecordBatch) -> Option<(RecordBatch, Vec<i64>, Vec<u32>)> {
    let width = batch.num_columns().checked_sub(2)?;
    let matches = batch.remove_column(width + 1);
    let times = batch.remove_column(width);
    let times = times.as_primitive_opt::<arrow::datatypes::Int64Type>()?;
    let matches: Vec<u32> = match matches.as_boolean_opt() {
        Some(flags) => (0..flags.len())
            .map(|i| u32::from(flags.value(i)))
            .collect(),
        None => matches
            .as_primitive_opt::<arrow::datatypes::UInt32Type>()?
            .values()
            .to_vec(),
    };
    Some((batch, times.values().to_vec(), matches))
}

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
                .zip(&kept.times)
                .zip(&kept.matches)
                .map(|((batch, times), matches)| encode(&with_row_state(batch, times, matches)?))
                .collect::<Result<Vec<_>>>()?;
            sides.push(serde_json::json!({
                "evicted_to": kept.evicted_to,
                "ended": kept.ended,
                "batches": batches,
            }));
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
            kept.ended = state["ended"].as_bool().unwrap_or(false);
            for batch in state["batches"].as_array().ok_or_else(bad)? {
                let batch = decode(batch.as_str().ok_or_else(bad)?)?;
                let (batch, times, matches) = without_row_state(batch).ok_or_else(bad)?;
                let keys = kept.key_rows(&batch)?;
                kept.add(batch, keys, times, matches);
            }
        }
        Ok(())
    }
}

impl RecordBatchStream for StreamJoinStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
