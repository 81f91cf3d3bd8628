//! Arrow batches as Postgres rows, through `arrow-pg`.

use std::sync::Arc;

use arrow::array::{AsArray, StringArray};
use arrow::datatypes::{DataType, Float32Type, Float64Type, Schema};
use arrow::record_batch::RecordBatch;
use arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
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

fn wire_schema(schema: &Schema) -> Schema {
    if !schema
        .fields()
        .iter()
        .any(|f| wire_type(f.data_type()).is_some())
    {
        return schema.clone();
    }
    Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| match wire_type(f.data_type()) {
                Some(t) => Arc::new(f.as_ref().clone().with_data_type(t)),
                None => f.clone(),
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

/// Infinite floats in text format as PostgreSQL writes them (`Infinity`, not `inf`,
/// which pgJDBC and node-postgres cannot parse). Only columns holding one change.
fn postgres_float_text(fields: &[FieldInfo], batch: RecordBatch) -> PgWireResult<RecordBatch> {
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
    // Text format writes a string column's characters; the column keeps its float8 type
    // in RowDescription.
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
    let batch = wire_batch(batch).and_then(|b| postgres_float_text(fields, b));
    let (batch, error) = match batch {
        Ok(batch) => (Some(batch), None),
        Err(e) => (None, Some(Err(e))),
    };
    error.into_iter().chain(batch.into_iter().flat_map({
        let fields = fields.clone();
        move |b| encode_recordbatch(fields.clone(), b)
    }))
}
