//! Parallel plans: where rows change partitions.
//!
//! DataFusion plans a streaming query with one target partition: sources run in
//! `parallelism` partitions, and it merges them (`CoalescePartitionsExec`) wherever an
//! operator needs every row in one place. Laminar then
//! 1. turns those merges into [`ExchangeExec`]s, which carry watermarks and checkpoint
//!    barriers with the rows ([`exchanges_for_merges`]);
//! 2. once its streaming operators are in, runs each keyed one in `parallelism` partitions
//!    behind a hash exchange on its keys, and merges again wherever the plan needs one
//!    partition ([`spread_keyed_operators`]).
//!
//! Operators that take a window's rows as one batch (aggregates over windows, top-N, window
//! joins) run in one partition; a keyed window aggregate feeding them runs in `parallelism`
//! partitions, and a [`WindowAssemblyExec`] above their merge puts each window back together
//! by watermark. A window aggregate without keys runs as partial aggregates in each
//! partition, merged per window the same way. Updating aggregates without keys keep one
//! partition, and so does what feeds them.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::limit::GlobalLimitExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{
    Distribution, ExecutionPlan, ExecutionPlanProperties, Partitioning,
};

use super::exchange::ExchangeExec;
use super::per_window::PerWindowAggregateExec;
use super::per_window_plan::PerWindowPlanExec;
use super::stream_join::StreamJoinExec;
use super::updating::UpdatingAggregateExec;
use super::window_agg::WindowAggregateExec;
use super::window_assembly::WindowAssemblyExec;
use super::window_join::WindowJoinExec;
use super::window_origin::expr_window_column;

/// Step 1: DataFusion's merges and hash repartitions become exchanges, and its two-phase
/// aggregates (partial per partition, final after a merge) one aggregate after the
/// exchange: a streaming aggregate keeps its groups in one place.
pub fn exchanges_for_merges(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        if let Some(single) = single_phase(&node)? {
            return Ok(Transformed::yes(single));
        }
        if let Some(merge) = node.as_any().downcast_ref::<CoalescePartitionsExec>() {
            // A merge of one partition is no merge: no task and channel for it.
            let exchange: Arc<dyn ExecutionPlan> = if partitions(merge.input()) == 1 {
                merge.input().clone()
            } else {
                Arc::new(ExchangeExec::merge(merge.input().clone()))
            };
            return Ok(Transformed::yes(match merge.fetch() {
                Some(fetch) => Arc::new(GlobalLimitExec::new(exchange, 0, Some(fetch))),
                None => exchange,
            }));
        }
        if let Some(repartition) = node.as_any().downcast_ref::<RepartitionExec>()
            && let Partitioning::Hash(keys, partitions) = repartition.partitioning()
            && !repartition.preserve_order()
        {
            return Ok(Transformed::yes(Arc::new(ExchangeExec::hash(
                repartition.input().clone(),
                keys.clone(),
                *partitions,
            ))));
        }
        Ok(Transformed::no(node))
    })
    .map(|t| t.data)
}

/// `final(merge(partial(input)))` as `single(exchange(input))`.
fn single_phase(node: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(last) = node.as_any().downcast_ref::<AggregateExec>() else {
        return Ok(None);
    };
    if !matches!(
        last.mode(),
        AggregateMode::Final | AggregateMode::FinalPartitioned
    ) {
        return Ok(None);
    }
    let between = last.input();
    let any = between.as_any();
    // (Merges below have already become exchanges.)
    let Some(below) = any.downcast_ref::<ExchangeExec>().map(|e| e.input()) else {
        return Ok(None);
    };
    let Some(partial) = below.as_any().downcast_ref::<AggregateExec>() else {
        return Ok(None);
    };
    if *partial.mode() != AggregateMode::Partial {
        return Ok(None);
    }
    let single = AggregateExec::try_new(
        AggregateMode::Single,
        partial.group_expr().clone(),
        partial.aggr_expr().to_vec(),
        partial.filter_expr().to_vec(),
        Arc::new(ExchangeExec::merge(partial.input().clone())),
        partial.input_schema(),
    )?
    .with_limit_options(last.limit_options());
    Ok(Some(Arc::new(single)))
}

/// Step 2: keyed operators in `parallelism` partitions, merges where one is needed.
pub fn spread_keyed_operators(
    plan: Arc<dyn ExecutionPlan>,
    parallelism: usize,
) -> Result<Arc<dyn ExecutionPlan>> {
    if parallelism <= 1 {
        return Ok(plan);
    }
    let plan = spread(plan, parallelism, true)?;
    Ok(merged(plan))
}

fn partitions(plan: &Arc<dyn ExecutionPlan>) -> usize {
    plan.output_partitioning().partition_count()
}

/// `plan` in one partition.
fn merged(plan: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
    if partitions(&plan) > 1 {
        Arc::new(ExchangeExec::merge(plan))
    } else {
        plan
    }
}

/// `plan` without the exchange on top of it, if it has one (it is partitioned anew).
fn unexchanged(plan: &Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
    match plan.as_any().downcast_ref::<ExchangeExec>() {
        Some(exchange) => exchange.input().clone(),
        None => plan.clone(),
    }
}

/// Hash keys an input's rows are partitioned by; `None`: all rows in one partition.
type InputNeed = Option<Vec<Arc<dyn PhysicalExpr>>>;

/// What each input of a stateful operator needs. Not a stateful operator of Laminar's: `None`.
fn input_needs(plan: &Arc<dyn ExecutionPlan>) -> Option<Vec<InputNeed>> {
    let any = plan.as_any();
    let keyed = |keys: &[Arc<dyn PhysicalExpr>]| (!keys.is_empty()).then(|| keys.to_vec());
    if let Some(window) = any.downcast_ref::<WindowAggregateExec>() {
        // A partial aggregate runs wherever its input is.
        if window.is_partial() {
            return None;
        }
        return Some(vec![keyed(window.keys())]);
    }
    if let Some(updating) = any.downcast_ref::<UpdatingAggregateExec>() {
        return Some(vec![keyed(updating.keys())]);
    }
    if let Some(join) = any.downcast_ref::<StreamJoinExec>() {
        let [left, right] = join.side_keys();
        if join.reads_static_left() {
            return None;
        }
        return Some(vec![keyed(&left), keyed(&right)]);
    }
    None
}

/// Per input of an operator that takes whole windows: the window, as an expression over
/// that input. Not such an operator: `None`.
fn window_inputs(plan: &Arc<dyn ExecutionPlan>) -> Option<Vec<Arc<dyn PhysicalExpr>>> {
    let any = plan.as_any();
    if let Some(per_window) = any.downcast_ref::<PerWindowAggregateExec>() {
        return Some(vec![per_window.window_expr()]);
    }
    if let Some(per_window) = any.downcast_ref::<PerWindowPlanExec>() {
        return Some(vec![per_window.window_expr().clone()]);
    }
    if let Some(join) = any.downcast_ref::<WindowJoinExec>() {
        let inputs = join.children();
        return Some(
            join.window_keys()
                .iter()
                .zip(inputs)
                .map(|((index, _), input)| {
                    let name = input.schema().field(*index).name().clone();
                    Arc::new(Column::new(&name, *index)) as Arc<dyn PhysicalExpr>
                })
                .collect(),
        );
    }
    None
}

/// An input of an operator that takes whole windows: spread where its window comes straight
/// from a keyed window aggregate, then merged and assembled into whole windows again.
fn spread_windows(
    input: &Arc<dyn ExecutionPlan>,
    window: &Arc<dyn PhysicalExpr>,
    parallelism: usize,
    may_spread: bool,
) -> Result<Arc<dyn ExecutionPlan>> {
    // A merge DataFusion put here is redone below if it is needed.
    let input = unexchanged(input);
    let column = expr_window_column(&input, window);
    // A window that comes through another operator taking whole windows comes from one
    // partition (that operator's); what feeds that operator may still spread.
    let may_spread = may_spread && column.is_some();
    let spread_input = spread(input.clone(), parallelism, may_spread)?;
    if partitions(&spread_input) == 1 {
        return Ok(spread_input);
    }
    match column.filter(|c| c.direct) {
        Some(column) => Ok(Arc::new(WindowAssemblyExec::new(
            Arc::new(ExchangeExec::merge(spread_input)),
            window.clone(),
            column,
        ))),
        None => Ok(merged(spread(input, parallelism, false)?)),
    }
}

/// A window aggregate without keys as partial aggregates in each partition of its input,
/// merged per window (the merge's input is assembled into whole windows by [`spread`]).
fn split_keyless_window(plan: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(window) = plan.as_any().downcast_ref::<WindowAggregateExec>() else {
        return Ok(None);
    };
    let Some(input) = plan.children().first().map(|c| unexchanged(c)) else {
        return Ok(None);
    };
    let Some(split) = window.partial(input)? else {
        return Ok(None);
    };
    Ok(Some(Arc::new(PerWindowAggregateExec::merging(
        split.partial,
        Arc::new(split.merging),
        split.layout,
        plan.schema(),
    ))))
}

fn spread(
    plan: Arc<dyn ExecutionPlan>,
    parallelism: usize,
    may_spread: bool,
) -> Result<Arc<dyn ExecutionPlan>> {
    if may_spread && let Some(split) = split_keyless_window(&plan)? {
        return spread(split, parallelism, may_spread);
    }
    if let Some(windows) = window_inputs(&plan) {
        let children = plan
            .children()
            .into_iter()
            .zip(&windows)
            .map(|(input, window)| spread_windows(input, window, parallelism, may_spread))
            .collect::<Result<Vec<_>>>()?;
        return plan.with_new_children(children);
    }
    let needs = input_needs(&plan);
    // Below an operator that keeps one partition, everything feeding it does too (a window
    // must reach it whole, not as one part per partition).
    let keeps_one = needs
        .as_ref()
        .is_some_and(|n| n.iter().any(|keys| keys.is_none()));
    let children = plan
        .children()
        .into_iter()
        .map(|c| spread(c.clone(), parallelism, may_spread && !keeps_one))
        .collect::<Result<Vec<_>>>()?;
    let required = plan.required_input_distribution();
    let children: Vec<Arc<dyn ExecutionPlan>> = children
        .into_iter()
        .enumerate()
        .map(|(i, child)| match needs.as_ref().map(|n| &n[i]) {
            Some(Some(keys)) if may_spread && !keeps_one => Arc::new(ExchangeExec::hash(
                unexchanged(&child),
                keys.clone(),
                parallelism,
            ))
                as Arc<dyn ExecutionPlan>,
            Some(_) => merged(child),
            None if matches!(required.get(i), Some(Distribution::SinglePartition)) => merged(child),
            None => child,
        })
        .collect();
    let changed = plan
        .children()
        .iter()
        .zip(&children)
        .any(|(old, new)| !Arc::ptr_eq(old, new));
    if changed {
        plan.with_new_children(children)
    } else {
        Ok(plan)
    }
}
