--
-- Queries that name no work item: the space's work items are listed first
-- (POST /open_api/:project_key/work_item/filter, after the space's types),
-- those updated since the time range starts, then their history is read in
-- batches of 50 as if the query had named them.  Results are compared with
-- the simulator's data under that coverage rule.
--
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

-- The space's work items as the simulator lists them.
CREATE TABLE sim.feishu_items AS
SELECT r->>'project_key' AS project_key,
       (r->>'id')::bigint AS id,
       sim.ms((r->>'updated_at')::bigint) AS updated_at,
       (r->>'terminated')::boolean AS terminated,
       (r->>'deleted')::boolean AS deleted
FROM (SELECT line::jsonb AS r FROM sim.call('GET', '/_sim/truth/feishu_work_items') AS line) AS t;

-- The listing requests of the last query, by path.
CREATE VIEW sim.feishu_calls AS
SELECT (r->>'seq')::int AS seq,
       regexp_replace(r->>'path', '^/open_api/[^/]+/work_item/', '/open_api/:project_key/work_item/') AS path,
       (r->>'status')::int AS status,
       r->'body' AS body
FROM sim.requests() AS r
WHERE r->>'api' = 'feishu';

-- neither ids nor a time range: refused before any request, saying how to
-- narrow the query
SELECT sim.reset();
SELECT * FROM sim.error_of('SELECT * FROM feishu_op_records');
SELECT count(*) AS requests FROM sim.feishu_calls;

-- a BI tool's first look: LIMIT 100 comes back after a handful of requests
SELECT sim.reset();
SELECT count(*) AS rows FROM (SELECT * FROM feishu_op_records LIMIT 100) s;
SELECT path, count(*) AS requests FROM sim.feishu_calls GROUP BY path ORDER BY path;

-- every change of 30 days: the items updated since the range starts are
-- listed (the terminated ones in a listing of their own: the filter leaves
-- them out unless their state is named), and every record of them in the
-- range comes back
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records
WHERE operation_time >= '2026-08-20' AND operation_time < '2026-09-19';
SELECT * FROM sim.compare('got', $$operation_time >= '2026-08-20' AND operation_time < '2026-09-19'
    AND project_key = 'proj_alpha'
    AND work_item_id IN (SELECT id FROM sim.feishu_items WHERE project_key = 'proj_alpha'
                         AND updated_at >= '2026-08-20' AND NOT deleted)$$);
-- (here the same as every record of the range)
SELECT * FROM sim.compare('got', $$operation_time >= '2026-08-20' AND operation_time < '2026-09-19'
    AND project_key = 'proj_alpha'$$);
SELECT path, count(*) AS requests FROM sim.feishu_calls GROUP BY path ORDER BY path;
-- the filter asks for the space's types, and items updated since the range
-- starts: once as it lists by default, once for the terminated ones
SELECT body->'work_item_type_keys' AS types,
       sim.ms((body->'updated_at'->>'start')::bigint) AS updated_since,
       body->'page_size' AS page_size, body->'work_item_status' AS states
FROM sim.feishu_calls WHERE path LIKE '%/filter' ORDER BY seq;
DROP TABLE got;

-- the coverage rule: an item with a record at time t is taken to have
-- updated_at >= t.  Item 1010 breaks it (updated_at 2026-08-07 06:54,
-- a record on 2026-08-13): listed by update time it is missed ...
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records
WHERE operation_time >= '2026-08-10' AND operation_time < '2026-08-20';
SELECT * FROM sim.compare('got', $$operation_time >= '2026-08-10' AND operation_time < '2026-08-20'
    AND project_key = 'proj_alpha'$$);
SELECT DISTINCT t.work_item_id AS missed
FROM sim.feishu_truth t
WHERE t.operation_time >= '2026-08-10' AND t.operation_time < '2026-08-20' AND t.project_key = 'proj_alpha'
  AND t.work_item_id NOT IN (SELECT work_item_id FROM got);
DROP TABLE got;
-- ... and with list_items 'all' every item is listed: nothing is missed
ALTER SERVER feishu OPTIONS (ADD list_items 'all');
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records
WHERE operation_time >= '2026-08-10' AND operation_time < '2026-08-20';
SELECT * FROM sim.compare('got', $$operation_time >= '2026-08-10' AND operation_time < '2026-08-20'
    AND project_key = 'proj_alpha'$$);
SELECT count(*) FILTER (WHERE body ? 'updated_at') AS filtered_by_update FROM sim.feishu_calls
WHERE path LIKE '%/filter';
DROP TABLE got;
ALTER SERVER feishu OPTIONS (DROP list_items);

-- what it costs is shown before it runs
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM feishu_op_records WHERE operation_time >= '2026-08-10';
EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF)
SELECT * FROM feishu_op_records WHERE operation_time >= '2026-08-10' AND operation_time < '2026-08-20';

-- a cap on the requests of one scan: passing it is an error naming it,
-- never a result cut short
ALTER SERVER feishu OPTIONS (ADD max_requests '3');
SELECT * FROM sim.error_of($$SELECT * FROM feishu_op_records WHERE operation_time >= '2025-01-01'$$);
ALTER SERVER feishu OPTIONS (DROP max_requests);
ALTER FOREIGN TABLE feishu_op_records OPTIONS (ADD max_requests '2');
SELECT * FROM sim.error_of($$SELECT * FROM feishu_op_records WHERE operation_time >= '2025-01-01'$$);
ALTER FOREIGN TABLE feishu_op_records OPTIONS (DROP max_requests);

-- the whole history, with consent: every record of the space, terminated
-- items' included
ALTER SERVER feishu OPTIONS (ADD whole_history 'allow');
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records;
SELECT * FROM sim.compare('got', $$project_key = 'proj_alpha'$$);
SELECT count(DISTINCT work_item_id) AS terminated_items_read FROM got
WHERE work_item_id IN (SELECT id FROM sim.feishu_items WHERE terminated);
DROP TABLE got;
ALTER SERVER feishu OPTIONS (DROP whole_history);

-- options are checked
ALTER SERVER feishu OPTIONS (ADD list_items 'some');
ALTER SERVER feishu OPTIONS (ADD whole_history 'yes');
ALTER SERVER feishu OPTIONS (ADD max_requests '0');

-- Huawei: without issue ids, the project's issues updated since the range
-- starts are listed (POST /v4/projects/{project_id}/issues, 100 a page,
-- deleted issues included: their history is still served), and each one's
-- history read with get-record, rows as usual
CREATE TABLE sim.huawei_issues AS
SELECT r->>'project_id' AS project_id,
       (r->'issue'->>'id')::bigint AS id,
       sim.ms((r->>'updated_ms')::bigint) AS updated_at,
       (r->'issue'->>'deleted')::boolean AS deleted
FROM (SELECT line::jsonb AS r FROM sim.call('GET', '/_sim/truth/huawei_issues') AS line) AS t;
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM huawei_issue_records
WHERE created_on >= '2025-08-01' AND created_on < '2025-10-01';
SELECT * FROM sim.compare('got', $$created_on >= '2025-08-01' AND created_on < '2025-10-01'
    AND project_id = 'c15cc54e338d4506afd9bd8103071ff0'
    AND issue_id IN (SELECT id FROM sim.huawei_issues WHERE updated_at >= '2025-08-01')$$,
    'sim.huawei_truth');
SELECT * FROM sim.compare('got', $$created_on >= '2025-08-01' AND created_on < '2025-10-01'
    AND project_id = 'c15cc54e338d4506afd9bd8103071ff0'$$, 'sim.huawei_truth');
SELECT r->>'method' AS method, regexp_replace(r->>'path', '/v4/projects/[^/]+/', '/v4/projects/{project_id}/') AS path,
       r->'body'->>'updated_time_interval' AS updated_time_interval,
       r->'body'->'include_deleted' AS include_deleted, count(*) AS requests
FROM sim.requests() r WHERE r->>'api' = 'huawei' GROUP BY 1, 2, 3, 4 ORDER BY 2;
DROP TABLE got;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT * FROM huawei_issue_records WHERE created_on >= '2025-08-01' AND created_on < '2025-10-01';
EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF)
SELECT * FROM huawei_issue_records WHERE created_on >= '2025-08-01' AND created_on < '2025-10-01';
-- a first look with LIMIT, and the refusal without a time bound
SELECT sim.reset();
SELECT count(*) AS rows FROM (SELECT * FROM huawei_issue_records LIMIT 20) s;
SELECT count(*) AS requests FROM sim.huawei_requests WHERE api = 'huawei';
SELECT * FROM sim.error_of('SELECT * FROM huawei_issue_records');

DROP VIEW sim.feishu_calls;
DROP TABLE sim.huawei_issues;  -- sim.feishu_items stays for users.sql
