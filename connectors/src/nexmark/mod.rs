//! `nexmark`: the Nexmark auction benchmark's events (people, auctions, bids) as one table.
//!
//! The table has the shape of Flink's and Arroyo's nexmark tables: an `event_type` column
//! (0 = person, 1 = auction, 2 = bid) and one nullable struct per kind, exactly one of which
//! is set per row. Struct fields are lower case so the Flink Nexmark queries, which write
//! `bid.dateTime` unquoted, resolve unchanged. The events follow the standard generator's
//! model (see `generator.rs`), and are a pure function of `(seed, event id)`.

mod config;
mod generator;
mod source;

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use async_trait::async_trait;

pub use config::NexmarkTable;

use crate::connector::{Connector, ConnectorMetadata, NoProfile, Source, SourceContext, TableRole};
use crate::error::{ConnectorError, Result};

/// The nexmark connector.
#[derive(Debug, Clone, Copy)]
pub struct NexmarkConnector;

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, None)
}

/// Fields of the `person` struct.
fn person_fields() -> Fields {
    Fields::from(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("emailaddress", DataType::Utf8, false),
        Field::new("creditcard", DataType::Utf8, false),
        Field::new("city", DataType::Utf8, false),
        Field::new("state", DataType::Utf8, false),
        Field::new("datetime", timestamp(), false),
        Field::new("extra", DataType::Utf8, false),
    ])
}

/// Fields of the `auction` struct.
fn auction_fields() -> Fields {
    Fields::from(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("itemname", DataType::Utf8, false),
        Field::new("description", DataType::Utf8, false),
        Field::new("initialbid", DataType::Int64, false),
        Field::new("reserve", DataType::Int64, false),
        Field::new("datetime", timestamp(), false),
        Field::new("expires", timestamp(), false),
        Field::new("seller", DataType::Int64, false),
        Field::new("category", DataType::Int64, false),
        Field::new("extra", DataType::Utf8, false),
    ])
}

/// Fields of the `bid` struct.
fn bid_fields() -> Fields {
    Fields::from(vec![
        Field::new("auction", DataType::Int64, false),
        Field::new("bidder", DataType::Int64, false),
        Field::new("price", DataType::Int64, false),
        Field::new("channel", DataType::Utf8, false),
        Field::new("url", DataType::Utf8, false),
        Field::new("datetime", timestamp(), false),
        Field::new("extra", DataType::Utf8, false),
    ])
}

/// `event_type INT, person STRUCT<...>, auction STRUCT<...>, bid STRUCT<...>, datetime TIMESTAMP`.
pub fn nexmark_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("event_type", DataType::Int32, false),
        Field::new("person", DataType::Struct(person_fields()), true),
        Field::new("auction", DataType::Struct(auction_fields()), true),
        Field::new("bid", DataType::Struct(bid_fields()), true),
        // The event's time whatever its kind, like the suite's computed `dateTime` column:
        // the column to put a watermark on.
        Field::new("datetime", timestamp(), false),
    ]))
}

/// Column indices of the full schema that make up `schema`, or `None` if it is the full
/// schema in order (so batches need no projection).
fn projection(schema: &SchemaRef) -> Result<Option<Vec<usize>>> {
    let full = nexmark_schema();
    let indices = schema
        .fields()
        .iter()
        .map(|f| {
            full.index_of(f.name()).map_err(|_| {
                ConnectorError::Config(format!(
                    "nexmark has no column '{}'; its columns are event_type, person, auction, bid, datetime",
                    f.name()
                ))
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let identity =
        indices.len() == full.fields().len() && indices.iter().enumerate().all(|(i, &j)| i == j);
    Ok(if identity { None } else { Some(indices) })
}

#[async_trait]
impl Connector for NexmarkConnector {
    type ProfileConfig = NoProfile;
    type TableConfig = NexmarkTable;

    fn metadata(&self) -> ConnectorMetadata {
        ConnectorMetadata {
            id: "nexmark",
            name: "Nexmark",
            description: "Generates the Nexmark auction benchmark's person, auction and bid events",
            category: "testing",
            source: true,
            sink: false,
            formats: &[],
        }
    }

    fn implied_schema(&self, _table: &NexmarkTable) -> Option<SchemaRef> {
        Some(nexmark_schema())
    }

    fn bounded(&self, table: &NexmarkTable) -> bool {
        table.message_count.is_some() || table.runtime.is_some()
    }

    fn validate_table(
        &self,
        _profile: &NoProfile,
        table: &NexmarkTable,
        _role: TableRole,
        schema: &SchemaRef,
    ) -> Result<()> {
        table.validate()?;
        projection(schema).map(|_| ())
    }

    fn make_source(
        &self,
        _profile: &NoProfile,
        table: &NexmarkTable,
        ctx: SourceContext,
    ) -> Result<Box<dyn Source>> {
        Ok(Box::new(source::NexmarkSource::new(table, ctx)?))
    }
}
