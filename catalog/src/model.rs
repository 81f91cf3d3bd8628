//! Catalog objects. Timestamps of profiles and tables are RFC 3339 strings, of pipelines and
//! jobs epoch milliseconds, as the REST reference shows them.

use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A new id with the given prefix (`prof`, `tbl`, `pipe`, `job`): prefix + 12 random chars.
pub fn new_id(prefix: &str) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    let suffix: String = (0..12)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}_{suffix}")
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Now, as RFC 3339.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Reusable connection settings (brokers, credentials) for one connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    pub id: String,
    pub name: String,
    pub connector: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The connector's profile config, normalized (snake_case, defaults filled in).
    pub config: Value,
    pub created_at: String,
    pub updated_at: String,
}

/// One column of a table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDef {
    pub name: String,
    /// SQL type name (`BIGINT`, `TEXT`, `STRUCT<...>`).
    pub data_type: String,
    pub nullable: bool,
}

/// A table backed by a connector: a source or a sink.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDef {
    pub id: String,
    pub name: String,
    pub connector: String,
    /// `source` or `sink`.
    pub table_type: String,
    /// The profile whose settings this table uses.
    #[serde(default)]
    pub connection_profile_id: Option<String>,
    /// Connection settings given inline instead of (or on top of) a profile.
    #[serde(default)]
    pub inline_profile: Value,
    /// The connector's table config, normalized.
    pub config: Value,
    /// Format, format sub-options and bad-data policy.
    #[serde(default)]
    pub format: Value,
    pub fields: Vec<FieldDef>,
    /// Whether the columns came from the connector rather than the user.
    #[serde(default)]
    pub schema_inferred: bool,
    #[serde(default)]
    pub event_time_field: Option<String>,
    #[serde(default)]
    pub watermark_delay: Option<String>,
    /// How long a silent source partition holds the watermark back (`None`: 30 s).
    #[serde(default)]
    pub idle_time: Option<String>,
    /// `PRIMARY KEY` columns (a source of changes, `debezium_json`, needs them).
    #[serde(default)]
    pub primary_key: Vec<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// Whether the user wants a pipeline running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DesiredState {
    Running,
    Stopped,
}

/// A durable `INSERT INTO sink SELECT ...`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineDef {
    pub id: String,
    pub name: String,
    /// The `INSERT INTO ... SELECT ...` statement.
    pub query: String,
    pub parallelism: u32,
    pub checkpoint_interval_micros: u64,
    pub desired: DesiredState,
    /// Tables the query reads and writes (dropping them is refused while this exists).
    pub tables: Vec<String>,
    pub created_at: i64,
    /// State TTL of updating aggregates, from the creating session's `updating_ttl`.
    #[serde(default)]
    pub updating_ttl_micros: Option<u64>,
}

/// Counters of a job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobMetrics {
    pub records_in: u64,
    pub records_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub errors: u64,
    pub warnings: u64,
    /// Rows dropped because they arrived behind the watermark.
    #[serde(default)]
    pub late_records: u64,
    /// Bytes of operator state (open windows) at the last reading.
    #[serde(default)]
    pub state_bytes: u64,
    /// The job's stateful operators.
    #[serde(default)]
    pub operators: Vec<OperatorMetrics>,
}

/// Counters of one stateful operator of a job.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OperatorMetrics {
    /// The operator and what it does (as EXPLAIN names it).
    pub name: String,
    pub state_bytes: u64,
    pub records_out: u64,
}

/// One run of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobRecord {
    pub id: String,
    pub pipeline_id: String,
    pub run_id: u64,
    /// Running, Stopped, Failed, Finished.
    pub state: String,
    pub running_desired: bool,
    pub start_time: i64,
    pub finish_time: Option<i64>,
    pub failure_message: Option<String>,
    pub tasks: u32,
    pub metrics: JobMetrics,
    pub created_at: i64,
}

/// A view: a named query, inlined wherever it is used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ViewDef {
    pub id: String,
    pub name: String,
    /// The view's `SELECT`.
    pub query: String,
    /// Tables and views the query reads (dropping them is refused while this exists).
    pub tables: Vec<String>,
    pub created_at: String,
    /// A materialized view: its query runs continuously and its result is kept.
    #[serde(default)]
    pub materialized: bool,
    /// State TTL of a materialized view's updating aggregates (the creating session's
    /// `updating_ttl`), kept for restarts.
    #[serde(default)]
    pub updating_ttl_micros: Option<u64>,
    /// How often a materialized view checkpoints its contents and its query's state (the
    /// creating session's `checkpoint_interval`; 0: never). `None`: the default.
    #[serde(default)]
    pub checkpoint_interval_micros: Option<u64>,
    /// The partitions a materialized view's query runs in (the creating session's
    /// `parallelism`; its checkpoints hold state per partition). `None`: the default.
    #[serde(default)]
    pub parallelism: Option<u32>,
}
