//! CSV values to the table's column types, record by record where they do not fit.
//!
//! CSV is read as text columns and cast to the table's types in one pass per batch; a row
//! with a value that does not fit its column (`abc` for a BIGINT) is a bad record and follows
//! the table's `bad_data` policy, while the rest of the batch goes on.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use arrow::compute::kernels::cast::{CastOptions, cast_with_options};
use arrow::compute::{filter_record_batch, not};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::error::Result;
use crate::format::{BadData, BadRecord};

/// The text schema CSV is read with: the table's column names, every one TEXT.
pub(super) fn text_schema(schema: &SchemaRef) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ))
}

/// Where a CSV batch comes from, for bad records.
pub(super) struct CsvOrigin<'a> {
    pub table: &'a str,
    pub file: &'a str,
    /// Data rows of the file before this batch.
    pub rows_before: u64,
    pub delimiter: u8,
    pub policy: BadData,
    pub bad_records: &'a AtomicU64,
}

/// Cast a batch of text columns to `schema`: rows whose values fit, and the bad ones
/// (`bad_data = 'dlq'`); `fail` returns the first bad row as the error.
pub(super) fn typed_rows(
    text: &RecordBatch,
    schema: &SchemaRef,
    origin: &CsvOrigin<'_>,
) -> Result<(RecordBatch, Vec<BadRecord>)> {
    let rows = text.num_rows();
    let options = CastOptions {
        safe: true,
        ..Default::default()
    };
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    // Per row, the first column whose value did not fit.
    let mut misfit: Vec<Option<usize>> = vec![None; rows];
    for (i, field) in schema.fields().iter().enumerate() {
        let source = text.column(i);
        if field.data_type() == &DataType::Utf8 {
            columns.push(source.clone());
            continue;
        }
        let strings = source.as_string::<i32>();
        // An empty field is NULL for typed columns, as arrow-csv reads it.
        let empty_as_null: ArrayRef = Arc::new(arrow::array::StringArray::from_iter(
            strings.iter().map(|v| v.filter(|s| !s.is_empty())),
        ));
        let cast = cast_with_options(&empty_as_null, field.data_type(), &options)?;
        for (row, slot) in misfit.iter_mut().enumerate() {
            if slot.is_none() && empty_as_null.is_valid(row) && cast.is_null(row) {
                *slot = Some(i);
            }
        }
        columns.push(cast);
    }
    let typed = RecordBatch::try_new(schema.clone(), columns)?;
    if misfit.iter().all(Option::is_none) {
        return Ok((typed, Vec::new()));
    }
    let mut letters = Vec::new();
    for (row, column) in misfit.iter().enumerate() {
        let Some(column) = column else { continue };
        let field = schema.field(*column);
        let value = text.column(*column).as_string::<i32>().value(row);
        let bad = BadRecord {
            position: format!(
                "{} row {}",
                origin.file,
                origin.rows_before + row as u64 + 1
            ),
            reason: format!(
                "column '{}': '{value}' is not a valid {}",
                field.name(),
                crate::schema::sql_type_name(field.data_type())
            ),
            raw: raw_row(text, row, origin.delimiter),
        };
        crate::format::follow_policy(
            origin.policy,
            origin.table,
            origin.bad_records,
            bad,
            &mut letters,
        )?;
    }
    let bad: BooleanArray = misfit.iter().map(|m| Some(m.is_some())).collect();
    Ok((filter_record_batch(&typed, &not(&bad)?)?, letters))
}

/// A row's fields joined again, for the dead-letter table.
fn raw_row(text: &RecordBatch, row: usize, delimiter: u8) -> Vec<u8> {
    let mut raw = Vec::new();
    for (i, column) in text.columns().iter().enumerate() {
        if i > 0 {
            raw.push(delimiter);
        }
        if column.is_valid(row) {
            raw.extend_from_slice(column.as_string::<i32>().value(row).as_bytes());
        }
    }
    raw
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use std::sync::atomic::Ordering;

    #[test]
    fn rows_that_do_not_fit_follow_the_policy() {
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]));
        let text = RecordBatch::try_new(
            text_schema(&schema),
            vec![
                Arc::new(StringArray::from(vec![
                    Some("1"),
                    Some("x"),
                    Some(""),
                    Some("4"),
                ])),
                Arc::new(StringArray::from(vec!["a", "b", "c", "d"])),
            ],
        )
        .unwrap();
        let count = AtomicU64::new(0);
        let origin = |policy| CsvOrigin {
            table: "t",
            file: "f.csv",
            rows_before: 10,
            delimiter: b',',
            policy,
            bad_records: &count,
        };
        let (rows, letters) = typed_rows(&text, &schema, &origin(BadData::Dlq)).unwrap();
        assert_eq!(
            rows.column(0).as_ref(),
            &Int64Array::from(vec![Some(1), None, Some(4)]) as &dyn Array
        );
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].position, "f.csv row 12");
        assert_eq!(letters[0].raw, b"x,b");
        assert_eq!(count.load(Ordering::Relaxed), 1);
        let error = typed_rows(&text, &schema, &origin(BadData::Fail)).unwrap_err();
        assert_eq!(
            error.to_string(),
            "table 't': bad record at f.csv row 12: column 'id': 'x' is not a valid BIGINT"
        );
    }
}
