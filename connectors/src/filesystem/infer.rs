//! Columns of a table declared without a column list, from its first file.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};

use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::config::{Compression, FileSystemTable};
use super::paths::list_files;
use crate::error::{ConnectorError, Result};
use crate::format::infer::{json_schema, normalized};
use crate::format::{Format, FormatSpec};

/// Records sampled from the first file.
const SAMPLE_RECORDS: usize = 1000;

fn io(file: &std::path::Path, e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Io {
        connector: "filesystem".into(),
        message: format!("cannot infer the schema from {}: {e}", file.display()),
    }
}

fn open(file: &std::path::Path, compression: Option<Compression>) -> Result<Box<dyn Read + Send>> {
    let raw = File::open(file).map_err(|e| io(file, e))?;
    let extension = file.extension().and_then(|e| e.to_str());
    Compression::reader(compression, extension, Box::new(raw)).map_err(|e| io(file, e))
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
            let mut lines = Vec::new();
            'files: for file in &files {
                let reader = BufReader::new(open(file, options.compression)?);
                for line in reader.lines() {
                    let line = line.map_err(|e| io(file, e))?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    lines.push(line);
                    if lines.len() >= SAMPLE_RECORDS {
                        break 'files;
                    }
                }
            }
            return json_schema(lines.iter().map(String::as_bytes)).map_err(|e| io(file, e));
        }
    };
    if schema.fields().is_empty() {
        return Ok(None);
    }
    Ok(Some(normalized(&schema)))
}
