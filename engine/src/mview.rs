//! Materialized views: a query kept running, its current result held in memory.
//!
//! `CREATE MATERIALIZED VIEW mv AS SELECT ...` starts the query as a background job and
//! applies what it emits to the view's contents: appended rows for append-only queries,
//! `+I` / `-U` / `+U` / `-D` changes for updating ones. `SELECT ... FROM mv` reads the
//! current contents as a finite table (filters and aggregates run as a batch query over
//! it, so dashboards can chart live results), and `SUBSCRIBE mv` streams the contents and
//! then every change.
//!
//! A view takes checkpoints like a pipeline (when the server has a data directory and the
//! plan's state can be captured): its query runs in the one task that applies its output,
//! so between two polls the contents, the operators' state and the sources' positions form a
//! consistent cut. After a restart the view resumes from its last checkpoint with those
//! contents; without one, its query runs again from its sources' start.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use arrow::array::{ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::SchemaRef;
use arrow::row::{RowConverter, SortField};
use datafusion::error::DataFusionError;
use datafusion::physical_plan::execute_stream;
use datafusion::physical_plan::{RecordBatchStream, SendableRecordBatchStream};
use futures::{Stream, StreamExt};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::checkpoint::arrow_state::{decode, encode};
use crate::checkpoint::cut::{Cuts, Step, TOP_SEGMENT, next_step};
use crate::checkpoint::{CheckpointHub, CheckpointStore, task_context_with};
use crate::error::{EngineError, Result};
use crate::exec::planner::Planned;
use crate::stream::updating::{is_changelog, with_op_column};

/// Batches of changes buffered per subscriber before it is told it fell behind.
const SUBSCRIBER_BUFFER: usize = 1024;

/// How long a stopping view may take for its last checkpoint.
const LAST_CHECKPOINT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The running materialized views of the engine.
#[derive(Debug, Default)]
pub struct MaterializedViews {
    views: Mutex<HashMap<String, Arc<MaterializedView>>>,
}

/// Where and how often a view takes checkpoints.
#[derive(Debug, Clone)]
pub struct ViewCheckpoints {
    /// The view's catalog id (its checkpoints live under it).
    pub id: String,
    pub interval: std::time::Duration,
    pub store: CheckpointStore,
}

/// One view: its contents and the job maintaining them.
#[derive(Debug)]
pub struct MaterializedView {
    name: String,
    /// The view's columns (without `_op`).
    schema: SchemaRef,
    contents: Mutex<Contents>,
    changes: broadcast::Sender<RecordBatch>,
    cancel: CancellationToken,
    /// Stop after a last checkpoint (server shutdown), so the view resumes exactly there.
    stop: CancellationToken,
    /// The task maintaining the view.
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    failure: Mutex<Option<String>>,
}

/// Rows as a multiset keyed by their row-format bytes.
#[derive(Debug)]
struct Contents {
    converter: RowConverter,
    rows: HashMap<Box<[u8]>, u64>,
}

impl MaterializedViews {
    /// Start maintaining `name` from a planned query.
    pub fn start(
        &self,
        name: &str,
        planned: Planned,
        checkpoints: Option<ViewCheckpoints>,
    ) -> Result<()> {
        let output = planned.schema();
        let schema = if is_changelog(&output) {
            let fields: Vec<_> = output.fields()[..output.fields().len() - 1].to_vec();
            Arc::new(arrow::datatypes::Schema::new(fields))
        } else {
            output
        };
        let converter = RowConverter::new(
            schema
                .fields()
                .iter()
                .map(|f| SortField::new(f.data_type().clone()))
                .collect(),
        )?;
        let (changes, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        let view = Arc::new(MaterializedView {
            name: name.to_string(),
            schema,
            contents: Mutex::new(Contents {
                converter,
                rows: HashMap::new(),
            }),
            changes,
            cancel: CancellationToken::new(),
            stop: CancellationToken::new(),
            task: Mutex::new(None),
            failure: Mutex::new(None),
        });
        let mut task_ctx = planned.task_ctx;
        let hub = match checkpoints {
            Some(checkpoints) => {
                let restored = checkpoints.store.latest()?;
                if let Some(record) = &restored {
                    tracing::info!(view = %name, epoch = record.epoch, "materialized view resumes from its checkpoint");
                    view.restore(&record.sink)?;
                }
                let base_epoch = restored.as_ref().map_or(0, |r| r.epoch);
                let hub = Arc::new(CheckpointHub::new(
                    &checkpoints.id,
                    &checkpoints.id,
                    checkpoints.interval,
                    checkpoints.store,
                    restored,
                    base_epoch,
                ));
                task_ctx = task_context_with(&task_ctx, hub.clone());
                Some(hub)
            }
            None => None,
        };
        // Starting the plan restores its operators' state: a checkpoint they cannot read must
        // fail this view, not the server starting it.
        let started = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            execute_stream(planned.plan, task_ctx)
        }));
        let stream = match started {
            Ok(stream) => stream?,
            Err(_) => {
                return Err(EngineError::Checkpoint(format!(
                    "materialized view '{name}' could not start from its checkpoint (its state does not fit the query's operators)"
                )));
            }
        };
        let task_view = view.clone();
        *lock(&view.task) = Some(tokio::spawn(async move {
            task_view.maintain(stream, hub).await
        }));
        if let Some(old) = lock(&self.views).insert(name.to_string(), view) {
            old.cancel.cancel();
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<Arc<MaterializedView>> {
        lock(&self.views).get(name).cloned()
    }

    /// Stop maintaining a view (it was dropped).
    pub fn stop(&self, name: &str) {
        if let Some(view) = lock(&self.views).remove(name) {
            view.cancel.cancel();
        }
    }

    /// Stop every view (server shutdown), each after a last checkpoint if it takes them.
    pub async fn stop_all(&self) {
        let views: Vec<Arc<MaterializedView>> =
            lock(&self.views).drain().map(|(_, view)| view).collect();
        for view in &views {
            view.stop.cancel();
        }
        for view in views {
            let task = lock(&view.task).take();
            if let Some(task) = task
                && tokio::time::timeout(LAST_CHECKPOINT_TIMEOUT, task)
                    .await
                    .is_err()
            {
                tracing::warn!(view = %view.name, "no last checkpoint in time; the view resumes from the one before");
                view.cancel.cancel();
            }
        }
    }
}

impl MaterializedView {
    async fn maintain(
        self: Arc<Self>,
        mut stream: SendableRecordBatchStream,
        hub: Option<Arc<CheckpointHub>>,
    ) {
        let mut timer = hub.as_ref().map(|h| {
            let mut timer =
                tokio::time::interval_at(tokio::time::Instant::now() + h.interval, h.interval);
            timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            timer
        });
        let mut cuts = hub.clone().map(|h| Cuts::new(h, TOP_SEGMENT));
        let mut stopping = false;
        loop {
            let step = tokio::select! {
                _ = self.cancel.cancelled() => return,
                _ = self.stop.cancelled(), if !stopping => {
                    let Some(hub) = &hub else { return };
                    stopping = true;
                    hub.request_next();
                    continue;
                }
                _ = async {
                    match &mut timer {
                        Some(timer) => timer.tick().await,
                        None => futures::future::pending().await,
                    }
                } => {
                    if let Some(hub) = &hub {
                        hub.request_next();
                    }
                    continue;
                }
                step = next_step(cuts.as_ref(), &mut stream) => step,
            };
            let result = match step {
                // At the cut (see crate::checkpoint::cut).
                Step::Barrier(epoch) => {
                    if let (Some(hub), Some(cuts)) = (&hub, &mut cuts) {
                        if let Err(e) = self.checkpoint(hub, epoch) {
                            tracing::warn!(view = %self.name, error = %e, "materialized view checkpoint failed");
                        }
                        cuts.passed(epoch);
                    }
                    if stopping {
                        return;
                    }
                    continue;
                }
                Step::Next(Some(Ok(batch))) => self.apply(&batch),
                Step::Next(Some(Err(e))) => Err(e.into()),
                Step::Next(None) => return,
            };
            if let Err(e) = result {
                tracing::warn!(view = %self.name, error = %e, "materialized view failed");
                *lock(&self.failure) = Some(e.to_string());
                return;
            }
        }
    }

    /// Write a checkpoint: the contents, with the query's state and positions.
    fn checkpoint(&self, hub: &CheckpointHub, epoch: u64) -> Result<()> {
        let started = catalog::now_millis();
        let contents = encode(&self.snapshot()?)?;
        hub.write(epoch, started, serde_json::json!({ "contents": contents }))?;
        hub.committed(epoch);
        Ok(())
    }

    /// The contents a checkpoint holds.
    fn restore(&self, saved: &serde_json::Value) -> Result<()> {
        let Some(contents) = saved.get("contents").and_then(|c| c.as_str()) else {
            return Err(EngineError::InvalidParameter(format!(
                "the checkpoint of materialized view '{}' holds no contents",
                self.name
            )));
        };
        self.apply(&decode(contents)?)
    }

    /// Apply a batch of the query's output and tell subscribers.
    fn apply(&self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let changes = if is_changelog(&batch.schema()) {
            batch.clone()
        } else {
            let ops: ArrayRef = Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                "+I",
                batch.num_rows(),
            )));
            let mut columns = batch.columns().to_vec();
            columns.push(ops);
            RecordBatch::try_new(with_op_column(&batch.schema()), columns)?
        };
        let width = changes.num_columns() - 1;
        let ops = changes.column(width).as_string::<i32>().clone();
        {
            let mut contents = lock(&self.contents);
            let rows = contents
                .converter
                .convert_columns(&changes.columns()[..width])?;
            for (i, row) in rows.iter().enumerate() {
                let key = row.as_ref();
                match ops.value(i) {
                    "-U" | "-D" => {
                        if let Some(count) = contents.rows.get_mut(key) {
                            *count -= 1;
                            if *count == 0 {
                                contents.rows.remove(key);
                            }
                        }
                    }
                    _ => *contents.rows.entry(key.into()).or_insert(0) += 1,
                }
            }
        }
        // No subscribers is fine: the send only fails then.
        let _ = self.changes.send(changes);
        Ok(())
    }

    /// The view's columns.
    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// The current contents, or the error that stopped the view.
    pub fn snapshot(&self) -> Result<RecordBatch> {
        if let Some(failure) = lock(&self.failure).clone() {
            return Err(EngineError::InvalidParameter(format!(
                "materialized view '{}' stopped: {failure}",
                self.name
            )));
        }
        let contents = lock(&self.contents);
        let parser = contents.converter.parser();
        let rows = contents
            .rows
            .iter()
            .flat_map(|(key, count)| std::iter::repeat_n(key, *count as usize))
            .map(|key| parser.parse(key));
        let columns = contents.converter.convert_rows(rows)?;
        let batch = if columns.is_empty() {
            RecordBatch::new_empty(self.schema.clone())
        } else {
            RecordBatch::try_new(self.schema.clone(), columns)?
        };
        Ok(batch)
    }

    /// The contents as `+I` rows, then every change, with an `_op` column.
    pub fn subscribe(&self) -> Result<SendableRecordBatchStream> {
        // Subscribe before taking the snapshot, so no change falls between the two (a change
        // may then show both in the snapshot and after it; consumers apply them in order).
        let receiver = self.changes.subscribe();
        let snapshot = self.snapshot()?;
        let ops: ArrayRef = Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            "+I",
            snapshot.num_rows(),
        )));
        let mut columns = snapshot.columns().to_vec();
        columns.push(ops);
        let schema = with_op_column(&self.schema);
        let first = RecordBatch::try_new(schema.clone(), columns)?;
        Ok(Box::pin(Subscription {
            schema,
            first: Some(first),
            changes: Box::pin(tokio_stream_from(receiver, self.name.clone())),
        }))
    }
}

type ChangeStream = Pin<Box<dyn Stream<Item = datafusion::error::Result<RecordBatch>> + Send>>;

/// A broadcast receiver as a stream; a subscriber that falls behind gets an error.
fn tokio_stream_from(
    receiver: broadcast::Receiver<RecordBatch>,
    view: String,
) -> impl Stream<Item = datafusion::error::Result<RecordBatch>> + Send {
    futures::stream::unfold(Some(receiver), move |receiver| {
        let view = view.clone();
        async move {
            let mut receiver = receiver?;
            match receiver.recv().await {
                Ok(batch) => Some((Ok(batch), Some(receiver))),
                Err(broadcast::error::RecvError::Closed) => None,
                Err(broadcast::error::RecvError::Lagged(n)) => Some((
                    Err(DataFusionError::Execution(format!(
                        "subscriber to materialized view '{view}' fell {n} batches of changes behind; subscribe again"
                    ))),
                    None,
                )),
            }
        }
    })
}

struct Subscription {
    schema: SchemaRef,
    first: Option<RecordBatch>,
    changes: ChangeStream,
}

impl Stream for Subscription {
    type Item = datafusion::error::Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(first) = self.first.take()
            && first.num_rows() > 0
        {
            return Poll::Ready(Some(Ok(first)));
        }
        self.changes.poll_next_unpin(cx)
    }
}

impl RecordBatchStream for Subscription {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// A lock that survives a panicked holder (the data is still consistent per batch).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
