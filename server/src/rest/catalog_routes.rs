//! `/v1/connectors`, `/v1/connection_profiles`, `/v1/connection_tables`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, Query, State};
use catalog::{FieldDef, Profile, TableDef};
use connectors::format::{Format, FormatSpec};
use connectors::options::redact;
use connectors::schema::{parse_rest_type, sql_type_name};
use engine::Engine;
use engine::ddl::{ProfileRequest, TableRequest};
use serde_json::{Map, Value, json};

use super::body::{JsonBody, required, str_field};
use super::error::ApiError;

/// How long a live connection test may take.
const TEST_DEADLINE: Duration = Duration::from_secs(10);

type ApiResult = Result<Json<Value>, ApiError>;

fn data(value: Value) -> ApiResult {
    Ok(Json(json!({ "data": value })))
}

// ---- connectors

pub(crate) async fn list_connectors(State(engine): State<Arc<Engine>>) -> ApiResult {
    let items: Vec<Value> = engine
        .registry
        .all()
        .map(|c| {
            let m = c.metadata();
            let mut roles = Vec::new();
            if m.source {
                roles.push("source");
            }
            if m.sink {
                roles.push("sink");
            }
            json!({
                "id": m.id,
                "name": m.name,
                "description": m.description,
                "category": m.category,
                "type": roles,
                "source": m.source,
                "sink": m.sink,
                "supported_formats": m.formats,
                "configuration_schema": {
                    "profile": c.profile_schema(),
                    "table": c.table_schema(),
                },
            })
        })
        .collect();
    data(Value::Array(items))
}

// ---- profiles

fn profile_json(p: &Profile) -> Value {
    json!({
        "id": p.id,
        "name": p.name,
        "connector": p.connector,
        "description": p.description,
        "config": redact(&p.config),
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    })
}

fn profile_request(body: &Value) -> Result<ProfileRequest, ApiError> {
    Ok(ProfileRequest {
        name: required(body, "name")?,
        connector: required(body, "connector")?,
        description: str_field(body, "description"),
        config: body
            .get("config")
            .cloned()
            .unwrap_or(Value::Object(Map::new())),
    })
}

pub(crate) async fn create_profile(
    State(engine): State<Arc<Engine>>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let profile = engine.create_profile(profile_request(&body)?).await?;
    data(profile_json(&profile))
}

pub(crate) async fn list_profiles(State(engine): State<Arc<Engine>>) -> ApiResult {
    let profiles = engine.catalog.profiles().await?;
    data(profiles.iter().map(profile_json).collect())
}

pub(crate) async fn get_profile(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> ApiResult {
    let profile = engine.catalog.profile(&id).await?;
    data(profile_json(&profile))
}

pub(crate) async fn delete_profile(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> ApiResult {
    let profile = engine.catalog.drop_profile(&id).await?;
    data(json!({ "message": format!("connection profile '{}' deleted", profile.name) }))
}

pub(crate) async fn test_profile(
    State(engine): State<Arc<Engine>>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let connector_name = required(&body, "connector")?;
    let connector = engine.registry.get(&connector_name)?;
    let config = body
        .get("config")
        .cloned()
        .unwrap_or(Value::Object(Map::new()));
    let config = connector.check_profile(&config)?;
    let started = std::time::Instant::now();
    let outcome = connector.test_profile(&config, TEST_DEADLINE).await?;
    let latency_ms = started.elapsed().as_millis() as u64;
    if outcome.success {
        data(json!({
            "success": true,
            "message": outcome.message,
            "details": { "latency_ms": latency_ms },
        }))
    } else {
        Err(ApiError {
            status: axum::http::StatusCode::BAD_REQUEST,
            code: "CONNECTION_FAILED",
            message: outcome.message.clone(),
            details: json!({ "reason": outcome.message, "latency_ms": latency_ms }),
        })
    }
}

pub(crate) async fn autocomplete(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult {
    let profile = engine.catalog.profile(&id).await?;
    let connector = engine.registry.get(&profile.connector)?;
    let kinds = connector.autocomplete(&profile.config).await?;
    let wanted = params.get("type");
    let prefix = params.get("prefix").map(String::as_str).unwrap_or("");
    let suggestions: Vec<Value> = kinds
        .iter()
        .filter(|(kind, _)| wanted.is_none_or(|w| w == kind))
        .flat_map(|(kind, values)| {
            values
                .iter()
                .filter(|v| v.starts_with(prefix))
                .map(move |v| json!({ "value": v, "label": v, "type": kind, "metadata": {} }))
        })
        .collect();
    data(json!({ "suggestions": suggestions }))
}

// ---- tables

fn table_json(t: &TableDef) -> Value {
    let fields: Vec<Value> = t
        .fields
        .iter()
        .map(|f| json!({ "name": f.name, "data_type": f.data_type, "nullable": f.nullable }))
        .collect();
    json!({
        "id": t.id,
        "name": t.name,
        "connector": t.connector,
        "table_type": t.table_type,
        "connection_profile_id": t.connection_profile_id,
        "config": redact(&t.config),
        "connection": redact(&t.inline_profile),
        "format": t.format,
        "schema": { "fields": fields, "inferred": t.schema_inferred },
        "event_time_field": t.event_time_field,
        "watermark_delay": t.watermark_delay,
        "idle_time": t.idle_time,
        "created_at": t.created_at,
        "updated_at": t.updated_at,
    })
}

/// Keys of an Arroyo-style `config.type` object that make a table a source or a sink.
const SOURCE_TYPE_KEYS: &[&str] = &["offset", "read_mode", "group_id", "group_id_prefix"];

/// Sink settings the product page writes next to `type: "sink"` (`commitMode`, ...).
const SINK_TYPE_KEYS: &[&str] = &["commit_mode", "key_field", "timestamp_field"];

/// The product page's flat shape, `{"type": "source", "offset": "earliest", "groupId": ...}`:
/// move role settings the connector keeps under `source.*` / `sink.*` into that group.
fn group_role_settings(
    connector: &dyn connectors::DynConnector,
    role: Option<&str>,
    config: &mut Map<String, Value>,
) {
    let (group, keys) = match role {
        Some("source") => ("source", SOURCE_TYPE_KEYS),
        Some("sink") => ("sink", SINK_TYPE_KEYS),
        _ => return,
    };
    let schema = connector.table_schema();
    let properties = schema.get("properties").and_then(Value::as_object);
    let has = |key: &str| properties.is_some_and(|p| p.contains_key(key));
    if !has(group) {
        return;
    }
    for key in keys {
        if has(key) {
            continue;
        }
        if let Some(value) = config.remove(*key) {
            let settings = config
                .entry(group.to_string())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(settings) = settings {
                settings.entry(key.to_string()).or_insert(value);
            }
        }
    }
}

/// Build a table request from a REST body (the product page's shape or the snake_case one).
fn table_request(engine: &Engine, body: &Value) -> Result<TableRequest, ApiError> {
    let name = required(body, "name")?;
    let connector_name = required(body, "connector")?;
    let connector = engine.registry.get(&connector_name)?;
    let mut config = match body.get("config") {
        Some(Value::Object(map)) => map.clone(),
        Some(Value::Null) | None => Map::new(),
        Some(_) => return Err(ApiError::bad_request("'config' must be an object")),
    };
    let mut role = str_field(body, "table_type");
    match config.remove("type") {
        Some(Value::String(s)) => role = Some(s),
        Some(Value::Object(settings)) => {
            // Arroyo shape: `type: {offset: ...}` (source) or `type: {commit_mode: ...}` (sink).
            let is_source = settings
                .keys()
                .any(|k| SOURCE_TYPE_KEYS.contains(&k.as_str()));
            let group = if is_source { "source" } else { "sink" };
            role = Some(group.to_string());
            if !settings.is_empty() {
                config.insert(group.to_string(), Value::Object(settings));
            }
        }
        Some(Value::Null) | None => {}
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "config.type must be \"source\", \"sink\" or an object, found {other}"
            )));
        }
    }
    group_role_settings(connector.as_ref(), role.as_deref(), &mut config);
    // Connection settings may be given on the table; they belong to the profile part.
    let profile_keys: Vec<String> = connector
        .profile_schema()
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let mut inline_profile = Map::new();
    for key in profile_keys {
        if let Some(v) = config.remove(&key) {
            inline_profile.insert(key, v);
        }
    }
    let mut format = FormatSpec::default();
    let mut fields = None;
    if let Some(schema) = body.get("schema") {
        if let Some(fmt) = schema.get("format") {
            match fmt {
                Value::String(s) => format.format = Some(Format::parse(&connector_name, s)?),
                Value::Object(map) if map.len() == 1 => {
                    let (kind, options) = map
                        .iter()
                        .next()
                        .ok_or_else(|| ApiError::bad_request("empty schema.format"))?;
                    format.format = Some(Format::parse(&connector_name, kind)?);
                    if let Value::Object(options) = options {
                        for (k, v) in options {
                            let key = format!("{kind}.{k}");
                            FormatSpec::check_option(&key)?;
                            let text = v
                                .as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| v.to_string());
                            format.options.insert(key, text);
                        }
                    }
                }
                Value::Null => {}
                other => {
                    return Err(ApiError::bad_request(format!(
                        "invalid schema.format: {other}"
                    )));
                }
            }
        }
        if let Some(bad_data) = schema.get("bad_data").and_then(Value::as_str) {
            format.bad_data = FormatSpec::parse_bad_data(&connector_name, bad_data)?;
        }
        if let Some(list) = schema.get("fields").and_then(Value::as_array) {
            let mut out = Vec::with_capacity(list.len());
            for (i, field) in list.iter().enumerate() {
                let name = field.get("name").and_then(Value::as_str).ok_or_else(|| {
                    ApiError::bad_request(format!("schema.fields[{i}] needs a 'name'"))
                })?;
                let ty = field
                    .get("type")
                    .or_else(|| field.get("data_type"))
                    .ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "schema.fields[{i}] ('{name}') needs a 'type' or 'data_type'"
                        ))
                    })?;
                let data_type = parse_rest_type(ty).map_err(|e| {
                    let mut err =
                        ApiError::bad_request(format!("schema.fields[{i}] ('{name}'): {e}"));
                    err.details = json!({ "path": format!("schema.fields[{i}].type") });
                    err
                })?;
                let nullable = field
                    .get("nullable")
                    .and_then(Value::as_bool)
                    .or_else(|| field.get("required").and_then(Value::as_bool).map(|r| !r))
                    .unwrap_or(true);
                out.push(FieldDef {
                    name: name.to_string(),
                    data_type: sql_type_name(&data_type),
                    nullable,
                });
            }
            fields = Some(out);
        }
    }
    Ok(TableRequest {
        name,
        connector: connector_name,
        role,
        profile: str_field(body, "connection_profile_id")
            .or_else(|| str_field(body, "connection_profile")),
        inline_profile: Value::Object(inline_profile),
        config: Value::Object(config),
        format,
        fields,
        event_time_field: str_field(body, "event_time_field"),
        watermark_delay: str_field(body, "watermark_delay"),
        idle_time: str_field(body, "idle_time"),
        // `schema.primaryKeys` (as Arroyo's connection tables spell it) or `primary_key`.
        primary_key: body
            .get("schema")
            .and_then(|s| s.get("primaryKeys").or_else(|| s.get("primary_keys")))
            .or_else(|| body.get("primary_key"))
            .and_then(Value::as_array)
            .map(|keys| {
                keys.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    })
}

pub(crate) async fn create_table(
    State(engine): State<Arc<Engine>>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let request = table_request(&engine, &body)?;
    let table = engine.create_table(request).await?;
    data(table_json(&table))
}

pub(crate) async fn list_tables(
    State(engine): State<Arc<Engine>>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let limit: usize = params
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(20)
        .clamp(1, 100);
    let offset: usize = params
        .get("offset")
        .and_then(|o| o.parse().ok())
        .unwrap_or(0);
    let tables: Vec<TableDef> = engine
        .catalog
        .tables()
        .await?
        .into_iter()
        .filter(|t| params.get("type").is_none_or(|ty| &t.table_type == ty))
        .filter(|t| params.get("connector").is_none_or(|c| &t.connector == c))
        .collect();
    let total = tables.len();
    let page: Vec<Value> = tables
        .iter()
        .skip(offset)
        .take(limit)
        .map(table_json)
        .collect();
    Ok(Json(
        json!({ "data": page, "meta": { "total": total, "limit": limit, "offset": offset } }),
    ))
}

pub(crate) async fn get_table(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> ApiResult {
    let table = engine.catalog.table(&id).await?;
    data(table_json(&table))
}

pub(crate) async fn delete_table(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> ApiResult {
    let table = engine.catalog.drop_table(&id).await?;
    data(json!({ "message": format!("table '{}' deleted", table.name) }))
}

pub(crate) async fn test_table(
    State(engine): State<Arc<Engine>>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let request = table_request(&engine, &body)?;
    let resolved = engine.check_table(request).await?;
    let sample = engine.sample_rows(&resolved, 5, TEST_DEADLINE).await?;
    let statistics = match resolved.role {
        connectors::TableRole::Source => {
            resolved
                .connector
                .table_statistics(
                    &resolved.profile_config,
                    &resolved.def.config,
                    &resolved.def.name,
                )
                .await?
        }
        connectors::TableRole::Sink => Value::Null,
    };
    data(json!({
        "success": true,
        "message": format!("table '{}' is valid", resolved.def.name),
        "sample_data": sample,
        "statistics": if statistics.is_null() { json!({}) } else { statistics },
    }))
}

pub(crate) async fn test_schema(
    State(engine): State<Arc<Engine>>,
    JsonBody(mut body): JsonBody,
) -> ApiResult {
    if body.get("name").is_none() {
        body["name"] = json!("schema_test");
    }
    let request = table_request(&engine, &body)?;
    let resolved = engine.check_table(request).await?;
    // The schema is valid even if reading samples fails; say why there are none.
    let (sample, sample_error) = match engine.sample_rows(&resolved, 3, TEST_DEADLINE).await {
        Ok(rows) => (rows, None),
        Err(e) => (Vec::new(), Some(e.to_string())),
    };
    let fields: Vec<Value> = resolved
        .schema
        .fields()
        .iter()
        .map(|f| {
            let values: Vec<Value> = sample
                .iter()
                .filter_map(|row| row.get(f.name()).cloned())
                .collect();
            json!({
                "name": f.name(),
                "data_type": sql_type_name(f.data_type()),
                "nullable": f.is_nullable(),
                "sample_values": values,
            })
        })
        .collect();
    data(json!({
        "valid": true,
        "sample_error": sample_error,
        "inferred_schema": { "fields": fields },
        "compatibility": { "forward_compatible": true, "backward_compatible": true },
    }))
}
