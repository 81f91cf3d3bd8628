//! `blackhole`: accepts and discards every row, for benchmarks.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::connector::{Connector, ConnectorMetadata, NoProfile, Sink, SinkContext};
use crate::error::Result;

/// The blackhole connector.
#[derive(Debug, Clone, Copy)]
pub struct BlackholeConnector;

/// `blackhole` takes no options.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BlackholeTable {}

#[async_trait]
impl Connector for BlackholeConnector {
    type ProfileConfig = NoProfile;
    type TableConfig = BlackholeTable;

    fn metadata(&self) -> ConnectorMetadata {
        ConnectorMetadata {
            id: "blackhole",
            name: "Blackhole",
            description: "Discards every row; for testing and benchmarking",
            category: "testing",
            source: false,
            sink: true,
            formats: &[],
        }
    }

    fn make_sink(
        &self,
        _profile: &NoProfile,
        _table: &BlackholeTable,
        _ctx: SinkContext,
    ) -> Result<Box<dyn Sink>> {
        Ok(Box::new(BlackholeSink))
    }
}

struct BlackholeSink;

#[async_trait]
impl Sink for BlackholeSink {
    async fn write(&mut self, _batch: arrow::record_batch::RecordBatch) -> Result<()> {
        Ok(())
    }
}
