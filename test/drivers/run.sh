#!/usr/bin/env bash
# The foreign tables through real client drivers from Debian's packages, as
# BI tools reach them: psycopg2 (psycopg2_test.py), pgJDBC (JdbcTest.java,
# compiled here into a temporary directory) and psqlODBC through pyodbc
# (odbc_test.py), each against the API simulator.  Runs inside pg_virtualenv
# (test/suite.sh calls it) with OPREC_SIM_URL set; creates its own
# objects.  Each check prints "ok - NAME" or "not ok - NAME: WHY"; the last
# line is "drivers: N passed, M failed".
#
#   pg_virtualenv -v 15 -o shared_preload_libraries=oprec_fdw test/drivers/run.sh

set -uo pipefail
: "${OPREC_SIM_URL:?run through test/suite.sh, which starts the simulator}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
work="$(mktemp -d /tmp/oprec-drivers.XXXXXX)"
trap 'rm -rf "$work"' EXIT

if ! psql -X -q -v ON_ERROR_STOP=1 -v sim_url="$OPREC_SIM_URL" <<'SQL'; then
SET client_min_messages = warning;
DROP EXTENSION IF EXISTS oprec_fdw CASCADE;
CREATE EXTENSION oprec_fdw;
CREATE SERVER feishu FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url :'sim_url', project_key 'proj_alpha');
CREATE USER MAPPING FOR CURRENT_USER SERVER feishu
    OPTIONS (plugin_id 'MII_SIM_PLUGIN', plugin_secret 'sim-plugin-secret',
             user_key '7491126018028090001');
CREATE FOREIGN TABLE feishu_op_records (
    project_key text, work_item_id bigint, work_item_type_key text,
    operation_time timestamptz, operator text, operator_type text,
    operation_type text, op_record_module text, source_type text,
    source text, record_contents jsonb
) SERVER feishu;
CREATE SERVER huawei FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'huawei', base_url :'sim_url', iam_url :'sim_url',
             project_id 'c15cc54e338d4506afd9bd8103071ff0', requests_per_second '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER huawei
    OPTIONS (user_name 'sim_user', password 'sim-password', domain_name 'sim_domain');
CREATE FOREIGN TABLE huawei_issue_records (
    project_id text, issue_id bigint, journal_id bigint, created_on timestamptz,
    notes text, user_id bigint, user_name text, user_nick_name text,
    user_first_name text, user_identifier text, detail_id bigint, property text,
    field_name text, operation text, old_value text, new_value text
) SERVER huawei;
SQL
    echo "not ok - drivers: the extension and its foreign tables cannot be created"
    echo "drivers: 0 passed, 1 failed"
    exit 1
fi

# One client, on a simulator without the faults or delays earlier tests
# left: its output is kept for counting.  Clients exit 0 after their
# checks, whatever the results: any other exit (a crash) is a failed check.
run_client() {
    local name="$1" out="$work/$1.out" status
    shift
    curl -sf -X POST "$OPREC_SIM_URL/_sim/reset" >/dev/null
    "$@" 2>&1 | tee "$out"
    status="${PIPESTATUS[0]}"
    if [ "$status" -ne 0 ]; then
        echo "not ok - $name: exited with status $status" | tee -a "$out"
    fi
}

run_client psycopg2 /usr/bin/python3 -B "$here/psycopg2_test.py"
if javac -d "$work" -cp /usr/share/java/postgresql.jar "$here/JdbcTest.java" 2>"$work/javac.log"; then
    run_client pgjdbc java -cp "$work:/usr/share/java/postgresql.jar" JdbcTest
else
    cat "$work/javac.log"
    echo "not ok - pgjdbc: JdbcTest.java does not compile" | tee "$work/pgjdbc.out"
fi
run_client odbc /usr/bin/python3 -B "$here/odbc_test.py"

passed=$(cat "$work"/*.out | grep -c '^ok - ')
failed=$(cat "$work"/*.out | grep -c '^not ok - ')
echo "drivers: $passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
