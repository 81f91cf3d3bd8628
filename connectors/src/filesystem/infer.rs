//! Columns of a table declared without a column list, from its first file.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::config::{Compression, FileSystemTable};
use super::paths::list_files;
use crate::error::{ConnectorError, Result};
use crate::format::{Format, FormatSpec};

/// Records sampled from the first file.
const SAMPLE_RECORDS: usize = 1000;

fn io(file: &std::path::Path, e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Io {
        connector: "filesystem".into(),
        message: format!("cannot infer the schema from {}: {e}", file.display()),
    }
}

/// Types Laminar stores and reads back: strings and binaries in their plain forms,
/// timestamps in nanoseconds (sources cast what they read to these).
fn normalize(data_type: &DataType) -> DataType {
    match data_type {
        DataType::LargeUtf8 | DataType::Utf8View => DataType::Utf8,
        DataType::LargeBinary | DataType::BinaryView => DataType::Binary,
        DataType::Timestamp(_, tz) => {
            DataType::Timestamp(arrow::datatypes::TimeUnit::Nanosecond, tz.clone())
        }
        DataType::Date64 => DataType::Date32,
        DataType::Null => DataType::Utf8,
        DataType::List(f) | DataType::LargeList(f) => {
            DataType::List(Arc::new(Field::new("item", normalize(f.data_type()), true)))
        }
        DataType::Struct(fields) => DataType::Struct(
            fields
                .iter()
                .map(|f| Field::new(f.name(), normalize(f.data_type()), true))
                .collect(),
        ),
        other => other.clone(),
    }
}

fn normalized(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), normalize(f.data_type()), true))
            .collect::<Vec<_>>(),
    ))
}

fn open(file: &std::path::Path, compression: Option<Compression>) -> Result<Box<dyn Read + Send>> {
    let raw = File::open(file).map_err(|e| io(file, e))?;
    let extension = file.extension().and_then(|e| e.to_str());
    Compression::reader(compression, extension, Box::new(raw)).map_err(|e| io(file, e))
}

/// Top-level keys of a JSON object in the order they are written (empty if not an object).
fn key_order(line: &str) -> Vec<String> {
    struct Keys(Vec<String>);
    impl<'de> serde::de::Visitor<'de> for &mut Keys {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> std::result::Result<(), A::Error> {
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<serde::de::IgnoredAny>()?;
                self.0.push(key);
            }
            Ok(())
        }
    }
    let mut keys = Keys(Vec::new());
    let mut de = serde_json::Deserializer::from_str(line);
    let _ = serde::Deserializer::deserialize_map(&mut de, &mut keys);
    keys.0
}

/// Infer from the first file `path` names; `None` if there is no file yet or the format
/// carries no structure to infer (raw formats, unstructured JSON).
pub(super) fn infer(table: &FileSystemTable, format: &FormatSpec) -> Result<Option<SchemaRef>> {
    let format_kind = format.format.unwrap_or(Format::Json);
    if matches!(format_kind, Format::RawString | Format::RawBytes) {
        return Ok(None);
    }
    let options = table.source.clone().unwrap_or_default();
    let pattern = options
        .regex_pattern
        .as_deref()
        .and_then(|p| regex::Regex::new(p).ok());
    let files = match list_files(&table.path, pattern.as_ref()) {
        Ok(files) => files,
        Err(_) => return Ok(None),
    };
    let Some(file) = files.first() else {
        return Ok(None);
    };
    let file = file.as_path();
    let schema = match format_kind {
        Format::Parquet => {
            let handle = File::open(file).map_err(|e| io(file, e))?;
            let builder =
                ParquetRecordBatchReaderBuilder::try_new(handle).map_err(|e| io(file, e))?;
            builder.schema().as_ref().clone()
        }
        Format::Csv => {
            let header = format
                .options
                .get("csv.header")
                .is_none_or(|h| h.eq_ignore_ascii_case("true"));
            let delimiter = format
                .options
                .get("csv.delimiter")
                .and_then(|d| d.bytes().next())
                .unwrap_or(b',');
            let (schema, _) = arrow_csv::reader::Format::default()
                .with_header(header)
                .with_delimiter(delimiter)
                .infer_schema(open(file, options.compression)?, Some(SAMPLE_RECORDS))
                .map_err(|e| io(file, e))?;
            schema
        }
        _ => {
            if crate::format::json_unstructured(format)? {
                return Ok(None);
            }
            // Sample records across files until enough are seen.
            let mut values = Vec::new();
            let mut order: Vec<String> = Vec::new();
            'files: for file in &files {
                let reader = BufReader::new(open(file, options.compression)?);
                for line in reader.lines() {
                    let line = line.map_err(|e| io(file, e))?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    for key in key_order(&line) {
                        if !order.contains(&key) {
                            order.push(key);
                        }
                    }
                    values.push(
                        serde_json::from_str::<serde_json::Value>(&line)
                            .map_err(|e| io(file, e))?,
                    );
                    if values.len() >= SAMPLE_RECORDS {
                        break 'files;
                    }
                }
            }
            let inferred =
                arrow_json::reader::infer_json_schema_from_iterator(values.iter().map(Ok))
                    .map_err(|e| io(file, e))?;
            // serde_json's maps are sorted; give the columns the order of the data.
            let fields: Vec<Field> = order
                .iter()
                .filter_map(|name| inferred.field_with_name(name).ok().cloned())
                .collect();
            Schema::new(fields)
        }
    };
    if schema.fields().is_empty() {
        return Ok(None);
    }
    Ok(Some(normalized(&schema)))
}
