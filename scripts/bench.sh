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

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
bench_start

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

read -r imp_events imp_secs < <(bench_run imp_bh "INSERT INTO bh_imp SELECT * FROM imp")
read -r nx_events nx_secs < <(bench_run bid_bh "INSERT INTO bh_bid SELECT bid.auction, bid.bidder, bid.price, bid.channel, bid.url, bid.datetime, bid.extra FROM nx WHERE event_type = 2")
# Files for the decode runs, written by the engine itself (not measured).
bench_run mk_json "INSERT INTO bids_json_out SELECT bid.auction, bid.bidder, bid.price, bid.channel, bid.url, bid.datetime, bid.extra FROM nx_files WHERE event_type = 2" >/dev/null
bench_run mk_pq "INSERT INTO bids_pq_out SELECT * FROM bids_json" >/dev/null
read -r json_rows json_secs < <(bench_run json_bh "INSERT INTO bh_bid SELECT * FROM bids_json")
read -r pq_rows pq_secs < <(bench_run pq_bh "INSERT INTO bh_bid SELECT * FROM bids_pq")
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
    bench_write_section "Spine (scripts/bench.sh)" <<MD
## Spine (scripts/bench.sh)

Measured $(date +%F) on $(nproc) cores, release build, one pipeline at a time, parallelism 1
(each pipeline runs on one core), bounded generators at unlimited rate into \`blackhole\`.

| pipeline | result |
|---|---|
| \`INSERT INTO bh SELECT * FROM impulse\` | $IMP |
| \`INSERT INTO bh SELECT bid.* FROM nexmark WHERE event_type = 2\` (events counted at the source) | $NX |
| JSON decode: filesystem source (NDJSON bids, 7 columns) → blackhole | $JSON |
| Parquet decode: filesystem source (zstd Parquet bids, 7 columns) → blackhole | $PQ |

Peak RSS of the server over all runs: $((rss_kb / 1024)) MiB.
MD
fi
