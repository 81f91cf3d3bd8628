//! The aggregate functions of a streaming aggregate: DataFusion's own accumulators, fed
//! with the argument columns evaluated once per input batch.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, UInt32Array};
use arrow::compute::{filter, take};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, SortField};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::{Accumulator, EmitTo, GroupsAccumulator};
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::{GroupsAccumulatorAdapter, PhysicalExpr};
use datafusion::physical_plan::aggregates::group_values::{GroupValues, new_group_values};
use datafusion::physical_plan::aggregates::order::GroupOrdering;
use datafusion::physical_plan::aggregates::{AggregateMode, aggregate_expressions};

use super::min_max_over_changes::MinMaxOverChanges;

/// What a streaming aggregate computes, besides its window.
#[derive(Debug, Clone)]
pub struct AggregateSpec {
    /// `GROUP BY` expressions other than the window.
    pub keys: Vec<Arc<dyn PhysicalExpr>>,
    /// The key columns' output schema.
    pub key_schema: SchemaRef,
    pub functions: Vec<Arc<AggregateFunctionExpr>>,
    /// Argument expressions per function (ordering expressions appended, as DataFusion does).
    pub args: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    /// `FILTER (WHERE ...)` per function.
    pub filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    /// Input rows may be taken back (an aggregate over changes): accumulators that can
    /// retract.
    pub retracting: bool,
}

/// Aggregate functions whose result can take back any row, in any order: DataFusion's own,
/// and `min`/`max` as multisets ([`MinMaxOverChanges`]; DataFusion's retract only their
/// oldest rows, as sliding windows do).
const RETRACTABLE: &[&str] = &["count", "sum", "avg", "min", "max"];

impl AggregateSpec {
    pub fn new(
        keys: Vec<Arc<dyn PhysicalExpr>>,
        key_schema: SchemaRef,
        functions: Vec<Arc<AggregateFunctionExpr>>,
        filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    ) -> Result<Self> {
        let args = aggregate_expressions(&functions, &AggregateMode::Single, 0)?;
        Ok(AggregateSpec {
            keys,
            key_schema,
            functions,
            args,
            filters,
            retracting: false,
        })
    }

    /// The same aggregate over changes: retracted rows (`-U`, `-D`) are taken back. Refused
    /// (naming the function) unless every function can take rows back.
    pub fn retracting(mut self) -> std::result::Result<Self, String> {
        for f in &self.functions {
            let name = f.fun().name();
            if f.is_distinct() {
                return Err(format!("{name}(DISTINCT ...)"));
            }
            if !RETRACTABLE.contains(&name) {
                return Err(format!("{name}()"));
            }
        }
        self.retracting = true;
        Ok(self)
    }

    /// Evaluate keys, arguments and filters over a batch.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<Inputs> {
        let rows = batch.num_rows();
        let eval = |e: &Arc<dyn PhysicalExpr>| e.evaluate(batch)?.into_array(rows);
        Ok(Inputs {
            keys: self.keys.iter().map(eval).collect::<Result<_>>()?,
            args: self
                .args
                .iter()
                .map(|args| args.iter().map(eval).collect::<Result<_>>())
                .collect::<Result<_>>()?,
            filters: self
                .filters
                .iter()
                .map(|f| f.as_ref().map(eval).transpose())
                .collect::<Result<_>>()?,
            rows,
        })
    }

    /// Accumulators for many groups at once (one set per window).
    pub fn groups_accumulators(&self) -> Result<Vec<Box<dyn GroupsAccumulator>>> {
        self.functions
            .iter()
            .map(|f| {
                if f.groups_accumulator_supported() {
                    f.create_groups_accumulator()
                } else {
                    let f = f.clone();
                    Ok(Box::new(GroupsAccumulatorAdapter::new(move || {
                        f.create_accumulator()
                    })) as Box<dyn GroupsAccumulator>)
                }
            })
            .collect()
    }

    /// Accumulators for one group (sessions, which merge; updating aggregates).
    pub fn accumulators(&self) -> Result<Vec<Box<dyn Accumulator>>> {
        self.functions
            .iter()
            .map(|f| {
                if !self.retracting {
                    return f.create_accumulator();
                }
                match f.fun().name() {
                    name @ ("min" | "max") => Ok(Box::new(MinMaxOverChanges::new(
                        f.field().data_type().clone(),
                        name == "max",
                    )) as Box<dyn Accumulator>),
                    _ => f.create_sliding_accumulator(),
                }
            })
            .collect()
    }

    /// The fields of every aggregate's intermediate state, in order, with how many each
    /// aggregate has.
    pub fn state_fields(&self) -> Result<(Vec<arrow::datatypes::FieldRef>, Vec<usize>)> {
        let mut fields = Vec::new();
        let mut layout = Vec::with_capacity(self.functions.len());
        for function in &self.functions {
            let mine = function.state_fields()?;
            layout.push(mine.len());
            fields.extend(mine);
        }
        Ok((fields, layout))
    }

    /// A hash table from key values to dense group ids, or `None` without keys.
    pub fn group_values(&self) -> Result<Option<Box<dyn GroupValues>>> {
        if self.keys.is_empty() {
            return Ok(None);
        }
        new_group_values(self.key_schema.clone(), &GroupOrdering::None).map(Some)
    }
}

/// One batch's evaluated keys, arguments and filters.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub keys: Vec<ArrayRef>,
    pub args: Vec<Vec<ArrayRef>>,
    pub filters: Vec<Option<ArrayRef>>,
    pub rows: usize,
}

impl Inputs {
    fn map(&self, f: impl Fn(&ArrayRef) -> Result<ArrayRef>, rows: usize) -> Result<Inputs> {
        Ok(Inputs {
            keys: self.keys.iter().map(&f).collect::<Result<_>>()?,
            args: self
                .args
                .iter()
                .map(|a| a.iter().map(&f).collect::<Result<_>>())
                .collect::<Result<_>>()?,
            filters: self
                .filters
                .iter()
                .map(|x| x.as_ref().map(&f).transpose())
                .collect::<Result<_>>()?,
            rows,
        })
    }

    /// The rows at `indices`.
    pub fn take(&self, indices: &UInt32Array) -> Result<Inputs> {
        self.map(|a| Ok(take(a.as_ref(), indices, None)?), indices.len())
    }

    /// Rows `offset..offset + len` (no copy).
    pub fn slice(&self, offset: usize, len: usize) -> Result<Inputs> {
        self.map(|a| Ok(a.slice(offset, len)), len)
    }

    /// The rows where `mask` is true.
    pub fn filter_rows(&self, mask: &BooleanArray) -> Result<Inputs> {
        let rows = mask.true_count();
        self.map(|a| Ok(filter(a.as_ref(), mask)?), rows)
    }

    pub fn filter(&self, function: usize) -> Option<&BooleanArray> {
        self.filters.get(function)?.as_ref().map(|f| f.as_boolean())
    }
}

/// The groups of one window: key values → group ids, and the accumulators' state.
pub struct GroupedState {
    groups: Option<Box<dyn GroupValues>>,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    num_groups: usize,
    group_ids: Vec<usize>,
}

impl GroupedState {
    pub fn new(spec: &AggregateSpec) -> Result<Self> {
        Ok(GroupedState {
            groups: spec.group_values()?,
            accumulators: spec.groups_accumulators()?,
            num_groups: 0,
            group_ids: Vec::new(),
        })
    }

    pub fn update(&mut self, inputs: &Inputs) -> Result<()> {
        match self.groups.as_mut() {
            Some(groups) => {
                groups.intern(&inputs.keys, &mut self.group_ids)?;
                self.num_groups = groups.len();
            }
            None => {
                self.group_ids.clear();
                self.group_ids.resize(inputs.rows, 0);
                self.num_groups = 1;
            }
        }
        for (i, acc) in self.accumulators.iter_mut().enumerate() {
            acc.update_batch(
                &inputs.args[i],
                &self.group_ids,
                inputs.filter(i),
                self.num_groups,
            )?;
        }
        Ok(())
    }

    pub fn num_groups(&self) -> usize {
        self.num_groups
    }

    /// Key columns and aggregate results of every group, consuming the state.
    pub fn emit(mut self) -> Result<(Vec<ArrayRef>, Vec<ArrayRef>)> {
        let keys = match self.groups.as_mut() {
            Some(groups) => groups.emit(EmitTo::All)?,
            None => Vec::new(),
        };
        let values = self
            .accumulators
            .iter_mut()
            .map(|acc| acc.evaluate(EmitTo::All))
            .collect::<Result<_>>()?;
        Ok((keys, values))
    }

    /// Key columns and the accumulators' intermediate states of every group (each
    /// aggregate's [`AggregateSpec::state_fields`], in order), consuming the state: partial
    /// aggregates that [`GroupedState::restore`] merges.
    pub fn emit_states(mut self) -> Result<(Vec<ArrayRef>, Vec<ArrayRef>)> {
        let keys = match self.groups.as_mut() {
            Some(groups) => groups.emit(EmitTo::All)?,
            None => Vec::new(),
        };
        let mut states = Vec::new();
        for acc in &mut self.accumulators {
            states.extend(acc.state(EmitTo::All)?);
        }
        Ok((keys, states))
    }

    /// The keys and the accumulators' intermediate state of every group, as columns
    /// (keys first), with how many state columns each aggregate has. Taking state from
    /// DataFusion's accumulators empties them, so they are rebuilt from it at once.
    pub fn snapshot(&mut self, spec: &AggregateSpec) -> Result<(RecordBatch, Vec<usize>)> {
        let rows = self.num_groups;
        let keys = match self.groups.as_mut() {
            Some(groups) => groups.emit(EmitTo::All)?,
            None => Vec::new(),
        };
        let states = self
            .accumulators
            .iter_mut()
            .map(|acc| acc.state(EmitTo::All))
            .collect::<Result<Vec<_>>>()?;
        *self = GroupedState::restore(spec, &keys, &states, rows)?;
        let layout = states.iter().map(Vec::len).collect();
        let columns = keys
            .into_iter()
            .chain(states.into_iter().flatten())
            .collect();
        Ok((
            crate::checkpoint::arrow_state::columns_batch(columns, rows)?,
            layout,
        ))
    }

    /// Groups with the given keys and intermediate states (see [`GroupedState::snapshot`]).
    pub fn restore(
        spec: &AggregateSpec,
        keys: &[ArrayRef],
        states: &[Vec<ArrayRef>],
        rows: usize,
    ) -> Result<Self> {
        let mut state = GroupedState::new(spec)?;
        match state.groups.as_mut() {
            Some(groups) => {
                groups.intern(keys, &mut state.group_ids)?;
                state.num_groups = groups.len();
            }
            None => {
                state.group_ids = vec![0; rows];
                state.num_groups = rows.min(1);
            }
        }
        for (acc, columns) in state.accumulators.iter_mut().zip(states) {
            acc.merge_batch(columns, &state.group_ids, None, state.num_groups)?;
        }
        Ok(state)
    }

    /// Rebuild from a snapshot batch and its layout.
    pub fn from_snapshot(
        spec: &AggregateSpec,
        batch: &RecordBatch,
        layout: &[usize],
    ) -> Result<Self> {
        let key_count = spec.key_schema.fields().len();
        let columns = batch.columns();
        let mut next = key_count;
        let mut states = Vec::with_capacity(layout.len());
        for width in layout {
            let end = next + width;
            let Some(part) = columns.get(next..end) else {
                return datafusion::common::internal_err!(
                    "checkpointed aggregate state has {} columns, expected more",
                    columns.len()
                );
            };
            states.push(part.to_vec());
            next = end;
        }
        GroupedState::restore(
            spec,
            &columns[..key_count.min(columns.len())],
            &states,
            batch.num_rows(),
        )
    }

    /// Bytes held.
    pub fn size(&self) -> usize {
        self.groups.as_ref().map_or(0, |g| g.size())
            + self.accumulators.iter().map(|a| a.size()).sum::<usize>()
            + self.group_ids.capacity() * std::mem::size_of::<usize>()
    }
}

/// Accumulator states of many groups — `states[aggregate][group]` as `Accumulator::state`
/// gives it — as columns (for checkpoints), with how many columns each aggregate has.
pub fn state_columns(
    spec: &AggregateSpec,
    states: &[Vec<Vec<ScalarValue>>],
) -> Result<(Vec<ArrayRef>, Vec<usize>)> {
    let mut columns = Vec::new();
    let mut layout = Vec::with_capacity(spec.functions.len());
    for (i, function) in spec.functions.iter().enumerate() {
        let fields = function.state_fields()?;
        // The accumulators' own state may be wider than the function's state fields (the
        // sliding ones of aggregates over changes keep a row count too).
        let width = states[i].first().map_or(fields.len(), Vec::len);
        layout.push(width);
        for column in 0..width {
            columns.push(if states[i].is_empty() {
                // No groups: an empty column (iter_to_array needs a value for its type).
                arrow::array::new_empty_array(fields[column].data_type())
            } else {
                ScalarValue::iter_to_array(states[i].iter().map(|state| state[column].clone()))?
            });
        }
    }
    Ok((columns, layout))
}

/// Fresh accumulators holding the state of `row` in the columns [`state_columns`] made,
/// which start at `first`.
pub fn accumulators_from_state(
    spec: &AggregateSpec,
    columns: &[ArrayRef],
    first: usize,
    layout: &[usize],
    row: usize,
) -> Result<Vec<Box<dyn Accumulator>>> {
    let mut accumulators = spec.accumulators()?;
    let mut next = first;
    for (acc, width) in accumulators.iter_mut().zip(layout) {
        let state: Vec<ArrayRef> = columns[next..next + width]
            .iter()
            .map(|c| c.slice(row, 1))
            .collect();
        acc.merge_batch(&state)?;
        next += width;
    }
    Ok(accumulators)
}

/// Key columns ↔ comparable row bytes; `None` without key columns (one group).
pub fn key_converter(key_schema: &SchemaRef) -> Result<Option<RowConverter>> {
    if key_schema.fields().is_empty() {
        return Ok(None);
    }
    let fields = key_schema
        .fields()
        .iter()
        .map(|f| SortField::new(f.data_type().clone()))
        .collect();
    Ok(Some(RowConverter::new(fields)?))
}

/// Feed rows to one group's accumulators, each aggregate's `FILTER (WHERE ...)` applied.
pub fn update_accumulators(accumulators: &mut [Box<dyn Accumulator>], part: &Inputs) -> Result<()> {
    feed(accumulators, part, |acc, args| acc.update_batch(args))
}

/// Take rows back from one group's accumulators (see [`AggregateSpec::retracting`]).
pub fn retract_accumulators(
    accumulators: &mut [Box<dyn Accumulator>],
    part: &Inputs,
) -> Result<()> {
    feed(accumulators, part, |acc, args| acc.retract_batch(args))
}

fn feed(
    accumulators: &mut [Box<dyn Accumulator>],
    part: &Inputs,
    apply: impl Fn(&mut Box<dyn Accumulator>, &[ArrayRef]) -> Result<()>,
) -> Result<()> {
    for (i, acc) in accumulators.iter_mut().enumerate() {
        match part.filter(i) {
            Some(mask) => {
                let args = part.args[i]
                    .iter()
                    .map(|a| Ok(filter(a, mask)?))
                    .collect::<Result<Vec<_>>>()?;
                apply(acc, &args)?;
            }
            None => apply(acc, &part.args[i])?,
        }
    }
    Ok(())
}
