//! Dead-letter tables: records a source could not decode (`bad_data = 'dlq'`) are written to
//! the sink table named by `dlq.table`, one row per record.
//!
//! Columns are filled by name: `table_name`, `position`, `error`, `raw` (TEXT or BYTEA) and
//! `failed_at` (TIMESTAMP); any other column is NULL.

use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryArray, StringArray, TimestampNanosecondArray, new_null_array};
use arrow::compute::cast;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use connectors::format::BadRecord;

use crate::error::{EngineError, Result};

/// Column names a dead-letter table can use.
pub const DLQ_COLUMNS: [&str; 5] = ["table_name", "position", "error", "raw", "failed_at"];

/// Check a dead-letter table's columns: at least one known, the rest nullable.
pub fn check_dlq_schema(dlq: &str, schema: &SchemaRef) -> Result<()> {
    if !schema
        .fields()
        .iter()
        .any(|f| DLQ_COLUMNS.contains(&f.name().as_str()))
    {
        return Err(EngineError::InvalidParameter(format!(
            "dead-letter table '{dlq}' needs at least one of the columns {}",
            DLQ_COLUMNS.join(", ")
        )));
    }
    if let Some(f) = schema
        .fields()
        .iter()
        .find(|f| !DLQ_COLUMNS.contains(&f.name().as_str()) && !f.is_nullable())
    {
        return Err(EngineError::InvalidParameter(format!(
            "column '{}' of dead-letter table '{dlq}' must be nullable: only {} are filled",
            f.name(),
            DLQ_COLUMNS.join(", ")
        )));
    }
    Ok(())
}

/// One row per bad record, in the dead-letter table's schema.
pub fn dead_letter_batch(
    schema: &SchemaRef,
    table: &str,
    records: &[BadRecord],
) -> Result<RecordBatch> {
    let n = records.len();
    let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let text = |values: Vec<&str>| -> ArrayRef { Arc::new(StringArray::from(values)) };
        let column: ArrayRef = match field.name().as_str() {
            "table_name" => text(vec![table; n]),
            "position" => text(records.iter().map(|r| r.position.as_str()).collect()),
            "error" => text(records.iter().map(|r| r.reason.as_str()).collect()),
            "raw" if field.data_type() == &DataType::Binary => Arc::new(
                BinaryArray::from_iter_values(records.iter().map(|r| r.raw.as_slice())),
            ),
            "raw" => Arc::new(StringArray::from_iter_values(
                records
                    .iter()
                    .map(|r| String::from_utf8_lossy(&r.raw).into_owned()),
            )),
            "failed_at" => Arc::new(TimestampNanosecondArray::from_value(now, n)),
            _ => new_null_array(field.data_type(), n),
        };
        let column = if column.data_type() == field.data_type() {
            column
        } else {
            cast(&column, field.data_type()).map_err(|e| {
                EngineError::InvalidParameter(format!("dead-letter column '{}': {e}", field.name()))
            })?
        };
        columns.push(column);
    }
    RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| EngineError::InvalidParameter(format!("dead-letter batch: {e}")))
}
