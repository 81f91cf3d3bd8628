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
        #[cfg(feature = "stdout")]
        registry.add(Arc::new(crate::stdout::StdoutConnector));
        #[cfg(feature = "blackhole")]
        registry.add(Arc::new(crate::blackhole::BlackholeConnector));
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
