//! Which columns of a stream are windows.
//!
//! A window aggregate emits each window's rows together, once, in window order. Operators
//! downstream that group or join by that window column can therefore work window by
//! window — a nested aggregate per window (Nexmark q5's max of counts), a join of two
//! windowed streams (q8) — without state beyond the current window. This module follows a
//! column back through projections and filters to the window aggregate that made it.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, UInt32Array};
use arrow::compute::take_record_batch;
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
use super::window_assembly::WindowAssemblyExec;
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

/// What is known of a window column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowColumn {
    pub part: WindowPart,
    /// The windows' length, in nanoseconds.
    pub width: i64,
    /// Straight from a window aggregate (through projections and filters only): each
    /// partition of the aggregate hands a window downstream before its output watermark
    /// passes the window's end.
    pub direct: bool,
}

/// Whether column `index` of `plan`'s output is (part of) a window, and which part.
pub fn window_origin(plan: &Arc<dyn ExecutionPlan>, index: usize) -> Option<WindowPart> {
    window_column(plan, index).map(|c| c.part)
}

/// The window part an expression over `input` evaluates to: a window column as is, or its
/// `start` / `end` field.
pub fn expr_origin(
    input: &Arc<dyn ExecutionPlan>,
    expr: &Arc<dyn PhysicalExpr>,
) -> Option<WindowPart> {
    expr_window_column(input, expr).map(|c| c.part)
}

/// [`window_origin`], with the window's width and where it comes from.
pub fn window_column(plan: &Arc<dyn ExecutionPlan>, index: usize) -> Option<WindowColumn> {
    let any = plan.as_any();
    let passed_on =
        |column: Option<WindowColumn>| column.map(|c| WindowColumn { direct: false, ..c });
    if let Some(window) = any.downcast_ref::<WindowAggregateExec>() {
        return (window.window_index() == index && window.emits_in_window_order()).then_some(
            WindowColumn {
                part: WindowPart::Whole,
                width: window.window_width(),
                direct: true,
            },
        );
    }
    if let Some(per_window) = any.downcast_ref::<PerWindowAggregateExec>() {
        let (key, _) = per_window.window_key()?;
        return if key == index {
            passed_on(expr_window_column(
                per_window.input(),
                &per_window.window_expr(),
            ))
        } else {
            None
        };
    }
    if let Some(join) = any.downcast_ref::<WindowJoinExec>() {
        return passed_on(join.column_window(index));
    }
    if let Some(per_window) = any.downcast_ref::<PerWindowPlanExec>() {
        return passed_on(window_column(per_window.input(), index));
    }
    if let Some(assembly) = any.downcast_ref::<WindowAssemblyExec>() {
        return passed_on(window_column(assembly.unmerged_input(), index));
    }
    if let Some(projection) = any.downcast_ref::<ProjectionExec>() {
        let expr = &projection.expr().get(index)?.expr;
        return expr_window_column(projection.input(), expr);
    }
    if any.is::<StreamingFilterExec>() {
        return window_column(plan.children().first()?, index);
    }
    None
}

/// [`expr_origin`], with the window's width and where it comes from.
pub fn expr_window_column(
    input: &Arc<dyn ExecutionPlan>,
    expr: &Arc<dyn PhysicalExpr>,
) -> Option<WindowColumn> {
    if let Some(column) = expr.as_any().downcast_ref::<Column>() {
        return window_column(input, column.index());
    }
    let call = expr.as_any().downcast_ref::<ScalarFunctionExpr>()?;
    if call.fun().name() != "get_field" {
        return None;
    }
    let [base, field] = call.args() else {
        return None;
    };
    let column = base.as_any().downcast_ref::<Column>()?;
    let whole = window_column(input, column.index())?;
    if whole.part != WindowPart::Whole {
        return None;
    }
    let part = match field.as_any().downcast_ref::<Literal>()?.value() {
        ScalarValue::Utf8(Some(name)) | ScalarValue::Utf8View(Some(name)) => match name.as_str() {
            "start" => WindowPart::Start,
            "end" => WindowPart::End,
            _ => return None,
        },
        _ => return None,
    };
    Some(WindowColumn { part, ..whole })
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

/// `batch` cut into one batch per window (`keys` as from [`window_keys`]), in window order.
pub fn split_by_window(batch: &RecordBatch, keys: &[i64]) -> Result<Vec<(i64, RecordBatch)>> {
    let Some(&first) = keys.first() else {
        return Ok(Vec::new());
    };
    if keys.iter().all(|k| *k == first) {
        return Ok(vec![(first, batch.clone())]);
    }
    let mut windows: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
    for (row, k) in keys.iter().enumerate() {
        windows.entry(*k).or_default().push(row as u32);
    }
    windows
        .into_iter()
        .map(|(k, rows)| Ok((k, take_record_batch(batch, &UInt32Array::from(rows))?)))
        .collect()
}
