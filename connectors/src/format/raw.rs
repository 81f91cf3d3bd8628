//! `raw_string` / `raw_bytes`: the whole record in one `value` column.

use std::sync::Arc;

use arrow::array::{ArrayRef, BinaryArray, StringArray};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::decode::BatchDecoder;
use crate::error::{ConnectorError, Result};

pub(crate) struct RawDecoder {
    schema: SchemaRef,
    binary: bool,
}

impl RawDecoder {
    pub(crate) fn new(schema: SchemaRef, binary: bool) -> Result<Self> {
        let expected = if binary {
            DataType::Binary
        } else {
            DataType::Utf8
        };
        if schema.fields().len() != 1 || schema.field(0).data_type() != &expected {
            let (format, ty) = if binary {
                ("raw_bytes", "BYTEA")
            } else {
                ("raw_string", "TEXT")
            };
            return Err(ConnectorError::Config(format!(
                "format '{format}' needs exactly one {ty} column (e.g. value {ty})"
            )));
        }
        Ok(RawDecoder { schema, binary })
    }
}

impl BatchDecoder for RawDecoder {
    fn decode(&self, records: &[&[u8]]) -> std::result::Result<RecordBatch, String> {
        let column: ArrayRef = if self.binary {
            Arc::new(BinaryArray::from_iter_values(records.iter().copied()))
        } else {
            let mut values = Vec::with_capacity(records.len());
            for record in records {
                values
                    .push(std::str::from_utf8(record).map_err(|e| format!("invalid UTF-8: {e}"))?);
            }
            Arc::new(StringArray::from(values))
        };
        RecordBatch::try_new(self.schema.clone(), vec![column]).map_err(|e| e.to_string())
    }
}
