//! Arrow batches as Postgres rows, through `arrow-pg`.

use std::sync::Arc;

use arrow::datatypes::Schema;
use arrow::record_batch::RecordBatch;
use arrow_pg::datatypes::{arrow_schema_to_pg_fields, encode_recordbatch};
use pgwire::api::portal::Format;
use pgwire::api::results::FieldInfo;
use pgwire::error::PgWireResult;
use pgwire::messages::data::{DataRow, FieldDescription, RowDescription};

/// Postgres column descriptions of an Arrow schema, in the requested formats.
pub(crate) fn pg_fields(schema: &Schema, format: &Format) -> PgWireResult<Arc<Vec<FieldInfo>>> {
    Ok(Arc::new(arrow_schema_to_pg_fields(schema, format, None)?))
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
    encode_recordbatch(fields.clone(), batch)
}
