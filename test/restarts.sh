#!/usr/bin/env bash
# The transfer-lifetime sequences of sql/transfer_lifetime.sql, on several
# postmaster starts: whether a callback that follows a dangling pointer
# crashes depends on the address layout of the postmaster, so one start
# proves little.  Runs inside pg_virtualenv (test/suite.sh calls it)
# with OPREC_SIM_URL set.  Prints "restarts: N passed, M failed".
#
#   pg_virtualenv -v 15 test/restarts.sh [starts]

set -uo pipefail
: "${OPREC_SIM_URL:?run through test/suite.sh, which starts the simulator}"
STARTS="${1:-5}"

sim() { curl -sf -X POST "$OPREC_SIM_URL/_sim/$1" ${2:+-H 'Content-Type: application/json' --data-binary "$2"} >/dev/null; }
# every list (or token) request takes 1.5 s: the abandoned one is answered
# while the next one is in flight, which is when curl ran its callbacks
slow_list='{"faults": [{"path": "/op_record/", "kind": "slow", "delay_ms": 1500}]}'
slow_token='{"faults": [{"path": "/authen/plugin_token", "kind": "slow", "delay_ms": 1500}]}'
q() { psql -X -q -v ON_ERROR_STOP=0 -v sim_url="$OPREC_SIM_URL" "$@" 2>&1; }

q -c 'DROP EXTENSION IF EXISTS oprec_fdw CASCADE' >/dev/null
q <<'SQL' >/dev/null
CREATE EXTENSION oprec_fdw;
CREATE SERVER feishu FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url :'sim_url', project_key 'proj_alpha');
CREATE USER MAPPING FOR CURRENT_USER SERVER feishu
    OPTIONS (plugin_id 'MII_SIM_PLUGIN', plugin_secret 'sim-plugin-secret', user_key '7491126018028090001');
CREATE FOREIGN TABLE records (work_item_id bigint, operation_time timestamptz) SERVER feishu;
SQL

# One sequence: a request in flight when statement_timeout fires inside a
# cursor opened before the savepoint, then another query in the same
# transaction, and one more after it.
sequence() {
    q <<'SQL'
BEGIN;
DECLARE c CURSOR FOR SELECT work_item_id FROM records WHERE work_item_id = 1001;
SAVEPOINT s;
SET LOCAL statement_timeout = '300ms';
FETCH 1 FROM c;
ROLLBACK TO s;
SELECT 'rows=' || count(*) FROM records WHERE work_item_id = 1002;
COMMIT;
SELECT 'rows=' || count(*) FROM records WHERE work_item_id = 1003;
SQL
}

passed=0
failed=0
for start in $(seq 1 "$STARTS"); do
    for fault in "$slow_list" "$slow_token"; do
        sim reset
        sim expire_tokens
        sim config "$fault"
        out="$(sequence)"
        if [ "$(grep -c 'rows=[1-9]' <<<"$out")" -eq 2 ] && ! grep -qiE 'server closed|terminated|crash' <<<"$out"; then
            passed=$((passed + 1))
        else
            failed=$((failed + 1))
            echo "postmaster start $start: the sequence failed:" >&2
            echo "$out" >&2
        fi
        sleep 2   # let the slow answer finish before the simulator is reset
    done
    pg_ctlcluster "$PGVERSION" regress restart
done
echo "restarts: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
