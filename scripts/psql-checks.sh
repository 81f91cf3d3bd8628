#!/usr/bin/env bash
# Drive the real `laminar` binary with the real psql and curl, as a new user would:
# --help, quick start statements, FETCH_COUNT streaming, Ctrl-C cancel (SQLSTATE 57014),
# COPY TO STDOUT / \copy, the \d family, \x, \timing, tab completion, TLS and passwords,
# pipelines surviving a restart, REST with a bearer token.
set -euo pipefail
cd "$(dirname "$0")/.."

# The test build already made the binary with the same features: reuse it.
cargo test --workspace --no-run --quiet 2>/dev/null || cargo build --bin laminar
BIN="${CARGO_TARGET_DIR:-target}/debug/laminar"
WORK=$(mktemp -d)
PG_PORT=${PSQL_CHECK_PG_PORT:-16875}
HTTP_PORT=${PSQL_CHECK_HTTP_PORT:-18000}
export LAMINAR_API_TOKEN=check-token
SERVER_PID=""

cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

fail() { echo "psql-checks: FAIL: $*" >&2; echo "--- server log" >&2; tail -30 "$WORK/server.log" >&2; exit 1; }

start_server() {
    require_free_ports "$PG_PORT" "$HTTP_PORT"
    # One partition, so rows come in counter order whatever the machine's cores (the
    # default parallelism).
    "$BIN" --pg-addr "127.0.0.1:$PG_PORT" --http-addr "127.0.0.1:$HTTP_PORT" --data-dir "$WORK/data" \
        --parallelism 1 >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 1 100); do
        curl -sf "http://127.0.0.1:$HTTP_PORT/v1/ping" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail "server did not start"
}

# shellcheck source=scripts/server-lib.sh
source scripts/server-lib.sh

PSQL=(psql -X -h 127.0.0.1 -p "$PG_PORT" -U laminar -d laminar -v ON_ERROR_STOP=1)

"$BIN" --help | grep -q -- "--pg-addr" || fail "--help does not document --pg-addr"
"$BIN" --help | grep -q "LAMINAR_API_TOKEN" || fail "--help does not document LAMINAR_API_TOKEN"

start_server

out=$("${PSQL[@]}" -At <<'SQL'
CREATE TABLE ticks WITH (connector = 'impulse', event_rate = '1000', message_count = '5000');
SELECT counter FROM ticks WHERE counter % 2 = 0 LIMIT 5;
SQL
)
[ "$out" = "$(printf 'CREATE TABLE\n0\n2\n4\n6\n8')" ] || fail "quick start output: $out"

# FETCH_COUNT makes psql use a cursor: rows of an endless query arrive in pages.
out=$(timeout 20 "${PSQL[@]}" -At -c '\set FETCH_COUNT 2' -c "SELECT counter FROM ticks LIMIT 5" )
[ "$out" = "$(printf '0\n1\n2\n3\n4')" ] || fail "FETCH_COUNT output: $out"

# Ctrl-C on an endless query: psql sends a CancelRequest, the server answers 57014.
"${PSQL[@]}" -c "CREATE TABLE endless WITH (connector = 'impulse', event_rate = '50')" >/dev/null
( "${PSQL[@]}" -v VERBOSITY=verbose -c "SELECT counter FROM endless" >"$WORK/cancel.out" 2>&1 || true ) &
PSQL_PID=$!
sleep 1.5
pkill -INT -f "SELECT counter FROM endless" || true
wait "$PSQL_PID" || true
grep -q "57014" "$WORK/cancel.out" || fail "cancel did not report 57014: $(cat "$WORK/cancel.out")"

# COPY ... TO STDOUT and psql's \copy export (CSV with a header, text with NULLs).
"${PSQL[@]}" -q -c "CREATE TABLE five WITH (connector = 'impulse', event_rate = '1000', message_count = '5')" >/dev/null
"${PSQL[@]}" -c "\copy (SELECT counter, 'x,y' AS s FROM five WHERE counter > 2) TO '$WORK/out.csv' csv header" >/dev/null \
    || fail "\\copy failed"
[ "$(cat "$WORK/out.csv")" = "$(printf 'counter,s\n3,"x,y"\n4,"x,y"')" ] || fail "\\copy wrote: $(cat "$WORK/out.csv")"
copied=$("${PSQL[@]}" -c "COPY (SELECT counter, NULL AS n FROM five WHERE counter < 2) TO STDOUT")
[ "$copied" = "$(printf '0\t\\N\n1\t\\N')" ] || fail "COPY TO STDOUT gave: $copied"

# A pipeline keeps running across a restart.
"${PSQL[@]}" -q >/dev/null <<'SQL'
CREATE TABLE bh (counter BIGINT) WITH (connector = 'blackhole', type = 'sink');
CREATE PIPELINE copy AS INSERT INTO bh SELECT counter FROM endless;
SQL
stop_server
start_server
state=$("${PSQL[@]}" -At -c "SHOW PIPELINES" | cut -d'|' -f2,3)
[ "$state" = "copy|Running" ] || fail "pipeline after restart: $state"

# REST shares the catalog and checks the token.
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP_PORT/v1/connection_tables")
[ "$code" = "401" ] || fail "REST without token answered $code"
curl -sf -H "Authorization: Bearer $LAMINAR_API_TOKEN" "http://127.0.0.1:$HTTP_PORT/v1/connection_tables" \
    | grep -q '"name":"endless"' || fail "REST does not list the SQL table"

# psql's describe commands read pg_catalog.
"${PSQL[@]}" -q -c "CREATE VIEW evens AS SELECT counter FROM endless WHERE counter % 2 = 0" >/dev/null
out=$("${PSQL[@]}" -c '\d')
echo "$out" | grep -Eq "public \| endless +\| table" || fail "\\d does not list table endless: $out"
echo "$out" | grep -Eq "public \| evens +\| view" || fail "\\d does not list view evens: $out"
out=$("${PSQL[@]}" -c '\dt')
echo "$out" | grep -q "endless" && ! echo "$out" | grep -q "evens" || fail "\\dt: $out"
out=$("${PSQL[@]}" -c '\dv')
echo "$out" | grep -q "evens" && ! echo "$out" | grep -q "endless" || fail "\\dv: $out"
out=$("${PSQL[@]}" -c '\d endless')
echo "$out" | grep -Eq "counter +\| bigint" || fail "\\d endless: $out"
out=$("${PSQL[@]}" -c '\d+ endless')
echo "$out" | grep -Eq "counter +\| bigint .*\| plain" || fail "\\d+ endless: $out"
out=$("${PSQL[@]}" -c '\l')
echo "$out" | grep -Eq "^ laminar +\|" || fail "\\l: $out"
out=$("${PSQL[@]}" -c '\dn')
echo "$out" | grep -Eq "^ public +\|" || fail "\\dn: $out"
"${PSQL[@]}" -c '\df' >/dev/null || fail "\\df failed"
out=$("${PSQL[@]}" -c '\x' -c 'SELECT counter, counter * 2 AS twice FROM five WHERE counter = 3')
echo "$out" | grep -Eq "^twice +\| 6" || fail "\\x: $out"
out=$("${PSQL[@]}" -c '\timing on' -c 'SELECT 1')
echo "$out" | grep -q "^Time: " || fail "\\timing: $out"
# Tab completion runs catalog queries: completing a table name shows it.
out=$(python3 - "$PG_PORT" <<'PY'
import os, pty, select, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.environ["TERM"] = "dumb"
    os.execvp("psql", ["psql", "-X", "-h", "127.0.0.1", "-p", sys.argv[1], "-U", "laminar", "-d", "laminar"])
out = b""
def drain(seconds):
    global out
    end = time.time() + seconds
    while time.time() < end:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                out += os.read(fd, 4096)
            except OSError:
                return
drain(1.5)
os.write(fd, b"SELECT * FROM endl\t")
drain(1.5)
os.write(fd, b"\x03\\q\n")
drain(0.5)
print(out.decode(errors="replace"))
PY
)
echo "$out" | grep -q "SELECT \* FROM endless" || fail "tab completion did not complete 'endless': $out"

stop_server

# Security: TLS and SCRAM-SHA-256 passwords (test certificate from server/tests/fixtures).
TLS_DIR=server/tests/fixtures/tls
LAMINAR_PG_USER=alice LAMINAR_PG_PASSWORD=s3cret "$BIN" --pg-addr "127.0.0.1:$PG_PORT" \
    --http-addr "127.0.0.1:$HTTP_PORT" --data-dir "$WORK/data-tls" \
    --tls-cert "$TLS_DIR/cert.pem" --tls-key "$TLS_DIR/key.pem" >>"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 100); do
    curl -sf --cacert "$TLS_DIR/ca.pem" "https://127.0.0.1:$HTTP_PORT/v1/ping" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -sf --cacert "$TLS_DIR/ca.pem" "https://127.0.0.1:$HTTP_PORT/v1/ping" >/dev/null || fail "REST over https"
conn="host=127.0.0.1 port=$PG_PORT user=alice dbname=laminar"
out=$(PGPASSWORD=s3cret psql -X "$conn sslmode=verify-full sslrootcert=$TLS_DIR/ca.pem" -c '\conninfo')
echo "$out" | grep -q "SSL connection" || fail "sslmode=verify-full: $out"
out=$(PGPASSWORD=wrong psql -X "$conn sslmode=require" -c 'SELECT 1' 2>&1 || true)
echo "$out" | grep -q 'password authentication failed for user "alice"' || fail "wrong password: $out"
stop_server
start_server
out=$(psql -X "host=127.0.0.1 port=$PG_PORT user=laminar dbname=laminar sslmode=require" -c 'SELECT 1' 2>&1 || true)
echo "$out" | grep -q "server does not support SSL" || fail "sslmode=require without TLS: $out"
stop_server
# Beyond loopback, pgwire needs users.
out=$("$BIN" --pg-addr "0.0.0.0:$PG_PORT" --http-addr "127.0.0.1:$HTTP_PORT" --data-dir "$WORK/data" 2>&1 || true)
echo "$out" | grep -q "LAMINAR_PG_PASSWORD" || fail "public pgwire without users: $out"

echo "psql-checks: ok"
