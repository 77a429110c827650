#!/usr/bin/env bash
# Build the two fuzz targets of oprec_fdw and run each for a while.
#
#   test/fuzz/run.sh [SECONDS] [options]      SECONDS per target, default 60
#     --only json|page     run one target
#     --parallel           run both at once (one core each)
#     --logdir DIR         write json.log and page.log there (default
#                          /tmp/oprec-fuzz/logs)
#     --keep-going         after a crash, go on fuzzing until the time is up
#                          (json: libFuzzer's -fork=1 -ignore_crashes=1;
#                          page: a new backend for the remaining time)
#     --build-only         build, do not run
#     --src DIR            build from the extension sources in DIR (a copy
#                          of the repository, e.g. a `git archive` of a
#                          commit) instead of this work tree
#     --repro FILE...      run these inputs once through the page target
#                          (or with --only json, through the json target)
#
# Targets (see test/fuzz/README.md):
#   json  src/json.c's oprec_json_parse_bounded, a plain libFuzzer binary
#         (ASan + UBSan), test/fuzz/build/json_fuzz
#   page  both APIs' read_page, the engine's row iteration, column_value and
#         oprec_json_to_datum, inside a single-user PostgreSQL backend:
#         test/fuzz/build/oprec_fuzz.so, loaded into `postgres --single`
#         with the ASan runtime preloaded; libFuzzer is driven from the SQL
#         function oprec_fuzz_run(text[]) through LLVMFuzzerRunDriver.
#
# Working state lives in /tmp/oprec-fuzz: the throw-away cluster, the
# growing corpora (seeded from test/fuzz/corpus/) and crash artifacts.
# Exits 1 if a target reported a crash, else 0.

# The whole script is one block, read before it runs: editing this file
# during a long run does not disturb that run.
{
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
FUZZ="$ROOT/test/fuzz"
BUILD="$FUZZ/build"
WORK=/tmp/oprec-fuzz
SECONDS_PER_TARGET=60
ONLY=""
PARALLEL=0
BUILD_ONLY=0
LOGDIR="$WORK/logs"
REPRO=()
SRC_ROOT=""
KEEP_GOING=0

while [ $# -gt 0 ]; do
    case "$1" in
        --only) ONLY="$2"; shift 2 ;;
        --parallel) PARALLEL=1; shift ;;
        --logdir) LOGDIR="$2"; shift 2 ;;
        --build-only) BUILD_ONLY=1; shift ;;
        --keep-going) KEEP_GOING=1; shift ;;
        --src) SRC_ROOT="$(cd "$2" && pwd)"; shift 2 ;;
        --repro) shift; REPRO=("$@"); break ;;
        [0-9]*) SECONDS_PER_TARGET="$1"; shift ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

SRC_ROOT="${SRC_ROOT:-$ROOT}"
export LANG=C.UTF-8 LC_ALL=C.UTF-8
PG_BIN="$(pg_config --bindir 2>/dev/null || echo /usr/lib/postgresql/15/bin)"

# ---------------------------------------------------------------- tools
install_dependencies() {
    local packages=(clang libclang-rt-14-dev make pkg-config postgresql-15
        postgresql-server-dev-15 libcurl4-openssl-dev libjansson-dev)
    local missing=()
    for p in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "== installing: ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        if [ ! -f /etc/postgresql-common/createcluster.conf ]; then
            mkdir -p /etc/postgresql-common/createcluster.d
            echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/oprec_fdw.conf
        fi
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}
[ "$(id -u)" -eq 0 ] || { echo "run as root (the page target runs postgres as the postgres user)" >&2; exit 2; }
install_dependencies
PG_BIN="$(pg_config --bindir)"

CLANG=clang
RTDIR="$($CLANG -print-resource-dir)/lib/linux"
FUZZER_NO_MAIN="$RTDIR/libclang_rt.fuzzer_no_main-x86_64.a"
ASAN_RT="$RTDIR/libclang_rt.asan-x86_64.so"
for f in "$FUZZER_NO_MAIN" "$ASAN_RT"; do
    [ -f "$f" ] || { echo "missing $f (libclang-rt-14-dev)" >&2; exit 2; }
done

# -fsanitize=undefined minus alignment: PostgreSQL reads unaligned short
# varlena headers on purpose.  No -fwrapv, so that signed overflow is
# reported (the normal build has -fwrapv: an overflow is a wrong value
# there, not UB, but still a bug).
SAN="-fsanitize=address,undefined -fno-sanitize=alignment -fno-sanitize-recover=all"
CFLAGS_COMMON="-g -O1 -fno-omit-frame-pointer -fno-strict-aliasing"

# ---------------------------------------------------------------- build
build_json() {
    echo "== building json target"
    mkdir -p "$BUILD"
    $CLANG $CFLAGS_COMMON -fsanitize=fuzzer $SAN -I"$SRC_ROOT/src" \
        $(pkg-config --cflags jansson) \
        "$FUZZ/json_fuzz.c" "$SRC_ROOT/src/json.c" \
        $(pkg-config --libs jansson) -o "$BUILD/json_fuzz"
}

build_page() {
    echo "== building page target (oprec_fuzz.so)"
    local objs srcs=() obj src out outs=()
    # the extension's object list, from its Makefile
    objs="$(cd "$SRC_ROOT" && make -s --no-print-directory -f Makefile \
        -f <(printf 'oprec-fuzz-print-objs:\n\t@echo $(OBJS)\n') oprec-fuzz-print-objs)"
    mkdir -p "$BUILD/obj"
    local cflags=(
        $CFLAGS_COMMON -fPIC -fsanitize=fuzzer-no-link $SAN -D_GNU_SOURCE
        -I"$SRC_ROOT/src" -I"$(pg_config --includedir-server)" -I"$(pg_config --includedir)"
        -DOPREC_FDW_VERSION='"fuzz"' $(pkg-config --cflags libcurl jansson)
        -Wno-ignored-attributes -Wno-unknown-warning-option
    )
    for obj in $objs "test/fuzz/page_fuzz.o"; do
        src="$SRC_ROOT/${obj%.o}.c"
        [ "$obj" != test/fuzz/page_fuzz.o ] || src="$FUZZ/page_fuzz.c"
        out="$BUILD/obj/$(echo "${obj%.o}" | tr / _).o"
        $CLANG "${cflags[@]}" -c "$src" -o "$out"
        outs+=("$out")
    done
    # -Bsymbolic: the .so's coverage callbacks must bind to its own copy
    # of libFuzzer, not to the weak no-op ones of the preloaded ASan runtime
    clang++ -shared $SAN -Wl,-Bsymbolic -o "$BUILD/oprec_fuzz.so" "${outs[@]}" \
        -Wl,--whole-archive "$FUZZER_NO_MAIN" -Wl,--no-whole-archive \
        $(pkg-config --libs libcurl jansson) -lstdc++ -lm
}

# The ASan runtime must initialize before other libraries' constructors
# run in an uninstrumented postgres (see asan_first.c).
build_asan_first() {
    mkdir -p "$BUILD"
    $CLANG -shared -fPIC -Wl,-z,initfirst "$FUZZ/asan_first.c" -o "$BUILD/asan_first.so"
}

case "$ONLY" in
    json) build_json ;;
    page) build_page; build_asan_first ;;
    "") build_json; build_page; build_asan_first ;;
    *) echo "--only json|page" >&2; exit 2 ;;
esac
[ "$BUILD_ONLY" -eq 0 ] || exit 0

# ---------------------------------------------------------------- run
mkdir -p "$WORK" "$LOGDIR"
chmod 755 "$WORK"
STAMP="$LOGDIR/.started"
touch "$STAMP"

# The working corpus starts from the seeds and grows; seeds stay as they are.
prepare_corpus() {
    local target="$1"
    mkdir -p "$WORK/corpus/$target" "$WORK/artifacts/$target"
    cp -n "$FUZZ/corpus/$target"/* "$WORK/corpus/$target/" 2>/dev/null || true
}

run_json() {
    local log="$LOGDIR/json.log"
    prepare_corpus json
    echo "== json target: $SECONDS_PER_TARGET s, log $log"
    local small="${JSON_FUZZ_SMALL_BUDGET:-1}"
    local args=(-rss_limit_mb=1024 -malloc_limit_mb=256 -timeout=10 -max_len=65536
        -print_final_stats=1 -artifact_prefix="$WORK/artifacts/json/")
    if [ "${#REPRO[@]}" -gt 0 ]; then
        JSON_FUZZ_SMALL_BUDGET=$small "$BUILD/json_fuzz" "${args[@]}" "${REPRO[@]}" 2>&1 | tee "$log"
        return
    fi
    [ "$KEEP_GOING" -eq 0 ] || args+=(-fork=1 -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1)
    JSON_FUZZ_SMALL_BUDGET=$small "$BUILD/json_fuzz" "${args[@]}" \
        -max_total_time="$SECONDS_PER_TARGET" "$WORK/corpus/json" >"$log" 2>&1 || true
}

# A throw-away cluster for single-user backends, made once.
CLUSTER="$WORK/cluster"
make_cluster() {
    if [ ! -f "$CLUSTER/PG_VERSION" ]; then
        rm -rf "$CLUSTER"
        mkdir -p "$CLUSTER"
        chown postgres: "$CLUSTER"
        runuser -u postgres -- "$PG_BIN/initdb" -D "$CLUSTER" -E UTF8 --locale=C.UTF-8 \
            -A trust >/dev/null
    fi
}

# Run SQL (one statement a line) in a single-user backend with the ASan
# runtime preloaded; its output to stdout, the server log to stderr.
single_user() {
    runuser -u postgres -- env LD_PRELOAD="$ASAN_RT:$WORK/asan_first.so" \
        ASAN_OPTIONS="detect_leaks=0:abort_on_error=0:handle_abort=1:allocator_may_return_null=1:symbolize=1:detect_odr_violation=0" \
        UBSAN_OPTIONS="print_stacktrace=1" \
        "$PG_BIN/postgres" --single -D "$CLUSTER" \
        -c shared_buffers=16MB -c max_connections=5 \
        -c client_min_messages=error -c log_min_messages=error \
        -c max_stack_depth=2MB \
        postgres
}

run_page() {
    local log="$LOGDIR/page.log"
    prepare_corpus page
    make_cluster
    install -m 755 "$BUILD/oprec_fuzz.so" "$WORK/oprec_fuzz.so"
    install -m 755 "$BUILD/asan_first.so" "$WORK/asan_first.so"
    chown -R postgres: "$WORK/corpus/page" "$WORK/artifacts/page"
    local out
    out="$(echo "CREATE OR REPLACE FUNCTION oprec_fuzz_run(text[]) RETURNS int AS '$WORK/oprec_fuzz.so', 'oprec_fuzz_run' LANGUAGE C STRICT;" \
        | single_user 2>&1)" || true
    if echo "$out" | grep -q "ERROR"; then
        echo "$out" | grep -A2 ERROR | tee "$log" >&2
        echo "!! page target: could not load $WORK/oprec_fuzz.so" | tee -a "$log" >&2
        return 1
    fi
    local args=("-rss_limit_mb=2048" "-malloc_limit_mb=512" "-timeout=10" "-max_len=65536"
        "-print_final_stats=1" "-artifact_prefix=$WORK/artifacts/page/")
    if [ "${#REPRO[@]}" -gt 0 ]; then
        local f copy
        mkdir -p "$WORK/repro"
        for f in "${REPRO[@]}"; do
            copy="$WORK/repro/$(basename "$f")"
            cp "$f" "$copy"
            chmod 644 "$copy"
            args+=("$copy")
        done
        echo "SELECT oprec_fuzz_run(ARRAY[$(sql_text_array "${args[@]}")]);" \
            | single_user 2>&1 | tee "$log" || true
        return
    fi
    echo "== page target: $SECONDS_PER_TARGET s, log $log"
    # libFuzzer ends the backend with exit() when it is done
    local start=$SECONDS remaining=$SECONDS_PER_TARGET
    : >"$log"
    while :; do
        echo "SELECT oprec_fuzz_run(ARRAY[$(sql_text_array "${args[@]}" \
            "-max_total_time=$remaining" "$WORK/corpus/page")]);" | single_user >>"$log" 2>&1 || true
        remaining=$((SECONDS_PER_TARGET - (SECONDS - start)))
        [ "$KEEP_GOING" -eq 1 ] && [ "$remaining" -gt 5 ] || break
        echo "== oprec_fuzz: the backend ended; a new one for the remaining $remaining s" >>"$log"
    done
}

# 'a','b',... quoted for SQL
sql_text_array() {
    local a list=""
    for a in "$@"; do
        list+="${list:+,}'${a//\'/\'\'}'"
    done
    echo "$list"
}

summarize() {
    local target="$1" log="$LOGDIR/$1.log" found
    echo "---- $target ($log)"
    grep -E "^INFO: Loaded|^#[0-9]+.*INITED" "$log" | head -3 || true
    # the last status line (libFuzzer's, or its -fork mode's)
    grep -E "^#[0-9]+" "$log" | tail -1 || true
    grep -E "^(stat::|Done |oprec_fuzz: inputs|INFO: exiting)" "$log" | tail -8 || true
    if ! grep -qE "^(Done |stat::|INFO: exiting)|oom/timeout/crash" "$log" &&
        ! grep -qE "^==[0-9]+==ERROR|deadly signal" "$log"; then
        echo "!! $target: did not run (see the log)"
        return 1
    fi
    found=$(find "$WORK/artifacts/$target" -type f -newer "$STAMP" | sort)
    if [ -n "$found" ] || grep -qE "^==[0-9]+==ERROR|runtime error:|deadly signal|check failed" "$log"; then
        echo "!! $target: FOUND A PROBLEM:"
        grep -E "^==[0-9]+==ERROR|^SUMMARY: |runtime error:|check failed|Test unit written" "$log" | sort | uniq -c | sort -rn | head -10
        echo "   inputs: ${found:-(see the log)}"
        return 1
    fi
    echo "   no crash"
    return 0
}

if [ "${#REPRO[@]}" -gt 0 ]; then
    if [ "$ONLY" = json ]; then run_json; else run_page; fi
    exit 0
fi

targets=()
case "$ONLY" in json) targets=(json) ;; page) targets=(page) ;; *) targets=(json page) ;; esac
if [ "$PARALLEL" -eq 1 ]; then
    pids=()
    for t in "${targets[@]}"; do "run_$t" & pids+=($!); done
    for p in "${pids[@]}"; do wait "$p" || true; done
else
    for t in "${targets[@]}"; do "run_$t"; done
fi

echo "== results"
status=0
for t in "${targets[@]}"; do summarize "$t" || status=1; done
echo "crash inputs (if any): $WORK/artifacts/{json,page}/"
exit "$status"
}
