//! Writing a topic: one record per row (per change event for `debezium_json`), with an
//! optional key and timestamp taken from columns. Deliveries are awaited in bulk: a batch's
//! records are queued at once and the sink waits for the broker's acknowledgements when
//! many are in flight, before a checkpoint and when the input ends.
//!
//! `sink.commit_mode = 'exactly_once'` writes each checkpoint's records in one Kafka
//! transaction: begun with the first record after a checkpoint, flushed at the barrier
//! (`prepare`) and committed once the checkpoint is durable (`commit`), so read_committed
//! consumers never see records a resumed pipeline writes again. The transactional id is
//! stable per pipeline and table: a restarted pipeline's producer fences the crashed one and
//! aborts its open transaction.
//!
//! Each transaction also records its checkpoint's epoch, as the offset of partition 0 of the
//! topic in the consumer group named like the transactional id (`send_offsets_to_transaction`,
//! atomic with the records). A crash between a checkpoint becoming durable and its commit
//! leaves that epoch unrecorded, and the pipeline resumes from the checkpoint before it
//! ([`committed_epoch`]): librdkafka cannot commit a crashed producer's transaction, so its
//! records are written again instead of lost.

use std::ops::Range;
use std::time::Duration;

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::compute::cast;
use arrow::datatypes::{DataType, SchemaRef, TimeUnit, TimestampMillisecondType};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};

use super::client::Diagnosed;
use super::config::{CommitMode, KafkaProfile, KafkaTable, SinkOptions, client_config};
use super::metadata::{HEADERS_COLUMN, MetadataKind};
use super::{io_error, kafka_error};
use crate::connector::{Sink, SinkContext};
use crate::error::{ConnectorError, Result};
use crate::format::{CHANGE_COLUMN, Format, RecordEncoder};

/// Acknowledgements awaited once this many records are in flight.
const MAX_IN_FLIGHT: usize = 50_000;
/// How long closing waits for the last records to be acknowledged.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(30);
/// How long transaction calls (init, commit) may take.
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(30);

/// The state of an exactly-once sink's transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transactions {
    /// At-least-once: no transactions.
    Off,
    /// `init_transactions` has not run yet (it fences earlier producers of the id).
    Uninitialized,
    /// Ready; no transaction open.
    Idle,
    /// A transaction is open (records since the last checkpoint).
    Open,
}

pub(super) struct KafkaSink {
    producer: FutureProducer<Diagnosed>,
    topic: String,
    encoder: RecordEncoder,
    key_column: Option<usize>,
    timestamp_column: Option<usize>,
    headers_column: Option<usize>,
    buffer: Vec<u8>,
    ranges: Vec<Range<usize>>,
    in_flight: Vec<DeliveryFuture>,
    /// `debezium_json` encodes changes itself; other formats write them as upserts.
    debezium: bool,
    transactions: Transactions,
    /// The transactional id, for exactly-once.
    transactional_id: Option<String>,
    /// Exactly-once: the consumer group each transaction records its epoch in.
    epoch_group: Option<Arc<ConsumerGroupMetadata>>,
    /// Avro in the Confluent wire format: the registry and subject to register the
    /// writer schema under before the first record.
    registration: Option<(crate::format::avro::SchemaRegistry, String)>,
}

/// The position of the column `option` names, checked to be of an accepted type.
fn column_of(
    schema: &SchemaRef,
    option: &str,
    name: Option<&str>,
    accepted: fn(&DataType) -> bool,
    expected: &str,
) -> Result<Option<usize>> {
    let Some(name) = name else {
        return Ok(None);
    };
    let (i, field) = schema.column_with_name(name).ok_or_else(|| {
        let columns: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        ConnectorError::InvalidValue {
            connector: "kafka".into(),
            key: option.into(),
            value: name.into(),
            expected: format!("a column of the table ({})", columns.join(", ")),
        }
    })?;
    if !accepted(field.data_type()) {
        return Err(ConnectorError::InvalidValue {
            connector: "kafka".into(),
            key: option.into(),
            value: name.into(),
            expected: format!("{expected} (column '{name}' is {})", field.data_type()),
        });
    }
    Ok(Some(i))
}

/// The positions of the `sink.key_field` and `sink.timestamp_field` columns, checked: a key
/// has a text form (text, bytes, numbers, ...), a timestamp is a TIMESTAMP.
pub(super) fn key_and_timestamp_columns(
    schema: &SchemaRef,
    options: &SinkOptions,
) -> Result<(Option<usize>, Option<usize>)> {
    let key = column_of(
        schema,
        "sink.key_field",
        options.key_field.as_deref(),
        |t| {
            !matches!(
                t,
                DataType::Struct(_) | DataType::List(_) | DataType::Map(..)
            )
        },
        "a column with a text form",
    )?;
    let timestamp = column_of(
        schema,
        "sink.timestamp_field",
        options.timestamp_field.as_deref(),
        |t| matches!(t, DataType::Timestamp(..)),
        "a TIMESTAMP column",
    )?;
    Ok((key, timestamp))
}

impl KafkaSink {
    pub(super) fn new(
        profile: &KafkaProfile,
        table: &KafkaTable,
        ctx: SinkContext,
    ) -> Result<Self> {
        let options = table.sink.clone().unwrap_or_default();
        let (key_column, timestamp_column) = key_and_timestamp_columns(&ctx.schema, &options)?;
        // A `_headers` column holds each record's headers; it is not part of the value.
        let headers_column = ctx.schema.index_of(HEADERS_COLUMN).ok();
        if let Some(i) = headers_column {
            MetadataKind::Headers.check_type(ctx.schema.field(i))?;
        }
        let value_schema = match headers_column {
            Some(i) => Arc::new(
                ctx.schema.as_ref().clone().project(
                    &(0..ctx.schema.fields().len())
                        .filter(|c| *c != i)
                        .collect::<Vec<_>>(),
                )?,
            ),
            None => ctx.schema.clone(),
        };
        let mut config = client_config(profile, Some(table))?;
        let transactional_id = match options.commit_mode {
            Some(CommitMode::ExactlyOnce) => {
                let Some(pipeline) = ctx.pipeline_id.as_deref().filter(|_| ctx.checkpointed) else {
                    return Err(ConnectorError::InvalidValue {
                        connector: "kafka".into(),
                        key: "sink.commit_mode".into(),
                        value: "exactly_once".into(),
                        expected: format!(
                            "at_least_once for table '{}' here: exactly_once needs a pipeline that takes checkpoints (checkpoint_interval > 0, and a plan whose state checkpoints capture; see the server log)",
                            ctx.table_name
                        ),
                    });
                };
                let id = transactional_id(pipeline, &ctx.table_name);
                config.set("transactional.id", &id);
                Some(id)
            }
            _ => None,
        };
        let epoch_group = match &transactional_id {
            Some(id) => Some(Arc::new(epoch_group(profile, table, id)?)),
            None => None,
        };
        let producer: FutureProducer<Diagnosed> = config
            .create_with_context(Diagnosed::for_profile(profile))
            .map_err(|e| kafka_error("cannot create a producer", e))?;
        let registry = profile.registry_client();
        let registration = match ctx.format.format {
            Some(Format::Avro) => {
                match crate::format::avro::AvroFraming::of(&ctx.format, registry.is_some())? {
                    crate::format::avro::AvroFraming::Confluent => {
                        let Some(registry) = registry else {
                            return Err(ConnectorError::InvalidValue {
                                connector: "kafka".into(),
                                key: "avro.confluent_schema_registry".into(),
                                value: "true".into(),
                                expected: "false here: the connection profile has no schema registry (schema_registry.endpoint)".into(),
                            });
                        };
                        Some((registry, format!("{}-value", table.topic)))
                    }
                    crate::format::avro::AvroFraming::Raw(_) => None,
                }
            }
            _ => None,
        };
        Ok(KafkaSink {
            registration,
            producer,
            topic: table.topic.clone(),
            encoder: RecordEncoder::new(&ctx.format, &value_schema)?,
            key_column,
            timestamp_column,
            headers_column,
            buffer: Vec::new(),
            ranges: Vec::new(),
            in_flight: Vec::new(),
            debezium: ctx.format.format == Some(Format::DebeziumJson),
            transactions: if transactional_id.is_some() {
                Transactions::Uninitialized
            } else {
                Transactions::Off
            },
            transactional_id,
            epoch_group,
        })
    }
}

/// The transactional id of a pipeline's exactly-once sink table (also the name of the
/// consumer group its transactions record their epochs in).
fn transactional_id(pipeline: &str, table_name: &str) -> String {
    format!("laminar-{pipeline}-{table_name}")
}

/// A client of the consumer group `group` (it joins nothing).
fn group_client(
    profile: &KafkaProfile,
    table: &KafkaTable,
    group: &str,
) -> Result<BaseConsumer<Diagnosed>> {
    client_config(profile, Some(table))?
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create_with_context(Diagnosed::for_profile(profile))
        .map_err(|e| kafka_error("cannot create a Kafka client", e))
}

fn epoch_group(
    profile: &KafkaProfile,
    table: &KafkaTable,
    group: &str,
) -> Result<ConsumerGroupMetadata> {
    group_client(profile, table, group)?
        .group_metadata()
        .ok_or_else(|| io_error(format!("no consumer group metadata for '{group}'")))
}

/// The epoch marker: partition 0 of the topic at offset `epoch`.
fn epoch_marker(topic: &str, epoch: Option<u64>) -> Result<TopicPartitionList> {
    let mut list = TopicPartitionList::new();
    let offset = match epoch {
        Some(epoch) => Offset::Offset(i64::try_from(epoch).unwrap_or(i64::MAX)),
        None => Offset::Invalid,
    };
    list.add_partition_offset(topic, 0, offset)
        .map_err(|e| kafka_error("cannot build the checkpoint epoch marker", e))?;
    Ok(list)
}

/// The newest epoch an exactly-once sink table committed in a pipeline (see the module
/// documentation), 0 before its first commit; `None` for other sinks.
pub(super) async fn committed_epoch(
    profile: &KafkaProfile,
    table: &KafkaTable,
    ctx: &SinkContext,
) -> Result<Option<u64>> {
    let exactly_once =
        table.sink.as_ref().and_then(|s| s.commit_mode) == Some(CommitMode::ExactlyOnce);
    let Some(pipeline) = ctx.pipeline_id.as_deref().filter(|_| exactly_once) else {
        return Ok(None);
    };
    let group = transactional_id(pipeline, &ctx.table_name);
    // Fence the crashed producer first: this aborts its open transaction, whose pending
    // epoch record would otherwise keep the committed offset unstable.
    let fence: rdkafka::producer::BaseProducer<Diagnosed> = client_config(profile, Some(table))?
        .set("transactional.id", &group)
        .create_with_context(Diagnosed::for_profile(profile))
        .map_err(|e| kafka_error("cannot create a producer", e))?;
    super::blocking(move || fence.init_transactions(TRANSACTION_TIMEOUT))
        .await?
        .map_err(|e| kafka_error("initializing Kafka transactions failed", e))?;
    let client = group_client(profile, table, &group)?;
    let marker = epoch_marker(&table.topic, None)?;
    let committed = super::blocking(move || client.committed_offsets(marker, TRANSACTION_TIMEOUT))
        .await?
        .map_err(|e| {
            kafka_error(
                &format!("reading the committed epoch of '{group}' failed"),
                e,
            )
        })?;
    // No epoch recorded: no transaction committed yet (or the group's offsets expired).
    let epoch = committed.elements().first().and_then(|e| match e.offset() {
        Offset::Offset(epoch) => u64::try_from(epoch).ok(),
        _ => None,
    });
    Ok(Some(epoch.unwrap_or(0)))
}

impl KafkaSink {
    /// Run a blocking producer call off the async workers.
    async fn blocking<T: Send + 'static>(
        &self,
        what: &'static str,
        call: impl FnOnce(&FutureProducer<Diagnosed>) -> std::result::Result<T, KafkaError>
        + Send
        + 'static,
    ) -> Result<T> {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || call(&producer))
            .await
            .map_err(|e| io_error(format!("{what}: {e}")))?
            .map_err(|e| kafka_error(what, e))
    }

    /// Exactly-once: make sure a transaction is open before records are sent.
    async fn open_transaction(&mut self) -> Result<()> {
        if self.transactions == Transactions::Uninitialized {
            self.blocking("initializing Kafka transactions failed", |p| {
                p.init_transactions(TRANSACTION_TIMEOUT)
            })
            .await?;
            self.transactions = Transactions::Idle;
        }
        if self.transactions == Transactions::Idle {
            self.producer
                .begin_transaction()
                .map_err(|e| kafka_error("beginning a Kafka transaction failed", e))?;
            self.transactions = Transactions::Open;
        }
        Ok(())
    }
}

/// The change kinds of `batch` when it carries changes to write as upserts (a last `_op`
/// column, and a format other than `debezium_json`, which encodes them itself).
fn upsert_ops(batch: &RecordBatch, debezium: bool) -> Result<Option<StringArray>> {
    let schema = batch.schema();
    match schema.fields().last() {
        Some(f) if !debezium && f.name() == CHANGE_COLUMN => Ok(Some(
            batch
                .column(batch.num_columns() - 1)
                .as_string_opt::<i32>()
                .ok_or_else(|| ConnectorError::Config("kafka: the _op column is not text".into()))?
                .clone(),
        )),
        _ => Ok(None),
    }
}

/// Each row's headers from a `_headers` column: a JSON object (TEXT; string values as they
/// are, others as JSON text) or a MAP of names to bytes or text.
fn record_headers(column: &ArrayRef) -> Result<Vec<Option<OwnedHeaders>>> {
    let mut out = Vec::with_capacity(column.len());
    if let Some(text) = column.as_string_opt::<i32>() {
        for row in text.iter() {
            let Some(row) = row else {
                out.push(None);
                continue;
            };
            let object: serde_json::Map<String, Value> = serde_json::from_str(row).map_err(|e| {
                ConnectorError::Config(format!(
                    "kafka: _headers must hold a JSON object of header names to values, not {row:?}: {e}"
                ))
            })?;
            let mut headers = OwnedHeaders::new_with_capacity(object.len());
            for (name, value) in &object {
                let bytes = match value {
                    Value::String(s) => s.as_bytes().to_vec(),
                    Value::Null => {
                        headers = headers.insert(Header {
                            key: name,
                            value: None::<&[u8]>,
                        });
                        continue;
                    }
                    other => other.to_string().into_bytes(),
                };
                headers = headers.insert(Header {
                    key: name,
                    value: Some(&bytes),
                });
            }
            out.push(Some(headers));
        }
        return Ok(out);
    }
    let map = column.as_map_opt().ok_or_else(|| {
        ConnectorError::Config("kafka: _headers must be TEXT (a JSON object) or a MAP".into())
    })?;
    let names = cast(map.keys(), &DataType::Utf8)?;
    let names = names.as_string::<i32>();
    let values = cast(map.values(), &DataType::Binary)?;
    let values = values.as_binary::<i32>();
    let offsets = map.value_offsets();
    for row in 0..map.len() {
        if map.is_null(row) {
            out.push(None);
            continue;
        }
        let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
        let mut headers = OwnedHeaders::new_with_capacity(end - start);
        for entry in start..end {
            let value = values.is_valid(entry).then(|| values.value(entry));
            headers = headers.insert(Header {
                key: names.value(entry),
                value,
            });
        }
        out.push(Some(headers));
    }
    Ok(out)
}

/// Wait for every record in flight; the first failure is the error.
async fn acknowledged(in_flight: &mut Vec<DeliveryFuture>, topic: &str) -> Result<()> {
    for delivery in in_flight.drain(..) {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => {
                return Err(kafka_error(
                    &format!("writing to topic '{topic}' failed"),
                    e,
                ));
            }
            Err(_) => {
                return Err(io_error(format!(
                    "writing to topic '{topic}': the producer went away"
                )));
            }
        }
    }
    Ok(())
}

#[async_trait]
impl Sink for KafkaSink {
    async fn write(&mut self, batch: RecordBatch) -> Result<()> {
        if let Some((registry, subject)) = self.registration.take() {
            let schema = self.encoder.avro_schema().unwrap_or_default().to_string();
            let id = registry.register(&subject, &schema).await?;
            tracing::info!(topic = %self.topic, subject = %subject, id, "registered the Avro schema");
            self.encoder = self.encoder.with_schema_id(id)?;
        }
        if self.transactions != Transactions::Off {
            self.open_transaction().await?;
        }
        self.buffer.clear();
        self.ranges.clear();
        // Changes of an updating query (a last `_op` column) written as keyed upserts: the
        // new value for +I/+U, a tombstone (no value) for -D, nothing for -U (its +U follows).
        let upserts = upsert_ops(&batch, self.debezium)?;
        let data_columns = batch.num_columns() - usize::from(upserts.is_some());
        let headers = match self.headers_column {
            Some(i) => Some(record_headers(batch.column(i))?),
            None => None,
        };
        // The value: the table's columns without `_headers` (and `_op` for upserts).
        let value_columns: Vec<usize> = (0..batch.num_columns())
            .filter(|c| Some(*c) != self.headers_column && (*c < data_columns || self.debezium))
            .collect();
        let value = if value_columns.len() == batch.num_columns() {
            batch.clone()
        } else {
            batch.project(&value_columns)?
        };
        self.encoder
            .encode_records(&value, &mut self.buffer, &mut self.ranges)?;
        // Keys and timestamps go with rows; change events that merge rows (debezium's
        // updates) take the key of their last row.
        let per_row = self.ranges.len() == batch.num_rows();
        let keys = match self.key_column {
            Some(i) => Some(cast(batch.column(i), &DataType::Binary)?),
            None => None,
        };
        let timestamps = match self.timestamp_column {
            Some(i) => Some(cast(
                batch.column(i),
                &DataType::Timestamp(TimeUnit::Millisecond, None),
            )?),
            None => None,
        };
        let keys = keys.as_ref().map(|k| k.as_binary::<i32>());
        let timestamps = timestamps
            .as_ref()
            .map(|t| t.as_primitive::<TimestampMillisecondType>());
        for (i, range) in self.ranges.iter().enumerate() {
            let row = if per_row {
                i
            } else {
                batch.num_rows().saturating_sub(1)
            };
            let mut record = FutureRecord::<[u8], [u8]>::to(&self.topic);
            match upserts.as_ref().map(|ops| ops.value(row)) {
                Some("-U") => continue,
                Some("-D") => {}
                _ => record = record.payload(&self.buffer[range.clone()]),
            }
            if let Some(keys) = keys
                && keys.is_valid(row)
            {
                record = record.key(keys.value(row));
            }
            if let Some(timestamps) = timestamps
                && timestamps.is_valid(row)
            {
                record = record.timestamp(timestamps.value(row));
            }
            if let Some(Some(h)) = headers.as_ref().map(|h| h[row].as_ref()) {
                record = record.headers(h.clone());
            }
            loop {
                match self.producer.send_result(record) {
                    Ok(delivery) => {
                        self.in_flight.push(delivery);
                        break;
                    }
                    // librdkafka's queue is full: wait for what is in flight, then retry.
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        acknowledged(&mut self.in_flight, &self.topic).await?;
                        if self.in_flight.is_empty() {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                    }
                    Err((e, _)) => {
                        return Err(kafka_error(
                            &format!("writing to topic '{}' failed", self.topic),
                            e,
                        ));
                    }
                }
            }
        }
        if self.in_flight.len() >= MAX_IN_FLIGHT {
            acknowledged(&mut self.in_flight, &self.topic).await?;
        }
        Ok(())
    }

    async fn prepare(&mut self, epoch: u64) -> Result<Value> {
        acknowledged(&mut self.in_flight, &self.topic).await?;
        if let Some(group) = self.epoch_group.clone() {
            // Every checkpoint commits a transaction, if only to record its epoch.
            self.open_transaction().await?;
            let marker = epoch_marker(&self.topic, Some(epoch))?;
            self.blocking(
                "recording the checkpoint in the Kafka transaction failed",
                move |p| p.send_offsets_to_transaction(&marker, &group, TRANSACTION_TIMEOUT),
            )
            .await?;
        }
        Ok(match &self.transactional_id {
            Some(id) => json!({ "transactional_id": id }),
            None => Value::Null,
        })
    }

    async fn commit(&mut self, epoch: u64, prepared: Value) -> Result<()> {
        match self.transactions {
            Transactions::Open => {
                self.blocking("committing the Kafka transaction failed", |p| {
                    p.commit_transaction(TRANSACTION_TIMEOUT)
                })
                .await?;
                self.transactions = Transactions::Idle;
            }
            // A resumed pipeline: the checkpoint resumed from is one whose transaction
            // committed (the runtime asked `committed_epoch`), so there is nothing to redo.
            _ => {
                tracing::debug!(topic = %self.topic, epoch, ?prepared, "resumed at a committed Kafka transaction");
            }
        }
        Ok(())
    }

    async fn close(&mut self) -> Result<()> {
        acknowledged(&mut self.in_flight, &self.topic).await?;
        if self.transactions == Transactions::Open {
            self.blocking("committing the Kafka transaction failed", |p| {
                p.commit_transaction(TRANSACTION_TIMEOUT)
            })
            .await?;
            self.transactions = Transactions::Idle;
        }
        self.producer
            .flush(FLUSH_TIMEOUT)
            .map_err(|e| kafka_error("flushing the producer failed", e))
    }
}
