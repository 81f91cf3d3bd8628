//! Arrow batches as Postgres rows, through `arrow-pg`.

use std::sync::Arc;

use arrow::array::{AsArray, StringArray};
use arrow::datatypes::{
    DataType, Date32Type, Field, Float32Type, Float64Type, Schema, TimeUnit,
    TimestampMicrosecondType,
};
use arrow::record_batch::RecordBatch;
use arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
use engine::sql::naming::display_name;
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::data::{DataRow, FieldDescription, RowDescription};

/// Postgres column descriptions of an Arrow schema, in the requested formats.
pub(crate) fn pg_fields(schema: &Schema, format: &Format) -> PgWireResult<Arc<Vec<FieldInfo>>> {
    let schema = wire_schema(schema);
    Ok(Arc::new(arrow_schema_to_pg_fields(&schema, format, None)?))
}

/// The Arrow type a column travels as. Postgres has no 1-byte or unsigned integers:
/// arrow-pg describes Int8 as int2 but writes one byte in binary format, so small and
/// unsigned integers widen to the next signed type that holds them; untyped NULLs are text.
fn wire_type(data_type: &DataType) -> Option<DataType> {
    match data_type {
        DataType::Int8 | DataType::UInt8 => Some(DataType::Int16),
        DataType::UInt16 => Some(DataType::Int32),
        DataType::UInt32 => Some(DataType::Int64),
        // An untyped value (`SELECT $1`, `SELECT NULL`) is text, as in PostgreSQL.
        DataType::Null => Some(DataType::Utf8),
        _ => None,
    }
}

/// `schema` as clients see it: wire types, and repeated names as written (see
/// [`display_name`]).
fn wire_schema(schema: &Schema) -> Schema {
    let renamed = |f: &Field| display_name(f.name()).len() != f.name().len();
    if !schema
        .fields()
        .iter()
        .any(|f| wire_type(f.data_type()).is_some() || renamed(f))
    {
        return schema.clone();
    }
    Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| {
                let mut field = f.as_ref().clone();
                if let Some(t) = wire_type(f.data_type()) {
                    field = field.with_data_type(t);
                }
                if renamed(f) {
                    field = field.with_name(display_name(f.name()));
                }
                Arc::new(field)
            })
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    )
}

/// `batch` with its columns in their wire types (see [`wire_type`]).
fn wire_batch(batch: RecordBatch) -> PgWireResult<RecordBatch> {
    let schema = batch.schema();
    if !schema
        .fields()
        .iter()
        .any(|f| wire_type(f.data_type()).is_some())
    {
        return Ok(batch);
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| match wire_type(field.data_type()) {
            Some(t) => arrow::compute::cast(column, &t),
            None => Ok(column.clone()),
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
    RecordBatch::try_new(Arc::new(wire_schema(&schema)), columns)
        .map_err(|e| PgWireError::ApiError(Box::new(e)))
}

/// The RowDescription message for `fields`.
pub(crate) fn row_description(fields: &[FieldInfo]) -> RowDescription {
    RowDescription::new(fields.iter().map(FieldDescription::from).collect())
}

/// Days from 1970-01-01 back to 0001-01-01: earlier dates are BC.
const FIRST_AD_DAY: i32 = -719_162;

/// A date or timestamp before year 1 as PostgreSQL writes it in text: `0044-03-15 BC`
/// (year 0 is 1 BC), where Arrow writes `-0043-03-15`, which drivers cannot parse.
fn before_christ_text(t: chrono::NaiveDateTime, with_time: bool, zone: bool) -> String {
    use chrono::{Datelike, Timelike};
    let mut text = format!("{:04}-{:02}-{:02}", 1 - t.year(), t.month(), t.day());
    if with_time {
        text.push_str(&format!(" {}", t.time().format("%H:%M:%S")));
        if t.nanosecond() != 0 {
            let micros = format!("{:06}", t.nanosecond() / 1_000);
            text.push('.');
            text.push_str(micros.trim_end_matches('0'));
        }
        if zone {
            text.push_str("+00");
        }
    }
    text.push_str(" BC");
    text
}

/// Text format where PostgreSQL writes values differently from Arrow: infinite floats
/// (`Infinity`, not `inf`, which pgJDBC and node-postgres cannot parse) and dates before
/// year 1. Only columns holding such a value change.
fn postgres_text(fields: &[FieldInfo], batch: RecordBatch) -> PgWireResult<RecordBatch> {
    fn text<F: std::fmt::Display + PartialOrd + Default>(v: F, infinite: bool) -> String {
        match (infinite, v > F::default()) {
            (true, true) => "Infinity".to_string(),
            (true, false) => "-Infinity".to_string(),
            (false, _) => v.to_string(),
        }
    }
    let mut columns = batch.columns().to_vec();
    let mut changed = false;
    for (i, column) in batch.columns().iter().enumerate() {
        let text_format = fields
            .get(i)
            .is_some_and(|f| f.format() == FieldFormat::Text);
        if !text_format {
            continue;
        }
        // Look first, without copying: columns with no infinity (nearly all) stay as they are.
        let strings: Option<StringArray> = match column.data_type() {
            DataType::Float64 => {
                let values = column.as_primitive::<Float64Type>();
                values.values().iter().any(|v| v.is_infinite()).then(|| {
                    values
                        .iter()
                        .map(|v| v.map(|v| text(v, v.is_infinite())))
                        .collect()
                })
            }
            DataType::Float32 => {
                let values = column.as_primitive::<Float32Type>();
                values.values().iter().any(|v| v.is_infinite()).then(|| {
                    values
                        .iter()
                        .map(|v| v.map(|v| text(v, v.is_infinite())))
                        .collect()
                })
            }
            DataType::Date32 => {
                let values = column.as_primitive::<Date32Type>();
                let epoch = chrono::DateTime::UNIX_EPOCH.naive_utc();
                values.values().iter().any(|d| *d < FIRST_AD_DAY).then(|| {
                    values
                        .iter()
                        .map(|d| {
                            let date = epoch + chrono::Duration::days(i64::from(d?));
                            Some(match d? < FIRST_AD_DAY {
                                true => before_christ_text(date, false, false),
                                false => date.date().to_string(),
                            })
                        })
                        .collect()
                })
            }
            DataType::Timestamp(TimeUnit::Microsecond, zone) => {
                let values = column.as_primitive::<TimestampMicrosecondType>();
                let first_ad = i64::from(FIRST_AD_DAY) * 86_400_000_000;
                values.values().iter().any(|t| *t < first_ad).then(|| {
                    values
                        .iter()
                        .map(|t| {
                            let at = chrono::DateTime::from_timestamp_micros(t?)?.naive_utc();
                            Some(match t? < first_ad {
                                true => before_christ_text(at, true, zone.is_some()),
                                false if zone.is_some() => {
                                    format!("{}+00", at.format("%Y-%m-%d %H:%M:%S%.f"))
                                }
                                false => at.format("%Y-%m-%d %H:%M:%S%.f").to_string(),
                            })
                        })
                        .collect()
                })
            }
            _ => None,
        };
        if let Some(strings) = strings {
            columns[i] = Arc::new(strings);
            changed = true;
        }
    }
    if !changed {
        return Ok(batch);
    }
    // Text format writes a string column's characters; the column keeps its type in
    // RowDescription.
    let schema = Arc::new(Schema::new(
        batch
            .schema()
            .fields()
            .iter()
            .zip(&columns)
            .map(|(f, c)| f.as_ref().clone().with_data_type(c.data_type().clone()))
            .collect::<Vec<_>>(),
    ));
    RecordBatch::try_new(schema, columns).map_err(|e| PgWireError::ApiError(Box::new(e)))
}

/// Encode every row of `batch`.
pub(crate) fn encode(
    fields: &Arc<Vec<FieldInfo>>,
    batch: RecordBatch,
) -> impl Iterator<Item = PgWireResult<DataRow>> + use<> {
    let batch = wire_batch(batch).and_then(|b| postgres_text(fields, b));
    let (batch, error) = match batch {
        Ok(batch) => (Some(batch), None),
        Err(e) => (None, Some(Err(e))),
    };
    error.into_iter().chain(batch.into_iter().flat_map({
        let fields = fields.clone();
        move |b| encode_recordbatch(fields.clone(), b)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_before_year_one_are_bc() {
        let at = |y, m, d| {
            chrono::NaiveDate::from_ymd_opt(y, m, d)
                .unwrap()
                .and_hms_micro_opt(12, 0, 0, 500_000)
                .unwrap()
        };
        assert_eq!(
            before_christ_text(at(-43, 3, 15), false, false),
            "0044-03-15 BC"
        );
        assert_eq!(
            before_christ_text(at(0, 1, 1), true, true),
            "0001-01-01 12:00:00.5+00 BC"
        );
        let first = chrono::NaiveDate::from_ymd_opt(1, 1, 1).unwrap();
        let epoch = chrono::DateTime::UNIX_EPOCH.date_naive();
        assert_eq!((first - epoch).num_days(), i64::from(FIRST_AD_DAY));
    }
}
