//! Reading files: a blocking reader task feeds batches through a bounded channel.
//!
//! Each batch carries how far into its file it reaches, and finished files are reported, so
//! the source's checkpointed position (files done, records into the current one) lets a
//! resumed pipeline go on without skipping or re-reading a record.

use std::collections::{BTreeSet, HashSet};
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
    /// Files read completely before the checkpoint resumed from.
    done: HashSet<String>,
    /// The file being read at that checkpoint, and how many records of it were emitted.
    resume: Option<(String, u64)>,
}

/// What the reader task hands to the source.
enum Chunk {
    /// Rows, and the file and number of records (lines or rows) they reach to.
    Batch(RecordBatch, Arc<str>, u64),
    /// Records for the dead-letter table.
    Bad(Vec<BadRecord>),
    /// A file was read to its end.
    FileDone(Arc<str>),
}

/// A running file source.
pub(super) struct FileSource {
    batches: mpsc::Receiver<Result<Chunk>>,
    bad: Vec<BadRecord>,
    /// Files read completely.
    done: BTreeSet<String>,
    /// The file being read and the records of it emitted so far.
    current: Option<(Arc<str>, u64)>,
}

/// The position a checkpoint holds: `{"done": [files], "current": {"file", "records"}}`.
fn restored_position(ctx: &SourceContext) -> (BTreeSet<String>, Option<(String, u64)>) {
    let Some(restore) = ctx.restore.as_ref() else {
        return (BTreeSet::new(), None);
    };
    let done = restore
        .get("done")
        .and_then(|d| serde_json::from_value(d.clone()).ok())
        .unwrap_or_default();
    let current = restore.get("current").and_then(|c| {
        Some((
            c.get("file")?.as_str()?.to_string(),
            c.get("records")?.as_u64()?,
        ))
    });
    (done, current)
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
        let (done, resume) = restored_position(&ctx);
        let reader = Reader {
            done: done.iter().cloned().collect(),
            resume,
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
            done,
            current: None,
        })
    }
}

#[async_trait]
impl Source for FileSource {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        // Cancellation safe: yes (mpsc::Receiver::recv is; bad records are kept in `self`).
        loop {
            match self.batches.recv().await.transpose()? {
                Some(Chunk::Batch(batch, file, records)) => {
                    self.current = Some((file, records));
                    return Ok(Some(batch));
                }
                Some(Chunk::Bad(records)) => self.bad.extend(records),
                Some(Chunk::FileDone(file)) => {
                    self.current = None;
                    self.done.insert(file.to_string());
                }
                None => return Ok(None),
            }
        }
    }

    fn snapshot(&self) -> serde_json::Value {
        let current = self.current.as_ref().map(
            |(file, records)| serde_json::json!({ "file": file.as_ref(), "records": records }),
        );
        serde_json::json!({ "done": self.done, "current": current })
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
        let mut seen = self.done.clone();
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
                let name: Arc<str> = Arc::from(file.to_string());
                if self.read_file(&file, &name, tx).is_err()
                    || tx.blocking_send(Ok(Chunk::FileDone(name))).is_err()
                {
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

    /// Hand over a batch that reaches `records` records into `file`.
    fn send(
        &self,
        tx: &mpsc::Sender<Result<Chunk>>,
        batch: RecordBatch,
        file: &Arc<str>,
        records: u64,
    ) -> std::result::Result<(), Closed> {
        tx.blocking_send(Ok(Chunk::Batch(batch, file.clone(), records)))
            .map_err(|_| Closed)
    }

    fn fail(&self, tx: &mpsc::Sender<Result<Chunk>>, e: ConnectorError) -> Closed {
        let _ = tx.blocking_send(Err(e));
        Closed
    }

    /// Records of `file` a resumed source already emitted.
    fn already_read(&self, file: &str) -> u64 {
        match &self.resume {
            Some((name, records)) if name == file => *records,
            _ => 0,
        }
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
        name: &Arc<str>,
        tx: &mpsc::Sender<Result<Chunk>>,
    ) -> std::result::Result<(), Closed> {
        let result = match self.format.format.unwrap_or(Format::Json) {
            Format::Parquet => self.read_parquet(file, name, tx),
            Format::Csv => self.read_csv(file, name, tx),
            _ => self.read_lines(file, name, tx),
        };
        match result {
            Ok(outcome) => outcome,
            Err(e) => Err(self.fail(tx, e)),
        }
    }

    /// Rows of `batch` after skipping what is left of `skip`: rows a resumed source
    /// emitted before.
    fn after_skip(batch: RecordBatch, skip: &mut u64) -> Option<RecordBatch> {
        let rows = batch.num_rows() as u64;
        if *skip >= rows {
            *skip -= rows;
            return None;
        }
        let from = *skip as usize;
        *skip = 0;
        Some(batch.slice(from, batch.num_rows() - from))
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
        name: &Arc<str>,
        tx: &mpsc::Sender<Result<Chunk>>,
    ) -> Result<std::result::Result<(), Closed>> {
        let skip = self.already_read(name);
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
            if number <= skip {
                continue;
            }
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
                    && self.send(tx, batch, name, number).is_err()
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
            return Ok(self.send(tx, batch, name, number));
        }
        Ok(Ok(()))
    }

    fn read_csv(
        &self,
        file: &FileRef,
        name: &Arc<str>,
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
        let delimiter = single("csv.delimiter", b',')?;
        // Read as text, then cast: a value that does not fit its column makes a bad record
        // (bad_data), not a failed file.
        let mut builder = arrow_csv::ReaderBuilder::new(super::csv_rows::text_schema(&self.schema))
            .with_header(header)
            .with_delimiter(delimiter)
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
        let mut skip = self.already_read(name);
        let mut rows = 0u64;
        let file_name = file.to_string();
        for batch in reader {
            let batch = batch.map_err(|e| ConnectorError::BadData {
                table: self.table.clone(),
                position: file_name.clone(),
                reason: e.to_string(),
            })?;
            let rows_before = rows + skip.min(batch.num_rows() as u64);
            rows += batch.num_rows() as u64;
            let Some(text) = Self::after_skip(batch, &mut skip) else {
                continue;
            };
            let origin = super::csv_rows::CsvOrigin {
                table: &self.table,
                file: &file_name,
                rows_before,
                delimiter,
                policy: self.format.bad_data,
                bad_records: &self.bad_records,
            };
            let (typed, letters) = super::csv_rows::typed_rows(&text, &self.schema, &origin)?;
            if !letters.is_empty() && tx.blocking_send(Ok(Chunk::Bad(letters))).is_err() {
                return Ok(Err(Closed));
            }
            if self.send(tx, typed, name, rows).is_err() {
                return Ok(Err(Closed));
            }
        }
        Ok(Ok(()))
    }

    fn read_parquet(
        &self,
        file: &FileRef,
        name: &Arc<str>,
        tx: &mpsc::Sender<Result<Chunk>>,
    ) -> Result<std::result::Result<(), Closed>> {
        match file {
            FileRef::Local(path) => {
                let handle = File::open(path).map_err(|e| self.io(file, e))?;
                let builder = ParquetRecordBatchReaderBuilder::try_new(handle)
                    .map_err(|e| self.io(file, e))?;
                self.read_parquet_with(file, name, builder, tx)
            }
            FileRef::Object(key) => {
                let builder = ParquetRecordBatchReaderBuilder::try_new(self.fetch(key)?)
                    .map_err(|e| self.io(file, e))?;
                self.read_parquet_with(file, name, builder, tx)
            }
        }
    }

    fn read_parquet_with<R: parquet::file::reader::ChunkReader + 'static>(
        &self,
        file: &FileRef,
        name: &Arc<str>,
        builder: ParquetRecordBatchReaderBuilder<R>,
        tx: &mpsc::Sender<Result<Chunk>>,
    ) -> Result<std::result::Result<(), Closed>> {
        let mut skip = self.already_read(name);
        let mut rows = 0u64;
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
            rows += batch.num_rows() as u64;
            if let Some(batch) = Self::after_skip(batch, &mut skip)
                && self.send(tx, batch, name, rows).is_err()
            {
                return Ok(Err(Closed));
            }
        }
        Ok(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    fn ctx(format: Format, restore: Option<serde_json::Value>) -> SourceContext {
        SourceContext {
            table_name: "files".into(),
            schema: Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)])),
            partition: 0,
            partitions: 1,
            batch_size: 2,
            format: FormatSpec {
                format: Some(format),
                ..FormatSpec::default()
            },
            bad_records: Default::default(),
            preview: false,
            event_time: false,
            restore,
        }
    }

    fn ns(batch: &RecordBatch) -> Vec<i64> {
        batch
            .column(0)
            .as_primitive::<Int64Type>()
            .values()
            .to_vec()
    }

    async fn read_all(source: &mut FileSource) -> Vec<i64> {
        let mut out = Vec::new();
        while let Some(batch) = source.next_batch().await.unwrap() {
            out.extend(ns(&batch));
        }
        out
    }

    /// After any batch, a source restored from the snapshot emits exactly the rest.
    async fn resumes_exactly(format: Format, dir: &std::path::Path) {
        let table = FileSystemTable {
            path: dir.display().to_string(),
            source: None,
            rolling_policy: None,
            filename: None,
            partitioning: None,
            storage: None,
        };
        let all = read_all(&mut FileSource::start(&table, ctx(format, None)).unwrap()).await;
        assert_eq!(all.len(), 7, "{format:?}: {all:?}");
        for cut in 1..=4 {
            let mut source = FileSource::start(&table, ctx(format, None)).unwrap();
            let mut before = Vec::new();
            for _ in 0..cut {
                before.extend(ns(&source.next_batch().await.unwrap().unwrap()));
            }
            let snapshot = source.snapshot();
            drop(source);
            let mut resumed =
                FileSource::start(&table, ctx(format, Some(snapshot.clone()))).unwrap();
            before.extend(read_all(&mut resumed).await);
            assert_eq!(
                before, all,
                "{format:?} resumed after {cut} batches from {snapshot}"
            );
        }
    }

    #[tokio::test]
    async fn resumes_from_snapshots_without_skipping_or_rereading() {
        let dir = std::env::temp_dir().join(format!("laminar-fs-resume-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let json = dir.join("json");
        let csv = dir.join("csv");
        std::fs::create_dir_all(&json).unwrap();
        std::fs::create_dir_all(&csv).unwrap();
        std::fs::write(json.join("a.json"), "{\"n\": 1}\n{\"n\": 2}\n{\"n\": 3}\n").unwrap();
        std::fs::write(
            json.join("b.json"),
            "{\"n\": 4}\n\n{\"n\": 5}\n{\"n\": 6}\n{\"n\": 7}\n",
        )
        .unwrap();
        std::fs::write(csv.join("a.csv"), "n\n1\n2\n3\n").unwrap();
        std::fs::write(csv.join("b.csv"), "n\n4\n5\n6\n7\n").unwrap();
        resumes_exactly(Format::Json, &json).await;
        resumes_exactly(Format::Csv, &csv).await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
