//! Checkpoints: consistent snapshots of a running pipeline that a restarted job resumes from.
//!
//! A pipeline's operators, sources and sink are polled by one task, pulled by the sink's
//! write loop. Between two polls of its input that loop is a consistent cut: every row a
//! source has emitted is either written to the sink, held in an operator's state, or was
//! filtered out. So a checkpoint is taken there, with no barriers in the data:
//!
//! 1. the sink prepares (flushes; transactional sinks make their data durable but invisible),
//! 2. each source's position after its last emitted batch and each stateful operator's
//!    state are collected and written with the sink's prepared data ([`store`]),
//! 3. the sink commits (makes the epoch's data visible) and sources are told, so they can
//!    ack or commit upstream.
//!
//! A crash after 2 repeats the commit on recovery (sinks make it idempotent); a crash
//! before it resumes from the previous checkpoint, whose uncommitted data never showed.
//!
//! Sources and operators find the job's [`CheckpointHub`] in the task context when they
//! start, register there, and get back what the checkpoint being resumed holds for them.
//! Operators outside [`checkpoint_blocker`]'s list hold state that is not captured yet:
//! such pipelines run without checkpoints (and say so).

pub mod arrow_state;
pub mod store;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use datafusion::physical_plan::ExecutionPlan;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::error::Result;
use crate::stream::per_window_plan::PerWindowPlanExec;
use crate::stream::stream_join::StreamJoinExec;
use crate::stream::updating::UpdatingAggregateExec;
use crate::stream::window_agg::WindowAggregateExec;
use crate::stream::window_join::WindowJoinExec;
pub use store::{CheckpointRecord, CheckpointStore};

/// Operators that hold no rows between polls (or rebuild what they hold from bounded,
/// static input), so the sink's loop is a consistent cut through them.
const STATELESS: &[&str] = &[
    "DataSinkExec",
    "ProjectionExec",
    "FilterExec",
    "StreamingFilterExec",
    "StreamingTableExec",
    "UnionExec",
    "DataSourceExec",
    "EmptyExec",
    "PlaceholderRowExec",
    // Aggregates a whole window per input batch and emits it at once.
    "PerWindowAggregateExec",
];

/// `task` with `hub` in its config, where the plan's sources, operators and sink find it.
pub fn task_context_with(
    task: &Arc<datafusion::execution::TaskContext>,
    hub: Arc<CheckpointHub>,
) -> Arc<datafusion::execution::TaskContext> {
    with_config(task, task.session_config().clone().with_extension(hub))
}

/// `task` without a hub: what runs under it is read from its start at every (re)start.
pub fn task_context_without_hub(
    task: &Arc<datafusion::execution::TaskContext>,
) -> Arc<datafusion::execution::TaskContext> {
    let options = task.session_config().options().as_ref().clone();
    with_config(task, datafusion::prelude::SessionConfig::from(options))
}

fn with_config(
    task: &Arc<datafusion::execution::TaskContext>,
    config: datafusion::prelude::SessionConfig,
) -> Arc<datafusion::execution::TaskContext> {
    Arc::new(datafusion::execution::TaskContext::new(
        task.task_id(),
        task.session_id(),
        config,
        task.scalar_functions().clone(),
        task.aggregate_functions().clone(),
        task.window_functions().clone(),
        task.runtime_env(),
    ))
}

/// The first operator of `plan` whose state checkpoints do not capture, if any.
pub fn checkpoint_blocker(plan: &Arc<dyn ExecutionPlan>) -> Option<String> {
    if !STATELESS.contains(&plan.name()) && !registers_state(plan) {
        return Some(plan.name().to_string());
    }
    // A lookup join reads its static side again at every start: nothing there to capture.
    if let Some(join) = plan.as_any().downcast_ref::<StreamJoinExec>()
        && join.reads_static_left()
    {
        return plan.children().get(1).and_then(|c| checkpoint_blocker(c));
    }
    plan.children().into_iter().find_map(checkpoint_blocker)
}

/// Stateful operators that register their state with the hub.
fn registers_state(plan: &Arc<dyn ExecutionPlan>) -> bool {
    let any = plan.as_any();
    any.is::<WindowAggregateExec>()
        || any.is::<UpdatingAggregateExec>()
        || any.is::<StreamJoinExec>()
        || any.is::<WindowJoinExec>()
        || any.is::<PerWindowPlanExec>()
}

/// A source partition's position after the last batch it emitted.
#[derive(Debug, Default)]
pub struct SourcePosition {
    position: Mutex<Value>,
    /// The newest epoch whose checkpoint is durable.
    committed: AtomicU64,
}

impl SourcePosition {
    /// Record the position after a batch the source hands downstream.
    pub fn record(&self, position: Value) {
        *self.position.lock().unwrap_or_else(|p| p.into_inner()) = position;
    }

    fn current(&self) -> Value {
        self.position
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The newest durable epoch (0: none yet).
    pub fn committed(&self) -> u64 {
        self.committed.load(Ordering::Acquire)
    }
}

/// An operator's state, serialized at the cut.
pub trait OperatorSnapshot: Send + Sync {
    fn snapshot(&self) -> Result<Value>;
}

#[derive(Default)]
struct Registrations {
    sources: Vec<(String, Arc<SourcePosition>)>,
    operators: Vec<(String, Arc<dyn OperatorSnapshot>)>,
    /// How often each base key was taken: a second scan of a table gets `#2`.
    seen: HashMap<String, usize>,
}

impl Registrations {
    /// Keys follow the order in which the (deterministically planned) query starts its
    /// parts, so a resumed job finds the same key for the same part.
    fn key(&mut self, base: String) -> String {
        let n = self.seen.entry(base.clone()).or_default();
        *n += 1;
        if *n == 1 { base } else { format!("{base}#{n}") }
    }
}

/// The checkpoints of one job: what registered, what is resumed, where they go.
pub struct CheckpointHub {
    pub pipeline_id: String,
    pub job_id: String,
    pub interval: Duration,
    store: CheckpointStore,
    /// The checkpoint this job resumes from.
    restored: Option<CheckpointRecord>,
    registrations: Mutex<Registrations>,
    /// The last epoch taken (restored or by this job).
    epoch: AtomicU64,
    /// Stop gracefully: take a last checkpoint and end the job.
    pub stop: CancellationToken,
}

impl std::fmt::Debug for CheckpointHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointHub")
            .field("pipeline_id", &self.pipeline_id)
            .field("job_id", &self.job_id)
            .finish_non_exhaustive()
    }
}

impl CheckpointHub {
    pub fn new(
        pipeline_id: &str,
        job_id: &str,
        interval: Duration,
        store: CheckpointStore,
        restored: Option<CheckpointRecord>,
        base_epoch: u64,
    ) -> Self {
        CheckpointHub {
            pipeline_id: pipeline_id.to_string(),
            job_id: job_id.to_string(),
            interval,
            store,
            epoch: AtomicU64::new(base_epoch),
            restored,
            registrations: Mutex::default(),
            stop: CancellationToken::new(),
        }
    }

    fn registrations(&self) -> std::sync::MutexGuard<'_, Registrations> {
        self.registrations.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A source partition starting: its position cell, and where it resumes.
    pub fn register_source(
        &self,
        table: &str,
        partition: usize,
    ) -> (Arc<SourcePosition>, Option<Value>) {
        let mut registrations = self.registrations();
        let key = registrations.key(format!("{table}/{partition}"));
        let restore = self
            .restored
            .as_ref()
            .and_then(|r| r.sources.get(&key))
            .filter(|v| !v.is_null())
            .cloned();
        let position = Arc::new(SourcePosition::default());
        if let Some(restore) = &restore {
            position.record(restore.clone());
        }
        registrations.sources.push((key, position.clone()));
        (position, restore)
    }

    /// A stateful operator starting: the state it resumes with.
    pub fn register_operator(
        &self,
        name: &str,
        operator: Arc<dyn OperatorSnapshot>,
    ) -> Option<Value> {
        let mut registrations = self.registrations();
        let key = registrations.key(name.to_string());
        let restore = self
            .restored
            .as_ref()
            .and_then(|r| r.operators.get(&key))
            .cloned();
        registrations.operators.push((key, operator));
        restore
    }

    /// The sink data of the checkpoint resumed from, to commit again.
    pub fn restored_sink(&self) -> Option<(u64, Value)> {
        self.restored.as_ref().map(|r| (r.epoch, r.sink.clone()))
    }

    /// The epoch of the checkpoint about to be taken.
    pub fn next_epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire) + 1
    }

    /// Collect every position and operator state (at the cut) with the sink's prepared
    /// data and make the checkpoint durable.
    pub fn write(&self, epoch: u64, start_time: i64, sink: Value) -> Result<CheckpointRecord> {
        let (sources, operators) = {
            let registrations = self.registrations();
            let sources: BTreeMap<String, Value> = registrations
                .sources
                .iter()
                .map(|(key, p)| (key.clone(), p.current()))
                .collect();
            let mut operators = BTreeMap::new();
            for (key, operator) in &registrations.operators {
                operators.insert(key.clone(), operator.snapshot()?);
            }
            (sources, operators)
        };
        let record = CheckpointRecord {
            pipeline_id: self.pipeline_id.clone(),
            job_id: self.job_id.clone(),
            epoch,
            start_time,
            finish_time: catalog::now_millis(),
            sources,
            operators,
            sink,
        };
        self.store.write(&record)?;
        self.epoch.store(epoch, Ordering::Release);
        Ok(record)
    }

    /// The checkpoint of `epoch` is durable and committed: sources may ack upstream.
    pub fn committed(&self, epoch: u64) {
        for (_, source) in &self.registrations().sources {
            source.committed.fetch_max(epoch, Ordering::AcqRel);
        }
    }
}
