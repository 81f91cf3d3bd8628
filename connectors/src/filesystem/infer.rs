//! Columns of a table declared without a column list, from its first file.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};

use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use bytes::Bytes;

use super::config::{Compression, FileSystemTable};
use super::location::{Location, get_object, list_objects};
use super::paths::list_files;
use crate::error::{ConnectorError, Result};
use crate::format::infer::{json_schema, normalized};
use crate::format::{Format, FormatSpec};

/// Records sampled from the first file.
const SAMPLE_RECORDS: usize = 1000;

fn io(file: &str, e: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Io {
        connector: "filesystem".into(),
        message: format!("cannot infer the schema from {file}: {e}"),
    }
}

/// A file to infer from: on disk, or an object's bytes.
pub(super) enum Sample {
    Local(std::path::PathBuf),
    Fetched { name: String, bytes: Bytes },
}

impl Sample {
    fn name(&self) -> String {
        match self {
            Sample::Local(path) => path.display().to_string(),
            Sample::Fetched { name, .. } => name.clone(),
        }
    }

    fn open(&self, compression: Option<Compression>) -> Result<Box<dyn Read + Send>> {
        let name = self.name();
        let (raw, extension): (Box<dyn Read + Send>, Option<String>) = match self {
            Sample::Local(path) => (
                Box::new(File::open(path).map_err(|e| io(&name, e))?),
                path.extension()
                    .and_then(|e| e.to_str())
                    .map(str::to_string),
            ),
            Sample::Fetched { bytes, name } => (
                Box::new(std::io::Cursor::new(bytes.clone())),
                name.rsplit_once('.').map(|(_, e)| e.to_string()),
            ),
        };
        Compression::reader(compression, extension.as_deref(), raw).map_err(|e| io(&name, e))
    }

    fn parquet_schema(&self) -> Result<arrow::datatypes::Schema> {
        let name = self.name();
        let schema = match self {
            Sample::Local(path) => {
                let handle = File::open(path).map_err(|e| io(&name, e))?;
                ParquetRecordBatchReaderBuilder::try_new(handle)
                    .map_err(|e| io(&name, e))?
                    .schema()
                    .as_ref()
                    .clone()
            }
            Sample::Fetched { bytes, .. } => {
                ParquetRecordBatchReaderBuilder::try_new(bytes.clone())
                    .map_err(|e| io(&name, e))?
                    .schema()
                    .as_ref()
                    .clone()
            }
        };
        Ok(schema)
    }
}

/// Infer from the first file `path` names; `None` if there is no file yet or the format
/// carries no structure to infer (raw formats, unstructured JSON).
pub(super) fn infer(table: &FileSystemTable, format: &FormatSpec) -> Result<Option<SchemaRef>> {
    let options = table.source.clone().unwrap_or_default();
    let pattern = options
        .regex_pattern
        .as_deref()
        .and_then(|p| regex::Regex::new(p).ok());
    let files = match list_files(&table.path, pattern.as_ref()) {
        Ok(files) => files,
        Err(_) => return Ok(None),
    };
    let samples: Vec<Sample> = files.into_iter().map(Sample::Local).collect();
    infer_from(&samples, table, format)
}

/// Infer from the first objects under an object-store table's prefix.
pub(super) async fn infer_remote(
    table: &FileSystemTable,
    format: &FormatSpec,
) -> Result<Option<SchemaRef>> {
    let Location::Store { store, prefix, url } =
        Location::resolve(&table.path, table.storage.as_ref())?
    else {
        return Ok(None);
    };
    let pattern = table
        .source
        .as_ref()
        .and_then(|s| s.regex_pattern.as_deref())
        .and_then(|p| regex::Regex::new(p).ok());
    let keys = list_objects(store.as_ref(), &prefix, &url, pattern.as_ref()).await?;
    let mut samples = Vec::new();
    for key in keys.into_iter().take(SAMPLE_OBJECTS) {
        let bytes = get_object(store.as_ref(), &key, &url).await?;
        samples.push(Sample::Fetched {
            name: key.to_string(),
            bytes,
        });
    }
    let table = table.clone();
    let format = format.clone();
    tokio::task::spawn_blocking(move || infer_from(&samples, &table, &format))
        .await
        .map_err(|e| ConnectorError::Config(format!("schema inference failed: {e}")))?
}

/// Objects fetched to sample a remote table's records.
const SAMPLE_OBJECTS: usize = 5;

fn infer_from(
    files: &[Sample],
    table: &FileSystemTable,
    format: &FormatSpec,
) -> Result<Option<SchemaRef>> {
    let format_kind = format.format.unwrap_or(Format::Json);
    if matches!(format_kind, Format::RawString | Format::RawBytes) {
        return Ok(None);
    }
    let options = table.source.clone().unwrap_or_default();
    let Some(file) = files.first() else {
        return Ok(None);
    };
    let schema = match format_kind {
        Format::Parquet => file.parquet_schema()?,
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
                .infer_schema(file.open(options.compression)?, Some(SAMPLE_RECORDS))
                .map_err(|e| io(&file.name(), e))?;
            schema
        }
        _ => {
            if crate::format::json_unstructured(format)? {
                return Ok(None);
            }
            // Sample records across files until enough are seen.
            let mut lines = Vec::new();
            'files: for sample in files {
                let reader = BufReader::new(sample.open(options.compression)?);
                for line in reader.lines() {
                    let line = line.map_err(|e| io(&sample.name(), e))?;
                    if line.trim().is_empty() {
                        continue;
                    }
                    lines.push(line);
                    if lines.len() >= SAMPLE_RECORDS {
                        break 'files;
                    }
                }
            }
            return json_schema(lines.iter().map(String::as_bytes))
                .map_err(|e| io(&file.name(), e));
        }
    };
    if schema.fields().is_empty() {
        return Ok(None);
    }
    Ok(Some(normalized(&schema)))
}
