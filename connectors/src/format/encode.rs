//! Arrow batches → records, one per row, newline-terminated.

use arrow::array::{Array, AsArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::json::TimestampFormat;
use super::{Format, FormatSpec};
use crate::error::{ConnectorError, Result};

/// The column an updating query's rows carry their change kind in.
pub const CHANGE_COLUMN: &str = "_op";

/// Encodes batches into newline-delimited records.
#[derive(Debug)]
pub struct RecordEncoder {
    format: Format,
    timestamps: TimestampFormat,
    avro: Option<Box<super::avro::AvroEncoder>>,
}

impl RecordEncoder {
    /// An encoder for a sink table's format (`json` by default).
    pub fn new(spec: &FormatSpec, schema: &SchemaRef) -> Result<Self> {
        let format = spec.format.unwrap_or(Format::Json);
        let mut avro = None;
        match format {
            Format::Json | Format::DebeziumJson => {}
            Format::Avro => avro = Some(Box::new(super::avro::AvroEncoder::new(spec, schema)?)),
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
            avro,
        })
    }

    /// The Avro writer schema (JSON), for formats that have one.
    pub fn avro_schema(&self) -> Option<&str> {
        self.avro.as_ref().map(|a| a.schema_json.as_str())
    }

    /// The same encoder writing Avro in the Confluent wire format with schema `id`.
    pub fn with_schema_id(&self, id: u32) -> Result<Self> {
        Ok(RecordEncoder {
            format: self.format,
            timestamps: self.timestamps,
            avro: match &self.avro {
                Some(avro) => Some(Box::new(avro.with_schema_id(id)?)),
                None => None,
            },
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
            Format::DebeziumJson => self.encode_debezium(batch, out),
            Format::Avro => Err(ConnectorError::Config(
                "format 'avro' is written record by record (a message per row), not as lines"
                    .into(),
            )),
            _ => {
                let batch = self.json_ready(batch)?;
                let mut writer = arrow_json::LineDelimitedWriter::new(out);
                writer.write(&batch)?;
                writer.finish()?;
                Ok(())
            }
        }
    }

    /// Encode `batch` as separate records (one per row; one per change event for
    /// `debezium_json`), for transports that send records one by one: their bytes are
    /// appended to `out` and each one's range in `out` to `ranges`.
    pub fn encode_records(
        &self,
        batch: &RecordBatch,
        out: &mut Vec<u8>,
        ranges: &mut Vec<std::ops::Range<usize>>,
    ) -> Result<()> {
        if let Some(avro) = &self.avro {
            return avro.encode_records(batch, out, ranges);
        }
        match self.format {
            // Raw values may hold newlines: each value is its own record.
            Format::RawString | Format::RawBytes => {
                let column = batch.column(0);
                for i in 0..column.len() {
                    let start = out.len();
                    if column.is_valid(i) {
                        match column.data_type() {
                            DataType::Binary => {
                                out.extend_from_slice(column.as_binary::<i32>().value(i))
                            }
                            _ => {
                                out.extend_from_slice(column.as_string::<i32>().value(i).as_bytes())
                            }
                        }
                    }
                    ranges.push(start..out.len());
                }
                Ok(())
            }
            // JSON lines never hold a raw newline (JSON escapes them).
            _ => {
                let mut start = out.len();
                self.encode(batch, out)?;
                while let Some(newline) = out[start..].iter().position(|b| *b == b'\n') {
                    ranges.push(start..start + newline);
                    start += newline + 1;
                }
                Ok(())
            }
        }
    }

    /// Debezium change events: `{"before": row|null, "after": row|null, "op": "c"|"u"|"d"}`.
    /// Rows of an updating query carry their change kind in a last `_op` column (`+I`,
    /// `-U`, `+U`, `-D`); an update's `-U` and `+U` rows become one `u` event. Rows of an
    /// append-only query are all creates.
    fn encode_debezium(&self, batch: &RecordBatch, out: &mut Vec<u8>) -> Result<()> {
        let schema = batch.schema();
        let ops = match schema.fields().last() {
            Some(f) if f.name() == CHANGE_COLUMN && f.data_type() == &DataType::Utf8 => Some(
                batch
                    .column(batch.num_columns() - 1)
                    .as_string::<i32>()
                    .clone(),
            ),
            _ => None,
        };
        let data = match ops {
            Some(_) => batch.project(&(0..batch.num_columns() - 1).collect::<Vec<_>>())?,
            None => batch.clone(),
        };
        let data = self.json_ready(&data)?;
        let mut lines = Vec::new();
        let mut writer = arrow_json::LineDelimitedWriter::new(&mut lines);
        writer.write(&data)?;
        writer.finish()?;
        let rows: Vec<&[u8]> = lines
            .split(|b| *b == b'\n')
            .take(batch.num_rows())
            .collect();
        let op = |i: usize| ops.as_ref().map_or("+I", |ops| ops.value(i));
        let mut i = 0;
        while i < rows.len() {
            let (before, after, kind, used) = match op(i) {
                "-U" if i + 1 < rows.len() && op(i + 1) == "+U" => {
                    (Some(rows[i]), Some(rows[i + 1]), "u", 2)
                }
                "-U" | "-D" => (Some(rows[i]), None, "d", 1),
                _ => (None, Some(rows[i]), "c", 1),
            };
            out.extend_from_slice(b"{\"before\":");
            out.extend_from_slice(before.unwrap_or(b"null"));
            out.extend_from_slice(b",\"after\":");
            out.extend_from_slice(after.unwrap_or(b"null"));
            out.extend_from_slice(b",\"op\":\"");
            out.extend_from_slice(kind.as_bytes());
            out.extend_from_slice(b"\"}\n");
            i += used;
        }
        Ok(())
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
