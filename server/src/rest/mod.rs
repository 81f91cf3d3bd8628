//! The REST API (axum), under `/v1` and `/api/v1`.

mod body;
mod catalog_routes;
mod error;
mod metrics;
mod openapi;
mod pipelines;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use engine::Engine;

pub use error::ApiError;

use catalog_routes as cat;

/// Routes that answer without a token.
const PUBLIC: &[&str] = &["/v1/ping", "/v1/connectors", "/v1/openapi.json"];

#[derive(Clone)]
struct AuthState {
    token: Option<Arc<str>>,
}

async fn require_token(State(auth): State<AuthState>, request: Request, next: Next) -> Response {
    let Some(token) = auth.token.as_deref() else {
        return next.run(request).await;
    };
    let path = request.uri().path();
    let path = path.strip_prefix("/api").unwrap_or(path);
    if PUBLIC.contains(&path) {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if presented == Some(token) {
        next.run(request).await
    } else {
        ApiError::unauthorized().into_response()
    }
}

async fn ping() -> Json<&'static str> {
    Json("Pong")
}

async fn fallback() -> ApiError {
    ApiError::not_found("no such endpoint; see /v1/openapi.json")
}

fn v1() -> Router<Arc<Engine>> {
    Router::new()
        .route("/ping", get(ping))
        .route("/openapi.json", get(openapi::document))
        .route("/connectors", get(cat::list_connectors))
        .route(
            "/connection_profiles",
            post(cat::create_profile).get(cat::list_profiles),
        )
        .route("/connection_profiles/test", post(cat::test_profile))
        .route(
            "/connection_profiles/{id}",
            get(cat::get_profile).delete(cat::delete_profile),
        )
        .route(
            "/connection_profiles/{id}/autocomplete",
            get(cat::autocomplete),
        )
        .route(
            "/connection_tables",
            post(cat::create_table).get(cat::list_tables),
        )
        .route("/connection_tables/test", post(cat::test_table))
        .route("/connection_tables/schemas/test", post(cat::test_schema))
        .route(
            "/connection_tables/{id}",
            get(cat::get_table).delete(cat::delete_table),
        )
        .route(
            "/pipelines",
            post(pipelines::create_pipeline).get(pipelines::list_pipelines),
        )
        .route(
            "/pipelines/{id}",
            get(pipelines::get_pipeline)
                .patch(pipelines::patch_pipeline)
                .delete(pipelines::delete_pipeline),
        )
        .route("/pipelines/{id}/restart", post(pipelines::restart_pipeline))
        .route("/pipelines/{id}/start", post(pipelines::start_pipeline))
        .route("/pipelines/{id}/stop", post(pipelines::stop_pipeline))
        .route("/pipelines/{id}/jobs", get(pipelines::pipeline_jobs))
        .route("/jobs", get(pipelines::list_jobs))
        .route("/jobs/{id}", get(pipelines::get_job))
        .route("/jobs/{id}/metrics", get(pipelines::job_metrics))
        .route("/jobs/{id}/errors", get(pipelines::job_errors))
        .route("/jobs/{id}/checkpoints", get(pipelines::job_checkpoints))
        .route("/jobs/{id}/stop", post(pipelines::stop_job))
        .route("/jobs/{id}/restart", post(pipelines::restart_job))
}

/// The whole API. With `token`, every route but ping, connectors and the OpenAPI document
/// needs `Authorization: Bearer <token>`.
pub fn router(engine: Arc<Engine>, token: Option<String>) -> Router {
    let auth = AuthState {
        token: token.map(Arc::from),
    };
    Router::new()
        .nest("/v1", v1())
        .nest("/api/v1", v1())
        .route("/metrics", axum::routing::get(metrics::prometheus))
        .fallback(fallback)
        .layer(middleware::from_fn_with_state(auth, require_token))
        .with_state(engine)
}
