//! The connector contract.
//!
//! Authors implement the typed [`Connector`] trait; the engine and server use the erased
//! [`DynConnector`], which every `Connector` gets from a blanket impl. Configs arrive as
//! JSON (see [`crate::options`]) and are parsed into the connector's own structs.
//!
//! Sources are pulled ([`Source::next_batch`]); push-style transports (webhooks, MQTT
//! subscriptions) buffer into a bounded channel that `next_batch` drains. Sources with
//! positions (Kafka offsets, Kinesis sequence numbers, files read) report them in
//! [`Source::snapshot`] and learn about durable checkpoints in
//! [`Source::checkpoint_committed`] (where acks and group commits happen). Sinks are
//! two-phase: [`Sink::prepare`] at a checkpoint barrier, [`Sink::commit`] once the
//! checkpoint is durable.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ConnectorError, Result};
use crate::format::FormatSpec;
use crate::options::parse_config;

/// Whether a table reads from or writes to its external system.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TableRole {
    /// Rows flow from the external system into queries.
    Source,
    /// Query results flow into the external system.
    Sink,
}

impl TableRole {
    /// `source` / `sink`.
    pub fn as_str(self) -> &'static str {
        match self {
            TableRole::Source => "source",
            TableRole::Sink => "sink",
        }
    }
}

/// Static facts about a connector, served by `GET /v1/connectors`.
#[derive(Debug, Clone, Serialize)]
pub struct ConnectorMetadata {
    /// The name used in `connector = '...'`.
    pub id: &'static str,
    /// Human readable name.
    pub name: &'static str,
    /// One line on what it does.
    pub description: &'static str,
    /// messaging, storage, http, testing, ...
    pub category: &'static str,
    /// Can be a source.
    pub source: bool,
    /// Can be a sink.
    pub sink: bool,
    /// Formats a table of this connector accepts (empty: the connector fixes its schema).
    pub formats: &'static [&'static str],
}

impl ConnectorMetadata {
    /// The role a table takes when `type` is not given: the only one the connector has.
    pub fn default_role(&self) -> Option<TableRole> {
        match (self.source, self.sink) {
            (true, false) => Some(TableRole::Source),
            (false, true) => Some(TableRole::Sink),
            _ => None,
        }
    }
}

/// Result of a live connection or table test.
#[derive(Debug, Clone, Serialize, Default)]
pub struct TestOutcome {
    /// Whether the test passed.
    pub success: bool,
    /// What was checked, or what failed.
    pub message: String,
    /// Sample rows (as JSON objects) for table tests.
    pub sample_data: Vec<Value>,
}

/// What a source instance needs to know about the table it serves.
#[derive(Debug, Clone)]
pub struct SourceContext {
    /// The catalog name of the table.
    pub table_name: String,
    /// The Arrow schema the source must produce.
    pub schema: SchemaRef,
    /// This instance's partition (0-based) of `partitions`.
    pub partition: usize,
    /// How many source instances read this table in parallel.
    pub partitions: usize,
    /// Preferred number of rows per batch.
    pub batch_size: usize,
    /// How rows are decoded, for connectors that carry bytes.
    pub format: FormatSpec,
    /// Counts records dropped under `bad_data = 'drop'` (shown as the job's errors).
    pub bad_records: Arc<AtomicU64>,
    /// A preview (sample rows for a table test): read, but leave no trace upstream (no
    /// consumer-group commits, no acks).
    pub preview: bool,
    /// The table has an event time (watermarks): sources that read several splits hand out
    /// one split per batch then, so the watermark can follow each split.
    pub event_time: bool,
    /// The position this instance had in the checkpoint a pipeline resumes from (what
    /// [`Source::snapshot`] returned then); `None` to start afresh.
    pub restore: Option<Value>,
}

impl SourceContext {
    /// A `u64` field of the restored position (generators keep `emitted`), 0 when starting
    /// afresh.
    pub fn restored_u64(&self, field: &str) -> u64 {
        self.restore
            .as_ref()
            .and_then(|r| r.get(field))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    }
}

/// What a sink instance needs to know about the table it writes.
#[derive(Debug, Clone)]
pub struct SinkContext {
    /// The catalog name of the table.
    pub table_name: String,
    /// The Arrow schema of incoming batches.
    pub schema: SchemaRef,
    /// How rows are encoded.
    pub format: FormatSpec,
    /// The pipeline takes checkpoints: written data must stay invisible until
    /// [`Sink::commit`] (exactly-once), and survive a crash until then.
    pub checkpointed: bool,
    /// The pipeline writing, when there is one (a stable name for transactional ids).
    pub pipeline_id: Option<String>,
}

/// A running source instance.
#[async_trait]
pub trait Source: Send {
    /// The next batch, or `None` when a bounded source has nothing more.
    ///
    /// Cancellation safe: yes — implementations must not lose data if the future is
    /// dropped before completion (the runtime races it against cancellation).
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>>;

    /// The source's position, stored in checkpoints and handed back on restore.
    fn snapshot(&self) -> Value {
        Value::Null
    }

    /// For sources whose batches each come from one split (a Kafka partition): the split
    /// of the batch just returned, so that the table's watermark follows the slowest split
    /// rather than the fastest. `None`: batches mix splits (one watermark per instance).
    fn batch_split(&self) -> Option<u64> {
        None
    }

    /// The splits this instance reads, whether they sent rows yet or not: a split without
    /// rows holds the watermark back until it is idle.
    fn splits(&self) -> Vec<u64> {
        Vec::new()
    }

    /// Records that could not be decoded since the last call, for the dead-letter table
    /// (`bad_data = 'dlq'`); the runtime calls this after every `next_batch`.
    fn take_bad_records(&mut self) -> Vec<crate::format::BadRecord> {
        Vec::new()
    }

    /// A checkpoint that includes the last snapshot is durable: ack or commit upstream.
    async fn checkpoint_committed(&mut self, _epoch: u64) -> Result<()> {
        Ok(())
    }
}

/// A running sink instance.
#[async_trait]
pub trait Sink: Send {
    /// Write (or buffer) one batch.
    async fn write(&mut self, batch: RecordBatch) -> Result<()>;

    /// Phase one of a checkpoint: make everything written so far durable-but-invisible
    /// (or simply flushed, for at-least-once sinks) and return what `commit` needs.
    async fn prepare(&mut self, _epoch: u64) -> Result<Value> {
        Ok(Value::Null)
    }

    /// Phase two: the checkpoint is durable, make the prepared data visible.
    async fn commit(&mut self, _epoch: u64, _prepared: Value) -> Result<()> {
        Ok(())
    }

    /// The input ended: flush and release resources.
    async fn close(&mut self) -> Result<()> {
        Ok(())
    }

    /// How often the runtime should call [`Sink::tick`] while no data arrives (time-based
    /// work such as rolling files); `None` for never.
    fn tick_interval(&self) -> Option<Duration> {
        None
    }

    /// Time passed: do time-based work.
    async fn tick(&mut self) -> Result<()> {
        Ok(())
    }
}

/// A connector, with typed configuration. Implement this; the engine uses [`DynConnector`].
#[async_trait]
pub trait Connector: Send + Sync + 'static {
    /// Connection-level settings shared by tables (brokers, credentials). `NoProfile` if none.
    type ProfileConfig: Serialize + DeserializeOwned + JsonSchema + Default + Send + Sync;
    /// Per-table settings (topic, rate, path, ...).
    type TableConfig: Serialize + DeserializeOwned + JsonSchema + Send + Sync;

    /// Static facts about the connector.
    fn metadata(&self) -> ConnectorMetadata;

    /// The schema the connector itself defines (impulse, nexmark), if any. Tables of such
    /// connectors may omit their column list.
    fn implied_schema(&self, _table: &Self::TableConfig) -> Option<SchemaRef> {
        None
    }

    /// Whether a source table with this config ends by itself (e.g. a `message_count`).
    fn bounded(&self, _table: &Self::TableConfig) -> bool {
        false
    }

    /// Infer a table's columns from its data (sample records, embedded schemas), for tables
    /// declared without a column list. `None` when the connector cannot.
    async fn infer_schema(
        &self,
        _profile: &Self::ProfileConfig,
        _table: &Self::TableConfig,
        _format: &FormatSpec,
    ) -> Result<Option<SchemaRef>> {
        Ok(None)
    }

    /// Whether a sink table with this config takes changes (rows of an updating query, with
    /// a last `_op` column: `+I`, `-U`, `+U`, `-D`). By default only `debezium_json` does.
    fn accepts_changes(&self, _table: &Self::TableConfig, format: &FormatSpec) -> bool {
        format.format == Some(crate::format::Format::DebeziumJson)
    }

    /// Check a table definition beyond what the config types express.
    fn validate_table(
        &self,
        _profile: &Self::ProfileConfig,
        _table: &Self::TableConfig,
        _role: TableRole,
        _schema: &SchemaRef,
    ) -> Result<()> {
        Ok(())
    }

    /// Really connect with the profile's settings and report what happened.
    async fn test_profile(&self, _profile: &Self::ProfileConfig) -> Result<TestOutcome> {
        Ok(TestOutcome {
            success: true,
            message: format!("{} needs no connection", self.metadata().name),
            sample_data: Vec::new(),
        })
    }

    /// Facts about a source table's data for `POST /v1/connection_tables/test` (Kafka: each
    /// partition's offsets and the consumer group's lag); `Null` when there are none.
    async fn table_statistics(
        &self,
        _profile: &Self::ProfileConfig,
        _table: &Self::TableConfig,
        _table_name: &str,
    ) -> Result<Value> {
        Ok(Value::Null)
    }

    /// Suggestions for table settings (topics, streams, ...), by kind.
    async fn autocomplete(
        &self,
        _profile: &Self::ProfileConfig,
    ) -> Result<Vec<(String, Vec<String>)>> {
        Ok(Vec::new())
    }

    /// For a pipeline resuming after a crash: the newest checkpoint epoch whose output this
    /// sink made visible (an exactly-once sink records it atomically with that output). The
    /// pipeline resumes from the newest checkpoint at or before it, so output a crash left
    /// uncommitted is written again. `None`: the sink keeps no such record, and the latest
    /// checkpoint's commit is redone instead.
    async fn committed_epoch(
        &self,
        _profile: &Self::ProfileConfig,
        _table: &Self::TableConfig,
        _ctx: &SinkContext,
    ) -> Result<Option<u64>> {
        Ok(None)
    }

    /// Start a source instance.
    fn make_source(
        &self,
        _profile: &Self::ProfileConfig,
        _table: &Self::TableConfig,
        _ctx: SourceContext,
    ) -> Result<Box<dyn Source>> {
        Err(ConnectorError::Config(format!(
            "connector '{}' cannot be used as a source",
            self.metadata().id
        )))
    }

    /// Start a sink instance.
    fn make_sink(
        &self,
        _profile: &Self::ProfileConfig,
        _table: &Self::TableConfig,
        _ctx: SinkContext,
    ) -> Result<Box<dyn Sink>> {
        Err(ConnectorError::Config(format!(
            "connector '{}' cannot be used as a sink",
            self.metadata().id
        )))
    }
}

/// The profile config of connectors that have no connection settings.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoProfile {}

/// The object-safe twin of [`Connector`]: configs are nested snake_case JSON.
#[async_trait]
pub trait DynConnector: Send + Sync {
    /// Static facts about the connector.
    fn metadata(&self) -> ConnectorMetadata;
    /// JSON Schema of the profile config.
    fn profile_schema(&self) -> Value;
    /// JSON Schema of the table config.
    fn table_schema(&self) -> Value;
    /// Parse and normalize a profile config (defaults filled in).
    fn check_profile(&self, profile: &Value) -> Result<Value>;
    /// Parse and normalize a table config (defaults filled in).
    fn check_table(&self, table: &Value) -> Result<Value>;
    /// See [`Connector::implied_schema`].
    fn implied_schema(&self, table: &Value) -> Result<Option<SchemaRef>>;
    /// See [`Connector::bounded`].
    fn bounded(&self, table: &Value) -> Result<bool>;
    /// See [`Connector::infer_schema`].
    async fn infer_schema(
        &self,
        profile: &Value,
        table: &Value,
        format: &FormatSpec,
    ) -> Result<Option<SchemaRef>>;
    /// See [`Connector::accepts_changes`].
    fn accepts_changes(&self, table: &Value, format: &FormatSpec) -> Result<bool>;
    /// See [`Connector::validate_table`].
    fn validate_table(
        &self,
        profile: &Value,
        table: &Value,
        role: TableRole,
        schema: &SchemaRef,
    ) -> Result<()>;
    /// See [`Connector::test_profile`]; bounded by `deadline`.
    async fn test_profile(&self, profile: &Value, deadline: Duration) -> Result<TestOutcome>;
    /// See [`Connector::autocomplete`].
    async fn autocomplete(&self, profile: &Value) -> Result<Vec<(String, Vec<String>)>>;
    /// See [`Connector::table_statistics`].
    async fn table_statistics(
        &self,
        profile: &Value,
        table: &Value,
        table_name: &str,
    ) -> Result<Value>;
    /// See [`Connector::committed_epoch`].
    async fn committed_epoch(
        &self,
        profile: &Value,
        table: &Value,
        ctx: &SinkContext,
    ) -> Result<Option<u64>>;
    /// See [`Connector::make_source`].
    fn make_source(
        &self,
        profile: &Value,
        table: &Value,
        ctx: SourceContext,
    ) -> Result<Box<dyn Source>>;
    /// See [`Connector::make_sink`].
    fn make_sink(&self, profile: &Value, table: &Value, ctx: SinkContext) -> Result<Box<dyn Sink>>;
}

fn to_json<T: Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| ConnectorError::Config(e.to_string()))
}

/// A connection profile's and a table's JSON config, parsed into `C`'s typed configs.
fn configs<C: Connector>(
    connector: &C,
    profile: &Value,
    table: &Value,
) -> Result<(C::ProfileConfig, C::TableConfig)> {
    let id = Connector::metadata(connector).id;
    Ok((
        parse_config(id, profile.clone())?,
        parse_config(id, table.clone())?,
    ))
}

#[async_trait]
impl<C: Connector> DynConnector for C {
    fn metadata(&self) -> ConnectorMetadata {
        Connector::metadata(self)
    }

    fn profile_schema(&self) -> Value {
        schemars::schema_for!(C::ProfileConfig).to_value()
    }

    fn table_schema(&self) -> Value {
        schemars::schema_for!(C::TableConfig).to_value()
    }

    fn check_profile(&self, profile: &Value) -> Result<Value> {
        let parsed: C::ProfileConfig = parse_config(Connector::metadata(self).id, profile.clone())?;
        to_json(&parsed)
    }

    fn check_table(&self, table: &Value) -> Result<Value> {
        let parsed: C::TableConfig = parse_config(Connector::metadata(self).id, table.clone())?;
        to_json(&parsed)
    }

    fn implied_schema(&self, table: &Value) -> Result<Option<SchemaRef>> {
        let table: C::TableConfig = parse_config(Connector::metadata(self).id, table.clone())?;
        Ok(Connector::implied_schema(self, &table))
    }

    fn bounded(&self, table: &Value) -> Result<bool> {
        let table: C::TableConfig = parse_config(Connector::metadata(self).id, table.clone())?;
        Ok(Connector::bounded(self, &table))
    }

    async fn infer_schema(
        &self,
        profile: &Value,
        table: &Value,
        format: &FormatSpec,
    ) -> Result<Option<SchemaRef>> {
        let (profile, table) = configs(self, profile, table)?;
        Connector::infer_schema(self, &profile, &table, format).await
    }

    fn accepts_changes(&self, table: &Value, format: &FormatSpec) -> Result<bool> {
        let table: C::TableConfig = parse_config(Connector::metadata(self).id, table.clone())?;
        Ok(Connector::accepts_changes(self, &table, format))
    }

    fn validate_table(
        &self,
        profile: &Value,
        table: &Value,
        role: TableRole,
        schema: &SchemaRef,
    ) -> Result<()> {
        let (profile, table) = configs(self, profile, table)?;
        Connector::validate_table(self, &profile, &table, role, schema)
    }

    async fn test_profile(&self, profile: &Value, deadline: Duration) -> Result<TestOutcome> {
        let id = Connector::metadata(self).id;
        let profile: C::ProfileConfig = parse_config(id, profile.clone())?;
        match tokio::time::timeout(deadline, Connector::test_profile(self, &profile)).await {
            Ok(outcome) => outcome,
            Err(_) => Ok(TestOutcome {
                success: false,
                message: format!("{id}: no answer within {} ms", deadline.as_millis()),
                sample_data: Vec::new(),
            }),
        }
    }

    async fn table_statistics(
        &self,
        profile: &Value,
        table: &Value,
        table_name: &str,
    ) -> Result<Value> {
        let (profile, table) = configs(self, profile, table)?;
        Connector::table_statistics(self, &profile, &table, table_name).await
    }

    async fn committed_epoch(
        &self,
        profile: &Value,
        table: &Value,
        ctx: &SinkContext,
    ) -> Result<Option<u64>> {
        let (profile, table) = configs(self, profile, table)?;
        Connector::committed_epoch(self, &profile, &table, ctx).await
    }

    async fn autocomplete(&self, profile: &Value) -> Result<Vec<(String, Vec<String>)>> {
        let profile: C::ProfileConfig =
            parse_config(Connector::metadata(self).id, profile.clone())?;
        Connector::autocomplete(self, &profile).await
    }

    fn make_source(
        &self,
        profile: &Value,
        table: &Value,
        ctx: SourceContext,
    ) -> Result<Box<dyn Source>> {
        let (profile, table) = configs(self, profile, table)?;
        Connector::make_source(self, &profile, &table, ctx)
    }

    fn make_sink(&self, profile: &Value, table: &Value, ctx: SinkContext) -> Result<Box<dyn Sink>> {
        let (profile, table) = configs(self, profile, table)?;
        Connector::make_sink(self, &profile, &table, ctx)
    }
}
