#!/usr/bin/env bash
# Record-format decode throughput (release build): bid-shaped rows (7 columns) encoded once,
# then decoded by Laminar's RecordDecoder in batches of 8192, as the Kafka source does
# (connectors/examples/format_decode.rs). Parquet and file-level JSON numbers come from
# scripts/bench.sh (filesystem source → blackhole).
#
# Results go to docs/benchmarks.md unless BENCH_NO_WRITE=1.
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${FORMAT_ROWS:-2000000}
cargo build --release --example format_decode -p connectors
BIN="${CARGO_TARGET_DIR:-target}/release/examples/format_decode"

rows=()
while read -r format n secs bytes; do
    rows+=("$(python3 -c "import sys; f, n, s, b = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]); print(f'| \`{f}\` | {n:,} rows, {b / 1e6:.0f} MB ({b / n:.0f} B/record) | {n / s / 1e6:.2f} M rows/s | {b / s / 1e6:.0f} MB/s |')" "$format" "$n" "$secs" "$bytes")")
done < <("$BIN" "$ROWS")

SECTION="## Record formats (scripts/bench-formats.sh)

Decode only, one core, release build: $ROWS bid rows (auction, bidder, price, channel, url,
date_time, extra) encoded once by Laminar's RecordEncoder, then pushed record by record into
RecordDecoder and flushed every 8192 records into Arrow batches (what a Kafka source does per
batch, without the broker). Avro is raw datums with the writer schema given inline (the
Confluent wire format adds 5 bytes per record and the same decoding).

| format | input | rows/s | MB/s |
|---|---|---|---|
$(printf '%s\n' "${rows[@]}")
"
echo "$SECTION"
[ "${BENCH_NO_WRITE:-0}" = 1 ] || { . scripts/bench-lib.sh; echo "$SECTION" | bench_write_section "Record formats (scripts/bench-formats.sh)"; }
