# Shared by scripts that drive a `laminar` server they started (psql-checks.sh, drivers.sh).
# Expects SERVER_PID and a `fail` function from the sourcing script.

# Stop the server as Ctrl-C does and wait for it to exit.
stop_server() {
    kill -INT "$SERVER_PID"
    for _ in $(seq 1 100); do
        kill -0 "$SERVER_PID" 2>/dev/null || { SERVER_PID=""; return 0; }
        sleep 0.1
    done
    fail "server did not stop on SIGINT"
}

# Fail when something already listens on a port the server under test needs: readiness
# checks would talk to that other process instead.
require_free_ports() {
    local port
    for port in "$@"; do
        if (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            fail "port $port on 127.0.0.1 is already in use (another laminar?)"
        fi
    done
}
