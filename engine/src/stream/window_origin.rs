//! Which columns of a stream are windows.
//!
//! A window aggregate emits each window's rows together, once, in window order. Operators
//! downstream that group or join by that window column can therefore work window by
//! window — a nested aggregate per window (Nexmark q5's max of counts), a join of two
//! windowed streams (q8) — without state beyond the current window. This module follows a
//! column back through projections and filters to the window aggregate that made it.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, TimestampNanosecondType};
use datafusion::common::{ScalarValue, internal_err};
use datafusion::error::Result;
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_expr::{PhysicalExpr, ScalarFunctionExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::projection::ProjectionExec;

use super::per_window::PerWindowAggregateExec;
use super::per_window_plan::PerWindowPlanExec;
use super::window_agg::WindowAggregateExec;
use super::window_join::WindowJoinExec;
use crate::exec::filter::StreamingFilterExec;

/// What part of a window a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowPart {
    /// The `STRUCT<start, end>` window value.
    Whole,
    Start,
    End,
}

/// Whether column `index` of `plan`'s output is (part of) a window, and which part.
pub fn window_origin(plan: &Arc<dyn ExecutionPlan>, index: usize) -> Option<WindowPart> {
    let any = plan.as_any();
    if let Some(window) = any.downcast_ref::<WindowAggregateExec>() {
        return (window.window_index() == index && window.emits_in_window_order())
            .then_some(WindowPart::Whole);
    }
    if let Some(per_window) = any.downcast_ref::<PerWindowAggregateExec>() {
        return per_window
            .window_key()
            .filter(|(key, _)| *key == index)
            .map(|(_, part)| part);
    }
    if let Some(join) = any.downcast_ref::<WindowJoinExec>() {
        return join.column_origin(index);
    }
    if let Some(per_window) = any.downcast_ref::<PerWindowPlanExec>() {
        return per_window.column_origin(index);
    }
    if let Some(projection) = any.downcast_ref::<ProjectionExec>() {
        let expr = &projection.expr().get(index)?.expr;
        return expr_origin(projection.input(), expr);
    }
    if any.is::<StreamingFilterExec>() {
        return window_origin(plan.children().first()?, index);
    }
    None
}

/// The window part an expression over `input` evaluates to: a window column as is, or its
/// `start` / `end` field.
pub fn expr_origin(
    input: &Arc<dyn ExecutionPlan>,
    expr: &Arc<dyn PhysicalExpr>,
) -> Option<WindowPart> {
    if let Some(column) = expr.as_any().downcast_ref::<Column>() {
        return window_origin(input, column.index());
    }
    let call = expr.as_any().downcast_ref::<ScalarFunctionExpr>()?;
    if call.fun().name() != "get_field" {
        return None;
    }
    let [base, field] = call.args() else {
        return None;
    };
    let column = base.as_any().downcast_ref::<Column>()?;
    if window_origin(input, column.index())? != WindowPart::Whole {
        return None;
    }
    match field.as_any().downcast_ref::<Literal>()?.value() {
        ScalarValue::Utf8(Some(name)) | ScalarValue::Utf8View(Some(name)) => match name.as_str() {
            "start" => Some(WindowPart::Start),
            "end" => Some(WindowPart::End),
            _ => None,
        },
        _ => None,
    }
}

/// The window of each row as one number (its start, or its end for `End`), in nanoseconds.
pub fn window_keys(column: &ArrayRef, part: WindowPart) -> Result<Vec<i64>> {
    let times = match (part, column.data_type()) {
        (WindowPart::Whole, DataType::Struct(_)) => column.as_struct().column(0).clone(),
        (_, DataType::Timestamp(_, _)) => column.clone(),
        (_, other) => return internal_err!("window column has type {other}"),
    };
    let times = arrow::compute::cast(
        &times,
        &DataType::Timestamp(arrow::datatypes::TimeUnit::Nanosecond, None),
    )?;
    let times = times.as_primitive::<TimestampNanosecondType>();
    Ok((0..times.len())
        .map(|i| {
            if times.is_null(i) {
                i64::MIN
            } else {
                times.value(i)
            }
        })
        .collect())
}
