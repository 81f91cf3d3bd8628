//! Durable pipelines: start, stop, restart after a server restart, and their jobs.
//!
//! A pipeline is a stored `INSERT INTO sink SELECT ...` with a desired state. Each start
//! creates a job (one run) that executes the planned statement on a tokio task; the job's
//! counters are live while it runs and persisted when it ends. Nothing is detached: every
//! job task is owned here and cancelled on stop, drop and shutdown.

use futures::FutureExt;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use catalog::{Catalog, DesiredState, JobRecord, PipelineDef, new_id, now_millis};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::{ExecutionPlanProperties, execute_stream};
use futures::StreamExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Engine;
use crate::checkpoint::{CheckpointHub, CheckpointRecord, CheckpointStore, checkpoint_blocker};
use crate::error::{EngineError, Result};
use crate::exec::planner::Planned;
use crate::metrics::Counters;
use crate::session::Session;
use crate::sql::parse::{LaminarStatement, parse_sql};

/// Rows per batch in pipelines: throughput over per-row latency (generators still emit at
/// least every 50 ms, and filters pass batches on at once).
const PIPELINE_BATCH_SIZE: usize = 8192;

/// How long `stop` waits for a job to wind down before aborting it.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A job whose external system cannot be reached is run again after this delay, doubled
/// after each failed attempt up to [`MAX_RESTART_DELAY`]; other failures end the job.
const RESTART_DELAY: Duration = Duration::from_secs(1);
const MAX_RESTART_DELAY: Duration = Duration::from_secs(60);

/// A job that is running now.
struct RunningJob {
    job_id: String,
    cancel: CancellationToken,
    counters: Arc<Counters>,
    handle: JoinHandle<()>,
    /// Why this job takes no checkpoints, if it does not.
    checkpoints_off: Option<String>,
    /// While the job waits to run again after a connection failure: that failure.
    restarting: Arc<Mutex<Option<String>>>,
    /// Stop without a last checkpoint (REST stop mode `immediate`).
    skip_last_checkpoint: Arc<std::sync::atomic::AtomicBool>,
}

/// The jobs of this process, by pipeline id.
#[derive(Default)]
pub struct Jobs {
    running: Mutex<HashMap<String, RunningJob>>,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs").finish_non_exhaustive()
    }
}

/// A pipeline with its current state and latest job.
#[derive(Debug, Clone)]
pub struct PipelineStatus {
    pub def: PipelineDef,
    /// Created, Running, Stopped, Failed or Finished.
    pub state: String,
    pub job: Option<JobRecord>,
    /// Records per second in and out of the running job.
    pub rates: (f64, f64),
}

impl Jobs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, RunningJob>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.running.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Engine {
    /// Store and start a pipeline for an `INSERT INTO ... SELECT ...` statement.
    pub async fn create_pipeline(
        &self,
        name: Option<String>,
        insert: &datafusion::sql::sqlparser::ast::Statement,
        session: &Session,
        checkpoint_interval_micros: Option<u64>,
    ) -> Result<PipelineStatus> {
        // Plan first: a statement that does not plan is never stored.
        let planned = self.plan(session, insert).await?;
        if planned.sink.is_none() {
            return Err(EngineError::InvalidParameter(
                "a pipeline must be an INSERT INTO <sink table> SELECT ... statement".into(),
            ));
        }
        let id = new_id("pipe");
        let def = PipelineDef {
            name: name.unwrap_or_else(|| id.clone()),
            id,
            query: insert.to_string(),
            parallelism: session.parallelism as u32,
            checkpoint_interval_micros: checkpoint_interval_micros.unwrap_or(
                u64::try_from(session.checkpoint_interval.as_micros()).unwrap_or(u64::MAX),
            ),
            desired: DesiredState::Running,
            tables: planned.tables.clone(),
            created_at: now_millis(),
            updating_ttl_micros: Some(
                u64::try_from(session.updating_ttl.as_micros()).unwrap_or(u64::MAX),
            ),
        };
        self.catalog.create_pipeline(&def).await?;
        tracing::info!(pipeline = %def.name, id = %def.id, "created pipeline");
        self.launch(&def, planned).await?;
        self.pipeline_status(&def.id).await
    }

    /// Create a pipeline from SQL text (REST `POST /v1/pipelines`).
    pub async fn create_pipeline_from_sql(
        &self,
        name: Option<String>,
        sql: &str,
        parallelism: Option<u32>,
        checkpoint_interval_micros: Option<u64>,
    ) -> Result<PipelineStatus> {
        let mut statements = parse_sql(sql)?;
        if statements.len() != 1 {
            return Err(EngineError::InvalidParameter(format!(
                "a pipeline query must be exactly one statement, found {}",
                statements.len()
            )));
        }
        let mut session = Session::default();
        if let Some(p) = parallelism {
            session.parallelism = p.max(1) as usize;
        }
        match statements.remove(0) {
            LaminarStatement::Sql(statement)
                if matches!(
                    *statement,
                    datafusion::sql::sqlparser::ast::Statement::Insert(_)
                ) =>
            {
                self.create_pipeline(name, &statement, &session, checkpoint_interval_micros)
                    .await
            }
            LaminarStatement::CreatePipeline { name: n, insert } => {
                self.create_pipeline(
                    Some(name.unwrap_or(n)),
                    &insert,
                    &session,
                    checkpoint_interval_micros,
                )
                .await
            }
            _ => Err(EngineError::InvalidParameter(
                "a pipeline query must be INSERT INTO <sink table> SELECT ...".into(),
            )),
        }
    }

    async fn plan_pipeline(&self, def: &PipelineDef) -> Result<Planned> {
        let mut statements = parse_sql(&def.query)?;
        let Some(LaminarStatement::Sql(statement)) = statements.pop() else {
            return Err(EngineError::InvalidParameter(format!(
                "pipeline '{}' has an invalid query",
                def.name
            )));
        };
        let mut session = Session::default();
        session.parallelism = def.parallelism.max(1) as usize;
        session.batch_size = PIPELINE_BATCH_SIZE;
        if let Some(ttl) = def.updating_ttl_micros {
            session.updating_ttl = std::time::Duration::from_micros(ttl);
        }
        self.plan(&session, &statement).await
    }

    /// Start a job for `def` with an already planned statement.
    async fn launch(&self, def: &PipelineDef, planned: Planned) -> Result<()> {
        let mut jobs = self.catalog.jobs().await?;
        jobs.retain(|j| j.pipeline_id == def.id);
        let now = now_millis();
        let mut job = JobRecord {
            id: new_id("job"),
            pipeline_id: def.id.clone(),
            run_id: jobs.len() as u64 + 1,
            state: "Running".into(),
            running_desired: true,
            start_time: now,
            finish_time: None,
            failure_message: None,
            tasks: planned.plan.output_partitioning().partition_count() as u32 + 1,
            metrics: Default::default(),
            created_at: now,
        };
        self.catalog.create_job(&job).await?;
        let (setup, checkpoints_off) = self.checkpointing(def, &job, &planned.plan);
        let cancel = self.shutdown.child_token();
        let counters = planned.counters.clone();
        let catalog = self.catalog.clone();
        let jobs_map = self.jobs.clone();
        let pipeline_id = def.id.clone();
        let task_cancel = cancel.clone();
        let task_counters = counters.clone();
        let job_id = job.id.clone();
        let name = def.name.clone();
        let restarting: Arc<Mutex<Option<String>>> = Arc::default();
        let task_restarting = restarting.clone();
        let skip_last_checkpoint: Arc<std::sync::atomic::AtomicBool> = Arc::default();
        let task_skip = skip_last_checkpoint.clone();
        let handle = tokio::spawn(async move {
            let mut delay = RESTART_DELAY;
            let outcome = loop {
                // A panic in an operator fails the job with its message instead of leaving
                // the pipeline looking alive.
                let attempt = attempt_job(&planned, setup.as_ref(), &task_cancel, &task_skip);
                let outcome = std::panic::AssertUnwindSafe(attempt)
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|panic| Err(panic_error(panic)));
                match outcome {
                    // Brokers and endpoints come back: run again (from the last checkpoint).
                    Err(e) if e.sqlstate().starts_with("08") && !task_cancel.is_cancelled() => {
                        tracing::warn!(pipeline = %name, error = %e, retry_in_s = delay.as_secs(), "pipeline cannot reach an external system; restarting");
                        *lock_restarting(&task_restarting) =
                            Some(format!("{e} (restarting in {} s)", delay.as_secs()));
                        tokio::select! {
                            _ = tokio::time::sleep(delay) => {}
                            _ = task_cancel.cancelled() => break Ok(JobEnd::Stopped),
                        }
                        *lock_restarting(&task_restarting) = None;
                        delay = (delay * 2).min(MAX_RESTART_DELAY);
                    }
                    other => break other,
                }
            };
            job.metrics = task_counters.snapshot();
            job.finish_time = Some(now_millis());
            job.running_desired = false;
            match outcome {
                Ok(JobEnd::Finished) => job.state = "Finished".into(),
                Ok(JobEnd::Stopped) => job.state = "Stopped".into(),
                Err(e) => {
                    tracing::warn!(pipeline = %name, error = %e, "pipeline failed");
                    job.state = "Failed".into();
                    job.failure_message = Some(e.to_string());
                }
            }
            if let Err(e) = record_end(&catalog, &job).await {
                tracing::error!(pipeline = %name, error = %e, "could not record job end");
            }
            let mut running = jobs_map.lock();
            if running
                .get(&pipeline_id)
                .is_some_and(|r| r.job_id == job.id)
            {
                running.remove(&pipeline_id);
            }
        });
        self.jobs.lock().insert(
            def.id.clone(),
            RunningJob {
                job_id,
                cancel,
                counters,
                handle,
                checkpoints_off,
                restarting,
                skip_last_checkpoint,
            },
        );
        Ok(())
    }

    /// How a job takes checkpoints (each attempt resumes from the pipeline's latest one), or
    /// why it takes none.
    fn checkpointing(
        &self,
        def: &PipelineDef,
        job: &JobRecord,
        plan: &Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    ) -> (Option<CheckpointSetup>, Option<String>) {
        let off = |reason: String| {
            tracing::info!(pipeline = %def.name, reason = %reason, "pipeline runs without checkpoints");
            (None, Some(reason))
        };
        let Some(data_dir) = self.catalog.data_dir() else {
            return off("the catalog is in memory".into());
        };
        if def.checkpoint_interval_micros == 0 {
            return off("checkpoint_interval is 0".into());
        }
        if let Some(operator) = checkpoint_blocker(plan) {
            return off(format!(
                "its plan has {operator}, whose state checkpoints do not capture yet; a restart runs the query from its start"
            ));
        }
        let setup = CheckpointSetup {
            sink: crate::exec::sink::sink_table(plan).cloned(),
            pipeline: def.name.clone(),
            pipeline_id: def.id.clone(),
            job_id: job.id.clone(),
            interval: Duration::from_micros(def.checkpoint_interval_micros),
            store: CheckpointStore::new(data_dir, &def.id),
        };
        (Some(setup), None)
    }

    /// The kept checkpoints of a pipeline, oldest first, with their sizes; and why its
    /// running job takes none, if so.
    pub fn checkpoints(&self, pipeline_id: &str) -> Result<(Vec<SizedCheckpoint>, Option<String>)> {
        let off = self
            .jobs
            .lock()
            .get(pipeline_id)
            .and_then(|r| r.checkpoints_off.clone());
        let list = match self.catalog.data_dir() {
            Some(dir) => CheckpointStore::new(dir, pipeline_id).list()?,
            None => Vec::new(),
        };
        Ok((list, off))
    }

    fn forget_checkpoints(&self, pipeline_id: &str) -> Result<()> {
        if let Some(dir) = self.catalog.data_dir() {
            CheckpointStore::new(dir, pipeline_id).remove_all()?;
        }
        Ok(())
    }

    /// Start (or restart) a stopped pipeline.
    pub async fn start_pipeline(&self, id_or_name: &str) -> Result<PipelineStatus> {
        let mut def = self.catalog.pipeline(id_or_name).await?;
        if !self.jobs.lock().contains_key(&def.id) {
            // A pipeline that finished (bounded input) runs again from the start; a stopped
            // or failed one resumes from its last checkpoint.
            let finished = self
                .catalog
                .jobs()
                .await?
                .iter()
                .rfind(|j| j.pipeline_id == def.id)
                .is_some_and(|j| j.state == "Finished");
            if finished {
                self.forget_checkpoints(&def.id)?;
            }
            let planned = self.plan_pipeline(&def).await?;
            self.launch(&def, planned).await?;
        }
        def.desired = DesiredState::Running;
        self.catalog.update_pipeline(&def).await?;
        self.pipeline_status(&def.id).await
    }

    /// Stop a pipeline after a last checkpoint; it stays stopped across restarts.
    pub async fn stop_pipeline(&self, id_or_name: &str) -> Result<PipelineStatus> {
        self.stop_pipeline_with(id_or_name, true).await
    }

    /// Stop a pipeline, with or without a last checkpoint (without: it resumes from the
    /// one before, and what it wrote since stays invisible in transactional sinks).
    pub async fn stop_pipeline_with(
        &self,
        id_or_name: &str,
        last_checkpoint: bool,
    ) -> Result<PipelineStatus> {
        let mut def = self.catalog.pipeline(id_or_name).await?;
        def.desired = DesiredState::Stopped;
        self.catalog.update_pipeline(&def).await?;
        if !last_checkpoint && let Some(job) = self.jobs.lock().get(&def.id) {
            job.skip_last_checkpoint
                .store(true, std::sync::atomic::Ordering::Release);
        }
        self.stop_job(&def.id).await;
        self.pipeline_status(&def.id).await
    }

    async fn stop_job(&self, pipeline_id: &str) {
        let running = self.jobs.lock().remove(pipeline_id);
        if let Some(job) = running {
            job.cancel.cancel();
            let abort = job.handle.abort_handle();
            if tokio::time::timeout(STOP_TIMEOUT, job.handle)
                .await
                .is_err()
            {
                tracing::warn!(pipeline = pipeline_id, "job did not stop in time; aborting");
                abort.abort();
            }
        }
    }

    /// Stop and delete a pipeline and its jobs.
    pub async fn drop_pipeline(&self, id_or_name: &str) -> Result<PipelineDef> {
        let def = self.catalog.pipeline(id_or_name).await?;
        self.stop_job(&def.id).await;
        self.catalog.drop_pipeline(&def.id).await?;
        self.forget_checkpoints(&def.id)?;
        tracing::info!(pipeline = %def.name, "dropped pipeline");
        Ok(def)
    }

    /// After start-up: close jobs a previous process left open and start every pipeline
    /// that should be running.
    pub async fn restore_pipelines(&self) -> Result<()> {
        for mut job in self.catalog.jobs().await? {
            if job.state == "Running" {
                job.state = "Stopped".into();
                job.failure_message = Some("the server stopped while this job ran".into());
                job.finish_time.get_or_insert(now_millis());
                self.catalog.update_job(&job).await?;
            }
        }
        for view in self.catalog.views().await? {
            if view.materialized
                && let Err(e) = self.start_materialized_view(&view).await
            {
                tracing::error!(view = %view.name, error = %e, "cannot restart materialized view");
            }
        }
        let jobs = self.catalog.jobs().await?;
        for def in self.catalog.pipelines().await? {
            // A pipeline whose last job finished (bounded input) or failed is not re-run from
            // the start behind the user's back; START PIPELINE runs it again.
            let ended = jobs
                .iter()
                .rfind(|j| j.pipeline_id == def.id)
                .is_some_and(|j| matches!(j.state.as_str(), "Finished" | "Failed"));
            if def.desired == DesiredState::Running && !ended {
                match self.plan_pipeline(&def).await {
                    Ok(planned) => self.launch(&def, planned).await?,
                    Err(e) => {
                        tracing::error!(pipeline = %def.name, error = %e, "cannot restart pipeline")
                    }
                }
            }
        }
        Ok(())
    }

    /// Cancel every job and wait for them to record their end (server shutdown). Desired
    /// states are kept, so pipelines resume on the next start.
    pub async fn stop_all_jobs(&self) {
        self.mviews.stop_all().await;
        let ids: Vec<String> = self.jobs.lock().keys().cloned().collect();
        for id in ids {
            self.stop_job(&id).await;
        }
    }

    /// A pipeline with its state and latest job (with live counters if running).
    pub async fn pipeline_status(&self, id_or_name: &str) -> Result<PipelineStatus> {
        let def = self.catalog.pipeline(id_or_name).await?;
        let jobs = self.catalog.jobs().await?;
        let latest = jobs.into_iter().rfind(|j| j.pipeline_id == def.id);
        Ok(self.status_of(def, latest))
    }

    /// Every pipeline, oldest first.
    pub async fn pipeline_statuses(&self) -> Result<Vec<PipelineStatus>> {
        let jobs = self.catalog.jobs().await?;
        let mut out = Vec::new();
        for def in self.catalog.pipelines().await? {
            let latest = jobs.iter().rfind(|j| j.pipeline_id == def.id).cloned();
            out.push(self.status_of(def, latest));
        }
        Ok(out)
    }

    fn status_of(&self, def: PipelineDef, latest: Option<JobRecord>) -> PipelineStatus {
        let running = self.jobs.lock();
        match (running.get(&def.id), latest) {
            (Some(run), Some(mut job)) if run.job_id == job.id => {
                job.metrics = run.counters.snapshot();
                let rates = run.counters.rates();
                let restarting = lock_restarting(&run.restarting).clone();
                let state = if restarting.is_some() {
                    "Restarting"
                } else {
                    "Running"
                };
                job.failure_message = restarting;
                PipelineStatus {
                    def,
                    state: state.into(),
                    job: Some(job),
                    rates,
                }
            }
            (_, Some(job)) => PipelineStatus {
                def,
                state: job.state.clone(),
                job: Some(job),
                rates: (0.0, 0.0),
            },
            (_, None) => PipelineStatus {
                def,
                state: "Created".into(),
                job: None,
                rates: (0.0, 0.0),
            },
        }
    }

    /// A job with live counters if it is running.
    pub async fn job(&self, id: &str) -> Result<JobRecord> {
        let mut job = self.catalog.job(id).await?;
        if let Some(run) = self.jobs.lock().get(&job.pipeline_id)
            && run.job_id == job.id
        {
            job.metrics = run.counters.snapshot();
        }
        Ok(job)
    }

    /// Every job, with live counters for running ones.
    pub async fn jobs(&self) -> Result<Vec<JobRecord>> {
        let mut jobs = self.catalog.jobs().await?;
        let running = self.jobs.lock();
        for job in &mut jobs {
            if let Some(run) = running.get(&job.pipeline_id)
                && run.job_id == job.id
            {
                job.metrics = run.counters.snapshot();
            }
        }
        Ok(jobs)
    }
}

/// A kept checkpoint and its size in bytes.
pub type SizedCheckpoint = (CheckpointRecord, u64);

enum JobEnd {
    Finished,
    Stopped,
}

/// How long a stopping job may take for its last checkpoint.
const FINAL_CHECKPOINT_TIMEOUT: Duration = Duration::from_secs(8);

/// What a job that takes checkpoints needs to start (or restart) from the latest one.
struct CheckpointSetup {
    /// The table the pipeline writes, asked which epoch it committed last.
    sink: Option<crate::ddl::ResolvedTable>,
    pipeline: String,
    pipeline_id: String,
    job_id: String,
    interval: Duration,
    store: CheckpointStore,
}

impl CheckpointSetup {
    /// A hub for one attempt, resuming from the newest complete checkpoint.
    async fn hub(&self) -> Result<Arc<CheckpointHub>> {
        let mut restored = self.store.latest()?;
        let committed = match &self.sink {
            Some(sink) => {
                let ctx = crate::exec::sink::sink_context(sink, Some(&self.pipeline_id));
                sink.connector
                    .committed_epoch(&sink.profile_config, &sink.def.config, &ctx)
                    .await?
            }
            None => None,
        };
        // Commits follow checkpoints one by one, so only the newest checkpoint can lack
        // its commit (a crash between the two): then resume from the one before and write
        // that output again. A sink further behind lost its record (expired); trust ours.
        if let (Some(latest), Some(committed)) = (&restored, committed)
            && committed + 1 == latest.epoch
        {
            tracing::warn!(
                pipeline = %self.pipeline,
                checkpoint = latest.epoch,
                committed,
                "the sink did not commit the newest checkpoint; resuming from the one before"
            );
            restored = self.store.discard_after(committed)?;
        }
        // A run from the start numbers its checkpoints on from the sink's last commit, so
        // the sink's record of an earlier run never passes for one of this run's.
        let base_epoch = restored
            .as_ref()
            .map_or(committed.unwrap_or(0), |r| r.epoch);
        if let Some(record) = &restored {
            tracing::info!(pipeline = %self.pipeline, epoch = record.epoch, "resuming from checkpoint");
        }
        Ok(Arc::new(CheckpointHub::new(
            &self.pipeline_id,
            &self.job_id,
            self.interval,
            self.store.clone(),
            restored,
            base_epoch,
        )))
    }
}

fn lock_restarting(cell: &Mutex<Option<String>>) -> std::sync::MutexGuard<'_, Option<String>> {
    cell.lock().unwrap_or_else(|p| p.into_inner())
}

fn panic_error(panic: Box<dyn std::any::Any + Send>) -> EngineError {
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "unknown panic".into());
    EngineError::DataFusion(datafusion::error::DataFusionError::Internal(format!(
        "the job panicked: {message}"
    )))
}

/// Run the planned pipeline once, with a fresh checkpoint hub when it takes checkpoints
/// (the plan's task context carries it to sources, operators and the sink).
async fn attempt_job(
    planned: &Planned,
    setup: Option<&CheckpointSetup>,
    cancel: &CancellationToken,
    skip_last_checkpoint: &std::sync::atomic::AtomicBool,
) -> Result<JobEnd> {
    let hub = match setup {
        Some(setup) => Some(setup.hub().await?),
        None => None,
    };
    let task_ctx = match &hub {
        Some(hub) => crate::checkpoint::task_context_with(&planned.task_ctx, hub.clone()),
        None => planned.task_ctx.clone(),
    };
    run_job(
        planned.plan.clone(),
        task_ctx,
        hub,
        cancel,
        skip_last_checkpoint,
    )
    .await
}

/// Drive a planned pipeline to its end or until cancelled; a job that takes checkpoints
/// takes a last one when stopped, so it resumes exactly there.
async fn run_job(
    plan: Arc<dyn datafusion::physical_plan::ExecutionPlan>,
    task_ctx: Arc<TaskContext>,
    hub: Option<Arc<CheckpointHub>>,
    cancel: &CancellationToken,
    skip_last_checkpoint: &std::sync::atomic::AtomicBool,
) -> Result<JobEnd> {
    let mut stream = execute_stream(plan, task_ctx)?;
    loop {
        tokio::select! {
            _ = cancel.cancelled() => {
                let skip = skip_last_checkpoint.load(std::sync::atomic::Ordering::Acquire);
                if let Some(hub) = hub.as_ref().filter(|_| !skip) {
                    hub.stop.cancel();
                    let drain = async {
                        while let Some(next) = stream.next().await {
                            next?;
                        }
                        Ok::<_, EngineError>(())
                    };
                    match tokio::time::timeout(FINAL_CHECKPOINT_TIMEOUT, drain).await {
                        Ok(outcome) => outcome?,
                        Err(_) => tracing::warn!(pipeline = %hub.pipeline_id, "no last checkpoint in time; the job resumes from the one before"),
                    }
                }
                return Ok(JobEnd::Stopped);
            }
            next = stream.next() => match next {
                Some(Ok(_count)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Ok(JobEnd::Finished),
            },
        }
    }
}

async fn record_end(catalog: &Catalog, job: &JobRecord) -> Result<()> {
    catalog.update_job(job).await?;
    Ok(())
}
