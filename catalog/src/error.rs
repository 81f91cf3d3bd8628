//! Catalog errors.

use thiserror::Error;

/// Result alias for catalog operations.
pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

/// Why a catalog operation failed.
#[derive(Debug, Error)]
pub enum CatalogError {
    /// No object of this kind has this id or name.
    #[error("{kind} '{name}' does not exist")]
    NotFound { kind: &'static str, name: String },
    /// An object of this kind already has this name.
    #[error("{kind} '{name}' already exists")]
    Duplicate { kind: &'static str, name: String },
    /// The object is referenced by others and cannot be dropped.
    #[error("{kind} '{name}' is in use by {users}")]
    InUse {
        kind: &'static str,
        name: String,
        users: String,
    },
    /// The SQLite store could not be opened or written.
    #[error("catalog storage error at {path}: {source}")]
    Storage {
        path: String,
        #[source]
        source: sqlx::Error,
    },
    /// A stored document could not be read back.
    #[error("catalog document {id} is corrupt: {source}")]
    Corrupt {
        id: String,
        #[source]
        source: serde_json::Error,
    },
}
