//! Reading files: a blocking reader task feeds batches through a bounded channel.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use arrow::compute::cast;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tokio::sync::mpsc;

use super::config::{Compression, FileSystemTable};
use super::location::{FileRef, Location, get_object, list_objects};
use super::paths::list_files;
use crate::connector::{Source, SourceContext};
use crate::error::{ConnectorError, Result};
use crate::format::{BadRecord, Format, FormatSpec, RecordDecoder};

/// Batches in flight between the reader and the query.
const CHANNEL_BATCHES: usize = 4;

/// Everything the reader task needs.
struct Reader {
    table: String,
    location: Location,
    /// For object-store calls from the blocking reader thread.
    runtime: tokio::runtime::Handle,
    pattern: Option<regex::Regex>,
    compression: Option<Compression>,
    watch: Option<Duration>,
    format: FormatSpec,
    schema: SchemaRef,
    batch_size: usize,
    partition: usize,
    partitions: usize,
    bad_records: Arc<AtomicU64>,
}

/// What the reader task hands to the source.
enum Chunk {
    Batch(RecordBatch),
    /// Records for the dead-letter table.
    Bad(Vec<BadRecord>),
}

/// A running file source.
pub(super) struct FileSource {
    batches: mpsc::Receiver<Result<Chunk>>,
    bad: Vec<BadRecord>,
}

impl FileSource {
    pub(super) fn start(table: &FileSystemTable, ctx: SourceContext) -> Result<Self> {
        let options = table.source.clone().unwrap_or_default();
        let pattern = options
            .regex_pattern
            .as_deref()
            .map(regex::Regex::new)
            .transpose()
            .map_err(|e| ConnectorError::InvalidValue {
                connector: "filesystem".into(),
                key: "source.regex_pattern".into(),
                value: options.regex_pattern.clone().unwrap_or_default(),
                expected: format!("a regular expression ({e})"),
            })?;
        let reader = Reader {
            table: ctx.table_name.clone(),
            location: Location::resolve(&table.path, table.storage.as_ref())?,
            runtime: tokio::runtime::Handle::current(),
            pattern,
            compression: options.compression,
            watch: options
                .watch
                .unwrap_or(false)
                .then(|| Duration::from_millis(options.watch_interval_ms.unwrap_or(1000))),
            format: ctx.format.clone(),
            schema: ctx.schema.clone(),
            batch_size: ctx.batch_size.max(1),
            partition: ctx.partition,
            partitions: ctx.partitions.max(1),
            bad_records: ctx.bad_records.clone(),
        };
        let (tx, rx) = mpsc::channel(CHANNEL_BATCHES);
        // Blocking file I/O stays off the async workers; the task ends when the receiver
        // is dropped (its next send fails) or the files are read.
        tokio::task::spawn_blocking(move || {
            if let Err(e) = reader.run(&tx) {
                let _ = tx.blocking_send(Err(e));
            }
        });
        Ok(FileSource {
            batches: rx,
            bad: Vec::new(),
        })
    }
}

#[async_trait]
impl Source for FileSource {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        // Cancellation safe: yes (mpsc::Receiver::recv is; bad records are kept in `self`).
        loop {
            match self.batches.recv().await.transpose()? {
                Some(Chunk::Batch(batch)) => return Ok(Some(batch)),
                Some(Chunk::Bad(records)) => self.bad.extend(records),
                None => return Ok(None),
            }
        }
    }

    fn take_bad_records(&mut self) -> Vec<BadRecord> {
        std::mem::take(&mut self.bad)
    }
}

/// The stream has no receiver any more: stop reading.
struct Closed;

fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

impl Reader {
    fn run(&self, tx: &mpsc::Sender<Result<Chunk>>) -> Result<()> {
        let mut seen = HashSet::new();
        loop {
            let files: Vec<FileRef> = match &self.location {
                Location::Local(path) => list_files(path, self.pattern.as_ref())?
                    .into_iter()
                    .map(FileRef::Local)
                    .collect(),
                Location::Store { store, prefix, url } => self
                    .runtime
                    .block_on(list_objects(
                        store.as_ref(),
                        prefix,
                        url,
                        self.pattern.as_ref(),
                    ))?
                    .into_iter()
                    .map(FileRef::Object)
                    .collect(),
            };
            for file in files {
                let name = file.to_string();
                // Each file belongs to one partition; the same one on every listing.
                if fnv(&name) % self.partitions as u64 != self.partition as u64
                    || !seen.insert(name)
                {
                    continue;
                }
                if self.read_file(&file, tx).is_err() {
                    return Ok(());
                }
            }
            let Some(interval) = self.watch else {
                return Ok(());
            };
            std::thread::sleep(interval);
            if tx.is_closed() {
                return Ok(());
            }
        }
    }

    fn send(
        &self,
        tx: &mpsc::Sender<Result<Chunk>>,
        batch: Result<RecordBatch>,
    ) -> std::result::Result<(), Closed> {
        tx.blocking_send(batch.map(Chunk::Batch))
            .map_err(|_| Closed)
    }

    /// Hand over the decoder's dead letters, if any.
    fn send_bad(
        &self,
        tx: &mpsc::Sender<Result<Chunk>>,
        decoder: &mut RecordDecoder,
    ) -> std::result::Result<(), Closed> {
        let bad = decoder.take_bad_records();
        if bad.is_empty() {
            return Ok(());
        }
        tx.blocking_send(Ok(Chunk::Bad(bad))).map_err(|_| Closed)
    }

    fn io(&self, file: &FileRef, e: impl std::fmt::Display) -> ConnectorError {
        ConnectorError::Io {
            connector: "filesystem".into(),
            message: format!("table '{}': cannot read {file}: {e}", self.table),
        }
    }

    /// An object's bytes (objects are read whole).
    fn fetch(&self, key: &object_store::path::Path) -> Result<bytes::Bytes> {
        let Location::Store { store, url, .. } = &self.location else {
            return Err(ConnectorError::Config("not an object-store table".into()));
        };
        self.runtime.block_on(get_object(store.as_ref(), key, url))
    }

    /// Read one file; an error is sent to the query (which fails) and reading stops.
    fn read_file(
        &self,
        file: &FileRef,
        tx: &mpsc::Sender<Result<Chunk>>,
    ) -> std::result::Result<(), Closed> {
        let result = match self.format.format.unwrap_or(Format::Json) {
            Format::Parquet => self.read_parquet(file, tx),
            Format::Csv => self.read_csv(file, tx),
            _ => self.read_lines(file, tx),
        };
        match result {
            Ok(outcome) => outcome,
            Err(e) => {
                self.send(tx, Err(e))?;
                Err(Closed)
            }
        }
    }

    fn open(&self, file: &FileRef) -> Result<Box<dyn Read + Send>> {
        let (raw, extension): (Box<dyn Read + Send>, Option<String>) = match file {
            FileRef::Local(path) => (
                Box::new(File::open(path).map_err(|e| self.io(file, e))?),
                path.extension()
                    .and_then(|e| e.to_str())
                    .map(str::to_string),
            ),
            FileRef::Object(key) => (
                Box::new(std::io::Cursor::new(self.fetch(key)?)),
                key.extension().map(str::to_string),
            ),
        };
        Compression::reader(self.compression, extension.as_deref(), raw)
            .map_err(|e| self.io(file, e))
    }

    /// Newline-delimited records (json, raw_string, raw_bytes) through the record decoder.
    fn read_lines(
        &self,
        file: &FileRef,
        tx: &mpsc::Sender<Result<Chunk>>,
    ) -> Result<std::result::Result<(), Closed>> {
        let source: Arc<str> = Arc::from(format!("{file} line"));
        let mut decoder = RecordDecoder::new(
            &self.table,
            &self.format,
            self.schema.clone(),
            self.bad_records.clone(),
        )?;
        let mut reader = BufReader::with_capacity(1 << 20, self.open(file)?);
        let mut line = Vec::with_capacity(1024);
        let mut number = 0u64;
        loop {
            line.clear();
            let read = reader
                .read_until(b'\n', &mut line)
                .map_err(|e| self.io(file, e))?;
            if read == 0 {
                break;
            }
            number += 1;
            let record = line.strip_suffix(b"\n").unwrap_or(&line);
            let record = record.strip_suffix(b"\r").unwrap_or(record);
            if record.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            decoder.push(record, &source, number);
            if decoder.pending() >= self.batch_size {
                let batch = decoder.flush()?;
                if self.send_bad(tx, &mut decoder).is_err() {
                    return Ok(Err(Closed));
                }
                if let Some(batch) = batch
                    && self.send(tx, Ok(batch)).is_err()
                {
                    return Ok(Err(Closed));
                }
            }
        }
        let batch = decoder.flush()?;
        if self.send_bad(tx, &mut decoder).is_err() {
            return Ok(Err(Closed));
        }
        if let Some(batch) = batch {
            return Ok(self.send(tx, Ok(batch)));
        }
        Ok(Ok(()))
    }

    fn read_csv(
        &self,
        file: &FileRef,
        tx: &mpsc::Sender<Result<Chunk>>,
    ) -> Result<std::result::Result<(), Closed>> {
        let options = &self.format.options;
        let single = |key: &str, default: u8| -> Result<u8> {
            match options.get(key) {
                None => Ok(default),
                Some(v) if v.len() == 1 => Ok(v.as_bytes()[0]),
                Some(v) if v == "\\t" => Ok(b'\t'),
                Some(v) => Err(ConnectorError::InvalidValue {
                    connector: "csv".into(),
                    key: key.into(),
                    value: v.clone(),
                    expected: "a single character".into(),
                }),
            }
        };
        let header = match options.get("csv.header").map(|v| v.to_ascii_lowercase()) {
            None => true,
            Some(v) => v == "true",
        };
        let mut builder = arrow_csv::ReaderBuilder::new(self.schema.clone())
            .with_header(header)
            .with_delimiter(single("csv.delimiter", b',')?)
            .with_quote(single("csv.quote", b'"')?)
            .with_batch_size(self.batch_size);
        if let Some(escape) = options.get("csv.escape") {
            builder = builder.with_escape(single(
                "csv.escape",
                escape.as_bytes().first().copied().unwrap_or(b'\\'),
            )?);
        }
        if let Some(null) = options.get("csv.null_string") {
            let regex = regex::Regex::new(&format!("^{}$", regex::escape(null)))
                .map_err(|e| ConnectorError::Config(e.to_string()))?;
            builder = builder.with_null_regex(regex);
        }
        let reader = builder
            .build(BufReader::new(self.open(file)?))
            .map_err(|e| self.io(file, e))?;
        for batch in reader {
            let batch = batch.map_err(|e| ConnectorError::BadData {
                table: self.table.clone(),
                position: file.to_string(),
                reason: e.to_string(),
            })?;
            if self.send(tx, Ok(batch)).is_err() {
                return Ok(Err(Closed));
            }
        }
        Ok(Ok(()))
    }

    fn read_parquet(
        &self,
        file: &FileRef,
        tx: &mpsc::Sender<Result<Chunk>>,
    ) -> Result<std::result::Result<(), Closed>> {
        match file {
            FileRef::Local(path) => {
                let handle = File::open(path).map_err(|e| self.io(file, e))?;
                let builder = ParquetRecordBatchReaderBuilder::try_new(handle)
                    .map_err(|e| self.io(file, e))?;
                self.read_parquet_with(file, builder, tx)
            }
            FileRef::Object(key) => {
                let builder = ParquetRecordBatchReaderBuilder::try_new(self.fetch(key)?)
                    .map_err(|e| self.io(file, e))?;
                self.read_parquet_with(file, builder, tx)
            }
        }
    }

    fn read_parquet_with<R: parquet::file::reader::ChunkReader + 'static>(
        &self,
        file: &FileRef,
        builder: ParquetRecordBatchReaderBuilder<R>,
        tx: &mpsc::Sender<Result<Chunk>>,
    ) -> Result<std::result::Result<(), Closed>> {
        let file_schema = builder.schema().clone();
        // Read only the table's columns (projection pushdown), matched by name.
        let mut indices = Vec::with_capacity(self.schema.fields().len());
        for field in self.schema.fields() {
            let index =
                file_schema
                    .index_of(field.name())
                    .map_err(|_| ConnectorError::BadData {
                        table: self.table.clone(),
                        position: file.to_string(),
                        reason: format!("the file has no column '{}'", field.name()),
                    })?;
            indices.push(index);
        }
        let mask = ProjectionMask::roots(builder.parquet_schema(), indices.iter().copied());
        let reader = builder
            .with_projection(mask)
            .with_batch_size(self.batch_size)
            .build()
            .map_err(|e| self.io(file, e))?;
        for batch in reader {
            let batch = batch.map_err(|e| self.io(file, e))?;
            let columns = self
                .schema
                .fields()
                .iter()
                .map(|f| {
                    let column = batch
                        .column_by_name(f.name())
                        .ok_or_else(|| self.io(file, "column vanished"))?;
                    if column.data_type() == f.data_type() {
                        Ok(column.clone())
                    } else {
                        cast(column, f.data_type()).map_err(|e| ConnectorError::BadData {
                            table: self.table.clone(),
                            position: file.to_string(),
                            reason: format!("column '{}': {e}", f.name()),
                        })
                    }
                })
                .collect::<Result<Vec<_>>>()?;
            let batch = RecordBatch::try_new(self.schema.clone(), columns)?;
            if self.send(tx, Ok(batch)).is_err() {
                return Ok(Err(Closed));
            }
        }
        Ok(Ok(()))
    }
}
