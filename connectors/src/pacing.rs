//! Rate limiting for generator sources: emit what is due, in batches, without busy loops.

use std::time::Duration;

use tokio::time::Instant;

/// Longest a generator holds back due rows to fill a batch: keeps slow streams live.
const MAX_BATCH_DELAY: Duration = Duration::from_millis(50);

/// Paces a generator at `rate` rows per second from `start`.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    rate: f64,
    start: Instant,
}

impl Pacer {
    pub(crate) fn new(rate: f64, start: Instant) -> Self {
        Pacer { rate, start }
    }

    /// A pacer for a generator resuming after `emitted` rows: as if it had started long
    /// enough ago to have emitted them, so it goes on at its rate instead of pausing.
    pub(crate) fn resumed(rate: f64, emitted: u64) -> Self {
        let now = Instant::now();
        let behind = Duration::try_from_secs_f64(emitted as f64 / rate).unwrap_or_default();
        Pacer {
            rate,
            start: now.checked_sub(behind).unwrap_or(now),
        }
    }

    /// When row number `n` (0-based) is due.
    fn due(&self, n: u64) -> Instant {
        self.start + Duration::from_secs_f64(n as f64 / self.rate)
    }

    /// Wait until at least one row after `emitted` is due, and at most until a full batch is
    /// due or [`MAX_BATCH_DELAY`] has passed; return how many rows (1..=max) to emit now.
    ///
    /// Cancellation safe: yes (it only sleeps).
    pub(crate) async fn wait_for_rows(&self, emitted: u64, max: usize) -> usize {
        let first_due = self.due(emitted);
        let now = Instant::now();
        if first_due > now {
            tokio::time::sleep_until(first_due).await;
        }
        let full_due = self.due(emitted + max as u64 - 1);
        let deadline = full_due.min(Instant::now().max(first_due) + MAX_BATCH_DELAY);
        if deadline > Instant::now() {
            tokio::time::sleep_until(deadline).await;
        }
        let elapsed = Instant::now()
            .saturating_duration_since(self.start)
            .as_secs_f64();
        let due_total = (elapsed * self.rate).floor() as u64 + 1;
        (due_total.saturating_sub(emitted) as usize).clamp(1, max)
    }
}
