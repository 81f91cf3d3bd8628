//! `impulse`: a rate-limited counter, for tests and demos.

mod config;
mod source;

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;

pub use config::ImpulseTable;

use crate::connector::{Connector, ConnectorMetadata, NoProfile, Source, SourceContext};
use crate::error::Result;

/// The impulse connector.
#[derive(Debug, Clone, Copy)]
pub struct ImpulseConnector;

/// `counter BIGINT, subtask_index BIGINT, timestamp TIMESTAMP`.
pub fn impulse_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("counter", DataType::Int64, false),
        Field::new("subtask_index", DataType::Int64, false),
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            false,
        ),
    ]))
}

#[async_trait]
impl Connector for ImpulseConnector {
    type ProfileConfig = NoProfile;
    type TableConfig = ImpulseTable;

    fn metadata(&self) -> ConnectorMetadata {
        ConnectorMetadata {
            id: "impulse",
            name: "Impulse",
            description: "Generates an increasing counter at a fixed rate",
            category: "testing",
            source: true,
            sink: false,
            formats: &[],
        }
    }

    fn implied_schema(&self, _table: &ImpulseTable) -> Option<SchemaRef> {
        Some(impulse_schema())
    }

    fn bounded(&self, table: &ImpulseTable) -> bool {
        table.message_count.is_some()
    }

    fn validate_table(
        &self,
        _profile: &NoProfile,
        table: &ImpulseTable,
        _role: crate::TableRole,
        _schema: &SchemaRef,
    ) -> Result<()> {
        source::check_rate(table.event_rate)
    }

    fn make_source(
        &self,
        _profile: &NoProfile,
        table: &ImpulseTable,
        ctx: SourceContext,
    ) -> Result<Box<dyn Source>> {
        Ok(Box::new(source::ImpulseSource::new(table, ctx)?))
    }
}
