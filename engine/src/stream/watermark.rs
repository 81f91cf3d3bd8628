//! Source watermarks.
//!
//! A source table with an event time column tracks, per partition, the highest event time
//! it has emitted minus the table's watermark delay. The table's watermark is the minimum
//! over its partitions, leaving out partitions idle for longer than the idle timeout (so a
//! quiet partition does not stall every window) and those that have finished (a bounded
//! source at its end moves the watermark to the end of time, so windows over files give
//! their complete result).
//!
//! Sources and operators of one query are polled by the same task, a source updating its
//! watermark as it hands a batch downstream: an operator reading the watermark after a
//! batch sees exactly the rows that were emitted before it.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::compute::max;
use arrow::datatypes::{
    DataType, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};

/// No watermark yet.
pub const WATERMARK_MIN: i64 = i64::MIN;
/// The end of time: every window is complete.
pub const WATERMARK_MAX: i64 = i64::MAX;

/// How long a partition may be silent before it stops holding the watermark back.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How a source table derives its watermark.
#[derive(Debug, Clone)]
pub struct WatermarkSpec {
    pub table: String,
    /// Index of the event time column in the table's schema.
    pub column: usize,
    pub delay: Duration,
    pub idle_timeout: Option<Duration>,
}

/// The watermark of one running source partition.
#[derive(Debug)]
pub struct SourceWatermark {
    table: String,
    delay_ns: i64,
    idle_ns: Option<i64>,
    started: Instant,
    watermark: AtomicI64,
    /// Nanoseconds since `started` when the partition last emitted rows.
    last_active: AtomicI64,
    finished: AtomicBool,
    /// Per split (Kafka partition) of sources that report them: the highest event time
    /// seen and when the split last sent rows (ns since `started`).
    splits: std::sync::Mutex<std::collections::BTreeMap<u64, (i64, i64)>>,
    /// Whether `splits` is in use (reads skip its lock otherwise).
    has_splits: AtomicBool,
}

fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

impl SourceWatermark {
    pub fn new(spec: &WatermarkSpec) -> Arc<Self> {
        Arc::new(SourceWatermark {
            table: spec.table.clone(),
            delay_ns: nanos(spec.delay),
            idle_ns: spec.idle_timeout.map(nanos),
            started: Instant::now(),
            watermark: AtomicI64::new(WATERMARK_MIN),
            last_active: AtomicI64::new(0),
            finished: AtomicBool::new(false),
            splits: std::sync::Mutex::default(),
            has_splits: AtomicBool::new(false),
        })
    }

    /// The watermark an exchange output hands its readers, moved by
    /// [`SourceWatermark::advance_to`] as rows arrive; never idle on its own (the sources
    /// upstream are judged idle where they are read).
    pub fn derived(table: &str) -> Arc<Self> {
        SourceWatermark::new(&WatermarkSpec {
            table: table.to_string(),
            column: 0,
            delay: Duration::ZERO,
            idle_timeout: None,
        })
    }

    /// Move a derived watermark (it never goes back).
    pub fn advance_to(&self, watermark: i64) {
        self.watermark.fetch_max(watermark, Ordering::Relaxed);
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn elapsed_ns(&self) -> i64 {
        nanos(self.started.elapsed())
    }

    /// Account for a batch the partition emitted: `times` is its event time column.
    pub fn observe(&self, times: &ArrayRef) {
        self.last_active.store(self.elapsed_ns(), Ordering::Relaxed);
        if let Some(highest) = max_nanos(times) {
            let watermark = highest.saturating_sub(self.delay_ns);
            self.watermark.fetch_max(watermark, Ordering::Relaxed);
        }
    }

    /// Account for a batch of one split (`split`, of the instance's `known` splits): the
    /// watermark follows the slowest split that is not idle, so a partition behind the
    /// others does not see its rows turn late.
    pub fn observe_split(&self, split: u64, known: &[u64], times: &ArrayRef) {
        let now = self.elapsed_ns();
        self.last_active.store(now, Ordering::Relaxed);
        self.has_splits.store(true, Ordering::Relaxed);
        let mut splits = self.splits.lock().unwrap_or_else(|p| p.into_inner());
        for k in known {
            // A split without rows yet holds the watermark back until it is idle.
            splits.entry(*k).or_insert((WATERMARK_MIN, now));
        }
        let entry = splits.entry(split).or_insert((WATERMARK_MIN, now));
        entry.1 = now;
        if let Some(highest) = max_nanos(times) {
            entry.0 = entry.0.max(highest);
        }
        drop(splits);
        self.advance_by_splits(now);
    }

    /// Move the watermark to the slowest split that is not idle (idleness is a matter of
    /// time, so this runs whenever the watermark is read, too).
    fn advance_by_splits(&self, now: i64) {
        if !self.has_splits.load(Ordering::Relaxed) {
            return;
        }
        let splits = self.splits.lock().unwrap_or_else(|p| p.into_inner());
        if splits.is_empty() {
            return;
        }
        let idle = |last: i64| self.idle_ns.is_some_and(|i| now.saturating_sub(last) > i);
        let slowest = splits
            .values()
            .filter(|(_, last)| !idle(*last))
            .map(|(highest, _)| *highest)
            .min()
            .or_else(|| splits.values().map(|(highest, _)| *highest).max());
        if let Some(slowest) = slowest.filter(|t| *t > WATERMARK_MIN) {
            self.watermark
                .fetch_max(slowest.saturating_sub(self.delay_ns), Ordering::Relaxed);
        }
    }

    /// The partition reached its end.
    pub fn finish(&self) {
        self.finished.store(true, Ordering::Relaxed);
        self.watermark.store(WATERMARK_MAX, Ordering::Relaxed);
    }

    pub fn value(&self) -> i64 {
        self.advance_by_splits(self.elapsed_ns());
        self.watermark.load(Ordering::Relaxed)
    }

    /// Silent for longer than the idle timeout (and not finished).
    fn is_idle(&self) -> bool {
        self.idle_ns.is_some_and(|idle| {
            !self.finished.load(Ordering::Relaxed)
                && self
                    .elapsed_ns()
                    .saturating_sub(self.last_active.load(Ordering::Relaxed))
                    > idle
        })
    }
}

/// The watermark of everything below an operator: the minimum over the source partitions
/// feeding it, leaving out idle ones.
#[derive(Debug, Clone, Default)]
pub struct Watermarks(Vec<Arc<SourceWatermark>>);

impl Watermarks {
    pub fn new(sources: Vec<Arc<SourceWatermark>>) -> Self {
        Watermarks(sources)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Like the splits of one partition: the slowest active partition, or once all are
    /// idle the furthest one (a quiet source does not keep its windows open).
    pub fn current(&self) -> i64 {
        let active = self
            .0
            .iter()
            .filter(|s| !s.is_idle())
            .map(|s| s.value())
            .min();
        active
            .or_else(|| self.0.iter().map(|s| s.value()).max())
            .unwrap_or(WATERMARK_MIN)
    }
}

thread_local! {
    /// Operators collecting the watermarks of the sources their input starts.
    static SCOPES: RefCell<Vec<Vec<Arc<SourceWatermark>>>> = const { RefCell::new(Vec::new()) };
}

/// Run `start` (which starts an operator's input streams) and collect the watermarks of
/// every source partition it starts. Starting a plan is synchronous, so the sources started
/// are exactly this operator's — two scans of one table each get their own watermark.
pub fn collect_sources<T>(start: impl FnOnce() -> T) -> (T, Watermarks) {
    SCOPES.with(|s| s.borrow_mut().push(Vec::new()));
    let out = start();
    let sources = SCOPES.with(|s| s.borrow_mut().pop()).unwrap_or_default();
    (out, Watermarks::new(sources))
}

/// Like [`collect_sources`], but the sources started are hidden from the operators
/// collecting outside: an exchange hands them its own watermark instead.
pub fn collect_sources_apart<T>(start: impl FnOnce() -> T) -> (T, Watermarks) {
    let outer = SCOPES.with(|s| std::mem::take(&mut *s.borrow_mut()));
    let out = collect_sources(start);
    SCOPES.with(|s| *s.borrow_mut() = outer);
    out
}

/// A source partition starting: every operator collecting around it sees its watermark.
pub fn register_source(watermark: &Arc<SourceWatermark>) {
    SCOPES.with(|s| {
        for scope in s.borrow_mut().iter_mut() {
            scope.push(watermark.clone());
        }
    });
}

/// Multiplier from a time unit to nanoseconds.
pub fn nanos_per(unit: &TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1_000_000_000,
        TimeUnit::Millisecond => 1_000_000,
        TimeUnit::Microsecond => 1_000,
        TimeUnit::Nanosecond => 1,
    }
}

/// The highest timestamp of a timestamp column, in nanoseconds.
fn max_nanos(times: &ArrayRef) -> Option<i64> {
    let DataType::Timestamp(unit, _) = times.data_type() else {
        return None;
    };
    let highest = match unit {
        TimeUnit::Second => max(times.as_primitive::<TimestampSecondType>()),
        TimeUnit::Millisecond => max(times.as_primitive::<TimestampMillisecondType>()),
        TimeUnit::Microsecond => max(times.as_primitive::<TimestampMicrosecondType>()),
        TimeUnit::Nanosecond => max(times.as_primitive::<TimestampNanosecondType>()),
    }?;
    Some(highest.saturating_mul(nanos_per(unit)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::TimestampNanosecondArray;

    fn times(values: &[i64]) -> ArrayRef {
        Arc::new(TimestampNanosecondArray::from(values.to_vec()))
    }

    fn spec(delay_ns: u64, idle: Option<Duration>) -> WatermarkSpec {
        WatermarkSpec {
            table: "t".into(),
            column: 0,
            delay: Duration::from_nanos(delay_ns),
            idle_timeout: idle,
        }
    }

    #[test]
    fn minimum_over_partitions_minus_delay() {
        let a = SourceWatermark::new(&spec(5, None));
        let b = SourceWatermark::new(&spec(5, None));
        let both = Watermarks::new(vec![a.clone(), b.clone()]);
        assert_eq!(both.current(), WATERMARK_MIN);
        a.observe(&times(&[100, 120]));
        assert_eq!(both.current(), WATERMARK_MIN, "b has not reported");
        b.observe(&times(&[50]));
        assert_eq!(both.current(), 45);
        b.observe(&times(&[10]));
        assert_eq!(both.current(), 45, "watermarks never go back");
        b.finish();
        assert_eq!(both.current(), 115);
        a.finish();
        assert_eq!(both.current(), WATERMARK_MAX);
    }

    #[test]
    fn splits_hold_the_watermark_at_the_slowest() {
        let idle = Some(Duration::from_millis(30));
        let w = SourceWatermark::new(&spec(5, idle));
        w.observe_split(0, &[0, 1], &times(&[100]));
        assert_eq!(w.value(), WATERMARK_MIN, "split 1 has sent nothing yet");
        w.observe_split(1, &[0, 1], &times(&[40]));
        assert_eq!(w.value(), 35, "the slower split");
        w.observe_split(0, &[0, 1], &times(&[300]));
        assert_eq!(w.value(), 35, "split 0 running ahead does not move it");
        w.observe_split(1, &[0, 1], &times(&[60]));
        assert_eq!(w.value(), 55);
        std::thread::sleep(Duration::from_millis(60));
        w.observe_split(0, &[0, 1], &times(&[310]));
        assert_eq!(w.value(), 305, "split 1 is idle");
    }

    #[test]
    fn idle_partitions_stop_holding_back() {
        let idle = Some(Duration::from_millis(20));
        let a = SourceWatermark::new(&spec(0, idle));
        let b = SourceWatermark::new(&spec(0, idle));
        let both = Watermarks::new(vec![a.clone(), b.clone()]);
        a.observe(&times(&[100]));
        b.observe(&times(&[10]));
        assert_eq!(both.current(), 10);
        std::thread::sleep(Duration::from_millis(40));
        a.observe(&times(&[200]));
        assert_eq!(both.current(), 200, "b is idle");
    }

    #[test]
    fn scopes_collect_the_sources_started_inside() {
        let ((), outer) = collect_sources(|| {
            let ((), inner) =
                collect_sources(|| register_source(&SourceWatermark::new(&spec(0, None))));
            assert_eq!(inner.0.len(), 1);
            register_source(&SourceWatermark::new(&spec(0, None)));
        });
        assert_eq!(outer.0.len(), 2);
    }
}
