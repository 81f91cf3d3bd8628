//! Arrow columns in checkpoints: one batch as an Arrow IPC stream, base64 in the JSON.

use arrow::array::ArrayRef;
use arrow::datatypes::{Field, Schema};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use datafusion::common::{DataFusionError, internal_datafusion_err};
use datafusion::error::Result;
use std::sync::Arc;

/// Columns of equal length (possibly none) as one batch; names are positional.
pub fn columns_batch(columns: Vec<ArrayRef>, rows: usize) -> Result<RecordBatch> {
    let fields: Vec<Field> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| Field::new(format!("c{i}"), c.data_type().clone(), true))
        .collect();
    let options = RecordBatchOptions::new().with_row_count(Some(rows));
    Ok(RecordBatch::try_new_with_options(
        Arc::new(Schema::new(fields)),
        columns,
        &options,
    )?)
}

/// A batch as base64 text.
pub fn encode(batch: &RecordBatch) -> Result<String> {
    let mut bytes = Vec::new();
    {
        let mut writer = StreamWriter::try_new(&mut bytes, &batch.schema())?;
        writer.write(batch)?;
        writer.finish()?;
    }
    Ok(STANDARD.encode(bytes))
}

/// The batch [`encode`] wrote.
pub fn decode(text: &str) -> Result<RecordBatch> {
    let bytes = STANDARD
        .decode(text)
        .map_err(|e| internal_datafusion_err!("checkpointed state is not base64: {e}"))?;
    let mut reader = StreamReader::try_new(std::io::Cursor::new(bytes), None)?;
    reader
        .next()
        .transpose()?
        .ok_or_else(|| DataFusionError::Internal("checkpointed state has no rows batch".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};

    #[test]
    fn round_trip() {
        let batch = columns_batch(
            vec![
                Arc::new(Int64Array::from(vec![1, 2])),
                Arc::new(StringArray::from(vec![Some("a"), None])),
            ],
            2,
        )
        .unwrap();
        assert_eq!(decode(&encode(&batch).unwrap()).unwrap(), batch);
        let empty = columns_batch(Vec::new(), 1).unwrap();
        assert_eq!(decode(&encode(&empty).unwrap()).unwrap().num_rows(), 1);
    }
}
