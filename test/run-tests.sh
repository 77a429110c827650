#!/usr/bin/env bash
# Run the whole test suite on a fresh Debian 12 machine: install what is
# missing, build and install the extension, start the API simulator and a
# throw-away PostgreSQL cluster (as the postgres user, via pg_virtualenv),
# then run the pg_regress suite.  Exits non-zero on any failure.
#
#   test/run-tests.sh

set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

install_dependencies
build_and_install

echo "== unit test of the AK/SK signer"
make -C "$OPREC_ROOT" -s unittest

echo "== simulator self-check"
"$PYTHON" "$OPREC_ROOT/test/simulator/selftest.py"

start_simulator

# pg_regress writes its results here; the cluster runs as postgres
rm -rf "$OPREC_ROOT/test/results"
mkdir -p "$OPREC_ROOT/test/results"

echo "== regression tests"
status=0
pg_virtualenv -v 15 -o "max_connections=20" -o "shared_preload_libraries=oprec_fdw" \
    make -C "$OPREC_ROOT" installcheck 2>&1 | tee "$OPREC_ROOT/test/results/run.log" || status=$?
passed=$(grep -cE '^(ok|test) .* ok ' "$OPREC_ROOT/test/results/run.log" || true)
failed=$(grep -cE 'FAILED|failed \(ignored\)' "$OPREC_ROOT/test/results/run.log" || true)
echo "regression: $passed passed, $failed failed"

if [ "$status" -ne 0 ]; then
    if [ -f "$OPREC_ROOT/test/results/regression.diffs" ]; then
        echo "== regression.diffs"
        cat "$OPREC_ROOT/test/results/regression.diffs"
    fi
    echo "== simulator log (tail)"
    tail -n 30 "$SIM_LOG" || true
fi

# Checks that need more than one session's view: several postmaster
# starts, a single-user backend, a resolver that never answers.
checks_log="$OPREC_ROOT/test/results/checks.log"
: >"$checks_log"
run_check() {
    echo "== $1"
    shift
    "$@" 2>&1 | tee -a "$checks_log" || status=1
}
run_check "transfers across postmaster starts" \
    pg_virtualenv -v 15 "$OPREC_ROOT/test/restarts.sh" 5
run_check "single-user backend" "$OPREC_ROOT/test/single_user.sh"
run_check "cancel during name resolution" "$OPREC_ROOT/test/dns_cancel.sh"
run_check "client drivers: psycopg2, pgJDBC, psqlODBC" \
    pg_virtualenv -v 15 -o "shared_preload_libraries=oprec_fdw" "$OPREC_ROOT/test/drivers/run.sh"

total_passed=$((passed + $(grep -oE '[0-9]+ passed' "$checks_log" | awk '{s += $1} END {print s + 0}')))
total_failed=$((failed + $(grep -oE '[0-9]+ failed' "$checks_log" | awk '{s += $1} END {print s + 0}')))
echo "all: $total_passed passed, $total_failed failed"
exit "$status"
