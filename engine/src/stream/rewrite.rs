//! Swapping DataFusion's aggregate for Laminar's window aggregate where it groups by a
//! window function.

use std::sync::Arc;

use arrow::datatypes::{Fields, Schema};
use datafusion::common::plan_err;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::physical_expr::expressions::Literal;
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;

use super::aggregates::AggregateSpec;
use super::functions::{WindowFunction, interval_nanos, is_proctime};
use super::per_window::PerWindowAggregateExec;
use super::per_window_plan::PerWindowPlanExec;
use datafusion::physical_plan::streaming::StreamingTableExec;

use super::stream_join::StreamJoinExec;
use super::updating::{OP_COLUMN, UpdatingAggregate, UpdatingAggregateExec, is_changelog};
use super::window::{WindowSpec, human};
use super::window_agg::{WindowAggregate, WindowAggregateExec};
use super::window_join::WindowJoinExec;
use super::window_origin::expr_origin;
use crate::error::EngineError;
use crate::exec::sink::{changes_sink, sink_table_name};
use crate::metrics::Counters;
use datafusion::common::JoinType;
use datafusion::datasource::sink::DataSinkExec;
use datafusion::error::DataFusionError;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::joins::{HashJoinExec, SymmetricHashJoinExec};
use datafusion::physical_plan::projection::ProjectionExec;

/// The window function call a group expression is, if it is one.
fn window_call(expr: &Arc<dyn PhysicalExpr>) -> Option<(WindowFunction, &[Arc<dyn PhysicalExpr>])> {
    let call = expr.as_any().downcast_ref::<ScalarFunctionExpr>()?;
    let function = WindowFunction::from_name(call.fun().name())?;
    Some((function, call.args()))
}

fn window_spec(function: WindowFunction, args: &[Arc<dyn PhysicalExpr>]) -> Result<WindowSpec> {
    let intervals = args[..function.interval_args().min(args.len())]
        .iter()
        .map(|arg| match arg.as_any().downcast_ref::<Literal>() {
            Some(literal) => interval_nanos(function, literal.value()),
            None => plan_err!(
                "{}() needs constant INTERVAL arguments, got {arg}",
                function.name()
            ),
        })
        .collect::<Result<Vec<_>>>()?;
    match (function, intervals.as_slice()) {
        (WindowFunction::Tumble, [width]) => Ok(WindowSpec::Tumble { width: *width }),
        (WindowFunction::Hop, [slide, width]) => {
            if slide > width || width % slide != 0 {
                return plan_err!(
                    "hop(slide, width) needs a width that is a whole multiple of the slide; got slide {} and width {}",
                    human(*slide),
                    human(*width)
                );
            }
            Ok(WindowSpec::Hop {
                slide: *slide,
                width: *width,
            })
        }
        (WindowFunction::Session, [gap]) => Ok(WindowSpec::Session { gap: *gap }),
        _ => plan_err!("wrong number of arguments to {}()", function.name()),
    }
}

/// Whether rows can wait inside `plan` between its sources and its root: the shared
/// source watermark is only exact when they flow straight through.
fn buffers_rows(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let mut found = false;
    let _ = plan.apply(|node| {
        let any = node.as_any();
        if any.is::<RepartitionExec>() || any.is::<CoalescePartitionsExec>() || any.is::<SortExec>()
        {
            found = true;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// Settings the streaming operators take from the statement.
pub struct StreamingContext<'a> {
    /// Source tables with a watermark (for EXPLAIN).
    pub watermark_tables: &'a [String],
    pub counters: &'a Arc<Counters>,
    pub updating_ttl: std::time::Duration,
}

/// Replace DataFusion's aggregates over streams with Laminar's: a window aggregate where
/// the `GROUP BY` has a window, an updating aggregate where it has none and the input is
/// unbounded; then carry the updating aggregate's `_op` column up to the root.
pub fn use_streaming_aggregates(
    plan: Arc<dyn ExecutionPlan>,
    ctx: &StreamingContext<'_>,
) -> Result<Arc<dyn ExecutionPlan>> {
    let plan = keep_change_kinds(plan)?;
    let plan = plan
        .transform_up(|node| {
            if let Some(join) = WindowJoinExec::try_from_join(&node) {
                return Ok(Transformed::yes(Arc::new(join) as Arc<dyn ExecutionPlan>));
            }
            if let Some(join) = StreamJoinExec::replace_join(&node, ctx.counters, ctx.updating_ttl)?
            {
                return Ok(Transformed::yes(join));
            }
            if let Some(per_window) = PerWindowPlanExec::try_from_plan(&node) {
                return Ok(Transformed::yes(
                    Arc::new(per_window) as Arc<dyn ExecutionPlan>
                ));
            }
            refuse_unbounded_outer_join(&node)?;
            let Some(aggregate) = node.as_any().downcast_ref::<AggregateExec>() else {
                return Ok(Transformed::no(node));
            };
            let replaced = match window_aggregate(aggregate, ctx)? {
                Some(replaced) => Some(replaced),
                None => match per_window_aggregate(aggregate)? {
                    Some(replaced) => Some(replaced),
                    None => updating_aggregate(aggregate, ctx)?,
                },
            };
            Ok(match replaced {
                Some(replaced) => Transformed::yes(replaced),
                None => Transformed::no(node),
            })
        })?
        .data;
    propagate_changes(plan)
}

/// Scans of a source of changes keep its `_op` column (last) even when the query does not
/// name it, so every operator above sees what kind of change each row is.
fn keep_change_kinds(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let Some(scan) = node.as_any().downcast_ref::<StreamingTableExec>() else {
            return Ok(Transformed::no(node));
        };
        let source = scan.partition_schema();
        let Some(projection) = scan.projection() else {
            return Ok(Transformed::no(node));
        };
        let op = source.fields().len().saturating_sub(1);
        if !is_changelog(source) || projection.contains(&op) {
            return Ok(Transformed::no(node));
        }
        let mut columns = projection.to_vec();
        columns.push(op);
        let rescan = StreamingTableExec::try_new(
            source.clone(),
            scan.partitions().clone(),
            Some(&columns),
            scan.projected_output_ordering(),
            scan.is_infinite(),
            scan.limit(),
        )?;
        Ok(Transformed::yes(Arc::new(rescan) as Arc<dyn ExecutionPlan>))
    })
    .map(|t| t.data)
}

/// An outer or anti join of two unbounded streams would only emit its unmatched rows at the
/// end of input — never, on a stream — so it is refused rather than quietly acting as an
/// inner join. (Window joins, which do emit them per window, are replaced before this.)
fn refuse_unbounded_outer_join(node: &Arc<dyn ExecutionPlan>) -> Result<()> {
    let join_type = if let Some(shj) = node.as_any().downcast_ref::<SymmetricHashJoinExec>() {
        *shj.join_type()
    } else if let Some(hash) = node.as_any().downcast_ref::<HashJoinExec>() {
        *hash.join_type()
    } else {
        return Ok(());
    };
    let both_unbounded = node
        .children()
        .iter()
        .all(|c| c.properties().boundedness.is_unbounded());
    if both_unbounded
        && !matches!(
            join_type,
            JoinType::Inner | JoinType::LeftSemi | JoinType::RightSemi
        )
    {
        return Err(unsupported(format!(
            "a {} join of two unbounded streams is not supported yet: its unmatched rows would only be known at the end of the streams; \
             use an inner join, join the streams' windows (GROUP BY a window on both sides and join on it), or join a stream with a bounded table",
            join_type.to_string().to_uppercase()
        )));
    }
    Ok(())
}

/// Whether `plan` emits changes: of an updating aggregate, an outer join or a source of
/// changes, through projections and filters, which pass them on (`_op` is only added to
/// those later).
fn emits_changes(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let any = plan.as_any();
    if is_changelog(&plan.schema())
        || any.is::<UpdatingAggregateExec>()
        || (any.is::<StreamJoinExec>() && is_changelog(&plan.schema()))
    {
        return true;
    }
    if any.is::<ProjectionExec>()
        || any.is::<crate::exec::filter::StreamingFilterExec>()
        || any.is::<SortExec>()
        || any.is::<datafusion::physical_plan::limit::GlobalLimitExec>()
    {
        return plan.children().first().is_some_and(|c| emits_changes(c));
    }
    false
}

/// The aggregate's input, without the sort DataFusion puts under aggregates with ORDER BY
/// arguments (`array_agg(x ORDER BY y)`): a stream cannot be sorted, and the accumulators
/// order their own values, since they are given the ordering columns too.
fn unsorted_input(aggregate: &AggregateExec) -> Arc<dyn ExecutionPlan> {
    let input = aggregate.input();
    let unsorted = |plan: &Arc<dyn ExecutionPlan>| match plan.as_any().downcast_ref::<SortExec>() {
        Some(sort) if sort.fetch().is_none() => Some(sort.input().clone()),
        _ => None,
    };
    if let Some(below) = unsorted(input) {
        return below;
    }
    // With parallel sources the sort is per partition, under the merge.
    if let Some(merge) = input
        .as_any()
        .downcast_ref::<super::exchange::ExchangeExec>()
        && merge.is_merge()
        && let Some(below) = unsorted(merge.input())
    {
        return Arc::new(super::exchange::ExchangeExec::merge(below));
    }
    input.clone()
}

fn single_mode_input(aggregate: &AggregateExec, what: &str) -> Result<Arc<dyn ExecutionPlan>> {
    let input = unsorted_input(aggregate);
    if emits_changes(&input) && what != UPDATING {
        return Err(unsupported(format!(
            "{what} over the changes of an updating aggregate (a GROUP BY without a window) are not supported yet"
        )));
    }
    if aggregate.group_expr().has_grouping_set() {
        return Err(unsupported(format!(
            "GROUPING SETS, CUBE and ROLLUP are not supported in {what}"
        )));
    }
    if !matches!(
        aggregate.mode(),
        AggregateMode::Single | AggregateMode::SinglePartitioned
    ) || buffers_rows(&input)
    {
        return Err(unsupported(format!(
            "{what} run with parallelism 1 for now; SET parallelism = 1"
        )));
    }
    Ok(input)
}

/// The key columns' schema: the aggregate's group output fields other than `skip`.
fn key_spec(aggregate: &AggregateExec, skip: Option<usize>) -> Result<AggregateSpec> {
    let group_by = aggregate.group_expr();
    let schema = aggregate.schema();
    let keep = |i: &usize| Some(*i) != skip;
    let keys: Vec<Arc<dyn PhysicalExpr>> = (0..group_by.expr().len())
        .filter(keep)
        .map(|i| group_by.expr()[i].0.clone())
        .collect();
    let key_fields: Fields = (0..group_by.expr().len())
        .filter(keep)
        .map(|i| schema.fields()[i].clone())
        .collect();
    AggregateSpec::new(
        keys,
        Arc::new(Schema::new(key_fields)),
        aggregate.aggr_expr().to_vec(),
        aggregate.filter_expr().to_vec(),
    )
}

/// An aggregate grouped by the window of a windowed input: aggregated window by window.
fn per_window_aggregate(aggregate: &AggregateExec) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let input = unsorted_input(aggregate);
    let Some(window_key) = aggregate
        .group_expr()
        .expr()
        .iter()
        .enumerate()
        .find_map(|(i, (e, _))| expr_origin(&input, e).map(|part| (i, part)))
    else {
        return Ok(None);
    };
    let input = single_mode_input(aggregate, "aggregates over windows")?;
    Ok(Some(Arc::new(PerWindowAggregateExec::new(
        input,
        Arc::new(key_spec(aggregate, None)?),
        window_key,
        aggregate.schema(),
    ))))
}

/// What [`single_mode_input`] calls updating aggregates (which may read changes).
const UPDATING: &str = "updating aggregates";

fn updating_aggregate(
    aggregate: &AggregateExec,
    ctx: &StreamingContext<'_>,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let input = aggregate.input();
    // Over changes (an updating aggregate, an outer join, a debezium_json source), even a
    // bounded input's rows may be taken back: the aggregate must follow them.
    let over_changes = emits_changes(input) || is_changelog(&input.schema());
    if !input.properties().boundedness.is_unbounded() && !over_changes {
        return Ok(None);
    }
    let mut spec = key_spec(aggregate, None)?;
    let mut input = single_mode_input(aggregate, UPDATING)?;
    if over_changes {
        spec = spec.retracting().map_err(|function| {
            unsupported(format!(
                "an aggregate over changes (of an updating aggregate, an outer join or a debezium_json source) must take rows back as they are retracted; \
                 count, sum, avg, min and max can, {function} cannot yet"
            ))
        })?;
        // The change kinds reach the aggregate through the operators in between.
        input = propagate_changes(input)?;
    }
    let shared = UpdatingAggregate {
        spec,
        result_schema: aggregate.schema(),
        ttl: ctx.updating_ttl,
        counters: ctx.counters.clone(),
    };
    Ok(Some(Arc::new(UpdatingAggregateExec::new(
        input,
        Arc::new(shared),
    ))))
}

fn unsupported(message: impl Into<String>) -> DataFusionError {
    DataFusionError::External(Box::new(EngineError::Unsupported(message.into())))
}

/// Pass `_op` through projections; refuse operators and sinks that cannot take changes.
fn propagate_changes(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let from_changes = node
            .children()
            .iter()
            .any(|child| is_changelog(&child.schema()));
        if !from_changes {
            return Ok(Transformed::no(node));
        }
        // A join checks that it can take its inputs' retractions (even one that emitted
        // changes already, as an outer join).
        if let Some(join) = node.as_any().downcast_ref::<StreamJoinExec>() {
            return Ok(Transformed::yes(Arc::new(join.over_changes()?)));
        }
        if is_changelog(&node.schema()) {
            return Ok(Transformed::no(node));
        }
        if let Some(projection) = node.as_any().downcast_ref::<ProjectionExec>() {
            let input = projection.input().clone();
            let op_index = input.schema().fields().len() - 1;
            let mut exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = projection
                .expr()
                .iter()
                .map(|e| (e.expr.clone(), e.alias.clone()))
                .collect();
            exprs.push((Arc::new(Column::new(OP_COLUMN, op_index)), OP_COLUMN.into()));
            return Ok(Transformed::yes(Arc::new(ProjectionExec::try_new(
                exprs, input,
            )?)));
        }
        if let Some(sink) = node.as_any().downcast_ref::<DataSinkExec>() {
            if let Some(changes) = changes_sink(sink.sink()) {
                return Ok(Transformed::yes(Arc::new(DataSinkExec::new(
                    sink.input().clone(),
                    changes,
                    None,
                ))));
            }
            let table = sink_table_name(sink.sink()).unwrap_or_else(|| "the sink".into());
            return Err(unsupported(format!(
                "sink table '{table}' cannot take updates: a GROUP BY without a window produces changes (-U/+U rows) as its results change; \
                 group by a window (tumble, hop or session) to write each result once, or write the changes with format = 'debezium_json' (a kafka sink with 'sink.key_field' writes them as upserts)"
            )));
        }
        let what = match node.name() {
            "AggregateExec" => "an aggregate",
            "HashJoinExec" | "SymmetricHashJoinExec" | "NestedLoopJoinExec" => "this join",
            "SortExec" => "ORDER BY",
            "WindowAggregateExec" => "a window aggregate",
            other => other,
        };
        Err(unsupported(format!(
            "{what} over changes (of an updating aggregate or a debezium_json source) is not supported yet"
        )))
    })
    .map(|t| t.data)
}

/// A window aggregate for `aggregate`, if it groups by a window.
fn window_aggregate(
    aggregate: &AggregateExec,
    ctx: &StreamingContext<'_>,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let group_by = aggregate.group_expr();
    let Some(window_index) = group_by
        .expr()
        .iter()
        .position(|(e, _)| window_call(e).is_some())
    else {
        return Ok(None);
    };
    if group_by
        .expr()
        .iter()
        .filter(|(e, _)| window_call(e).is_some())
        .count()
        > 1
    {
        return plan_err!("a GROUP BY can have one window function");
    }
    let input = single_mode_input(aggregate, "windowed aggregates")?;
    let Some((function, args)) = window_call(&group_by.expr()[window_index].0) else {
        return Ok(None);
    };
    let window = window_spec(function, args)?;
    // `proctime()` as the time column asks for processing time.
    let time = args
        .get(function.interval_args())
        .filter(|t| !is_proctime(t))
        .cloned();
    let shared = WindowAggregate {
        window,
        window_index,
        time,
        spec: key_spec(aggregate, Some(window_index))?,
        watermark_tables: ctx.watermark_tables.to_vec(),
        schema: aggregate.schema(),
        counters: ctx.counters.clone(),
        partial: false,
    };
    Ok(Some(Arc::new(WindowAggregateExec::new(
        input,
        Arc::new(shared),
    ))))
}
