//! Writing files: rolled by size, age and inactivity, partitioned by fields and time.
//!
//! A file is written under a hidden in-progress name (`.part-....json.inprogress`, which
//! sources skip) and renamed to its final name when it is closed, so readers only ever see
//! complete files. In a pipeline that takes checkpoints the rename waits for the checkpoint
//! that covers the file's rows: every open file is closed at the checkpoint barrier
//! ([`Sink::prepare`]) and renamed once the checkpoint is durable ([`Sink::commit`]), so a
//! crash never shows rows that the resumed pipeline will write again (exactly-once).

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arrow::array::UInt32Array;
use arrow::compute::take_record_batch;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use async_trait::async_trait;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as ParquetCompression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use super::config::{FileSystemTable, parse_duration, parse_size};
use super::location::{Location, put_object};
use super::paths::local_path;
use crate::connector::{Sink, SinkContext};
use crate::error::{ConnectorError, Result};
use crate::format::{Format, FormatSpec, RecordEncoder};

/// How often the engine lets the sink check age and inactivity.
const TICK: Duration = Duration::from_millis(500);

enum Encoding {
    Lines(RecordEncoder),
    Parquet(Box<WriterProperties>),
}

enum Writer {
    Lines(BufWriter<File>),
    Parquet(Box<ArrowWriter<File>>),
}

/// Where finished files of an object-store table go.
struct Upload {
    store: std::sync::Arc<dyn object_store::ObjectStore>,
    prefix: object_store::path::Path,
    url: String,
    staging: PathBuf,
}

impl Upload {
    /// Upload finished local files (each becomes visible whole) and remove them locally.
    async fn send(&self, files: Vec<PathBuf>) -> Result<()> {
        for path in files {
            let bytes = std::fs::read(&path).map_err(|e| ConnectorError::Io {
                connector: "filesystem".into(),
                message: format!("cannot read staged file {}: {e}", path.display()),
            })?;
            let relative = path.strip_prefix(&self.staging).unwrap_or(&path);
            let mut key = self.prefix.clone();
            for part in relative.iter() {
                key = key.join(part.to_string_lossy().into_owned());
            }
            put_object(self.store.as_ref(), &key, bytes, &self.url).await?;
            let _ = std::fs::remove_file(&path);
        }
        Ok(())
    }
}

struct OpenFile {
    in_progress: PathBuf,
    target: PathBuf,
    writer: Writer,
    opened: Instant,
    last_write: Instant,
    bytes: u64,
}

pub(super) struct FileSink {
    table: String,
    dir: PathBuf,
    /// For object-store tables: `dir` is a local staging directory and finished files are
    /// uploaded from it.
    upload: Option<Upload>,
    /// Finished files waiting for upload.
    finished: Vec<PathBuf>,
    schema: SchemaRef,
    encoding: Encoding,
    prefix: String,
    suffix: String,
    max_size: Option<u64>,
    max_age: Option<Duration>,
    max_idle: Option<Duration>,
    partition_columns: Vec<usize>,
    time_pattern: Option<String>,
    open: HashMap<String, OpenFile>,
    scratch: Vec<u8>,
    sequence: u64,
    run: String,
    /// Renames wait for checkpoints (see the module docs).
    checkpointed: bool,
    /// Closed files whose rename waits for the next checkpoint: (in-progress, final).
    pending: Vec<(PathBuf, PathBuf)>,
}

fn parquet_properties(spec: &FormatSpec) -> Result<WriterProperties> {
    let compression = match spec
        .options
        .get("parquet.compression")
        .map(|c| c.to_ascii_lowercase())
    {
        None => ParquetCompression::ZSTD(ZstdLevel::default()),
        Some(c) => match c.as_str() {
            "zstd" => ParquetCompression::ZSTD(ZstdLevel::default()),
            "snappy" => ParquetCompression::SNAPPY,
            "gzip" => ParquetCompression::GZIP(Default::default()),
            "lz4" => ParquetCompression::LZ4_RAW,
            "none" | "uncompressed" => ParquetCompression::UNCOMPRESSED,
            _ => {
                return Err(ConnectorError::InvalidValue {
                    connector: "parquet".into(),
                    key: "parquet.compression".into(),
                    value: c,
                    expected: "one of zstd, snappy, gzip, lz4, none".into(),
                });
            }
        },
    };
    let mut builder = WriterProperties::builder().set_compression(compression);
    if let Some(rows) = spec.options.get("parquet.row_group_size") {
        let rows: usize =
            rows.parse()
                .ok()
                .filter(|r| *r > 0)
                .ok_or_else(|| ConnectorError::InvalidValue {
                    connector: "parquet".into(),
                    key: "parquet.row_group_size".into(),
                    value: rows.clone(),
                    expected: "a positive number of rows".into(),
                })?;
        builder = builder.set_max_row_group_row_count(Some(rows));
    }
    Ok(builder.build())
}

impl FileSink {
    pub(super) fn new(table: &FileSystemTable, ctx: SinkContext) -> Result<Self> {
        let (dir, upload) = match Location::resolve(&table.path, table.storage.as_ref())? {
            Location::Local(path) => (local_path(&path)?, None),
            Location::Store { store, prefix, url } => {
                let staging = std::env::temp_dir().join(format!(
                    "laminar-sink-{}-{}",
                    std::process::id(),
                    ctx.table_name
                ));
                (
                    staging.clone(),
                    Some(Upload {
                        store,
                        prefix,
                        url,
                        staging,
                    }),
                )
            }
        };
        std::fs::create_dir_all(&dir).map_err(|e| ConnectorError::Io {
            connector: "filesystem".into(),
            message: format!("cannot create {}: {e}", dir.display()),
        })?;
        let format = ctx.format.format.unwrap_or(Format::Json);
        let encoding = match format {
            Format::Parquet => Encoding::Parquet(Box::new(parquet_properties(&ctx.format)?)),
            Format::Json | Format::DebeziumJson | Format::RawString | Format::RawBytes => {
                Encoding::Lines(RecordEncoder::new(&ctx.format, &ctx.schema)?)
            }
            other => {
                return Err(ConnectorError::InvalidValue {
                    connector: "filesystem".into(),
                    key: "format".into(),
                    value: other.name().into(),
                    expected: "json, debezium_json, parquet, raw_string or raw_bytes for a sink"
                        .into(),
                });
            }
        };
        let rolling = table.rolling_policy.clone().unwrap_or_default();
        let naming = table.filename.clone().unwrap_or_default();
        let partitioning = table.partitioning.clone().unwrap_or_default();
        let mut partition_columns = Vec::new();
        for name in partitioning
            .fields
            .iter()
            .flat_map(|f| f.split(','))
            .map(str::trim)
            .filter(|f| !f.is_empty())
        {
            let index = ctx
                .schema
                .index_of(name)
                .map_err(|_| ConnectorError::InvalidValue {
                    connector: "filesystem".into(),
                    key: "partitioning.fields".into(),
                    value: name.into(),
                    expected: "columns of the table".into(),
                })?;
            partition_columns.push(index);
        }
        let run = format!(
            "{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        );
        Ok(FileSink {
            table: ctx.table_name.clone(),
            dir,
            upload,
            finished: Vec::new(),
            schema: ctx.schema.clone(),
            encoding,
            prefix: naming.prefix.unwrap_or_else(|| "part".into()),
            suffix: naming.suffix.unwrap_or_else(|| match format {
                Format::Parquet => "parquet".into(),
                Format::Json | Format::DebeziumJson => "json".into(),
                _ => "txt".into(),
            }),
            max_size: rolling
                .file_size
                .as_deref()
                .map(|s| parse_size("rolling_policy.file_size", s))
                .transpose()?,
            max_age: rolling
                .interval
                .as_deref()
                .map(|s| parse_duration("rolling_policy.interval", s))
                .transpose()?,
            max_idle: rolling
                .inactivity_interval
                .as_deref()
                .map(|s| parse_duration("rolling_policy.inactivity_interval", s))
                .transpose()?,
            partition_columns,
            time_pattern: partitioning.time_pattern,
            open: HashMap::new(),
            scratch: Vec::new(),
            sequence: 0,
            run,
            checkpointed: ctx.checkpointed,
            pending: Vec::new(),
        })
    }

    fn io(&self, path: &Path, e: impl std::fmt::Display) -> ConnectorError {
        ConnectorError::Io {
            connector: "filesystem".into(),
            message: format!(
                "table '{}': cannot write {}: {e}",
                self.table,
                path.display()
            ),
        }
    }

    /// Rows of `batch` grouped by their partition directory.
    fn split(&self, batch: RecordBatch) -> Result<Vec<(String, RecordBatch)>> {
        let time_dir = self
            .time_pattern
            .as_ref()
            .map(|p| chrono::Utc::now().format(p).to_string())
            .unwrap_or_default();
        if self.partition_columns.is_empty() {
            return Ok(vec![(time_dir, batch)]);
        }
        let options = FormatOptions::default().with_null("null");
        let formatters = self
            .partition_columns
            .iter()
            .map(|&i| ArrayFormatter::try_new(batch.column(i).as_ref(), &options))
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let mut groups: HashMap<String, Vec<u32>> = HashMap::new();
        let mut key = String::new();
        for row in 0..batch.num_rows() {
            key.clear();
            key.push_str(&time_dir);
            for (formatter, &column) in formatters.iter().zip(&self.partition_columns) {
                if !key.is_empty() {
                    key.push('/');
                }
                key.push_str(self.schema.field(column).name());
                key.push('=');
                use std::fmt::Write as _;
                let _ = write!(key, "{}", formatter.value(row));
            }
            // Allocates only for a new partition, not per row.
            match groups.get_mut(key.as_str()) {
                Some(rows) => rows.push(row as u32),
                None => {
                    groups.insert(key.clone(), vec![row as u32]);
                }
            }
        }
        let mut out = Vec::with_capacity(groups.len());
        for (dir, rows) in groups {
            let indices = UInt32Array::from(rows);
            out.push((dir, take_record_batch(&batch, &indices)?));
        }
        Ok(out)
    }

    fn open_file(&mut self, partition: &str) -> Result<OpenFile> {
        let dir = if partition.is_empty() {
            self.dir.clone()
        } else {
            self.dir.join(partition)
        };
        std::fs::create_dir_all(&dir).map_err(|e| self.io(&dir, e))?;
        self.sequence += 1;
        let name = format!(
            "{}-{}-{:05}.{}",
            self.prefix, self.run, self.sequence, self.suffix
        );
        let in_progress = dir.join(format!(".{name}.inprogress"));
        let target = dir.join(name);
        let file = File::create(&in_progress).map_err(|e| self.io(&in_progress, e))?;
        let writer = match &self.encoding {
            Encoding::Lines(_) => Writer::Lines(BufWriter::with_capacity(1 << 20, file)),
            Encoding::Parquet(props) => Writer::Parquet(Box::new(
                ArrowWriter::try_new(file, self.schema.clone(), Some(props.as_ref().clone()))
                    .map_err(|e| self.io(&in_progress, e))?,
            )),
        };
        let now = Instant::now();
        Ok(OpenFile {
            in_progress,
            target,
            writer,
            opened: now,
            last_write: now,
            bytes: 0,
        })
    }

    fn finish(&mut self, file: OpenFile) -> Result<()> {
        match file.writer {
            Writer::Lines(mut w) => {
                w.flush().map_err(|e| self.io(&file.in_progress, e))?;
                w.get_ref()
                    .sync_all()
                    .map_err(|e| self.io(&file.in_progress, e))?;
            }
            Writer::Parquet(w) => {
                let inner = w.into_inner().map_err(|e| self.io(&file.in_progress, e))?;
                inner
                    .sync_all()
                    .map_err(|e| self.io(&file.in_progress, e))?;
            }
        }
        if self.checkpointed {
            self.pending.push((file.in_progress, file.target));
            return Ok(());
        }
        self.publish(&file.in_progress, file.target)
    }

    /// Give a closed file its final name (and queue it for upload). Idempotent, so a
    /// resumed pipeline can repeat the commit of its last checkpoint.
    fn publish(&mut self, in_progress: &Path, target: PathBuf) -> Result<()> {
        match std::fs::rename(in_progress, &target) {
            Ok(()) => {}
            // Published before a crash: the final file is there (or already uploaded).
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if target.exists() {
                    tracing::debug!(file = %target.display(), "file was published before");
                } else if self.upload.is_none() {
                    return Err(self.io(
                        in_progress,
                        "a file of a completed checkpoint is gone (neither its in-progress nor its final name exists)",
                    ));
                }
                return Ok(());
            }
            Err(e) => return Err(self.io(&target, e)),
        }
        if self.upload.is_some() {
            self.finished.push(target);
        }
        Ok(())
    }

    fn due(&self, file: &OpenFile, now: Instant) -> bool {
        self.max_size.is_some_and(|s| file.bytes >= s)
            || self
                .max_age
                .is_some_and(|a| now.duration_since(file.opened) >= a)
            || self
                .max_idle
                .is_some_and(|i| now.duration_since(file.last_write) >= i)
    }

    fn roll_due(&mut self) -> Result<()> {
        let now = Instant::now();
        let due: Vec<String> = self
            .open
            .iter()
            .filter(|(_, f)| self.due(f, now))
            .map(|(k, _)| k.clone())
            .collect();
        for key in due {
            if let Some(file) = self.open.remove(&key) {
                self.finish(file)?;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Sink for FileSink {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        for (partition, rows) in self.split(batch)? {
            let mut file = match self.open.remove(&partition) {
                Some(file) => file,
                None => self.open_file(&partition)?,
            };
            match &mut file.writer {
                Writer::Lines(w) => {
                    let Encoding::Lines(encoder) = &self.encoding else {
                        return Err(ConnectorError::Config(
                            "a line file was opened for a Parquet table".into(),
                        ));
                    };
                    self.scratch.clear();
                    encoder.encode(&rows, &mut self.scratch)?;
                    w.write_all(&self.scratch)
                        .map_err(|e| self.io(&file.in_progress, e))?;
                    file.bytes += self.scratch.len() as u64;
                }
                Writer::Parquet(w) => {
                    w.write(&rows).map_err(|e| self.io(&file.in_progress, e))?;
                    file.bytes = (w.bytes_written() + w.in_progress_size()) as u64;
                }
            }
            file.last_write = Instant::now();
            self.open.insert(partition, file);
        }
        self.roll_due()?;
        self.upload_finished().await
    }

    fn tick_interval(&self) -> Option<Duration> {
        (self.max_age.is_some() || self.max_idle.is_some()).then_some(TICK)
    }

    async fn tick(&mut self) -> Result<()> {
        self.roll_due()?;
        self.upload_finished().await
    }

    async fn prepare(&mut self, _epoch: u64) -> Result<serde_json::Value> {
        // Every file covering rows before the barrier is closed and synced, still hidden.
        self.finish_all()?;
        let files: Vec<[String; 2]> = std::mem::take(&mut self.pending)
            .into_iter()
            .map(|(from, to)| {
                [
                    from.to_string_lossy().into_owned(),
                    to.to_string_lossy().into_owned(),
                ]
            })
            .collect();
        Ok(serde_json::json!({ "run": self.run, "files": files }))
    }

    async fn commit(&mut self, _epoch: u64, prepared: serde_json::Value) -> Result<()> {
        let files: Vec<[String; 2]> = prepared
            .get("files")
            .cloned()
            .map(serde_json::from_value)
            .transpose()
            .map_err(|e| ConnectorError::Config(format!("filesystem: unreadable commit: {e}")))?
            .unwrap_or_default();
        for [from, to] in files {
            self.publish(Path::new(&from), PathBuf::from(to))?;
        }
        // Recovering a crashed run: what it wrote after this checkpoint is replayed by
        // this run, so its hidden leftovers go.
        if let Some(run) = prepared.get("run").and_then(|r| r.as_str())
            && run != self.run
        {
            self.remove_leftovers(&self.dir.clone(), &format!(".{}-{run}-", self.prefix));
        }
        self.upload_finished().await
    }

    async fn close(&mut self) -> Result<()> {
        self.finish_all()?;
        // The input ended: nothing will be replayed, so pending files are final.
        for (from, to) in std::mem::take(&mut self.pending) {
            self.publish(&from, to)?;
        }
        self.upload_finished().await
    }
}

impl FileSink {
    /// Remove in-progress files starting with `start` under `dir` (partition directories
    /// included).
    fn remove_leftovers(&self, dir: &Path, start: &str) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if path.is_dir() {
                self.remove_leftovers(&path, start);
            } else if name.starts_with(start) && name.ends_with(".inprogress") {
                match std::fs::remove_file(&path) {
                    Ok(()) => {
                        tracing::info!(table = %self.table, file = %path.display(), "removed a crashed run's unfinished file")
                    }
                    Err(e) => {
                        tracing::warn!(table = %self.table, file = %path.display(), error = %e, "cannot remove a crashed run's unfinished file")
                    }
                }
            }
        }
    }

    async fn upload_finished(&mut self) -> Result<()> {
        match &self.upload {
            Some(upload) if !self.finished.is_empty() => {
                upload.send(std::mem::take(&mut self.finished)).await
            }
            _ => Ok(()),
        }
    }

    fn finish_all(&mut self) -> Result<()> {
        let open: Vec<OpenFile> = self.open.drain().map(|(_, f)| f).collect();
        for file in open {
            self.finish(file)?;
        }
        Ok(())
    }
}

impl Drop for FileSink {
    /// A stopped pipeline drops its sink without `close`. Without checkpoints, keep what was
    /// written rather than leaving it in hidden in-progress files; with them, rows after the
    /// last checkpoint will be written again when the pipeline resumes, so their files go.
    fn drop(&mut self) {
        if self.checkpointed {
            let open = self.open.drain().map(|(_, f)| f.in_progress);
            let pending = self.pending.drain(..).map(|(from, _)| from);
            for path in open.chain(pending).collect::<Vec<_>>() {
                let _ = std::fs::remove_file(path);
            }
            return;
        }
        if let Err(e) = self.finish_all() {
            tracing::warn!(table = %self.table, error = %e, "could not finish files of a stopped sink");
        }
        // Object-store tables: upload what was finished, in the background.
        if let (Some(upload), Ok(runtime)) =
            (self.upload.take(), tokio::runtime::Handle::try_current())
        {
            let files = std::mem::take(&mut self.finished);
            let table = self.table.clone();
            if !files.is_empty() {
                runtime.spawn(async move {
                    if let Err(e) = upload.send(files).await {
                        tracing::warn!(table = %table, error = %e, "could not upload files of a stopped sink");
                    }
                });
            }
        }
    }
}
