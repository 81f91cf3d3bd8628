//! Binding window functions to the event time column of the rows they group.
//!
//! `tumble(INTERVAL '1' MINUTE)` names no column: the window is over event time, which is
//! the column a table declares with `WATERMARK FOR` (or `event_time_field`). Before
//! optimisation the planner follows that column from the table through views, projections
//! and filters up to the aggregate, and passes it to the window function as its last
//! argument. A table without an event time is windowed by processing time.

use std::collections::HashMap;

use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::{Aggregate, Expr, LogicalPlan};

use super::functions::{WindowFunction, is_window_udf};

/// Table name → its event time column.
pub type EventTimes = HashMap<String, String>;

/// The output column of `plan` that carries its input's event time, if any.
pub fn event_time_column(plan: &LogicalPlan, tables: &EventTimes) -> Option<String> {
    match plan {
        LogicalPlan::TableScan(scan) => {
            let field = match scan.source.get_logical_plan() {
                Some(view) => event_time_column(&view, tables)?,
                None => tables.get(scan.table_name.table())?.clone(),
            };
            scan.projected_schema
                .has_column_with_unqualified_name(&field)
                .then_some(field)
        }
        LogicalPlan::Projection(projection) => {
            let field = event_time_column(&projection.input, tables)?;
            projection
                .expr
                .iter()
                .position(|e| matches!(strip_alias(e), Expr::Column(c) if c.name == field))
                .map(|i| projection.schema.field(i).name().clone())
        }
        LogicalPlan::Filter(_)
        | LogicalPlan::SubqueryAlias(_)
        | LogicalPlan::Limit(_)
        | LogicalPlan::Sort(_)
        | LogicalPlan::Repartition(_)
        | LogicalPlan::Union(_) => event_time_column(plan.inputs().first()?, tables),
        _ => None,
    }
}

fn strip_alias(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(alias) => strip_alias(&alias.expr),
        other => other,
    }
}

/// Base tables `plan` reads that declare an event time.
fn tables_with_event_time(plan: &LogicalPlan, tables: &EventTimes, out: &mut Vec<String>) {
    let _ = plan.apply(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            match scan.source.get_logical_plan() {
                Some(view) => tables_with_event_time(&view, tables, out),
                None => {
                    let name = scan.table_name.table();
                    if tables.contains_key(name) && !out.iter().any(|t| t == name) {
                        out.push(name.to_string());
                    }
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
}

/// Window functions belong in `GROUP BY` only: say so at planning time rather than when
/// the marker would be evaluated.
pub fn check_window_placement(plan: &LogicalPlan) -> crate::error::Result<()> {
    let mut misplaced = None;
    let _ = plan.apply_with_subqueries(|node| {
        let exprs: Vec<Expr> = match node {
            LogicalPlan::Aggregate(aggregate) => aggregate.aggr_expr.clone(),
            other => other.expressions(),
        };
        for expr in &exprs {
            let _ = expr.apply(|e| {
                if let Expr::ScalarFunction(call) = e
                    && let Some(function) = is_window_udf(&call.func)
                {
                    misplaced = Some(function);
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            });
        }
        Ok(if misplaced.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    match misplaced {
        Some(function) => Err(crate::error::EngineError::Grouping(format!(
            "{name}() defines a window and can only be used in GROUP BY, e.g. SELECT {name}(...) AS window, count(*) FROM t GROUP BY window",
            name = function.name()
        ))),
        None => Ok(()),
    }
}

/// Give every window function in a `GROUP BY` its time column.
pub fn bind_window_time(plan: LogicalPlan, tables: &EventTimes) -> Result<LogicalPlan> {
    plan.transform_up_with_subqueries(|node| {
        let LogicalPlan::Aggregate(aggregate) = &node else {
            return Ok(Transformed::no(node));
        };
        let mut changed = false;
        let mut group_expr = Vec::with_capacity(aggregate.group_expr.len());
        for expr in &aggregate.group_expr {
            match bind_one(expr, aggregate, tables)? {
                Some(bound) => {
                    changed = true;
                    group_expr.push(bound);
                }
                None => group_expr.push(expr.clone()),
            }
        }
        if !changed {
            return Ok(Transformed::no(node));
        }
        let rebuilt = Aggregate::try_new(
            aggregate.input.clone(),
            group_expr,
            aggregate.aggr_expr.clone(),
        )?;
        Ok(Transformed::yes(LogicalPlan::Aggregate(rebuilt)))
    })
    .map(|t| t.data)
}

/// The window call with its time column added, aliased to its old name so the plan above
/// still finds it; `None` when `expr` is not a window call missing its time column.
fn bind_one(expr: &Expr, aggregate: &Aggregate, tables: &EventTimes) -> Result<Option<Expr>> {
    let Expr::ScalarFunction(call) = strip_alias(expr) else {
        return Ok(None);
    };
    let Some(function) = is_window_udf(&call.func) else {
        return Ok(None);
    };
    if call.args.len() != function.interval_args() {
        return Ok(None);
    }
    let Some(field) = event_time_column(&aggregate.input, tables) else {
        let mut declared = Vec::new();
        tables_with_event_time(&aggregate.input, tables, &mut declared);
        if let Some(table) = declared.first() {
            return plan_err!(
                "{}() cannot find the event time column: table '{table}' declares '{}', but the query does not pass it through unchanged; \
                 select it as a plain column, or name it: {}",
                function.name(),
                tables[table],
                usage_with_time(function)
            );
        }
        // No event time anywhere: processing time, computed by the window operator.
        return Ok(None);
    };
    let (qualifier, _) = aggregate
        .input
        .schema()
        .qualified_field_with_unqualified_name(&field)?;
    let mut args = call.args.clone();
    args.push(Expr::Column(Column::new(qualifier.cloned(), field)));
    let name = expr.schema_name().to_string();
    let bound = Expr::ScalarFunction(ScalarFunction::new_udf(call.func.clone(), args));
    Ok(Some(bound.alias(name)))
}

fn usage_with_time(function: WindowFunction) -> &'static str {
    match function {
        WindowFunction::Tumble => "tumble(INTERVAL '1' MINUTE, ts)",
        WindowFunction::Hop => "hop(INTERVAL '10' SECOND, INTERVAL '1' MINUTE, ts)",
        WindowFunction::Session => "session(INTERVAL '5' MINUTE, ts)",
    }
}
