//! Engine errors and their SQLSTATEs.

use catalog::CatalogError;
use connectors::ConnectorError;
use datafusion::error::DataFusionError;
use thiserror::Error;

/// Result alias for engine operations.
pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// SQLSTATE codes used by Laminar (names as in PostgreSQL's errcodes).
pub mod sqlstate {
    pub const SYNTAX_ERROR: &str = "42601";
    pub const UNDEFINED_TABLE: &str = "42P01";
    pub const UNDEFINED_COLUMN: &str = "42703";
    pub const UNDEFINED_FUNCTION: &str = "42883";
    pub const UNDEFINED_OBJECT: &str = "42704";
    pub const DUPLICATE_TABLE: &str = "42P07";
    pub const DUPLICATE_OBJECT: &str = "42710";
    pub const WRONG_OBJECT_TYPE: &str = "42809";
    pub const DATATYPE_MISMATCH: &str = "42804";
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    pub const DEPENDENT_OBJECTS_STILL_EXIST: &str = "2BP01";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const QUERY_CANCELED: &str = "57014";
    pub const CONNECTION_EXCEPTION: &str = "08000";
    pub const IO_ERROR: &str = "58030";
    pub const DATA_EXCEPTION: &str = "22000";
    pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
    pub const INTERNAL_ERROR: &str = "XX000";
    pub const GROUPING_ERROR: &str = "42803";
    pub const INVALID_CURSOR_NAME: &str = "34000";
    pub const DUPLICATE_CURSOR: &str = "42P03";
}

/// Everything a statement can fail with.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The SQL does not parse.
    #[error("syntax error: {0}")]
    Syntax(String),
    /// A connector or option problem.
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    /// A catalog problem (unknown, duplicate, in use, storage).
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    /// Planning or execution in DataFusion failed.
    #[error("{}", strip_datafusion_prefix(.0))]
    DataFusion(#[from] DataFusionError),
    /// A table used in the wrong role (SELECT from a sink, INSERT into a source).
    #[error("{0}")]
    WrongObjectType(String),
    /// A statement or construct Laminar does not support (yet).
    #[error("{0}")]
    Unsupported(String),
    /// An invalid session setting or statement argument.
    #[error("{0}")]
    InvalidParameter(String),
    /// A construct in the wrong clause (a window function outside GROUP BY).
    #[error("{0}")]
    Grouping(String),
    /// The client cancelled the statement.
    #[error("canceling statement due to user request")]
    Canceled,
    /// FETCH or CLOSE of a cursor that is not open.
    #[error("cursor \"{0}\" does not exist")]
    UnknownCursor(String),
    /// DECLARE of a name already open.
    #[error("cursor \"{0}\" already exists")]
    DuplicateCursor(String),
    /// Checkpoints could not be written or read.
    #[error("{0}")]
    Checkpoint(String),
}

impl EngineError {
    /// The SQLSTATE reported to clients.
    pub fn sqlstate(&self) -> &'static str {
        use sqlstate::*;
        match self {
            EngineError::Syntax(_) => SYNTAX_ERROR,
            EngineError::Connector(e) => match e {
                ConnectorError::UnknownConnector { .. } => UNDEFINED_OBJECT,
                ConnectorError::UnknownOption { .. }
                | ConnectorError::MissingOption { .. }
                | ConnectorError::InvalidValue { .. }
                | ConnectorError::Config(_) => INVALID_PARAMETER_VALUE,
                ConnectorError::UnsupportedType(_) => UNDEFINED_OBJECT,
                ConnectorError::Io { .. } => CONNECTION_EXCEPTION,
                ConnectorError::BadData { .. } => INVALID_TEXT_REPRESENTATION,
                ConnectorError::Arrow(_) => DATA_EXCEPTION,
            },
            EngineError::Catalog(e) => match e {
                CatalogError::NotFound { kind, .. } if matches!(*kind, "table" | "view") => {
                    UNDEFINED_TABLE
                }
                CatalogError::NotFound { .. } => UNDEFINED_OBJECT,
                CatalogError::Duplicate { kind, .. } if matches!(*kind, "table" | "view") => {
                    DUPLICATE_TABLE
                }
                CatalogError::Duplicate { .. } => DUPLICATE_OBJECT,
                CatalogError::InUse { .. } => DEPENDENT_OBJECTS_STILL_EXIST,
                CatalogError::Storage { .. } | CatalogError::Corrupt { .. } => IO_ERROR,
            },
            EngineError::DataFusion(e) => datafusion_sqlstate(e),
            EngineError::WrongObjectType(_) => WRONG_OBJECT_TYPE,
            EngineError::Unsupported(_) => FEATURE_NOT_SUPPORTED,
            EngineError::InvalidParameter(_) => INVALID_PARAMETER_VALUE,
            EngineError::Grouping(_) => GROUPING_ERROR,
            EngineError::Canceled => QUERY_CANCELED,
            EngineError::UnknownCursor(_) => INVALID_CURSOR_NAME,
            EngineError::DuplicateCursor(_) => DUPLICATE_CURSOR,
            EngineError::Checkpoint(_) => IO_ERROR,
        }
    }

    /// Short machine-readable code for the REST error envelope.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Syntax(_) | EngineError::DataFusion(_) => "COMPILATION_ERROR",
            EngineError::Connector(ConnectorError::Io { .. }) => "CONNECTION_FAILED",
            EngineError::Connector(_)
            | EngineError::InvalidParameter(_)
            | EngineError::WrongObjectType(_)
            | EngineError::Unsupported(_)
            | EngineError::Grouping(_)
            | EngineError::UnknownCursor(_)
            | EngineError::DuplicateCursor(_) => "VALIDATION_ERROR",
            EngineError::Catalog(CatalogError::NotFound { .. }) => "NOT_FOUND",
            EngineError::Catalog(CatalogError::Duplicate { .. }) => "ALREADY_EXISTS",
            EngineError::Catalog(CatalogError::InUse { .. }) => "CONFLICT",
            EngineError::Catalog(_) | EngineError::Checkpoint(_) => "INTERNAL_ERROR",
            EngineError::Canceled => "CANCELED",
        }
    }
}

fn datafusion_sqlstate(e: &DataFusionError) -> &'static str {
    use sqlstate::*;
    let e = e.find_root();
    match e {
        DataFusionError::SQL(_, _) => SYNTAX_ERROR,
        DataFusionError::SchemaError(err, _) => match err.as_ref() {
            datafusion::common::SchemaError::FieldNotFound { .. } => UNDEFINED_COLUMN,
            datafusion::common::SchemaError::DuplicateQualifiedField { .. }
            | datafusion::common::SchemaError::DuplicateUnqualifiedField { .. }
            | datafusion::common::SchemaError::AmbiguousReference { .. } => SYNTAX_ERROR,
        },
        DataFusionError::Plan(msg) => {
            if msg.contains("Invalid function") || msg.contains("No function matches") {
                UNDEFINED_FUNCTION
            } else if msg.contains("table") && msg.contains("not found") {
                UNDEFINED_TABLE
            } else if msg.contains("Cannot cast") || msg.contains("type") {
                DATATYPE_MISMATCH
            } else {
                SYNTAX_ERROR
            }
        }
        DataFusionError::NotImplemented(_) => FEATURE_NOT_SUPPORTED,
        DataFusionError::External(inner) => match inner.downcast_ref::<EngineError>() {
            Some(engine) => engine.sqlstate(),
            None => INTERNAL_ERROR,
        },
        _ => INTERNAL_ERROR,
    }
}

/// DataFusion prefixes messages with the variant ("Error during planning: "); users want
/// the message.
fn strip_datafusion_prefix(e: &DataFusionError) -> String {
    let root = e.find_root();
    if let DataFusionError::External(inner) = root {
        return inner.to_string();
    }
    let text = root.to_string();
    for prefix in [
        "Error during planning: ",
        "Schema error: ",
        "This feature is not implemented: ",
        "SQL error: ",
        "Execution error: ",
    ] {
        if let Some(rest) = text.strip_prefix(prefix) {
            return rest.to_string();
        }
    }
    text
}

impl From<arrow::error::ArrowError> for EngineError {
    fn from(e: arrow::error::ArrowError) -> Self {
        EngineError::DataFusion(DataFusionError::ArrowError(Box::new(e), None))
    }
}
