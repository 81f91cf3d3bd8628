//! `stdout`: writes each row to the server's standard output, for debugging.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::connector::{Connector, ConnectorMetadata, NoProfile, Sink, SinkContext};
use crate::error::{ConnectorError, Result};
use crate::format::RecordEncoder;

/// The stdout connector.
#[derive(Debug, Clone, Copy)]
pub struct StdoutConnector;

/// `stdout` takes no table options beyond the common ones (`format`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StdoutTable {}

#[async_trait]
impl Connector for StdoutConnector {
    type ProfileConfig = NoProfile;
    type TableConfig = StdoutTable;

    fn metadata(&self) -> ConnectorMetadata {
        ConnectorMetadata {
            id: "stdout",
            name: "Stdout",
            description: "Writes rows to the server's standard output as JSON lines",
            category: "testing",
            source: false,
            sink: true,
            formats: &["json", "raw_string", "debezium_json"],
        }
    }

    fn make_sink(
        &self,
        _profile: &NoProfile,
        _table: &StdoutTable,
        ctx: SinkContext,
    ) -> Result<Box<dyn Sink>> {
        Ok(Box::new(StdoutSink {
            encoder: RecordEncoder::new(&ctx.format, &ctx.schema)?,
            buffer: Vec::new(),
            out: tokio::io::stdout(),
        }))
    }
}

struct StdoutSink {
    encoder: RecordEncoder,
    buffer: Vec<u8>,
    out: tokio::io::Stdout,
}

fn io_error(e: std::io::Error) -> ConnectorError {
    ConnectorError::Io {
        connector: "stdout".into(),
        message: e.to_string(),
    }
}

#[async_trait]
impl Sink for StdoutSink {
    async fn write(&mut self, batch: arrow::record_batch::RecordBatch) -> Result<()> {
        self.buffer.clear();
        self.encoder.encode(&batch, &mut self.buffer)?;
        self.out.write_all(&self.buffer).await.map_err(io_error)?;
        self.out.flush().await.map_err(io_error)
    }
}
