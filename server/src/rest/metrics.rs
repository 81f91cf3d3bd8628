//! `GET /metrics`: Prometheus text exposition of pipeline counters.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use engine::Engine;

use super::error::ApiError;

/// Reads one counter of a job.
type Metric = fn(&catalog::JobMetrics) -> u64;

fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub(crate) async fn prometheus(
    State(engine): State<Arc<Engine>>,
) -> Result<impl IntoResponse, ApiError> {
    let statuses = engine.pipeline_statuses().await?;
    let mut out = String::new();
    let counters: [(&str, &str, Metric); 6] = [
        (
            "records_in",
            "Records read from sources by the pipeline's current job",
            |m| m.records_in,
        ),
        (
            "records_out",
            "Records written to the sink by the pipeline's current job",
            |m| m.records_out,
        ),
        (
            "bytes_in",
            "Bytes (in memory) read by the pipeline's current job",
            |m| m.bytes_in,
        ),
        (
            "bytes_out",
            "Bytes (in memory) written by the pipeline's current job",
            |m| m.bytes_out,
        ),
        ("errors", "Errors of the pipeline's current job", |m| {
            m.errors
        }),
        (
            "late_records",
            "Rows dropped for arriving behind the watermark",
            |m| m.late_records,
        ),
    ];
    for (name, help, get) in counters {
        let _ = writeln!(out, "# HELP laminar_pipeline_{name}_total {help}.");
        let _ = writeln!(out, "# TYPE laminar_pipeline_{name}_total counter");
        for s in &statuses {
            let value = s.job.as_ref().map_or(0, |j| get(&j.metrics));
            let _ = writeln!(
                out,
                "laminar_pipeline_{name}_total{{pipeline=\"{}\",id=\"{}\"}} {value}",
                label(&s.def.name),
                s.def.id
            );
        }
    }
    let _ = writeln!(
        out,
        "# HELP laminar_pipeline_running Whether the pipeline has a running job."
    );
    let _ = writeln!(out, "# TYPE laminar_pipeline_running gauge");
    for s in &statuses {
        let running = u8::from(s.state == "Running");
        let _ = writeln!(
            out,
            "laminar_pipeline_running{{pipeline=\"{}\",id=\"{}\"}} {running}",
            label(&s.def.name),
            s.def.id
        );
    }
    let _ = writeln!(
        out,
        "# HELP laminar_pipeline_state_bytes Bytes of operator state (open windows) of the pipeline's current job."
    );
    let _ = writeln!(out, "# TYPE laminar_pipeline_state_bytes gauge");
    for s in &statuses {
        let bytes = s.job.as_ref().map_or(0, |j| j.metrics.state_bytes);
        let _ = writeln!(
            out,
            "laminar_pipeline_state_bytes{{pipeline=\"{}\",id=\"{}\"}} {bytes}",
            label(&s.def.name),
            s.def.id
        );
    }
    let tables = engine.catalog.tables().await?.len();
    let _ = writeln!(out, "# HELP laminar_tables Tables in the catalog.");
    let _ = writeln!(out, "# TYPE laminar_tables gauge");
    let _ = writeln!(out, "laminar_tables {tables}");
    Ok(([(CONTENT_TYPE, "text/plain; version=0.0.4")], out))
}
