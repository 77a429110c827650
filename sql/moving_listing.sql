--
-- Queries that name no ids list the space's items, and the list moves
-- while it is read: an item edited meanwhile jumps to the top of the
-- listing's order (update time, newest first).  Every item must still be
-- read exactly once: none twice, none missed.  The simulator's wide space
-- (450 work items) and wide project (250 issues) need several pages; its
-- edit_during_listing setting edits items once the listing has had the
-- given number of answers: here the three items listed last, just after
-- the first answer, so that they jump from unread pages to the one read.
--
SET timezone = 'UTC';
SET client_min_messages = warning;
\getenv sim_url OPREC_SIM_URL

CREATE TABLE sim.listed_items AS
SELECT r->>'project_key' AS project_key, (r->>'id')::bigint AS id,
       sim.ms((r->>'updated_at')::bigint) AS updated_at
FROM (SELECT line::jsonb AS r FROM sim.call('GET', '/_sim/truth/feishu_work_items') AS line) AS t;

-- the listing requests of the last query, and the edits they were followed
-- by (not Feishu's listing of terminated items: the wide space has none)
CREATE VIEW sim.listing_calls AS
SELECT (r->>'seq')::int AS seq, r->>'api' AS api, (r->>'records')::int AS items,
       r->'body' AS body, r->'edited' AS edited
FROM sim.requests() AS r
WHERE (r->>'path' LIKE '%/work_item/filter' OR r->>'path' LIKE '/v4/projects/%/issues')
  AND NOT r->'body' ? 'work_item_status';

-- Feishu: the wide space, 450 items updated since 2025
CREATE SERVER feishu_wide FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url :'sim_url', project_key 'proj_wide',
             requests_per_second '0', max_concurrency '8');
CREATE USER MAPPING FOR CURRENT_USER SERVER feishu_wide
    OPTIONS (plugin_token 'p-static-sim-token', user_key '7491126018028090001');
CREATE FOREIGN TABLE wide_records (project_key text, work_item_id bigint,
    operation_time timestamptz, operator text, operation_type text) SERVER feishu_wide;

SELECT sim.reset();
SELECT sim.configure(format('{"edit_during_listing": {"feishu_after": 1, "feishu_items": %s}}',
    (SELECT json_agg(id ORDER BY updated_at, id) FROM
        (SELECT id, updated_at FROM sim.listed_items WHERE project_key = 'proj_wide'
         ORDER BY updated_at, id LIMIT 3) oldest))::jsonb);
CREATE TEMP TABLE got AS SELECT * FROM wide_records WHERE operation_time >= '2025-01-01';
-- every record of the space, each once
SELECT * FROM sim.compare('got', $$project_key = 'proj_wide' AND operation_time >= '2025-01-01'$$);
SELECT count(DISTINCT work_item_id) AS items_read FROM got;
-- The first answer holds 200 of the 450 items: the range is closed and
-- split into slices of a page each (how many depends on today's date, the
-- range's end); the three items edited after it left those slices, and the
-- last request, for what was updated since, finds them.  No request asks
-- for a second page.
CREATE TEMP VIEW calls AS
SELECT row_number() OVER (ORDER BY seq) AS n, count(*) OVER () AS last, items,
       edited IS NOT NULL AS edit_after,
       coalesce(body->'updated_at' ? 'end', body->>'updated_time_interval' ~ ',.') AS closed,
       body ? 'created_at' OR body ? 'created_time_interval' AS follow_up,
       coalesce((body->>'page_num')::int - 1, (body->>'offset')::int) > 0 AS later_page
FROM sim.listing_calls;
-- the first request, the slices, the last request
CREATE TEMP VIEW listing AS
SELECT 'first' AS request, items, edit_after, closed, follow_up FROM calls WHERE n = 1
UNION ALL
SELECT 'slices', NULL, bool_or(edit_after), bool_and(closed), bool_or(follow_up)
FROM calls WHERE n > 1 AND n < last
UNION ALL
SELECT 'last', items, edit_after, closed, follow_up FROM calls WHERE n = last;
SELECT * FROM listing;
-- the slices list every item but the three (slices share their edges)
SELECT sum(items) >= 450 - 3 AS slices_hold_the_rest,
       count(*) FILTER (WHERE later_page) AS later_pages FROM calls WHERE n > 1 AND n < last;
DROP TABLE got;

-- the same without an edit: the last request finds nothing moved
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM wide_records WHERE operation_time >= '2025-01-01';
SELECT * FROM sim.compare('got', $$project_key = 'proj_wide' AND operation_time >= '2025-01-01'$$);
SELECT items, follow_up FROM calls WHERE n = last;
DROP TABLE got;

-- Huawei: the wide project, 250 issues, 100 a page
CREATE SERVER huawei_wide FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'huawei', base_url :'sim_url', project_id 'a1b2c3d4e5f60718293a4b5c6d7e8f90',
             requests_per_second '0', max_concurrency '8');
CREATE USER MAPPING FOR CURRENT_USER SERVER huawei_wide
    OPTIONS (auth_token 'MIIsim-static-huawei-token');
CREATE FOREIGN TABLE wide_issue_records (project_id text, issue_id bigint, journal_id bigint,
    created_on timestamptz, notes text, user_id bigint, user_name text, user_nick_name text,
    user_first_name text, user_identifier text, detail_id bigint, property text,
    field_name text, operation text, old_value text, new_value text) SERVER huawei_wide;
CREATE TABLE sim.listed_issues AS
SELECT r->>'project_id' AS project_id, (r->'issue'->>'id')::bigint AS id,
       sim.ms((r->>'updated_ms')::bigint) AS updated_at
FROM (SELECT line::jsonb AS r FROM sim.call('GET', '/_sim/truth/huawei_issues') AS line) AS t;

SELECT sim.reset();
SELECT sim.configure(format('{"edit_during_listing": {"huawei_after": 1, "huawei_issues": %s}}',
    (SELECT json_agg(id ORDER BY updated_at, id) FROM
        (SELECT id, updated_at FROM sim.listed_issues
         WHERE project_id = 'a1b2c3d4e5f60718293a4b5c6d7e8f90'
         ORDER BY updated_at, id LIMIT 3) oldest))::jsonb);
CREATE TEMP TABLE got AS SELECT * FROM wide_issue_records WHERE created_on >= '2025-01-01';
SELECT * FROM sim.compare('got', $$project_id = 'a1b2c3d4e5f60718293a4b5c6d7e8f90'
    AND created_on >= '2025-01-01'$$, 'sim.huawei_truth');
SELECT count(DISTINCT issue_id) AS issues_read FROM got;
SELECT * FROM listing;
SELECT sum(items) >= 250 - 3 AS slices_hold_the_rest,
       count(*) FILTER (WHERE later_page) AS later_pages FROM calls WHERE n > 1 AND n < last;
DROP TABLE got;

SELECT sim.reset();
DROP VIEW listing, calls, sim.listing_calls;
DROP TABLE sim.listed_items, sim.listed_issues;
DROP SERVER feishu_wide, huawei_wide CASCADE;
