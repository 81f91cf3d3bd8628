//! `DECLARE ... CURSOR FOR <query>`, `FETCH n`, `CLOSE` over streaming queries.
//!
//! A cursor holds the query's live stream; each FETCH pulls exactly the rows it asks for
//! (blocking until they are produced), keeping the rest of the current batch for the next.
//! Rows are encoded at FETCH time, so a FETCH over the extended protocol can ask for
//! binary columns (psycopg's named cursors do).

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use engine::QueryStream;
use futures::StreamExt;
use pgwire::api::results::FieldInfo;
use pgwire::messages::data::DataRow;

use super::encode::encode;

/// An open cursor.
pub(crate) struct Cursor {
    /// The columns in text format (simple-protocol FETCH, Describe of the cursor).
    pub(crate) fields: Arc<Vec<FieldInfo>>,
    stream: QueryStream,
    /// What is left of the current batch (rows not yet fetched).
    pending: Option<RecordBatch>,
    done: bool,
    /// Declared WITH HOLD: survives the end of its transaction.
    pub(crate) hold: bool,
}

impl Cursor {
    pub(crate) fn new(fields: Arc<Vec<FieldInfo>>, stream: QueryStream, hold: bool) -> Self {
        Cursor {
            fields,
            stream,
            pending: None,
            done: false,
            hold,
        }
    }

    /// Whether the query ends by itself (FETCH ALL is only allowed then).
    pub(crate) fn bounded(&self) -> bool {
        self.stream.bounded
    }

    /// The query's columns.
    pub(crate) fn schema(&self) -> SchemaRef {
        self.stream.schema.clone()
    }

    /// Up to `n` rows (all with `None`), encoded as `fields` say (text or binary per
    /// column); with a timeout, whatever arrived by then. Fewer rows only when the query
    /// ended or the timeout passed.
    ///
    /// Cancellation safe: yes — a batch is kept as `pending` until its rows are taken.
    pub(crate) async fn fetch(
        &mut self,
        n: Option<usize>,
        timeout: Option<std::time::Duration>,
        fields: &Arc<Vec<FieldInfo>>,
    ) -> Result<Vec<DataRow>, FetchError> {
        let want = n.unwrap_or(usize::MAX);
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let mut rows = Vec::new();
        while rows.len() < want {
            if let Some(batch) = self.pending.take() {
                let take = (want - rows.len()).min(batch.num_rows());
                for row in encode(fields, batch.slice(0, take)) {
                    rows.push(row.map_err(FetchError::Wire)?);
                }
                if take < batch.num_rows() {
                    self.pending = Some(batch.slice(take, batch.num_rows() - take));
                }
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
                Some(Ok(batch)) if batch.num_rows() > 0 => self.pending = Some(batch),
                Some(Ok(_)) => {}
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
