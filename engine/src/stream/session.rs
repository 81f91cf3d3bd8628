//! Session windows: per key, a window that stays open while rows keep arriving within the
//! gap, merging when a row bridges two sessions. Each session holds one accumulator per
//! aggregate (accumulators merge through their state when sessions do).

use std::collections::HashMap;

use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, RecordBatch, UInt32Array};
use arrow::datatypes::SchemaRef;
use arrow::row::{OwnedRow, RowConverter};
use datafusion::common::ScalarValue;
use datafusion::error::Result;
use datafusion::logical_expr::Accumulator;

use super::aggregates::{
    AggregateSpec, Inputs, accumulators_from_state, key_converter, state_columns,
    update_accumulators,
};

struct Session {
    start: i64,
    /// Event time of the session's latest row.
    last: i64,
    accumulators: Vec<Box<dyn Accumulator>>,
}

impl Session {
    fn absorb(&mut self, other: Session) -> Result<()> {
        self.start = self.start.min(other.start);
        self.last = self.last.max(other.last);
        for (mine, mut theirs) in self.accumulators.iter_mut().zip(other.accumulators) {
            let state = theirs
                .state()?
                .iter()
                .map(ScalarValue::to_array)
                .collect::<Result<Vec<_>>>()?;
            mine.merge_batch(&state)?;
        }
        Ok(())
    }
}

/// Sessions closed by a watermark, ready to become output rows.
pub struct ClosedSessions {
    pub keys: Vec<ArrayRef>,
    pub starts: Vec<i64>,
    pub ends: Vec<i64>,
    pub values: Vec<ArrayRef>,
}

/// The open sessions of every key.
pub struct Sessions {
    gap: i64,
    converter: Option<RowConverter>,
    open: HashMap<Box<[u8]>, Vec<Session>>,
    /// Earliest end among open sessions.
    next_close: i64,
}

impl Sessions {
    pub fn new(gap: i64, key_schema: &SchemaRef) -> Result<Self> {
        let converter = key_converter(key_schema)?;
        Ok(Sessions {
            gap,
            converter,
            open: HashMap::new(),
            next_close: i64::MAX,
        })
    }

    /// Earliest time at which a session closes.
    pub fn next_close(&self) -> Option<i64> {
        (!self.open.is_empty()).then_some(self.next_close)
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Add rows; `times[i]` is row `rows[i]`'s event time (late and null rows already
    /// removed by the caller).
    pub fn update(
        &mut self,
        spec: &AggregateSpec,
        inputs: &Inputs,
        rows: &mut [u32],
        times: &[i64],
    ) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let keys = match &self.converter {
            Some(c) => Some(c.convert_columns(&inputs.keys)?),
            None => None,
        };
        let compare = |a: u32, b: u32| match &keys {
            Some(k) => k.row(a as usize).cmp(&k.row(b as usize)),
            None => std::cmp::Ordering::Equal,
        };
        rows.sort_unstable_by(|&a, &b| {
            compare(a, b).then(times[a as usize].cmp(&times[b as usize]))
        });
        let sorted = inputs.take(&UInt32Array::from(rows.to_vec()))?;
        let mut first = 0;
        while first < rows.len() {
            // A run: same key, each row within the gap of the one before.
            let mut last = first;
            while last + 1 < rows.len()
                && compare(rows[first], rows[last + 1]).is_eq()
                && times[rows[last + 1] as usize] - times[rows[last] as usize] < self.gap
            {
                last += 1;
            }
            let start = times[rows[first] as usize];
            let end = times[rows[last] as usize];
            let part = sorted.slice(first, last - first + 1)?;
            let gap = self.gap;
            let row = keys.as_ref().map(|k| k.row(rows[first] as usize));
            let key: &[u8] = row.as_ref().map_or(&[], |r| r.as_ref());
            let overlaps = |s: &Session| s.start < end + gap && start < s.last + gap;
            // The common case: the rows extend one open session of the key. Update it in
            // place (no new accumulators, no state merge).
            if let Some(open) = self.open.get_mut(key)
                && open.iter().filter(|s| overlaps(s)).count() == 1
                && let Some(session) = open.iter_mut().find(|s| overlaps(s))
            {
                update_accumulators(&mut session.accumulators, &part)?;
                session.start = session.start.min(start);
                session.last = session.last.max(end);
                self.next_close = self.next_close.min(session.last + gap);
                first = last + 1;
                continue;
            }
            let mut session = Session {
                start,
                last: end,
                accumulators: spec.accumulators()?,
            };
            update_accumulators(&mut session.accumulators, &part)?;
            let open = self.open.entry(key.into()).or_default();
            while let Some(pos) = open
                .iter()
                .position(|s| s.start < session.last + gap && session.start < s.last + gap)
            {
                let other = open.swap_remove(pos);
                session.absorb(other)?;
            }
            self.next_close = self.next_close.min(session.last + gap);
            open.push(session);
            first = last + 1;
        }
        Ok(())
    }

    /// Take out every session whose end is at or before `watermark`.
    pub fn close(&mut self, watermark: i64) -> Result<Option<ClosedSessions>> {
        if self.open.is_empty() || self.next_close > watermark {
            return Ok(None);
        }
        let gap = self.gap;
        let mut closed: Vec<(Box<[u8]>, Session)> = Vec::new();
        let mut next_close = i64::MAX;
        self.open.retain(|key, sessions| {
            let mut i = 0;
            while i < sessions.len() {
                if sessions[i].last + gap <= watermark {
                    closed.push((key.clone(), sessions.swap_remove(i)));
                } else {
                    next_close = next_close.min(sessions[i].last + gap);
                    i += 1;
                }
            }
            !sessions.is_empty()
        });
        self.next_close = next_close;
        if closed.is_empty() {
            return Ok(None);
        }
        let keys = match &self.converter {
            Some(c) => {
                let parser = c.parser();
                let owned: Vec<OwnedRow> = closed
                    .iter()
                    .map(|(k, _)| parser.parse(k).owned())
                    .collect();
                c.convert_rows(owned.iter().map(|r| r.row()))?
            }
            None => Vec::new(),
        };
        let starts = closed.iter().map(|(_, s)| s.start).collect();
        let ends = closed.iter().map(|(_, s)| s.last + gap).collect();
        let functions = closed.first().map_or(0, |(_, s)| s.accumulators.len());
        let values = (0..functions)
            .map(|i| {
                let scalars = closed
                    .iter_mut()
                    .map(|(_, s)| s.accumulators[i].evaluate())
                    .collect::<Result<Vec<_>>>()?;
                ScalarValue::iter_to_array(scalars)
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Some(ClosedSessions {
            keys,
            starts,
            ends,
            values,
        }))
    }

    /// Every open session as one batch: key columns, start, last row time, then each
    /// aggregate's state columns; with how many state columns each aggregate has.
    pub fn snapshot(&mut self, spec: &AggregateSpec) -> Result<(RecordBatch, Vec<usize>)> {
        let mut keys = Vec::new();
        let (mut starts, mut lasts) = (Vec::new(), Vec::new());
        let mut states: Vec<Vec<Vec<ScalarValue>>> = vec![Vec::new(); spec.functions.len()];
        for (key, sessions) in self.open.iter_mut() {
            for session in sessions.iter_mut() {
                keys.push(key.clone());
                starts.push(session.start);
                lasts.push(session.last);
                for (i, acc) in session.accumulators.iter_mut().enumerate() {
                    states[i].push(acc.state()?);
                }
            }
        }
        let rows = starts.len();
        let mut columns: Vec<ArrayRef> = match &self.converter {
            Some(converter) => {
                let parser = converter.parser();
                converter.convert_rows(keys.iter().map(|k| parser.parse(k)))?
            }
            None => Vec::new(),
        };
        columns.push(Arc::new(Int64Array::from(starts)));
        columns.push(Arc::new(Int64Array::from(lasts)));
        let (states, layout) = state_columns(spec, &states)?;
        columns.extend(states);
        Ok((
            crate::checkpoint::arrow_state::columns_batch(columns, rows)?,
            layout,
        ))
    }

    /// Put back the sessions of a [`Sessions::snapshot`].
    pub fn restore(
        &mut self,
        spec: &AggregateSpec,
        batch: &RecordBatch,
        layout: &[usize],
    ) -> Result<()> {
        let key_count = spec.key_schema.fields().len();
        let columns = batch.columns();
        if columns.len() != key_count + 2 + layout.iter().sum::<usize>() {
            return datafusion::common::internal_err!(
                "checkpointed sessions have {} columns",
                columns.len()
            );
        }
        let keys = match &self.converter {
            Some(c) => Some(c.convert_columns(&columns[..key_count])?),
            None => None,
        };
        let as_i64 = |i: usize| {
            columns[i]
                .as_any()
                .downcast_ref::<Int64Array>()
                .cloned()
                .ok_or_else(|| {
                    datafusion::error::DataFusionError::Internal(
                        "checkpointed session times are not BIGINT".into(),
                    )
                })
        };
        let (starts, lasts) = (as_i64(key_count)?, as_i64(key_count + 1)?);
        for row in 0..batch.num_rows() {
            let accumulators = accumulators_from_state(spec, columns, key_count + 2, layout, row)?;
            let key: Box<[u8]> = match &keys {
                Some(rows) => rows.row(row).as_ref().into(),
                None => Box::new([]),
            };
            let last = lasts.value(row);
            self.next_close = self.next_close.min(last.saturating_add(self.gap));
            self.open.entry(key).or_default().push(Session {
                start: starts.value(row),
                last,
                accumulators,
            });
        }
        Ok(())
    }

    /// Bytes held (approximate).
    pub fn size(&self) -> usize {
        self.open
            .iter()
            .map(|(k, v)| {
                k.len()
                    + v.iter()
                        .map(|s| s.accumulators.iter().map(|a| a.size()).sum::<usize>())
                        .sum::<usize>()
            })
            .sum()
    }
}
