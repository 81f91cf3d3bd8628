//! Small finite results (SHOW, DESCRIBE, pipeline ids) as Arrow batches.

use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use crate::error::{EngineError, Result};

/// One column of a small result.
pub enum Column {
    Text(&'static str, Vec<Option<String>>),
    Int(&'static str, Vec<i64>),
    Float(&'static str, Vec<f64>),
}

/// Build a batch from columns of equal length.
pub fn batch(columns: Vec<Column>) -> Result<(SchemaRef, RecordBatch)> {
    let mut fields = Vec::with_capacity(columns.len());
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
    for column in columns {
        match column {
            Column::Text(name, values) => {
                fields.push(Field::new(name, DataType::Utf8, true));
                arrays.push(Arc::new(StringArray::from(values)));
            }
            Column::Int(name, values) => {
                fields.push(Field::new(name, DataType::Int64, false));
                arrays.push(Arc::new(Int64Array::from(values)));
            }
            Column::Float(name, values) => {
                fields.push(Field::new(name, DataType::Float64, false));
                arrays.push(Arc::new(Float64Array::from(values)));
            }
        }
    }
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), arrays)
        .map_err(|e| EngineError::InvalidParameter(e.to_string()))?;
    Ok((schema, batch))
}

/// Shorthand for a text column from owned strings.
pub fn text(name: &'static str, values: impl IntoIterator<Item = String>) -> Column {
    Column::Text(name, values.into_iter().map(Some).collect())
}
