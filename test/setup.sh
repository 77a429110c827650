#!/usr/bin/env bash
# Shared set-up for test/run-tests.sh and test/run-demo.sh: install what is
# missing (Debian 12 packages), build and install the extension, and start
# the API simulator on a free loopback port.  Meant to be sourced.

set -euo pipefail

OPREC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON=/usr/bin/python3

# The APIs speak UTF-8 and the expected test output is UTF-8: make the
# throw-away cluster and psql use it whatever the caller's locale.
export LANG=C.UTF-8 LC_ALL=C.UTF-8

as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    else
        sudo "$@"
    fi
}

# Packages the build, the cluster and the tests need.
install_dependencies() {
    local packages=(make gcc pkg-config python3 curl ca-certificates
        postgresql-15 postgresql-server-dev-15 postgresql-common
        libcurl4-openssl-dev libjansson-dev libssl-dev
        python3-psycopg2 libpostgresql-jdbc-java default-jdk-headless   # test/drivers/
        odbc-postgresql python3-pyodbc)
    local missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "== installing: ${missing[*]}"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        # a package's own cluster is not wanted: tests use throw-away ones
        if [ ! -f /etc/postgresql-common/createcluster.conf ]; then
            as_root mkdir -p /etc/postgresql-common/createcluster.d
            echo "create_main_cluster = false" | as_root tee /etc/postgresql-common/createcluster.d/oprec_fdw.conf >/dev/null
        fi
        # openjdk's postinst links man pages there; slim images lack the directory
        as_root mkdir -p /usr/share/man/man1
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

build_and_install() {
    echo "== building and installing oprec_fdw"
    make -C "$OPREC_ROOT" -s clean >/dev/null
    make -C "$OPREC_ROOT" -s
    as_root make -C "$OPREC_ROOT" -s install >/dev/null
}

# What to undo when the shell exits: the simulator, and temporary files.
TEMP_FILES=()
clean_up() {
    [ -z "${SIM_PID:-}" ] || kill "$SIM_PID" 2>/dev/null || true
    [ "${#TEMP_FILES[@]}" -eq 0 ] || rm -f "${TEMP_FILES[@]}"
}
trap clean_up EXIT

# A temporary SQL file, removed when the shell exits.
temp_sql_file() {
    local file
    file="$(mktemp /tmp/oprec.XXXXXX.sql)"
    TEMP_FILES+=("$file")
    echo "$file"
}

free_port() {
    "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# Start the simulator; exports OPREC_SIM_URL.  It stops when the shell exits.
start_simulator() {
    local port
    port="$(free_port)"
    SIM_LOG="$(mktemp /tmp/oprec-sim.XXXXXX.log)"
    TEMP_FILES+=("$SIM_LOG")
    "$PYTHON" "$OPREC_ROOT/test/simulator/oprec_sim.py" --port "$port" >"$SIM_LOG" 2>&1 &
    SIM_PID=$!
    export OPREC_SIM_URL="http://127.0.0.1:$port"
    for _ in $(seq 1 100); do
        if curl -sf "$OPREC_SIM_URL/_sim/health" >/dev/null 2>&1; then
            echo "== API simulator at $OPREC_SIM_URL"
            return 0
        fi
        sleep 0.1
    done
    echo "the API simulator did not start:" >&2
    cat "$SIM_LOG" >&2
    exit 1
}
