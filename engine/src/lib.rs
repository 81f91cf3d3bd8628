//! The Laminar engine: SQL in, running dataflow out.
//!
//! - [`sql`] parses standard SQL and Laminar's own statements.
//! - [`ddl`] validates and stores tables and connection profiles (for SQL and REST alike).
//! - [`exec`] plans queries with DataFusion over connector-backed tables, replacing
//!   batch-oriented operators with streaming ones.
//! - [`runtime`] runs durable pipelines as jobs.
//! - [`statement`] executes one statement for a client session.
//!
//! The engine never imports a client SDK; connectors hide every external system.

pub mod checkpoint;
pub mod ddl;
pub mod error;
pub mod exec;
pub mod metrics;
pub mod mview;
pub mod rows;
pub mod runtime;
pub mod session;
pub mod sql;
pub mod statement;
pub mod stream;
pub mod subscribe;

use std::sync::Arc;

use catalog::Catalog;
use connectors::Registry;
use tokio_util::sync::CancellationToken;

pub use error::{EngineError, Result};
pub use runtime::PipelineStatus;
pub use session::Session;
pub use statement::{Outcome, QueryStream};

/// Shared state of the engine: the catalog, the connectors, the running jobs.
#[derive(Debug)]
pub struct Engine {
    pub catalog: Catalog,
    pub registry: Registry,
    jobs: Arc<runtime::Jobs>,
    mviews: mview::MaterializedViews,
    shutdown: CancellationToken,
    /// pg_catalog / information_schema, built on first use.
    introspection:
        std::sync::OnceLock<std::result::Result<exec::introspection::Introspection, String>>,
}

impl Engine {
    /// An engine over `catalog` with the given connectors. Call
    /// [`Engine::restore_pipelines`] to resume stored pipelines.
    pub fn new(catalog: Catalog, registry: Registry) -> Self {
        Engine {
            catalog,
            registry,
            jobs: Arc::default(),
            mviews: mview::MaterializedViews::default(),
            shutdown: CancellationToken::new(),
            introspection: std::sync::OnceLock::new(),
        }
    }
}

/// Values of query parameters.
pub use datafusion::common::ScalarValue;
/// The SQL parser Laminar uses (re-exported so front ends share its AST types).
pub use datafusion::sql::sqlparser;
