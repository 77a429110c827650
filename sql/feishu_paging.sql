--
-- Paging: pages are fetched as the executor asks for rows, the cursor is
-- followed while has_more is true (short and empty pages do not end a
-- chain), and a LIMIT stops the requests.
--
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\getenv sim_url OPREC_SIM_URL

-- tiny pages: the simulator answers some of them with no record at all
CREATE SERVER feishu_pages FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url :'sim_url', project_key 'proj_alpha', page_size '3');
CREATE USER MAPPING FOR CURRENT_USER SERVER feishu_pages
    OPTIONS (plugin_token 'p-static-sim-token', user_key '7491126018028090001');
CREATE FOREIGN TABLE feishu_small_pages (
    project_key text, work_item_id bigint, work_item_type_key text,
    operation_time timestamptz, operator text, operator_type text,
    operation_type text, op_record_module text, source_type text,
    source text, record_contents jsonb
) SERVER feishu_pages;

SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM feishu_small_pages WHERE work_item_id = 1001;
SELECT * FROM sim.compare('got', 'work_item_id = 1001');
SELECT seq, page_size, start_from IS NOT NULL AS has_cursor, records, has_more, token
FROM sim.feishu_requests ORDER BY seq;
DROP TABLE got;

-- thousands of records over many pages, some of them short
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records WHERE work_item_id = 5000;
SELECT * FROM sim.compare('got', 'work_item_id = 5000');
SELECT count(*) AS requests, sum(records) AS records,
       count(*) FILTER (WHERE records < page_size AND has_more) AS short_pages_with_more,
       count(*) FILTER (WHERE NOT has_more) AS last_pages
FROM sim.feishu_requests WHERE api = 'feishu';
DROP TABLE got;

-- LIMIT stops fetching: 5 rows need one page, 250 rows two
SELECT sim.reset();
SELECT count(*) FROM (SELECT * FROM feishu_op_records WHERE work_item_id = 5000 LIMIT 5) s;
SELECT count(*) AS requests FROM sim.feishu_requests WHERE api = 'feishu';
SELECT sim.reset();
SELECT count(*) FROM (SELECT * FROM feishu_op_records WHERE work_item_id = 5000 LIMIT 250) s;
SELECT count(*) AS requests, sum(records) AS records FROM sim.feishu_requests WHERE api = 'feishu';

-- EXISTS needs one row only
SELECT sim.reset();
SELECT EXISTS (SELECT 1 FROM feishu_op_records WHERE work_item_id = 5000 AND operator_type = 'user');
SELECT count(*) AS requests FROM sim.feishu_requests WHERE api = 'feishu';

-- a cursor that keeps coming back is an error, not an endless loop
SELECT sim.reset();
SELECT sim.configure('{"feishu_repeat_cursor": true}');
SELECT count(*) FROM feishu_small_pages WHERE work_item_id = 1001;
SELECT count(*) AS requests, count(DISTINCT start_from) AS cursors_sent
FROM sim.feishu_requests WHERE api = 'feishu';

-- "has_more" without a cursor to follow is an error too
SELECT sim.reset();
SELECT sim.configure('{"fail_next": {"path": "/op_record/", "count": 1, "status": 200,
    "body": {"err": {}, "err_code": 0, "err_msg": "", "data": {"has_more": true, "start_from": "", "op_records": []}}}}');
SELECT count(*) FROM feishu_small_pages WHERE work_item_id = 1001;

SELECT sim.reset();
DROP FOREIGN TABLE feishu_small_pages;
DROP USER MAPPING FOR CURRENT_USER SERVER feishu_pages;
DROP SERVER feishu_pages;
