//! Barriers: how a plan split into parallel parts finds a consistent cut.
//!
//! A plan with exchanges (see `crate::stream::exchange`) runs as *segments*: the operators
//! between a driver (an exchange's input task, or the sink's write loop at the top) and the
//! exchange outputs or sources it reads. One task polls a segment, so between two of its
//! polls the segment is at rest. A checkpoint runs as a barrier through the segments:
//!
//! 1. the top asks for epoch `e` ([`super::CheckpointHub::request`]);
//! 2. a segment that reads sources only passes the barrier between two polls: it captures
//!    its sources' positions and operators' state for `e` and sends `Barrier(e)` down every
//!    output channel, before any later row;
//! 3. an exchange output that reads `Barrier(e)` from one input channel stops reading that
//!    channel (its later rows belong after the cut) until every open channel has sent it:
//!    the output is then *aligned* on `e`, having delivered every row before the barrier;
//! 4. a segment whose exchange outputs are all aligned passes the barrier the same way as
//!    in 2, then lets its outputs read on;
//! 5. the top, aligned, captures its own part, has the sink prepare and writes the
//!    checkpoint with every segment's capture.
//!
//! Channels keep their order, so every row a source emitted before its capture is either
//! past the top's cut or in some operator's captured state.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use futures::{Stream, StreamExt};

use super::CheckpointHub;

/// An exchange output's barrier state, shared with the driver of the segment reading it.
#[derive(Debug, Default)]
pub struct Alignment {
    /// The epoch every open input channel has sent its barrier for (`u64::MAX` once all
    /// have ended).
    aligned: AtomicU64,
    /// The epoch the reading segment has passed: channels whose barrier is at or below it
    /// are read again.
    released: AtomicU64,
}

impl Alignment {
    pub fn aligned(&self) -> u64 {
        self.aligned.load(Ordering::Acquire)
    }

    pub fn set_aligned(&self, epoch: u64) {
        self.aligned.store(epoch, Ordering::Release);
    }

    pub fn released(&self) -> u64 {
        self.released.load(Ordering::Acquire)
    }

    pub(crate) fn release(&self, epoch: u64) {
        self.released.fetch_max(epoch, Ordering::AcqRel);
    }
}

thread_local! {
    /// The segments whose plans are being started, innermost last.
    static SEGMENTS: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// The top segment: what the sink's (or a materialized view's) loop polls.
pub const TOP_SEGMENT: usize = 0;

/// Start a segment's plan: sources, operators and exchange outputs it starts register as
/// parts of `segment`. Starting a plan is synchronous, so they are exactly its own.
pub fn in_segment<T>(segment: usize, start: impl FnOnce() -> T) -> T {
    SEGMENTS.with(|s| s.borrow_mut().push(segment));
    let out = start();
    SEGMENTS.with(|s| s.borrow_mut().pop());
    out
}

/// The segment whose plan is being started.
pub fn current_segment() -> usize {
    SEGMENTS.with(|s| s.borrow().last().copied().unwrap_or(TOP_SEGMENT))
}

/// What a driver's poll of its segment gave.
pub enum Step<T> {
    /// The segment's stream yielded (or ended).
    Next(Option<T>),
    /// The segment is at the barrier of this epoch: capture it, pass the barrier on, then
    /// call [`Cuts::passed`].
    Barrier(u64),
}

/// The next step of a top segment's `stream`: with `cuts`, its barriers too.
pub async fn next_step<S: Stream + Unpin>(cuts: Option<&Cuts>, stream: &mut S) -> Step<S::Item> {
    match cuts {
        Some(cuts) => cuts.step(stream).await,
        None => Step::Next(stream.next().await),
    }
}

/// A driver's view of the barriers reaching its segment.
pub struct Cuts {
    hub: Arc<CheckpointHub>,
    segment: usize,
    /// The exchange outputs the segment reads; none: it reads sources only.
    leaves: Vec<Arc<Alignment>>,
    /// The last epoch passed.
    passed: u64,
}

impl Cuts {
    /// The barriers of `segment`, whose plan has been started.
    pub fn new(hub: Arc<CheckpointHub>, segment: usize) -> Self {
        let leaves = hub.leaves(segment);
        let passed = hub.last_epoch();
        Cuts {
            hub,
            segment,
            leaves,
            passed,
        }
    }

    pub fn hub(&self) -> &Arc<CheckpointHub> {
        &self.hub
    }

    pub fn segment(&self) -> usize {
        self.segment
    }

    /// The barrier the segment stands at, if it stands at one it has not passed.
    fn at_barrier(&self, cx: &mut Context<'_>) -> Option<u64> {
        let epoch = if self.leaves.is_empty() {
            self.hub.requested(cx)
        } else {
            let aligned = self.leaves.iter().map(|l| l.aligned()).min()?;
            if aligned == u64::MAX {
                // Every input ended: the segment finishes instead.
                return None;
            }
            aligned
        };
        (epoch > self.passed).then_some(epoch)
    }

    /// Poll the segment: its next item, or the barrier it reached. Between two polls the
    /// segment is at rest, so a barrier is reported before polling (a busy segment) and
    /// after its stream had nothing (its outputs aligned during that poll).
    pub fn poll_step<S: Stream + Unpin>(
        &self,
        stream: &mut S,
        cx: &mut Context<'_>,
    ) -> Poll<Step<S::Item>> {
        if let Some(epoch) = self.at_barrier(cx) {
            return Poll::Ready(Step::Barrier(epoch));
        }
        match stream.poll_next_unpin(cx) {
            Poll::Ready(item) => Poll::Ready(Step::Next(item)),
            Poll::Pending => match self.at_barrier(cx) {
                Some(epoch) => Poll::Ready(Step::Barrier(epoch)),
                None => Poll::Pending,
            },
        }
    }

    /// The next step of the segment.
    pub async fn step<S: Stream + Unpin>(&self, stream: &mut S) -> Step<S::Item> {
        futures::future::poll_fn(|cx| self.poll_step(stream, cx)).await
    }

    /// The segment passed the barrier of `epoch`: its exchange outputs read on.
    pub fn passed(&mut self, epoch: u64) {
        self.passed = epoch;
        for leaf in &self.leaves {
            leaf.release(epoch);
        }
    }
}
