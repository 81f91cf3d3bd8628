//! Errors raised while configuring or running a connector.

use thiserror::Error;

/// Result alias for connector operations.
pub type Result<T, E = ConnectorError> = std::result::Result<T, E>;

/// What went wrong, with enough context for the user to fix it.
#[derive(Debug, Error)]
pub enum ConnectorError {
    /// No connector with this name is registered.
    #[error("unknown connector '{name}'; available connectors: {available}")]
    UnknownConnector { name: String, available: String },
    /// A WITH option / config key is not known to the connector.
    #[error("unknown option '{key}' for connector '{connector}'{hint}")]
    UnknownOption {
        connector: String,
        key: String,
        hint: String,
    },
    /// A required option is missing.
    #[error("missing required option '{key}' for connector '{connector}'")]
    MissingOption { connector: String, key: String },
    /// An option has a value of the wrong type or out of range.
    #[error(
        "invalid value '{value}' for option '{key}' of connector '{connector}': expected {expected}"
    )]
    InvalidValue {
        connector: String,
        key: String,
        value: String,
        expected: String,
    },
    /// Any other configuration problem (conflicting options, unsupported role, ...).
    #[error("{0}")]
    Config(String),
    /// A column type that Laminar cannot map to Arrow.
    #[error("unsupported data type '{0}'")]
    UnsupportedType(String),
    /// The external system failed or could not be reached.
    #[error("{connector}: {message}")]
    Io { connector: String, message: String },
    /// A record could not be decoded and the table's policy is `bad_data = 'fail'`.
    #[error("table '{table}': bad record at {position}: {reason}")]
    BadData {
        table: String,
        position: String,
        reason: String,
    },
    /// Arrow failed to build or encode a batch.
    #[error(transparent)]
    Arrow(#[from] arrow::error::ArrowError),
}

impl ConnectorError {
    /// The dotted option path this error is about, if any (used for REST `details.path`).
    pub fn option_path(&self) -> Option<&str> {
        match self {
            ConnectorError::UnknownOption { key, .. }
            | ConnectorError::MissingOption { key, .. }
            | ConnectorError::InvalidValue { key, .. } => Some(key),
            ConnectorError::UnknownConnector { .. }
            | ConnectorError::Config(_)
            | ConnectorError::UnsupportedType(_)
            | ConnectorError::Io { .. }
            | ConnectorError::BadData { .. }
            | ConnectorError::Arrow(_) => None,
        }
    }
}
