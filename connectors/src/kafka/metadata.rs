//! Metadata columns of a Kafka source: `_timestamp`, `_key`, `_partition`, `_offset`,
//! `_headers`. They are filled from each record's envelope, not decoded from its value.

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BinaryBuilder, Int32Array, Int64Array, MapBuilder, StringBuilder,
    TimestampMillisecondArray, UInt32Array,
};
use arrow::compute::{cast, take};
use arrow::datatypes::{DataType, Field};
use rdkafka::message::{Headers, Message};

use crate::error::{ConnectorError, Result};

/// Which envelope value a metadata column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MetadataKind {
    /// The record's timestamp (create or log-append time).
    Timestamp,
    /// The record's key bytes.
    Key,
    /// The partition it was read from.
    Partition,
    /// Its offset in that partition.
    Offset,
    /// Its headers: name → bytes.
    Headers,
}

/// The metadata column of headers; on a sink table it sets each record's headers.
pub(super) const HEADERS_COLUMN: &str = "_headers";

impl MetadataKind {
    /// The metadata a column of this name holds, if it is one.
    pub(super) fn of(column: &str) -> Option<MetadataKind> {
        Some(match column {
            "_timestamp" => MetadataKind::Timestamp,
            "_key" => MetadataKind::Key,
            "_partition" => MetadataKind::Partition,
            "_offset" => MetadataKind::Offset,
            HEADERS_COLUMN => MetadataKind::Headers,
            _ => return None,
        })
    }

    /// The metadata `METADATA FROM '<key>'` names (Arroyo's `offset_id` too).
    pub(super) fn from_key(key: &str) -> Result<MetadataKind> {
        Ok(match key.to_ascii_lowercase().as_str() {
            "timestamp" => MetadataKind::Timestamp,
            "key" => MetadataKind::Key,
            "partition" => MetadataKind::Partition,
            "offset" | "offset_id" => MetadataKind::Offset,
            "headers" => MetadataKind::Headers,
            _ => {
                return Err(ConnectorError::InvalidValue {
                    connector: "kafka".into(),
                    key: "METADATA FROM".into(),
                    value: key.into(),
                    expected: "one of timestamp, key, partition, offset, headers".into(),
                });
            }
        })
    }

    /// The metadata column `field` is on a table declaring `declared` (column → key): by
    /// `METADATA FROM`, or by its name (`_key`, ...).
    pub(super) fn of_column(
        field: &Field,
        declared: Option<&std::collections::BTreeMap<String, String>>,
    ) -> Result<Option<MetadataKind>> {
        match declared.and_then(|d| d.get(field.name())) {
            Some(key) => Self::from_key(key).map(Some),
            None => Ok(Self::of(field.name())),
        }
    }

    /// Whether a column of `data_type` can hold this metadata.
    pub(super) fn check_type(self, field: &Field) -> Result<()> {
        let ok = match self {
            MetadataKind::Timestamp => matches!(field.data_type(), DataType::Timestamp(..)),
            MetadataKind::Key => matches!(field.data_type(), DataType::Binary | DataType::Utf8),
            MetadataKind::Partition | MetadataKind::Offset => field.data_type().is_integer(),
            MetadataKind::Headers => match field.data_type() {
                DataType::Utf8 => true,
                DataType::Map(entries, _) => match entries.data_type() {
                    DataType::Struct(kv) => {
                        kv.len() == 2
                            && kv[0].data_type() == &DataType::Utf8
                            && matches!(kv[1].data_type(), DataType::Binary | DataType::Utf8)
                    }
                    _ => false,
                },
                _ => false,
            },
        };
        if ok {
            return Ok(());
        }
        let expected = match self {
            MetadataKind::Timestamp => "TIMESTAMP",
            MetadataKind::Key => "BYTEA or TEXT",
            MetadataKind::Partition => "INT",
            MetadataKind::Offset => "BIGINT",
            MetadataKind::Headers => "TEXT (a JSON object) or MAP<TEXT, BYTEA>",
        };
        Err(ConnectorError::Config(format!(
            "kafka: metadata column '{}' must be {expected}, not {}",
            field.name(),
            field.data_type()
        )))
    }
}

/// One record's headers: name and value (a header may have no value).
type RecordHeaders = Vec<(String, Option<Vec<u8>>)>;

/// Metadata columns by table position, and each kept record's partition and offset.
pub(super) type EnvelopeColumns = (Vec<(usize, ArrayRef)>, Vec<i32>, Vec<i64>);

/// The envelopes of buffered records, in the order they were pushed.
#[derive(Debug, Default)]
pub(super) struct Envelopes {
    timestamps: Vec<Option<i64>>,
    keys: BinaryBuilder,
    partitions: Vec<i32>,
    offsets: Vec<i64>,
    headers: Vec<RecordHeaders>,
    keep_headers: bool,
}

impl Envelopes {
    /// Envelopes that keep headers only when a column wants them.
    pub(super) fn new(keep_headers: bool) -> Self {
        Envelopes {
            keep_headers,
            ..Envelopes::default()
        }
    }

    /// Keep `message`'s envelope.
    pub(super) fn push<M: Message>(&mut self, message: &M) {
        self.timestamps.push(message.timestamp().to_millis());
        match message.key() {
            Some(key) => self.keys.append_value(key),
            None => self.keys.append_null(),
        }
        self.partitions.push(message.partition());
        self.offsets.push(message.offset());
        if self.keep_headers {
            let headers = message
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|header| (header.key.to_string(), header.value.map(<[u8]>::to_vec)))
                        .collect()
                })
                .unwrap_or_default();
            self.headers.push(headers);
        }
    }

    /// The `wanted` columns (position in the table, kind, field) over the buffered records,
    /// keeping the rows `kept` lists (all when `None`); the buffer is emptied.
    /// Also returns the partition and offset of each kept record.
    pub(super) fn columns(
        &mut self,
        wanted: &[(usize, MetadataKind, Arc<Field>)],
        kept: Option<&[usize]>,
    ) -> Result<EnvelopeColumns> {
        // Each kind is wanted at most once (column names are unique).
        let keys = self.keys.finish();
        let all_partitions = std::mem::take(&mut self.partitions);
        let all_offsets = std::mem::take(&mut self.offsets);
        let pick = |values: &[i64]| -> Vec<i64> {
            match kept {
                Some(rows) => rows.iter().map(|&i| values[i]).collect(),
                None => values.to_vec(),
            }
        };
        let kept_offsets = pick(&all_offsets);
        let kept_partitions: Vec<i32> = match kept {
            Some(rows) => rows.iter().map(|&i| all_partitions[i]).collect(),
            None => all_partitions.clone(),
        };
        let mut timestamps = Some(std::mem::take(&mut self.timestamps));
        let mut partitions = Some(all_partitions);
        let mut offsets = Some(all_offsets);
        let headers = std::mem::take(&mut self.headers);
        let mut out = Vec::with_capacity(wanted.len());
        for (position, kind, field) in wanted {
            let raw: ArrayRef = match kind {
                MetadataKind::Timestamp => Arc::new(TimestampMillisecondArray::from(
                    timestamps.take().unwrap_or_default(),
                )),
                MetadataKind::Key => Arc::new(keys.clone()),
                MetadataKind::Partition => {
                    Arc::new(Int32Array::from(partitions.take().unwrap_or_default()))
                }
                MetadataKind::Offset => {
                    Arc::new(Int64Array::from(offsets.take().unwrap_or_default()))
                }
                MetadataKind::Headers => headers_array(&headers, field)?,
            };
            let raw = match kept {
                Some(rows) => {
                    let indices = UInt32Array::from_iter_values(rows.iter().map(|&i| i as u32));
                    take(raw.as_ref(), &indices, None)?
                }
                None => raw,
            };
            let column = if raw.data_type() == field.data_type() {
                raw
            } else {
                cast(&raw, field.data_type()).map_err(|e| {
                    ConnectorError::Config(format!(
                        "kafka: metadata column '{}' ({}): {e}",
                        field.name(),
                        field.data_type()
                    ))
                })?
            };
            out.push((*position, column));
        }
        Ok((out, kept_partitions, kept_offsets))
    }
}

/// Headers as a JSON object per row (TEXT column) or a map (MAP column).
fn headers_array(rows: &[RecordHeaders], field: &Field) -> Result<ArrayRef> {
    if field.data_type() == &DataType::Utf8 {
        let mut builder = StringBuilder::new();
        for headers in rows {
            let object: serde_json::Map<String, serde_json::Value> = headers
                .iter()
                .map(|(k, v)| {
                    let value = v.as_ref().map_or(serde_json::Value::Null, |bytes| {
                        serde_json::Value::String(String::from_utf8_lossy(bytes).into_owned())
                    });
                    (k.clone(), value)
                })
                .collect();
            builder.append_value(serde_json::Value::Object(object).to_string());
        }
        return Ok(Arc::new(builder.finish()));
    }
    let mut builder = MapBuilder::new(None, StringBuilder::new(), BinaryBuilder::new());
    for headers in rows {
        for (k, v) in headers {
            builder.keys().append_value(k);
            match v {
                Some(bytes) => builder.values().append_value(bytes),
                None => builder.values().append_null(),
            }
        }
        builder.append(true)?;
    }
    let map = builder.finish();
    // The declared map may name its parts differently or hold TEXT values.
    if map.data_type() == field.data_type() {
        Ok(Arc::new(map))
    } else {
        Ok(cast(&map, field.data_type())?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_types() {
        assert_eq!(MetadataKind::of("_offset"), Some(MetadataKind::Offset));
        assert_eq!(MetadataKind::of("offset"), None);
        let bad = Field::new("_timestamp", DataType::Utf8, true);
        let error = MetadataKind::Timestamp.check_type(&bad).unwrap_err();
        assert_eq!(
            error.to_string(),
            "kafka: metadata column '_timestamp' must be TIMESTAMP, not Utf8"
        );
        let key = Field::new("_key", DataType::Utf8, true);
        assert!(MetadataKind::Key.check_type(&key).is_ok());
    }
}
