#!/usr/bin/env bash
# A refresh of a mirror that does not finish: its backend terminated
# (pg_terminate_backend), or killed with SIGKILL (the postmaster then
# restarts every backend), while the refresh has requests in flight (the
# simulator answers after 3 s).  Afterwards the mirror holds what it held
# before, nobody is refreshing it, and the next refresh makes it equal to
# what the API holds.  Runs inside pg_virtualenv with the library preloaded
# (test/suite.sh calls it) and OPREC_SIM_URL set.  Prints
# "mirror-crash: N passed, M failed".
#
#   pg_virtualenv -v 15 -o shared_preload_libraries=oprec_fdw test/mirror_crash.sh

set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/session_checks.sh"
yes_if() { [ "$1" = "$2" ] && echo yes || echo no; }

q -c 'DROP EXTENSION IF EXISTS oprec_fdw CASCADE' -c 'DROP TABLE IF EXISTS m' >/dev/null
q <<'SQL' >/dev/null
CREATE EXTENSION oprec_fdw;
CREATE SERVER feishu FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url :'sim_url', project_key 'proj_alpha',
             requests_per_second '0', max_concurrency '4');
CREATE USER MAPPING FOR CURRENT_USER SERVER feishu
    OPTIONS (plugin_token 'p-static-sim-token', user_key '7491126018028090001');
CREATE FOREIGN TABLE records (work_item_id bigint, operation_time timestamptz, operator text)
    SERVER feishu;
SQL

# The records of the space since 2025-06-01, as the API holds them now,
# up to an hour past now (what a mirror copies).
truth_count() {
    curl -sf "$OPREC_SIM_URL/_sim/truth/feishu" | python3 -c 'import json, sys, time
since = 1748736000000
until = int(time.time() * 1000) + 3600 * 1000
print(sum(1 for line in sys.stdin
          for r in [json.loads(line)]
          if r["project_key"] == "proj_alpha" and since <= r["operation_time"] < until))'
}

sim reset
q -c "SELECT oprec_fdw_create_mirror('records', 'm', refresh_every => '1 day', since => '2025-06-01')" >/dev/null
before="$(q -c 'SELECT count(*) FROM m')"
check "the first fill holds what the API holds" "$(yes_if "$before" "$(truth_count)")" \
    "mirror $before rows, the API $(truth_count)"

# Start a slow re-read of the whole mirror in a backend of its own; wait
# until it holds the mirror's lock; print its pid.
start_refresh() {
    local i
    psql -X -q -At -c "SET application_name = 'dying_refresh'" \
        -c "SELECT oprec_fdw_refresh_mirror('m', reread_from => '2025-06-01')" >/dev/null 2>&1 &
    for i in $(seq 1 100); do
        if [ "$(q -c "SELECT refreshing FROM oprec_fdw_mirrors WHERE mirror = 'm'::regclass")" = t ]; then
            q -c "SELECT pid FROM pg_stat_activity WHERE application_name = 'dying_refresh'"
            return 0
        fi
        sleep 0.1
    done
    return 1
}

# After the refresh died: the mirror as it was, nobody refreshing it, and
# a new refresh brings it to what the API holds.
check_after() {
    local how="$1" rows outcome
    rows="$(q -c 'SELECT count(*) FROM m')"
    check "$how: the mirror is as it was" "$(yes_if "$rows" "$before")" "$rows rows, $before before"
    check "$how: nobody is refreshing it" \
        "$(yes_if "$(q -c "SELECT refreshing FROM oprec_fdw_mirrors WHERE mirror = 'm'::regclass")" f)"
    sim reset
    outcome="$(q -c "SELECT outcome FROM oprec_fdw_refresh_mirror('m', reread_from => '2025-06-01')")"
    rows="$(q -c 'SELECT count(*) FROM m')"
    check "$how: the next refresh completes it" \
        "$([ "$outcome" = "full refresh" ] && [ "$rows" = "$(truth_count)" ] && echo yes || echo no)" \
        "outcome '$outcome', $rows rows, the API $(truth_count)"
}

# Make the refresh find something to change: a record that arrived since.
arrive() {
    sim config "{\"add_records\": {\"feishu\": [{\"work_item_id\": 1001,
        \"operation_time\": $(($(date +%s) * 1000 - 600000))}]}}"
}

# 1. pg_terminate_backend while the refresh has requests in flight
sim reset
arrive
sim config '{"faults": [{"path": "/op_record/", "kind": "slow", "delay_ms": 3000}]}'
if pid="$(start_refresh)"; then
    terminate_backend "$pid"
    check_after "terminated"
else
    check "terminated: the refresh was running" no "it never held the mirror's lock"
fi
wait
before="$(q -c 'SELECT count(*) FROM m')"

# 2. SIGKILL: the postmaster restarts every backend
sim reset
arrive
sim config '{"faults": [{"path": "/op_record/", "kind": "slow", "delay_ms": 3000}]}'
if pid="$(start_refresh)"; then
    kill_backend "$pid"
    check_after "killed"
else
    check "killed: the refresh was running" no "it never held the mirror's lock"
fi
wait

q -c "SELECT oprec_fdw_drop_mirror('m')" -c 'DROP EXTENSION oprec_fdw CASCADE' >/dev/null
echo "mirror-crash: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
