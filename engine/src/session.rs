//! Per-connection settings (`SET` / `SHOW`).

use std::collections::BTreeMap;

use crate::error::{EngineError, Result};

/// Default rows per batch for continuous queries.
pub const DEFAULT_BATCH_SIZE: usize = 1024;

/// Settings of one client session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Rows per batch produced by sources.
    pub batch_size: usize,
    /// Parallel source partitions.
    pub parallelism: usize,
    /// Everything else clients set (application_name, DateStyle, ...), kept for `SHOW`.
    vars: BTreeMap<String, String>,
}

impl Default for Session {
    fn default() -> Self {
        let mut vars = BTreeMap::new();
        for (k, v) in [
            ("server_version", "15.0 (Laminar)"),
            ("server_encoding", "UTF8"),
            ("client_encoding", "UTF8"),
            ("datestyle", "ISO, MDY"),
            ("timezone", "UTC"),
            ("integer_datetimes", "on"),
            ("standard_conforming_strings", "on"),
            ("transaction_isolation", "read committed"),
            ("search_path", "public"),
        ] {
            vars.insert(k.to_string(), v.to_string());
        }
        Session {
            batch_size: DEFAULT_BATCH_SIZE,
            parallelism: 1,
            vars,
        }
    }
}

impl Session {
    /// Apply `SET name = value`.
    pub fn set(&mut self, name: &str, value: &str) -> Result<()> {
        let name = name.to_ascii_lowercase();
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
            _ => {
                self.vars.insert(name, value);
            }
        }
        Ok(())
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
