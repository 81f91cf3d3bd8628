//! Laminar's streaming operators and the planning that puts them in a query: event time,
//! watermarks and windowed aggregation.

pub mod aggregates;
pub mod event_time;
pub mod functions;
pub mod per_window;
pub mod per_window_plan;
pub mod rewrite;
pub mod session;
pub mod updating;
pub mod watermark;
pub mod window;
pub mod window_agg;
pub mod window_join;
pub mod window_origin;
