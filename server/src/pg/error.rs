//! Engine errors as Postgres ErrorResponses.

use engine::EngineError;
use pgwire::error::{ErrorInfo, PgWireError};

/// An engine error with its SQLSTATE.
pub(crate) fn to_pg(e: EngineError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(&e)))
}

/// The ErrorResponse fields of an engine error.
pub(crate) fn error_info(e: &EngineError) -> ErrorInfo {
    ErrorInfo::new("ERROR".to_string(), e.sqlstate().to_string(), e.to_string())
}
