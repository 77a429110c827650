#!/usr/bin/env bash
# Mirrors against the local API simulator, at the APIs' default quotas
# (Feishu 15 requests/s, enforced by the simulator and paced by the
# extension): the first fill of the simulator's largest space and project,
# a refresh after records arrived, and the lag the background worker keeps
# (from a record's arrival to its row in the mirror, with refresh_every
# 10 s and oprec_fdw.mirror_naptime 1 s).  Prints figures; asserts nothing.
#
#   bench/mirror.sh

set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/../test/setup.sh"

install_dependencies
build_and_install
start_simulator

script="$(temp_sql_file)"
cat >"$script" <<'SQL'
\set QUIET on
SET client_min_messages = warning;
CREATE EXTENSION oprec_fdw;
CREATE SERVER wide FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url :'sim_url', project_key 'proj_wide');
CREATE USER MAPPING FOR CURRENT_USER SERVER wide
    OPTIONS (plugin_id 'MII_SIM_PLUGIN', plugin_secret 'sim-plugin-secret',
             user_key '7491126018028090001');
CREATE FOREIGN TABLE wide_records (project_key text, work_item_id bigint,
    work_item_type_key text, operation_time timestamptz, operator text, operator_type text,
    operation_type text, op_record_module text, source_type text, source text,
    record_contents jsonb) SERVER wide;
CREATE SERVER huawei FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'huawei', base_url :'sim_url', iam_url :'sim_url',
             project_id 'a1b2c3d4e5f60718293a4b5c6d7e8f90');
CREATE USER MAPPING FOR CURRENT_USER SERVER huawei
    OPTIONS (user_name 'sim_user', password 'sim-password', domain_name 'sim_domain');
CREATE FOREIGN TABLE wide_issues (project_id text, issue_id bigint, journal_id bigint,
    created_on timestamptz, notes text, user_id bigint, user_name text, user_nick_name text,
    user_first_name text, user_identifier text, detail_id bigint, property text,
    field_name text, operation text, old_value text, new_value text) SERVER huawei;

-- one refresh's figures, as the status view records them
CREATE FUNCTION report(label text, m regclass) RETURNS text LANGUAGE sql AS $$
    SELECT format('%-46s %6s rows %5s requests %9s ms', label, rows, last_requests,
                  round((extract(epoch FROM last_end - last_start) * 1000)::numeric))
    FROM oprec_fdw_mirrors WHERE mirror = m
$$;
CREATE FUNCTION ms(t timestamptz) RETURNS bigint LANGUAGE sql
    RETURN (extract(epoch FROM t) * 1000)::bigint;
CREATE FUNCTION sim(path text, body text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    EXECUTE format('COPY (SELECT 1) TO PROGRAM %L',
                   format('curl -sf -X POST %s%s -H ''Content-Type: application/json'' --data-binary %L >/dev/null',
                          current_setting('bench.sim_url'), path, body));
END $$;
SELECT set_config('bench.sim_url', :'sim_url', false);

\pset tuples_only on
\pset format unaligned
SELECT oprec_fdw_create_mirror('wide_records', 'wide_mirror', refresh_every => '1 day') IS NOT NULL;
SELECT report('feishu: first fill, 450 work items', 'wide_mirror');
SELECT oprec_fdw_create_mirror('wide_issues', 'issues_mirror', refresh_every => '1 day') IS NOT NULL;
SELECT report('huawei: first fill, 250 issues', 'issues_mirror');

SELECT sim('/_sim/config', format('{"add_records": {"feishu": [{"work_item_id": 3001, "operation_time": %s},
    {"work_item_id": 3002, "operation_time": %s}]}}', ms(now() - interval '1 minute'), ms(now() - interval '20 minutes')));
SELECT outcome = 'refreshed' FROM oprec_fdw_refresh_mirror('wide_mirror');
SELECT report('feishu: refresh after 2 records arrived', 'wide_mirror');
SELECT outcome = 'refreshed' FROM oprec_fdw_refresh_mirror('wide_mirror');
SELECT report('feishu: refresh with nothing new', 'wide_mirror');
SELECT sim('/_sim/config', format('{"add_records": {"huawei": [{"issue_id": 8000001, "created_on": %s}]}}',
    ms(now() - interval '5 minutes')));
SELECT outcome = 'refreshed' FROM oprec_fdw_refresh_mirror('issues_mirror');
SELECT report('huawei: refresh after 1 entry arrived', 'issues_mirror');

-- the worker: a record arrives; how long until the mirror holds it
SELECT oprec_fdw_drop_mirror('issues_mirror');
SELECT oprec_fdw_drop_mirror('wide_mirror');
SELECT oprec_fdw_create_mirror('wide_records', 'wide_mirror', refresh_every => '10 seconds',
                               since => now() - interval '30 days') IS NOT NULL;
CREATE TEMP TABLE lags (lag interval);
DO $$
DECLARE
    arrived timestamptz;
BEGIN
    FOR i IN 1 .. 5 LOOP
        PERFORM pg_sleep(3 + i);
        arrived := clock_timestamp();
        PERFORM sim('/_sim/config', format('{"add_records": {"feishu": [{"work_item_id": 3001, "operation_time": %s}]}}',
                    ms(arrived)));
        FOR j IN 1 .. 1200 LOOP
            EXIT WHEN EXISTS (SELECT 1 FROM wide_mirror WHERE operation_time = arrived::timestamptz(3));
            PERFORM pg_sleep(0.1);
        END LOOP;
        INSERT INTO lags VALUES (clock_timestamp() - arrived);
        COMMIT;
    END LOOP;
END $$;
SELECT format('worker lag, refresh_every 10 s: %s s on average, %s s at most (of 5 records)',
              round(extract(epoch FROM avg(lag))::numeric, 1), round(extract(epoch FROM max(lag))::numeric, 1))
FROM lags;
SQL

echo "== mirrors, at the APIs' default quotas"
pg_virtualenv -v "$OPREC_PG_VERSION" -o "shared_preload_libraries=oprec_fdw" \
    -o "oprec_fdw.mirror_databases=postgres" -o "oprec_fdw.mirror_naptime=1" \
    psql -X -q -d postgres -v sim_url="$OPREC_SIM_URL" -f "$script" 2>&1 \
    | grep -v '^$' | grep -v '^t$' || true
