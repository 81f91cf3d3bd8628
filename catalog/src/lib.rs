//! The Laminar catalog: connection profiles, tables, pipelines and jobs, persisted in
//! SQLite under the data directory.
//!
//! Objects are plain serde types ([`model`]); the store ([`Catalog`]) keeps each as a JSON
//! document keyed by id, with names unique per kind. The catalog knows nothing of SQL
//! execution or networking — both the pgwire front end and the REST API go through it,
//! which is what makes them one catalog.

pub mod error;
pub mod model;
pub mod store;

pub use error::{CatalogError, Result};
pub use model::{
    DesiredState, FieldDef, JobMetrics, JobRecord, OperatorMetrics, PipelineDef, Profile, TableDef,
    ViewDef, new_id, now_millis, now_rfc3339,
};
pub use store::Catalog;
