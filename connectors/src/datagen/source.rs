use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Float32Array, Float64Array, Int8Array,
    Int16Array, Int32Array, Int64Array, PrimitiveArray, RecordBatch, RecordBatchOptions,
    StringArray,
};
use arrow::buffer::{BooleanBuffer, Buffer, NullBuffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::{
    ArrowTimestampType, DataType, Field, SchemaRef, TimeUnit, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use async_trait::async_trait;
use rand::distr::{Bernoulli, Distribution, Uniform};
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use tokio::time::Instant;

use super::config::{DEFAULT_LENGTH, DEFAULT_SEED, DatagenField, DatagenTable, FieldKind};
use crate::connector::{Source, SourceContext};
use crate::error::{ConnectorError, Result};
use crate::options::{DURATION_EXPECTED, parse_duration, to_snake_case};
use crate::pacing::Pacer;
use crate::schema::sql_type_name;

/// The column types datagen fills, for the error on any other.
const SUPPORTED_TYPES: &str = "BIGINT, INT, SMALLINT, TINYINT, DOUBLE, FLOAT, BOOLEAN, TEXT, BYTEA, TIMESTAMP, TIMESTAMPTZ, DATE";
const INTEGER_TYPES: &str = "BIGINT, INT, SMALLINT and TINYINT";
const NUMERIC_TYPES: &str = "BIGINT, INT, SMALLINT, TINYINT, DOUBLE and FLOAT";

/// The characters of random TEXT values.
const ALPHANUMERIC: &[u8; 62] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;
const NANOS_PER_MILLI: i64 = 1_000_000;
const MILLIS_PER_DAY: i64 = 86_400_000;

/// `rows_per_second` must be a positive, finite number.
pub(super) fn check_rate(rate: f64) -> Result<()> {
    if rate > 0.0 && rate.is_finite() {
        Ok(())
    } else {
        Err(invalid(
            "rows_per_second",
            rate.shown(),
            "a number greater than 0",
        ))
    }
}

fn invalid(
    key: impl Into<String>,
    value: impl ToString,
    expected: impl Into<String>,
) -> ConnectorError {
    ConnectorError::InvalidValue {
        connector: "datagen".into(),
        key: key.into(),
        value: value.to_string(),
        expected: expected.into(),
    }
}

/// A number as errors show it: `1e308`, not 309 digits.
trait Shown: Copy {
    fn shown(self) -> String;
}

impl Shown for i64 {
    fn shown(self) -> String {
        self.to_string()
    }
}

impl Shown for f64 {
    fn shown(self) -> String {
        let magnitude = self.abs();
        if magnitude != 0.0 && !(1e-6..1e16).contains(&magnitude) {
            format!("{self:e}")
        } else {
            self.to_string()
        }
    }
}

/// How one column's values are made.
#[derive(Debug, Clone)]
enum Values {
    /// Uniform integers, narrowed to the column's width (the range fits it).
    Int(Uniform<i64>),
    /// Global row `g` holds `start + g % span`.
    Sequence {
        start: i64,
        span: u128,
    },
    Float64(Uniform<f64>),
    Float32(Uniform<f32>),
    Bool,
    /// Random alphanumeric text of this many characters.
    Text(usize),
    /// Random bytes, this many.
    Bytes(usize),
    /// Now minus a uniform offset (in the column's unit), or now.
    Timestamp {
        unit: TimeUnit,
        timezone: Option<Arc<str>>,
        past: Option<Uniform<i64>>,
    },
    /// The day of now minus a uniform offset in milliseconds, or today.
    Date {
        past: Option<Uniform<i64>>,
    },
}

/// A column's values and null rate, resolved from its type and `fields.<column>` options.
#[derive(Debug, Clone)]
pub(super) struct ColumnPlan {
    name: String,
    data_type: DataType,
    values: Values,
    null_rate: f64,
}

/// What a table generates.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    columns: Vec<ColumnPlan>,
    /// Rows of the whole table (all partitions), if it ends: `number_of_rows`, or the length
    /// of the shortest sequence with an end.
    rows: Option<u64>,
}

/// Whether `key` of `fields.<key>` names the column `column`. WITH keys are lower-cased and
/// REST keys snake_cased before they get here, so those spellings match too.
fn names_column(key: &str, column: &str) -> bool {
    key == column || key.eq_ignore_ascii_case(column) || key == to_snake_case(column)
}

/// Check the table's options against its columns and resolve every column's generator.
pub(super) fn plan(table: &DatagenTable, schema: &SchemaRef) -> Result<Plan> {
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    for key in table.fields.keys() {
        if !names.iter().any(|name| names_column(key, name)) {
            let hint = crate::options::did_you_mean(key, names.iter().copied())
                .map(|best| format!(" (did you mean '{best}'?)"))
                .unwrap_or_default();
            let columns = if names.is_empty() {
                "it has no columns".to_string()
            } else {
                format!("its columns are {}", names.join(", "))
            };
            return Err(ConnectorError::Config(format!(
                "option 'fields.{key}' names no column of the table{hint}; {columns}"
            )));
        }
    }
    let defaults = DatagenField::default();
    let mut rows = table.number_of_rows;
    let mut columns = Vec::with_capacity(names.len());
    for field in schema.fields() {
        let name = field.name();
        let options = table.fields.get(name).or_else(|| {
            table
                .fields
                .iter()
                .find(|(key, _)| names_column(key, name))
                .map(|(_, options)| options)
        });
        let (column, sequence_rows) = plan_column(field, options.unwrap_or(&defaults))?;
        if let Some(n) = sequence_rows {
            rows = Some(rows.map_or(n, |r| r.min(n)));
        }
        columns.push(column);
    }
    Ok(Plan { columns, rows })
}

/// One column's plan, and the number of values of its sequence if that has an end.
fn plan_column(field: &Field, options: &DatagenField) -> Result<(ColumnPlan, Option<u64>)> {
    let name = field.name();
    let data_type = field.data_type();
    let type_name = sql_type_name(data_type);
    let key = |option: &str| format!("fields.{name}.{option}");
    let not_for = |option: &str, applies: &str| {
        ConnectorError::Config(format!(
            "option '{}' does not apply to column '{name}' of type {type_name}; it applies to {applies} columns",
            key(option)
        ))
    };
    let integer_range = match data_type {
        DataType::Int8 => Some((i64::from(i8::MIN), i64::from(i8::MAX))),
        DataType::Int16 => Some((i64::from(i16::MIN), i64::from(i16::MAX))),
        DataType::Int32 => Some((i64::from(i32::MIN), i64::from(i32::MAX))),
        DataType::Int64 => Some((i64::MIN, i64::MAX)),
        _ => None,
    };
    let numeric =
        integer_range.is_some() || matches!(data_type, DataType::Float32 | DataType::Float64);
    let variable = matches!(data_type, DataType::Utf8 | DataType::Binary);
    let temporal = matches!(data_type, DataType::Timestamp(_, _) | DataType::Date32);
    if !(numeric || variable || temporal || *data_type == DataType::Boolean) {
        return Err(unsupported(name, &type_name));
    }
    let kind = options.kind.unwrap_or_default();
    if kind == FieldKind::Sequence && integer_range.is_none() {
        return Err(invalid(
            key("kind"),
            "sequence",
            format!(
                "random: column '{name}' is {type_name}, and sequences are for {INTEGER_TYPES} columns"
            ),
        ));
    }
    for (option, set) in [
        ("min", options.min.is_some()),
        ("max", options.max.is_some()),
    ] {
        if set && !numeric {
            return Err(not_for(option, NUMERIC_TYPES));
        }
    }
    for (option, set) in [
        ("start", options.start.is_some()),
        ("end", options.end.is_some()),
    ] {
        if set && kind != FieldKind::Sequence {
            return Err(ConnectorError::Config(format!(
                "option '{}' needs {} = 'sequence' (random values take min and max)",
                key(option),
                key("kind")
            )));
        }
    }
    if options.length.is_some() && !variable {
        return Err(not_for("length", "TEXT and BYTEA"));
    }
    if options.max_past.is_some() && !temporal {
        return Err(not_for("max_past", "TIMESTAMP and DATE"));
    }
    let null_rate = options.null_rate.unwrap_or(0.0);
    if !(0.0..=1.0).contains(&null_rate) {
        return Err(invalid(
            key("null_rate"),
            null_rate.shown(),
            "a number from 0 to 1",
        ));
    }
    if null_rate > 0.0 && !field.is_nullable() {
        return Err(ConnectorError::Config(format!(
            "option '{}' must be 0: column '{name}' is NOT NULL",
            key("null_rate")
        )));
    }

    let mut sequence_rows = None;
    let values = match (data_type, integer_range) {
        (_, Some((lowest, highest))) => {
            // A whole number the column can hold.
            let whole = |option: &str, value: f64| {
                if value.fract() == 0.0 && value >= lowest as f64 && value <= highest as f64 {
                    Ok(value as i64)
                } else {
                    Err(invalid(
                        key(option),
                        value.shown(),
                        format!(
                            "a whole number from {lowest} to {highest} (column '{name}' is {type_name})"
                        ),
                    ))
                }
            };
            let exact = |option: &str, value: i64| {
                if (lowest..=highest).contains(&value) {
                    Ok(value)
                } else {
                    Err(invalid(
                        key(option),
                        value,
                        format!(
                            "a whole number from {lowest} to {highest} (column '{name}' is {type_name})"
                        ),
                    ))
                }
            };
            if kind == FieldKind::Sequence {
                let first = match (options.start, options.min) {
                    (Some(_), Some(_)) => return Err(both(name, "start", "min")),
                    (Some(start), None) => Some(("start", exact("start", start)?)),
                    (None, Some(min)) => Some(("min", whole("min", min)?)),
                    (None, None) => None,
                };
                let last = match (options.end, options.max) {
                    (Some(_), Some(_)) => return Err(both(name, "end", "max")),
                    (Some(end), None) => Some(("end", exact("end", end)?)),
                    (None, Some(max)) => Some(("max", whole("max", max)?)),
                    (None, None) => None,
                };
                let (start, end) = ordered(name, first, last, (0, highest))?;
                let span = (i128::from(end) - i128::from(start) + 1) as u128;
                if last.is_some() {
                    sequence_rows = Some(u64::try_from(span).unwrap_or(u64::MAX));
                }
                Values::Sequence { start, span }
            } else {
                let min = options.min.map(|v| whole("min", v)).transpose()?;
                let max = options.max.map(|v| whole("max", v)).transpose()?;
                let (min, max) = ordered(
                    name,
                    min.map(|v| ("min", v)),
                    max.map(|v| ("max", v)),
                    (lowest, highest),
                )?;
                Values::Int(
                    Uniform::new_inclusive(min, max)
                        .map_err(|e| invalid(key("min"), min, e.to_string()))?,
                )
            }
        }
        (DataType::Float64 | DataType::Float32, _) => {
            let f32_column = *data_type == DataType::Float32;
            let limit = if f32_column {
                f64::from(f32::MAX)
            } else {
                f64::MAX
            };
            for (option, value) in [("min", options.min), ("max", options.max)] {
                if let Some(v) = value
                    && !(v.is_finite() && v.abs() <= limit)
                {
                    return Err(invalid(
                        key(option),
                        v.shown(),
                        format!(
                            "a number from -{limit:e} to {limit:e} (column '{name}' is {type_name})"
                        ),
                    ));
                }
            }
            let (min, max) = ordered(
                name,
                options.min.map(|v| ("min", v)),
                options.max.map(|v| ("max", v)),
                (0.0, 1.0),
            )?;
            let too_wide = |_| {
                invalid(
                    key("max"),
                    max.shown(),
                    format!(
                        "a number closer to fields.{name}.min ({}): max - min must be finite",
                        min.shown()
                    ),
                )
            };
            if f32_column {
                Values::Float32(Uniform::new_inclusive(min as f32, max as f32).map_err(too_wide)?)
            } else {
                Values::Float64(Uniform::new_inclusive(min, max).map_err(too_wide)?)
            }
        }
        (DataType::Boolean, _) => Values::Bool,
        (DataType::Utf8 | DataType::Binary, _) => {
            let length = options.length.unwrap_or(DEFAULT_LENGTH);
            let length = usize::try_from(length)
                .ok()
                .filter(|&n| n <= i32::MAX as usize)
                .ok_or_else(|| invalid(key("length"), length, format!("at most {}", i32::MAX)))?;
            if *data_type == DataType::Utf8 {
                Values::Text(length)
            } else {
                Values::Bytes(length)
            }
        }
        (DataType::Timestamp(unit, timezone), _) => Values::Timestamp {
            unit: *unit,
            timezone: timezone.clone(),
            past: max_past(name, options, unit_nanos(*unit))?,
        },
        (DataType::Date32, _) => Values::Date {
            past: max_past(name, options, NANOS_PER_MILLI)?,
        },
        _ => return Err(unsupported(name, &type_name)),
    };
    Ok((
        ColumnPlan {
            name: name.clone(),
            data_type: data_type.clone(),
            values,
            null_rate,
        },
        sequence_rows,
    ))
}

fn unsupported(column: &str, type_name: &str) -> ConnectorError {
    ConnectorError::Config(format!(
        "column '{column}' has type {type_name}, which connector 'datagen' cannot generate; \
         supported types: {SUPPORTED_TYPES}"
    ))
}

fn both(column: &str, one: &str, other: &str) -> ConnectorError {
    ConnectorError::Config(format!(
        "options 'fields.{column}.{one}' and 'fields.{column}.{other}' mean the same; give one of them"
    ))
}

/// The lower and upper bound, defaults filled in; an error naming the option given if the
/// lower is above the upper.
fn ordered<T: PartialOrd + Shown>(
    column: &str,
    low: Option<(&str, T)>,
    high: Option<(&str, T)>,
    (default_low, default_high): (T, T),
) -> Result<(T, T)> {
    let lo = low.map_or(default_low, |(_, v)| v);
    let hi = high.map_or(default_high, |(_, v)| v);
    if lo <= hi {
        return Ok((lo, hi));
    }
    let (lo, hi) = (lo.shown(), hi.shown());
    Err(match (low, high) {
        (Some((low_key, _)), Some((high_key, _))) => invalid(
            format!("fields.{column}.{low_key}"),
            &lo,
            format!("a number no greater than fields.{column}.{high_key} ({hi})"),
        ),
        (Some((low_key, _)), None) => invalid(
            format!("fields.{column}.{low_key}"),
            &lo,
            format!(
                "a number no greater than the default maximum {hi} (or set fields.{column}.max)"
            ),
        ),
        (None, Some((high_key, _))) => invalid(
            format!("fields.{column}.{high_key}"),
            &hi,
            format!("a number no less than the default minimum {lo} (or set fields.{column}.min)"),
        ),
        (None, None) => ConnectorError::Config(format!("fields.{column}: empty default range")),
    })
}

/// Nanoseconds per value of `unit`.
fn unit_nanos(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => NANOS_PER_MILLI,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    }
}

/// The distribution of offsets into the past, in units of `unit_ns`, or `None` for "now".
fn max_past(column: &str, options: &DatagenField, unit_ns: i64) -> Result<Option<Uniform<i64>>> {
    let Some(text) = &options.max_past else {
        return Ok(None);
    };
    let key = format!("fields.{column}.max_past");
    let duration = parse_duration(text).ok_or_else(|| invalid(&key, text, DURATION_EXPECTED))?;
    let units = duration.as_nanos() / unit_ns as u128;
    if units == 0 {
        return Ok(None);
    }
    let units =
        i64::try_from(units).map_err(|_| invalid(&key, text, "a duration of at most 290 years"))?;
    Uniform::new_inclusive(0, units)
        .map(Some)
        .map_err(|e| invalid(&key, text, e.to_string()))
}

/// SplitMix64's finalizer: every input bit affects every output bit.
fn mix64(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Seed of one random stream of a column in a partition. The column's name (FNV-1a, stable
/// across builds) rather than its position keys it, so adding a column leaves the others'
/// values alone.
fn stream_seed(seed: u64, column: &str, partition: u64, stream: u64) -> u64 {
    let mut name = 0xCBF2_9CE4_8422_2325_u64;
    for byte in column.bytes() {
        name = (name ^ u64::from(byte)).wrapping_mul(0x0100_0000_01B3);
    }
    mix64(mix64(seed) ^ mix64(name ^ stream.wrapping_mul(GOLDEN_GAMMA)) ^ mix64(partition))
}

/// A column being generated. Values and nulls draw from separate streams, and every row
/// draws from them in order, so the rows do not depend on how they are cut into batches.
struct Column {
    plan: ColumnPlan,
    rng: SmallRng,
    nulls: Option<(SmallRng, Bernoulli)>,
}

impl Column {
    fn new(plan: ColumnPlan, seed: u64, partition: u64) -> Result<Self> {
        let rng = SmallRng::seed_from_u64(stream_seed(seed, &plan.name, partition, 0));
        let nulls = if plan.null_rate > 0.0 {
            let coin = Bernoulli::new(plan.null_rate).map_err(|e| {
                invalid(
                    format!("fields.{}.null_rate", plan.name),
                    plan.null_rate.shown(),
                    e.to_string(),
                )
            })?;
            let rng = SmallRng::seed_from_u64(stream_seed(seed, &plan.name, partition, 1));
            Some((rng, coin))
        } else {
            None
        };
        Ok(Column { plan, rng, nulls })
    }

    /// `rows` values; the first is global row `first`, the next ones `step` apart.
    fn build(&mut self, first: u64, step: u64, rows: usize, now_ns: i64) -> Result<ArrayRef> {
        let nulls = self.nulls.as_mut().map(|(rng, coin)| {
            NullBuffer::new(BooleanBuffer::collect_bool(rows, |_| !coin.sample(rng)))
        });
        let rng = &mut self.rng;
        Ok(match &self.plan.values {
            Values::Int(range) => {
                let values: Vec<i64> = (0..rows).map(|_| range.sample(rng)).collect();
                integers(&self.plan.data_type, values, nulls)?
            }
            Values::Sequence { start, span } => {
                let start = *start;
                let count = rows as u64;
                let last =
                    u128::from(first) + u128::from(count.saturating_sub(1)) * u128::from(step);
                let values: Vec<i64> = if last < *span {
                    // No wrap-around in this batch: the common case, without a division.
                    (0..count)
                        .map(|i| {
                            start.wrapping_add(first.wrapping_add(i.wrapping_mul(step)) as i64)
                        })
                        .collect()
                } else {
                    (0..count)
                        .map(|i| {
                            let row = u128::from(first) + u128::from(i) * u128::from(step);
                            start.wrapping_add((row % span) as i64)
                        })
                        .collect()
                };
                integers(&self.plan.data_type, values, nulls)?
            }
            Values::Float64(range) => {
                let values: Vec<f64> = (0..rows).map(|_| range.sample(rng)).collect();
                Arc::new(Float64Array::new(values.into(), nulls))
            }
            Values::Float32(range) => {
                let values: Vec<f32> = (0..rows).map(|_| range.sample(rng)).collect();
                Arc::new(Float32Array::new(values.into(), nulls))
            }
            Values::Bool => {
                let values = BooleanBuffer::collect_bool(rows, |_| rng.random::<bool>());
                Arc::new(BooleanArray::new(values, nulls))
            }
            Values::Text(length) => {
                let (offsets, bytes) =
                    fill_values(&self.plan.name, rows, *length, nulls.as_ref(), |value| {
                        fill_alphanumeric(rng, value)
                    })?;
                Arc::new(StringArray::try_new(offsets, bytes, nulls)?)
            }
            Values::Bytes(length) => {
                let (offsets, bytes) =
                    fill_values(&self.plan.name, rows, *length, nulls.as_ref(), |value| {
                        rng.fill_bytes(value)
                    })?;
                Arc::new(BinaryArray::try_new(offsets, bytes, nulls)?)
            }
            Values::Timestamp {
                unit,
                timezone,
                past,
            } => {
                let now = now_ns.div_euclid(unit_nanos(*unit));
                let values: Vec<i64> = match past {
                    Some(offset) => (0..rows).map(|_| now - offset.sample(rng)).collect(),
                    None => vec![now; rows],
                };
                let timezone = timezone.clone();
                match unit {
                    TimeUnit::Second => timestamps::<TimestampSecondType>(values, nulls, timezone),
                    TimeUnit::Millisecond => {
                        timestamps::<TimestampMillisecondType>(values, nulls, timezone)
                    }
                    TimeUnit::Microsecond => {
                        timestamps::<TimestampMicrosecondType>(values, nulls, timezone)
                    }
                    TimeUnit::Nanosecond => {
                        timestamps::<TimestampNanosecondType>(values, nulls, timezone)
                    }
                }
            }
            Values::Date { past } => {
                let now_ms = now_ns.div_euclid(NANOS_PER_MILLI);
                let day = |ms: i64| ms.div_euclid(MILLIS_PER_DAY) as i32;
                let values: Vec<i32> = match past {
                    Some(offset) => (0..rows)
                        .map(|_| day(now_ms - offset.sample(rng)))
                        .collect(),
                    None => vec![day(now_ms); rows],
                };
                Arc::new(Date32Array::new(values.into(), nulls))
            }
        })
    }
}

/// An integer column of the declared width; the values fit it (the plan checked the range).
fn integers(data_type: &DataType, values: Vec<i64>, nulls: Option<NullBuffer>) -> Result<ArrayRef> {
    Ok(match data_type {
        DataType::Int64 => Arc::new(Int64Array::new(values.into(), nulls)),
        DataType::Int32 => Arc::new(Int32Array::new(
            values.iter().map(|&v| v as i32).collect(),
            nulls,
        )),
        DataType::Int16 => Arc::new(Int16Array::new(
            values.iter().map(|&v| v as i16).collect(),
            nulls,
        )),
        DataType::Int8 => Arc::new(Int8Array::new(
            values.iter().map(|&v| v as i8).collect(),
            nulls,
        )),
        other => {
            return Err(ConnectorError::Config(format!(
                "datagen: integer values for a {} column",
                sql_type_name(other)
            )));
        }
    })
}

fn timestamps<T: ArrowTimestampType>(
    values: Vec<i64>,
    nulls: Option<NullBuffer>,
    timezone: Option<Arc<str>>,
) -> ArrayRef {
    Arc::new(
        PrimitiveArray::<T>::new(ScalarBuffer::from(values), nulls).with_timezone_opt(timezone),
    )
}

/// Offsets and bytes of `rows` variable-width values of `length` bytes each (empty where the
/// row is null), each filled by `fill`: one allocation for all the bytes of the batch.
fn fill_values(
    column: &str,
    rows: usize,
    length: usize,
    nulls: Option<&NullBuffer>,
    mut fill: impl FnMut(&mut [u8]),
) -> Result<(OffsetBuffer<i32>, Buffer)> {
    let present = rows - nulls.map_or(0, NullBuffer::null_count);
    let total = present
        .checked_mul(length)
        .filter(|&n| n <= i32::MAX as usize)
        .ok_or_else(|| {
            ConnectorError::Config(format!(
                "datagen: {present} values of {length} bytes in column '{column}' exceed the 2 GiB \
                 one batch column can hold; lower fields.{column}.length or the batch size"
            ))
        })?;
    let mut bytes = vec![0u8; total];
    let mut offsets = Vec::with_capacity(rows + 1);
    offsets.push(0i32);
    let mut end = 0;
    for row in 0..rows {
        if nulls.is_none_or(|n| n.is_valid(row)) {
            fill(&mut bytes[end..end + length]);
            end += length;
        }
        // `end` is at most `total`, which fits an i32.
        offsets.push(end as i32);
    }
    Ok((
        OffsetBuffer::new(ScalarBuffer::from(offsets)),
        Buffer::from_vec(bytes),
    ))
}

/// Fill `out` with random characters of [`ALPHANUMERIC`]: six bits per character, ten
/// candidates per 64-bit draw, rejecting the two 6-bit values past the alphabet (unbiased).
fn fill_alphanumeric(rng: &mut SmallRng, out: &mut [u8]) {
    let mut filled = 0;
    while filled < out.len() {
        let mut bits = rng.next_u64();
        for _ in 0..10 {
            let index = (bits & 63) as usize;
            bits >>= 6;
            if index < ALPHANUMERIC.len() {
                out[filled] = ALPHANUMERIC[index];
                filled += 1;
                if filled == out.len() {
                    break;
                }
            }
        }
    }
}

/// Emits global rows `partition, partition + partitions, ...` at this partition's share of
/// the rate, so all partitions together emit each row (and each sequence value) once.
pub(super) struct DatagenSource {
    schema: SchemaRef,
    columns: Vec<Column>,
    partition: u64,
    partitions: u64,
    /// Rows this partition has emitted.
    emitted: u64,
    /// Rows this partition will emit, if bounded.
    limit: Option<u64>,
    pacer: Pacer,
    batch_size: usize,
}

impl DatagenSource {
    pub(super) fn new(table: &DatagenTable, ctx: SourceContext) -> Result<Self> {
        let rate = table.rate();
        check_rate(rate)?;
        let plan = plan(table, &ctx.schema)?;
        let partitions = ctx.partitions.max(1) as u64;
        let partition = ctx.partition as u64;
        // Of the first `total` rows, those with index % partitions == partition are ours.
        let limit = plan
            .rows
            .map(|total| total / partitions + u64::from(partition < total % partitions));
        let seed = table.seed.unwrap_or(DEFAULT_SEED);
        let columns = plan
            .columns
            .into_iter()
            .map(|column| Column::new(column, seed, partition))
            .collect::<Result<Vec<_>>>()?;
        let mut source = DatagenSource {
            schema: ctx.schema.clone(),
            columns,
            partition,
            partitions,
            emitted: 0,
            limit,
            pacer: Pacer::new(rate / partitions as f64, Instant::now()),
            batch_size: ctx.batch_size.max(1),
        };
        // Resuming: run the generators past the rows already emitted (random columns are
        // sequences from the seed, so this lands exactly where the checkpoint was).
        let resume_at = ctx.restored_u64("emitted");
        while source.emitted < resume_at {
            let rows = (resume_at - source.emitted).min(source.batch_size as u64) as usize;
            source.build(rows)?;
            source.emitted += rows as u64;
        }
        source.pacer = Pacer::resumed(rate / partitions as f64, resume_at);
        Ok(source)
    }

    fn build(&mut self, rows: usize) -> Result<RecordBatch> {
        let now_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as i64)
            .unwrap_or_default();
        let first = self.partition + self.emitted * self.partitions;
        let arrays = self
            .columns
            .iter_mut()
            .map(|column| column.build(first, self.partitions, rows, now_ns))
            .collect::<Result<Vec<_>>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(
            self.schema.clone(),
            arrays,
            &options,
        )?)
    }
}

#[async_trait]
impl Source for DatagenSource {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        let remaining = self
            .limit
            .map_or(u64::MAX, |l| l.saturating_sub(self.emitted));
        if remaining == 0 {
            return Ok(None);
        }
        let max = (self.batch_size as u64).min(remaining) as usize;
        // Cancellation safe: waiting holds no rows; the generators and `emitted` only move
        // after the wait.
        let rows = self.pacer.wait_for_rows(self.emitted, max).await;
        let batch = self.build(rows)?;
        self.emitted += rows as u64;
        Ok(Some(batch))
    }

    fn snapshot(&self) -> serde_json::Value {
        serde_json::json!({ "emitted": self.emitted })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{
        Date32Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type, Int64Type,
        IntervalUnit, Schema,
    };

    use super::*;
    use crate::format::FormatSpec;
    use crate::options::{WithOptions, nest, parse_config};

    fn table(pairs: &[(&str, &str)]) -> DatagenTable {
        let options: WithOptions = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_config("datagen", nest(&options).unwrap()).unwrap()
    }

    fn schema(columns: &[(&str, DataType)]) -> SchemaRef {
        Arc::new(Schema::new(
            columns
                .iter()
                .map(|(name, data_type)| Field::new(*name, data_type.clone(), true))
                .collect::<Vec<_>>(),
        ))
    }

    fn ctx(
        schema: SchemaRef,
        partition: usize,
        partitions: usize,
        batch_size: usize,
    ) -> SourceContext {
        SourceContext {
            table_name: "gen".into(),
            schema,
            partition,
            partitions,
            batch_size,
            format: FormatSpec::default(),
            bad_records: Default::default(),
            preview: false,
            event_time: false,
            restore: None,
        }
    }

    async fn drain(source: &mut DatagenSource) -> Vec<RecordBatch> {
        let mut batches = Vec::new();
        while let Some(batch) = source.next_batch().await.unwrap() {
            batches.push(batch);
        }
        batches
    }

    /// All rows of a bounded table read by one partition of `partitions`.
    async fn rows(
        pairs: &[(&str, &str)],
        schema: &SchemaRef,
        partition: usize,
        partitions: usize,
        batch_size: usize,
    ) -> RecordBatch {
        let mut source = DatagenSource::new(
            &table(pairs),
            ctx(schema.clone(), partition, partitions, batch_size),
        )
        .unwrap();
        let batches = drain(&mut source).await;
        arrow::compute::concat_batches(schema, &batches).unwrap()
    }

    fn plan_error(pairs: &[(&str, &str)], schema: &SchemaRef) -> String {
        plan(&table(pairs), schema).unwrap_err().to_string()
    }

    #[tokio::test]
    async fn value_ranges_are_honoured() {
        let schema = schema(&[
            ("auction", DataType::Int64),
            ("wide", DataType::Int64),
            ("small", DataType::Int32),
            ("tiny", DataType::Int8),
            ("short", DataType::Int16),
            ("score", DataType::Float64),
            ("ratio", DataType::Float32),
            ("unit", DataType::Float64),
            ("flag", DataType::Boolean),
        ]);
        let batch = rows(
            &[
                ("number_of_rows", "5000"),
                ("rows_per_second", "1e9"),
                ("fields.auction.min", "1000"),
                ("fields.auction.max", "10999"),
                ("fields.small.min", "-3"),
                ("fields.small.max", "3"),
                ("fields.tiny.min", "-128"),
                ("fields.short.max", "-32768"),
                ("fields.score.min", "-2.5"),
                ("fields.score.max", "7.25"),
                ("fields.ratio.min", "0.1"),
                ("fields.ratio.max", "0.2"),
            ],
            &schema,
            0,
            1,
            1024,
        )
        .await;
        assert_eq!(batch.num_rows(), 5000);
        let auction = batch.column(0).as_primitive::<Int64Type>();
        assert!(auction.values().iter().all(|v| (1000..=10999).contains(v)));
        // Uniform over the range: the whole range is used.
        let distinct: BTreeSet<i64> = auction.values().iter().copied().collect();
        assert!(distinct.len() > 3000, "{}", distinct.len());
        let wide = batch.column(1).as_primitive::<Int64Type>();
        assert!(wide.values().iter().any(|v| *v < 0) && wide.values().iter().any(|v| *v > 0));
        let small = batch.column(2).as_primitive::<Int32Type>();
        let seen: BTreeSet<i32> = small.values().iter().copied().collect();
        assert_eq!(seen, (-3..=3).collect());
        let tiny = batch.column(3).as_primitive::<Int8Type>();
        assert!(tiny.values().contains(&-128) && tiny.values().contains(&127));
        let short = batch.column(4).as_primitive::<Int16Type>();
        assert!(short.values().iter().all(|v| *v == -32768));
        let score = batch.column(5).as_primitive::<Float64Type>();
        assert!(score.values().iter().all(|v| (-2.5..=7.25).contains(v)));
        let ratio = batch.column(6).as_primitive::<Float32Type>();
        assert!(ratio.values().iter().all(|v| (0.1..=0.2).contains(v)));
        let unit = batch.column(7).as_primitive::<Float64Type>();
        assert!(unit.values().iter().all(|v| (0.0..=1.0).contains(v)));
        let flags = batch.column(8).as_boolean();
        let trues = flags.true_count();
        assert!((2000..3000).contains(&trues), "{trues} of 5000 true");
        assert!(batch.columns().iter().all(|c| c.null_count() == 0));
    }

    #[tokio::test]
    async fn strings_and_bytes_have_their_length() {
        let schema = schema(&[
            ("channel", DataType::Utf8),
            ("extra", DataType::Utf8),
            ("blob", DataType::Binary),
            ("empty", DataType::Utf8),
        ]);
        let batch = rows(
            &[
                ("number_of_rows", "2000"),
                ("rows_per_second", "1e9"),
                ("fields.channel.length", "8"),
                ("fields.blob.length", "5"),
                ("fields.empty.length", "0"),
            ],
            &schema,
            0,
            1,
            300,
        )
        .await;
        let channel = batch.column(0).as_string::<i32>();
        assert!(
            channel
                .iter()
                .flatten()
                .all(|s| s.len() == 8 && s.bytes().all(|b| b.is_ascii_alphanumeric()))
        );
        let letters: BTreeSet<u8> = channel.iter().flatten().flat_map(|s| s.bytes()).collect();
        assert_eq!(letters.len(), 62, "every alphanumeric character shows up");
        let extra = batch.column(1).as_string::<i32>();
        assert!(
            extra.iter().flatten().all(|s| s.len() == 100),
            "default length"
        );
        let distinct: BTreeSet<&str> = extra.iter().flatten().collect();
        assert_eq!(distinct.len(), 2000);
        let blob = batch.column(2).as_binary::<i32>();
        assert!(blob.iter().flatten().all(|b| b.len() == 5));
        let empty = batch.column(3).as_string::<i32>();
        assert!(empty.iter().flatten().all(str::is_empty));
        assert_eq!(empty.null_count(), 0);
    }

    #[tokio::test]
    async fn null_rate_is_roughly_honoured() {
        let schema = schema(&[
            ("a", DataType::Int64),
            ("s", DataType::Utf8),
            ("never", DataType::Int64),
            ("always", DataType::Utf8),
        ]);
        let batch = rows(
            &[
                ("number_of_rows", "20000"),
                ("rows_per_second", "1e9"),
                ("fields.a.null_rate", "0.3"),
                ("fields.s.null_rate", "0.1"),
                ("fields.s.length", "4"),
                ("fields.always.null_rate", "1"),
            ],
            &schema,
            0,
            1,
            1000,
        )
        .await;
        let share = |i: usize| batch.column(i).null_count() as f64 / 20000.0;
        assert!((0.28..0.32).contains(&share(0)), "{}", share(0));
        assert!((0.09..0.11).contains(&share(1)), "{}", share(1));
        assert_eq!(share(2), 0.0);
        assert_eq!(share(3), 1.0);
        // Null strings take no bytes; the others keep their length.
        let s = batch.column(1).as_string::<i32>();
        assert!(s.iter().flatten().all(|v| v.len() == 4));
        assert_eq!(s.values().len(), 4 * (20000 - s.null_count()));
    }

    #[tokio::test]
    async fn bounded_row_count_is_exact_across_partitions() {
        let schema = schema(&[("id", DataType::Int64), ("v", DataType::Int32)]);
        let options = [
            ("number_of_rows", "10001"),
            ("rows_per_second", "1e9"),
            ("fields.id.kind", "sequence"),
        ];
        let mut ids = Vec::new();
        for partition in 0..2 {
            let mut source =
                DatagenSource::new(&table(&options), ctx(schema.clone(), partition, 2, 1000))
                    .unwrap();
            let batches = drain(&mut source).await;
            let count: usize = batches.iter().map(|b| b.num_rows()).sum();
            assert_eq!(count, [5001, 5000][partition]);
            assert!(batches.iter().all(|b| b.num_rows() <= 1000));
            assert_eq!(source.snapshot(), serde_json::json!({ "emitted": count }));
            assert!(source.next_batch().await.unwrap().is_none());
            for batch in &batches {
                ids.extend(
                    batch
                        .column(0)
                        .as_primitive::<Int64Type>()
                        .values()
                        .iter()
                        .copied(),
                );
            }
        }
        ids.sort_unstable();
        assert_eq!(ids, (0..10001).collect::<Vec<i64>>(), "each row once");
    }

    #[tokio::test]
    async fn a_sequence_with_an_end_ends_the_table() {
        let schema = schema(&[("id", DataType::Int32), ("x", DataType::Utf8)]);
        let options = [
            ("rows_per_second", "1e9"),
            ("fields.id.kind", "sequence"),
            ("fields.id.start", "10"),
            ("fields.id.end", "109"),
            ("fields.x.length", "1"),
        ];
        let mut ids = Vec::new();
        for partition in 0..2 {
            let batch = rows(&options, &schema, partition, 2, 7).await;
            ids.extend(
                batch
                    .column(0)
                    .as_primitive::<Int32Type>()
                    .values()
                    .iter()
                    .copied(),
            );
        }
        ids.sort_unstable();
        assert_eq!(ids, (10..=109).collect::<Vec<i32>>());
        // number_of_rows cuts it shorter; min / max are the same as start / end.
        let batch = rows(
            &[
                ("number_of_rows", "5"),
                ("rows_per_second", "1e9"),
                ("fields.id.kind", "sequence"),
                ("fields.id.min", "-2"),
                ("fields.id.max", "100"),
            ],
            &schema,
            0,
            1,
            100,
        )
        .await;
        let ids = batch.column(0).as_primitive::<Int32Type>();
        assert_eq!(ids.values().as_ref(), &[-2, -1, 0, 1, 2]);
    }

    #[tokio::test]
    async fn an_endless_sequence_wraps_at_the_type_maximum() {
        let schema = schema(&[("n", DataType::Int8)]);
        let batch = rows(
            &[
                ("number_of_rows", "10"),
                ("rows_per_second", "1e9"),
                ("fields.n.kind", "sequence"),
                ("fields.n.start", "124"),
            ],
            &schema,
            0,
            1,
            3,
        )
        .await;
        let n = batch.column(0).as_primitive::<Int8Type>();
        assert_eq!(
            n.values().as_ref(),
            &[124, 125, 126, 127, 124, 125, 126, 127, 124, 125]
        );
    }

    #[tokio::test]
    async fn a_seed_gives_the_same_rows_however_they_are_batched() {
        let schema = schema(&[
            ("a", DataType::Int64),
            ("s", DataType::Utf8),
            ("b", DataType::Binary),
            ("f", DataType::Float64),
            ("flag", DataType::Boolean),
            ("d", DataType::Date32),
        ]);
        let options = |seed: &'static str| {
            vec![
                ("number_of_rows", "3000"),
                ("rows_per_second", "1e9"),
                ("seed", seed),
                ("fields.a.min", "0"),
                ("fields.a.max", "1000000"),
                ("fields.a.null_rate", "0.2"),
                ("fields.s.length", "7"),
                ("fields.s.null_rate", "0.5"),
                ("fields.b.length", "3"),
                ("fields.d.max_past", "3650 days"),
            ]
        };
        let one = rows(&options("42"), &schema, 1, 2, 1024).await;
        let again = rows(&options("42"), &schema, 1, 2, 7).await;
        assert_eq!(one, again);
        let other_seed = rows(&options("43"), &schema, 1, 2, 1024).await;
        let other_partition = rows(&options("42"), &schema, 0, 2, 1024).await;
        for i in 0..schema.fields().len() {
            assert_ne!(one.column(i), other_seed.column(i), "column {i}");
            assert_ne!(one.column(i), other_partition.column(i), "column {i}");
        }
        // No seed: the default one, so runs repeat too.
        let plain: Vec<(&str, &str)> = options("0")
            .into_iter()
            .filter(|(k, _)| *k != "seed")
            .collect();
        assert_eq!(
            rows(&plain, &schema, 0, 1, 100).await,
            rows(&options("0"), &schema, 0, 1, 1000).await
        );
    }

    #[tokio::test]
    async fn times_lie_between_max_past_and_now() {
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "now",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                false,
            ),
            Field::new(
                "recent",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                true,
            ),
            Field::new(
                "zoned",
                DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())),
                true,
            ),
            Field::new("day", DataType::Date32, true),
        ]));
        let before = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        let batch = rows(
            &[
                ("number_of_rows", "1000"),
                ("rows_per_second", "1e9"),
                ("fields.recent.max_past", "5s"),
                ("fields.zoned.max_past", "0"),
            ],
            &schema,
            0,
            1,
            1000,
        )
        .await;
        let after = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as i64;
        assert_eq!(batch.schema(), schema, "units and zones are kept");
        let now = batch.column(0).as_primitive::<TimestampNanosecondType>();
        assert!(now.values().iter().all(|t| (before..=after).contains(t)));
        let recent = batch.column(1).as_primitive::<TimestampMillisecondType>();
        let (low, high) = ((before - 5_000_000_000) / 1_000_000, after / 1_000_000);
        assert!(recent.values().iter().all(|t| (low..=high).contains(t)));
        let spread = recent.values().iter().max().unwrap() - recent.values().iter().min().unwrap();
        assert!(spread > 4_000, "spread over the 5 s: {spread} ms");
        let zoned = batch.column(2).as_primitive::<TimestampMicrosecondType>();
        assert!(
            zoned
                .values()
                .iter()
                .all(|t| (before / 1000..=after / 1000).contains(t))
        );
        let day = batch.column(3).as_primitive::<Date32Type>();
        let today = (before / 86_400_000_000_000) as i32;
        assert!(day.values().iter().all(|d| (today..=today + 1).contains(d)));
    }

    #[tokio::test]
    async fn a_table_paces_itself_and_runs_endless() {
        let schema = schema(&[("a", DataType::Int64)]);
        let mut source = DatagenSource::new(
            &table(&[("rows_per_second", "100")]),
            ctx(schema, 0, 1, 1000),
        )
        .unwrap();
        let started = std::time::Instant::now();
        let mut count = 0;
        while count < 10 {
            count += source.next_batch().await.unwrap().unwrap().num_rows();
        }
        assert!(count < 100, "{count} rows");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn unsupported_types_are_refused_with_the_supported_ones() {
        let err = plan_error(
            &[],
            &schema(&[
                ("a", DataType::Int64),
                ("span", DataType::Interval(IntervalUnit::MonthDayNano)),
            ]),
        );
        assert_eq!(
            err,
            "column 'span' has type INTERVAL, which connector 'datagen' cannot generate; \
             supported types: BIGINT, INT, SMALLINT, TINYINT, DOUBLE, FLOAT, BOOLEAN, TEXT, BYTEA, \
             TIMESTAMP, TIMESTAMPTZ, DATE"
        );
        let err = plan_error(&[], &schema(&[("u", DataType::UInt64)]));
        assert!(
            err.starts_with("column 'u' has type BIGINT UNSIGNED,"),
            "{err}"
        );
    }

    #[test]
    fn options_for_missing_columns_are_refused() {
        let bid = schema(&[("auction", DataType::Int64), ("price", DataType::Int64)]);
        assert_eq!(
            plan_error(&[("fields.bidder.min", "1")], &bid),
            "option 'fields.bidder' names no column of the table; its columns are auction, price"
        );
        assert_eq!(
            plan_error(&[("fields.prize.min", "1")], &bid),
            "option 'fields.prize' names no column of the table (did you mean 'price'?); \
             its columns are auction, price"
        );
        // Quoted mixed-case columns are found from lower-cased WITH keys and snake_cased REST keys.
        let camel = schema(&[("dateTime", DataType::Timestamp(TimeUnit::Nanosecond, None))]);
        assert!(plan(&table(&[("fields.datetime.max_past", "1s")]), &camel).is_ok());
        assert!(plan(&table(&[("fields.date_time.max_past", "1s")]), &camel).is_ok());
    }

    #[test]
    fn bad_values_name_the_option_the_value_and_what_is_valid() {
        let s = schema(&[
            ("price", DataType::Int64),
            ("tiny", DataType::Int8),
            ("score", DataType::Float64),
            ("name", DataType::Utf8),
            ("at", DataType::Timestamp(TimeUnit::Nanosecond, None)),
        ]);
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("fields.price.min", "10"), ("fields.price.max", "5")],
                "invalid value '10' for option 'fields.price.min' of connector 'datagen': \
                 expected a number no greater than fields.price.max (5)",
            ),
            (
                &[("fields.score.min", "3")],
                "invalid value '3' for option 'fields.score.min' of connector 'datagen': \
                 expected a number no greater than the default maximum 1 (or set fields.score.max)",
            ),
            (
                &[("fields.price.min", "1.5")],
                "invalid value '1.5' for option 'fields.price.min' of connector 'datagen': \
                 expected a whole number from -9223372036854775808 to 9223372036854775807 \
                 (column 'price' is BIGINT)",
            ),
            (
                &[("fields.tiny.max", "200")],
                "invalid value '200' for option 'fields.tiny.max' of connector 'datagen': \
                 expected a whole number from -128 to 127 (column 'tiny' is TINYINT)",
            ),
            (
                &[("fields.price.null_rate", "1.5")],
                "invalid value '1.5' for option 'fields.price.null_rate' of connector 'datagen': \
                 expected a number from 0 to 1",
            ),
            (
                &[("fields.score.kind", "sequence")],
                "invalid value 'sequence' for option 'fields.score.kind' of connector 'datagen': \
                 expected random: column 'score' is DOUBLE, and sequences are for BIGINT, INT, \
                 SMALLINT and TINYINT columns",
            ),
            (
                &[("fields.at.max_past", "a while")],
                "invalid value 'a while' for option 'fields.at.max_past' of connector 'datagen': \
                 expected a duration such as 500ms, 10s, '5 seconds', 5m or 1h",
            ),
            (
                &[("fields.name.min", "1")],
                "option 'fields.name.min' does not apply to column 'name' of type TEXT; it \
                 applies to BIGINT, INT, SMALLINT, TINYINT, DOUBLE and FLOAT columns",
            ),
            (
                &[("fields.price.length", "4")],
                "option 'fields.price.length' does not apply to column 'price' of type BIGINT; \
                 it applies to TEXT and BYTEA columns",
            ),
            (
                &[("fields.name.max_past", "1s")],
                "option 'fields.name.max_past' does not apply to column 'name' of type TEXT; it \
                 applies to TIMESTAMP and DATE columns",
            ),
            (
                &[("fields.price.start", "1")],
                "option 'fields.price.start' needs fields.price.kind = 'sequence' (random values \
                 take min and max)",
            ),
            (
                &[
                    ("fields.price.kind", "sequence"),
                    ("fields.price.start", "1"),
                    ("fields.price.min", "1"),
                ],
                "options 'fields.price.start' and 'fields.price.min' mean the same; give one of them",
            ),
            (
                &[
                    ("fields.price.kind", "sequence"),
                    ("fields.price.end", "-1"),
                ],
                "invalid value '-1' for option 'fields.price.end' of connector 'datagen': \
                 expected a number no less than the default minimum 0 (or set fields.price.min)",
            ),
            (
                &[
                    ("fields.score.min", "-1e308"),
                    ("fields.score.max", "1e308"),
                ],
                "invalid value '1e308' for option 'fields.score.max' of connector 'datagen': \
                 expected a number closer to fields.score.min (-1e308): max - min must be finite",
            ),
        ];
        for (options, expected) in cases {
            assert_eq!(plan_error(options, &s), *expected, "{options:?}");
        }
        let err = check_rate(-1.0).unwrap_err().to_string();
        assert_eq!(
            err,
            "invalid value '-1' for option 'rows_per_second' of connector 'datagen': expected a number greater than 0"
        );
        let not_null = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        assert_eq!(
            plan_error(&[("fields.id.null_rate", "0.5")], &not_null),
            "option 'fields.id.null_rate' must be 0: column 'id' is NOT NULL"
        );
    }
}
