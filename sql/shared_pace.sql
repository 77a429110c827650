--
-- What a backend holds in the pace of a credential, with the library
-- preloaded as the test suite's cluster has it (the pace is then shared by
-- every backend): a new connection whose first request has to wait for
-- the pace, and cursors left open mid-scan.  oprec_fdw_pace() shows a
-- credential's pace: the requests it counts in flight and completed within
-- the last second.
--
SET timezone = 'UTC';
SET client_min_messages = warning;
\getenv sim_url OPREC_SIM_URL

SELECT EXISTS (SELECT FROM pg_shmem_allocations WHERE name = 'oprec_fdw pacing')
    AS shared_pacing \gset

-- one request per second on a static plugin token (no token exchange)
CREATE SERVER feishu_shared FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url :'sim_url', project_key 'proj_alpha',
             requests_per_second '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER feishu_shared
    OPTIONS (plugin_token 'p-static-sim-token', user_key '7491126018028090001');
CREATE FOREIGN TABLE shared_records (project_key text, work_item_id bigint,
    operation_time timestamptz, operator text, operation_type text) SERVER feishu_shared;

SELECT shared, requests_per_second, current_rate, in_flight
FROM oprec_fdw_pace('shared_records');
SELECT * FROM oprec_fdw_pace('sim.settings');
SELECT * FROM oprec_fdw_pace(1);

-- A new connection whose very first request waits for the pace: this
-- backend has just used the credential's request of this second, and the
-- next backend asks at once.  It waits (no transfer exists yet) and then
-- gets its rows.
SELECT sim.reset();
SELECT count(*) = (SELECT count(*) FROM sim.feishu_truth WHERE work_item_id = 1001) AS all_rows
FROM shared_records WHERE work_item_id = 1001;
\c
SET timezone = 'UTC';
SET client_min_messages = warning;
SELECT count(*) = (SELECT count(*) FROM sim.feishu_truth WHERE work_item_id = 1002) AS all_rows
FROM shared_records WHERE work_item_id = 1002;
SELECT count(*) AS requests, count(*) FILTER (WHERE status = 200) AS answered
FROM sim.feishu_requests;
SELECT in_flight FROM oprec_fdw_pace('shared_records');

-- Cursors left open mid-scan, as JDBC fetch sizes and psycopg2's named
-- cursors leave them: each stops with requests in flight (8 chains run
-- together, each answer takes 1.5 s).  When a FETCH returns, the backend may
-- stay idle for any time and would never see those answers arrive: they
-- are counted as completed then, and requests not yet sent are taken back,
-- so the cursor holds no place in the pace while it is idle.
ALTER SERVER feishu_shared OPTIONS (SET requests_per_second '3', ADD max_concurrency '8');
-- rows come in the order pages arrive: a cursor's rows are kept, not shown
CREATE TEMP TABLE got (LIKE shared_records);
CREATE FUNCTION pg_temp.take(c refcursor, n int DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    r shared_records;
    taken bigint := 0;
BEGIN
    WHILE n IS NULL OR taken < n LOOP
        FETCH c INTO r;
        EXIT WHEN NOT FOUND;
        INSERT INTO got SELECT r.*;
        taken := taken + 1;
    END LOOP;
    RETURN taken;
END $$;
SELECT sim.reset();
SELECT sim.configure('{"faults": [{"path": "/op_record/", "kind": "slow", "delay_ms": 1500}]}');
BEGIN;
DECLARE c1 CURSOR FOR SELECT * FROM shared_records
WHERE work_item_id BETWEEN 1001 AND 1130 AND operation_time >= '2025-06-01' AND operation_time < '2025-07-01';
SELECT pg_temp.take('c1', 10);
SELECT in_flight FROM oprec_fdw_pace('shared_records');
DECLARE c2 CURSOR FOR SELECT * FROM shared_records
WHERE work_item_id BETWEEN 1001 AND 1130 AND operation_time >= '2025-09-01' AND operation_time < '2025-10-01';
SELECT pg_temp.take('c2', 10);
SELECT in_flight FROM oprec_fdw_pace('shared_records');
-- once every answer has arrived, the simulator and the pace agree: nothing
-- is in flight
SELECT pg_sleep(2);
SELECT (SELECT (line::jsonb->>'in_flight')::int FROM sim.call('GET', '/_sim/in_flight') AS line)
       AS api_in_flight, in_flight
FROM oprec_fdw_pace('shared_records');

-- answers come at once from here on
SELECT sim.configure('{"faults": []}');

\if :shared_pacing
-- another backend on the credential is not held back by the idle cursors
CREATE EXTENSION dblink;
SELECT sim.connstr() AS connstr \gset
SELECT n = (SELECT count(*) FROM sim.feishu_truth WHERE work_item_id = 1003) AS other_backend_all_rows
FROM dblink(:'connstr', $$SET statement_timeout = '60s';
    SELECT count(*) FROM shared_records WHERE work_item_id = 1003$$) AS r(n bigint);
\endif

-- the cursors read on to their ends: every row exactly once
SELECT pg_temp.take('c1') > 0 AS more_rows, pg_temp.take('c2') > 0 AS more_rows;
COMMIT;
SELECT * FROM sim.compare('got', $$work_item_id BETWEEN 1001 AND 1130
    AND (operation_time >= '2025-06-01' AND operation_time < '2025-07-01'
         OR operation_time >= '2025-09-01' AND operation_time < '2025-10-01')$$);
DROP TABLE got;
SELECT in_flight FROM oprec_fdw_pace('shared_records');

\if :shared_pacing
DROP EXTENSION dblink;
\endif
SELECT sim.reset();
DROP SERVER feishu_shared CASCADE;
