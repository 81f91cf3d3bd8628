//! Per-connection settings (`SET` / `SHOW`).

use std::collections::BTreeMap;

use crate::error::{EngineError, Result};

/// Default rows per batch for continuous queries.
pub const DEFAULT_BATCH_SIZE: usize = 1024;

/// How long an updating aggregate keeps a group nobody has updated.
pub const DEFAULT_UPDATING_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// How often pipelines take checkpoints unless told otherwise.
pub const DEFAULT_CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);

/// Settings of one client session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Rows per batch produced by sources.
    pub batch_size: usize,
    /// Parallel source partitions.
    pub parallelism: usize,
    /// State time-to-live of updating aggregates (`SET updating_ttl = '1 hour'`).
    pub updating_ttl: std::time::Duration,
    /// Checkpoint interval of pipelines created in this session (`SET checkpoint_interval =
    /// '5 seconds'`, or Flink's `execution.checkpointing.interval`); zero: none.
    pub checkpoint_interval: std::time::Duration,
    /// Values of `$1, $2, ...` for the statement being executed (extended protocol).
    pub params: Vec<datafusion::common::ScalarValue>,
    /// Everything else clients set (application_name, DateStyle, ...), kept for `SHOW`.
    vars: BTreeMap<String, String>,
}

/// The parallelism of sessions that set none; 0: the machine's cores.
static DEFAULT_PARALLELISM: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Set the parallelism of sessions that set none (the server's `--parallelism`).
pub fn set_default_parallelism(parallelism: usize) {
    DEFAULT_PARALLELISM.store(parallelism, std::sync::atomic::Ordering::Relaxed);
}

/// The parallelism of a session that sets none: the server's setting, else the cores.
pub fn default_parallelism() -> usize {
    match DEFAULT_PARALLELISM.load(std::sync::atomic::Ordering::Relaxed) {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

impl Default for Session {
    fn default() -> Self {
        let mut vars = BTreeMap::new();
        for (k, v) in [
            ("server_version", "15.0 (Laminar)"),
            ("server_version_num", "150000"),
            ("server_encoding", "UTF8"),
            ("client_encoding", "UTF8"),
            ("datestyle", "ISO, MDY"),
            ("timezone", "UTC"),
            ("integer_datetimes", "on"),
            ("standard_conforming_strings", "on"),
            ("transaction_isolation", "read committed"),
            ("search_path", "public"),
            ("application_name", ""),
            ("updating_ttl", "1 day"),
            ("checkpoint_interval", "10 seconds"),
        ] {
            vars.insert(k.to_string(), v.to_string());
        }
        Session {
            batch_size: DEFAULT_BATCH_SIZE,
            parallelism: default_parallelism(),
            updating_ttl: DEFAULT_UPDATING_TTL,
            checkpoint_interval: DEFAULT_CHECKPOINT_INTERVAL,
            params: Vec::new(),
            vars,
        }
    }
}

impl Session {
    /// Apply `SET name = value`.
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        // Flink spells dotted settings as quoted strings: SET 'a.b' = 'c'.
        let name = name
            .trim_matches(|c| c == '\'' || c == '"')
            .to_ascii_lowercase();
        // `SET name TO DEFAULT` (unquoted) is `RESET name`, as in Postgres.
        if value.eq_ignore_ascii_case("default") {
            self.reset(Some(&name));
            return Ok(());
        }
        let value = value.trim_matches('\'').to_string();
        let positive = |v: &str| {
            v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                EngineError::InvalidParameter(format!(
                    "invalid value '{v}' for setting '{name}': expected a positive integer"
                ))
            })
        };
        match name.as_str() {
            "batch_size" => self.batch_size = positive(&value)?,
            "parallelism" => self.parallelism = positive(&value)?,
            "updating_ttl" => {
                self.updating_ttl = connectors::options::parse_duration(&value)
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| {
                        EngineError::InvalidParameter(format!(
                            "invalid value '{value}' for setting 'updating_ttl': expected {}",
                            connectors::options::DURATION_EXPECTED
                        ))
                    })?;
                self.vars.insert(name, value);
            }
            "checkpoint_interval" | "execution.checkpointing.interval" => {
                self.checkpoint_interval = match value.trim() {
                    "0" => std::time::Duration::ZERO,
                    text => connectors::options::parse_duration(text).ok_or_else(|| {
                        EngineError::InvalidParameter(format!(
                            "invalid value '{value}' for setting '{name}': expected {} (0 for no checkpoints)",
                            connectors::options::DURATION_EXPECTED
                        ))
                    })?,
                };
                self.vars.insert("checkpoint_interval".into(), value);
            }
            _ => {
                self.vars.insert(name, value);
            }
        }
        Ok(())
    }

    /// `RESET name` / `RESET ALL` (`None`): back to the server default. Settings without
    /// one (application_name, the login user) keep their start-up value.
    pub fn reset(&mut self, name: Option<&str>) {
        let defaults = Session::default();
        let name = name.map(str::to_ascii_lowercase);
        let all = name.is_none();
        let is = |n: &str| all || name.as_deref() == Some(n);
        if is("batch_size") {
            self.batch_size = defaults.batch_size;
        }
        if is("parallelism") {
            self.parallelism = defaults.parallelism;
        }
        if is("updating_ttl") {
            self.updating_ttl = defaults.updating_ttl;
        }
        if is("checkpoint_interval") || is("execution.checkpointing.interval") {
            self.checkpoint_interval = defaults.checkpoint_interval;
            self.vars.insert(
                "checkpoint_interval".into(),
                defaults.vars["checkpoint_interval"].clone(),
            );
        }
        for (key, value) in defaults.vars {
            if is(&key) {
                self.vars.insert(key, value);
            }
        }
    }

    /// Every setting by name, as `current_setting()` and `SHOW ALL` see them.
    pub fn settings(&self) -> BTreeMap<String, String> {
        let mut all = self.vars.clone();
        all.insert("batch_size".into(), self.batch_size.to_string());
        all.insert("parallelism".into(), self.parallelism.to_string());
        all
    }

    /// The value of `SHOW name`.
    pub fn get(&self, name: &str) -> Result<String> {
        let name = name.to_ascii_lowercase();
        match name.as_str() {
            "batch_size" => Ok(self.batch_size.to_string()),
            "parallelism" => Ok(self.parallelism.to_string()),
            _ => self.vars.get(&name).cloned().ok_or_else(|| {
                EngineError::InvalidParameter(format!(
                    "unrecognized configuration parameter \"{name}\""
                ))
            }),
        }
    }
}
