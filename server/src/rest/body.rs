//! JSON request bodies with errors in our envelope (axum's own rejections are plain text).

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde_json::Value;

use super::error::ApiError;

/// A JSON object body, keys converted to snake_case (camelCase and snake_case both accepted).
pub(crate) struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("could not read request body: {e}")))?;
        if bytes.is_empty() {
            return Ok(JsonBody(Value::Object(Default::default())));
        }
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("request body is not valid JSON: {e}")))?;
        if !value.is_object() {
            return Err(ApiError::bad_request("request body must be a JSON object"));
        }
        Ok(JsonBody(connectors::options::snake_case_keys(value)))
    }
}

/// A string field of a body.
pub(crate) fn str_field(body: &Value, key: &str) -> Option<String> {
    body.get(key).and_then(Value::as_str).map(str::to_string)
}

/// A required string field, with a 400 naming it.
pub(crate) fn required(body: &Value, key: &str) -> Result<String, ApiError> {
    str_field(body, key).ok_or_else(|| {
        let mut e = ApiError::bad_request(format!("missing required field '{key}'"));
        e.details = serde_json::json!({ "path": key });
        e
    })
}
