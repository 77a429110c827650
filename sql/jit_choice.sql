--
-- PostgreSQL compiles a query with JIT when its plan costs more than
-- jit_above_cost.  A scan of these tables is charged per request, and a
-- scan without ids far more, for the planner to prefer fewer requests;
-- that charge is waiting on the network, which JIT does not shorten, so it
-- does not count towards the decision.  The rest of the plan still does.
--
SET timezone = 'UTC';
SET jit = on;
RESET jit_above_cost;
RESET jit_optimize_above_cost;
RESET jit_inline_above_cost;

-- The plan's cost, and whether the executor was to use JIT (EXPLAIN shows
-- a "JIT" section then, with or without a JIT provider installed).
CREATE FUNCTION pg_temp.jit_of(query text, run boolean DEFAULT false,
                               OUT total_cost numeric, OUT jit boolean, OUT jit_options jsonb)
LANGUAGE plpgsql AS $$
DECLARE
    plan json;
BEGIN
    EXECUTE format('EXPLAIN (FORMAT JSON, ANALYZE %s) %s',
                   CASE WHEN run THEN 'true' ELSE 'false' END, query) INTO plan;
    total_cost := (plan->0->'Plan'->>'Total Cost')::numeric;
    jit := plan->0->'JIT' IS NOT NULL;
    jit_options := (plan->0->'JIT'->'Options')::jsonb;
END $$;

-- a thousand work items over two years
SELECT total_cost > current_setting('jit_above_cost')::numeric AS above_jit_above_cost, jit
FROM pg_temp.jit_of($$SELECT * FROM feishu_op_records
    WHERE work_item_id BETWEEN 1001 AND 2000 AND operation_time >= '2024-11-01'$$);
-- a scan without ids (charged as one never to prefer), bounded by a LIMIT
SELECT total_cost > current_setting('jit_above_cost')::numeric AS above_jit_above_cost, jit
FROM pg_temp.jit_of($$SELECT * FROM feishu_op_records LIMIT 10$$);
-- ids from a local table, in batches, under an aggregate
CREATE TABLE jit_items AS SELECT g::bigint AS id FROM generate_series(1001, 3000) g;
ANALYZE jit_items;
SELECT total_cost > current_setting('jit_above_cost')::numeric AS above_jit_above_cost, jit
FROM pg_temp.jit_of($$SELECT operator, count(*) FROM jit_items i
    JOIN feishu_op_records r ON r.work_item_id = i.id GROUP BY operator$$);

-- The plan's own work still decides: with a threshold the local part of
-- the plan exceeds, JIT is used, with the options the planner chose.
SET jit_above_cost = 10;
SELECT jit, jit_options
FROM pg_temp.jit_of($$SELECT operator, count(*) FROM jit_items i
    JOIN feishu_op_records r ON r.work_item_id = i.id GROUP BY operator$$);
-- and nothing changes for a query without these tables
SET jit_above_cost = 1;
SELECT jit FROM pg_temp.jit_of($$SELECT count(*) FROM jit_items$$);
RESET jit_above_cost;
SELECT jit FROM pg_temp.jit_of($$SELECT count(*) FROM jit_items$$);

-- run, too: EXPLAIN ANALYZE of a scan without ids reports no JIT
SELECT sim.reset();
SELECT total_cost > current_setting('jit_above_cost')::numeric AS above_jit_above_cost, jit
FROM pg_temp.jit_of($$SELECT * FROM feishu_op_records LIMIT 3$$, run => true);
SELECT count(*) > 0 AS listed FROM sim.feishu_requests;

DROP TABLE jit_items;
RESET jit;
