#!/usr/bin/env bash
# Run real Postgres client libraries against a live `laminar` server: psycopg 3, psycopg2,
# asyncpg, node-postgres (+ pg-cursor) and pgJDBC (the programs under clients/). Each one
# connects, runs simple, parameterised and prepared queries, reads every supported type (text
# and binary where the driver can), checks NULLs and SQLSTATEs, streams an endless query, stops
# or cancels it, and uses the connection again.
#
# A second, short phase restarts the server with TLS (the test certificate in
# server/tests/fixtures/tls) and a password user, and has each client log in over verified TLS
# with the password (SELECT 1) and once with a wrong password (SQLSTATE 28P01).
#
# Installs what the clients need if it is missing: a Python venv with the pinned drivers
# (${LAMINAR_CLIENTS_VENV:-$HOME/.cache/laminar-clients/venv}), the pinned npm packages in
# clients/node, and with apt: python3-venv, nodejs/npm, a JDK and the pgJDBC jar.
#
#   bash scripts/drivers.sh                 # every client
#   bash scripts/drivers.sh psycopg jdbc    # some of them (psycopg psycopg2 asyncpg node jdbc)
#   LAMINAR_BIN=path/to/laminar bash scripts/drivers.sh   # use this binary, build nothing
set -euo pipefail
cd "$(dirname "$0")/.."

ALL_CLIENTS=(psycopg psycopg2 asyncpg node jdbc)
if [ $# -gt 0 ]; then CLIENTS=("$@"); else CLIENTS=("${ALL_CLIENTS[@]}"); fi
VENV=${LAMINAR_CLIENTS_VENV:-$HOME/.cache/laminar-clients/venv}
NPM_CACHE=${LAMINAR_CLIENTS_NPM_CACHE:-$HOME/.cache/laminar-clients/npm}
JDBC_JAR=${LAMINAR_JDBC_JAR:-/usr/share/java/postgresql.jar}
PG_PORT=${DRIVERS_PG_PORT:-16975}
HTTP_PORT=${DRIVERS_HTTP_PORT:-18100}
TLS_DIR=server/tests/fixtures/tls
WORK=$(mktemp -d)
SERVER_PID=""

cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

log() { echo "drivers: $*"; }
fail() {
    echo "drivers: FAIL: $*" >&2
    if [ -f "$WORK/server.log" ]; then echo "--- server log" >&2; tail -30 "$WORK/server.log" >&2; fi
    exit 1
}

for c in "${CLIENTS[@]}"; do
    case " ${ALL_CLIENTS[*]} " in *" $c "*) ;; *) fail "unknown client '$c' (one of: ${ALL_CLIENTS[*]})" ;; esac
done
wants() { case " ${CLIENTS[*]} " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }
wants_python() { wants psycopg || wants psycopg2 || wants asyncpg; }

# ---- installs (each timed) ----

timed() {  # timed "what" command...: run an install step, print how long it took
    local what=$1 started=$SECONDS
    shift
    "$@"
    log "$what: ready in $((SECONDS - started))s"
}

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
APT_UPDATED=""
apt_install() {
    if [ -z "$APT_UPDATED" ]; then
        $SUDO apt-get update -qq || fail "apt-get update failed"
        APT_UPDATED=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
        || fail "apt-get install $* failed"
}

install_python() {
    command -v python3 >/dev/null 2>&1 || apt_install python3
    if [ ! -x "$VENV/bin/python" ]; then
        mkdir -p "$(dirname "$VENV")"
        if ! python3 -m venv "$VENV" >/dev/null 2>&1; then
            rm -rf "$VENV"
            apt_install python3-venv
            python3 -m venv "$VENV" || fail "python3 -m venv $VENV failed"
        fi
    fi
    "$VENV/bin/pip" install -q --disable-pip-version-check -r clients/python/requirements.txt \
        || fail "pip install -r clients/python/requirements.txt failed"
}

install_node() {
    if ! command -v node >/dev/null 2>&1; then
        apt_install nodejs npm
    elif ! command -v npm >/dev/null 2>&1; then
        apt_install npm
    fi
    # npm ls fails when a pinned package is missing or has another version.
    if ! (cd clients/node && npm ls --depth=0 >/dev/null 2>&1); then
        (cd clients/node && npm ci --no-audit --no-fund --loglevel=error --cache "$NPM_CACHE") \
            || fail "npm ci in clients/node failed"
    fi
}

install_jdbc() {
    # DriverTest.java is compiled with javac: a JDK, not only a JRE.
    command -v javac >/dev/null 2>&1 || apt_install default-jdk-headless
    [ -f "$JDBC_JAR" ] || apt_install libpostgresql-jdbc-java
    [ -f "$JDBC_JAR" ] || fail "no pgJDBC jar at $JDBC_JAR"
}

if wants_python; then timed "Python venv + psycopg, psycopg2, asyncpg" install_python; fi
if wants node; then timed "node + pg, pg-cursor" install_node; fi
if wants jdbc; then timed "JDK + pgJDBC" install_jdbc; fi

if wants jdbc; then
    # Compiled once: both phases run it.
    timed "DriverTest.java compiled" javac -nowarn -cp "$JDBC_JAR" -d "$WORK/jdbc" clients/jdbc/DriverTest.java \
        || fail "javac clients/jdbc/DriverTest.java failed"
fi

# ---- the server ----

if [ -n "${LAMINAR_BIN:-}" ]; then
    BIN=$LAMINAR_BIN
else
    # The test build already made the binary with the same features: reuse it.
    cargo test --workspace --no-run --quiet 2>/dev/null || cargo build --bin laminar
    BIN="${CARGO_TARGET_DIR:-target}/debug/laminar"
fi
[ -x "$BIN" ] || fail "no laminar binary at $BIN"

SERVER_ENV=()        # extra environment of the server: VAR=value ...
PING=(curl -sf "http://127.0.0.1:$HTTP_PORT/v1/ping")

SERVER_STARTS=0
start_server() {  # start_server [laminar flags...]: start it, wait until REST answers $PING
    SERVER_STARTS=$((SERVER_STARTS + 1))
    require_free_ports "$PG_PORT" "$HTTP_PORT"
    # One partition: the clients check rows in counter order, whatever the machine's cores.
    env "${SERVER_ENV[@]}" "$BIN" --pg-addr "127.0.0.1:$PG_PORT" --http-addr "127.0.0.1:$HTTP_PORT" \
        --data-dir "$WORK/data$SERVER_STARTS" --parallelism 1 "$@" >>"$WORK/server.log" 2>&1 &
    SERVER_PID=$!
    local started=""
    for _ in $(seq 1 100); do
        if "${PING[@]}" >/dev/null 2>&1; then started=1; break; fi
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$started" ] || fail "server did not start ($*)"
}

# shellcheck source=scripts/server-lib.sh
source scripts/server-lib.sh

start_server

# ---- the clients ----

# Phase 1 has no TLS and no users (a password, if set, is not asked for).
export LAMINAR_HOST=127.0.0.1 LAMINAR_PORT=$PG_PORT LAMINAR_USER=${LAMINAR_USER:-laminar} LAMINAR_SSLROOTCERT=

run_client() {  # run_client NAME [ARGS...]: each client gets 5 minutes at most
    local name=$1
    shift
    case "$name" in
        psycopg) (cd clients/python && timeout 300 "$VENV/bin/python" test_psycopg.py "$@") ;;
        psycopg2) (cd clients/python && timeout 300 "$VENV/bin/python" test_psycopg2.py "$@") ;;
        asyncpg) (cd clients/python && timeout 300 "$VENV/bin/python" test_asyncpg.py "$@") ;;
        node) (cd clients/node && timeout 300 node test_pg.js "$@") ;;
        jdbc) (cd clients/jdbc && timeout 300 java -cp "$WORK/jdbc:$JDBC_JAR" DriverTest "$@") ;;
    esac
}

RUNS=0
FAILED=()
run_clients() {  # run_clients SUFFIX [ARGS...]: every chosen client against the running server
    local suffix=$1 client started
    shift
    for client in "${CLIENTS[@]}"; do
        started=$SECONDS
        RUNS=$((RUNS + 1))
        if run_client "$client" "$@" >"$WORK/$client.log" 2>&1; then
            cat "$WORK/$client.log"
            log "$client$suffix passed ($((SECONDS - started))s)"
        else
            cat "$WORK/$client.log"
            log "$client$suffix FAILED ($((SECONDS - started))s)"
            FAILED+=("$client$suffix")
        fi
        kill -0 "$SERVER_PID" 2>/dev/null || fail "the server died while $client$suffix ran"
    done
}

run_clients ""
stop_server

# ---- phase 2: TLS and a password user ----

# REST is https now: readiness is checked against the test CA.
SERVER_ENV=(LAMINAR_PG_USER=drivers LAMINAR_PG_PASSWORD=drivers-secret)
PING=(curl -sf --cacert "$TLS_DIR/ca.pem" "https://127.0.0.1:$HTTP_PORT/v1/ping")
start_server --tls-cert "$TLS_DIR/cert.pem" --tls-key "$TLS_DIR/key.pem"
export LAMINAR_USER=drivers LAMINAR_PASSWORD=drivers-secret LAMINAR_SSLROOTCERT="$PWD/$TLS_DIR/ca.pem"
run_clients " (TLS + password)" tls-login
stop_server

passed=$((RUNS - ${#FAILED[@]}))
if [ ${#FAILED[@]} -gt 0 ]; then
    echo "drivers: $passed passed, ${#FAILED[@]} failed"
    fail "failed: ${FAILED[*]}"
fi
echo "drivers: $passed passed, 0 failed"
