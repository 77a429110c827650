#!/usr/bin/env bash
# The whole pg_regress suite with the extension built with AddressSanitizer
# and UndefinedBehaviorSanitizer, run as test/suite.sh runs it (API
# simulator, pg_virtualenv, make installcheck), then a report of every
# sanitizer finding.  Exits non-zero on a sanitizer report or a failed test.
#
#   test/sanitize.sh [--keep] [--tree DIR]
#     --keep      leave /tmp/oprec-asan (build, logs) for a look
#     --tree DIR  test the sources in DIR (e.g. a `git archive` of a commit)
#                 instead of this work tree
#
# How:
# - The extension is built with clang -fsanitize=address,undefined from a
#   snapshot of this work tree (in /tmp/oprec-asan/tree, so that nobody's
#   objects in the work tree are touched) and installed with DESTDIR into
#   /tmp/oprec-asan/destdir only: the system's installed oprec_fdw is never
#   replaced.  The throw-away cluster loads it from there through Debian's
#   extension_destdir setting (pg_virtualenv -o extension_destdir=...).
# - pg_virtualenv -t keeps the cluster in a temporary directory, so that a
#   test/suite.sh running meanwhile (its cluster N/regress lives in
#   /etc/postgresql) is not refused or disturbed; the other server options
#   are read from test/suite.sh.
# - The server runs with the ASan runtime preloaded: pg_virtualenv creates
#   the cluster with an environment file (pg_createcluster --environment)
#   holding LD_PRELOAD (the ASan runtime, then test/fuzz/asan_first.c, which
#   makes ASan initialize before the other libraries' constructors; without
#   it postgres hangs at start) and ASAN_OPTIONS:
#   detect_leaks=0 (a backend's memory contexts look like leaks),
#   abort_on_error=1, log_path=/tmp/asan/asan (one file per process).
#   UBSan reports (recoverable: the backend goes on) go to the same place.
# - Only the extension is instrumented: PostgreSQL, libcurl and jansson are
#   the system's.  ASan sees the extension's own accesses to malloc'd memory
#   (jansson values, curl buffers) and to its stack and globals; a palloc'd
#   chunk lives inside a larger malloc'd block, so an overrun within a
#   memory context block is not seen (that needs valgrind or an
#   assert-enabled server build).

# One block, read before it runs: editing this file meanwhile is harmless.
{
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WORK=/tmp/oprec-asan
ASAN_LOG_DIR=/tmp/asan
KEEP=0
SRC="$ROOT"
while [ $# -gt 0 ]; do
    case "$1" in
        --keep) KEEP=1; shift ;;
        --tree) SRC="$(cd "$2" && pwd)"; shift 2 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

export LANG=C.UTF-8 LC_ALL=C.UTF-8

[ "$(id -u)" -eq 0 ] || { echo "run as root (the cluster runs as the postgres user)" >&2; exit 2; }

# what the normal suite needs, and clang with its sanitizer runtimes
. "$ROOT/test/setup.sh"
install_dependencies
for p in clang libclang-rt-14-dev rsync; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || {
        echo "== installing: $p"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >/dev/null
    }
done

RTDIR="$(clang -print-resource-dir)/lib/linux"
ASAN_RT="$RTDIR/libclang_rt.asan-x86_64.so"
[ -f "$ASAN_RT" ] || { echo "missing $ASAN_RT" >&2; exit 2; }

# ------------------------------------------------------------ build
echo "== snapshot of $SRC in $WORK/tree"
rm -rf "$WORK"
mkdir -p "$WORK/tree"
rsync -a --exclude=.git --exclude='*.o' --exclude='*.bc' --exclude='*.so' \
    --exclude=test/results --exclude=test/fuzz/build "$SRC/" "$WORK/tree/"
TREE="$WORK/tree"

echo "== building with ASan + UBSan (clang)"
SAN="-fsanitize=address,undefined -fno-sanitize=alignment -fno-omit-frame-pointer -g -O1"
# PostgreSQL's CFLAGS come from gcc; clang ignores the few it lacks
make -C "$TREE" -s CC=clang with_llvm=no COPT="$SAN -Wno-ignored-optimization-argument -Wno-unused-command-line-argument -Wno-ignored-attributes -Wno-compound-token-split-by-macro" >/dev/null
make -C "$TREE" -s CC=clang with_llvm=no DESTDIR="$WORK/destdir" install >/dev/null
SO="$WORK/destdir$(pg_config --pkglibdir)/oprec_fdw.so"
[ "$(nm -D "$SO" | grep -c __asan_report)" -gt 0 ] || { echo "the build is not instrumented: $SO" >&2; exit 1; }
clang -shared -fPIC -Wl,-z,initfirst "$ROOT/test/fuzz/asan_first.c" -o "$WORK/asan_first.so"
chmod -R a+rX "$WORK"

# ------------------------------------------------------------ run
rm -rf "$ASAN_LOG_DIR"
mkdir -p "$ASAN_LOG_DIR"
chmod 1777 "$ASAN_LOG_DIR"
cat >"$WORK/environment" <<EOF
# environment of the postgres processes (pg_createcluster --environment)
LD_PRELOAD = '$ASAN_RT:$WORK/asan_first.so'
ASAN_OPTIONS = 'detect_leaks=0:abort_on_error=1:log_path=$ASAN_LOG_DIR/asan:detect_odr_violation=0:print_suppressions=0'
UBSAN_OPTIONS = 'print_stacktrace=1:log_path=$ASAN_LOG_DIR/asan'
EOF

echo "== simulator self-check"
"$PYTHON" "$TREE/test/simulator/selftest.py"
OPREC_ROOT="$TREE"
start_simulator

rm -rf "$TREE/test/results"
mkdir -p "$TREE/test/results"
echo "== regression tests, server under ASan"
status=0
# the server options test/suite.sh gives pg_virtualenv; a preloaded
# library is named by its $libdir path, which extension_destdir redirects
PGOPTS=()
while read -r opt; do
    case "$opt" in
        shared_preload_libraries=*)
            libs="${opt#*=}" mapped=""
            IFS=, read -ra names <<<"$libs"
            for n in "${names[@]}"; do
                n="${n// /}"
                case "$n" in */*) ;; *) n="\$libdir/$n" ;; esac
                mapped+="${mapped:+,}$n"
            done
            opt="shared_preload_libraries=$mapped" ;;
    esac
    PGOPTS+=(-o "$opt")
done < <(grep -m1 -E '^\s*pg_virtualenv' -A3 "$TREE/test/suite.sh" | grep -oE -- '-o "[^"]*"' | sed -E 's/^-o "(.*)"$/\1/')
[ "${#PGOPTS[@]}" -gt 0 ] || PGOPTS=(-o "max_connections=20")
echo "== server options: ${PGOPTS[*]} -o extension_destdir=$WORK/destdir"
pg_virtualenv -t -v "$OPREC_PG_VERSION" -c "--environment=$WORK/environment" \
    "${PGOPTS[@]}" -o "extension_destdir=$WORK/destdir" \
    bash -c '
        set -e
        # the server must really run under ASan and load the sanitized build
        maps=$(psql -XAt -v ON_ERROR_STOP=1 -c "LOAD '\''\$libdir/oprec_fdw'\''" -c "SELECT pg_read_file('\''/proc/self/maps'\'')")
        echo "$maps" | grep -q libclang_rt.asan || { echo "!! the server does not run with the ASan runtime" >&2; exit 3; }
        echo "$maps" | grep -q "'"$WORK"'/destdir.*oprec_fdw.so" || { echo "!! the server did not load the sanitized oprec_fdw.so" >&2; exit 3; }
        echo "== the server runs with ASan and loads '"$WORK"'/destdir/.../oprec_fdw.so"
        make -C "'"$TREE"'" installcheck
    ' 2>&1 | tee "$TREE/test/results/run.log" || status=$?
passed=$(grep -cE '^(ok|test) .* ok ' "$TREE/test/results/run.log" || true)
failed=$(grep -cE 'FAILED|failed \(ignored\)' "$TREE/test/results/run.log" || true)
echo "regression (ASan): $passed passed, $failed failed"
if [ "$status" -ne 0 ] && [ -f "$TREE/test/results/regression.diffs" ]; then
    cp "$TREE/test/results/regression.diffs" "$ASAN_LOG_DIR/regression.diffs"
    echo "   diffs: $ASAN_LOG_DIR/regression.diffs"
fi

# ------------------------------------------------------------ report
echo "== sanitizer reports ($ASAN_LOG_DIR)"
reports=0
shopt -s nullglob
for f in "$ASAN_LOG_DIR"/asan.*; do
    if grep -qE "ERROR: AddressSanitizer|runtime error:|ERROR: [A-Za-z]+Sanitizer" "$f"; then
        reports=$((reports + 1))
        echo "---- $f"
        # the report's head and the frames of the extension
        grep -E "ERROR:|runtime error:|SUMMARY:|^    #[0-9]+ .*(oprec|/src/)" "$f" | head -40
    fi
done
if [ "$reports" -eq 0 ]; then
    echo "no sanitizer report"
else
    echo "$reports file(s) with sanitizer reports"
fi

# The system's oprec_fdw was not replaced; make sure no sanitized build is
# installed there (e.g. by an older way of running this script).
if [ "$(nm -D "$(pg_config --pkglibdir)/oprec_fdw.so" 2>/dev/null | grep -c __asan_report)" -gt 0 ]; then
    echo "== a sanitized oprec_fdw.so is installed in the system: reinstalling the normal build"
    make -C "$ROOT" -s clean && make -C "$ROOT" -s && make -C "$ROOT" -s install >/dev/null
fi
[ "$KEEP" -eq 1 ] || rm -rf "$WORK"

[ "$reports" -eq 0 ] || exit 1
exit "$status"
}
