//! Laminar's SQL surface: parsing (standard SQL plus Laminar's own statements) and the
//! translation of `WITH (...)` options.

pub mod insert_values;
pub mod literals;
pub mod metadata_columns;
pub mod naming;
pub mod options;
pub mod parse;
pub mod watermark;

pub use parse::{LaminarStatement, PipelineAction, Subscribe, SubscribeTarget, parse_sql};
