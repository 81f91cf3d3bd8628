//! `DECLARE ... CURSOR FOR <query>`, `FETCH n`, `CLOSE` over streaming queries.
//!
//! A cursor holds the query's live stream; each FETCH pulls exactly the rows it asks for
//! (blocking until they are produced), keeping the rest of the current batch for the next.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use engine::QueryStream;
use futures::StreamExt;
use pgwire::api::results::FieldInfo;
use pgwire::error::PgWireResult;
use pgwire::messages::data::DataRow;

use super::encode::encode;

/// An open cursor.
pub(crate) struct Cursor {
    pub(crate) fields: Arc<Vec<FieldInfo>>,
    stream: QueryStream,
    /// Rows of the current batch not yet fetched.
    pending: VecDeque<DataRow>,
    done: bool,
    /// Declared WITH HOLD: survives the end of its transaction.
    pub(crate) hold: bool,
}

impl Cursor {
    pub(crate) fn new(fields: Arc<Vec<FieldInfo>>, stream: QueryStream, hold: bool) -> Self {
        Cursor {
            fields,
            stream,
            pending: VecDeque::new(),
            done: false,
            hold,
        }
    }

    /// Whether the query ends by itself (FETCH ALL is only allowed then).
    pub(crate) fn bounded(&self) -> bool {
        self.stream.bounded
    }

    fn buffer(&mut self, batch: RecordBatch) -> PgWireResult<()> {
        for row in encode(&self.fields, batch) {
            self.pending.push_back(row?);
        }
        Ok(())
    }

    /// Up to `n` rows (all remaining rows if `None`); fewer only when the query ended.
    ///
    /// Cancellation safe: no — rows of a batch being encoded when the future is dropped are
    /// lost; a cancelled FETCH aborts the statement anyway.
    /// Up to `n` rows (all with `None`); with a timeout, whatever arrived by then.
    pub(crate) async fn fetch(
        &mut self,
        n: Option<usize>,
        timeout: Option<std::time::Duration>,
    ) -> Result<Vec<DataRow>, FetchError> {
        let want = n.unwrap_or(usize::MAX);
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut rows = Vec::new();
        while rows.len() < want {
            if let Some(row) = self.pending.pop_front() {
                rows.push(row);
                continue;
            }
            if self.done {
                break;
            }
            let next = match deadline {
                // Dropping `next()` at the deadline is safe: no batch is lost.
                Some(deadline) => {
                    match tokio::time::timeout_at(deadline, self.stream.stream.next()).await {
                        Ok(next) => next,
                        Err(_) => break,
                    }
                }
                None => self.stream.stream.next().await,
            };
            match next {
                Some(Ok(batch)) => self.buffer(batch).map_err(FetchError::Wire)?,
                Some(Err(e)) => return Err(FetchError::Engine(e.into())),
                None => self.done = true,
            }
        }
        Ok(rows)
    }
}

/// Why a FETCH failed.
pub(crate) enum FetchError {
    Wire(pgwire::error::PgWireError),
    Engine(engine::EngineError),
}
