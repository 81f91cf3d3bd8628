//! Arrow batches as Postgres rows, through `arrow-pg`.

use std::sync::Arc;

use arrow::datatypes::{DataType, Schema};
use arrow::record_batch::RecordBatch;
use arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
use pgwire::api::portal::Format;
use pgwire::api::results::FieldInfo;
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

/// Encode every row of `batch`.
pub(crate) fn encode(
    fields: &Arc<Vec<FieldInfo>>,
    batch: RecordBatch,
) -> impl Iterator<Item = PgWireResult<DataRow>> + use<> {
    let (batch, error) = match wire_batch(batch) {
        Ok(batch) => (Some(batch), None),
        Err(e) => (None, Some(Err(e))),
    };
    error.into_iter().chain(batch.into_iter().flat_map({
        let fields = fields.clone();
        move |b| encode_recordbatch(fields.clone(), b)
    }))
}
