#!/usr/bin/env bash
# Kafka throughput against the local broker (scripts/services.sh start), release build:
# Laminar's kafka sink and source next to raw rdkafka (connectors/examples/kafka_baseline.rs,
# the same client library without SQL or Arrow) on the same machine, in the same run.
#
#   sink:   impulse -> SELECT (4 JSON fields) -> kafka sink, KAFKA_RECORDS records
#   source: kafka source (earliest) -> blackhole, KAFKA_RECORDS records
#
# Results go to docs/benchmarks.md unless BENCH_NO_WRITE=1.
set -euo pipefail
cd "$(dirname "$0")/.."

RECORDS=${KAFKA_RECORDS:-2000000}
BROKERS=${KAFKA_BROKERS:-127.0.0.1:9092}
PG_PORT=${BENCH_PG_PORT:-26875}
HTTP_PORT=${BENCH_HTTP_PORT:-28000}
RUN="bench$$"

cargo build --release --features kafka --example kafka_baseline -p connectors
BASELINE="${CARGO_TARGET_DIR:-target}/release/examples/kafka_baseline"
# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
bench_start

topic() { python3 scripts/kafka_tool.py "$BROKERS" create "$1" "$2"; }
rate() {  # rate RECORDS SECONDS BYTES -> "records/s MB/s"
    python3 -c "import sys; r, s, b = map(float, sys.argv[1:]); print(f'{r / s / 1e6:.2f} M/s | {b / s / 1e6:.0f} MB/s')" "$@"
}

# ---- raw rdkafka
topic "$RUN-raw" 1
read -r n secs bytes < <("$BASELINE" produce "$BROKERS" "$RUN-raw" "$RECORDS")
RAW_PRODUCE=$(rate "$n" "$secs" "$bytes")
read -r n secs bytes < <("$BASELINE" consume "$BROKERS" "$RUN-raw" "$RECORDS")
RAW_CONSUME=$(rate "$n" "$secs" "$bytes")
RECORD_BYTES=$((bytes / n))

# ---- Laminar sink: the same record shape, from impulse
topic "$RUN-sink" 1
"${PSQL[@]}" >/dev/null <<SQL
CREATE TABLE ticks WITH (connector = 'impulse', event_rate = '1000000000', message_count = '$RECORDS');
CREATE TABLE k_sink (id BIGINT, name TEXT, amount DOUBLE, note TEXT) WITH (connector = 'kafka', bootstrap_servers = '$BROKERS', topic = '$RUN-sink', type = 'sink', format = 'json');
SQL
read -r n secs < <(bench_run to_kafka "INSERT INTO k_sink SELECT counter, concat('customer-', counter % 1000), (counter % 500) + 0.25, 'a short note' FROM ticks")
read -r _ _ sink_bytes < <("$BASELINE" consume "$BROKERS" "$RUN-sink" "$RECORDS")
LAMINAR_SINK=$(rate "$n" "$secs" "$sink_bytes")

# ---- Laminar source: the baseline's topic, into blackhole, until every record is in
"${PSQL[@]}" >/dev/null <<SQL
CREATE TABLE k_src (id BIGINT, name TEXT, amount DOUBLE, note TEXT) WITH (connector = 'kafka', bootstrap_servers = '$BROKERS', topic = '$RUN-raw', type = 'source', format = 'json', 'source.offset' = 'earliest');
CREATE TABLE sink_bh (id BIGINT, name TEXT, amount DOUBLE, note TEXT) WITH (connector = 'blackhole');
CREATE PIPELINE from_kafka AS INSERT INTO sink_bh SELECT * FROM k_src;
SQL
started=$(date +%s.%N)
PIPELINE_ID=$(curl -sf "http://127.0.0.1:$HTTP_PORT/v1/pipelines" | python3 -c "
import json, sys
print([p for p in json.load(sys.stdin)['data'] if p['name'] == 'from_kafka'][0]['id'])")
# Polled with curl alone (a python per poll would take CPU from the server on 2 cores).
while :; do
    seen=$(curl -sf "http://127.0.0.1:$HTTP_PORT/v1/pipelines/$PIPELINE_ID/jobs" \
        | grep -o '"records_in":[0-9]*' | tail -1 | cut -d: -f2)
    [ "${seen:-0}" -ge "$RECORDS" ] && break
    sleep 0.1
done
secs=$(python3 -c "import sys, time; print(time.time() - float(sys.argv[1]))" "$started")
LAMINAR_SOURCE=$(rate "$RECORDS" "$secs" "$((RECORDS * RECORD_BYTES))")

SECTION="## Kafka (scripts/bench-kafka.sh)

$RECORDS JSON records of about $RECORD_BYTES bytes (4 fields), one partition, the local
tansu broker (in-memory storage) on the same 2-core machine, release build, parallelism 1.
Raw rdkafka is connectors/examples/kafka_baseline.rs: the same client library (and, for the
consumer, the same \`fetch.queue.backoff.ms = 1\` Laminar sets), records prebuilt as strings, no
SQL and no Arrow. Laminar's source time includes the job's start and
is measured to the moment the pipeline's input count reaches the total (polled every 0.1 s).

| path | records/s | MB/s |
|---|---|---|
| raw rdkafka producer | ${RAW_PRODUCE} |
| Laminar kafka sink (impulse → SELECT → JSON → Kafka) | ${LAMINAR_SINK} |
| raw rdkafka consumer | ${RAW_CONSUME} |
| Laminar kafka source (Kafka → JSON decode → blackhole) | ${LAMINAR_SOURCE} |
"
echo "$SECTION"
[ "${BENCH_NO_WRITE:-0}" = 1 ] || echo "$SECTION" | bench_write_section "Kafka (scripts/bench-kafka.sh)"
