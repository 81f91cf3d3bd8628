//! Decode throughput of the record formats on this machine: bid-shaped rows (7 columns)
//! encoded once, then decoded by `RecordDecoder` in batches of 8192, as a Kafka source
//! does (scripts/bench-formats.sh writes the numbers to docs/benchmarks.md).
//!
//!   format_decode ROWS
//!
//! Prints one line per format: `format rows seconds bytes`.

use std::sync::Arc;
use std::time::Instant;

use arrow::array::{ArrayRef, Int64Array, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use connectors::format::{BadData, Format, FormatSpec, RecordDecoder, RecordEncoder};

type Error = Box<dyn std::error::Error>;

const BATCH: usize = 8192;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("auction", DataType::Int64, false),
        Field::new("bidder", DataType::Int64, false),
        Field::new("price", DataType::Int64, false),
        Field::new("channel", DataType::Utf8, false),
        Field::new("url", DataType::Utf8, false),
        Field::new(
            "date_time",
            DataType::Timestamp(TimeUnit::Nanosecond, None),
            false,
        ),
        Field::new("extra", DataType::Utf8, false),
    ]))
}

fn bids(first: i64, rows: usize) -> Result<RecordBatch, Error> {
    let ids: Vec<i64> = (first..first + rows as i64).collect();
    let text = |f: &dyn Fn(i64) -> String| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(ids.iter().map(|i| f(*i))))
    };
    Ok(RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(Int64Array::from_iter_values(
                ids.iter().map(|i| 1000 + i % 997),
            )),
            Arc::new(Int64Array::from_iter_values(
                ids.iter().map(|i| 2000 + i % 4001),
            )),
            Arc::new(Int64Array::from_iter_values(
                ids.iter().map(|i| 100 + i * 7 % 10_000),
            )),
            text(&|i| ["apple", "google", "facebook", "baidu"][(i % 4) as usize].to_string()),
            text(&|i| format!("https://www.nexmark.com/item/{}", i % 1000)),
            Arc::new(TimestampNanosecondArray::from_iter_values(
                ids.iter()
                    .map(|i| 1_700_000_000_000_000_000 + i * 1_000_000),
            )),
            text(&|i| format!("extra-{}", i % 100)),
        ],
    )?)
}

fn spec(format: Format, options: &[(&str, String)]) -> FormatSpec {
    FormatSpec {
        format: Some(format),
        bad_data: BadData::Fail,
        options: options
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    }
}

/// Encode `rows` rows as records; returns the bytes and each record's range.
fn encode(
    encoder: &RecordEncoder,
    rows: usize,
) -> Result<(Vec<u8>, Vec<std::ops::Range<usize>>), Error> {
    let (mut bytes, mut ranges) = (Vec::new(), Vec::new());
    let mut done = 0;
    while done < rows {
        let n = BATCH.min(rows - done);
        encoder.encode_records(&bids(done as i64, n)?, &mut bytes, &mut ranges)?;
        done += n;
    }
    Ok((bytes, ranges))
}

fn decode(
    spec: &FormatSpec,
    bytes: &[u8],
    ranges: &[std::ops::Range<usize>],
) -> Result<(usize, f64), Error> {
    let mut decoder = RecordDecoder::new("bench", spec, schema(), Default::default())?;
    let source: Arc<str> = Arc::from("bench");
    let start = Instant::now();
    let mut rows = 0;
    for (i, range) in ranges.iter().enumerate() {
        decoder.push(&bytes[range.clone()], &source, i as u64);
        if decoder.pending() == BATCH {
            rows += decoder.flush()?.map_or(0, |b| b.num_rows());
        }
    }
    rows += decoder.flush()?.map_or(0, |b| b.num_rows());
    Ok((rows, start.elapsed().as_secs_f64()))
}

fn main() -> Result<(), Error> {
    let rows: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(2_000_000);
    let json = spec(Format::Json, &[]);
    let (bytes, ranges) = encode(&RecordEncoder::new(&json, &schema())?, rows)?;
    let (n, secs) = decode(&json, &bytes, &ranges)?;
    println!("json {n} {secs:.3} {}", bytes.len());

    let avro_writer = RecordEncoder::new(&spec(Format::Avro, &[]), &schema())?;
    let inline = avro_writer.avro_schema().unwrap_or_default().to_string();
    let (bytes, ranges) = encode(&avro_writer, rows)?;
    let (n, secs) = decode(
        &spec(Format::Avro, &[("avro.schema", inline)]),
        &bytes,
        &ranges,
    )?;
    println!("avro {n} {secs:.3} {}", bytes.len());
    Ok(())
}
