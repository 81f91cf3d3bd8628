//! The set of connectors this build knows, by name.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::connector::DynConnector;
use crate::error::{ConnectorError, Result};

/// Connectors by their `connector = '...'` name.
#[derive(Clone)]
pub struct Registry {
    connectors: BTreeMap<&'static str, Arc<dyn DynConnector>>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.connectors.keys()).finish()
    }
}

impl Registry {
    /// Every connector compiled into this build (each behind its cargo feature).
    pub fn builtin() -> Self {
        #[allow(unused_mut)]
        let mut registry = Registry {
            connectors: BTreeMap::new(),
        };
        #[cfg(feature = "impulse")]
        registry.add(Arc::new(crate::impulse::ImpulseConnector));
        #[cfg(feature = "nexmark")]
        registry.add(Arc::new(crate::nexmark::NexmarkConnector));
        #[cfg(feature = "datagen")]
        registry.add(Arc::new(crate::datagen::DatagenConnector));
        #[cfg(feature = "stdout")]
        registry.add(Arc::new(crate::stdout::StdoutConnector));
        #[cfg(feature = "blackhole")]
        registry.add(Arc::new(crate::blackhole::BlackholeConnector));
        #[cfg(feature = "filesystem")]
        registry.add(Arc::new(crate::filesystem::FileSystemConnector));
        #[cfg(feature = "kafka")]
        registry.add(Arc::new(crate::kafka::KafkaConnector));
        registry
    }

    /// Register a connector under its metadata id.
    pub fn add(&mut self, connector: Arc<dyn DynConnector>) {
        self.connectors.insert(connector.metadata().id, connector);
    }

    /// Look a connector up; the error lists the available ones.
    pub fn get(&self, name: &str) -> Result<Arc<dyn DynConnector>> {
        self.connectors
            .get(name.to_ascii_lowercase().as_str())
            .cloned()
            .ok_or_else(|| ConnectorError::UnknownConnector {
                name: name.to_string(),
                available: self.names().join(", "),
            })
    }

    /// Names of all connectors, sorted.
    pub fn names(&self) -> Vec<&'static str> {
        self.connectors.keys().copied().collect()
    }

    /// All connectors, sorted by name.
    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn DynConnector>> {
        self.connectors.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON Schemas served by `GET /v1/connectors` are snapshot files in
    /// `connectors/schemas/`; a config change must update them in the same commit
    /// (`UPDATE_SCHEMAS=1 cargo test -p connectors` rewrites them).
    #[test]
    fn config_schemas_match_their_snapshots() {
        // At run time: a test binary reused from a build in another checkout must not read
        // that checkout's files.
        let dir = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")))
            .join("schemas");
        let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
        for connector in Registry::builtin().all() {
            let id = connector.metadata().id;
            let schema = serde_json::json!({
                "profile": connector.profile_schema(),
                "table": connector.table_schema(),
            });
            let text = serde_json::to_string_pretty(&schema).unwrap() + "\n";
            let path = dir.join(format!("{id}.json"));
            if update {
                std::fs::write(&path, &text).unwrap();
            } else {
                let stored = std::fs::read_to_string(&path).unwrap_or_default();
                assert_eq!(
                    stored,
                    text,
                    "schema snapshot {} is stale; run UPDATE_SCHEMAS=1 cargo test -p connectors",
                    path.display()
                );
            }
        }
    }

    #[test]
    fn unknown_connectors_list_the_available_ones() {
        let err = Registry::builtin().get("kafak").err().unwrap();
        assert_eq!(
            err.to_string(),
            format!(
                "unknown connector 'kafak'; available connectors: {}",
                Registry::builtin().names().join(", ")
            )
        );
    }
}
