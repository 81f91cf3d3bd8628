//! Avro records, decoded and encoded with `arrow-avro` (batch at a time, into Arrow columns).
//!
//! Two framings:
//! - **Confluent schema registry** (`avro.confluent_schema_registry = 'true'`, the default
//!   when the connection profile names a registry): each record is `0x00`, a 4-byte
//!   big-endian schema id, then the Avro body. Readers fetch writer schemas by id from the
//!   registry; the Kafka sink registers its schema under `<topic>-value`.
//! - **Raw datums** with a schema the table gives (`avro.schema`), or, for sinks, derived
//!   from the table's columns.
//!
//! Decoded columns are matched to the table's by name (cast where the types differ, NULL
//! where the writer has no such field), so a writer schema may evolve as Avro allows.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use arrow::array::{ArrayRef, new_null_array};
use arrow::compute::{cast, concat_batches};
use arrow::datatypes::{Schema, SchemaRef};
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use arrow_avro::reader::{Decoder, ReaderBuilder};
use arrow_avro::schema::{AvroSchema, Fingerprint, FingerprintAlgorithm, SchemaStore};
use serde_json::Value;

use super::FormatSpec;
use super::decode::BatchDecoder;
use crate::error::{ConnectorError, Result};

/// The id inline schemas get in the decoder's store (records are framed with it).
const INLINE_ID: u32 = 0;
/// Rows the decoder collects before a batch is flushed.
const DECODER_BATCH: usize = 1 << 16;

fn config_error(message: impl Into<String>) -> ConnectorError {
    ConnectorError::Config(message.into())
}

/// How a table's Avro records are framed.
#[derive(Debug, Clone)]
pub enum AvroFraming {
    /// Confluent wire format: magic byte and schema id before each body.
    Confluent,
    /// Bodies only, written with this schema (JSON).
    Raw(String),
}

impl AvroFraming {
    /// The framing `spec` asks for; `registry` says whether the connection has one.
    pub fn of(spec: &FormatSpec, registry: bool) -> Result<Self> {
        let inline = spec.options.get("avro.schema").cloned();
        let confluent = match spec.options.get("avro.confluent_schema_registry") {
            Some(v) => match v.to_ascii_lowercase().as_str() {
                "true" => true,
                "false" => false,
                _ => {
                    return Err(ConnectorError::InvalidValue {
                        connector: "avro".into(),
                        key: "avro.confluent_schema_registry".into(),
                        value: v.clone(),
                        expected: "true or false".into(),
                    });
                }
            },
            None => registry && inline.is_none(),
        };
        if confluent {
            return Ok(AvroFraming::Confluent);
        }
        match inline {
            Some(schema) => {
                serde_json::from_str::<Value>(&schema).map_err(|e| {
                    ConnectorError::InvalidValue {
                        connector: "avro".into(),
                        key: "avro.schema".into(),
                        value: schema.chars().take(60).collect(),
                        expected: format!("an Avro schema in JSON ({e})"),
                    }
                })?;
                Ok(AvroFraming::Raw(schema))
            }
            None => Ok(AvroFraming::Raw(String::new())),
        }
    }
}

/// A Confluent-compatible schema registry (`GET /schemas/ids/{id}`,
/// `POST /subjects/{subject}/versions`, `GET /subjects/{subject}/versions/latest`).
#[derive(Debug, Clone)]
pub struct SchemaRegistry {
    endpoint: String,
    auth: Option<(String, String)>,
    client: reqwest::Client,
}

impl SchemaRegistry {
    pub fn new(endpoint: &str, api_key: Option<&str>, api_secret: Option<&str>) -> Self {
        SchemaRegistry {
            endpoint: endpoint.trim_end_matches('/').to_string(),
            auth: api_key.map(|k| (k.to_string(), api_secret.unwrap_or_default().to_string())),
            client: reqwest::Client::new(),
        }
    }

    fn io(&self, what: &str, e: impl std::fmt::Display) -> ConnectorError {
        ConnectorError::Io {
            connector: "schema registry".into(),
            message: format!("{what} at {}: {e}", self.endpoint),
        }
    }

    async fn call(&self, what: &str, request: reqwest::RequestBuilder) -> Result<Option<Value>> {
        let request = match &self.auth {
            Some((user, password)) => request.basic_auth(user, Some(password)),
            None => request,
        };
        let response = request
            .timeout(std::time::Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| self.io(what, e))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let body: Value = response.json().await.map_err(|e| self.io(what, e))?;
        if !status.is_success() {
            let message = body.get("message").cloned().unwrap_or(body);
            return Err(self.io(what, format!("{status}: {message}")));
        }
        Ok(Some(body))
    }

    /// The writer schema with this id (`None`: the registry does not know it).
    pub async fn schema(&self, id: u32) -> Result<Option<String>> {
        let url = format!("{}/schemas/ids/{id}", self.endpoint);
        let body = self
            .call(&format!("reading schema {id}"), self.client.get(url))
            .await?;
        Ok(body.and_then(|b| b.get("schema")?.as_str().map(str::to_string)))
    }

    /// Register `schema` under `subject` (idempotent); its id.
    pub async fn register(&self, subject: &str, schema: &str) -> Result<u32> {
        let url = format!("{}/subjects/{subject}/versions", self.endpoint);
        let what = format!("registering the schema of subject '{subject}'");
        let request = self
            .client
            .post(url)
            .header("Content-Type", "application/vnd.schemaregistry.v1+json")
            .json(&serde_json::json!({ "schema": schema }));
        let body = self
            .call(&what, request)
            .await?
            .ok_or_else(|| self.io(&what, "not found"))?;
        body.get("id")
            .and_then(Value::as_u64)
            .and_then(|id| u32::try_from(id).ok())
            .ok_or_else(|| self.io(&what, format!("no schema id in the answer {body}")))
    }

    /// The newest schema of `subject`, if any.
    pub async fn latest(&self, subject: &str) -> Result<Option<String>> {
        let url = format!("{}/subjects/{subject}/versions/latest", self.endpoint);
        let body = self
            .call(
                &format!("reading the latest schema of subject '{subject}'"),
                self.client.get(url),
            )
            .await?;
        Ok(body.and_then(|b| b.get("schema")?.as_str().map(str::to_string)))
    }
}

/// The Arrow columns an Avro schema decodes to.
pub fn arrow_schema_of(avro_schema: &str) -> Result<SchemaRef> {
    let decoder = build_decoder(&BTreeMap::from([(INLINE_ID, avro_schema.to_string())]))
        .map_err(|e| config_error(format!("avro: cannot use the schema: {e}")))?;
    Ok(decoder.schema())
}

/// The Avro schema (JSON) written for `schema`'s columns.
pub fn avro_schema_for(schema: &Schema) -> Result<String> {
    AvroSchema::try_from(schema)
        .map(|s| s.json_string)
        .map_err(|e| config_error(format!("avro: cannot write these columns: {e}")))
}

fn build_decoder(schemas: &BTreeMap<u32, String>) -> std::result::Result<Decoder, String> {
    let mut store = SchemaStore::new_with_type(FingerprintAlgorithm::Id);
    for (id, schema) in schemas {
        store
            .set(Fingerprint::Id(*id), AvroSchema::new(schema.clone()))
            .map_err(|e| format!("schema {id}: {e}"))?;
    }
    ReaderBuilder::new()
        .with_writer_schema_store(store)
        .with_batch_size(DECODER_BATCH)
        .build_decoder()
        .map_err(|e| e.to_string())
}

struct DecoderState {
    /// Writer schemas by id.
    schemas: BTreeMap<u32, String>,
    /// Rebuilt when schemas are added or a decode fails midway.
    decoder: Option<Decoder>,
    /// Framed records of the batch being decoded (raw datums get a prefix here).
    scratch: Vec<u8>,
}

/// Decodes Avro records into the table's columns.
pub(crate) struct AvroDecoder {
    schema: SchemaRef,
    raw: bool,
    state: Mutex<DecoderState>,
}

impl AvroDecoder {
    pub(crate) fn new(spec: &FormatSpec, schema: SchemaRef, registry: bool) -> Result<Self> {
        let framing = AvroFraming::of(spec, registry)?;
        let mut schemas = BTreeMap::new();
        let raw = match framing {
            AvroFraming::Confluent => false,
            AvroFraming::Raw(inline) if inline.is_empty() => {
                return Err(config_error(
                    "avro: reading Avro needs the writer schema: set 'avro.schema', or use a connection profile with a schema registry (avro.confluent_schema_registry = 'true')",
                ));
            }
            AvroFraming::Raw(inline) => {
                arrow_schema_of(&inline)?;
                schemas.insert(INLINE_ID, inline);
                true
            }
        };
        Ok(AvroDecoder {
            schema,
            raw,
            state: Mutex::new(DecoderState {
                schemas,
                decoder: None,
                scratch: Vec::new(),
            }),
        })
    }

    fn state(&self) -> MutexGuard<'_, DecoderState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A decoded batch with the table's columns, matched by name.
    fn conform(&self, batch: &RecordBatch) -> std::result::Result<RecordBatch, String> {
        let written = batch.schema();
        let columns = self
            .schema
            .fields()
            .iter()
            .map(|field| {
                let found = written
                    .fields()
                    .iter()
                    .position(|f| f.name().eq_ignore_ascii_case(field.name()));
                match found {
                    Some(i) if batch.column(i).data_type() == field.data_type() => {
                        Ok(batch.column(i).clone())
                    }
                    Some(i) => cast(batch.column(i), field.data_type()).map_err(|e| {
                        format!("field '{}' does not fit column type: {e}", field.name())
                    }),
                    None if field.is_nullable() => {
                        Ok(new_null_array(field.data_type(), batch.num_rows()))
                    }
                    None => Err(format!(
                        "the record has no field '{}' (and the column is NOT NULL)",
                        field.name()
                    )),
                }
            })
            .collect::<std::result::Result<Vec<ArrayRef>, String>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        RecordBatch::try_new_with_options(self.schema.clone(), columns, &options)
            .map_err(|e| e.to_string())
    }

    fn decode_framed(
        &self,
        state: &mut DecoderState,
        rows: usize,
    ) -> std::result::Result<RecordBatch, String> {
        if state.decoder.is_none() {
            if state.schemas.is_empty() {
                return Err("no writer schema is known for these records".into());
            }
            state.decoder = Some(build_decoder(&state.schemas)?);
        }
        let DecoderState {
            decoder, scratch, ..
        } = state;
        let Some(decoder) = decoder.as_mut() else {
            return Err("no decoder".into());
        };
        let mut batches = Vec::new();
        let mut position = 0;
        while position < scratch.len() {
            let consumed = decoder
                .decode(&scratch[position..])
                .map_err(|e| e.to_string())?;
            position += consumed;
            let flushed = decoder.flush().map_err(|e| e.to_string())?;
            let progressed = flushed.is_some();
            if let Some(batch) = flushed {
                batches.push(self.conform(&batch)?);
            }
            if consumed == 0 && !progressed {
                return Err("the record is truncated or not Avro".into());
            }
        }
        let decoded: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if decoded != rows {
            return Err(format!("{rows} records held {decoded} Avro rows"));
        }
        match batches.len() {
            1 => Ok(batches.remove(0)),
            _ => concat_batches(&self.schema, &batches).map_err(|e| e.to_string()),
        }
    }
}

impl BatchDecoder for AvroDecoder {
    fn decode(&self, records: &[&[u8]]) -> std::result::Result<RecordBatch, String> {
        let mut state = self.state();
        state.scratch.clear();
        for record in records {
            if self.raw {
                state.scratch.push(0);
                state.scratch.extend_from_slice(&INLINE_ID.to_be_bytes());
            } else if record.first() != Some(&0) || record.len() < 5 {
                return Err(
                    "not in the Confluent wire format (no magic byte 0 and schema id)".into(),
                );
            }
            state.scratch.extend_from_slice(record);
        }
        let result = self.decode_framed(&mut state, records.len());
        if result.is_err() {
            // A failed decode may leave a half-read record behind.
            state.decoder = None;
        }
        result
    }

    fn missing_schemas(&self, records: &[&[u8]]) -> Vec<u32> {
        if self.raw {
            return Vec::new();
        }
        let state = self.state();
        let mut missing: Vec<u32> = records
            .iter()
            .filter(|r| r.len() >= 5 && r[0] == 0)
            .map(|r| u32::from_be_bytes([r[1], r[2], r[3], r[4]]))
            .filter(|id| !state.schemas.contains_key(id))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        missing
    }

    fn add_schema(&self, id: u32, schema: String) {
        let mut state = self.state();
        state.schemas.insert(id, schema);
        state.decoder = None;
    }
}

/// Encodes rows as Avro records (raw datums, or Confluent-framed once a schema id is set).
pub(crate) struct AvroEncoder {
    encoder: Mutex<arrow_avro::writer::Encoder>,
    /// The writer schema (JSON), as registered.
    pub(crate) schema_json: String,
    arrow_schema: Schema,
}

impl std::fmt::Debug for AvroEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AvroEncoder").finish_non_exhaustive()
    }
}

impl AvroEncoder {
    /// Raw datums of `schema`'s columns (or the inline `avro.schema`).
    pub(crate) fn new(spec: &FormatSpec, schema: &SchemaRef) -> Result<Self> {
        let schema_json = match spec.options.get("avro.schema") {
            Some(inline) => inline.clone(),
            None => avro_schema_for(schema)?,
        };
        let mut metadata = schema.metadata().clone();
        metadata.insert(
            arrow_avro::schema::SCHEMA_METADATA_KEY.to_string(),
            schema_json.clone(),
        );
        let arrow_schema = Schema::new_with_metadata(schema.fields().clone(), metadata);
        let encoder = arrow_avro::writer::WriterBuilder::new(arrow_schema.clone())
            .build_encoder::<arrow_avro::writer::format::AvroBinaryFormat>()
            .map_err(|e| config_error(format!("avro: cannot write these columns: {e}")))?;
        Ok(AvroEncoder {
            encoder: Mutex::new(encoder),
            schema_json,
            arrow_schema,
        })
    }

    /// The same encoder writing the Confluent wire format with schema `id`.
    pub(crate) fn with_schema_id(&self, id: u32) -> Result<Self> {
        let encoder = arrow_avro::writer::WriterBuilder::new(self.arrow_schema.clone())
            .with_fingerprint_strategy(arrow_avro::schema::FingerprintStrategy::Id(id))
            .build_encoder::<arrow_avro::writer::format::AvroSoeFormat>()
            .map_err(|e| config_error(format!("avro: cannot write these columns: {e}")))?;
        Ok(AvroEncoder {
            encoder: Mutex::new(encoder),
            schema_json: self.schema_json.clone(),
            arrow_schema: self.arrow_schema.clone(),
        })
    }

    /// Append each row's record to `out` and its range to `ranges`.
    pub(crate) fn encode_records(
        &self,
        batch: &RecordBatch,
        out: &mut Vec<u8>,
        ranges: &mut Vec<std::ops::Range<usize>>,
    ) -> Result<()> {
        let mut encoder = self.encoder.lock().unwrap_or_else(|p| p.into_inner());
        // The writer schema carries the Avro schema in its metadata; the batch's columns
        // are the same.
        let batch = RecordBatch::try_new(
            Arc::new(self.arrow_schema.clone()),
            batch.columns().to_vec(),
        )?;
        encoder
            .encode(&batch)
            .map_err(|e| config_error(format!("avro: cannot encode a row: {e}")))?;
        let rows = encoder.flush();
        let base = out.len();
        out.extend_from_slice(rows.bytes());
        for pair in rows.offsets().windows(2) {
            ranges.push(base + pair[0]..base + pair[1]);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{BadData, Format, RecordDecoder, RecordEncoder};
    use arrow::array::{BooleanArray, Float64Array, Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field};
    use std::sync::atomic::{AtomicU64, Ordering};

    fn table() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("price", DataType::Float64, true),
            Field::new("ok", DataType::Boolean, true),
        ]))
    }

    fn rows() -> RecordBatch {
        RecordBatch::try_new(
            table(),
            vec![
                Arc::new(Int64Array::from(vec![1, 2, 3])),
                Arc::new(StringArray::from(vec![Some("ann"), None, Some("cy")])),
                Arc::new(Float64Array::from(vec![Some(1.5), Some(-2.0), None])),
                Arc::new(BooleanArray::from(vec![Some(true), Some(false), None])),
            ],
        )
        .unwrap()
    }

    fn spec(options: &[(&str, &str)]) -> FormatSpec {
        FormatSpec {
            format: Some(Format::Avro),
            bad_data: BadData::Drop,
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn encode(encoder: &RecordEncoder, batch: &RecordBatch) -> Vec<Vec<u8>> {
        let (mut out, mut ranges) = (Vec::new(), Vec::new());
        encoder
            .encode_records(batch, &mut out, &mut ranges)
            .unwrap();
        ranges.into_iter().map(|r| out[r].to_vec()).collect()
    }

    fn decode(decoder: &mut RecordDecoder, records: &[Vec<u8>]) -> Option<RecordBatch> {
        let source: Arc<str> = Arc::from("test");
        for (i, r) in records.iter().enumerate() {
            decoder.push(r, &source, i as u64);
        }
        decoder.flush().unwrap()
    }

    #[test]
    fn raw_datums_round_trip_with_an_inline_schema() {
        let encoder = RecordEncoder::new(&spec(&[]), &table()).unwrap();
        let records = encode(&encoder, &rows());
        assert_eq!(records.len(), 3);
        let inline = encoder.avro_schema().unwrap().to_string();
        let read = spec(&[("avro.schema", &inline)]);
        let mut decoder = RecordDecoder::new("t", &read, table(), Default::default()).unwrap();
        assert_eq!(decode(&mut decoder, &records).unwrap(), rows());
    }

    #[test]
    fn confluent_framing_names_the_schema_and_bad_records_follow_the_policy() {
        let encoder = RecordEncoder::new(&spec(&[]), &table())
            .unwrap()
            .with_schema_id(7)
            .unwrap();
        let mut records = encode(&encoder, &rows());
        assert_eq!(&records[0][..5], &[0, 0, 0, 0, 7]);
        let avro = AvroDecoder::new(
            &spec(&[("avro.confluent_schema_registry", "true")]),
            table(),
            true,
        )
        .unwrap();
        let refs: Vec<&[u8]> = records.iter().map(Vec::as_slice).collect();
        assert_eq!(avro.missing_schemas(&refs), vec![7]);
        avro.add_schema(7, encoder.avro_schema().unwrap().to_string());
        assert!(avro.missing_schemas(&refs).is_empty());
        assert_eq!(avro.decode(&refs).unwrap(), rows());
        // Through the record decoder: a record that is not Avro is dropped and counted.
        let bad = Arc::new(AtomicU64::new(0));
        let mut decoder = RecordDecoder::new(
            "t",
            &spec(&[("avro.schema", encoder.avro_schema().unwrap())]),
            table(),
            bad.clone(),
        )
        .unwrap();
        let unframed = RecordEncoder::new(&spec(&[]), &table()).unwrap();
        records = encode(&unframed, &rows());
        records.insert(1, b"\xff\xff\xff".to_vec());
        let batch = decode(&mut decoder, &records).unwrap();
        assert_eq!(batch.num_rows(), 3);
        assert_eq!(bad.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn columns_are_matched_by_name_across_schema_versions() {
        // Written with an older schema: no `ok` field, and a field the table lacks.
        let old = Arc::new(Schema::new(vec![
            Field::new("extra", DataType::Utf8, false),
            Field::new("id", DataType::Int64, false),
        ]));
        let batch = RecordBatch::try_new(
            old.clone(),
            vec![
                Arc::new(StringArray::from(vec!["x"])),
                Arc::new(Int64Array::from(vec![9])),
            ],
        )
        .unwrap();
        let encoder = RecordEncoder::new(&spec(&[]), &old).unwrap();
        let records = encode(&encoder, &batch);
        let read = spec(&[("avro.schema", encoder.avro_schema().unwrap())]);
        let mut decoder = RecordDecoder::new("t", &read, table(), Default::default()).unwrap();
        let out = decode(&mut decoder, &records).unwrap();
        assert_eq!(
            out.column(0).as_ref(),
            &Int64Array::from(vec![9]) as &dyn arrow::array::Array
        );
        assert_eq!(out.column(3).null_count(), 1);
    }

    #[test]
    fn reading_needs_a_schema() {
        let error = AvroDecoder::new(&spec(&[]), table(), false).err().unwrap();
        assert!(error.to_string().contains("avro.schema"), "{error}");
        let error = AvroFraming::of(&spec(&[("avro.schema", "{not json")]), false).unwrap_err();
        assert!(error.to_string().contains("avro.schema"), "{error}");
    }
}

#[cfg(test)]
mod round_trip {
    use super::*;
    use crate::format::{BadData, Format, RecordDecoder, RecordEncoder};
    use arrow::array::{
        ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array,
        Float64Array, Int32Array, Int64Array, ListArray, StringArray, StructArray,
        TimestampMicrosecondArray, TimestampMillisecondArray,
    };
    use arrow::datatypes::{DataType, Field, Fields, Int64Type, TimeUnit};

    /// Every SQL type Laminar maps to Avro survives encoding and decoding unchanged.
    #[test]
    fn every_type_round_trips() {
        let point = Fields::from(vec![
            Field::new("x", DataType::Int64, true),
            Field::new("label", DataType::Utf8, true),
        ]);
        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("b", DataType::Boolean, true),
            Field::new("i", DataType::Int32, true),
            Field::new("l", DataType::Int64, true),
            Field::new("f", DataType::Float32, true),
            Field::new("d", DataType::Float64, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("bytes", DataType::Binary, true),
            Field::new("day", DataType::Date32, true),
            Field::new(
                "ts_ms",
                DataType::Timestamp(TimeUnit::Millisecond, None),
                true,
            ),
            Field::new(
                "ts_us",
                DataType::Timestamp(TimeUnit::Microsecond, None),
                true,
            ),
            Field::new(
                "ts_ns",
                DataType::Timestamp(TimeUnit::Nanosecond, None),
                true,
            ),
            Field::new("money", DataType::Decimal128(10, 2), true),
            Field::new(
                "tags",
                DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
                true,
            ),
            Field::new("point", DataType::Struct(point.clone()), true),
        ]));
        let columns: Vec<ArrayRef> = vec![
            Arc::new(BooleanArray::from(vec![Some(true), None])),
            Arc::new(Int32Array::from(vec![Some(-7), None])),
            Arc::new(Int64Array::from(vec![Some(1 << 40), None])),
            Arc::new(Float32Array::from(vec![Some(1.5), None])),
            Arc::new(Float64Array::from(vec![Some(-2.25), None])),
            Arc::new(StringArray::from(vec![Some("héllo"), None])),
            Arc::new(BinaryArray::from(vec![Some(&b"\x00\x01"[..]), None])),
            Arc::new(Date32Array::from(vec![Some(19_723), None])),
            Arc::new(TimestampMillisecondArray::from(vec![
                Some(1_700_000_000_123),
                None,
            ])),
            Arc::new(TimestampMicrosecondArray::from(vec![
                Some(1_700_000_000_123_456),
                None,
            ])),
            Arc::new(arrow::array::TimestampNanosecondArray::from(vec![
                Some(1_700_000_000_123_456_789),
                None,
            ])),
            Arc::new(
                Decimal128Array::from(vec![Some(12_345), None])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
            Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(vec![
                Some(vec![Some(1), None, Some(3)]),
                None,
            ])),
            Arc::new(StructArray::new(
                point,
                vec![
                    Arc::new(Int64Array::from(vec![Some(4), None])),
                    Arc::new(StringArray::from(vec![Some("p"), None])),
                ],
                Some(vec![true, false].into()),
            )),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        let spec = |options: &[(&str, &str)]| FormatSpec {
            format: Some(Format::Avro),
            bad_data: BadData::Fail,
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let encoder = RecordEncoder::new(&spec(&[]), &schema).unwrap();
        let (mut out, mut ranges) = (Vec::new(), Vec::new());
        encoder
            .encode_records(&batch, &mut out, &mut ranges)
            .unwrap();
        let mut decoder = RecordDecoder::new(
            "t",
            &spec(&[("avro.schema", encoder.avro_schema().unwrap())]),
            schema.clone(),
            Default::default(),
        )
        .unwrap();
        let source: Arc<str> = Arc::from("test");
        for (i, range) in ranges.iter().enumerate() {
            decoder.push(&out[range.clone()], &source, i as u64);
        }
        let back = decoder.flush().unwrap().unwrap();
        for (i, field) in schema.fields().iter().enumerate() {
            assert_eq!(
                back.column(i).as_ref(),
                batch.column(i).as_ref(),
                "column {} ({})",
                field.name(),
                field.data_type()
            );
        }
    }
}
