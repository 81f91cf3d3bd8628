//! Flink SQL functions the Nexmark suite and Flink users write, under their Flink names:
//! `DATE_FORMAT(ts, 'yyyy-MM-dd HH:mm')`, `HOUR(ts)`, `SPLIT_INDEX(s, sep, i)`,
//! `REGEXP_EXTRACT(s, pattern, group)` and the suite's own `count_char(s, c)`.

use std::any::Any;
use std::fmt::Write;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int64Builder, StringBuilder};
use arrow::compute::cast;
use arrow::datatypes::{DataType, TimeUnit, TimestampNanosecondType};
use datafusion::common::{ScalarValue, exec_err, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// Which function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    DateFormat,
    Hour,
    SplitIndex,
    RegexpExtract,
    CountChar,
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct FlinkFunction {
    kind: Kind,
    signature: Signature,
}

fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, None)
}

impl ScalarUDFImpl for FlinkFunction {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn name(&self) -> &str {
        match self.kind {
            Kind::DateFormat => "date_format",
            Kind::Hour => "hour",
            Kind::SplitIndex => "split_index",
            Kind::RegexpExtract => "regexp_extract",
            Kind::CountChar => "count_char",
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, args: &[DataType]) -> Result<Vec<DataType>> {
        let expected: Vec<DataType> = match self.kind {
            Kind::DateFormat => vec![ts_type(), DataType::Utf8],
            Kind::Hour => vec![ts_type()],
            Kind::SplitIndex => vec![DataType::Utf8, DataType::Utf8, DataType::Int64],
            Kind::RegexpExtract => vec![DataType::Utf8, DataType::Utf8, DataType::Int64],
            Kind::CountChar => vec![DataType::Utf8, DataType::Utf8],
        };
        let optional_last = self.kind == Kind::RegexpExtract;
        if args.len() != expected.len() && !(optional_last && args.len() == expected.len() - 1) {
            return plan_err!(
                "{}() takes {} arguments, got {}",
                self.name(),
                expected.len(),
                args.len()
            );
        }
        Ok(expected[..args.len()].to_vec())
    }

    fn return_type(&self, _args: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Kind::Hour | Kind::CountChar => DataType::Int64,
            _ => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let scalar_args = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let result = match self.kind {
            Kind::DateFormat => date_format(&arrays)?,
            Kind::Hour => hour(&arrays[0])?,
            Kind::SplitIndex => split_index(&arrays)?,
            Kind::RegexpExtract => regexp_extract(&arrays)?,
            Kind::CountChar => count_char(&arrays)?,
        };
        if scalar_args && rows == 1 {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(
                &result, 0,
            )?));
        }
        Ok(ColumnarValue::Array(result))
    }
}

/// A Java `SimpleDateFormat` pattern as a chrono format string.
fn chrono_pattern(java: &str) -> String {
    let mut out = String::with_capacity(java.len() * 2);
    let chars: Vec<char> = java.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut run = 1;
        while i + run < chars.len() && chars[i + run] == c {
            run += 1;
        }
        let spec = match (c, run) {
            ('y', 2) => Some("%y"),
            ('y', _) => Some("%Y"),
            ('M', _) => Some("%m"),
            ('d', _) => Some("%d"),
            ('H', _) => Some("%H"),
            ('h', _) => Some("%I"),
            ('m', _) => Some("%M"),
            ('s', _) => Some("%S"),
            ('S', _) => Some("%3f"),
            ('a', _) => Some("%p"),
            _ => None,
        };
        match spec {
            Some(s) => out.push_str(s),
            None => {
                for _ in 0..run {
                    if c == '%' {
                        out.push_str("%%");
                    } else {
                        out.push(c);
                    }
                }
            }
        }
        i += run;
    }
    out
}

fn timestamps(array: &ArrayRef) -> Result<ArrayRef> {
    Ok(cast(array, &ts_type())?)
}

fn date_format(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let times = timestamps(&arrays[0])?;
    let times = times.as_primitive::<TimestampNanosecondType>();
    let patterns = arrays[1].as_string::<i32>();
    let mut out = StringBuilder::with_capacity(times.len(), times.len() * 16);
    let mut cached: Option<(String, String)> = None;
    for i in 0..times.len() {
        if times.is_null(i) || patterns.is_null(i) {
            out.append_null();
            continue;
        }
        let java = patterns.value(i);
        if cached.as_ref().is_none_or(|(j, _)| j != java) {
            cached = Some((java.to_string(), chrono_pattern(java)));
        }
        let Some((_, format)) = &cached else {
            continue;
        };
        let time = chrono::DateTime::from_timestamp_nanos(times.value(i)).naive_utc();
        if write!(out, "{}", time.format(format)).is_err() {
            return exec_err!("date_format: invalid pattern '{java}'");
        }
        out.append_value("");
    }
    Ok(Arc::new(out.finish()))
}

fn hour(array: &ArrayRef) -> Result<ArrayRef> {
    let times = timestamps(array)?;
    let times = times.as_primitive::<TimestampNanosecondType>();
    let mut out = Int64Builder::with_capacity(times.len());
    for t in times.iter() {
        out.append_option(t.map(|t| t.div_euclid(3_600_000_000_000).rem_euclid(24)));
    }
    Ok(Arc::new(out.finish()))
}

/// Flink's `SPLIT_INDEX`: the `index`-th (from 0) piece of `s` split by `sep`, or NULL.
fn split_index(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let strings = arrays[0].as_string::<i32>();
    let seps = arrays[1].as_string::<i32>();
    let indices = arrays[2].as_primitive::<arrow::datatypes::Int64Type>();
    let mut out = StringBuilder::with_capacity(strings.len(), strings.len() * 8);
    for i in 0..strings.len() {
        if strings.is_null(i) || seps.is_null(i) || indices.is_null(i) || seps.value(i).is_empty() {
            out.append_null();
            continue;
        }
        let piece = usize::try_from(indices.value(i))
            .ok()
            .and_then(|n| strings.value(i).split(seps.value(i)).nth(n));
        out.append_option(piece);
    }
    Ok(Arc::new(out.finish()))
}

/// Flink's `REGEXP_EXTRACT(s, pattern [, group])`: the group's text of the first match.
fn regexp_extract(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let strings = arrays[0].as_string::<i32>();
    let patterns = arrays[1].as_string::<i32>();
    let groups = arrays
        .get(2)
        .map(|g| g.as_primitive::<arrow::datatypes::Int64Type>());
    let mut out = StringBuilder::with_capacity(strings.len(), strings.len() * 8);
    let mut cached: Option<(String, regex::Regex)> = None;
    for i in 0..strings.len() {
        if strings.is_null(i) || patterns.is_null(i) || groups.is_some_and(|g| g.is_null(i)) {
            out.append_null();
            continue;
        }
        let pattern = patterns.value(i);
        if cached.as_ref().is_none_or(|(p, _)| p != pattern) {
            match regex::Regex::new(pattern) {
                Ok(re) => cached = Some((pattern.to_string(), re)),
                Err(e) => return exec_err!("regexp_extract: invalid pattern '{pattern}': {e}"),
            }
        }
        let Some((_, re)) = &cached else {
            continue;
        };
        let group = groups.map_or(0, |g| g.value(i));
        let text = usize::try_from(group).ok().and_then(|g| {
            re.captures(strings.value(i))
                .and_then(|c| c.get(g))
                .map(|m| m.as_str())
        });
        out.append_option(text);
    }
    Ok(Arc::new(out.finish()))
}

/// The Nexmark suite's `count_char(s, c)`: how often character `c` occurs in `s`.
fn count_char(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let strings = arrays[0].as_string::<i32>();
    let chars = arrays[1].as_string::<i32>();
    let mut out = Int64Builder::with_capacity(strings.len());
    for i in 0..strings.len() {
        if strings.is_null(i) || chars.is_null(i) {
            out.append_null();
            continue;
        }
        let Some(c) = chars.value(i).chars().next() else {
            out.append_value(0);
            continue;
        };
        out.append_value(strings.value(i).chars().filter(|x| *x == c).count() as i64);
    }
    Ok(Arc::new(out.finish()))
}

/// The Flink functions, to register in a session.
pub fn flink_functions() -> Vec<ScalarUDF> {
    [
        Kind::DateFormat,
        Kind::Hour,
        Kind::SplitIndex,
        Kind::RegexpExtract,
        Kind::CountChar,
    ]
    .into_iter()
    .map(|kind| {
        ScalarUDF::from(FlinkFunction {
            kind,
            signature: Signature::user_defined(Volatility::Immutable),
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_patterns() {
        assert_eq!(chrono_pattern("yyyy-MM-dd"), "%Y-%m-%d");
        assert_eq!(chrono_pattern("HH:mm"), "%H:%M");
        assert_eq!(
            chrono_pattern("yyyy-MM-dd HH:mm:ss.SSS"),
            "%Y-%m-%d %H:%M:%S.%3f"
        );
    }
}
