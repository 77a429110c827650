#!/usr/bin/env bash
# oprec_fdw against a well-written Python asyncio client (bench/peer_asyncio.py:
# aiohttp, the requests the API reference describes, the same rows COPYed
# into a table, one commit),
# side by side on the API simulator: new and reused connections, 8 and 64
# requests in flight, 30 and 100 ms latency with the quota opened, the
# simulator's normal accept queue and its small one (listen backlog 5).
# Prints one table and a legend; asserts nothing.
#
#   bench/new_connection.sh
#   BENCH_QUICK=1 bench/new_connection.sh        one latency, one scenario
#
# Other knobs (see bench/new_connection.py): BENCH_LATENCIES, BENCH_SCENARIOS,
# BENCH_IN_FLIGHT, BENCH_CONNECTIONS, BENCH_QUEUES, BENCH_REPS.

set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../test/setup.sh"

install_dependencies
if ! dpkg-query -W -f='${Status}' python3-aiohttp 2>/dev/null | grep -q "install ok installed"; then
    echo "== installing: python3-aiohttp"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        python3-aiohttp >/dev/null
fi
build_and_install
start_simulator

export BENCH_SIM_PID="$SIM_PID"
# -t: the throw-away cluster in a temporary directory, even as root (a
# cluster 15/regress of another run stays untouched)
pg_virtualenv -t -v "$OPREC_PG_VERSION" -o shared_preload_libraries=oprec_fdw \
    "$PYTHON" "$OPREC_ROOT/bench/new_connection.py"
