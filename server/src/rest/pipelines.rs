//! `/v1/pipelines` and `/v1/jobs`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use catalog::{DesiredState, JobRecord};
use engine::{Engine, PipelineStatus};
use serde_json::{Value, json};

use super::body::{JsonBody, required, str_field};
use super::error::ApiError;

type ApiResult = Result<Json<Value>, ApiError>;

fn pipeline_json(s: &PipelineStatus) -> Value {
    json!({
        "id": s.def.id,
        "name": s.def.name,
        "query": s.def.query,
        "udfs": [],
        "checkpoint_interval_micros": s.def.checkpoint_interval_micros,
        "parallelism": s.def.parallelism,
        "stop": match s.def.desired { DesiredState::Running => "none", DesiredState::Stopped => "immediate" },
        "created_at": s.def.created_at,
        "action_text": s.state,
        "state": s.state,
        "action_in_progress": false,
        "graph": { "nodes": [], "edges": [] },
        "preview": false,
        "job_id": s.job.as_ref().map(|j| j.id.clone()),
        "metrics": s.job.as_ref().map(|j| j.metrics.clone()),
        "records_in_per_sec": s.rates.0,
        "records_out_per_sec": s.rates.1,
        "failure_message": s.job.as_ref().and_then(|j| j.failure_message.clone()),
    })
}

fn job_json(j: &JobRecord) -> Value {
    json!({
        "id": j.id,
        "pipeline_id": j.pipeline_id,
        "running_desired": j.running_desired,
        "state": j.state,
        "run_id": j.run_id,
        "start_time": j.start_time,
        "finish_time": j.finish_time,
        "tasks": j.tasks,
        "failure_message": j.failure_message,
        "created_at": j.created_at,
        "metrics": j.metrics,
    })
}

fn page(params: &HashMap<String, String>) -> (usize, usize) {
    let limit = params
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(20usize)
        .clamp(1, 100);
    let offset = params
        .get("offset")
        .and_then(|o| o.parse().ok())
        .unwrap_or(0usize);
    (limit, offset)
}

pub(crate) async fn create_pipeline(
    State(engine): State<Arc<Engine>>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let query = required(&body, "query")?;
    let parallelism = body
        .get("parallelism")
        .and_then(Value::as_u64)
        .map(|p| p as u32);
    let interval = body
        .get("checkpoint_interval_micros")
        .and_then(Value::as_u64);
    let status = engine
        .create_pipeline_from_sql(str_field(&body, "name"), &query, parallelism, interval)
        .await?;
    Ok(Json(pipeline_json(&status)))
}

pub(crate) async fn list_pipelines(
    State(engine): State<Arc<Engine>>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult {
    let (limit, offset) = page(&params);
    let all: Vec<PipelineStatus> = engine
        .pipeline_statuses()
        .await?
        .into_iter()
        .filter(|s| {
            params
                .get("state")
                .is_none_or(|st| s.state.eq_ignore_ascii_case(st))
        })
        .collect();
    let has_more = all.len() > offset + limit;
    let data: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(pipeline_json)
        .collect();
    Ok(Json(json!({ "data": data, "has_more": has_more })))
}

pub(crate) async fn get_pipeline(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> ApiResult {
    Ok(Json(pipeline_json(&engine.pipeline_status(&id).await?)))
}

pub(crate) async fn patch_pipeline(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody,
) -> ApiResult {
    let status = match str_field(&body, "stop").as_deref() {
        Some("none") => engine.start_pipeline(&id).await?,
        Some("checkpoint" | "graceful") => engine.stop_pipeline(&id).await?,
        // No last checkpoint: the pipeline resumes from the one before.
        Some("immediate" | "force") => engine.stop_pipeline_with(&id, false).await?,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "invalid value '{other}' for 'stop': expected one of none, checkpoint, graceful, immediate, force"
            )));
        }
        None => engine.pipeline_status(&id).await?,
    };
    Ok(Json(pipeline_json(&status)))
}

pub(crate) async fn delete_pipeline(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> ApiResult {
    let def = engine.drop_pipeline(&id).await?;
    Ok(Json(
        json!({ "message": format!("pipeline '{}' deleted", def.name) }),
    ))
}

pub(crate) async fn restart_pipeline(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> ApiResult {
    engine.stop_pipeline(&id).await?;
    let status = engine.start_pipeline(&id).await?;
    Ok(Json(json!({
        "message": format!("pipeline '{}' restarted", status.def.name),
        "job_id": status.job.as_ref().map(|j| j.id.clone()),
    })))
}

pub(crate) async fn start_pipeline(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> ApiResult {
    Ok(Json(pipeline_json(&engine.start_pipeline(&id).await?)))
}

pub(crate) async fn stop_pipeline(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> ApiResult {
    Ok(Json(pipeline_json(&engine.stop_pipeline(&id).await?)))
}

pub(crate) async fn pipeline_jobs(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> ApiResult {
    let def = engine.catalog.pipeline(&id).await?;
    let jobs: Vec<Value> = engine
        .jobs()
        .await?
        .iter()
        .filter(|j| j.pipeline_id == def.id)
        .map(job_json)
        .collect();
    Ok(Json(json!({ "data": jobs })))
}

pub(crate) async fn list_jobs(
    State(engine): State<Arc<Engine>>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult {
    let (limit, offset) = page(&params);
    let all: Vec<JobRecord> = engine
        .jobs()
        .await?
        .into_iter()
        .filter(|j| {
            params
                .get("pipeline_id")
                .is_none_or(|p| &j.pipeline_id == p)
        })
        .filter(|j| {
            params
                .get("state")
                .is_none_or(|s| j.state.eq_ignore_ascii_case(s))
        })
        .collect();
    let has_more = all.len() > offset + limit;
    let data: Vec<Value> = all.iter().skip(offset).take(limit).map(job_json).collect();
    Ok(Json(json!({ "data": data, "has_more": has_more })))
}

pub(crate) async fn get_job(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> ApiResult {
    Ok(Json(job_json(&engine.job(&id).await?)))
}

pub(crate) async fn job_metrics(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> ApiResult {
    let job = engine.job(&id).await?;
    let status = engine.pipeline_status(&job.pipeline_id).await?;
    let running = status.job.as_ref().is_some_and(|j| j.id == job.id) && status.state == "Running";
    let m = &job.metrics;
    Ok(Json(json!({
        "records_in": m.records_in,
        "records_out": m.records_out,
        "bytes_in": m.bytes_in,
        "bytes_out": m.bytes_out,
        "errors": m.errors,
        "warnings": m.warnings,
        "late_records": m.late_records,
        "state_bytes": m.state_bytes,
        "throughput": if running { status.rates.1 } else { 0.0 },
        "records_in_per_sec": if running { status.rates.0 } else { 0.0 },
        "records_out_per_sec": if running { status.rates.1 } else { 0.0 },
        "operators": m.operators,
    })))
}

pub(crate) async fn job_errors(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> ApiResult {
    let job = engine.job(&id).await?;
    let errors: Vec<Value> = job
        .failure_message
        .iter()
        .filter(|_| job.state == "Failed")
        .map(|message| {
            json!({
                "id": format!("err_{}", job.id.trim_start_matches("job_")),
                "timestamp": job.finish_time,
                "level": "error",
                "operator_id": null,
                "task_index": null,
                "message": message,
                "details": {},
                "record": null,
            })
        })
        .collect();
    Ok(Json(json!({ "data": errors })))
}

pub(crate) async fn job_checkpoints(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> ApiResult {
    let job = engine.job(&id).await?;
    let (checkpoints, off) = engine.checkpoints(&job.pipeline_id)?;
    let data: Vec<Value> = checkpoints
        .into_iter()
        .filter(|(c, _)| c.job_id == job.id)
        .rev()
        .map(|(c, size)| {
            let operators: Vec<Value> = c
                .operators
                .iter()
                .map(|(key, state)| json!({ "operator_id": key, "state_size": state.to_string().len() }))
                .collect();
            json!({
                "id": format!("chk_{}", c.epoch),
                "job_id": c.job_id,
                "epoch": c.epoch,
                "start_time": c.start_time,
                "finish_time": c.finish_time,
                "state": "Completed",
                "size_bytes": size,
                "operator_states": operators,
                "source_positions": c.sources,
            })
        })
        .collect();
    let mut body = json!({ "data": data });
    if let Some(reason) = off {
        body["disabled_reason"] = json!(reason);
    }
    Ok(Json(body))
}

pub(crate) async fn stop_job(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> ApiResult {
    let job = engine.job(&id).await?;
    engine.stop_pipeline(&job.pipeline_id).await?;
    Ok(Json(
        json!({ "message": format!("job '{}' stopped", job.id), "expected_finish_time": null }),
    ))
}

pub(crate) async fn restart_job(
    State(engine): State<Arc<Engine>>,
    Path(id): Path<String>,
) -> ApiResult {
    let job = engine.job(&id).await?;
    engine.stop_pipeline(&job.pipeline_id).await?;
    let status = engine.start_pipeline(&job.pipeline_id).await?;
    Ok(Json(json!({
        "message": format!("pipeline '{}' restarted", status.def.name),
        "new_job_id": status.job.as_ref().map(|j| j.id.clone()),
    })))
}
