use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Table options of `impulse`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImpulseTable {
    /// Rows per second, across all partitions.
    #[schemars(range(min = 0.0))]
    pub event_rate: f64,
    /// Event-time step between rows in microseconds; without it, rows carry wall-clock time.
    pub event_time_interval: Option<u64>,
    /// Stop after this many rows (the table is then bounded).
    pub message_count: Option<u64>,
}
