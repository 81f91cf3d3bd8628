//! `datagen`: random or sequential rows for the table's own columns, at a fixed rate.
//!
//! Modelled on Apache Flink's `datagen` connector, so benchmark and demo tables can be
//! declared the same way in both systems: the column list is the user's, and
//! `fields.<column>.*` options shape each column's values (`min`, `max`, `length`,
//! `max_past`, `null_rate`, `kind = sequence`). Values come from one small RNG per column
//! and partition, seeded from `seed`, so a seed gives the same rows however rows are batched.
//! Batches are built column by column straight into Arrow buffers.

mod config;
mod source;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;

pub use config::{DatagenField, DatagenTable, FieldKind};

use crate::connector::{Connector, ConnectorMetadata, NoProfile, Source, SourceContext, TableRole};
use crate::error::Result;

/// The datagen connector.
#[derive(Debug, Clone, Copy)]
pub struct DatagenConnector;

#[async_trait]
impl Connector for DatagenConnector {
    type ProfileConfig = NoProfile;
    type TableConfig = DatagenTable;

    fn metadata(&self) -> ConnectorMetadata {
        ConnectorMetadata {
            id: "datagen",
            name: "DataGen",
            description: "Generates random or sequential values for the table's columns at a fixed rate, like Flink's datagen",
            category: "testing",
            source: true,
            sink: false,
            formats: &[],
        }
    }

    fn bounded(&self, table: &DatagenTable) -> bool {
        table.ends()
    }

    fn validate_table(
        &self,
        _profile: &NoProfile,
        table: &DatagenTable,
        _role: TableRole,
        schema: &SchemaRef,
    ) -> Result<()> {
        source::check_rate(table.rate())?;
        source::plan(table, schema).map(|_| ())
    }

    fn make_source(
        &self,
        _profile: &NoProfile,
        table: &DatagenTable,
        ctx: SourceContext,
    ) -> Result<Box<dyn Source>> {
        Ok(Box::new(source::DatagenSource::new(table, ctx)?))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    use super::*;
    use crate::connector::DynConnector;
    use crate::options::{WithOptions, nest};

    /// The benchmark's bid table.
    fn bid_schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("auction", DataType::Int64, true),
            Field::new("bidder", DataType::Int64, true),
            Field::new("price", DataType::Int64, true),
            Field::new("channel", DataType::Utf8, true),
            Field::new("url", DataType::Utf8, true),
            Field::new(
                "date_time",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                true,
            ),
            Field::new("extra", DataType::Utf8, true),
        ]))
    }

    /// Validate SQL `WITH` options against the bid table, as `CREATE TABLE` does.
    fn create(pairs: &[(&str, &str)]) -> Result<()> {
        let options: WithOptions = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let config = DatagenConnector.check_table(&nest(&options)?)?;
        DynConnector::validate_table(
            &DatagenConnector,
            &serde_json::json!({}),
            &config,
            TableRole::Source,
            &bid_schema(),
        )
    }

    #[test]
    fn the_benchmark_table_is_accepted() {
        create(&[
            ("rows_per_second", "1000000000"),
            ("number_of_rows", "10000000"),
            ("fields.auction.min", "1000"),
            ("fields.auction.max", "10999"),
            ("fields.bidder.min", "1000"),
            ("fields.bidder.max", "100999"),
            ("fields.price.min", "1"),
            ("fields.price.max", "100000"),
            ("fields.channel.length", "8"),
            ("fields.url.length", "64"),
            ("fields.extra.length", "16"),
            ("fields.date_time.max_past", "0"),
        ])
        .unwrap();
        assert!(create(&[]).is_ok());
    }

    #[test]
    fn bad_tables_are_refused_at_create() {
        let err = create(&[("fields.auctoin.min", "1")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "option 'fields.auctoin' names no column of the table (did you mean 'auction'?); \
             its columns are auction, bidder, price, channel, url, date_time, extra"
        );
        let err = create(&[("rows_per_second", "0")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value '0' for option 'rows_per_second' of connector 'datagen': expected a number greater than 0"
        );
        let err = create(&[("fields.price.min", "10"), ("fields.price.max", "5")]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid value '10' for option 'fields.price.min' of connector 'datagen': \
             expected a number no greater than fields.price.max (5)"
        );
    }

    #[test]
    fn boundedness_follows_the_options() {
        let bounded = |value: serde_json::Value| DynConnector::bounded(&DatagenConnector, &value);
        assert!(!bounded(serde_json::json!({})).unwrap());
        assert!(bounded(serde_json::json!({"number_of_rows": "5"})).unwrap());
        assert!(
            bounded(serde_json::json!({"fields": {"id": {"kind": "sequence", "end": "9"}}}))
                .unwrap()
        );
        assert!(
            DynConnector::implied_schema(&DatagenConnector, &serde_json::json!({}))
                .unwrap()
                .is_none()
        );
    }
}
