#!/usr/bin/env bash
# Backends that die while they hold places in the shared pace: one ended by
# pg_terminate_backend, one killed with SIGKILL (the postmaster then
# restarts every backend).  Each is scanning with requests in flight (the
# simulator answers after 3 s) when it dies; afterwards the credential's
# pace counts nothing in flight and a new backend's scan on the same
# credential gets all its rows.  Runs inside pg_virtualenv with the library
# preloaded (test/suite.sh calls it) and OPREC_SIM_URL set.  Prints
# "dying-backends: N passed, M failed".
#
#   pg_virtualenv -v 15 -o shared_preload_libraries=oprec_fdw test/dying_backends.sh

set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/session_checks.sh"

q -c 'DROP EXTENSION IF EXISTS oprec_fdw CASCADE' >/dev/null
q <<'SQL' >/dev/null
CREATE EXTENSION oprec_fdw;
CREATE SERVER feishu FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url :'sim_url', project_key 'proj_alpha',
             requests_per_second '4', max_concurrency '8');
CREATE USER MAPPING FOR CURRENT_USER SERVER feishu
    OPTIONS (plugin_token 'p-static-sim-token', user_key '7491126018028090001');
CREATE FOREIGN TABLE records (work_item_id bigint, operation_time timestamptz) SERVER feishu;
SQL

if [ "$(q -c "SELECT shared FROM oprec_fdw_pace('records')")" != t ]; then
    echo "not ok - the library is not preloaded: the pace is not shared"
    echo "dying-backends: 0 passed, 1 failed"
    exit 1
fi

# A scan of 3 batches x 5 windows: many requests, each answered after 3 s.
slow_scan="SELECT count(*) FROM records WHERE work_item_id BETWEEN 1001 AND 1130
           AND operation_time >= '2025-06-01' AND operation_time < '2025-07-01'"

# Start the slow scan in a backend of its own; wait until the pace counts
# its requests in flight; print its pid.
start_dying_scan() {
    local i
    psql -X -q -At -c "SET application_name = 'dying_scan'" -c "$slow_scan" >/dev/null 2>&1 &
    for i in $(seq 1 100); do
        if [ "$(q -c "SELECT in_flight > 0 FROM oprec_fdw_pace('records')")" = t ]; then
            q -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'dying_scan'"
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# After a death: nothing in flight, and a new backend scans at full pace.
check_after() {
    local how="$1" in_flight rows truth
    in_flight="$(q -c "SELECT in_flight FROM oprec_fdw_pace('records')")"
    check "$how: the pace counts nothing in flight afterwards" \
        "$([ "$in_flight" = 0 ] && echo yes || echo no)" "in_flight = $in_flight"
    sim reset
    # a liveness bound: places leaked by the dead backend would hold the
    # scan for hours, as no request of theirs is ever answered to it
    rows="$(q -c "SET statement_timeout = '30s'" -c "$slow_scan")"
    truth="$(curl -sf "$OPREC_SIM_URL/_sim/truth/feishu" |
        python3 -c 'import json, sys
n = 0
for line in sys.stdin:
    r = json.loads(line)
    if 1001 <= r["work_item_id"] <= 1130 and 1748736000000 <= r["operation_time"] < 1751328000000:
        n += 1
print(n)')"
    check "$how: a new backend on the credential gets every row" \
        "$([ -n "$rows" ] && [ "$rows" = "$truth" ] && echo yes || echo no)" "got '$rows', the API holds $truth"
}

# 1. pg_terminate_backend while the scan has requests in flight
sim reset
sim config '{"faults": [{"path": "/op_record/", "kind": "slow", "delay_ms": 3000}]}'
if pid="$(start_dying_scan)"; then
    terminate_backend "$pid"
    check_after "terminated"
else
    check "terminated: the scan had requests in flight" no "the pace never counted any"
fi
wait

# 2. SIGKILL: the postmaster restarts every backend (and shared memory)
sim reset
sim config '{"faults": [{"path": "/op_record/", "kind": "slow", "delay_ms": 3000}]}'
if pid="$(start_dying_scan)"; then
    kill_backend "$pid"
    check_after "killed"
else
    check "killed: the scan had requests in flight" no "the pace never counted any"
fi
wait

echo "dying-backends: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
