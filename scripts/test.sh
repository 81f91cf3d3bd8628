#!/usr/bin/env bash
# Install what the tests need, start the services, and run every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "cargo not found: install Rust from https://rustup.rs first" >&2
    exit 1
fi
bash scripts/services.sh install
bash scripts/services.sh start
trap 'bash scripts/services.sh stop' EXIT

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
bash scripts/psql-checks.sh
bash scripts/drivers.sh
bash scripts/docker-check.sh
