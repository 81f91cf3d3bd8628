//! Laminar's streaming operators and the planning that puts them in a query: event time,
//! watermarks and windowed aggregation.

pub mod aggregates;
pub mod event_time;
pub mod exchange;
pub mod functions;
pub mod min_max_over_changes;
pub mod parallel;
pub mod per_window;
pub mod per_window_plan;
pub mod rewrite;
pub mod session;
pub mod stream_join;
pub mod updating;
pub mod watermark;
pub mod window;
pub mod window_agg;
pub mod window_assembly;
pub mod window_join;
pub mod window_origin;
pub mod window_run;

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::EmissionType;
use datafusion::physical_plan::{ExecutionPlan, Partitioning, PlanProperties};

/// Plan properties of a streaming operator over `input`: it emits as it goes, keeps the
/// input's partitions and is unbounded exactly when the input is.
pub fn streaming_properties(
    schema: SchemaRef,
    input: &Arc<dyn ExecutionPlan>,
) -> Arc<PlanProperties> {
    Arc::new(PlanProperties::new(
        EquivalenceProperties::new(schema),
        Partitioning::UnknownPartitioning(
            input.properties().output_partitioning().partition_count(),
        ),
        EmissionType::Incremental,
        input.properties().boundedness,
    ))
}
