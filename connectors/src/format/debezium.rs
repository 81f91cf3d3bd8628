//! Reading Debezium JSON change events: `{"before": row|null, "after": row|null, "op": ...}`
//! becomes a stream of changes in the table's columns plus `_op`: a create or snapshot read
//! (`c`, `r`) is `+I` of `after`, an update (`u`) is `-U` of `before` and `+U` of `after`, a
//! delete (`d`) is `-D` of `before`. (A `{"payload": {...}}` wrapper, as Kafka Connect's JSON
//! converter writes with schemas enabled, is unwrapped.)

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, StringArray};
use arrow::compute::interleave;
use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::FormatSpec;
use super::decode::BatchDecoder;
use super::json::JsonDecoder;
use crate::error::Result;

/// Decodes envelopes (one row per record, checked) for [`expand`].
pub(crate) struct DebeziumDecoder {
    json: JsonDecoder,
}

/// The table's columns without the trailing `_op`.
fn data_fields(schema: &Schema) -> Fields {
    let fields = schema.fields();
    let data = match fields.last() {
        Some(last) if last.name() == super::CHANGE_COLUMN => &fields[..fields.len() - 1],
        _ => &fields[..],
    };
    data.iter()
        .map(|f| Arc::new(f.as_ref().clone().with_nullable(true)))
        .collect()
}

impl DebeziumDecoder {
    /// `schema`: the table's columns, then `_op`.
    pub(crate) fn new(spec: &FormatSpec, schema: &SchemaRef) -> Result<Self> {
        let row = DataType::Struct(data_fields(schema));
        let envelope = Arc::new(Schema::new(vec![
            Field::new("before", row.clone(), true),
            Field::new("after", row, true),
            Field::new("op", DataType::Utf8, true),
        ]));
        let mut json_spec = spec.clone();
        json_spec.format = Some(super::Format::Json);
        Ok(DebeziumDecoder {
            json: JsonDecoder::new(&json_spec, envelope)?,
        })
    }
}

/// Kafka Connect's JSON converter wraps the event: `{"schema": ..., "payload": {...}}`.
fn unwrap_payload(record: &[u8]) -> Option<Vec<u8>> {
    let start = record.iter().position(|b| !b.is_ascii_whitespace())?;
    let head = &record[start..];
    if !(head.starts_with(b"{\"schema\"") || head.starts_with(b"{\"payload\"")) {
        return None;
    }
    let value: serde_json::Value = serde_json::from_slice(record).ok()?;
    serde_json::to_vec(value.get("payload")?).ok()
}

impl BatchDecoder for DebeziumDecoder {
    fn decode(&self, records: &[&[u8]]) -> std::result::Result<RecordBatch, String> {
        let unwrapped: Vec<Option<Vec<u8>>> = records.iter().map(|r| unwrap_payload(r)).collect();
        let records: Vec<&[u8]> = records
            .iter()
            .zip(&unwrapped)
            .map(|(r, u)| u.as_deref().unwrap_or(r))
            .collect();
        let envelope = self.json.decode(&records)?;
        let before = envelope.column(0).as_struct();
        let after = envelope.column(1).as_struct();
        let ops = envelope.column(2).as_string::<i32>();
        for row in 0..envelope.num_rows() {
            let op = ops.is_valid(row).then(|| ops.value(row));
            match op {
                Some("c" | "r") if after.is_valid(row) => {}
                Some("u") if after.is_valid(row) => {}
                Some("d") if before.is_valid(row) => {}
                Some("c" | "r" | "u") => return Err("the change event has no 'after' row".into()),
                Some("d") => {
                    return Err(
                        "the delete event has no 'before' row (Postgres sources need REPLICA IDENTITY FULL)"
                            .into(),
                    );
                }
                Some(other) => {
                    return Err(format!(
                        "unknown change 'op' {other:?}: expected c, r, u or d"
                    ));
                }
                None => return Err("the change event has no 'op'".into()),
            }
        }
        Ok(envelope)
    }
}

/// Checked envelopes → rows of `schema` (the table's columns and `_op`).
pub(crate) fn expand(envelope: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let before = envelope.column(0).as_struct();
    let after = envelope.column(1).as_struct();
    let ops = envelope.column(2).as_string::<i32>();
    // (source: 0 before / 1 after, row) per output row, with its change kind.
    let mut picks: Vec<(usize, usize)> = Vec::with_capacity(envelope.num_rows());
    let mut kinds: Vec<&'static str> = Vec::with_capacity(envelope.num_rows());
    for row in 0..envelope.num_rows() {
        match ops.value(row) {
            "u" => {
                // Without a before image (the default for Postgres), an update is the new row.
                if before.is_valid(row) {
                    picks.push((0, row));
                    kinds.push("-U");
                }
                picks.push((1, row));
                kinds.push("+U");
            }
            "d" => {
                picks.push((0, row));
                kinds.push("-D");
            }
            _ => {
                picks.push((1, row));
                kinds.push("+I");
            }
        }
    }
    let sources: [&dyn Array; 2] = [before, after];
    let rows = interleave(&sources, &picks)?;
    let rows = rows.as_struct();
    // Previews read with the table's columns alone; queries get `_op` too.
    let with_op = schema
        .fields()
        .last()
        .is_some_and(|f| f.name() == super::CHANGE_COLUMN);
    let data_columns = schema.fields().len() - usize::from(with_op);
    let mut columns: Vec<ArrayRef> = schema.fields()[..data_columns]
        .iter()
        .enumerate()
        .map(|(i, field)| {
            let column = rows.column(i).clone();
            if column.data_type() == field.data_type() {
                Ok(column)
            } else {
                arrow::compute::cast(&column, field.data_type())
            }
        })
        .collect::<std::result::Result<_, _>>()?;
    if with_op {
        columns.push(Arc::new(StringArray::from(kinds)));
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}
