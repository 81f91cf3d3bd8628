//! The OpenAPI document served at `/v1/openapi.json`.

use axum::Json;
use serde_json::{Value, json};

fn op(summary: &str) -> Value {
    json!({
        "summary": summary,
        "responses": {
            "200": { "description": "OK" },
            "400": { "$ref": "#/components/responses/Error" },
            "401": { "$ref": "#/components/responses/Error" },
            "404": { "$ref": "#/components/responses/Error" },
            "409": { "$ref": "#/components/responses/Error" }
        }
    })
}

fn with_body(summary: &str, schema: &str) -> Value {
    let mut o = op(summary);
    o["requestBody"] = json!({
        "required": true,
        "content": { "application/json": { "schema": { "$ref": format!("#/components/schemas/{schema}") } } }
    });
    o
}

fn id_param() -> Value {
    json!([{ "name": "id", "in": "path", "required": true, "schema": { "type": "string" } }])
}

/// OpenAPI 3.1 description of the REST API.
pub(crate) async fn document() -> Json<Value> {
    let mut paths = serde_json::Map::new();
    let mut add = |path: &str, item: Value| {
        paths.insert(format!("/v1{path}"), item);
    };
    add(
        "/ping",
        json!({ "get": op("Liveness check; returns \"Pong\"") }),
    );
    add(
        "/connectors",
        json!({ "get": op("List connectors with the JSON Schemas of their profile and table configs") }),
    );
    add(
        "/connection_profiles",
        json!({
            "get": op("List connection profiles"),
            "post": with_body("Create a connection profile", "ProfilePost")
        }),
    );
    add(
        "/connection_profiles/test",
        json!({ "post": with_body("Test a profile's connection", "ProfilePost") }),
    );
    add(
        "/connection_profiles/{id}",
        json!({
            "parameters": id_param(),
            "get": op("Get a connection profile"),
            "delete": op("Delete a connection profile (409 while tables use it)")
        }),
    );
    add(
        "/connection_profiles/{id}/autocomplete",
        json!({ "parameters": id_param(), "get": op("Suggestions (topics, streams, ...)") }),
    );
    add(
        "/connection_tables",
        json!({
            "get": op("List connection tables"),
            "post": with_body("Create a connection table", "TablePost")
        }),
    );
    add(
        "/connection_tables/test",
        json!({ "post": with_body("Validate a table and read sample rows", "TablePost") }),
    );
    add(
        "/connection_tables/schemas/test",
        json!({ "post": with_body("Validate a schema and return the inferred fields", "TablePost") }),
    );
    add(
        "/connection_tables/{id}",
        json!({
            "parameters": id_param(),
            "get": op("Get a connection table"),
            "delete": op("Delete a connection table (409 while pipelines use it)")
        }),
    );
    add(
        "/pipelines",
        json!({
            "get": op("List pipelines"),
            "post": with_body("Create and start a pipeline from INSERT INTO ... SELECT ...", "PipelinePost")
        }),
    );
    add(
        "/pipelines/{id}",
        json!({
            "parameters": id_param(),
            "get": op("Get a pipeline"),
            "patch": with_body("Stop (stop != none) or start (stop = none) a pipeline", "PipelinePatch"),
            "delete": op("Stop and delete a pipeline")
        }),
    );
    for action in ["restart", "start", "stop"] {
        add(
            &format!("/pipelines/{{id}}/{action}"),
            json!({ "parameters": id_param(), "post": op(&format!("{action} a pipeline")) }),
        );
    }
    add(
        "/pipelines/{id}/jobs",
        json!({ "parameters": id_param(), "get": op("Jobs of a pipeline") }),
    );
    add("/jobs", json!({ "get": op("List jobs") }));
    add(
        "/jobs/{id}",
        json!({ "parameters": id_param(), "get": op("Get a job") }),
    );
    for sub in ["metrics", "errors", "checkpoints"] {
        add(
            &format!("/jobs/{{id}}/{sub}"),
            json!({ "parameters": id_param(), "get": op(&format!("Job {sub}")) }),
        );
    }
    for action in ["stop", "restart"] {
        add(
            &format!("/jobs/{{id}}/{action}"),
            json!({ "parameters": id_param(), "post": op(&format!("{action} a job's pipeline")) }),
        );
    }
    paths.insert(
        "/metrics".to_string(),
        json!({ "get": op("Prometheus text exposition of pipeline counters") }),
    );
    Json(json!({
        "openapi": "3.1.0",
        "info": { "title": "Laminar REST API", "version": env!("CARGO_PKG_VERSION") },
        "servers": [{ "url": "/" }],
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "responses": {
                "Error": {
                    "description": "Error envelope",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
                }
            },
            "schemas": {
                "Error": {
                    "type": "object",
                    "properties": { "error": { "type": "object", "properties": {
                        "code": { "type": "string" }, "message": { "type": "string" }, "details": { "type": "object" }
                    }, "required": ["code", "message"] } }
                },
                "ProfilePost": {
                    "type": "object", "required": ["name", "connector"],
                    "properties": {
                        "name": { "type": "string" }, "connector": { "type": "string" },
                        "description": { "type": "string" }, "config": { "type": "object" }
                    }
                },
                "TablePost": {
                    "type": "object", "required": ["name", "connector"],
                    "properties": {
                        "name": { "type": "string" }, "connector": { "type": "string" },
                        "connectionProfileId": { "type": "string" },
                        "table_type": { "type": "string", "enum": ["source", "sink"] },
                        "config": { "type": "object" },
                        "schema": { "type": "object", "properties": {
                            "format": { "type": "object" },
                            "fields": { "type": "array", "items": { "type": "object" } }
                        } },
                        "event_time_field": { "type": "string" },
                        "watermark_delay": { "type": "string" },
                        "idle_time": { "type": "string" }
                    }
                },
                "PipelinePost": {
                    "type": "object", "required": ["query"],
                    "properties": {
                        "name": { "type": "string" }, "query": { "type": "string" },
                        "parallelism": { "type": "integer" },
                        "checkpoint_interval_micros": { "type": "integer" }
                    }
                },
                "PipelinePatch": {
                    "type": "object",
                    "properties": { "stop": { "type": "string", "enum": ["none", "checkpoint", "graceful", "immediate", "force"] } }
                }
            }
        },
        "security": [{ "bearer": [] }]
    }))
}
