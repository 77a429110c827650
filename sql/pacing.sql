--
-- Pacing shared across backends: with the library in
-- shared_preload_libraries (as the test suite's cluster has it), three
-- backends scanning at once on one token stay within the API's quota,
-- where each pacing itself would send three times the quota.  Whether
-- pacing is shared shows in pg_shmem_allocations ("oprec_fdw pacing").
--
-- dblink connects back to this cluster (sim.connstr()).
--
SET timezone = 'UTC';
SET client_min_messages = warning;
\getenv sim_url OPREC_SIM_URL

-- the test suite's cluster preloads the library: pacing is shared
SELECT EXISTS (SELECT FROM pg_shmem_allocations WHERE name = 'oprec_fdw pacing')
    AS shared_pacing \gset
SELECT :'shared_pacing'::boolean AS shared_pacing;

-- a static plugin_token: no token exchange, every request is a page
CREATE SERVER feishu_paced FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url :'sim_url', project_key 'proj_alpha',
             requests_per_second '15');
CREATE USER MAPPING FOR CURRENT_USER SERVER feishu_paced
    OPTIONS (plugin_token 'p-static-sim-token', user_key '7491126018028090001');
CREATE FOREIGN TABLE feishu_paced_records (
    project_key text, work_item_id bigint, work_item_type_key text,
    operation_time timestamptz, operator text, operator_type text,
    operation_type text, op_record_module text, source_type text,
    source text, record_contents jsonb
) SERVER feishu_paced;

\if :shared_pacing
CREATE EXTENSION dblink;
SELECT sim.connstr() AS connstr \gset

-- the simulator's quota equals the servers' pace: 15 requests per second
SELECT sim.reset();
SELECT sim.configure('{"feishu_qps": 15}');

-- Three backends, one token, each scan about 20 pages (3,000 records at
-- page_size 200): some 60 requests, so about 4 s at 15 per second in all.
-- Paced per backend they would ask 45 per second and be throttled.
SELECT dblink_connect('b1', :'connstr'), dblink_connect('b2', :'connstr'),
       dblink_connect('b3', :'connstr');
SELECT dblink_send_query(b, 'SELECT count(*) FROM feishu_paced_records WHERE work_item_id = 5000')
FROM unnest(ARRAY['b1', 'b2', 'b3']) AS b;
SELECT b, (SELECT n FROM dblink_get_result(b) AS r(n bigint)) =
          (SELECT count(*) FROM sim.feishu_truth WHERE work_item_id = 5000) AS all_rows
FROM unnest(ARRAY['b1', 'b2', 'b3']) AS b ORDER BY b;
-- dblink_get_result needs one more call to end each query
SELECT count(*) FROM unnest(ARRAY['b1', 'b2', 'b3']) AS b,
    LATERAL dblink_get_result(b) AS r(n bigint);
SELECT dblink_disconnect('b1'), dblink_disconnect('b2'), dblink_disconnect('b3');

-- the scans overlapped (each is ~20 requests) and none was throttled
SELECT count(*) >= 50 AS enough_requests,
       count(*) FILTER (WHERE status = 429) AS throttled,
       count(*) FILTER (WHERE status IS DISTINCT FROM 200) AS not_ok
FROM sim.feishu_requests WHERE api = 'feishu';

DROP EXTENSION dblink;
\endif

SELECT sim.reset();
DROP SERVER feishu_paced CASCADE;
