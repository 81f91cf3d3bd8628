//! Live counters of a running query or pipeline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use catalog::JobMetrics;

/// Counters shared by a job's sources and sink. Updated once per batch, never per row.
#[derive(Debug)]
pub struct Counters {
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    /// Bad records dropped by sources (shared with them, hence the `Arc`).
    pub errors: Arc<AtomicU64>,
    /// Rows that arrived for windows already emitted (behind the watermark).
    pub late_records: AtomicU64,
    /// Bytes of operator state (open windows' partial aggregates).
    pub state_bytes: AtomicU64,
    /// The stateful operators, registered as they start.
    operators: Mutex<Vec<Arc<OperatorStats>>>,
    started: Instant,
    window: Mutex<RateWindow>,
}

/// Counters of one stateful operator.
#[derive(Debug)]
pub struct OperatorStats {
    pub name: String,
    pub state_bytes: AtomicU64,
    pub records_out: AtomicU64,
}

/// Shortest window rates are measured over.
const RATE_WINDOW_SECS: f64 = 1.0;

/// The last reading rates were computed from.
#[derive(Debug)]
struct RateWindow {
    at: Instant,
    records_in: u64,
    records_out: u64,
    rates: (f64, f64),
    measured: bool,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            errors: Arc::new(AtomicU64::new(0)),
            late_records: AtomicU64::new(0),
            state_bytes: AtomicU64::new(0),
            operators: Mutex::new(Vec::new()),
            started: Instant::now(),
            window: Mutex::new(RateWindow {
                at: Instant::now(),
                records_in: 0,
                records_out: 0,
                rates: (0.0, 0.0),
                measured: false,
            }),
        }
    }
}

impl Counters {
    /// Count a batch read from a source.
    pub fn add_in(&self, rows: usize, bytes: usize) {
        self.records_in.fetch_add(rows as u64, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// A stateful operator starting: its own counters, listed in the job's metrics under
    /// the operator's one-line EXPLAIN text.
    pub fn register_operator(
        &self,
        plan: &dyn datafusion::physical_plan::ExecutionPlan,
    ) -> Arc<OperatorStats> {
        let mut name = datafusion::physical_plan::displayable(plan)
            .one_line()
            .to_string()
            .trim_end()
            .to_string();
        let mut operators = self.operators.lock().unwrap_or_else(|p| p.into_inner());
        // A parallel operator's partitions start in order: each is listed with its number.
        let partitions = plan.properties().output_partitioning().partition_count();
        if partitions > 1 {
            let earlier = operators
                .iter()
                .filter(|o| o.name.starts_with(&name))
                .count();
            name = format!("{name} (partition {} of {partitions})", earlier + 1);
        }
        let stats = Arc::new(OperatorStats {
            name,
            state_bytes: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
        });
        operators.push(stats.clone());
        stats
    }

    /// An operator's state is now `bytes`; `reported` is what it reported before. Operators
    /// add their own share, so the counter is the sum over a job's operators.
    pub fn report_state(&self, reported: &mut u64, bytes: u64) {
        if bytes >= *reported {
            self.state_bytes
                .fetch_add(bytes - *reported, Ordering::Relaxed);
        } else {
            self.state_bytes
                .fetch_sub(*reported - bytes, Ordering::Relaxed);
        }
        *reported = bytes;
    }

    /// Count a batch written to a sink.
    pub fn add_out(&self, rows: usize, bytes: usize) {
        self.records_out.fetch_add(rows as u64, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// A snapshot for the catalog and the API.
    pub fn snapshot(&self) -> JobMetrics {
        JobMetrics {
            records_in: self.records_in.load(Ordering::Relaxed),
            records_out: self.records_out.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            warnings: 0,
            late_records: self.late_records.load(Ordering::Relaxed),
            state_bytes: self.state_bytes.load(Ordering::Relaxed),
            operators: self
                .operators
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|o| catalog::OperatorMetrics {
                    name: o.name.clone(),
                    state_bytes: o.state_bytes.load(Ordering::Relaxed),
                    records_out: o.records_out.load(Ordering::Relaxed),
                })
                .collect(),
        }
    }

    /// Records per second in and out: over the last measuring window (at least a second
    /// between readings), or since the start before the first window closes.
    pub fn rates(&self) -> (f64, f64) {
        let now = Instant::now();
        let m = self.snapshot();
        let mut window = self.window.lock().unwrap_or_else(|p| p.into_inner());
        let elapsed = now.duration_since(window.at).as_secs_f64();
        if elapsed >= RATE_WINDOW_SECS {
            window.rates = (
                (m.records_in - window.records_in) as f64 / elapsed,
                (m.records_out - window.records_out) as f64 / elapsed,
            );
            window.at = now;
            window.records_in = m.records_in;
            window.records_out = m.records_out;
            window.measured = true;
        }
        if window.measured {
            return window.rates;
        }
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        (m.records_in as f64 / secs, m.records_out as f64 / secs)
    }
}
