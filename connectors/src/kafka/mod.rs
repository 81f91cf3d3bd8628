//! `kafka`: topics as sources and sinks, through librdkafka (`rdkafka`).
//!
//! Sources read every partition in parallel (instance `i` of `n` owns the partitions `p`
//! with `p % n == i`), decode values with the table's format and fill the metadata columns
//! `_timestamp`, `_key`, `_partition`, `_offset`, `_headers`. Sinks write one record per
//! row with an optional key and timestamp column.

mod client;
mod config;
mod metadata;
mod msk_iam;
mod sink;
mod source;

use std::time::Duration;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

pub use config::{KafkaProfile, KafkaTable};

use crate::connector::{
    Connector, ConnectorMetadata, Sink, SinkContext, Source, SourceContext, TableRole, TestOutcome,
};
use crate::error::{ConnectorError, Result};
use crate::format::infer::json_schema;
use crate::format::{Format, FormatSpec};
use client::{Diagnosed, explain_connection_error};
use config::client_config;
use metadata::MetadataKind;

/// The Kafka connector.
#[derive(Debug, Clone, Copy)]
pub struct KafkaConnector;

/// A failure talking to Kafka, as a connector error.
pub(crate) fn io_error(message: String) -> ConnectorError {
    ConnectorError::Io {
        connector: "kafka".into(),
        message,
    }
}

/// A Kafka failure as a connector error, saying what was being done.
pub(crate) fn kafka_error(doing: &str, e: KafkaError) -> ConnectorError {
    io_error(format!("{doing}: {e}"))
}

/// Run librdkafka's blocking calls (metadata requests, polls) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(call)
        .await
        .map_err(|e| io_error(format!("a blocking Kafka call failed: {e}")))
}

/// The partitions of `topic`, or an error naming the topic when the brokers (`brokers`, for
/// the message) do not have it or cannot be reached.
pub(crate) fn topic_partitions(
    consumer: &BaseConsumer<Diagnosed>,
    brokers: &str,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<i32>> {
    let metadata = consumer.fetch_metadata(Some(topic), timeout).map_err(|e| {
        io_error(format!(
            "cannot look up topic '{topic}': {}",
            explain_connection_error(brokers, &e, client::reported(consumer))
        ))
    })?;
    // Serve queued client events (logs, transient errors) so they do not pile up in a
    // long-lived client that is otherwise never polled.
    client::serve_events(consumer);
    let found = metadata.topics().iter().find(|t| t.name() == topic);
    match found {
        Some(t) if t.error().is_none() && !t.partitions().is_empty() => {
            Ok(t.partitions().iter().map(|p| p.id()).collect())
        }
        _ => Err(io_error(format!(
            "topic '{topic}' does not exist on the brokers (create it first, or check the topic name)"
        ))),
    }
}

/// Records sampled for schema inference.
const SAMPLE_RECORDS: usize = 100;

/// Up to `count` record values from the start of every partition of `topic`, waiting at
/// most `timeout` (blocking: run it off the async threads).
fn sample_values(
    client: &BaseConsumer<Diagnosed>,
    brokers: &str,
    topic: &str,
    count: usize,
    timeout: Duration,
) -> Result<Vec<Vec<u8>>> {
    let mut list = TopicPartitionList::new();
    for p in topic_partitions(client, brokers, topic, timeout)? {
        list.add_partition_offset(topic, p, Offset::Beginning)
            .map_err(|e| kafka_error("cannot assign partitions", e))?;
    }
    client
        .assign(&list)
        .map_err(|e| kafka_error("cannot assign partitions", e))?;
    let deadline = std::time::Instant::now() + timeout;
    let mut values = Vec::new();
    while values.len() < count {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        match client.poll(left.min(Duration::from_millis(200))) {
            Some(Ok(message)) => {
                if let Some(payload) = message.payload() {
                    values.push(payload.to_vec());
                }
            }
            Some(Err(e)) => return Err(kafka_error(&format!("reading topic '{topic}'"), e)),
            None => {}
        }
    }
    Ok(values)
}

/// A consumer for metadata requests (and sampling) with `profile`'s settings and `table`'s
/// client configs.
pub(crate) fn metadata_client(
    profile: &KafkaProfile,
    table: Option<&KafkaTable>,
) -> Result<BaseConsumer<Diagnosed>> {
    client_config(profile, table)?
        .set("socket.timeout.ms", "10000")
        // A group id for `assign` + `poll` when sampling; nothing is committed.
        .set("group.id", "laminar-sampler")
        .set("enable.auto.commit", "false")
        .create_with_context(Diagnosed::for_profile(profile))
        .map_err(|e| kafka_error("cannot create a client", e))
}

#[async_trait]
impl Connector for KafkaConnector {
    type ProfileConfig = KafkaProfile;
    type TableConfig = KafkaTable;

    fn metadata(&self) -> ConnectorMetadata {
        ConnectorMetadata {
            id: "kafka",
            name: "Kafka",
            description: "Reads and writes Kafka topics (any Kafka-compatible broker)",
            category: "messaging",
            source: true,
            sink: true,
            formats: &["json", "avro", "raw_string", "raw_bytes", "debezium_json"],
        }
    }

    /// Changes of updating queries: as Debezium events, or as upserts keyed by
    /// `sink.key_field` (deletes are tombstones).
    fn accepts_changes(&self, table: &KafkaTable, format: &FormatSpec) -> bool {
        format.format == Some(Format::DebeziumJson)
            || table
                .sink
                .as_ref()
                .is_some_and(|sink| sink.key_field.is_some())
    }

    fn validate_table(
        &self,
        profile: &KafkaProfile,
        table: &KafkaTable,
        role: TableRole,
        schema: &SchemaRef,
    ) -> Result<()> {
        profile.brokers()?;
        if table.topic.trim().is_empty() {
            return Err(ConnectorError::MissingOption {
                connector: "kafka".into(),
                key: "topic".into(),
            });
        }
        client_config(profile, Some(table))?;
        match role {
            TableRole::Source => {
                if table.sink.is_some() {
                    return Err(ConnectorError::Config(
                        "kafka: sink.* options are for sink tables (type = 'sink')".into(),
                    ));
                }
                for column in table.metadata.iter().flat_map(|m| m.keys()) {
                    if schema.field_with_name(column).is_err() {
                        return Err(ConnectorError::Config(format!(
                            "kafka: METADATA FROM names column '{column}', which the table does not have"
                        )));
                    }
                }
                for field in schema.fields() {
                    if let Some(kind) = MetadataKind::of_column(field, table.metadata.as_ref())? {
                        kind.check_type(field)?;
                    }
                }
            }
            TableRole::Sink => {
                if table.source.is_some() || table.metadata.is_some() {
                    return Err(ConnectorError::Config(
                        "kafka: source.* options and METADATA FROM columns are for source tables (type = 'source')".into(),
                    ));
                }
                let options = table.sink.clone().unwrap_or_default();
                sink::key_and_timestamp_columns(schema, &options)?;
                if let Ok(headers) = schema.field_with_name(metadata::HEADERS_COLUMN) {
                    MetadataKind::Headers.check_type(headers)?;
                }
            }
        }
        Ok(())
    }

    /// Tables without a column list: for JSON the columns of up to 100 records from the
    /// start of the topic (none yet: no inference, the table needs its columns); for Avro
    /// those of the inline schema or the registry's latest `<topic>-value` schema.
    async fn infer_schema(
        &self,
        profile: &KafkaProfile,
        table: &KafkaTable,
        format: &FormatSpec,
    ) -> Result<Option<SchemaRef>> {
        if format.format == Some(Format::Avro) {
            let registry = profile.registry_client();
            let schema = match crate::format::avro::AvroFraming::of(format, registry.is_some())? {
                crate::format::avro::AvroFraming::Raw(inline) if !inline.is_empty() => inline,
                crate::format::avro::AvroFraming::Raw(_) => return Ok(None),
                crate::format::avro::AvroFraming::Confluent => {
                    let Some(registry) = registry else {
                        return Ok(None);
                    };
                    let subject = format!("{}-value", table.topic);
                    match registry.latest(&subject).await? {
                        Some(schema) => schema,
                        None => {
                            return Err(io_error(format!(
                                "cannot infer the columns of topic '{}': the schema registry has no subject '{subject}'",
                                table.topic
                            )));
                        }
                    }
                }
            };
            return crate::format::avro::arrow_schema_of(&schema).map(Some);
        }
        if format.format.unwrap_or(Format::Json) != Format::Json
            || crate::format::json_unstructured(format)?
        {
            return Ok(None);
        }
        let client = metadata_client(profile, None)?;
        let brokers = profile.brokers()?.to_string();
        let topic = table.topic.clone();
        let samples = blocking(move || {
            sample_values(
                &client,
                &brokers,
                &topic,
                SAMPLE_RECORDS,
                Duration::from_secs(5),
            )
        })
        .await??;
        json_schema(samples.iter().map(Vec::as_slice)).map_err(|reason| {
            io_error(format!(
                "cannot infer the columns of topic '{}': {reason}",
                table.topic
            ))
        })
    }

    async fn test_profile(&self, profile: &KafkaProfile) -> Result<TestOutcome> {
        let brokers = profile.brokers()?.to_string();
        let client = metadata_client(profile, None)?;
        // Shorter than the REST deadline, so that a failure is explained.
        let shown = brokers.clone();
        let answer = blocking(move || {
            client
                .fetch_metadata(None, Duration::from_secs(5))
                .map(|m| (m.brokers().len(), m.topics().len()))
                .map_err(|e| explain_connection_error(&shown, &e, client::reported(&client)))
        })
        .await?;
        Ok(match answer {
            Ok((brokers_seen, topics)) => TestOutcome {
                success: true,
                message: format!(
                    "connected to Kafka at {brokers}: {brokers_seen} broker(s), {topics} topic(s)"
                ),
                sample_data: Vec::new(),
            },
            Err(message) => TestOutcome {
                success: false,
                message,
                sample_data: Vec::new(),
            },
        })
    }

    /// Per partition: the oldest and next offsets the brokers hold, the consumer group's
    /// committed offset and the lag behind the newest record.
    async fn table_statistics(
        &self,
        profile: &KafkaProfile,
        table: &KafkaTable,
        table_name: &str,
    ) -> Result<serde_json::Value> {
        let brokers = profile.brokers()?.to_string();
        let group = table
            .source
            .clone()
            .unwrap_or_default()
            .group_id(table_name);
        let client: BaseConsumer<Diagnosed> = client_config(profile, Some(table))?
            .set("group.id", &group)
            .set("enable.auto.commit", "false")
            .create_with_context(Diagnosed::for_profile(profile))
            .map_err(|e| kafka_error("cannot create a client", e))?;
        let topic = table.topic.clone();
        blocking(move || {
            let timeout = Duration::from_secs(5);
            let partitions = topic_partitions(&client, &brokers, &topic, timeout)?;
            let mut list = TopicPartitionList::new();
            for p in &partitions {
                list.add_partition(&topic, *p);
            }
            let committed = client
                .committed_offsets(list, timeout)
                .map_err(|e| kafka_error("cannot read the group's offsets", e))?;
            let mut rows = Vec::new();
            for p in partitions {
                let (low, high) = client
                    .fetch_watermarks(&topic, p, timeout)
                    .map_err(|e| kafka_error("cannot read the partition offsets", e))?;
                let committed = committed
                    .find_partition(&topic, p)
                    .and_then(|e| e.offset().to_raw())
                    .filter(|o| *o >= 0);
                let lag = high - committed.unwrap_or(low);
                rows.push(serde_json::json!({
                    "partition": p, "low": low, "high": high, "committed": committed, "lag": lag,
                }));
            }
            Ok(serde_json::json!({ "group": group, "partitions": rows }))
        })
        .await?
    }

    async fn autocomplete(&self, profile: &KafkaProfile) -> Result<Vec<(String, Vec<String>)>> {
        let brokers = profile.brokers()?.to_string();
        let client = metadata_client(profile, None)?;
        let topics = blocking(move || {
            client
                .fetch_metadata(None, Duration::from_secs(10))
                .map(|m| {
                    let mut names: Vec<String> = m
                        .topics()
                        .iter()
                        .map(|t| t.name().to_string())
                        .filter(|name| !name.starts_with("__"))
                        .collect();
                    names.sort();
                    names
                })
                .map_err(|e| {
                    io_error(explain_connection_error(
                        &brokers,
                        &e,
                        client::reported(&client),
                    ))
                })
        })
        .await??;
        Ok(vec![("topics".to_string(), topics)])
    }

    fn make_source(
        &self,
        profile: &KafkaProfile,
        table: &KafkaTable,
        ctx: SourceContext,
    ) -> Result<Box<dyn Source>> {
        Ok(Box::new(source::KafkaSource::new(profile, table, ctx)?))
    }

    async fn committed_epoch(
        &self,
        profile: &KafkaProfile,
        table: &KafkaTable,
        ctx: &SinkContext,
    ) -> Result<Option<u64>> {
        sink::committed_epoch(profile, table, ctx).await
    }

    fn make_sink(
        &self,
        profile: &KafkaProfile,
        table: &KafkaTable,
        ctx: SinkContext,
    ) -> Result<Box<dyn Sink>> {
        Ok(Box::new(sink::KafkaSink::new(profile, table, ctx)?))
    }
}
