//! Exchanges: rows moving between the partitions of a parallel plan.
//!
//! An exchange runs each input partition on its own task (a *driver*), which sends the rows
//! to the output partitions over bounded channels: by a hash of key columns (so a keyed
//! operator above sees every row of a key in one partition), or all into one partition
//! (a merge, above which the plan runs single). Batches are split with DataFusion's hash
//! partitioner, so no row is handled one at a time.
//!
//! Two things travel with the rows, in order:
//! - watermarks: each message carries the watermark of the sources below the exchange as
//!   the driver read it after the batch; an output's watermark is the minimum over its open
//!   input channels, so no row still in a channel can be behind it;
//! - barriers, for checkpoints: see [`crate::checkpoint::cut`].

use std::any::Any;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::runtime::SpawnedTask;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::EmissionType;
use datafusion::physical_plan::metrics::Time;
use datafusion::physical_plan::repartition::BatchPartitioner;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties, RecordBatchStream, SendableRecordBatchStream,
};
use futures::{FutureExt, Stream, StreamExt};
use tokio::sync::mpsc;

use super::watermark::{
    SourceWatermark, WATERMARK_MAX, WATERMARK_MIN, Watermarks, collect_sources_apart,
    register_source,
};
use crate::checkpoint::CheckpointHub;
use crate::checkpoint::cut::{Alignment, Cuts, Step, in_segment};

/// Messages buffered per channel (one channel per input and output partition pair).
const CHANNEL_CAPACITY: usize = 8;
/// How often a driver whose input is quiet passes on a moved watermark (idle sources).
const WATERMARK_TICK: Duration = Duration::from_millis(100);

/// What flows through a channel.
enum Message {
    /// Rows, with the watermark read after them.
    Rows(RecordBatch, i64),
    Watermark(i64),
    Barrier(u64),
}

type Sent = std::result::Result<Message, Arc<DataFusionError>>;

/// The plan node.
pub struct ExchangeExec {
    input: Arc<dyn ExecutionPlan>,
    /// Hash keys over the input's columns; `None`: merge into one partition.
    keys: Option<Vec<Arc<dyn PhysicalExpr>>>,
    properties: Arc<PlanProperties>,
    /// The outputs of the current execution not taken yet.
    running: Mutex<Vec<Option<ExchangeOutput>>>,
}

impl fmt::Debug for ExchangeExec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExchangeExec")
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl ExchangeExec {
    /// Rows of `input` to `partitions` partitions by a hash of `keys`.
    pub fn hash(
        input: Arc<dyn ExecutionPlan>,
        keys: Vec<Arc<dyn PhysicalExpr>>,
        partitions: usize,
    ) -> Self {
        let partitioning = Partitioning::Hash(keys.clone(), partitions);
        Self::new(input, Some(keys), partitioning)
    }

    /// Every row of `input` into one partition.
    pub fn merge(input: Arc<dyn ExecutionPlan>) -> Self {
        Self::new(input, None, Partitioning::UnknownPartitioning(1))
    }

    fn new(
        input: Arc<dyn ExecutionPlan>,
        keys: Option<Vec<Arc<dyn PhysicalExpr>>>,
        partitioning: Partitioning,
    ) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(input.schema()),
            partitioning,
            EmissionType::Incremental,
            input.properties().boundedness,
        ));
        ExchangeExec {
            input,
            keys,
            properties,
            running: Mutex::default(),
        }
    }

    pub fn input(&self) -> &Arc<dyn ExecutionPlan> {
        &self.input
    }

    /// A merge into one partition.
    pub fn is_merge(&self) -> bool {
        self.keys.is_none()
    }

    fn partitions(&self) -> usize {
        self.properties.output_partitioning().partition_count()
    }

    /// Start every input partition on its driver; the outputs, one per partition.
    fn start(&self, context: &Arc<TaskContext>) -> Result<Vec<Option<ExchangeOutput>>> {
        let hub = context.session_config().get_extension::<CheckpointHub>();
        let inputs = self.input.output_partitioning().partition_count();
        let outputs = self.partitions();
        let mut senders: Vec<Vec<mpsc::Sender<Sent>>> = (0..inputs).map(|_| Vec::new()).collect();
        let mut receivers: Vec<Vec<mpsc::Receiver<Sent>>> =
            (0..outputs).map(|_| Vec::new()).collect();
        for to_output in &mut senders {
            for from_inputs in &mut receivers {
                let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
                to_output.push(tx);
                from_inputs.push(rx);
            }
        }
        // Each input partition is a segment of its own (see crate::checkpoint::cut).
        let (started, watermarks) = collect_sources_apart(|| {
            (0..inputs)
                .map(|i| {
                    let segment = hub.as_ref().map(|h| h.new_segment());
                    let execute = || self.input.execute(i, context.clone());
                    let stream = match segment {
                        Some(segment) => in_segment(segment, execute),
                        None => execute(),
                    };
                    stream.map(|s| (s, segment))
                })
                .collect::<Result<Vec<_>>>()
        });
        let mut tasks = Vec::with_capacity(inputs);
        for ((input, segment), outputs) in started?.into_iter().zip(senders) {
            let driver = Driver {
                input,
                partitioner: self.keys.as_ref().map(|keys| {
                    BatchPartitioner::new_hash_partitioner(keys.clone(), outputs.len(), Time::new())
                }),
                outputs,
                watermarks: watermarks.clone(),
                sent_watermark: WATERMARK_MIN,
                cuts: hub.clone().zip(segment).map(|(hub, s)| Cuts::new(hub, s)),
            };
            tasks.push(SpawnedTask::spawn(driver.run()));
        }
        let tasks = Arc::new(tasks);
        Ok(receivers
            .into_iter()
            .map(|channels| {
                let watermark =
                    (!watermarks.is_empty()).then(|| SourceWatermark::derived("exchange"));
                Some(ExchangeOutput::new(
                    self.schema(),
                    channels,
                    watermark,
                    tasks.clone(),
                ))
            })
            .collect())
    }
}

impl DisplayAs for ExchangeExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inputs = self.input.output_partitioning().partition_count();
        match &self.keys {
            Some(keys) => {
                let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
                write!(
                    f,
                    "ExchangeExec: hash [{}], {inputs} → {} partitions",
                    keys.join(", "),
                    self.partitions()
                )
            }
            None => write!(f, "ExchangeExec: merge, {inputs} → 1 partition"),
        }
    }
}

impl ExecutionPlan for ExchangeExec {
    fn name(&self) -> &str {
        "ExchangeExec"
    }

    fn as_any(&self) -> &dyn Any {
        self
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.swap_remove(0);
        let partitioning = self.properties.output_partitioning().clone();
        Ok(Arc::new(ExchangeExec::new(
            input,
            self.keys.clone(),
            partitioning,
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let output = {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            // The first output of an execution starts it.
            if running.get(partition).is_none_or(|o| o.is_none()) {
                *running = self.start(&context)?;
            }
            running.get_mut(partition).and_then(Option::take)
        };
        let Some(output) = output else {
            return datafusion::common::internal_err!(
                "exchange has no partition {partition} (it has {})",
                self.partitions()
            );
        };
        if let Some(watermark) = &output.watermark {
            register_source(watermark);
        }
        if let Some(hub) = context.session_config().get_extension::<CheckpointHub>() {
            hub.register_leaf(output.alignment.clone());
        }
        Ok(Box::pin(output))
    }
}

/// Pulls one input partition and sends its rows on.
struct Driver {
    input: SendableRecordBatchStream,
    outputs: Vec<mpsc::Sender<Sent>>,
    /// `None`: one output takes everything.
    partitioner: Option<BatchPartitioner>,
    /// The sources below the exchange.
    watermarks: Watermarks,
    sent_watermark: i64,
    /// With checkpoints: the barriers reaching this driver's segment.
    cuts: Option<Cuts>,
}

enum Event {
    Step(Step<Result<RecordBatch>>),
    Tick,
}

impl Driver {
    async fn run(mut self) {
        let mut outputs = self.outputs.clone();
        let run = std::panic::AssertUnwindSafe(self.drive()).catch_unwind();
        let failure = match run.await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => e,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("a panic");
                DataFusionError::Execution(format!("exchange input failed: {what}"))
            }
        };
        let failure = Arc::new(failure);
        for output in outputs.drain(..) {
            let _ = output.send(Err(failure.clone())).await;
        }
    }

    async fn drive(&mut self) -> Result<()> {
        let mut tick = tokio::time::interval(WATERMARK_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let has_watermarks = !self.watermarks.is_empty();
        loop {
            let event = {
                let input = &mut self.input;
                let cuts = self.cuts.as_ref();
                tokio::select! {
                    biased;
                    step = futures::future::poll_fn(|cx| match cuts {
                        Some(cuts) => cuts.poll_step(input, cx),
                        None => input.poll_next_unpin(cx).map(Step::Next),
                    }) => Event::Step(step),
                    _ = tick.tick(), if has_watermarks => Event::Tick,
                }
            };
            match event {
                Event::Step(Step::Next(Some(batch))) => self.send_rows(batch?).await?,
                Event::Step(Step::Next(None)) => {
                    if let Some(cuts) = &self.cuts {
                        cuts.hub()
                            .finish_segment(cuts.segment())
                            .map_err(|e| DataFusionError::External(Box::new(e)))?;
                    }
                    return Ok(());
                }
                Event::Step(Step::Barrier(epoch)) => {
                    if let Some(cuts) = &mut self.cuts {
                        cuts.hub()
                            .capture(cuts.segment(), epoch)
                            .map_err(|e| DataFusionError::External(Box::new(e)))?;
                        broadcast(&self.outputs, || Message::Barrier(epoch)).await;
                        cuts.passed(epoch);
                    }
                }
                Event::Tick => {
                    let watermark = self.watermarks.current();
                    if watermark > self.sent_watermark {
                        self.sent_watermark = watermark;
                        broadcast(&self.outputs, || Message::Watermark(watermark)).await;
                    }
                }
            }
        }
    }

    async fn send_rows(&mut self, batch: RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let watermark = if self.watermarks.is_empty() {
            WATERMARK_MIN
        } else {
            self.watermarks.current()
        };
        let Some(partitioner) = &mut self.partitioner else {
            send(&self.outputs[0], Message::Rows(batch, watermark)).await;
            return Ok(());
        };
        let mut parts: Vec<Option<RecordBatch>> = vec![None; self.outputs.len()];
        partitioner.partition(batch, |output, part| {
            if part.num_rows() > 0 {
                parts[output] = Some(part);
            }
            Ok(())
        })?;
        let moved = watermark > self.sent_watermark;
        self.sent_watermark = self.sent_watermark.max(watermark);
        for (output, part) in self.outputs.iter().zip(parts) {
            match part {
                Some(part) => send(output, Message::Rows(part, watermark)).await,
                // Outputs without rows learn of the watermark too.
                None if moved => send(output, Message::Watermark(watermark)).await,
                None => {}
            }
        }
        Ok(())
    }
}

/// Send to an output; one whose reader is gone (its part of the query ended) is skipped.
async fn send(output: &mpsc::Sender<Sent>, message: Message) {
    let _ = output.send(Ok(message)).await;
}

async fn broadcast(outputs: &[mpsc::Sender<Sent>], message: impl Fn() -> Message) {
    for output in outputs {
        send(output, message()).await;
    }
}

/// One output partition: reads every input's channel.
struct ExchangeOutput {
    schema: SchemaRef,
    channels: Vec<mpsc::Receiver<Sent>>,
    /// Per channel: the last barrier it sent, whether it ended, its watermark.
    barriers: Vec<u64>,
    ended: Vec<bool>,
    watermarks: Vec<i64>,
    alignment: Arc<Alignment>,
    watermark: Option<Arc<SourceWatermark>>,
    /// The channel to read first next time (fairness).
    next: usize,
    /// The drivers: they stop when every output is dropped.
    _drivers: Arc<Vec<SpawnedTask<()>>>,
}

impl ExchangeOutput {
    fn new(
        schema: SchemaRef,
        channels: Vec<mpsc::Receiver<Sent>>,
        watermark: Option<Arc<SourceWatermark>>,
        drivers: Arc<Vec<SpawnedTask<()>>>,
    ) -> Self {
        let n = channels.len();
        ExchangeOutput {
            schema,
            channels,
            barriers: vec![0; n],
            ended: vec![false; n],
            watermarks: vec![WATERMARK_MIN; n],
            alignment: Arc::new(Alignment::default()),
            watermark,
            next: 0,
            _drivers: drivers,
        }
    }

    fn open(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.channels.len()).filter(|i| !self.ended[*i])
    }

    /// Recompute the alignment and watermark after a channel's barrier, watermark or end.
    fn update(&mut self) {
        let aligned = self.open().map(|i| self.barriers[i]).min();
        self.alignment.set_aligned(aligned.unwrap_or(u64::MAX));
        if let Some(watermark) = &self.watermark {
            match self.open().map(|i| self.watermarks[i]).min() {
                Some(low) => watermark.advance_to(low),
                None => watermark.advance_to(WATERMARK_MAX),
            }
        }
    }
}

impl Stream for ExchangeOutput {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let n = this.channels.len();
        loop {
            let released = this.alignment.released();
            let mut progressed = false;
            for k in 0..n {
                let i = (this.next + k) % n;
                // Ended, or holding rows that come after a barrier not passed yet.
                if this.ended[i] || this.barriers[i] > released {
                    continue;
                }
                match this.channels[i].poll_recv(cx) {
                    Poll::Pending => {}
                    Poll::Ready(None) => {
                        this.ended[i] = true;
                        this.update();
                        progressed = true;
                    }
                    Poll::Ready(Some(Err(e))) => {
                        return Poll::Ready(Some(Err(DataFusionError::Shared(e))));
                    }
                    Poll::Ready(Some(Ok(Message::Rows(batch, watermark)))) => {
                        if watermark > this.watermarks[i] {
                            this.watermarks[i] = watermark;
                            this.update();
                        }
                        this.next = (i + 1) % n;
                        return Poll::Ready(Some(Ok(batch)));
                    }
                    Poll::Ready(Some(Ok(Message::Watermark(watermark)))) => {
                        if watermark > this.watermarks[i] {
                            this.watermarks[i] = watermark;
                            this.update();
                        }
                        progressed = true;
                    }
                    Poll::Ready(Some(Ok(Message::Barrier(epoch)))) => {
                        this.barriers[i] = epoch;
                        this.update();
                        progressed = true;
                    }
                }
            }
            if this.ended.iter().all(|e| *e) {
                return Poll::Ready(None);
            }
            if !progressed {
                return Poll::Pending;
            }
        }
    }
}

impl RecordBatchStream for ExchangeOutput {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};

    fn rows(values: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values.to_vec()))]).unwrap()
    }

    fn values(batch: &RecordBatch) -> Vec<i64> {
        batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .values()
            .to_vec()
    }

    /// The next batch if one is ready now (`None`: pending).
    fn ready(output: &mut ExchangeOutput) -> Option<Vec<i64>> {
        output
            .next()
            .now_or_never()
            .map(|item| values(&item.unwrap().unwrap()))
    }

    #[tokio::test]
    async fn rows_after_a_barrier_wait_until_every_channel_sent_it_and_it_was_passed() {
        let (tx0, rx0) = mpsc::channel(8);
        let (tx1, rx1) = mpsc::channel(8);
        let watermark = SourceWatermark::derived("test");
        let mut output = ExchangeOutput::new(
            rows(&[]).schema(),
            vec![rx0, rx1],
            Some(watermark.clone()),
            Arc::new(Vec::new()),
        );
        let alignment = output.alignment.clone();
        tx0.send(Ok(Message::Rows(rows(&[1]), 100))).await.unwrap();
        tx0.send(Ok(Message::Barrier(1))).await.unwrap();
        tx0.send(Ok(Message::Rows(rows(&[2]), 200))).await.unwrap();
        tx1.send(Ok(Message::Rows(rows(&[3]), 50))).await.unwrap();

        let mut before = vec![ready(&mut output).unwrap(), ready(&mut output).unwrap()];
        before.sort();
        assert_eq!(before, vec![vec![1], vec![3]]);
        assert_eq!(watermark.value(), 50, "the slower channel's watermark");
        assert_eq!(
            ready(&mut output),
            None,
            "row 2 is after channel 0's barrier"
        );
        assert_eq!(alignment.aligned(), 0, "channel 1 has not sent the barrier");

        tx1.send(Ok(Message::Barrier(1))).await.unwrap();
        assert_eq!(ready(&mut output), None);
        assert_eq!(alignment.aligned(), 1, "aligned on epoch 1");

        alignment.release(1);
        assert_eq!(ready(&mut output), Some(vec![2]));
        drop(tx1);
        tx0.send(Ok(Message::Watermark(300))).await.unwrap();
        assert_eq!(ready(&mut output), None);
        assert_eq!(
            watermark.value(),
            300,
            "an ended channel holds nothing back"
        );
        drop(tx0);
        assert!(output.next().await.is_none());
        assert_eq!(alignment.aligned(), u64::MAX);
    }
}
