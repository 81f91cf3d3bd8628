//! `tumble`, `hop` and `session`: window functions written in `GROUP BY`.
//!
//! They are markers. The planner binds each call to the query's event time column (see
//! `event_time.rs`) and swaps the aggregate that groups by it for a window operator (see
//! `rewrite.rs`), which computes the window itself. Evaluated anywhere else they fail with
//! a message saying where they belong.

use std::any::Any;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, IntervalUnit, TimeUnit};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// Which window a marker function asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WindowFunction {
    Tumble,
    Hop,
    Session,
}

impl WindowFunction {
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "tumble" => Some(WindowFunction::Tumble),
            "hop" => Some(WindowFunction::Hop),
            "session" => Some(WindowFunction::Session),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            WindowFunction::Tumble => "tumble",
            WindowFunction::Hop => "hop",
            WindowFunction::Session => "session",
        }
    }

    /// Interval arguments before the optional time column.
    pub fn interval_args(self) -> usize {
        match self {
            WindowFunction::Hop => 2,
            _ => 1,
        }
    }

    fn usage(self) -> &'static str {
        match self {
            WindowFunction::Tumble => "tumble(INTERVAL '<width>' [, <time column>])",
            WindowFunction::Hop => "hop(INTERVAL '<slide>', INTERVAL '<width>' [, <time column>])",
            WindowFunction::Session => "session(INTERVAL '<gap>' [, <time column>])",
        }
    }
}

/// The type of a window value: `STRUCT<start TIMESTAMP, end TIMESTAMP>`.
pub fn window_type() -> DataType {
    let ts = DataType::Timestamp(TimeUnit::Nanosecond, None);
    DataType::Struct(Fields::from(vec![
        Field::new("start", ts.clone(), false),
        Field::new("end", ts, false),
    ]))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct WindowUdf {
    function: WindowFunction,
    signature: Signature,
}

impl ScalarUDFImpl for WindowUdf {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        self.function.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let intervals = self.function.interval_args();
        if args.len() != intervals && args.len() != intervals + 1 {
            return plan_err!("expected {}", self.function.usage());
        }
        args.iter()
            .enumerate()
            .map(|(i, t)| match (i < intervals, t) {
                (true, DataType::Interval(_) | DataType::Utf8 | DataType::Null) => {
                    Ok(DataType::Interval(IntervalUnit::MonthDayNano))
                }
                (false, DataType::Timestamp(_, _)) => Ok(t.clone()),
                (false, DataType::Null) => Ok(DataType::Timestamp(TimeUnit::Nanosecond, None)),
                _ => plan_err!(
                    "{}() argument {} has type {t}; expected {}",
                    self.function.name(),
                    i + 1,
                    self.function.usage()
                ),
            })
            .collect()
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(window_type())
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        exec_err!(
            "{}() defines a window and can only be used in GROUP BY (e.g. SELECT {} AS window, count(*) FROM t GROUP BY window)",
            self.function.name(),
            self.function.usage()
        )
    }
}

/// `proctime()`: the current time, re-read for every batch (unlike `now()`, which is fixed
/// when the statement is planned). As a window's time column it asks for processing-time
/// windows even over a table that has an event time, as Flink's `PROCTIME()` does.
#[derive(Debug, PartialEq, Eq, Hash)]
struct ProcTime {
    signature: Signature,
}

impl ScalarUDFImpl for ProcTime {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        "proctime"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(DataType::Timestamp(TimeUnit::Nanosecond, None))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or_default();
        Ok(ColumnarValue::Array(Arc::new(
            arrow::array::TimestampNanosecondArray::from_value(now, args.number_rows),
        )))
    }
}

/// Whether a physical expression is a `proctime()` call.
pub fn is_proctime(expr: &Arc<dyn datafusion::physical_expr::PhysicalExpr>) -> bool {
    expr.as_any()
        .downcast_ref::<datafusion::physical_expr::ScalarFunctionExpr>()
        .is_some_and(|f| f.fun().name() == "proctime")
}

/// The window functions and `proctime()`, to register in a session.
pub fn window_functions() -> Vec<ScalarUDF> {
    let proctime = ScalarUDF::from(ProcTime {
        signature: Signature::nullary(Volatility::Volatile),
    });
    [
        WindowFunction::Tumble,
        WindowFunction::Hop,
        WindowFunction::Session,
    ]
    .into_iter()
    .map(|function| {
        ScalarUDF::from(WindowUdf {
            function,
            // Volatile: never folded into a constant, even with literal arguments only.
            signature: Signature::user_defined(Volatility::Volatile),
        })
    })
    .chain([proctime])
    .collect()
}

/// Nanoseconds of a fixed interval (months are not fixed and are refused).
pub fn interval_nanos(function: WindowFunction, value: &ScalarValue) -> Result<i64> {
    let nanos = match value {
        ScalarValue::IntervalMonthDayNano(Some(v)) if v.months == 0 => {
            (v.days as i64) * 86_400_000_000_000 + v.nanoseconds
        }
        ScalarValue::IntervalDayTime(Some(v)) => {
            (v.days as i64) * 86_400_000_000_000 + (v.milliseconds as i64) * 1_000_000
        }
        ScalarValue::IntervalMonthDayNano(Some(_)) | ScalarValue::IntervalYearMonth(Some(_)) => {
            return plan_err!(
                "{}() needs a fixed-length interval; months and years vary in length",
                function.name()
            );
        }
        other => {
            return plan_err!(
                "{}() needs a constant INTERVAL, got {other}; expected {}",
                function.name(),
                function.usage()
            );
        }
    };
    if nanos <= 0 {
        return plan_err!("{}() needs a positive interval", function.name());
    }
    Ok(nanos)
}

/// Whether a UDF is one of the window markers.
pub fn is_window_udf(udf: &Arc<ScalarUDF>) -> Option<WindowFunction> {
    WindowFunction::from_name(udf.name())
}
