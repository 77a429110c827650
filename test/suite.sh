#!/usr/bin/env bash
# The whole suite for one PostgreSQL version on this machine: install what
# is missing, build the extension (no warnings allowed) in place and as its
# Debian package, install the package, run the signer's unit test, the
# check of src/'s structure, of META.json and the simulator's self-check,
# start the API simulator and a throw-away cluster that preloads the
# library (as the postgres user, via pg_virtualenv), run the pg_regress
# suite, then the checks that need more than one session.  test/matrix.sh runs it on the
# host and inside the chroot of each other version.
#
#   OPREC_PG_VERSION=17 test/suite.sh     (default: this release's version)
#
# The last line counts everything: "pgN: K passed, M failed".  Exits
# non-zero on any failure.

# One block, read before it runs: editing this file meanwhile is harmless.
{
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

V="$OPREC_PG_VERSION"
install_dependencies

# The build first: "make clean" empties test/results.  The tree is built
# in place (test/structure.py reads its objects) and as the Debian package,
# which is installed: everything below runs against what it installed.
echo "== build for PostgreSQL $V, no warnings"
build_line="build: 1 passed, 0 failed"
build_in_place || build_line="build: 0 passed, 1 failed"

# pg_regress writes its results here
rm -rf "$OPREC_ROOT/test/results"
mkdir -p "$OPREC_ROOT/test/results"
checks_log="$OPREC_ROOT/test/results/checks.log"
package_line="package: 1 passed, 0 failed"
if [ "$build_line" = "build: 1 passed, 0 failed" ]; then
    build_package_and_install || package_line="package: 0 passed, 1 failed"
fi
echo "$build_line" | tee "$checks_log"
echo "$package_line" | tee -a "$checks_log"
if [ "$build_line" != "build: 1 passed, 0 failed" ] || [ "$package_line" != "package: 1 passed, 0 failed" ]; then
    echo "pg$V: 0 passed, 1 failed"
    exit 1
fi
status=0

# A check that prints its own "name: N passed, M failed" line.
run_check() {
    echo "== $1"
    shift
    "$@" 2>&1 | tee -a "$checks_log" || status=1
}

unit() {
    if make -C "$OPREC_ROOT" -s unittest; then
        echo "unit: 1 passed, 0 failed"
    else
        echo "unit: 0 passed, 1 failed"
        return 1
    fi
}
run_check "unit test of the AK/SK signer" unit

# The shape of src/ (test/structure.py): no cycle between files, no
# function longer than 80 lines, read from the objects just built.
run_check "structure of src/" "$PYTHON" "$OPREC_ROOT/test/structure.py"
run_check "PGXN META.json" "$PYTHON" "$OPREC_ROOT/test/check_meta.py"

selftest() {
    if "$PYTHON" "$OPREC_ROOT/test/simulator/selftest.py"; then
        echo "simulator: 1 passed, 0 failed"
    else
        echo "simulator: 0 passed, 1 failed"
        return 1
    fi
}
run_check "simulator self-check" selftest

start_simulator

echo "== regression tests (PostgreSQL $V, preloaded)"
regress_status=0
pg_virtualenv -v "$V" -o "max_connections=20" -o "shared_preload_libraries=oprec_fdw" \
    -o "oprec_fdw.mirror_databases=contrib_regression" -o "oprec_fdw.mirror_naptime=1" \
    make -C "$OPREC_ROOT" installcheck 2>&1 | tee "$OPREC_ROOT/test/results/run.log" || regress_status=$?
# pg_regress's lines: "test name ... ok" (15), "ok 1 - name" (16 and later)
passed=$(grep -cE '^ok [0-9]+ |^test .* \.\.\. ok ' "$OPREC_ROOT/test/results/run.log" || true)
failed=$(grep -cE '^not ok [0-9]+ |\.\.\. FAILED|failed \(ignored\)' "$OPREC_ROOT/test/results/run.log" || true)
echo "regression: $passed passed, $failed failed"
if [ "$regress_status" -ne 0 ]; then
    status=1
    [ "$failed" -gt 0 ] || failed=1
    if [ -f "$OPREC_ROOT/test/results/regression.diffs" ]; then
        echo "== regression.diffs"
        cat "$OPREC_ROOT/test/results/regression.diffs"
    fi
    echo "== simulator log (tail)"
    tail -n 30 "$SIM_LOG" || true
fi

# Checks that need more than one session's view: several postmaster
# starts, backends that die holding the shared pace, mirror refreshes that
# die, a single-user backend, a resolver that never answers, an API behind
# an HTTP/2 proxy, an extension update with objects in place, real client
# drivers.
run_check "transfers across postmaster starts" \
    pg_virtualenv -v "$V" "$OPREC_ROOT/test/restarts.sh" 5
run_check "backends that die holding the shared pace" \
    pg_virtualenv -v "$V" -o "shared_preload_libraries=oprec_fdw" "$OPREC_ROOT/test/dying_backends.sh"
run_check "mirror refreshes that die" \
    pg_virtualenv -v "$V" -o "shared_preload_libraries=oprec_fdw" "$OPREC_ROOT/test/mirror_crash.sh"
run_check "single-user backend" "$OPREC_ROOT/test/single_user.sh"
run_check "cancel during name resolution" "$OPREC_ROOT/test/dns_cancel.sh"
run_check "HTTP/2 through a TLS proxy" \
    pg_virtualenv -v "$V" -o "shared_preload_libraries=oprec_fdw" "$OPREC_ROOT/test/http2.sh"
run_check "ALTER EXTENSION UPDATE with objects in place" \
    pg_virtualenv -v "$V" -o "shared_preload_libraries=oprec_fdw" "$OPREC_ROOT/test/upgrade.sh"
run_check "client drivers: psycopg2, pgJDBC, psqlODBC" \
    pg_virtualenv -v "$V" -o "shared_preload_libraries=oprec_fdw" "$OPREC_ROOT/test/drivers/run.sh"

total_passed=$((passed + $(grep -oE '[0-9]+ passed' "$checks_log" | awk '{s += $1} END {print s + 0}')))
total_failed=$((failed + $(grep -oE '[0-9]+ failed' "$checks_log" | awk '{s += $1} END {print s + 0}')))
echo "pg$V: $total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ] || status=1
exit "$status"
}
