#!/usr/bin/env bash
# Scan throughput against the local API simulator, pacing off: how many
# rows and pages per second one backend turns into tuples.  The simulator
# runs on the same 2 cores, so the figures bound the FDW's own cost from
# above rather than predict a remote API's.
#
#   bench/scan_throughput.sh [repetitions]

set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../test/setup.sh"

REPETITIONS="${1:-5}"

install_dependencies
build_and_install
start_simulator

# the simulator's quota would stop an unpaced burst: lift it
curl -sf -X POST -d '{"feishu_qps": 0}' "$OPREC_SIM_URL/_sim/config" >/dev/null

script="$(temp_sql_file)"
cat >"$script" <<'SQL'
\set QUIET on
SET client_min_messages = error;
\i :objects

-- Time one query :reps times; print rows, requests and rates.
CREATE FUNCTION bench(label text, query text, reps int) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz;
    seconds float8;
    nrows bigint;
    plan json;
    requests bigint;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON, TIMING OFF, SUMMARY OFF) ' || query INTO plan;
    requests := (SELECT sum((p->>'HTTP Requests')::bigint)
                 FROM jsonb_path_query(plan::jsonb, 'strict $.**') AS p
                 WHERE jsonb_typeof(p) = 'object' AND p ? 'HTTP Requests');
    started := clock_timestamp();
    FOR i IN 1..reps LOOP
        EXECUTE 'SELECT count(*) FROM (' || query || ') q' INTO nrows;
    END LOOP;
    seconds := extract(epoch FROM clock_timestamp() - started) / reps;
    RETURN format('%-44s %6s rows %4s requests %8s ms/scan %9s rows/s %7s requests/s',
                  label, nrows, requests, round((seconds * 1000)::numeric, 1),
                  round(nrows / seconds), round(requests / seconds));
END $$;

\pset tuples_only on
\pset format unaligned
SELECT bench('feishu: 1 work item, 3000 records, all columns',
             'SELECT * FROM feishu_op_records WHERE work_item_id = 5000', :reps);
SELECT bench('feishu: 120 work items, 1488 records',
             'SELECT * FROM feishu_op_records WHERE work_item_id = ANY (ARRAY(SELECT generate_series(1001, 1120)::bigint))', :reps);
SELECT bench('feishu: 120 items x 9 weekly windows',
             $q$SELECT * FROM feishu_op_records WHERE work_item_id = ANY (ARRAY(SELECT generate_series(1001, 1120)::bigint)) AND operation_time BETWEEN '2025-01-01' AND '2025-03-01'$q$, :reps);
SELECT bench('huawei: 1 issue, 10100 entries, AK/SK signed',
             'SELECT * FROM huawei_issue_records WHERE issue_id = 4000000000', :reps);
SQL

echo "== scan throughput, $REPETITIONS repetitions each"
pg_virtualenv -v "$OPREC_PG_VERSION" \
    psql -X -q -v sim_url="$OPREC_SIM_URL" -v reps="$REPETITIONS" \
        -v objects="$OPREC_ROOT/bench/objects.sql" -f "$script" 2>&1 \
    | grep -v '^$' | grep -v 'WARNING\|DETAIL\|HINT' || true
