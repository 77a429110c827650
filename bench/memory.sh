#!/usr/bin/env bash
# Memory of one backend over many scans, against the API simulator: full
# scans of a 3000-record history (19 pages), scans that fail half-way
# (a repeating cursor, an API error after the first page is held) and scans
# cancelled while a request is in flight.  Prints the backend's resident
# memory after each batch: a leak of curl or jansson objects on any of
# these paths shows as growth from batch to batch.
#
#   bench/memory.sh [iterations]

set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../test/setup.sh"

ITERATIONS="${1:-200}"

install_dependencies
build_and_install
start_simulator

# the simulator's quota would throttle an unpaced burst: lift it
curl -sf -X POST -d '{"feishu_qps": 0}' "$OPREC_SIM_URL/_sim/config" >/dev/null

script="$(temp_sql_file)"
cat >"$script" <<'SQL'
\set QUIET on
\set ON_ERROR_STOP 0
SET client_min_messages = error;
CREATE EXTENSION oprec_fdw;
CREATE SERVER feishu FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url :'sim_url', project_key 'proj_alpha', requests_per_second '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER feishu
    OPTIONS (plugin_token 'p-static-sim-token', user_key '7491126018028090001');
CREATE FOREIGN TABLE feishu_op_records (work_item_id bigint, operation_time timestamptz,
    operator text, record_contents jsonb) SERVER feishu;
SELECT pg_backend_pid() AS pid \gset
\set rss '\\! printf "%-28s %s\\n" "$label" "$(grep VmRSS /proc/' :pid '/status)"'
\setenv label 'after set-up'
:rss
\o /dev/null
SELECT 'SELECT count(*), sum(length(record_contents::text)) FROM feishu_op_records WHERE work_item_id = 5000'
FROM generate_series(1, 5) \gexec
\o
\setenv label 'after 5 full scans'
:rss
\o /dev/null
SELECT format('SELECT count(*), sum(length(record_contents::text)) FROM feishu_op_records WHERE work_item_id = 5000 /* %s */', i)
FROM generate_series(1, :iterations) i \gexec
\o
\setenv label 'after full scans'
:rss
\! curl -s -X POST -d '{"feishu_repeat_cursor": true, "feishu_qps": 0}' "$OPREC_SIM_URL/_sim/config" >/dev/null
\o /dev/null
SELECT 'SELECT count(*) FROM feishu_op_records WHERE work_item_id = 5000'
FROM generate_series(1, :iterations) \gexec
\o
\setenv label 'after failed scans'
:rss
\! curl -s -X POST "$OPREC_SIM_URL/_sim/reset" >/dev/null
\! curl -s -X POST -d '{"feishu_qps": 0}' "$OPREC_SIM_URL/_sim/config" >/dev/null
DO $$
BEGIN
    FOR i IN 1..:iterations LOOP
        BEGIN
            PERFORM count(*) FROM feishu_op_records WHERE work_item_id = 5000 AND operator = 'x' || i;
            RAISE EXCEPTION 'roll back';
        EXCEPTION WHEN OTHERS THEN
            NULL;
        END;
    END LOOP;
END $$;
\setenv label 'after subtransaction aborts'
:rss
\! curl -s -X POST -d '{"delay_ms": 200, "feishu_qps": 0}' "$OPREC_SIM_URL/_sim/config" >/dev/null
SET statement_timeout = '50ms';
\o /dev/null
SELECT 'SELECT count(*) FROM feishu_op_records WHERE work_item_id = 1001'
FROM generate_series(1, :iterations / 4) \gexec
\o
RESET statement_timeout;
\setenv label 'after cancels in flight'
:rss
\! curl -s -X POST "$OPREC_SIM_URL/_sim/reset" >/dev/null
\! curl -s -X POST -d '{"feishu_qps": 0}' "$OPREC_SIM_URL/_sim/config" >/dev/null
\o /dev/null
SELECT format('SELECT count(*), sum(length(record_contents::text)) FROM feishu_op_records WHERE work_item_id = 5000 /* again %s */', i)
FROM generate_series(1, :iterations) i \gexec
\o
\setenv label 'after full scans again'
:rss
SQL

echo "== backend memory, $ITERATIONS iterations per batch"
pg_virtualenv -v "$OPREC_PG_VERSION" \
    psql -X -q -v sim_url="$OPREC_SIM_URL" -v iterations="$ITERATIONS" -f "$script" 2>&1 \
    | grep -v '^$' | grep -v 'ERROR\|CONTEXT\|DETAIL\|HINT\|LINE\|\^' || true
