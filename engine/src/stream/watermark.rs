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

#[derive(Debug)]
struct Slot {
    watermark: AtomicI64,
    /// Nanoseconds since `SourceWatermark::started` when the partition last emitted rows.
    last_active: AtomicI64,
    finished: AtomicBool,
}

/// The watermark of one source table, shared by its partitions and the operators above.
#[derive(Debug)]
pub struct SourceWatermark {
    table: String,
    delay_ns: i64,
    idle_timeout: Option<Duration>,
    started: Instant,
    slots: Vec<Slot>,
}

impl SourceWatermark {
    pub fn new(
        table: impl Into<String>,
        partitions: usize,
        delay: Duration,
        idle_timeout: Option<Duration>,
    ) -> Arc<Self> {
        Arc::new(SourceWatermark {
            table: table.into(),
            delay_ns: i64::try_from(delay.as_nanos()).unwrap_or(i64::MAX),
            idle_timeout,
            started: Instant::now(),
            slots: (0..partitions.max(1))
                .map(|_| Slot {
                    watermark: AtomicI64::new(WATERMARK_MIN),
                    last_active: AtomicI64::new(0),
                    finished: AtomicBool::new(false),
                })
                .collect(),
        })
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn elapsed_ns(&self) -> i64 {
        i64::try_from(self.started.elapsed().as_nanos()).unwrap_or(i64::MAX)
    }

    /// Account for a batch a partition emitted: `times` is its event time column.
    pub fn observe(&self, partition: usize, times: &ArrayRef) {
        let Some(slot) = self.slots.get(partition) else {
            return;
        };
        slot.last_active.store(self.elapsed_ns(), Ordering::Relaxed);
        if let Some(highest) = max_nanos(times) {
            let watermark = highest.saturating_sub(self.delay_ns);
            slot.watermark.fetch_max(watermark, Ordering::Relaxed);
        }
    }

    /// A partition reached its end.
    pub fn finish(&self, partition: usize) {
        if let Some(slot) = self.slots.get(partition) {
            slot.finished.store(true, Ordering::Relaxed);
            slot.watermark.store(WATERMARK_MAX, Ordering::Relaxed);
        }
    }

    /// The table's watermark now.
    pub fn current(&self) -> i64 {
        let now = self.elapsed_ns();
        let idle_ns = self
            .idle_timeout
            .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX));
        let mut active = None::<i64>;
        let mut all = WATERMARK_MAX;
        for slot in &self.slots {
            let watermark = slot.watermark.load(Ordering::Relaxed);
            all = all.min(watermark);
            let idle = idle_ns.is_some_and(|idle| {
                !slot.finished.load(Ordering::Relaxed)
                    && now.saturating_sub(slot.last_active.load(Ordering::Relaxed)) > idle
            });
            if !idle {
                active = Some(active.map_or(watermark, |a| a.min(watermark)));
            }
        }
        // Every partition idle: hold where the slowest one is.
        active.unwrap_or(all)
    }
}

/// The watermark of everything below an operator: the minimum over its sources.
#[derive(Debug, Clone, Default)]
pub struct Watermarks(Vec<Arc<SourceWatermark>>);

impl Watermarks {
    pub fn new(sources: Vec<Arc<SourceWatermark>>) -> Self {
        Watermarks(sources)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn current(&self) -> i64 {
        self.0
            .iter()
            .map(|s| s.current())
            .min()
            .unwrap_or(WATERMARK_MIN)
    }

    pub fn tables(&self) -> Vec<&str> {
        self.0.iter().map(|s| s.table()).collect()
    }
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
    use std::sync::Arc as StdArc;

    fn times(values: &[i64]) -> ArrayRef {
        StdArc::new(TimestampNanosecondArray::from(values.to_vec()))
    }

    #[test]
    fn minimum_over_partitions_minus_delay() {
        let w = SourceWatermark::new("t", 2, Duration::from_nanos(5), None);
        assert_eq!(w.current(), WATERMARK_MIN);
        w.observe(0, &times(&[100, 120]));
        assert_eq!(w.current(), WATERMARK_MIN, "partition 1 has not reported");
        w.observe(1, &times(&[50]));
        assert_eq!(w.current(), 45);
        w.observe(1, &times(&[10]));
        assert_eq!(w.current(), 45, "watermarks never go back");
        w.finish(1);
        assert_eq!(w.current(), 115);
        w.finish(0);
        assert_eq!(w.current(), WATERMARK_MAX);
    }

    #[test]
    fn idle_partitions_stop_holding_back() {
        let w = SourceWatermark::new("t", 2, Duration::ZERO, Some(Duration::from_millis(20)));
        w.observe(0, &times(&[100]));
        w.observe(1, &times(&[10]));
        assert_eq!(w.current(), 10);
        std::thread::sleep(Duration::from_millis(40));
        w.observe(0, &times(&[200]));
        assert_eq!(w.current(), 200, "partition 1 is idle");
    }
}
