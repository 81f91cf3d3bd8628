#!/usr/bin/env bash
# Throughput of the spine, in a release build:
#   impulse -> blackhole            (INSERT INTO bh SELECT * FROM impulse)
#   nexmark bids -> blackhole       (q0-style passthrough of the bid columns)
# Each runs a bounded source (message_count) to completion as a pipeline; events/s come from
# the job's own start and finish times. Results are printed and written to
# docs/benchmarks.md (section "Spine") unless BENCH_NO_WRITE=1.
set -euo pipefail
cd "$(dirname "$0")/.."

IMPULSE_EVENTS=${IMPULSE_EVENTS:-100000000}
NEXMARK_EVENTS=${NEXMARK_EVENTS:-20000000}
FILE_EVENTS=${FILE_EVENTS:-4000000}
PG_PORT=${BENCH_PG_PORT:-26875}
HTTP_PORT=${BENCH_HTTP_PORT:-28000}

cargo build --release --bin laminar
BIN="${CARGO_TARGET_DIR:-target}/release/laminar"
WORK=$(mktemp -d)
"$BIN" --pg-addr "127.0.0.1:$PG_PORT" --http-addr "127.0.0.1:$HTTP_PORT" --data-dir "$WORK/data" >"$WORK/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$HTTP_PORT/v1/ping" >/dev/null && break; sleep 0.1; done
PSQL=(psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U laminar -d laminar -v ON_ERROR_STOP=1)

"${PSQL[@]}" >/dev/null <<SQL
CREATE TABLE imp WITH (connector = 'impulse', event_rate = '1000000000000', message_count = '$IMPULSE_EVENTS');
CREATE TABLE nx WITH (connector = 'nexmark', event_rate = '1000000000000', message_count = '$NEXMARK_EVENTS', base_time = '1700000000000');
CREATE TABLE bh_imp (counter BIGINT, subtask_index BIGINT, timestamp TIMESTAMP) WITH (connector = 'blackhole', type = 'sink');
CREATE TABLE bh_bid (auction BIGINT, bidder BIGINT, price BIGINT, channel TEXT, url TEXT, datetime TIMESTAMP, extra TEXT) WITH (connector = 'blackhole', type = 'sink');
CREATE TABLE nx_files WITH (connector = 'nexmark', event_rate = '1000000000000', message_count = '$FILE_EVENTS', base_time = '1700000000000');
CREATE TABLE bids_json_out (auction BIGINT, bidder BIGINT, price BIGINT, channel TEXT, url TEXT, datetime TIMESTAMP, extra TEXT) WITH (connector = 'filesystem', type = 'sink', path = '$WORK/json', format = 'json');
CREATE TABLE bids_pq_out (auction BIGINT, bidder BIGINT, price BIGINT, channel TEXT, url TEXT, datetime TIMESTAMP, extra TEXT) WITH (connector = 'filesystem', type = 'sink', path = '$WORK/parquet', format = 'parquet');
CREATE TABLE bids_json (auction BIGINT, bidder BIGINT, price BIGINT, channel TEXT, url TEXT, datetime TIMESTAMP, extra TEXT) WITH (connector = 'filesystem', type = 'source', path = '$WORK/json', format = 'json');
CREATE TABLE bids_pq (auction BIGINT, bidder BIGINT, price BIGINT, channel TEXT, url TEXT, datetime TIMESTAMP, extra TEXT) WITH (connector = 'filesystem', type = 'source', path = '$WORK/parquet', format = 'parquet');
SQL

# Run one pipeline to completion; print "events seconds".
run() {
    local name=$1 sql=$2 started state
    "${PSQL[@]}" >/dev/null -c "CREATE PIPELINE $name AS $sql"
    while :; do
        state=$("${PSQL[@]}" -At -c "SHOW PIPELINES" | awk -F'|' -v n="$name" '$2 == n { print $3 }')
        [ "$state" = "Running" ] || break
        sleep 0.5
    done
    [ "$state" = "Finished" ] || { echo "pipeline $name ended $state" >&2; tail "$WORK/server.log" >&2; exit 1; }
    curl -sf "http://127.0.0.1:$HTTP_PORT/v1/pipelines" | python3 -c "
import json, sys, urllib.request
name = sys.argv[1]; port = sys.argv[2]
p = [p for p in json.load(sys.stdin)['data'] if p['name'] == name][0]
job = json.load(urllib.request.urlopen(f'http://127.0.0.1:{port}/v1/pipelines/{p[\"id\"]}/jobs'))['data'][-1]
secs = (job['finish_time'] - job['start_time']) / 1000
print(job['metrics']['records_in'], secs)
" "$name" "$HTTP_PORT"
}

read -r imp_events imp_secs < <(run imp_bh "INSERT INTO bh_imp SELECT * FROM imp")
read -r nx_events nx_secs < <(run bid_bh "INSERT INTO bh_bid SELECT bid.auction, bid.bidder, bid.price, bid.channel, bid.url, bid.datetime, bid.extra FROM nx WHERE event_type = 2")
# Files for the decode runs, written by the engine itself (not measured).
run mk_json "INSERT INTO bids_json_out SELECT bid.auction, bid.bidder, bid.price, bid.channel, bid.url, bid.datetime, bid.extra FROM nx_files WHERE event_type = 2" >/dev/null
run mk_pq "INSERT INTO bids_pq_out SELECT * FROM bids_json" >/dev/null
read -r json_rows json_secs < <(run json_bh "INSERT INTO bh_bid SELECT * FROM bids_json")
read -r pq_rows pq_secs < <(run pq_bh "INSERT INTO bh_bid SELECT * FROM bids_pq")
json_bytes=$(du -cb "$WORK"/json/*.json | tail -1 | cut -f1)
pq_bytes=$(du -cb "$WORK"/parquet/*.parquet | tail -1 | cut -f1)
rss_kb=$(awk '/VmHWM/ { print $2 }' "/proc/$PID/status")

line() { python3 -c "import sys; e, s = float(sys.argv[1]), float(sys.argv[2]); print(f'{e:,.0f} events in {s:.2f} s = {e / s / 1e6:.2f} M events/s')" "$1" "$2"; }
IMP=$(line "$imp_events" "$imp_secs")
NX=$(line "$nx_events" "$nx_secs")
decode() { python3 -c "import sys; r, s, b = map(float, sys.argv[1:]); print(f'{r:,.0f} rows, {b / 1e6:,.0f} MB in {s:.2f} s = {r / s / 1e6:.2f} M rows/s, {b / s / 1e6:.0f} MB/s')" "$1" "$2" "$3"; }
JSON=$(decode "$json_rows" "$json_secs" "$json_bytes")
PQ=$(decode "$pq_rows" "$pq_secs" "$pq_bytes")
echo "impulse -> blackhole:       $IMP"
echo "nexmark bids -> blackhole:  $NX"
echo "JSON file -> blackhole:     $JSON"
echo "Parquet file -> blackhole:  $PQ"
echo "peak RSS: $((rss_kb / 1024)) MiB"

if [ "${BENCH_NO_WRITE:-0}" != "1" ]; then
    python3 - "$IMP" "$NX" "$((rss_kb / 1024))" "$(nproc)" "$JSON" "$PQ" <<'PY'
import re, sys, datetime, pathlib
imp, nx, rss, cores, json_line, pq_line = sys.argv[1:]
path = pathlib.Path("docs/benchmarks.md")
text = path.read_text() if path.exists() else "# Benchmarks\n"
section = f"""## Spine (scripts/bench.sh)

Measured {datetime.date.today()} on {cores} cores, release build, one pipeline at a time, parallelism 1
(each pipeline runs on one core), bounded generators at unlimited rate into `blackhole`.

| pipeline | result |
|---|---|
| `INSERT INTO bh SELECT * FROM impulse` | {imp} |
| `INSERT INTO bh SELECT bid.* FROM nexmark WHERE event_type = 2` (events counted at the source) | {nx} |
| JSON decode: filesystem source (NDJSON bids, 7 columns) → blackhole | {json_line} |
| Parquet decode: filesystem source (zstd Parquet bids, 7 columns) → blackhole | {pq_line} |

Peak RSS of the server over all runs: {rss} MiB.
"""
pattern = re.compile(r"## Spine \(scripts/bench.sh\).*?(?=\n## |\Z)", re.S)
text = pattern.sub(section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
path.write_text(text)
PY
fi
