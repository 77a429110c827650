--
-- Request chains in flight together: up to max_concurrency requests at
-- once, each chain with its own cursor, the right rows whatever the order
-- pages arrive in; one failing chain, a cancel or statement_timeout ends
-- the query and abandons every request in flight.  The simulator's log
-- says how many requests it was answering when each arrived (in_flight).
--
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\getenv sim_url OPREC_SIM_URL

CREATE SERVER feishu_conc FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url :'sim_url', project_key 'proj_alpha',
             requests_per_second '0', max_concurrency '8', time_windows 'always');
CREATE USER MAPPING FOR CURRENT_USER SERVER feishu_conc
    OPTIONS (plugin_id 'MII_SIM_PLUGIN', plugin_secret 'sim-plugin-secret',
             user_key '7491126018028090001');
-- the documented tables, in a schema of their own
CREATE SCHEMA conc;
IMPORT FOREIGN SCHEMA feishu FROM SERVER feishu_conc INTO conc;

-- How many requests were in flight together, from the simulator's log.
CREATE FUNCTION sim.api_concurrency(OUT requests bigint, OUT most_in_flight int)
LANGUAGE sql AS $$
    SELECT count(*), max((r->>'in_flight')::int)
    FROM sim.requests() r WHERE r->>'api' IN ('feishu', 'huawei')
$$;

-- Wait (up to 10 s) until the simulator answers no request: requests a
-- query abandoned are still being answered after it ends, and would count
-- as in flight with the next query's.
CREATE FUNCTION sim.wait_idle() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..100 LOOP
        IF (SELECT (line::jsonb->>'in_flight')::int FROM sim.call('GET', '/_sim/in_flight') AS line) = 0 THEN
            RETURN true;
        END IF;
        PERFORM pg_sleep(0.1);
    END LOOP;
    RETURN false;
END $$;

-- 120 work items over 8 weeks: 3 id batches x 8 windows = 24 chains, with
-- the API taking 150 ms per answer: 8 in flight at once, never more
SELECT sim.reset();
SELECT sim.configure('{"delay_ms": 150, "feishu_qps": 0}');
CREATE TEMP TABLE got AS SELECT * FROM conc.feishu_op_records
WHERE work_item_id BETWEEN 1001 AND 1120
  AND operation_time >= '2025-03-01' AND operation_time < '2025-04-26';
SELECT * FROM sim.compare('got', $$work_item_id BETWEEN 1001 AND 1120
  AND operation_time >= '2025-03-01' AND operation_time < '2025-04-26'$$);
SELECT * FROM sim.api_concurrency();
SELECT count(DISTINCT (ids[1], window_start)) AS chains,
       count(*) FILTER (WHERE status <> 200 OR err_code <> '0') AS refused
FROM sim.feishu_requests WHERE api = 'feishu';
DROP TABLE got;

-- the same with max_concurrency 1: one request at a time, the same rows
SELECT sim.reset();
SELECT sim.configure('{"delay_ms": 20, "feishu_qps": 0}');
ALTER SERVER feishu_conc OPTIONS (SET max_concurrency '1');
CREATE TEMP TABLE got AS SELECT * FROM conc.feishu_op_records
WHERE work_item_id BETWEEN 1001 AND 1120
  AND operation_time >= '2025-03-01' AND operation_time < '2025-04-26';
SELECT * FROM sim.compare('got', $$work_item_id BETWEEN 1001 AND 1120
  AND operation_time >= '2025-03-01' AND operation_time < '2025-04-26'$$);
SELECT * FROM sim.api_concurrency();
DROP TABLE got;
ALTER SERVER feishu_conc OPTIONS (SET max_concurrency '8');

-- each chain pages with its own cursor: with 7 records a page, chains of
-- many pages run together; the simulator refuses a cursor used in another
-- chain's request, so the right rows prove every cursor went where it
-- belongs
SELECT sim.reset();
SELECT sim.configure('{"delay_ms": 30, "feishu_qps": 0}');
ALTER SERVER feishu_conc OPTIONS (ADD page_size '7');
CREATE TEMP TABLE got AS SELECT * FROM conc.feishu_op_records
WHERE work_item_id IN (1001, 1002, 1003, 1004, 5000)
  AND operation_time >= '2025-01-01' AND operation_time < '2025-03-01';
SELECT * FROM sim.compare('got', $$work_item_id IN (1001, 1002, 1003, 1004, 5000)
  AND operation_time >= '2025-01-01' AND operation_time < '2025-03-01'$$);
SELECT most_in_flight > 1 AS together FROM sim.api_concurrency();
-- every chain: a first page, then one page per cursor, each asked once
SELECT count(*) AS chains,
       sum(pages) = sum(cursors) + count(*) AS one_first_page_each,
       bool_and(cursors = distinct_cursors) AS each_cursor_once,
       max(pages) > 1 AS chains_of_many_pages
FROM (SELECT ids[1], window_start, count(*) AS pages, count(start_from) AS cursors,
             count(DISTINCT start_from) AS distinct_cursors
      FROM sim.feishu_requests WHERE api = 'feishu'
      GROUP BY ids[1], window_start) chain;
SELECT count(*) FILTER (WHERE status <> 200 OR err_code <> '0') AS refused
FROM sim.feishu_requests WHERE api = 'feishu';
DROP TABLE got;
ALTER SERVER feishu_conc OPTIONS (DROP page_size);

-- a token that expired is renewed once, not once per request in flight:
-- the 8 requests sent with it are refused, and asked again with the new one
SELECT count(*) AS rows FROM conc.feishu_op_records WHERE work_item_id = 1001;
SELECT sim.reset();
SELECT sim.configure('{"delay_ms": 50, "feishu_qps": 0}');
SELECT sim.expire_tokens();
SELECT count(*) > 0 AS read FROM conc.feishu_op_records
WHERE work_item_id BETWEEN 1001 AND 1120
  AND operation_time >= '2025-03-01' AND operation_time < '2025-04-26';
SELECT count(*) FILTER (WHERE api = 'feishu_auth') AS token_requests,
       count(*) FILTER (WHERE api = 'feishu' AND err_code = '0') AS pages,
       count(*) FILTER (WHERE api = 'feishu' AND err_code <> '0') AS refused_tokens
FROM sim.feishu_requests;

-- one chain failing (ids 1001 to 1050, the week from 15 March) fails the
-- query, naming its request; the others are abandoned, and nothing more is
-- sent
SELECT sim.reset();
SELECT sim.configure($${"delay_ms": 100, "feishu_qps": 0, "faults": [{"path": "/op_record/", "kind": "error",
    "status": 200, "match": "1050],\"start\":1741996800000",
    "body": {"err_code": 20006, "err_msg": "invalid param", "data": null}}]}$$);
-- (the order requests arrive in varies: the log id is not shown)
SELECT field, regexp_replace(value, 'log id [0-9a-f]+', 'log id ...') AS value
FROM sim.error_of($$SELECT * FROM conc.feishu_op_records
WHERE work_item_id BETWEEN 1001 AND 1120
  AND operation_time >= '2025-03-01' AND operation_time < '2025-04-26'$$);
SELECT sim.wait_idle();
CREATE TEMP TABLE sent AS SELECT * FROM sim.feishu_requests WHERE api = 'feishu';
SELECT pg_sleep(0.3);
SELECT (SELECT count(*) FROM sim.feishu_requests WHERE api = 'feishu') = count(*) AS nothing_more_sent,
       count(*) < 24 AS stopped_early,
       count(*) FILTER (WHERE fault = 'error') AS failed
FROM sent;
DROP TABLE sent;

-- statement_timeout with 8 requests in flight: the query ends at once;
-- their places in the pace window are given back, so the next query,
-- paced at 8 requests a second, is not kept waiting by requests that will
-- never complete
ALTER SERVER feishu_conc OPTIONS (SET requests_per_second '8');
-- (a changed server sends one request alone first, to check the credential)
SELECT count(*) AS rows FROM conc.feishu_op_records WHERE work_item_id = 1001;
SELECT pg_sleep(1.1);
SELECT sim.reset();
SELECT sim.configure('{"delay_ms": 3000, "feishu_qps": 0}');
SET statement_timeout = '400ms';
SELECT count(*) FROM conc.feishu_op_records
WHERE work_item_id BETWEEN 1001 AND 1120
  AND operation_time >= '2025-03-01' AND operation_time < '2025-04-26';
RESET statement_timeout;
SELECT most_in_flight AS in_flight_at_cancel FROM sim.api_concurrency();
SELECT sim.configure('{"delay_ms": 0, "feishu_qps": 0}');
SET statement_timeout = '20s';
SELECT count(*) AS rows FROM conc.feishu_op_records WHERE work_item_id = 1001;
RESET statement_timeout;
ALTER SERVER feishu_conc OPTIONS (SET requests_per_second '0');
SELECT sim.wait_idle();

-- a LIMIT met by the first pages stops the chains: the scan ends, and the
-- requests still in flight with it
SELECT sim.reset();
SELECT sim.configure('{"delay_ms": 100, "feishu_qps": 0}');
SELECT count(*) FROM (SELECT * FROM conc.feishu_op_records
    WHERE work_item_id BETWEEN 1001 AND 1120
      AND operation_time >= '2025-03-01' AND operation_time < '2025-04-26' LIMIT 3) sub;
SELECT requests < 24 AS stopped_early FROM sim.api_concurrency();
SELECT sim.wait_idle();

-- a join with a local table of ids (the ids read once, then batched):
-- the batches' chains run together
SELECT sim.reset();
SELECT sim.configure('{"delay_ms": 50, "feishu_qps": 0}');
CREATE TEMP TABLE my_items AS SELECT g::bigint AS id FROM generate_series(1001, 1120) g;
ANALYZE my_items;
CREATE TEMP TABLE got AS SELECT r.* FROM my_items m JOIN conc.feishu_op_records r ON r.work_item_id = m.id
WHERE r.operation_time >= '2025-03-01' AND r.operation_time < '2025-04-26';
SELECT * FROM sim.compare('got', $$work_item_id BETWEEN 1001 AND 1120
  AND operation_time >= '2025-03-01' AND operation_time < '2025-04-26'$$);
SELECT requests, most_in_flight > 1 AS together FROM sim.api_concurrency();
DROP TABLE got, my_items;

-- a long time range: each id batch's first page (a walk without the range)
-- decides between walking on and the range's windows, chains together
ALTER SERVER feishu_conc OPTIONS (DROP time_windows);
SELECT sim.reset();
SELECT sim.configure('{"delay_ms": 50, "feishu_qps": 0}');
CREATE TEMP TABLE got AS SELECT * FROM conc.feishu_op_records
WHERE work_item_id BETWEEN 1001 AND 1130
  AND operation_time >= '2024-07-01' AND operation_time < '2026-12-01';
SELECT * FROM sim.compare('got', $$work_item_id BETWEEN 1001 AND 1130
  AND operation_time >= '2024-07-01' AND operation_time < '2026-12-01'$$);
SELECT requests, most_in_flight > 1 AS together FROM sim.api_concurrency();
DROP TABLE got;

-- Huawei: issues in flight together
CREATE SERVER huawei_conc FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'huawei', base_url :'sim_url', project_id 'c15cc54e338d4506afd9bd8103071ff0',
             page_size '7', requests_per_second '0', max_concurrency '4');
CREATE USER MAPPING FOR CURRENT_USER SERVER huawei_conc
    OPTIONS (auth_token 'MIIsim-static-huawei-token');
IMPORT FOREIGN SCHEMA huawei FROM SERVER huawei_conc INTO conc;
SELECT sim.reset();
SELECT sim.configure('{"delay_ms": 100}');
CREATE TEMP TABLE got AS SELECT * FROM conc.huawei_issue_records
WHERE issue_id IN (100, 101, 102, 103, 104, 9175005);
SELECT * FROM sim.compare('got', 'issue_id IN (100, 101, 102, 103, 104, 9175005)', 'sim.huawei_truth');
SELECT most_in_flight AS in_flight FROM sim.api_concurrency();
-- each issue's offsets step by the limit, each asked once
SELECT count(DISTINCT issue_id) AS issues,
       bool_and(offsets = distinct_offsets) AS each_offset_once
FROM (SELECT issue_id, count("offset") AS offsets, count(DISTINCT "offset") AS distinct_offsets
      FROM sim.huawei_requests WHERE api = 'huawei' GROUP BY issue_id) issue;
DROP TABLE got;

-- one issue's later pages, known from its first page's journals_total,
-- are in flight together
SELECT sim.wait_idle();
SELECT sim.reset();
SELECT sim.configure('{"delay_ms": 100}');
CREATE TEMP TABLE got AS SELECT * FROM conc.huawei_issue_records WHERE issue_id = 3000000001;
SELECT * FROM sim.compare('got', 'issue_id = 3000000001', 'sim.huawei_truth');
SELECT * FROM sim.api_concurrency();
SELECT "offset", records FROM sim.huawei_requests WHERE api = 'huawei' ORDER BY "offset";
DROP TABLE got;

SELECT sim.configure('{"delay_ms": 0}');
DROP FUNCTION sim.api_concurrency;
DROP FUNCTION sim.wait_idle;
DROP SCHEMA conc CASCADE;
DROP SERVER feishu_conc CASCADE;
DROP SERVER huawei_conc CASCADE;
