--
-- Long time ranges: a range that needs more 7-day windows than a typical
-- history has pages starts as a walk without time range; its first page
-- (has_more, total) tells whether walking the rest costs fewer requests
-- than the windows.  Rows are exact either way.
--
SET timezone = 'UTC';

-- 130 work items over 29 months: a walk, not 3 x 127 windows
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records
WHERE work_item_id BETWEEN 1001 AND 1130
  AND operation_time >= '2024-07-01' AND operation_time < '2026-12-01';
SELECT * FROM sim.compare('got', $$work_item_id BETWEEN 1001 AND 1130
    AND operation_time >= '2024-07-01' AND operation_time < '2026-12-01'$$);
SELECT count(*) AS requests, count(*) FILTER (WHERE window_start IS NOT NULL) AS windowed
FROM sim.feishu_requests WHERE api = 'feishu';
DROP TABLE got;

-- one busy work item over two weeks: its first page shows a long history,
-- so the two windows are asked for instead (the first page is dropped)
SELECT count(*) AS records_of_5000 FROM sim.feishu_truth WHERE work_item_id = 5000;
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records
WHERE work_item_id = 5000 AND operation_time >= '2025-03-01' AND operation_time < '2025-03-15';
SELECT * FROM sim.compare('got', $$work_item_id = 5000
    AND operation_time >= '2025-03-01' AND operation_time < '2025-03-15'$$);
SELECT window_start, window_end, records, has_more FROM sim.feishu_requests
WHERE api = 'feishu' ORDER BY seq;
DROP TABLE got;

-- an answer that does not say how much history there is: the windows
SELECT sim.reset();
SELECT sim.configure('{"fail_next": {"path": "/work_item/list", "status": 200,
    "body": {"err_code": 0, "data": {"op_records": [], "has_more": true, "start_from": "c1"}}}}');
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records
WHERE work_item_id = 1001 AND operation_time >= '2024-07-01' AND operation_time < '2025-07-01';
SELECT * FROM sim.compare('got', $$work_item_id = 1001
    AND operation_time >= '2024-07-01' AND operation_time < '2025-07-01'$$);
SELECT count(*) AS requests, count(*) FILTER (WHERE window_start IS NOT NULL) AS windowed
FROM sim.feishu_requests WHERE api = 'feishu';
DROP TABLE got;

-- EXPLAIN ANALYZE shows the windows the walk turned into
SELECT sim.reset();
EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF)
SELECT count(*) FROM feishu_op_records
WHERE work_item_id = 5000 AND operation_time >= '2025-03-01' AND operation_time < '2025-03-15';

-- time_windows 'always' keeps every range with both ends in windows
ALTER SERVER feishu OPTIONS (ADD time_windows 'sometimes');
ALTER SERVER feishu OPTIONS (ADD time_windows 'always');
SELECT sim.reset();
SELECT count(*) FROM feishu_op_records
WHERE work_item_id = 1001 AND operation_time >= '2024-07-01' AND operation_time < '2025-07-01';
SELECT count(*) AS requests, count(*) FILTER (WHERE window_start IS NOT NULL) AS windowed
FROM sim.feishu_requests WHERE api = 'feishu';
ALTER SERVER feishu OPTIONS (DROP time_windows);

-- The planner and the executor assume one number of records per work item,
-- the server's records_per_id.  Ten work items over three weeks (three
-- windows): with the default 20 a batch's history is expected to fit one
-- page of 200, so the scan walks it; with 60 (three pages) the windows
-- cost no more, and are asked for.  The rows are the same either way.
CREATE TEMP VIEW ten_items AS SELECT * FROM feishu_op_records
WHERE work_item_id IN (1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008, 1009, 1010)
  AND operation_time >= '2025-03-01' AND operation_time < '2025-03-22';
-- read them once: the requests made, and the rows against the truth
CREATE FUNCTION pg_temp.read_ten_items(OUT requests bigint, OUT windowed bigint,
    OUT expected bigint, OUT got bigint, OUT missing bigint, OUT extra bigint)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM sim.reset();
    CREATE TEMP TABLE got_ten AS SELECT * FROM ten_items;
    SELECT count(*), count(*) FILTER (WHERE window_start IS NOT NULL)
    INTO requests, windowed FROM sim.feishu_requests WHERE api = 'feishu';
    SELECT c.expected, c.got, c.missing, c.extra INTO expected, got, missing, extra
    FROM sim.compare('got_ten', $c$work_item_id BETWEEN 1001 AND 1010
        AND operation_time >= '2025-03-01' AND operation_time < '2025-03-22'$c$) c;
    DROP TABLE got_ten;
END $$;
EXPLAIN (VERBOSE, COSTS OFF) SELECT work_item_id FROM ten_items;
SELECT * FROM pg_temp.read_ten_items();
ALTER SERVER feishu OPTIONS (ADD records_per_id '60');
EXPLAIN (VERBOSE, COSTS OFF) SELECT work_item_id FROM ten_items;
SELECT * FROM pg_temp.read_ten_items();
ALTER SERVER feishu OPTIONS (DROP records_per_id);
