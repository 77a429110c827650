#!/usr/bin/env bash
# Shared set-up for the suite, the demo and the benchmarks: install what is
# missing (Debian packages), build and install the extension, and start the
# API simulator on a free loopback port.  Meant to be sourced.
#
# OPREC_PG_VERSION chooses the PostgreSQL major version (default: the one
# this Debian release ships: 15 on Debian 12, 17 on 13, 18 on unstable);
# PG_CONFIG is set to its pg_config for make.

set -euo pipefail

OPREC_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON=/usr/bin/python3

# The APIs speak UTF-8 and the expected test output is UTF-8: make the
# throw-away cluster and psql use it whatever the caller's locale.
export LANG=C.UTF-8 LC_ALL=C.UTF-8

# The PostgreSQL version a Debian release ships (test/matrix.sh has the
# reverse table: which release to build a chroot of for a version).
release_pg_version() {
    case "$1" in
        bookworm) echo 15 ;;
        trixie) echo 17 ;;
        forky | sid) echo 18 ;;
        *) echo "" ;;
    esac
}

if [ -z "${OPREC_PG_VERSION:-}" ]; then
    OPREC_PG_VERSION="$(release_pg_version "$(. /etc/os-release && echo "${VERSION_CODENAME:-}")")"
    if [ -z "$OPREC_PG_VERSION" ]; then
        echo "this Debian release is not one the suite knows: set OPREC_PG_VERSION" >&2
        exit 1
    fi
fi
export OPREC_PG_VERSION
export PG_CONFIG="/usr/lib/postgresql/$OPREC_PG_VERSION/bin/pg_config"

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
        "postgresql-$OPREC_PG_VERSION" "postgresql-server-dev-$OPREC_PG_VERSION" postgresql-common
        libcurl4-openssl-dev libjansson-dev libssl-dev
        build-essential debhelper dpkg-dev postgresql-server-dev-all     # the package
        openssl nghttp2-proxy                                            # test/http2.sh
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
    # From 18 on, Debian ships the JIT provider in a package of its own
    # (recommended, so most installs have it); sql/jit_choice.sql needs the
    # JIT a DBA runs.  Looked for after the package lists are read.
    local jit="postgresql-$OPREC_PG_VERSION-jit"
    if apt-cache show "$jit" >/dev/null 2>&1 &&
        ! dpkg-query -W -f='${Status}' "$jit" 2>/dev/null | grep -q "install ok installed"; then
        echo "== installing: $jit"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$jit" >/dev/null
    fi
}

# Build (a warning is a failure: every version must build cleanly) and
# install the extension for $OPREC_PG_VERSION.
build_and_install() {
    echo "== building and installing oprec_fdw for PostgreSQL $OPREC_PG_VERSION"
    build_in_place || return 1
    as_root make -C "$OPREC_ROOT" -s install PG_CONFIG="$PG_CONFIG" >/dev/null
}

# Build the Debian package for $OPREC_PG_VERSION with dpkg-buildpackage, in
# a copy of the tree (debian/control made for the versions installed here;
# its test, the regression suite, is left to the caller), refuse compiler
# warnings, and install it with apt: the suite then runs against what the
# package installed.  The packages are kept in $OPREC_ROOT/test/results/deb.
build_package_and_install() {
    local work log debs
    echo "== building the Debian package for PostgreSQL $OPREC_PG_VERSION and installing it"
    work="$(mktemp -d /tmp/oprec-deb.XXXXXX)"
    mkdir "$work/oprec-fdw"
    tar -C "$OPREC_ROOT" --exclude=./.git --exclude=./test/results --exclude=./test/matrix-logs \
        -cf - . | tar -C "$work/oprec-fdw" -xf -
    make -C "$work/oprec-fdw" -s clean PG_CONFIG="$PG_CONFIG" >/dev/null
    log="$work/build.log"
    if ! (cd "$work/oprec-fdw" && PG_UPDATECONTROL=yes DEB_BUILD_OPTIONS=nocheck \
            dpkg-buildpackage -us -uc -b) >"$log" 2>&1; then
        tail -n 40 "$log"
        echo "dpkg-buildpackage failed" >&2
        return 1
    fi
    if grep -E '\.[ch]:[0-9]+(:[0-9]+)?: (warning|error):' "$log"; then
        echo "the package's build printed warnings" >&2
        return 1
    fi
    debs=("$work"/postgresql-"$OPREC_PG_VERSION"-oprec-fdw_*.deb)
    [ -f "${debs[0]}" ] || { echo "no package for PostgreSQL $OPREC_PG_VERSION was built" >&2; return 1; }
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        --reinstall "${debs[0]}" >/dev/null
    dpkg-query -W -f='== installed: ${Package} ${Version}\n' "postgresql-$OPREC_PG_VERSION-oprec-fdw"
    mkdir -p "$OPREC_ROOT/test/results/deb"
    cp "$work"/*.deb "$work"/*.buildinfo "$work"/*.changes "$OPREC_ROOT/test/results/deb/" 2>/dev/null || true
    rm -rf "$work"
}

# Build in place, without installing (objects for test/structure.py); a
# warning is a failure.
build_in_place() {
    local log
    make -C "$OPREC_ROOT" -s clean >/dev/null
    log="$(make -C "$OPREC_ROOT" -s 2>&1)" || { echo "$log"; return 1; }
    if grep -qE 'warning:|error:' <<<"$log"; then
        echo "$log"
        echo "the build printed warnings" >&2
        return 1
    fi
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
