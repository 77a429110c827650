-- oprec_fdw demo: operation records of Feishu Project work items and the
-- history of Huawei CodeArts Req issues, read from the local API simulator
-- (its base URL is passed in as :sim_url).
\set ECHO queries
\pset footer off
SET timezone = 'Asia/Shanghai';
SELECT (extract(epoch FROM now()) * 1000)::bigint AS now_ms \gset

CREATE EXTENSION oprec_fdw;

CREATE SERVER feishu FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url :'sim_url', project_key 'proj_alpha');

CREATE USER MAPPING FOR CURRENT_USER SERVER feishu
    OPTIONS (plugin_id 'MII_SIM_PLUGIN', plugin_secret 'sim-plugin-secret',
             user_key '7491126018028090001');

CREATE FOREIGN TABLE feishu_op_records (
    project_key text,
    work_item_id bigint,
    work_item_type_key text,
    operation_time timestamptz,
    operator text,
    operator_type text,
    operation_type text,
    op_record_module text,
    source_type text,
    source text,
    record_contents jsonb
) SERVER feishu;

\echo
\echo '== The last 7 days of one work item'
SELECT operation_time, operator_type, operation_type, op_record_module
FROM feishu_op_records
WHERE work_item_id = 1300 AND operation_time >= now() - interval '7 days'
ORDER BY operation_time;

\echo '== What changed, field by field (record_contents flattened)'
SELECT r.operation_time, c->'object'->>'object_value' AS field,
       c->'old' AS old_value, c->'new' AS new_value
FROM feishu_op_records r, jsonb_array_elements(r.record_contents) AS c
WHERE r.work_item_id = 1001 AND r.operation_time >= '2025-05-20' AND r.operation_time < '2025-05-21'
ORDER BY r.operation_time;

\echo '== 120 work items over two months: who changed what (3 id batches x 9 windows)'
SELECT operator_type, operation_type, count(*) AS changes, count(DISTINCT work_item_id) AS items
FROM feishu_op_records
WHERE work_item_id = ANY (ARRAY(SELECT generate_series(1001, 1120)::bigint))
  AND operation_time >= '2025-01-01' AND operation_time < '2025-03-01'
GROUP BY 1, 2 ORDER BY 3 DESC;

\echo '== A join with a local table of work items'
CREATE TEMP TABLE my_items (id bigint PRIMARY KEY, team text);
INSERT INTO my_items VALUES (1001, 'payments'), (1002, 'payments'), (1005, 'search'), (1006, 'search');
SELECT m.team, count(*) AS changes, max(r.operation_time) AS last_change
FROM my_items m
JOIN feishu_op_records r ON r.work_item_id = m.id
WHERE r.work_item_id = ANY (ARRAY(SELECT id FROM my_items))
GROUP BY m.team ORDER BY m.team;

\echo '== What the scan asked for'
EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF)
SELECT count(*) FROM feishu_op_records
WHERE work_item_id IN (1001, 1002, 1003) AND operator_type = 'user'
  AND operation_time BETWEEN '2025-05-01' AND '2025-06-01';

\echo
\echo '== Huawei CodeArts Req: signed with an AK/SK pair'
CREATE SERVER huawei FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'huawei', base_url :'sim_url', project_id 'c15cc54e338d4506afd9bd8103071ff0');

CREATE USER MAPPING FOR CURRENT_USER SERVER huawei
    OPTIONS (access_key 'SIMAK0000000000000001', secret_key 'sim-secret-key-0001');

CREATE FOREIGN TABLE huawei_issue_records (
    project_id text, issue_id bigint, journal_id bigint, created_on timestamptz,
    notes text, user_id bigint, user_name text, user_nick_name text,
    user_first_name text, user_identifier text, detail_id bigint, property text,
    field_name text, operation text, old_value text, new_value text
) SERVER huawei;

\echo '== The history of one issue'
SELECT created_on, journal_id, user_nick_name, field_name, operation, left(new_value, 30) AS new_value
FROM huawei_issue_records WHERE issue_id = 9175005
ORDER BY created_on DESC, detail_id;

\echo '== Who changed status_id in the last week'
SELECT issue_id, created_on, user_nick_name, old_value, new_value
FROM huawei_issue_records
WHERE issue_id IN (5555, 100, 101, 102) AND field_name = 'status_id'
  AND created_on >= now() - interval '7 days'
ORDER BY created_on;

\echo '== Every change of the last 30 days, by person: no work item named (the space is listed first), names joined'
CREATE FOREIGN TABLE feishu_users (
    user_key text, username text, name_cn text, name_en text,
    email text, status text, name jsonb
) SERVER feishu OPTIONS (resource 'users');
SELECT u.name_cn, u.name_en, count(*) AS changes
FROM feishu_op_records r JOIN feishu_users u ON u.user_key = r.operator
WHERE r.operation_time >= now() - interval '30 days'
GROUP BY 1, 2 ORDER BY 3 DESC, 1;

\echo '== A mirror: the whole space copied into a table, refreshed every 10 minutes by a background worker'
SELECT oprec_fdw_create_mirror('feishu_op_records', 'op_history', refresh_every => '10 minutes');
SELECT mirror, rows, last_outcome, last_requests, next_due - last_start AS refreshed_every
FROM oprec_fdw_mirrors;

\echo '== Two records arrive at the API (the simulator adds them); the next refresh copies them'
\set add_records '{"add_records": {"feishu": [{"work_item_id": 1001, "operation_time": ' :now_ms '}, {"work_item_id": 1002, "operation_time": ' :now_ms '}]}}'
SELECT format('curl -sf -X POST %s/_sim/config -H ''Content-Type: application/json'' --data-binary %L',
              :'sim_url', :'add_records') AS add_records_command \gset
COPY (SELECT 1) TO PROGRAM :'add_records_command';
SELECT outcome, rows_read, requests FROM oprec_fdw_refresh_mirror('op_history');
SELECT work_item_id, operation_time, operator, operation_type
FROM op_history WHERE operation_time >= now() - interval '1 minute' ORDER BY 1;

\echo '== A dashboard query on the mirror: no request to the API'
SELECT date_trunc('month', operation_time) AS month, operator_type, count(*) AS changes
FROM op_history
WHERE operation_time >= '2026-06-01' AND operation_time < '2026-10-01'
GROUP BY 1, 2 ORDER BY 1, 2;
SELECT last_requests, lag FROM oprec_fdw_mirrors;

\echo '== Neither work items nor a time range: refused before any request, saying how to narrow it'
\set ON_ERROR_STOP 0
SELECT count(*) FROM feishu_op_records WHERE operator_type = 'user';
