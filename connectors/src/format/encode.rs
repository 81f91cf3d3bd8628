//! Arrow batches → records, one per row, newline-terminated.

use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::json::TimestampFormat;
use super::{Format, FormatSpec};
use crate::error::{ConnectorError, Result};

/// Encodes batches into newline-delimited records.
#[derive(Debug)]
pub struct RecordEncoder {
    format: Format,
    timestamps: TimestampFormat,
}

impl RecordEncoder {
    /// An encoder for a sink table's format (`json` by default).
    pub fn new(spec: &FormatSpec, schema: &SchemaRef) -> Result<Self> {
        let format = spec.format.unwrap_or(Format::Json);
        match format {
            Format::Json => {}
            Format::RawString | Format::RawBytes => {
                let expected = if format == Format::RawBytes {
                    DataType::Binary
                } else {
                    DataType::Utf8
                };
                if schema.fields().len() != 1 || schema.field(0).data_type() != &expected {
                    return Err(ConnectorError::Config(format!(
                        "format '{}' writes exactly one {} column",
                        format.name(),
                        if format == Format::RawBytes {
                            "BYTEA"
                        } else {
                            "TEXT"
                        }
                    )));
                }
            }
            other => {
                return Err(ConnectorError::Config(format!(
                    "format '{}' cannot be written record by record",
                    other.name()
                )));
            }
        }
        Ok(RecordEncoder {
            format,
            timestamps: TimestampFormat::of(spec)?,
        })
    }

    /// Append every row of `batch` to `out`, one line each.
    pub fn encode(&self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        match self.format {
            Format::RawString | Format::RawBytes => {
                let column = batch.column(0);
                for i in 0..column.len() {
                    if column.is_null(i) {
                        out.push(b'\n');
                        continue;
                    }
                    match column.data_type() {
                        DataType::Binary => {
                            out.extend_from_slice(column.as_binary::<i32>().value(i))
                        }
                        _ => out.extend_from_slice(column.as_string::<i32>().value(i).as_bytes()),
                    }
                    out.push(b'\n');
                }
                Ok(())
            }
            _ => {
                let batch = self.json_ready(batch)?;
                let mut writer = arrow_json::LineDelimitedWriter::new(out);
                writer.write(&batch)?;
                writer.finish()?;
                Ok(())
            }
        }
    }

    /// With `json.timestamp_format = unix_millis`, timestamps are written as integers.
    fn json_ready(&self, batch: &RecordBatch) -> Result<RecordBatch> {
        if self.timestamps == TimestampFormat::Rfc3339 {
            return Ok(batch.clone());
        }
        let mut fields = Vec::with_capacity(batch.num_columns());
        let mut columns = Vec::with_capacity(batch.num_columns());
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            if let DataType::Timestamp(_, tz) = field.data_type() {
                let millis = cast(
                    column,
                    &DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, tz.clone()),
                )?;
                columns.push(cast(&millis, &DataType::Int64)?);
                fields.push(field.as_ref().clone().with_data_type(DataType::Int64));
            } else {
                columns.push(column.clone());
                fields.push(field.as_ref().clone());
            }
        }
        Ok(RecordBatch::try_new(
            std::sync::Arc::new(arrow::datatypes::Schema::new(fields)),
            columns,
        )?)
    }
}
