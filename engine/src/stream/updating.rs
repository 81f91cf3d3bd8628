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
use std::sync::Arc;
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

use super::aggregates::{AggregateSpec, key_converter, update_accumulators};
use super::streaming_properties;
use crate::metrics::Counters;

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
        Ok(Box::pin(UpdatingStream {
            stats,
            input: self.input.execute(partition, context)?,
            shared: self.shared.clone(),
            schema: self.schema.clone(),
            converter,
            index: HashMap::new(),
            groups: Vec::new(),
            free: Vec::new(),
            last_sweep: Instant::now(),
            reported_state: 0,
        }))
    }
}

struct Group {
    key: Box<[u8]>,
    accumulators: Vec<Box<dyn Accumulator>>,
    last_update: Instant,
}

struct UpdatingStream {
    /// This operator's own counters.
    stats: Arc<crate::metrics::OperatorStats>,
    input: SendableRecordBatchStream,
    shared: Arc<UpdatingAggregate>,
    schema: SchemaRef,
    /// Key columns ↔ bytes; `None` without keys (one group).
    converter: Option<RowConverter>,
    /// Key bytes → slot in `groups`.
    index: HashMap<Box<[u8]>, usize>,
    groups: Vec<Option<Group>>,
    /// Slots of expired groups, reused.
    free: Vec<usize>,
    last_sweep: Instant,
    /// State bytes last added to the job's counter.
    reported_state: u64,
}

/// One output row: a group's key and values, and the change kind.
struct Change {
    group: usize,
    op: &'static str,
    values: Vec<ScalarValue>,
}

impl UpdatingStream {
    fn slot_for(&mut self, key: &[u8], now: Instant) -> Result<(usize, bool)> {
        if let Some(&slot) = self.index.get(key) {
            return Ok((slot, false));
        }
        let group = Group {
            key: key.into(),
            accumulators: self.shared.spec.accumulators()?,
            last_update: now,
        };
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
        self.index.insert(key.into(), slot);
        Ok((slot, true))
    }

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
                    self.slot_for(row.as_ref(), now)?
                }
                None => self.slot_for(&[], now)?,
            };
            slots.push(slot as u32);
            if seen.insert(slot) {
                let before = match (&mut self.groups[slot], new) {
                    (Some(group), false) => Some(Self::evaluate(group)?),
                    _ => None,
                };
                touched.push((slot, before));
            }
        }
        // Rows of each group together, then one update per group.
        let mut order: Vec<u32> = (0..inputs.rows as u32).collect();
        order.sort_unstable_by_key(|&i| slots[i as usize]);
        let sorted = inputs.take(&UInt32Array::from(order.clone()))?;
        let mut first = 0;
        while first < order.len() {
            let slot = slots[order[first] as usize];
            let mut end = first + 1;
            while end < order.len() && slots[order[end] as usize] == slot {
                end += 1;
            }
            let part = sorted.slice(first, end - first)?;
            if let Some(group) = self.groups[slot as usize].as_mut() {
                group.last_update = now;
                update_accumulators(&mut group.accumulators, &part)?;
            }
            first = end;
        }
        let mut changes = Vec::with_capacity(touched.len() * 2);
        for (slot, before) in touched {
            let Some(group) = self.groups[slot].as_mut() else {
                continue;
            };
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
        let mut expired = self.expire(now)?;
        changes.append(&mut expired.0);
        let batch = self.changes_batch(&changes, &expired.1)?;
        for slot in expired.2 {
            self.groups[slot] = None;
            self.free.push(slot);
        }
        let bytes: usize = self
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
        for (slot, entry) in self.groups.iter_mut().enumerate() {
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
            self.index.remove(&group.key);
            keys.insert(slot, group.key.clone());
            slots.push(slot);
        }
        Ok((changes, keys, slots))
    }

    fn changes_batch(
        &self,
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
                    let key: &[u8] = match (&self.groups[c.group], expired_keys.get(&c.group)) {
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
                other => return other,
            }
        }
    }
}

impl RecordBatchStream for UpdatingStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
