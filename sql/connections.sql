--
-- Connections.  Over HTTP/1.1 each request in flight has a connection of
-- its own, kept for the next requests.  A server whose accept queue is
-- small drops the connection requests that arrive together beyond it, and
-- the kernel would send a dropped one again only after a second: a scan
-- with 64 requests in flight starts those connects again at once instead.
-- The simulator's second listener has an accept queue of 5.
--
SET timezone = 'UTC';
SET client_min_messages = warning;
\getenv sim_url OPREC_SIM_URL

SELECT line::jsonb->'small_backlog'->>'port' AS small_port,
       line::jsonb->'small_backlog'->>'backlog' AS small_backlog
FROM sim.call('GET', '/_sim/listeners') AS line \gset
SELECT :'small_backlog' AS small_backlog;
SELECT regexp_replace(:'sim_url', ':[0-9]+$', ':' || :'small_port') AS small_url \gset

-- 64 in flight, each range asked for in 7-day windows: 130 work items
-- (3 batches) over 22 weeks are 66 requests
CREATE SERVER feishu_small FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url :'small_url', project_key 'proj_alpha',
             max_concurrency '64', requests_per_second '0', time_windows 'always');
CREATE USER MAPPING FOR CURRENT_USER SERVER feishu_small
    OPTIONS (plugin_token 'p-static-sim-token', user_key '7491126018028090001');
CREATE FOREIGN TABLE small_records (
    project_key text, work_item_id bigint, work_item_type_key text,
    operation_time timestamptz, operator text, operator_type text,
    operation_type text, op_record_module text, source_type text,
    source text, record_contents jsonb
) SERVER feishu_small;

-- What EXPLAIN ANALYZE counted of the connections (shown with TIMING).
CREATE FUNCTION sim.connections_of(query text, OUT opened int, OUT restarted int,
                                       OUT requests int)
LANGUAGE plpgsql AS $$
DECLARE
    plan json;
BEGIN
    EXECUTE 'EXPLAIN (ANALYZE, FORMAT JSON) ' || query INTO plan;
    opened := (plan->0->'Plan'->>'Connections Opened')::int;
    restarted := (plan->0->'Plan'->>'Stalled Connects Restarted')::int;
    requests := (plan->0->'Plan'->>'HTTP Requests')::int;
END $$;
CREATE FUNCTION sim.listen_overflows() RETURNS bigint LANGUAGE sql
    RETURN (SELECT (line::jsonb->>'listen_overflows')::bigint
            FROM sim.call('GET', '/_sim/listen_overflows') AS line);

-- every answer takes 100 ms, so the 64 requests are on the wire together;
-- a new backend, whose connections are all new
SELECT sim.reset();
SELECT sim.configure('{"delay_ms": 100, "feishu_qps": 0}');
\c
SET timezone = 'UTC';
SET client_min_messages = warning;
SELECT sim.listen_overflows() AS overflows_before \gset
CREATE TEMP TABLE got AS SELECT * FROM small_records
WHERE work_item_id BETWEEN 1001 AND 1130
  AND operation_time >= '2025-03-01' AND operation_time < '2025-08-02';
SELECT * FROM sim.compare('got', $$work_item_id BETWEEN 1001 AND 1130
    AND operation_time >= '2025-03-01' AND operation_time < '2025-08-02'$$);
-- the server dropped connects (unless it kept up with the burst), and each
-- of them was started again; every request reached it on the small listener
SELECT sim.listen_overflows() - :overflows_before AS overflows \gset
SELECT count(*) AS requests,
       count(*) FILTER (WHERE r->>'listener' = 'small_backlog') AS on_small_listener,
       max((r->>'in_flight')::int) > 8 AS many_in_flight
FROM sim.requests() AS r WHERE r->>'api' = 'feishu';

-- EXPLAIN ANALYZE counts them: on a new backend again
SELECT sim.reset();
SELECT sim.configure('{"delay_ms": 100, "feishu_qps": 0}');
\c
SET timezone = 'UTC';
SELECT sim.listen_overflows() AS overflows_before \gset
SELECT requests, opened BETWEEN 2 AND 64 AS opened_many, restarted AS restarted_first
FROM sim.connections_of($$SELECT * FROM small_records
    WHERE work_item_id BETWEEN 1001 AND 1130
      AND operation_time >= '2025-03-01' AND operation_time < '2025-08-02'$$) \gset
SELECT :requests AS requests, :'opened_many' AS opened_many,
       (sim.listen_overflows() - :overflows_before = 0 OR :restarted_first > 0)
           AS every_drop_restarted;
-- the same scan again in this backend: its connections are reused
SELECT requests, opened < requests AS reused
FROM sim.connections_of($$SELECT * FROM small_records
    WHERE work_item_id BETWEEN 1001 AND 1130
      AND operation_time >= '2025-03-01' AND operation_time < '2025-08-02'$$);

SELECT sim.reset();
DROP FUNCTION sim.connections_of, sim.listen_overflows;
DROP SERVER feishu_small CASCADE;
