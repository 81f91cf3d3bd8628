//! Running SQL over connectors with DataFusion: connector-backed table providers, the
//! streaming operators Laminar substitutes for DataFusion's batch-oriented ones, and the
//! planner that ties them to the catalog.

pub mod dlq;
pub mod filter;
pub mod flink_functions;
pub mod functions;
pub mod information_schema;
pub mod introspection;
pub mod limit;
pub mod pg_catalog;
pub mod planner;
pub mod sink;
pub mod source;
