--
-- EXPLAIN (VERBOSE) shows what the scan will ask for; EXPLAIN ANALYZE adds
-- how many HTTP requests and pages it made.
--
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
-- the window rules are checked here: a range always goes in 7-day windows
-- (sql/long_ranges.sql shows the walk a long range may start with)
ALTER SERVER feishu OPTIONS (ADD time_windows 'always');

-- constants: the batches and windows are known before the scan
EXPLAIN (VERBOSE, COSTS OFF)
SELECT operation_time, operator FROM feishu_op_records
WHERE work_item_id IN (1001, 1002) AND operator_type = 'user'
  AND operation_time BETWEEN '2025-01-01' AND '2025-03-01' AND operator LIKE '7%';

-- without VERBOSE nothing is added
EXPLAIN (COSTS OFF)
SELECT operation_time FROM feishu_op_records WHERE work_item_id = 1001;

-- parameters are known when the statement runs
PREPARE recent(bigint[]) AS
    SELECT count(*) FROM feishu_op_records
    WHERE work_item_id = ANY ($1) AND operation_time >= now() - interval '3 days';
SET plan_cache_mode = force_generic_plan;
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE recent('{1001,1002,1003}');
EXPLAIN (VERBOSE, COSTS OFF) EXECUTE recent(ARRAY[1001, 1002, 1003, 1004, 1005, 1006, 1007, 1008,
    1009, 1010, 1011, 1012, 1013, 1014, 1015, 1016, 1017, 1018, 1019, 1020, 1021, 1022, 1023, 1024,
    1025, 1026, 1027, 1028, 1029, 1030, 1031, 1032, 1033, 1034, 1035, 1036, 1037, 1038, 1039, 1040,
    1041, 1042, 1043, 1044, 1045, 1046, 1047, 1048, 1049, 1050, 1051]);
RESET plan_cache_mode;
DEALLOCATE recent;

-- values from a subquery are known only when the scan starts
EXPLAIN (VERBOSE, COSTS OFF)
SELECT count(*) FROM feishu_op_records
WHERE work_item_id = ANY (ARRAY(SELECT generate_series(1001::bigint, 1060)));

-- EXPLAIN ANALYZE counts requests (the token included) and pages
SELECT sim.reset();
EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF)
SELECT count(*) FROM feishu_op_records
WHERE work_item_id = ANY (ARRAY(SELECT generate_series(1001::bigint, 1060)))
  AND operation_time >= '2025-01-01' AND operation_time < '2025-01-20';
SELECT count(*) AS requests_logged FROM sim.feishu_requests;

-- LIMIT: one request for the first rows of a long history
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF)
SELECT * FROM feishu_op_records WHERE work_item_id = 5000 LIMIT 5;

-- a query that asks for nothing makes no request
EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF)
SELECT * FROM feishu_op_records WHERE work_item_id = 1001 AND operator_type = 'a' AND operator_type = 'b';

ALTER SERVER feishu OPTIONS (DROP time_windows);
