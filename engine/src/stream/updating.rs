//! Updating aggregates: `GROUP BY` without a window over an unbounded stream.
//!
//! Each input batch updates the groups it touches, and the operator emits what changed as
//! a changelog: `+I` for a new group, `-U` (the old row) and `+U` (the new row) for a group
//! whose result changed, `-D` when a group expires after the state TTL. The change kind is
//! an extra last column, `_op`; operators above pass it through and a sink that cannot
//! take changes refuses the query when it is planned.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, RecordBatch, StringArray, UInt32Array};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::row::RowConverter;
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Accumulator;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, RecordBatchStream,
    SendableRecordBatchStream,
};
use futures::{Stream, StreamExt};

use super::aggregates::{
    AggregateSpec, accumulators_from_state, key_converter, retract_accumulators, state_columns,
    update_accumulators,
};
use super::streaming_properties;
use crate::checkpoint::arrow_state::{columns_batch, decode, encode};
use crate::checkpoint::{CheckpointHub, OperatorSnapshot};
use crate::metrics::Counters;

/// Which rows of a batch of changes (at `indices`) take a row back: `-U` and `-D`.
fn retracted_rows(
    batch: &RecordBatch,
    indices: &UInt32Array,
) -> Result<arrow::array::BooleanArray> {
    use arrow::array::AsArray;
    let ops = batch.column(batch.num_columns() - 1).as_string::<i32>();
    let back: arrow::array::BooleanArray = indices
        .values()
        .iter()
        .map(|&i| Some(matches!(ops.value(i as usize), "-U" | "-D")))
        .collect();
    Ok(back)
}

/// The changelog column's name.
pub const OP_COLUMN: &str = connectors::format::CHANGE_COLUMN;

/// Whether a schema carries a changelog (its last column is `_op`).
pub fn is_changelog(schema: &Schema) -> bool {
    schema
        .fields()
        .last()
        .is_some_and(|f| f.name() == OP_COLUMN && f.data_type() == &DataType::Utf8)
}

/// `schema` with the `_op` column appended.
pub fn with_op_column(schema: &Schema) -> SchemaRef {
    let mut fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
    fields.push(Arc::new(Field::new(OP_COLUMN, DataType::Utf8, false)));
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

#[derive(Debug)]
pub struct UpdatingAggregate {
    pub spec: AggregateSpec,
    /// The aggregate's own output (keys, then aggregates), without `_op`.
    pub result_schema: SchemaRef,
    pub ttl: Duration,
    pub counters: Arc<Counters>,
}

/// The plan node.
#[derive(Debug)]
pub struct UpdatingAggregateExec {
    input: Arc<dyn ExecutionPlan>,
    shared: Arc<UpdatingAggregate>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl UpdatingAggregateExec {
    /// The `GROUP BY` keys: rows of one key meet in one partition.
    pub fn keys(&self) -> &[Arc<dyn datafusion::physical_expr::PhysicalExpr>] {
        &self.shared.spec.keys
    }

    pub fn new(input: Arc<dyn ExecutionPlan>, shared: Arc<UpdatingAggregate>) -> Self {
        let schema = with_op_column(&shared.result_schema);
        let properties = streaming_properties(schema.clone(), &input);
        UpdatingAggregateExec {
            input,
            shared,
            schema,
            properties,
        }
    }
}

impl DisplayAs for UpdatingAggregateExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.shared;
        let keys: Vec<String> = s.spec.keys.iter().map(|k| k.to_string()).collect();
        let functions: Vec<&str> = s.spec.functions.iter().map(|a| a.name()).collect();
        write!(
            f,
            "UpdatingAggregateExec: keys [{}], aggregates [{}], emits changes (_op), state: accumulators per group, ttl {}",
            keys.join(", "),
            functions.join(", "),
            super::window::human(i64::try_from(s.ttl.as_nanos()).unwrap_or(i64::MAX))
        )
    }
}

impl ExecutionPlan for UpdatingAggregateExec {
    fn name(&self) -> &str {
        "UpdatingAggregateExec"
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
        Ok(Arc::new(UpdatingAggregateExec::new(
            children.swap_remove(0),
            self.shared.clone(),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let converter = key_converter(&self.shared.spec.key_schema)?;
        let stats = self.shared.counters.register_operator(self);
        let table = Arc::new(Mutex::new(Groups::default()));
        // In a pipeline that takes checkpoints: resume with the checkpointed groups, and
        // hand them over at every checkpoint.
        if let Some(hub) = context.session_config().get_extension::<CheckpointHub>() {
            let snapshots = Arc::new(GroupSnapshots {
                table: table.clone(),
                shared: self.shared.clone(),
            });
            if let Some(saved) = hub.register_operator(self.name(), snapshots.clone()) {
                snapshots.restore(&saved)?;
            }
        }
        Ok(Box::pin(UpdatingStream {
            stats,
            input: self.input.execute(partition, context)?,
            shared: self.shared.clone(),
            schema: self.schema.clone(),
            converter,
            table,
            last_sweep: Instant::now(),
            expiry_timer: None,
            reported_state: 0,
        }))
    }
}

struct Group {
    key: Box<[u8]>,
    accumulators: Vec<Box<dyn Accumulator>>,
    last_update: Instant,
    /// Rows added minus rows taken back (over changes, a group without rows is deleted).
    rows: i64,
}

/// Every group: what a checkpoint captures (shared with [`GroupSnapshots`]).
#[derive(Default)]
struct Groups {
    /// Key bytes → slot in `groups`.
    index: HashMap<Box<[u8]>, usize>,
    groups: Vec<Option<Group>>,
    /// Slots of expired groups, reused.
    free: Vec<usize>,
}

fn lock(table: &Mutex<Groups>) -> MutexGuard<'_, Groups> {
    table.lock().unwrap_or_else(|p| p.into_inner())
}

struct UpdatingStream {
    /// This operator's own counters.
    stats: Arc<crate::metrics::OperatorStats>,
    input: SendableRecordBatchStream,
    shared: Arc<UpdatingAggregate>,
    schema: SchemaRef,
    /// Key columns ↔ bytes; `None` without keys (one group).
    converter: Option<RowConverter>,
    table: Arc<Mutex<Groups>>,
    last_sweep: Instant,
    /// Wakes the stream to expire groups while no rows arrive.
    expiry_timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// State bytes last added to the job's counter.
    reported_state: u64,
}

/// One output row: a group's key and values, and the change kind.
struct Change {
    group: usize,
    op: &'static str,
    values: Vec<ScalarValue>,
}

impl Groups {
    fn slot_for(
        &mut self,
        spec: &AggregateSpec,
        key: &[u8],
        now: Instant,
    ) -> Result<(usize, bool)> {
        if let Some(&slot) = self.index.get(key) {
            return Ok((slot, false));
        }
        let group = Group {
            key: key.into(),
            accumulators: spec.accumulators()?,
            last_update: now,
            rows: 0,
        };
        Ok((self.insert(group), true))
    }

    fn insert(&mut self, group: Group) -> usize {
        let key = group.key.clone();
        let slot = match self.free.pop() {
            Some(slot) => {
                self.groups[slot] = Some(group);
                slot
            }
            None => {
                self.groups.push(Some(group));
                self.groups.len() - 1
            }
        };
        self.index.insert(key, slot);
        slot
    }
}

impl UpdatingStream {
    fn evaluate(group: &mut Group) -> Result<Vec<ScalarValue>> {
        group
            .accumulators
            .iter_mut()
            .map(|a| a.evaluate())
            .collect()
    }

    fn process(&mut self, batch: &RecordBatch) -> Result<Option<RecordBatch>> {
        if batch.num_rows() == 0 {
            return Ok(None);
        }
        let now = Instant::now();
        let shared = self.shared.clone();
        let table = self.table.clone();
        let mut table = lock(&table);
        let inputs = shared.spec.evaluate(batch)?;
        let rows = match &self.converter {
            Some(converter) => Some(converter.convert_columns(&inputs.keys)?),
            None => None,
        };
        // Group id per row, and which groups are new in this batch.
        let mut slots = Vec::with_capacity(inputs.rows);
        let mut touched: Vec<(usize, Option<Vec<ScalarValue>>)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for i in 0..inputs.rows {
            let (slot, new) = match &rows {
                Some(rows) => {
                    let row = rows.row(i);
                    table.slot_for(&shared.spec, row.as_ref(), now)?
                }
                None => table.slot_for(&shared.spec, &[], now)?,
            };
            slots.push(slot as u32);
            if seen.insert(slot) {
                let before = match (&mut table.groups[slot], new) {
                    (Some(group), false) => Some(Self::evaluate(group)?),
                    _ => None,
                };
                touched.push((slot, before));
            }
        }
        // Rows of each group together, then one update per group.
        let mut order: Vec<u32> = (0..inputs.rows as u32).collect();
        order.sort_unstable_by_key(|&i| slots[i as usize]);
        let indices = UInt32Array::from(order.clone());
        let sorted = inputs.take(&indices)?;
        // Over changes: which rows are taken back (`-U`, `-D`), in the same order.
        let retracted = match shared.spec.retracting {
            true => Some(retracted_rows(batch, &indices)?),
            false => None,
        };
        let mut first = 0;
        while first < order.len() {
            let slot = slots[order[first] as usize];
            let mut end = first + 1;
            while end < order.len() && slots[order[end] as usize] == slot {
                end += 1;
            }
            let part = sorted.slice(first, end - first)?;
            if let Some(group) = table.groups[slot as usize].as_mut() {
                group.last_update = now;
                match &retracted {
                    None => {
                        update_accumulators(&mut group.accumulators, &part)?;
                        group.rows += part.rows as i64;
                    }
                    Some(retracted) => {
                        let back = retracted.slice(first, end - first);
                        let added = arrow::compute::not(&back)?;
                        let (added, back) = (part.filter_rows(&added)?, part.filter_rows(&back)?);
                        update_accumulators(&mut group.accumulators, &added)?;
                        retract_accumulators(&mut group.accumulators, &back)?;
                        group.rows += added.rows as i64 - back.rows as i64;
                    }
                }
            }
            first = end;
        }
        let mut changes: Vec<Change> = Vec::with_capacity(touched.len() * 2);
        // Over changes: groups whose every row was taken back.
        let mut emptied = Vec::new();
        for (slot, before) in touched {
            let Some(group) = table.groups[slot].as_mut() else {
                continue;
            };
            if shared.spec.retracting && group.rows <= 0 {
                if let Some(before) = before {
                    changes.push(Change {
                        group: slot,
                        op: "-D",
                        values: before,
                    });
                }
                emptied.push(slot);
                continue;
            }
            let after = Self::evaluate(group)?;
            match before {
                None => changes.push(Change {
                    group: slot,
                    op: "+I",
                    values: after,
                }),
                Some(before) if before != after => {
                    changes.push(Change {
                        group: slot,
                        op: "-U",
                        values: before,
                    });
                    changes.push(Change {
                        group: slot,
                        op: "+U",
                        values: after,
                    });
                }
                Some(_) => {}
            }
        }
        self.emit(&mut table, changes, emptied, now)
    }

    /// Expire what the TTL allows while no rows arrive.
    fn expire_idle(&mut self) -> Result<Option<RecordBatch>> {
        let table = self.table.clone();
        let mut table = lock(&table);
        self.emit(&mut table, Vec::new(), Vec::new(), Instant::now())
    }

    /// `changes` plus the expired groups' deletions, as a batch; drop the `emptied` and
    /// expired groups; account for the state.
    fn emit(
        &mut self,
        table: &mut Groups,
        mut changes: Vec<Change>,
        emptied: Vec<usize>,
        now: Instant,
    ) -> Result<Option<RecordBatch>> {
        let shared = self.shared.clone();
        let mut expired = self.expire(table, now)?;
        for slot in emptied {
            if let Some(group) = &table.groups[slot] {
                table.index.remove(&group.key);
                expired.1.insert(slot, group.key.clone());
                expired.2.push(slot);
            }
        }
        changes.append(&mut expired.0);
        let batch = self.changes_batch(table, &changes, &expired.1)?;
        for slot in expired.2 {
            table.groups[slot] = None;
            table.free.push(slot);
        }
        let bytes: usize = table
            .groups
            .iter()
            .flatten()
            .map(|g| g.key.len() + g.accumulators.iter().map(|a| a.size()).sum::<usize>())
            .sum();
        shared
            .counters
            .report_state(&mut self.reported_state, bytes as u64);
        self.stats
            .state_bytes
            .store(bytes as u64, std::sync::atomic::Ordering::Relaxed);
        if let Some(out) = &batch {
            self.stats
                .records_out
                .fetch_add(out.num_rows() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(batch)
    }

    /// Groups not updated within the TTL: their `-D` rows, keys, and slots to free.
    #[allow(clippy::type_complexity)]
    fn expire(
        &mut self,
        table: &mut Groups,
        now: Instant,
    ) -> Result<(Vec<Change>, HashMap<usize, Box<[u8]>>, Vec<usize>)> {
        let ttl = self.shared.ttl;
        let mut changes = Vec::new();
        let mut keys = HashMap::new();
        let mut slots = Vec::new();
        // A sweep costs a pass over every group: at most once per second.
        if now.duration_since(self.last_sweep) < Duration::from_secs(1).min(ttl) {
            return Ok((changes, keys, slots));
        }
        self.last_sweep = now;
        let Groups { index, groups, .. } = table;
        for (slot, entry) in groups.iter_mut().enumerate() {
            let Some(group) = entry.as_mut() else {
                continue;
            };
            if now.duration_since(group.last_update) < ttl {
                continue;
            }
            changes.push(Change {
                group: slot,
                op: "-D",
                values: Self::evaluate(group)?,
            });
            index.remove(&group.key);
            keys.insert(slot, group.key.clone());
            slots.push(slot);
        }
        Ok((changes, keys, slots))
    }

    fn changes_batch(
        &self,
        table: &Groups,
        changes: &[Change],
        expired_keys: &HashMap<usize, Box<[u8]>>,
    ) -> Result<Option<RecordBatch>> {
        if changes.is_empty() {
            return Ok(None);
        }
        let mut columns: Vec<ArrayRef> = match &self.converter {
            Some(converter) => {
                let parser = converter.parser();
                let key_rows = changes.iter().map(|c| {
                    let key: &[u8] = match (&table.groups[c.group], expired_keys.get(&c.group)) {
                        (_, Some(key)) => key,
                        (Some(group), None) => &group.key,
                        (None, None) => &[],
                    };
                    parser.parse(key)
                });
                converter.convert_rows(key_rows)?
            }
            None => Vec::new(),
        };
        let functions = self.shared.spec.functions.len();
        for i in 0..functions {
            columns.push(ScalarValue::iter_to_array(
                changes.iter().map(|c| c.values[i].clone()),
            )?);
        }
        columns.push(Arc::new(StringArray::from_iter_values(
            changes.iter().map(|c| c.op),
        )));
        Ok(Some(RecordBatch::try_new(self.schema.clone(), columns)?))
    }
}

impl Stream for UpdatingStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match self.input.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(batch))) => match self.process(&batch) {
                    Ok(Some(out)) => return Poll::Ready(Some(Ok(out))),
                    Ok(None) => continue,
                    Err(e) => return Poll::Ready(Some(Err(e))),
                },
                Poll::Pending => {}
                other => return other,
            }
            // No rows: groups still expire (a partition may get none for a long time).
            let ttl = self.shared.ttl;
            if lock(&self.table).index.is_empty() || ttl.is_zero() {
                self.expiry_timer = None;
                return Poll::Pending;
            }
            let period = Duration::from_secs(1).min(ttl);
            let timer = self
                .expiry_timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(period)));
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.expiry_timer = None;
            match self.expire_idle() {
                Ok(Some(out)) => return Poll::Ready(Some(Ok(out))),
                Ok(None) => continue,
                Err(e) => return Poll::Ready(Some(Err(e))),
            }
        }
    }
}

/// Hands every group (key, accumulator state, age) to checkpoints.
struct GroupSnapshots {
    table: Arc<Mutex<Groups>>,
    shared: Arc<UpdatingAggregate>,
}

impl OperatorSnapshot for GroupSnapshots {
    fn snapshot(&self) -> crate::error::Result<serde_json::Value> {
        let mut table = lock(&self.table);
        let spec = &self.shared.spec;
        let now = Instant::now();
        let live: Vec<&mut Group> = table.groups.iter_mut().flatten().collect();
        let rows = live.len();
        let mut keys = Vec::with_capacity(rows);
        let mut ages = Vec::with_capacity(rows);
        let mut counts = Vec::with_capacity(rows);
        let mut states: Vec<Vec<Vec<ScalarValue>>> = vec![Vec::new(); spec.functions.len()];
        for group in live {
            keys.push(group.key.clone());
            ages.push(now.duration_since(group.last_update).as_millis() as u64);
            counts.push(group.rows);
            for (i, acc) in group.accumulators.iter_mut().enumerate() {
                states[i].push(acc.state()?);
            }
        }
        let mut columns: Vec<ArrayRef> = match key_converter(&spec.key_schema)? {
            Some(converter) => {
                let parser = converter.parser();
                converter.convert_rows(keys.iter().map(|k| parser.parse(k)))?
            }
            None => Vec::new(),
        };
        let (states, layout) = state_columns(spec, &states)?;
        columns.extend(states);
        columns.push(Arc::new(arrow::array::UInt64Array::from(ages)));
        Ok(serde_json::json!({
            "layout": layout,
            "groups": encode(&columns_batch(columns, rows)?)?,
            "rows": counts,
        }))
    }
}

impl GroupSnapshots {
    fn restore(&self, saved: &serde_json::Value) -> Result<()> {
        let bad = || {
            datafusion::error::DataFusionError::Internal(format!(
                "checkpointed group state is unreadable: {saved}"
            ))
        };
        let layout: Vec<usize> =
            serde_json::from_value(saved["layout"].clone()).map_err(|_| bad())?;
        let batch = decode(saved["groups"].as_str().ok_or_else(bad)?)?;
        let spec = &self.shared.spec;
        let key_count = spec.key_schema.fields().len();
        let columns = batch.columns();
        if columns.len() != key_count + layout.iter().sum::<usize>() + 1 {
            return Err(bad());
        }
        let keys = match key_converter(&spec.key_schema)? {
            Some(converter) => Some(converter.convert_columns(&columns[..key_count])?),
            None => None,
        };
        let ages = columns[columns.len() - 1]
            .as_any()
            .downcast_ref::<arrow::array::UInt64Array>()
            .ok_or_else(bad)?;
        let now = Instant::now();
        let mut table = lock(&self.table);
        for row in 0..batch.num_rows() {
            let accumulators = accumulators_from_state(spec, columns, key_count, &layout, row)?;
            let key: Box<[u8]> = match &keys {
                Some(rows) => rows.row(row).as_ref().into(),
                None => Box::new([]),
            };
            let age = Duration::from_millis(ages.value(row));
            table.insert(Group {
                key,
                accumulators,
                last_update: now.checked_sub(age).unwrap_or(now),
                // (Checkpoints before row counts: a kept group had rows.)
                rows: saved["rows"][row].as_i64().unwrap_or(1),
            });
        }
        Ok(())
    }
}

impl RecordBatchStream for UpdatingStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
