//! Reading a topic: each source instance owns the partitions `p` with
//! `p % instances == instance`, assigned directly (no group rebalancing), decodes record
//! values with the table's format and adds the metadata columns. Partitions added to the
//! topic later are picked up by a periodic metadata check.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::ArrayRef;
use arrow::compute::take_record_batch;
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use futures::FutureExt;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::{Value, json};

use super::client::Diagnosed;
use super::config::{KafkaProfile, KafkaTable, ReadMode, StartOffset, client_config};
use super::metadata::{Envelopes, MetadataKind};
use super::{blocking, kafka_error, metadata_client, topic_partitions};
use crate::connector::{Source, SourceContext};
use crate::error::{ConnectorError, Result};
use crate::format::{BadRecord, RecordDecoder};

/// How long a partly filled batch waits for more records.
const LINGER: Duration = Duration::from_millis(50);
/// How often the topic's partition count is checked.
const DISCOVERY_INTERVAL: Duration = Duration::from_secs(10);
/// How often read offsets are committed to the consumer group. Not per batch: a broker
/// serves a connection's requests in order, so frequent commits hold up fetches.
const COMMIT_INTERVAL: Duration = Duration::from_secs(1);

pub(super) struct KafkaSource {
    consumer: StreamConsumer<Diagnosed>,
    /// A second client for the topic's partition list, whose connection errors are reported
    /// (the stream consumer's only surface while it is read).
    metadata_client: Arc<BaseConsumer<Diagnosed>>,
    brokers: String,
    topic: String,
    table: String,
    start: StartOffset,
    instance: usize,
    instances: usize,
    batch_size: usize,
    decoder: RecordDecoder,
    envelopes: Envelopes,
    /// The table's schema, and where the decoded value columns and metadata columns go.
    schema: SchemaRef,
    value_positions: Vec<usize>,
    metadata: Vec<(usize, MetadataKind, Arc<Field>)>,
    /// Next offset to read, per assigned partition.
    offsets: BTreeMap<i32, i64>,
    /// Next offsets from the checkpoint a pipeline resumes from: those partitions start
    /// there, whatever `source.offset` says.
    restored: BTreeMap<i32, i64>,
    /// Next offset per partition after the rows handed downstream (what checkpoints keep):
    /// behind `offsets` while split batches wait in `ready`.
    emitted: BTreeMap<i32, i64>,
    /// Batches of one partition each, waiting to be handed out: (partition, rows, next offset).
    ready: std::collections::VecDeque<(i32, RecordBatch, i64)>,
    /// The partition of the batch last handed out.
    last_split: Option<i32>,
    /// Hand out one partition per batch (the table has an event time).
    split_batches: bool,
    /// When the first record of the buffered batch arrived.
    first_buffered: Option<Instant>,
    next_discovery: Instant,
    /// A preview (table test): commit nothing to the consumer group.
    preview: bool,
    /// Records were read since the last commit to the group.
    uncommitted: bool,
    last_commit: Instant,
    /// `topic t partition 3 offset`, per partition: where a bad record came from.
    positions: BTreeMap<i32, Arc<str>>,
}

impl KafkaSource {
    pub(super) fn new(
        profile: &KafkaProfile,
        table: &KafkaTable,
        ctx: SourceContext,
    ) -> Result<KafkaSource> {
        let options = table.source.clone().unwrap_or_default();
        let start = options.offset.unwrap_or(StartOffset::Latest);
        let group = options.group_id(&ctx.table_name);
        let mut config = client_config(profile, Some(table))?;
        // librdkafka pauses a partition's fetching for this long whenever its local queue is
        // full (default 1 s): with a consumer that drains in bursts, as batches are, that
        // pause dominated (0.15 M records/s; with 1 ms about 1.1 M/s, docs/benchmarks.md).
        // A user's value wins.
        if config.get("fetch.queue.backoff.ms").is_none() {
            config.set("fetch.queue.backoff.ms", "1");
        }
        config
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set(
                "auto.offset.reset",
                if start == StartOffset::Latest {
                    "latest"
                } else {
                    "earliest"
                },
            )
            .set(
                "isolation.level",
                match options.read_mode.unwrap_or(ReadMode::ReadUncommitted) {
                    ReadMode::ReadCommitted => "read_committed",
                    ReadMode::ReadUncommitted => "read_uncommitted",
                },
            );
        let consumer: StreamConsumer<Diagnosed> = config
            .create_with_context(Diagnosed::for_profile(profile))
            .map_err(|e| kafka_error("cannot create a consumer", e))?;
        let mut value_fields = Vec::new();
        let mut value_positions = Vec::new();
        let mut metadata = Vec::new();
        for (position, field) in ctx.schema.fields().iter().enumerate() {
            match MetadataKind::of_column(field, table.metadata.as_ref())? {
                Some(kind) => {
                    kind.check_type(field)?;
                    metadata.push((position, kind, field.clone()));
                }
                None => {
                    value_fields.push(field.clone());
                    value_positions.push(position);
                }
            }
        }
        let value_schema = Arc::new(Schema::new(value_fields));
        let decoder = RecordDecoder::with_registry(
            &ctx.table_name,
            &ctx.format,
            value_schema,
            ctx.bad_records.clone(),
            profile.registry_client(),
        )?;
        // Snapshots carry `offsets` as {"<partition>": next offset}.
        let restored = ctx
            .restore
            .as_ref()
            .and_then(|r| r.get("offsets"))
            .and_then(|o| serde_json::from_value::<BTreeMap<i32, i64>>(o.clone()).ok())
            .unwrap_or_default();
        let keep_headers = metadata
            .iter()
            .any(|(_, kind, _)| *kind == MetadataKind::Headers);
        Ok(KafkaSource {
            consumer,
            metadata_client: Arc::new(metadata_client(profile, Some(table))?),
            brokers: profile.brokers()?.to_string(),
            topic: table.topic.clone(),
            table: ctx.table_name.clone(),
            start,
            instance: ctx.partition,
            instances: ctx.partitions.max(1),
            batch_size: ctx.batch_size.max(1),
            decoder,
            envelopes: Envelopes::new(keep_headers),
            schema: ctx.schema.clone(),
            value_positions,
            metadata,
            offsets: BTreeMap::new(),
            emitted: BTreeMap::new(),
            ready: std::collections::VecDeque::new(),
            last_split: None,
            split_batches: ctx.event_time,
            restored,
            first_buffered: None,
            // Partitions are assigned on the first call.
            next_discovery: Instant::now(),
            positions: BTreeMap::new(),
            preview: ctx.preview,
            uncommitted: false,
            last_commit: Instant::now(),
        })
    }

    /// Assign this instance's partitions that are not assigned yet.
    async fn discover_partitions(&mut self) -> Result<()> {
        self.next_discovery = Instant::now() + DISCOVERY_INTERVAL;
        let consumer = self.metadata_client.clone();
        let topic = self.topic.clone();
        let brokers = self.brokers.clone();
        let partitions = blocking(move || {
            topic_partitions(consumer.as_ref(), &brokers, &topic, Duration::from_secs(10))
        })
        .await??;
        let mine: Vec<i32> = partitions
            .into_iter()
            .filter(|p| (*p as usize) % self.instances == self.instance)
            .filter(|p| !self.offsets.contains_key(p))
            .collect();
        if mine.is_empty() {
            return Ok(());
        }
        // Partitions found after the first assignment (or after the checkpoint resumed from)
        // are new: read from their start.
        let first_assignment = self.offsets.is_empty() && self.restored.is_empty();
        let mut list = TopicPartitionList::new();
        for p in &mine {
            let offset = match (self.restored.get(p).copied(), self.start) {
                (Some(next), _) if next >= 0 => Offset::Offset(next),
                // Known to the checkpoint but not read yet: as at the first start.
                (Some(_), start) => start_offset(start),
                (None, _) if !first_assignment => Offset::Beginning,
                (None, start) => start_offset(start),
            };
            list.add_partition_offset(&self.topic, *p, offset)
                .map_err(|e| kafka_error("cannot assign partitions", e))?;
            // A resumed partition keeps its position in snapshots until it reads more.
            let next = match offset {
                Offset::Offset(next) => next,
                _ => -1,
            };
            self.offsets.insert(*p, next);
            self.emitted.insert(*p, next);
        }
        self.consumer
            .incremental_assign(&list)
            .map_err(|e| kafka_error("cannot assign partitions", e))?;
        tracing::info!(table = %self.table, topic = %self.topic, partitions = ?mine, "kafka partitions assigned");
        Ok(())
    }

    /// Decode what is buffered into a batch of the table's schema (`None` if every record
    /// was dropped as bad data).
    async fn flush(&mut self) -> Result<Option<RecordBatch>> {
        self.first_buffered = None;
        // Avro in the Confluent wire format: fetch writer schemas seen for the first time.
        self.decoder.resolve_schemas().await?;
        let values = self.decoder.flush()?;
        let (metadata, partitions, offsets) = self
            .envelopes
            .columns(&self.metadata, self.decoder.last_kept())?;
        let Some(values) = values else {
            self.emitted = self.offsets.clone();
            return Ok(None);
        };
        let mut columns: Vec<Option<ArrayRef>> = vec![None; self.schema.fields().len()];
        for (i, position) in self.value_positions.iter().enumerate() {
            columns[*position] = Some(values.column(i).clone());
        }
        for (position, column) in metadata {
            columns[position] = Some(column);
        }
        let columns = columns
            .into_iter()
            .map(|c| {
                c.ok_or_else(|| ConnectorError::Config("kafka: a column was not filled".into()))
            })
            .collect::<Result<Vec<_>>>()?;
        let batch = RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(values.num_rows())),
        )?;
        self.commit_to_group();
        // With event time, one batch per partition, so that watermarks advance per
        // partition. (Debezium change events expand to other rows than records: those
        // stay whole.)
        if !self.split_batches || partitions.len() != batch.num_rows() {
            self.emitted = self.offsets.clone();
            self.last_split = None;
            return Ok(Some(batch));
        }
        let mut by_partition: BTreeMap<i32, (Vec<u32>, i64)> = BTreeMap::new();
        for (row, (p, offset)) in partitions.iter().zip(&offsets).enumerate() {
            let entry = by_partition.entry(*p).or_insert((Vec::new(), -1));
            entry.0.push(row as u32);
            entry.1 = entry.1.max(offset + 1);
        }
        if by_partition.len() == 1 {
            self.ready.push_back((
                partitions[0],
                batch,
                offsets.iter().max().map_or(-1, |o| o + 1),
            ));
        } else {
            for (p, (rows, next)) in by_partition {
                let rows = take_record_batch(&batch, &arrow::array::UInt32Array::from(rows))?;
                self.ready.push_back((p, rows, next));
            }
        }
        Ok(self.next_ready())
    }

    /// Hand out the next one-partition batch, moving that partition's emitted offset.
    fn next_ready(&mut self) -> Option<RecordBatch> {
        let (partition, batch, next) = self.ready.pop_front()?;
        self.last_split = Some(partition);
        if self.ready.is_empty() {
            // Everything buffered is out (bad records included).
            self.emitted = self.offsets.clone();
        } else {
            self.emitted.insert(partition, next);
        }
        Some(batch)
    }

    /// Commit the offsets read so far to the consumer group (asynchronously, at most once
    /// per `COMMIT_INTERVAL`, and when reading pauses), for monitoring tools and
    /// `source.offset = 'group'`.
    fn commit_to_group(&mut self) {
        if self.preview || !self.uncommitted || self.last_commit.elapsed() < COMMIT_INTERVAL {
            return;
        }
        self.uncommitted = false;
        self.last_commit = Instant::now();
        let mut list = TopicPartitionList::new();
        for (p, next) in &self.offsets {
            if *next >= 0
                && let Err(e) = list.add_partition_offset(&self.topic, *p, Offset::Offset(*next))
            {
                tracing::warn!(error = %e, "kafka: cannot list an offset to commit");
            }
        }
        if list.count() > 0
            && let Err(e) = self.consumer.commit(&list, CommitMode::Async)
        {
            tracing::warn!(table = %self.table, error = %e, "kafka: committing offsets to the group failed");
        }
    }
}

/// Where a partition is first read under `source.offset`.
fn start_offset(start: StartOffset) -> Offset {
    match start {
        StartOffset::Earliest => Offset::Beginning,
        StartOffset::Latest => Offset::End,
        // The group's committed offset, else `auto.offset.reset` (earliest).
        StartOffset::Group => Offset::Stored,
    }
}

#[async_trait]
impl Source for KafkaSource {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        if let Some(batch) = self.next_ready() {
            return Ok(Some(batch));
        }
        loop {
            if Instant::now() >= self.next_discovery {
                self.discover_partitions().await?;
            }
            let wait = match self.first_buffered {
                Some(first) => LINGER.saturating_sub(first.elapsed()),
                // Wake up for the next partition check, and to commit what was read.
                None => self
                    .next_discovery
                    .saturating_duration_since(Instant::now())
                    .min(COMMIT_INTERVAL),
            };
            // Buffer one record; the fields are borrowed one by one, as the message borrows
            // the consumer.
            macro_rules! buffer {
                ($message:expr) => {{
                    let message = $message;
                    let partition = message.partition();
                    let topic = &self.topic;
                    let position = self.positions.entry(partition).or_insert_with(|| {
                        Arc::from(format!("topic {topic} partition {partition} offset"))
                    });
                    self.decoder.push(
                        message.payload().unwrap_or_default(),
                        position,
                        message.offset().max(0) as u64,
                    );
                    self.envelopes.push(&message);
                    self.offsets.insert(partition, message.offset() + 1);
                    self.uncommitted = true;
                }};
            }
            match tokio::time::timeout(wait, self.consumer.recv()).await {
                Ok(Ok(message)) => {
                    buffer!(message);
                    self.first_buffered.get_or_insert_with(Instant::now);
                    // Records already waiting are taken without a timer each.
                    while self.decoder.pending() < self.batch_size {
                        match self.consumer.recv().now_or_never() {
                            Some(Ok(message)) => buffer!(message),
                            Some(Err(e)) => {
                                tracing::warn!(table = %self.table, topic = %self.topic, error = %e, "kafka consumer error");
                                break;
                            }
                            None => break,
                        }
                    }
                    if self.decoder.pending() >= self.batch_size
                        && let Some(batch) = self.flush().await?
                    {
                        return Ok(Some(batch));
                    }
                }
                Ok(Err(e)) => {
                    // librdkafka reports broker trouble here and keeps retrying itself.
                    tracing::warn!(table = %self.table, topic = %self.topic, error = %e, "kafka consumer error");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(_) => {
                    if self.first_buffered.is_some()
                        && let Some(batch) = self.flush().await?
                    {
                        return Ok(Some(batch));
                    }
                    self.commit_to_group();
                }
            }
        }
    }

    fn snapshot(&self) -> Value {
        json!({ "topic": self.topic, "offsets": self.emitted })
    }

    fn batch_split(&self) -> Option<u64> {
        self.last_split.map(|p| p as u64)
    }

    fn splits(&self) -> Vec<u64> {
        self.offsets.keys().map(|p| *p as u64).collect()
    }

    fn take_bad_records(&mut self) -> Vec<BadRecord> {
        self.decoder.take_bad_records()
    }
}
