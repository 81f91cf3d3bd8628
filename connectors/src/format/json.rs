//! JSON: one object per record, decoded by arrow-json's batch decoder.

use std::sync::Arc;

use arrow::array::{ArrayRef, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use arrow_json::ReaderBuilder;

use super::FormatSpec;
use super::decode::BatchDecoder;
use crate::error::{ConnectorError, Result};

/// How timestamps are written in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TimestampFormat {
    /// RFC 3339 strings (`2024-01-01T00:00:00Z`).
    Rfc3339,
    /// Integer milliseconds since the epoch.
    UnixMillis,
}

impl TimestampFormat {
    pub(crate) fn of(spec: &FormatSpec) -> Result<Self> {
        match spec
            .options
            .get("json.timestamp_format")
            .map(String::as_str)
        {
            None | Some("rfc3339") => Ok(TimestampFormat::Rfc3339),
            Some("unix_millis") => Ok(TimestampFormat::UnixMillis),
            Some(other) => Err(ConnectorError::InvalidValue {
                connector: "json".into(),
                key: "json.timestamp_format".into(),
                value: other.into(),
                expected: "one of rfc3339, unix_millis".into(),
            }),
        }
    }
}

/// Whether `json.unstructured = true`: the whole object lands in one TEXT column.
pub(crate) fn unstructured(spec: &FormatSpec) -> Result<bool> {
    match spec
        .options
        .get("json.unstructured")
        .map(|v| v.to_ascii_lowercase())
    {
        None => Ok(false),
        Some(v) if v == "true" => Ok(true),
        Some(v) if v == "false" => Ok(false),
        Some(v) => Err(ConnectorError::InvalidValue {
            connector: "json".into(),
            key: "json.unstructured".into(),
            value: v,
            expected: "a boolean (true or false)".into(),
        }),
    }
}

/// The schema arrow-json decodes into: with `unix_millis`, top-level timestamps are read as
/// millisecond timestamps (arrow-json takes integers in the column's unit) and cast after.
fn decode_schema(schema: &Schema, format: TimestampFormat) -> SchemaRef {
    if format == TimestampFormat::Rfc3339 {
        return Arc::new(schema.clone());
    }
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Timestamp(_, tz) => f
                .as_ref()
                .clone()
                .with_data_type(DataType::Timestamp(TimeUnit::Millisecond, tz.clone())),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new(fields))
}

pub(crate) struct JsonDecoder {
    schema: SchemaRef,
    decode_schema: SchemaRef,
    unstructured: bool,
}

impl JsonDecoder {
    pub(crate) fn new(spec: &FormatSpec, schema: SchemaRef) -> Result<Self> {
        let unstructured = unstructured(spec)?;
        if unstructured
            && (schema.fields().len() != 1 || schema.field(0).data_type() != &DataType::Utf8)
        {
            return Err(ConnectorError::Config(
                "json.unstructured = true needs exactly one TEXT column (e.g. value TEXT)".into(),
            ));
        }
        let decode_schema = decode_schema(&schema, TimestampFormat::of(spec)?);
        Ok(JsonDecoder {
            schema,
            decode_schema,
            unstructured,
        })
    }

    fn decode_unstructured(&self, records: &[&[u8]]) -> std::result::Result<RecordBatch, String> {
        let mut values = Vec::with_capacity(records.len());
        for record in records {
            serde_json::from_slice::<serde::de::IgnoredAny>(record)
                .map_err(|e| format!("invalid JSON: {e}"))?;
            values.push(
                std::str::from_utf8(record)
                    .map_err(|e| e.to_string())?
                    .trim(),
            );
        }
        let column: ArrayRef = Arc::new(StringArray::from(values));
        RecordBatch::try_new(self.schema.clone(), vec![column]).map_err(|e| e.to_string())
    }
}

impl BatchDecoder for JsonDecoder {
    fn decode(&self, records: &[&[u8]]) -> std::result::Result<RecordBatch, String> {
        if self.unstructured {
            return self.decode_unstructured(records);
        }
        let mut decoder = ReaderBuilder::new(self.decode_schema.clone())
            .with_batch_size(records.len().max(1))
            .build_decoder()
            .map_err(|e| e.to_string())?;
        for record in records {
            let consumed = decoder.decode(record).map_err(|e| e.to_string())?;
            if consumed < record.len() {
                return Err("more than one JSON value in the record".into());
            }
            // A record must end its value: the separator makes a truncated one an error here.
            decoder.decode(b"\n").map_err(|e| e.to_string())?;
        }
        let batch = decoder
            .flush()
            .map_err(|e| e.to_string())?
            .unwrap_or_else(|| RecordBatch::new_empty(self.decode_schema.clone()));
        if batch.num_rows() != records.len() {
            return Err(format!(
                "expected one JSON object per record, found {} in {} records",
                batch.num_rows(),
                records.len()
            ));
        }
        if Arc::ptr_eq(&self.decode_schema, &self.schema) || self.decode_schema == self.schema {
            return Ok(batch);
        }
        let columns = batch
            .columns()
            .iter()
            .zip(self.schema.fields())
            .map(|(column, field)| cast(column, field.data_type()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        RecordBatch::try_new(self.schema.clone(), columns).map_err(|e| e.to_string())
    }
}
