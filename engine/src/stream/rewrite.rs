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
use super::functions::{WindowFunction, interval_nanos};
use super::watermark::Watermarks;
use super::window::{WindowSpec, human};
use super::window_agg::{WindowAggregate, WindowAggregateExec};
use crate::metrics::Counters;

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

/// Replace each aggregate grouped by a window with a [`WindowAggregateExec`].
pub fn use_window_aggregates(
    plan: Arc<dyn ExecutionPlan>,
    watermarks: &Watermarks,
    counters: &Arc<Counters>,
) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        let Some(aggregate) = node.as_any().downcast_ref::<AggregateExec>() else {
            return Ok(Transformed::no(node));
        };
        let group_by = aggregate.group_expr();
        let Some(window_index) = group_by
            .expr()
            .iter()
            .position(|(e, _)| window_call(e).is_some())
        else {
            return Ok(Transformed::no(node));
        };
        if group_by.has_grouping_set() {
            return plan_err!("GROUPING SETS, CUBE and ROLLUP are not supported with windows");
        }
        if group_by
            .expr()
            .iter()
            .filter(|(e, _)| window_call(e).is_some())
            .count()
            > 1
        {
            return plan_err!("a GROUP BY can have one window function");
        }
        // DataFusion sorts the input of aggregates with ORDER BY arguments (array_agg(x
        // ORDER BY y)); a stream cannot be sorted, and the accumulators order their own
        // values, since they are given the ordering columns too.
        let input = match aggregate.input().as_any().downcast_ref::<SortExec>() {
            Some(sort) if sort.fetch().is_none() => sort.input().clone(),
            _ => aggregate.input().clone(),
        };
        let Some((function, args)) = window_call(&group_by.expr()[window_index].0) else {
            return Ok(Transformed::no(node));
        };
        if !matches!(
            aggregate.mode(),
            AggregateMode::Single | AggregateMode::SinglePartitioned
        ) || buffers_rows(&input)
        {
            return plan_err!(
                "windowed aggregates run with parallelism 1 for now; SET parallelism = 1"
            );
        }
        let window = window_spec(function, args)?;
        let time = args.get(function.interval_args()).cloned();
        let schema = aggregate.schema();
        let keys: Vec<Arc<dyn PhysicalExpr>> = group_by
            .expr()
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != window_index)
            .map(|(_, (e, _))| e.clone())
            .collect();
        let key_fields: Fields = (0..group_by.expr().len())
            .filter(|i| *i != window_index)
            .map(|i| schema.fields()[i].clone())
            .collect();
        let spec = AggregateSpec::new(
            keys,
            Arc::new(Schema::new(key_fields)),
            aggregate.aggr_expr().to_vec(),
            aggregate.filter_expr().to_vec(),
        )?;
        let shared = WindowAggregate {
            window,
            window_index,
            time,
            spec,
            watermarks: watermarks.clone(),
            schema,
            counters: counters.clone(),
        };
        Ok(Transformed::yes(Arc::new(WindowAggregateExec::new(
            input,
            Arc::new(shared),
        ))))
    })
    .map(|t| t.data)
}
