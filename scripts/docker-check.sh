#!/usr/bin/env bash
# Check docker/ without a Docker engine (there is none on our machines): the compose file
# parses (`docker compose config`, or docker-compose 1.x from apt), and every LAMINAR_*
# variable the Dockerfile and the compose file set is one the server reads (`laminar --help`
# lists each flag's environment twin).
#
#   bash scripts/docker-check.sh [path/to/laminar]
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${1:-${CARGO_TARGET_DIR:-target}/debug/laminar}
fail() { echo "docker-check: FAIL: $*" >&2; exit 1; }

if docker compose version >/dev/null 2>&1; then
    COMPOSE=(docker compose)
else
    command -v docker-compose >/dev/null 2>&1 || bash scripts/services.sh apt docker-compose
    COMPOSE=(docker-compose)
fi
"${COMPOSE[@]}" -f docker/docker-compose.yml config >/dev/null || fail "docker/docker-compose.yml does not parse"

[ -x "$BIN" ] || cargo build --bin laminar
help=$("$BIN" --help)
for var in $(grep -ohE 'LAMINAR_[A-Z_]+' docker/Dockerfile docker/docker-compose.yml | sort -u); do
    grep -q "env: $var" <<<"$help" || fail "$var is set in docker/ but laminar --help does not list it"
done
echo "docker-check: docker/ is valid and in step with laminar's flags"
