//! The REST error envelope: `{"error": {"code", "message", "details"}}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use catalog::CatalogError;
use engine::EngineError;
use serde_json::json;

/// An error answered with a status and the JSON envelope.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: serde_json::Value,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            code: "VALIDATION_ERROR",
            message: message.into(),
            details: json!({}),
        }
    }

    pub fn unauthorized() -> Self {
        ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "UNAUTHORIZED",
            message:
                "missing or invalid bearer token: send 'Authorization: Bearer <LAMINAR_API_TOKEN>'"
                    .into(),
            details: json!({}),
        }
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::NOT_FOUND,
            code: "NOT_FOUND",
            message: what.into(),
            details: json!({}),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        let status = match &e {
            EngineError::Catalog(CatalogError::NotFound { .. }) => StatusCode::NOT_FOUND,
            EngineError::Catalog(CatalogError::Duplicate { .. } | CatalogError::InUse { .. }) => {
                StatusCode::CONFLICT
            }
            EngineError::Catalog(CatalogError::Storage { .. } | CatalogError::Corrupt { .. })
            | EngineError::Checkpoint(_) => StatusCode::INTERNAL_SERVER_ERROR,
            EngineError::Syntax(_)
            | EngineError::Connector(_)
            | EngineError::DataFusion(_)
            | EngineError::WrongObjectType(_)
            | EngineError::Unsupported(_)
            | EngineError::InvalidParameter(_)
            | EngineError::Grouping(_)
            | EngineError::UnknownCursor(_)
            | EngineError::DuplicateCursor(_)
            | EngineError::Canceled => StatusCode::BAD_REQUEST,
        };
        let mut details = json!({ "sqlstate": e.sqlstate() });
        if let EngineError::Connector(c) = &e
            && let Some(path) = c.option_path()
        {
            details["path"] = json!(format!("config.{path}"));
        }
        ApiError {
            status,
            code: e.code(),
            message: e.to_string(),
            details,
        }
    }
}

impl From<CatalogError> for ApiError {
    fn from(e: CatalogError) -> Self {
        EngineError::from(e).into()
    }
}

impl From<connectors::ConnectorError> for ApiError {
    fn from(e: connectors::ConnectorError) -> Self {
        EngineError::from(e).into()
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": { "code": self.code, "message": self.message, "details": self.details }
        });
        (self.status, Json(body)).into_response()
    }
}
