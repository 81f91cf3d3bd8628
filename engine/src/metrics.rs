//! Live counters of a running query or pipeline.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
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
    started: Instant,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            errors: Arc::new(AtomicU64::new(0)),
            started: Instant::now(),
        }
    }
}

impl Counters {
    /// Count a batch read from a source.
    pub fn add_in(&self, rows: usize, bytes: usize) {
        self.records_in.fetch_add(rows as u64, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
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
        }
    }

    /// Records per second in and out since the job started.
    pub fn rates(&self) -> (f64, f64) {
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let m = self.snapshot();
        (m.records_in as f64 / secs, m.records_out as f64 / secs)
    }
}
