#!/usr/bin/env bash
# oprec_fdw against what users do today and against the floor, on the API
# simulator at several latencies: wall time, rows/s, requests, the
# backend's peak memory, and the simulator's and the backend's CPU shares
# (so that what bounds a scan is seen).  Prints one table; asserts nothing.
#
#   bench/compare.sh [latencies_ms...]      default: 0 30 150
#
# Rows of the table, per scenario and latency:
#   oprec_fdw     the foreign table with the quota opened
#                 (requests_per_second 1000, max_concurrency 64)
#   fdw conc=1    the same with max_concurrency 1: one request at a time
#   plpython      a PL/Python function calling the API with the standard
#                 library in a loop: 7-day windows, 50 ids per request, as
#                 the API's reference describes (bench/compare.py)
#   floor         the longest request chain x latency, or the requests at
#                 1000 per second if longer: no client does better without
#                 asking for fewer pages
# then the quota-bound runs (the simulator enforcing 15 requests/s, default
# server options), and PostgreSQL's own jsonb parsing of the busy work
# item's page bodies against the backend's CPU per row reading them.

set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../test/setup.sh"

LATENCIES=("$@")
[ "${#LATENCIES[@]}" -gt 0 ] || LATENCIES=(0 30 150)

install_dependencies
if ! dpkg-query -W -f='${Status}' "postgresql-plpython3-$OPREC_PG_VERSION" 2>/dev/null | grep -q "install ok installed"; then
    echo "== installing: postgresql-plpython3-$OPREC_PG_VERSION"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "postgresql-plpython3-$OPREC_PG_VERSION" >/dev/null
fi
build_and_install
start_simulator

export BENCH_LATENCIES="${LATENCIES[*]}" BENCH_SIM_PID="$SIM_PID"
pg_virtualenv -v "$OPREC_PG_VERSION" "$PYTHON" "$OPREC_ROOT/bench/compare.py"
