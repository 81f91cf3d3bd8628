use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{ConnectorError, Result};

/// Table options of `nexmark`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NexmarkTable {
    /// Events per second (persons, auctions and bids together), across all partitions.
    /// Also sets the event-time spacing: event n is stamped `base_time + n / event_rate`,
    /// unless `event_time_rate` is given.
    #[schemars(range(min = 0.0))]
    pub event_rate: f64,
    /// Events per second of event time, when it should differ from the generation rate:
    /// event n is stamped `base_time + n / event_time_rate` (e.g. minutes of event time
    /// generated in a second, for tests of windows).
    pub event_time_rate: Option<f64>,
    /// Stop after this many events (the table is then bounded).
    pub message_count: Option<u64>,
    /// Stop after this many seconds (the table is then bounded).
    pub runtime: Option<f64>,
    /// Generator seed: the same seed (and `first_event_id`) gives the same events. Default 0.
    pub seed: Option<u64>,
    /// Event time of the first event, in epoch milliseconds. Default: the wall clock when
    /// the source starts, truncated to the second.
    pub base_time: Option<u64>,
    /// Id of the first event; it decides the event's kind and the person / auction ids it
    /// carries. Default 0.
    pub first_event_id: Option<u64>,
}

impl NexmarkTable {
    /// Check ranges the types cannot express.
    pub(crate) fn validate(&self) -> Result<()> {
        if !positive(self.event_rate) {
            return Err(invalid("event_rate", self.event_rate));
        }
        if let Some(runtime) = self.runtime
            && !positive(runtime)
        {
            return Err(invalid("runtime", runtime));
        }
        if let Some(rate) = self.event_time_rate
            && !positive(rate)
        {
            return Err(invalid("event_time_rate", rate));
        }
        Ok(())
    }
}

/// NaN and infinity fail too: both would break pacing and event times.
fn positive(x: f64) -> bool {
    x > 0.0 && x.is_finite()
}

fn invalid(key: &str, value: f64) -> ConnectorError {
    ConnectorError::InvalidValue {
        connector: "nexmark".into(),
        key: key.into(),
        value: value.to_string(),
        expected: "a finite number greater than 0".into(),
    }
}
