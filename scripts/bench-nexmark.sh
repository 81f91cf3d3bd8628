#!/usr/bin/env bash
# Nexmark and the side-by-side with Apache Flink, in a release build.
#
# 1. Nexmark queries from the in-process generator into blackhole, NEXMARK_EVENTS events
#    each, parallelism 1: events/s (= per core), CPU µs per event, peak memory (the server
#    is restarted per query, so each peak is that query's); then again at parallelism
#    NEXMARK_PARALLELISM (default: the cores), with the speed-up.
# 2. Flink's three workloads over bid-shaped rows (../shared/bench/flink_bench.py:
#    pass-through, filter, 10 s tumbling count/sum per auction), FLINK_EVENTS rows each, in
#    Laminar (the datagen connector with the same distributions and SQL) and in Flink
#    (pyflink, local mini-cluster, parallelism 1) on the same machine in the same run.
#
# Flink runs when FLINK_PYTHON points at a python with apache-flink installed, or with
# BENCH_FLINK=1, which installs it into $TMPDIR/venv-flink (about 850 MB, Java 17 needed).
# Results go to docs/benchmarks.md unless BENCH_NO_WRITE=1.
set -euo pipefail
cd "$(dirname "$0")/.."

NEXMARK_EVENTS=${NEXMARK_EVENTS:-10000000}
FLINK_EVENTS=${FLINK_EVENTS:-10000000}
PG_PORT=${BENCH_PG_PORT:-26875}
HTTP_PORT=${BENCH_HTTP_PORT:-28000}
FLINK_SCRIPT=${FLINK_SCRIPT:-../shared/bench/flink_bench.py}

# shellcheck source=scripts/bench-lib.sh
. scripts/bench-lib.sh
bench_start

NEXMARK_DDL="
CREATE TABLE datagen (WATERMARK FOR dateTime AS dateTime - INTERVAL '4' SECOND) WITH (connector = 'nexmark', event_rate = '1000000000000', event_time_rate = '1000000', message_count = '$NEXMARK_EVENTS', base_time = '1700000000000');
CREATE VIEW person AS SELECT person.id, person.name, person.emailAddress, person.creditCard, person.city, person.state, dateTime, person.extra FROM datagen WHERE event_type = 0;
CREATE VIEW auction AS SELECT auction.id, auction.itemName, auction.description, auction.initialBid, auction.reserve, dateTime, auction.expires, auction.seller, auction.category, auction.extra FROM datagen WHERE event_type = 1;
CREATE VIEW bid AS SELECT bid.auction, bid.bidder, bid.price, bid.channel, bid.url, dateTime, bid.extra FROM datagen WHERE event_type = 2;
"

# name | blackhole columns | query
NEXMARK_QUERIES=(
"q0|auction BIGINT, bidder BIGINT, price BIGINT, dateTime TIMESTAMP, extra TEXT|SELECT auction, bidder, price, dateTime, extra FROM bid"
"q1|auction BIGINT, bidder BIGINT, price DOUBLE, dateTime TIMESTAMP, extra TEXT|SELECT auction, bidder, 0.908 * price, dateTime, extra FROM bid"
"q2|auction BIGINT, price BIGINT|SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0"
"q5|auction BIGINT, num BIGINT|SELECT AuctionBids.auction, AuctionBids.num FROM (SELECT auction, count(*) AS num, hop(INTERVAL '2' SECOND, INTERVAL '10' SECOND) AS window FROM bid GROUP BY auction, window) AS AuctionBids JOIN (SELECT max(num) AS maxn, window FROM (SELECT count(*) AS num, hop(INTERVAL '2' SECOND, INTERVAL '10' SECOND) AS window FROM bid GROUP BY auction, window) GROUP BY window) AS MaxBids ON AuctionBids.window = MaxBids.window AND AuctionBids.num >= MaxBids.maxn"
"q7|auction BIGINT, price BIGINT, bidder BIGINT|SELECT B.auction, B.price, B.bidder FROM (SELECT auction, price, bidder, tumble(INTERVAL '10' SECOND) AS window FROM bid GROUP BY auction, price, bidder, window) B JOIN (SELECT max(price) AS maxprice, tumble(INTERVAL '10' SECOND) AS window FROM bid GROUP BY window) B1 ON B.window = B1.window AND B.price = B1.maxprice"
"q8|id BIGINT, name TEXT, starttime TIMESTAMP|SELECT P.id, P.name, P.window.start FROM (SELECT id, name, tumble(INTERVAL '10' SECOND) AS window FROM person GROUP BY id, name, window) P JOIN (SELECT seller, tumble(INTERVAL '10' SECOND) AS window FROM auction GROUP BY seller, window) A ON P.id = A.seller AND P.window = A.window"
"q11|bidder BIGINT, bid_count BIGINT, starttime TIMESTAMP, endtime TIMESTAMP|SELECT bidder, bid_count, window.start, window.end FROM (SELECT bidder, count(*) AS bid_count, session(INTERVAL '10' SECOND) AS window FROM bid GROUP BY bidder, window)"
"q14|auction BIGINT, bidder BIGINT, price DOUBLE, bidTimeType TEXT, dateTime TIMESTAMP, extra TEXT, c_counts BIGINT|SELECT auction, bidder, 0.908 * price as price, CASE WHEN HOUR(dateTime) >= 8 AND HOUR(dateTime) <= 18 THEN 'dayTime' WHEN HOUR(dateTime) <= 6 OR HOUR(dateTime) >= 20 THEN 'nightTime' ELSE 'otherTime' END AS bidTimeType, dateTime, extra, count_char(extra, 'c') AS c_counts FROM bid WHERE 0.908 * price > 1000000 AND 0.908 * price < 50000000"
"q22|auction BIGINT, bidder BIGINT, price BIGINT, channel TEXT, dir1 TEXT, dir2 TEXT, dir3 TEXT|SELECT auction, bidder, price, channel, SPLIT_INDEX(url, '/', 3) as dir1, SPLIT_INDEX(url, '/', 4) as dir2, SPLIT_INDEX(url, '/', 5) as dir3 FROM bid"
)

rate_line() { python3 -c "import sys; e, s, c = map(float, sys.argv[1:]); print(f'| {e / s / 1e6:.2f} M | {c * 1e6 / e:.2f} |')" "$@"; }

# One table row per query at BENCH_PARALLELISM, into ROWS; events/s into RATES[name@p].
declare -A RATES
nexmark_rows() {
    local entry name columns query cpu0 events secs cpu rss_kb row p=${BENCH_PARALLELISM:-1}
    ROWS=""
    for entry in "${NEXMARK_QUERIES[@]}"; do
        IFS='|' read -r name columns query <<<"$entry"
        bench_server
        "${PSQL[@]}" >/dev/null <<<"$NEXMARK_DDL CREATE TABLE bh_$name ($columns) WITH (connector = 'blackhole', type = 'sink');"
        cpu0=$(bench_cpu)
        read -r events secs < <(bench_run "$name" "INSERT INTO bh_$name $query")
        cpu=$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$cpu0" "$(bench_cpu)")
        rss_kb=$(awk '/VmHWM/ { print $2 }' "/proc/$PID/status")
        RATES[$name@$p]=$(python3 -c "import sys; print(float(sys.argv[1]) / float(sys.argv[2]))" "$events" "$secs")
        row="| $name $(rate_line "$events" "$secs" "$cpu") $((rss_kb / 1024)) MiB |"
        if [ "$p" -gt 1 ]; then
            row+=$(python3 -c "import sys; print(f' {float(sys.argv[1]) / float(sys.argv[2]):.2f}x |')" "${RATES[$name@$p]}" "${RATES[$name@1]}")
        fi
        echo "nexmark (parallelism $p) $row"
        ROWS+="$row"$'\n'
    done
}

BENCH_PARALLELISM=1
nexmark_rows
NEXMARK_ROWS=$ROWS
# The same queries in PARALLEL partitions (default: every core), with the speed-up.
PARALLEL=${NEXMARK_PARALLELISM:-$(nproc)}
PARALLEL_ROWS=""
if [ "$PARALLEL" -gt 1 ]; then
    BENCH_PARALLELISM=$PARALLEL
    nexmark_rows
    PARALLEL_ROWS=$ROWS
    BENCH_PARALLELISM=1
fi

# A lookup join (stream ⋈ static VALUES) over an unbounded datagen stream, stopped by a LIMIT
# after LOOKUP_ROWS joined rows (a bounded stream would make it DataFusion's batch hash join).
LOOKUP_ROWS=${LOOKUP_ROWS:-10000000}
LOOKUP_DDL="CREATE TABLE bid_stream (auction BIGINT, bidder BIGINT, price BIGINT, channel TEXT, url TEXT, date_time TIMESTAMP, extra TEXT) WITH (connector = 'datagen', rows_per_second = '1000000000', 'fields.auction.min' = '1000', 'fields.auction.max' = '10999', 'fields.channel.length' = '8', 'fields.url.length' = '64', 'fields.extra.length' = '16');
CREATE TABLE bh_lookup (auction BIGINT, price BIGINT, label TEXT) WITH (connector = 'blackhole', type = 'sink');"
LOOKUP_SQL="INSERT INTO bh_lookup SELECT B.auction, B.price, S.label FROM bid_stream B JOIN (VALUES (0, 'zero'), (1, 'one'), (2, 'two')) AS S(k, label) ON B.auction % 3 = S.k LIMIT $LOOKUP_ROWS"
LOOKUP_ROWS_MD=""
for p in 1 "$PARALLEL"; do
    BENCH_PARALLELISM=$p
    bench_server
    "${PSQL[@]}" >/dev/null <<<"$LOOKUP_DDL"
    cpu0=$(bench_cpu)
    read -r events secs < <(bench_run "lookup_p$p" "$LOOKUP_SQL")
    cpu=$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$cpu0" "$(bench_cpu)")
    row="| $p $(rate_line "$events" "$secs" "$cpu")"
    echo "lookup join $row"
    LOOKUP_ROWS_MD+="$row"$'\n'
    [ "$p" = "$PARALLEL" ] && break
done
BENCH_PARALLELISM=1

# The Flink workloads in Laminar: same row shape, distributions and SQL as flink_bench.py.
FLINK_DDL="CREATE TABLE bid (auction BIGINT, bidder BIGINT, price BIGINT, channel TEXT, url TEXT, date_time TIMESTAMP, extra TEXT, WATERMARK FOR date_time AS date_time - INTERVAL '1' SECOND) WITH (connector = 'datagen', number_of_rows = '$FLINK_EVENTS', rows_per_second = '1000000000', 'fields.auction.min' = '1000', 'fields.auction.max' = '10999', 'fields.bidder.min' = '1000', 'fields.bidder.max' = '100999', 'fields.price.min' = '1', 'fields.price.max' = '100000', 'fields.channel.length' = '8', 'fields.url.length' = '64', 'fields.extra.length' = '16');
CREATE TABLE sink_q0 (auction BIGINT, bidder BIGINT, price BIGINT, channel TEXT, url TEXT, date_time TIMESTAMP, extra TEXT) WITH (connector = 'blackhole', type = 'sink');
CREATE TABLE sink_filter (auction BIGINT, price BIGINT) WITH (connector = 'blackhole', type = 'sink');
CREATE TABLE sink_tumble (auction BIGINT, window_start TIMESTAMP, window_end TIMESTAMP, cnt BIGINT, sum_price BIGINT) WITH (connector = 'blackhole', type = 'sink');"
declare -A WORKLOAD=(
    [q0]="INSERT INTO sink_q0 SELECT auction, bidder, price, channel, url, date_time, extra FROM bid"
    [filter]="INSERT INTO sink_filter SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0"
    [tumble]="INSERT INTO sink_tumble SELECT auction, window.start, window.end, cnt, sum_price FROM (SELECT auction, tumble(INTERVAL '10' SECOND) AS window, count(*) AS cnt, sum(price) AS sum_price FROM bid GROUP BY auction, window)"
)

FLINK_PY=${FLINK_PYTHON:-}
if [ -z "$FLINK_PY" ] && [ "${BENCH_FLINK:-0}" = "1" ]; then
    VENV="${TMPDIR:-/tmp}/venv-flink"
    [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
    "$VENV/bin/python" -c "import pyflink" 2>/dev/null || "$VENV/bin/pip" install -q apache-flink==2.3.0
    FLINK_PY="$VENV/bin/python"
fi

SIDE_ROWS=""
for wl in q0 filter tumble; do
    bench_server
    "${PSQL[@]}" >/dev/null <<<"$FLINK_DDL"
    cpu0=$(bench_cpu)
    read -r events secs < <(bench_run "w_$wl" "${WORKLOAD[$wl]}")
    cpu=$(python3 -c "import sys; print(float(sys.argv[2]) - float(sys.argv[1]))" "$cpu0" "$(bench_cpu)")
    lam_rate=$(python3 -c "import sys; print(float(sys.argv[1]) / float(sys.argv[2]))" "$events" "$secs")
    lam_us=$(python3 -c "import sys; print(float(sys.argv[1]) * 1e6 / float(sys.argv[2]))" "$cpu" "$events")
    if [ -n "$FLINK_PY" ]; then
        result=$("$FLINK_PY" "$FLINK_SCRIPT" 1 "$FLINK_EVENTS" "$wl" 2>/dev/null | grep '^RESULT' | tail -1)
        flink_rate=$(sed -E 's/.*rate=([0-9,]+).*/\1/; s/,//g' <<<"$result")
        flink_us=$(sed -E 's/.*cpu_us_per_ev=([0-9.]+).*/\1/' <<<"$result")
    else
        flink_rate="" flink_us=""
    fi
    row=$(python3 - "$wl" "$lam_rate" "$lam_us" "$flink_rate" "$flink_us" <<'PY'
import sys
wl, lr, lu, fr, fu = sys.argv[1:]
lr, lu = float(lr), float(lu)
if fr:
    fr, fu = float(fr), float(fu)
    print(f"| {wl} | {lr / 1e6:.2f} M | {lu:.2f} | {fr / 1e6:.2f} M | {fu:.2f} | {lr / fr:.1f}x | {fu / lu:.1f}x |")
else:
    print(f"| {wl} | {lr / 1e6:.2f} M | {lu:.2f} | not run | | | |")
PY
)
    echo "side by side $row"
    SIDE_ROWS+="$row"$'\n'
done

if [ "${BENCH_NO_WRITE:-0}" != "1" ]; then
    bench_write_section "Nexmark (scripts/bench-nexmark.sh)" <<MD
## Nexmark (scripts/bench-nexmark.sh)

Measured $(date +%F) on $(nproc) cores, release build, parallelism 1 (one core per query),
$NEXMARK_EVENTS generated events per query (persons, auctions and bids together, 1 M events
per second of event time), into \`blackhole\`. Events/s counts every generated event; CPU is the
server's user + system time over the run; memory is the server's peak RSS for that query alone.

| query | events/s (per core) | CPU µs/event | peak RSS |
|---|---|---|---|
$NEXMARK_ROWS
MD
fi

# Written only when the parallel run happened.
if [ "${BENCH_NO_WRITE:-0}" != "1" ] && [ -n "$PARALLEL_ROWS" ]; then
    bench_write_section "Nexmark in parallel (scripts/bench-nexmark.sh)" <<MD
## Nexmark in parallel (scripts/bench-nexmark.sh)

The same queries and event counts at parallelism $PARALLEL on the same $(nproc) cores
([parallel plans](sql/parallelism.md)): sources in $PARALLEL partitions, keyed operators behind
hash exchanges, window aggregates without keys as partial aggregates per partition merged per
window, and the operators that take whole windows (q5's and q7's per-window maximum, q5's,
q7's and q8's window joins) in one partition above a window assembly. Events/s is the whole query's; the speed-up is over the
parallelism-1 run above.

| query | events/s | CPU µs/event | peak RSS | speed-up |
|---|---|---|---|---|
$PARALLEL_ROWS
MD
fi

if [ "${BENCH_NO_WRITE:-0}" != "1" ]; then
    bench_write_section "Lookup join (scripts/bench-nexmark.sh)" <<MD
## Lookup join (scripts/bench-nexmark.sh)

A stream joined with a static \`VALUES\` table (\`LookupJoinExec\`: the static side is read
first, each stream batch is matched through a hash index and not kept): an unbounded
\`datagen\` stream of bid-shaped rows, every row matching one of three static rows, into
\`blackhole\` until a \`LIMIT\` of $LOOKUP_ROWS joined rows. Events/s counts the stream's rows read.

| parallelism | rows/s | CPU µs/row |
|---|---|---|
$LOOKUP_ROWS_MD
MD
fi

# A section of its own (replacing the one before), written only when Flink ran.
if [ "${BENCH_NO_WRITE:-0}" != "1" ] && [ -n "$SIDE_ROWS" ]; then
    bench_write_section "Side by side with Apache Flink (scripts/bench-nexmark.sh)" <<MD
## Side by side with Apache Flink (scripts/bench-nexmark.sh)

The three workloads of \`../shared/bench/flink_bench.py\` over $FLINK_EVENTS bid-shaped rows
(auction U[1000, 10999], bidder U[1000, 100999], price U[1, 100000], 8/64/16-character
strings, event time = now, 1 s watermark), parallelism 1, each engine generating its own rows
(Laminar: the \`datagen\` connector with Flink's options; Flink via pyflink: its \`datagen\`
connector) into
\`blackhole\`, run one after the other on the same machine. Flink's wall time includes its
mini-cluster and job start-up; CPU µs/event is the steadier comparison.

| workload | Laminar events/s | Laminar CPU µs/event | Flink events/s | Flink CPU µs/event | speed ratio | CPU ratio |
|---|---|---|---|---|---|---|
$SIDE_ROWS
MD
fi
