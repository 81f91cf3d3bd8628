//! Records → Arrow batches, with the table's bad-data policy.
//!
//! Records are buffered (their bytes in one growing buffer, no allocation per record) and
//! decoded a batch at a time by the format's [`BatchDecoder`]. Clean batches take that fast
//! path only; if a batch fails, its records are decoded one by one to find the bad ones,
//! which then follow the policy: `fail` names the first bad record, `drop` counts and skips.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::compute::concat_batches;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;

use super::{BadData, Format, FormatSpec};
use crate::error::{ConnectorError, Result};

/// Decodes a batch of records of one format.
pub(crate) trait BatchDecoder: Send {
    /// All `records` as one batch of exactly `records.len()` rows, or why not.
    fn decode(&self, records: &[&[u8]]) -> std::result::Result<RecordBatch, String>;

    /// Registry schema ids `records` refer to that the decoder does not know yet.
    fn missing_schemas(&self, _records: &[&[u8]]) -> Vec<u32> {
        Vec::new()
    }

    /// A writer schema fetched from the registry.
    fn add_schema(&self, _id: u32, _schema: String) {}
}

/// A record that could not be decoded.
#[derive(Debug, Clone)]
pub struct BadRecord {
    /// Where it came from (`file.json:12`, `partition 3 offset 77`).
    pub position: String,
    /// Why it could not be decoded.
    pub reason: String,
    /// Its bytes.
    pub raw: Vec<u8>,
}

/// What `bad_data` does with one bad record of `table`: `fail` returns it as the error,
/// `drop` counts it, `dlq` counts it and adds it to `letters` for the dead-letter table.
pub(crate) fn follow_policy(
    policy: BadData,
    table: &str,
    counter: &AtomicU64,
    bad: BadRecord,
    letters: &mut Vec<BadRecord>,
) -> Result<()> {
    match policy {
        BadData::Fail => Err(ConnectorError::BadData {
            table: table.to_string(),
            position: bad.position,
            reason: bad.reason,
        }),
        BadData::Drop => {
            counter.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(table = %table, position = %bad.position, reason = %bad.reason, "dropped a bad record");
            Ok(())
        }
        BadData::Dlq => {
            counter.fetch_add(1, Ordering::Relaxed);
            letters.push(bad);
            Ok(())
        }
    }
}

/// Buffers records and turns them into batches.
pub struct RecordDecoder {
    inner: Box<dyn BatchDecoder>,
    schema: SchemaRef,
    table: String,
    policy: BadData,
    bytes: Vec<u8>,
    /// End offset in `bytes` of each buffered record.
    ends: Vec<usize>,
    /// Where each buffered record came from: a shared source name and an offset in it.
    positions: Vec<(Arc<str>, u64)>,
    bad_records: Arc<AtomicU64>,
    /// Bad records kept for the dead-letter table (`bad_data = 'dlq'`).
    dead_letters: Vec<BadRecord>,
    /// Which records of the last flush made it into its batch (`None`: all of them).
    kept: Option<Vec<usize>>,
    /// Where writer schemas come from (Avro in the Confluent wire format).
    registry: Option<Arc<super::avro::SchemaRegistry>>,
    /// Records are change events (`debezium_json`): decoded envelopes become change rows.
    changes: bool,
}

impl std::fmt::Debug for RecordDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordDecoder")
            .field("table", &self.table)
            .field("pending", &self.ends.len())
            .finish()
    }
}

impl RecordDecoder {
    /// A decoder for `table`'s format producing `schema`; dropped records are counted in
    /// `bad_records`.
    pub fn new(
        table: &str,
        spec: &FormatSpec,
        schema: SchemaRef,
        bad_records: Arc<AtomicU64>,
    ) -> Result<Self> {
        Self::with_registry(table, spec, schema, bad_records, None)
    }

    /// The same, with the connection's schema registry (Avro records name their writer
    /// schema by registry id; call [`RecordDecoder::resolve_schemas`] before a flush).
    pub fn with_registry(
        table: &str,
        spec: &FormatSpec,
        schema: SchemaRef,
        bad_records: Arc<AtomicU64>,
        registry: Option<super::avro::SchemaRegistry>,
    ) -> Result<Self> {
        let inner: Box<dyn BatchDecoder> = match spec.format.unwrap_or(Format::Json) {
            Format::Avro => Box::new(super::avro::AvroDecoder::new(
                spec,
                schema.clone(),
                registry.is_some(),
            )?),
            Format::Json => Box::new(super::json::JsonDecoder::new(spec, schema.clone())?),
            Format::RawString => Box::new(super::raw::RawDecoder::new(schema.clone(), false)?),
            Format::RawBytes => Box::new(super::raw::RawDecoder::new(schema.clone(), true)?),
            Format::DebeziumJson => Box::new(super::debezium::DebeziumDecoder::new(spec, &schema)?),
            other => {
                return Err(ConnectorError::Config(format!(
                    "format '{}' cannot decode individual records; it is only supported by the filesystem connector",
                    other.name()
                )));
            }
        };
        Ok(RecordDecoder {
            inner,
            schema,
            table: table.to_string(),
            policy: spec.bad_data,
            bytes: Vec::new(),
            ends: Vec::new(),
            positions: Vec::new(),
            bad_records,
            dead_letters: Vec::new(),
            kept: None,
            registry: registry.map(Arc::new),
            changes: spec.format == Some(Format::DebeziumJson),
        })
    }

    /// Fetch the writer schemas the buffered records name and the decoder lacks. A schema
    /// the registry does not know leaves its records to the bad-data policy.
    pub async fn resolve_schemas(&mut self) -> Result<()> {
        let Some(registry) = self.registry.clone() else {
            return Ok(());
        };
        let missing = self.inner.missing_schemas(&self.records());
        for id in missing {
            match registry.schema(id).await? {
                Some(schema) => self.inner.add_schema(id, schema),
                None => {
                    tracing::warn!(table = %self.table, id, "the schema registry has no schema with this id")
                }
            }
        }
        Ok(())
    }

    /// Buffer one record from `source` at `offset`.
    pub fn push(&mut self, record: &[u8], source: &Arc<str>, offset: u64) {
        self.bytes.extend_from_slice(record);
        self.ends.push(self.bytes.len());
        self.positions.push((source.clone(), offset));
    }

    /// Records buffered and not yet decoded.
    pub fn pending(&self) -> usize {
        self.ends.len()
    }

    fn records(&self) -> Vec<&[u8]> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let record = &self.bytes[start..end];
                start = end;
                record
            })
            .collect()
    }

    /// The indices (in push order) of the records the last [`RecordDecoder::flush`] kept,
    /// or `None` when it kept all of them: a transport lines its own per-record columns
    /// (Kafka's metadata) up with the batch.
    pub fn last_kept(&self) -> Option<&[usize]> {
        self.kept.as_deref()
    }

    /// Bad records collected for the dead-letter table since the last call.
    pub fn take_bad_records(&mut self) -> Vec<BadRecord> {
        std::mem::take(&mut self.dead_letters)
    }

    /// Decode everything buffered. `Ok(None)` when nothing was buffered (or every record
    /// was dropped).
    pub fn flush(&mut self) -> Result<Option<RecordBatch>> {
        if self.ends.is_empty() {
            return Ok(None);
        }
        let records = self.records();
        let (result, kept) = match self.inner.decode(&records) {
            Ok(batch) => (Ok(Some(batch)), None),
            Err(_) => {
                let mut letters = Vec::new();
                let mut kept = Vec::new();
                let result = self.decode_one_by_one(&records, &mut letters, &mut kept);
                self.dead_letters.extend(letters);
                (result, Some(kept))
            }
        };
        self.kept = kept;
        self.bytes.clear();
        self.ends.clear();
        self.positions.clear();
        match result {
            Ok(Some(envelopes)) if self.changes => {
                Ok(Some(super::debezium::expand(&envelopes, &self.schema)?))
            }
            other => other,
        }
    }

    /// The slow path: find the bad records of a failed batch.
    fn decode_one_by_one(
        &self,
        records: &[&[u8]],
        letters: &mut Vec<BadRecord>,
        kept: &mut Vec<usize>,
    ) -> Result<Option<RecordBatch>> {
        let mut good = Vec::new();
        for (i, record) in records.iter().enumerate() {
            match self.inner.decode(&[record]) {
                Ok(batch) => {
                    good.push(batch);
                    kept.push(i);
                }
                Err(reason) => {
                    let (source, offset) = &self.positions[i];
                    let bad = BadRecord {
                        position: format!("{source} {offset}"),
                        reason,
                        raw: record.to_vec(),
                    };
                    follow_policy(self.policy, &self.table, &self.bad_records, bad, letters)?;
                }
            }
        }
        if good.is_empty() {
            return Ok(None);
        }
        // The batches' own schema: change events decode to envelopes first.
        Ok(Some(concat_batches(&good[0].schema(), &good)?))
    }
}
