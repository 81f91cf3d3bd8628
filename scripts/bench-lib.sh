# Shared by the bench scripts: start a release server, run pipelines to completion.
# Source it after setting PG_PORT and HTTP_PORT; it sets BIN, WORK, PID and PSQL.

bench_start() {
    cargo build --release --bin laminar
    BIN="${CARGO_TARGET_DIR:-target}/release/laminar"
    WORK=$(mktemp -d)
    bench_server
    trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
    PSQL=(psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U laminar -d laminar -v ON_ERROR_STOP=1)
}

# (Re)start the server on a fresh data directory.
bench_server() {
    if [ -n "${PID:-}" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$WORK/data"
    # Parallelism 1 unless BENCH_PARALLELISM says otherwise: figures are per core.
    "$BIN" --pg-addr "127.0.0.1:$PG_PORT" --http-addr "127.0.0.1:$HTTP_PORT" --data-dir "$WORK/data" \
        --parallelism "${BENCH_PARALLELISM:-1}" >"$WORK/server.log" 2>&1 &
    PID=$!
    for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$HTTP_PORT/v1/ping" >/dev/null && return 0; sleep 0.1; done
    echo "server did not start" >&2; cat "$WORK/server.log" >&2; exit 1
}

# CPU seconds (user + system) the server has used.
bench_cpu() {
    awk -v tck="$(getconf CLK_TCK)" '{ split($0, a, ") "); split(a[2], f, " "); print (f[12] + f[13]) / tck }' "/proc/$PID/stat"
}

# Run one pipeline to completion; print "events seconds" (from the job's own times).
bench_run() {
    local name=$1 sql=$2 state
    "${PSQL[@]}" >/dev/null -c "CREATE PIPELINE $name AS $sql"
    while :; do
        state=$("${PSQL[@]}" -At -c "SHOW PIPELINES" | awk -F'|' -v n="$name" '$2 == n { print $3 }')
        [ "$state" = "Running" ] || break
        sleep 0.2
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

# Replace (or append) the "## <title>" section of docs/benchmarks.md with stdin.
bench_write_section() {
    # The section is read here: python's own stdin is its script.
    BENCH_SECTION=$(cat) python3 - "$1" <<'PY'
import os, pathlib, re, sys
title = sys.argv[1]
section = os.environ["BENCH_SECTION"].rstrip() + "\n"
path = pathlib.Path("docs/benchmarks.md")
text = path.read_text() if path.exists() else "# Benchmarks\n"
pattern = re.compile(r"## " + re.escape(title) + r".*?(?=\n## |\Z)", re.S)
text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip() + "\n\n" + section
path.write_text(text)
PY
}
