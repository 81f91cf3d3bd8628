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
pub mod cut;
pub mod store;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::Duration;

use datafusion::physical_plan::ExecutionPlan;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::error::{EngineError, Result};
use crate::stream::per_window_plan::PerWindowPlanExec;
use crate::stream::stream_join::StreamJoinExec;
use crate::stream::updating::UpdatingAggregateExec;
use crate::stream::window_agg::WindowAggregateExec;
use crate::stream::window_assembly::WindowAssemblyExec;
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
    // Rows in its channels are ordered with the barriers (see [`cut`]).
    "ExchangeExec",
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
        || any.is::<WindowAssemblyExec>()
        || any.is::<crate::exec::limit::StreamingLimitExec>()
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

/// What a segment holds at a cut: source positions and operator states by key.
#[derive(Default, Clone)]
struct Capture {
    sources: BTreeMap<String, Value>,
    operators: BTreeMap<String, Value>,
}

impl Capture {
    fn extend(&mut self, other: &Capture) {
        self.sources
            .extend(other.sources.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.operators
            .extend(other.operators.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

/// Captures of segments below the top, waiting for the top to write their checkpoint.
#[derive(Default)]
struct Captures {
    by_epoch: BTreeMap<u64, HashMap<usize, Capture>>,
    /// Segments whose input ended: their last state stands for every later checkpoint.
    finished: HashMap<usize, Capture>,
}

#[derive(Default)]
struct Registrations {
    /// Each with the segment (see [`cut`]) it belongs to.
    sources: Vec<(String, usize, Arc<SourcePosition>)>,
    operators: Vec<(String, usize, Arc<dyn OperatorSnapshot>)>,
    leaves: Vec<(usize, Arc<cut::Alignment>)>,
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
    /// Segments below the top allocated so far (they are numbered from 1).
    segments: AtomicUsize,
    /// The epoch whose barrier the top asked for.
    requested: AtomicU64,
    /// Drivers of source-reading segments waiting for a barrier request.
    waiting: Mutex<Vec<Waker>>,
    captures: Mutex<Captures>,
    /// The top's input ended: parts of the plan still running were cut off by an operator
    /// above them that ended (a `LIMIT`), and have nothing left to resume.
    top_ended: AtomicBool,
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
            segments: AtomicUsize::new(0),
            requested: AtomicU64::new(base_epoch),
            waiting: Mutex::default(),
            captures: Mutex::default(),
            top_ended: AtomicBool::new(false),
        }
    }

    /// The top's input ended (its last checkpoint follows).
    pub fn top_ended(&self) {
        self.top_ended.store(true, Ordering::Release);
    }

    /// A new segment below the top (an exchange input).
    pub fn new_segment(&self) -> usize {
        self.segments.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// An exchange output starting in the current segment.
    pub fn register_leaf(&self, alignment: Arc<cut::Alignment>) {
        self.registrations()
            .leaves
            .push((cut::current_segment(), alignment));
    }

    fn leaves(&self, segment: usize) -> Vec<Arc<cut::Alignment>> {
        self.registrations()
            .leaves
            .iter()
            .filter(|(s, _)| *s == segment)
            .map(|(_, a)| a.clone())
            .collect()
    }

    /// The last epoch taken (or resumed from).
    pub fn last_epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Start the barrier of `epoch` at the sources.
    pub fn request(&self, epoch: u64) {
        self.requested.fetch_max(epoch, Ordering::AcqRel);
        let waiting = std::mem::take(&mut *self.waiting.lock().unwrap_or_else(|p| p.into_inner()));
        for waker in waiting {
            waker.wake();
        }
    }

    /// The epoch asked for, waking `cx` at the next request.
    fn requested(&self, cx: &mut Context<'_>) -> u64 {
        {
            let mut waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner());
            if !waiting.iter().any(|w| w.will_wake(cx.waker())) {
                waiting.push(cx.waker().clone());
            }
        }
        self.requested.load(Ordering::Acquire)
    }

    /// Start the next checkpoint's barrier, unless one is on its way.
    pub fn request_next(&self) {
        if self.requested.load(Ordering::Acquire) <= self.last_epoch() {
            self.request(self.next_epoch());
        }
    }

    /// What `segment` holds now (it is at rest).
    fn capture_now(&self, segment: usize) -> Result<Capture> {
        let registrations = self.registrations();
        let mut capture = Capture::default();
        for (key, _, position) in registrations.sources.iter().filter(|r| r.1 == segment) {
            capture.sources.insert(key.clone(), position.current());
        }
        for (key, _, operator) in registrations.operators.iter().filter(|r| r.1 == segment) {
            capture.operators.insert(key.clone(), operator.snapshot()?);
        }
        Ok(capture)
    }

    /// `segment` (below the top) is at the barrier of `epoch`.
    pub fn capture(&self, segment: usize, epoch: u64) -> Result<()> {
        let capture = self.capture_now(segment)?;
        self.lock_captures()
            .by_epoch
            .entry(epoch)
            .or_default()
            .insert(segment, capture);
        Ok(())
    }

    /// `segment`'s input ended: its final state goes into every later checkpoint.
    pub fn finish_segment(&self, segment: usize) -> Result<()> {
        let capture = self.capture_now(segment)?;
        self.lock_captures().finished.insert(segment, capture);
        Ok(())
    }

    fn lock_captures(&self) -> std::sync::MutexGuard<'_, Captures> {
        self.captures.lock().unwrap_or_else(|p| p.into_inner())
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
        let segment = cut::current_segment();
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
        registrations.sources.push((key, segment, position.clone()));
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
        registrations
            .operators
            .push((key, cut::current_segment(), operator));
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

    /// Collect every position and operator state at the cut of `epoch` (the top's now,
    /// the other segments' as they passed its barrier) with the sink's prepared data and
    /// make the checkpoint durable.
    pub fn write(&self, epoch: u64, start_time: i64, sink: Value) -> Result<CheckpointRecord> {
        let mut all = self.capture_now(cut::TOP_SEGMENT)?;
        {
            let mut captures = self.lock_captures();
            let at_epoch = captures.by_epoch.remove(&epoch).unwrap_or_default();
            let cut_off = self.top_ended.load(Ordering::Acquire);
            for segment in 1..=self.segments.load(Ordering::Acquire) {
                let part = at_epoch
                    .get(&segment)
                    .or_else(|| captures.finished.get(&segment));
                match part {
                    Some(part) => all.extend(part),
                    // A resumed job ends at once there (its LIMIT is reached).
                    None if cut_off => tracing::debug!(
                        pipeline = %self.pipeline_id,
                        segment,
                        "last checkpoint: a part of the plan cut off by an operator that ended keeps no position"
                    ),
                    None => {
                        return Err(EngineError::Checkpoint(format!(
                            "checkpoint {epoch}: part {segment} of the plan did not reach its barrier"
                        )));
                    }
                }
            }
            captures.by_epoch.retain(|e, _| *e > epoch);
        }
        let Capture { sources, operators } = all;
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
        for (_, _, source) in &self.registrations().sources {
            source.committed.fetch_max(epoch, Ordering::AcqRel);
        }
    }
}
