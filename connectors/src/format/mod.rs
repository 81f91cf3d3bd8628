//! Formats: how rows become bytes and back, independent of transports.
//!
//! A table's format is its `format` option plus the `json.*`, `avro.*`, `parquet.*`,
//! `csv.*` and `framing.*` sub-options, and its `bad_data` policy. Transports hand records
//! (a message, a line) to a [`RecordDecoder`], which builds Arrow batches and applies the
//! bad-data policy; sinks turn batches back into records with a [`RecordEncoder`].

pub mod avro;
mod debezium;
mod decode;
mod encode;
#[cfg(any(feature = "filesystem", feature = "kafka"))]
pub(crate) mod infer;
mod json;
mod raw;

#[cfg(feature = "filesystem")]
pub(crate) use decode::follow_policy;
pub use decode::{BadRecord, RecordDecoder};
pub use encode::{CHANGE_COLUMN, RecordEncoder};

/// Whether a table's JSON is `json.unstructured = true`.
pub fn json_unstructured(spec: &FormatSpec) -> crate::error::Result<bool> {
    json::unstructured(spec)
}

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{ConnectorError, Result};
use crate::options::hint_for;

/// The serialization of a table's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// One JSON object per record.
    Json,
    /// Debezium change events in JSON.
    DebeziumJson,
    /// Avro, inline schema or Confluent schema registry.
    Avro,
    /// Parquet files.
    Parquet,
    /// CSV files.
    Csv,
    /// The whole record as one UTF-8 `value` column.
    RawString,
    /// The whole record as one binary `value` column.
    RawBytes,
}

impl Format {
    /// Every format name, as written in `format = '...'`.
    pub const NAMES: [&'static str; 7] = [
        "json",
        "debezium_json",
        "avro",
        "parquet",
        "csv",
        "raw_string",
        "raw_bytes",
    ];

    /// Parse `format = '...'`.
    pub fn parse(connector: &str, name: &str) -> Result<Format> {
        serde_json::from_value(serde_json::Value::String(name.to_ascii_lowercase())).map_err(|_| {
            ConnectorError::InvalidValue {
                connector: connector.to_string(),
                key: "format".to_string(),
                value: name.to_string(),
                expected: format!("one of {}", Format::NAMES.join(", ")),
            }
        })
    }

    /// The name as written in SQL.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::DebeziumJson => "debezium_json",
            Format::Avro => "avro",
            Format::Parquet => "parquet",
            Format::Csv => "csv",
            Format::RawString => "raw_string",
            Format::RawBytes => "raw_bytes",
        }
    }
}

/// What a source does with a record it cannot decode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum BadData {
    /// Stop the pipeline with an error naming the record.
    #[default]
    Fail,
    /// Skip the record and count it.
    Drop,
    /// Write the record to the dead-letter table.
    Dlq,
}

/// Sub-options each format understands (`json.timestamp_format`, ...).
const FORMAT_OPTIONS: &[&str] = &[
    "json.timestamp_format",
    "json.unstructured",
    "json.include_schema",
    "json.confluent_schema_registry",
    "json.decimal_encoding",
    "json.compression",
    "avro.confluent_schema_registry",
    "avro.raw_datums",
    "avro.into_unstructured_json",
    "avro.schema",
    "parquet.compression",
    "parquet.row_group_size",
    "csv.delimiter",
    "csv.quote",
    "csv.escape",
    "csv.header",
    "csv.null_string",
    "framing",
    "framing.newline.max_length",
    "dlq.table",
];

/// A table's format, its sub-options and its bad-data policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct FormatSpec {
    /// The record format, if the connector carries bytes.
    pub format: Option<Format>,
    /// What to do with records that cannot be decoded.
    #[serde(default)]
    pub bad_data: BadData,
    /// Format sub-options by their dotted SQL name.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

impl FormatSpec {
    /// Whether `key` is a format sub-option (so it is not passed to the connector).
    pub fn is_format_option(key: &str) -> bool {
        ["json.", "avro.", "parquet.", "csv.", "framing", "dlq."]
            .iter()
            .any(|p| key.starts_with(p))
    }

    /// Check a sub-option's name.
    pub fn check_option(key: &str) -> Result<()> {
        if FORMAT_OPTIONS.contains(&key) {
            Ok(())
        } else {
            Err(ConnectorError::UnknownOption {
                connector: "table".to_string(),
                key: key.to_string(),
                hint: hint_for(key, FORMAT_OPTIONS.iter().copied()),
            })
        }
    }

    /// Parse `bad_data = '...'`.
    pub fn parse_bad_data(connector: &str, value: &str) -> Result<BadData> {
        serde_json::from_value(serde_json::Value::String(value.to_ascii_lowercase())).map_err(
            |_| ConnectorError::InvalidValue {
                connector: connector.to_string(),
                key: "bad_data".to_string(),
                value: value.to_string(),
                expected: "one of fail, drop, dlq".to_string(),
            },
        )
    }
}
