--
-- Pushdown: work item ids, time ranges, project_key and the list filters
-- become request filters; every query returns exactly the records the API
-- holds for its conditions (sim.compare checks the rows against the
-- simulator's truth: missing, extra and duplicated rows all count).
--
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
-- the window rules are checked here: a range always goes in 7-day windows
-- (sql/long_ranges.sql shows the walk a long range may start with)
ALTER SERVER feishu OPTIONS (ADD time_windows 'always');

-- one id
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records WHERE work_item_id = 1002;
SELECT * FROM sim.compare('got', 'work_item_id = 1002');
SELECT ids, window_start, filters, page_size FROM sim.feishu_requests WHERE api = 'feishu';
DROP TABLE got;

-- an IN list, with a duplicate and a NULL: each id is asked for once
SELECT sim.reset();
CREATE TEMP TABLE got AS
    SELECT * FROM feishu_op_records WHERE work_item_id IN (1003, 1001, 1003, NULL);
SELECT * FROM sim.compare('got', 'work_item_id IN (1001, 1003)');
SELECT ids FROM sim.feishu_requests WHERE api = 'feishu';
DROP TABLE got;

-- 50 ids are one request, 51 two, 120 three
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records
    WHERE work_item_id = ANY (ARRAY(SELECT generate_series(1001, 1050)::bigint));
SELECT * FROM sim.compare('got', 'work_item_id BETWEEN 1001 AND 1050');
SELECT count(*) AS requests, array_agg(cardinality(ids)) AS ids_per_request
FROM sim.feishu_requests WHERE api = 'feishu';
DROP TABLE got;

SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records
    WHERE work_item_id = ANY ('{1001,1002,1003,1004,1005,1006,1007,1008,1009,1010,1011,1012,1013,1014,1015,1016,1017,1018,1019,1020,1021,1022,1023,1024,1025,1026,1027,1028,1029,1030,1031,1032,1033,1034,1035,1036,1037,1038,1039,1040,1041,1042,1043,1044,1045,1046,1047,1048,1049,1050,1051}'::bigint[]);
SELECT * FROM sim.compare('got', 'work_item_id BETWEEN 1001 AND 1051');
SELECT count(*) AS requests, array_agg(cardinality(ids) ORDER BY cardinality(ids) DESC) AS ids_per_request
FROM sim.feishu_requests WHERE api = 'feishu';
DROP TABLE got;

SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records
    WHERE work_item_id = ANY (ARRAY(SELECT generate_series(1001, 1120)::bigint));
SELECT * FROM sim.compare('got', 'work_item_id BETWEEN 1001 AND 1120');
SELECT count(DISTINCT ids) AS batches, array_agg(DISTINCT cardinality(ids)) AS batch_sizes,
       count(*) FILTER (WHERE window_start IS NOT NULL) AS with_time_range
FROM sim.feishu_requests WHERE api = 'feishu';
DROP TABLE got;

-- 120 ids over two months: 3 batches x 9 windows of at most 7 days, with
-- no gap and no overlap, from the lower bound to just past the upper one
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records
    WHERE work_item_id = ANY (ARRAY(SELECT generate_series(1001, 1120)::bigint))
      AND operation_time BETWEEN '2025-01-01 00:00:00+00' AND '2025-03-01 00:00:00+00';
SELECT * FROM sim.compare('got', $$work_item_id BETWEEN 1001 AND 1120
    AND operation_time BETWEEN '2025-01-01 00:00:00+00' AND '2025-03-01 00:00:00+00'$$);
SELECT count(DISTINCT ids) AS batches, count(DISTINCT window_start) AS windows,
       count(DISTINCT (ids, window_start)) AS chains,
       max(window_end - window_start) AS longest_window
FROM sim.feishu_requests WHERE api = 'feishu';
SELECT window_start, window_end,
       window_start = lag(window_end) OVER (ORDER BY window_start) AS follows_previous
FROM (SELECT DISTINCT window_start, window_end FROM sim.feishu_requests WHERE api = 'feishu') w
ORDER BY window_start;
DROP TABLE got;

-- records exactly on window edges come back once, whether the API reads
-- "end" as inclusive (it then returns edge records twice) or exclusive
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records
    WHERE work_item_id = 1200
      AND operation_time >= '2025-03-01 00:00:00+00' AND operation_time < '2025-04-26 00:00:00+00';
SELECT * FROM sim.compare('got', $$work_item_id = 1200
    AND operation_time >= '2025-03-01 00:00:00+00' AND operation_time < '2025-04-26 00:00:00+00'$$);
SELECT count(*) AS requests, sum(records) AS records_received
FROM sim.feishu_requests WHERE api = 'feishu';
SELECT operation_time FROM got
WHERE operation_time IN (SELECT window_start FROM sim.feishu_requests)
ORDER BY 1;
DROP TABLE got;

SELECT sim.reset();
SELECT sim.configure('{"feishu_end_inclusive": false}');
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records
    WHERE work_item_id = 1200
      AND operation_time >= '2025-03-01 00:00:00+00' AND operation_time < '2025-04-26 00:00:00+00';
SELECT * FROM sim.compare('got', $$work_item_id = 1200
    AND operation_time >= '2025-03-01 00:00:00+00' AND operation_time < '2025-04-26 00:00:00+00'$$);
SELECT count(*) AS requests, sum(records) AS records_received
FROM sim.feishu_requests WHERE api = 'feishu';
DROP TABLE got;

-- the exact-millisecond bounds: > and <= move by one millisecond
SELECT sim.reset();
SELECT operation_time, (extract(epoch FROM operation_time) * 1000)::bigint AS ms
FROM feishu_op_records
WHERE work_item_id = 1200
  AND operation_time > '2025-03-08 00:00:00+00' AND operation_time <= '2025-03-15 00:00:00.001+00'
ORDER BY 1;
SELECT (extract(epoch FROM window_start) * 1000)::bigint AS start_ms,
       (extract(epoch FROM window_end) * 1000)::bigint AS end_ms
FROM sim.feishu_requests WHERE api = 'feishu';

-- nothing before the earliest history the API serves is asked for
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records
    WHERE work_item_id = 1200
      AND operation_time >= '2024-01-01 00:00:00+00' AND operation_time < '2024-07-20 00:00:00+00';
SELECT * FROM sim.compare('got', $$work_item_id = 1200
    AND operation_time >= '2024-01-01 00:00:00+00' AND operation_time < '2024-07-20 00:00:00+00'$$);
SELECT min(window_start) AS first_start, count(*) AS requests
FROM sim.feishu_requests WHERE api = 'feishu';
DROP TABLE got;
SELECT sim.reset();
SELECT count(*) FROM feishu_op_records
WHERE work_item_id = 1200 AND operation_time BETWEEN '2024-01-01' AND '2024-06-30';
SELECT count(*) AS requests FROM sim.feishu_requests WHERE api = 'feishu';

-- one open bound: "the last 3 days" is one window ending just after now
SELECT sim.reset();
BEGIN;  -- one now() for the query and the checks
SELECT count(*) AS recent,
       bool_and(operation_time >= now() - interval '3 days') AS all_recent
FROM feishu_op_records WHERE work_item_id = 1300 AND operation_time >= now() - interval '3 days';
SELECT count(*) AS requests,
       bool_and(window_start = date_trunc('milliseconds', now() - interval '3 days')
                OR window_start = date_trunc('milliseconds', now() - interval '3 days') + interval '1 ms') AS starts_at_bound,
       bool_and(window_end > now()) AS ends_after_now
FROM sim.feishu_requests WHERE api = 'feishu';
COMMIT;
SELECT count(*) AS last_month
FROM feishu_op_records WHERE work_item_id = 1300 AND operation_time > now() - interval '30 days';
-- ... while "before August 2024" for one work item walks its whole history
-- once rather than asking for every week since 2024-07-02
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records
    WHERE work_item_id = 1001 AND operation_time < '2024-08-01 00:00:00+00';
SELECT * FROM sim.compare('got', $$work_item_id = 1001 AND operation_time < '2024-08-01 00:00:00+00'$$);
SELECT count(*) AS requests, bool_and(window_start IS NULL) AS no_time_range
FROM sim.feishu_requests WHERE api = 'feishu';
DROP TABLE got;

-- every list filter, with =, IN and = ANY; values are intersected
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records
    WHERE work_item_id = ANY (ARRAY(SELECT generate_series(1001, 1050)::bigint))
      AND operator_type = 'user'
      AND op_record_module IN ('field_mod', 'node_mod')
      AND operation_type = ANY ('{modify,create,complete}');
SELECT * FROM sim.compare('got', $$work_item_id BETWEEN 1001 AND 1050 AND operator_type = 'user'
    AND op_record_module IN ('field_mod', 'node_mod') AND operation_type IN ('modify', 'create', 'complete')$$);
SELECT filters FROM sim.feishu_requests WHERE api = 'feishu';
DROP TABLE got;

SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records
    WHERE work_item_id = ANY (ARRAY(SELECT generate_series(1001, 1130)::bigint))
      AND source_type IN ('auto', 'plugin') AND source_type <> 'plugin' AND source = 'auto_8842';
SELECT * FROM sim.compare('got', $$work_item_id BETWEEN 1001 AND 1130
    AND source_type = 'auto' AND source = 'auto_8842'$$);
SELECT DISTINCT filters FROM sim.feishu_requests WHERE api = 'feishu';
DROP TABLE got;

SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records
    WHERE work_item_id IN (1001, 1002, 1003, 1004)
      AND operator IN ('7491126018028090001', '7491126018028090002')
      AND operator = ANY ('{7491126018028090001,7491126018028090017}');
SELECT * FROM sim.compare('got', $$work_item_id IN (1001, 1002, 1003, 1004)
    AND operator = '7491126018028090001'$$);
SELECT filters FROM sim.feishu_requests WHERE api = 'feishu';
DROP TABLE got;

-- contradicting conditions and NULLs ask for nothing
SELECT sim.reset();
SELECT count(*) FROM feishu_op_records
WHERE work_item_id = 1001 AND operator_type = 'user' AND operator_type = 'auto';
SELECT count(*) FROM feishu_op_records WHERE work_item_id = NULL::bigint;
SELECT count(*) FROM feishu_op_records WHERE work_item_id IN (1001, 1002) AND work_item_id = 1003;
SELECT count(*) FROM feishu_op_records
WHERE work_item_id = 1001 AND operation_time > '2025-01-01' AND operation_time < '2024-12-01';
SELECT count(*) AS requests FROM sim.feishu_requests;

-- conditions that cannot be pushed stay local, and pushed ones are
-- checked locally too
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records
    WHERE work_item_id IN (1001, 1002, 1003)
      AND work_item_type_key = 'story' AND operator LIKE '749%'
      AND operator_type IS NOT NULL AND upper(operation_type) = 'MODIFY';
SELECT * FROM sim.compare('got', $$work_item_id IN (1001, 1002, 1003)
    AND work_item_type_key = 'story' AND operator LIKE '749%'
    AND operator_type IS NOT NULL AND upper(operation_type) = 'MODIFY'$$);
SELECT filters FROM sim.feishu_requests WHERE api = 'feishu';
DROP TABLE got;

-- project_key: a condition, else the table's option, else the server's
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records
    WHERE project_key = 'proj_beta' AND work_item_id IN (2001, 2002);
SELECT * FROM sim.compare('got', $$work_item_id IN (2001, 2002)$$);
CREATE FOREIGN TABLE feishu_beta (work_item_id bigint, project_key text, operator text)
    SERVER feishu OPTIONS (project_key 'proj_beta');
SELECT count(*) FROM feishu_beta WHERE work_item_id = ANY ('{2003,2004}');
SELECT project_key, ids FROM sim.feishu_requests WHERE api = 'feishu' ORDER BY seq;
SELECT count(*) FROM feishu_op_records
WHERE project_key = 'proj_beta' AND project_key = 'proj_alpha' AND work_item_id = 2001;
DROP TABLE got;

-- parameters of prepared statements, evaluated when each scan starts,
-- with a custom and with a generic plan
SELECT sim.reset();
PREPARE by_range(bigint[], timestamptz, timestamptz, text) AS
    SELECT count(*) FROM feishu_op_records
    WHERE work_item_id = ANY ($1) AND operation_time >= $2 AND operation_time < $3
      AND operator_type = $4;
EXECUTE by_range('{1200}', '2025-03-01 00:00:00+00', '2025-03-15 00:00:00+00', 'user');
SET plan_cache_mode = force_generic_plan;
EXECUTE by_range('{1200,1001}', '2025-03-01 00:00:00+00', '2025-03-08 00:00:00+00', 'user');
EXECUTE by_range('{1001,1002,1003}', '2024-07-01 00:00:00+00', '2026-11-01 00:00:00+00', 'system');
RESET plan_cache_mode;
SELECT count(*) FROM sim.feishu_truth
WHERE work_item_id IN (1001, 1002, 1003) AND operator_type = 'system'
  AND operation_time >= '2024-07-01 00:00:00+00' AND operation_time < '2026-11-01 00:00:00+00';
SELECT ids, count(*) AS requests, min(window_start) AS first_start, max(window_end) AS last_end,
       min(filters::text) AS filters
FROM sim.feishu_requests WHERE api = 'feishu' GROUP BY ids ORDER BY min(seq);
DEALLOCATE by_range;

-- a join with a local table, the ids taken from it with ARRAY(SELECT ...)
CREATE TEMP TABLE my_items (id bigint PRIMARY KEY, team text);
INSERT INTO my_items VALUES (1001, 'payments'), (1002, 'payments'), (1005, 'search'),
                            (9007199254740993, 'payments');
SELECT sim.reset();
SELECT m.team, count(*) AS changes, count(DISTINCT r.work_item_id) AS items
FROM my_items m
JOIN feishu_op_records r ON r.work_item_id = m.id
WHERE r.work_item_id = ANY (ARRAY(SELECT id FROM my_items WHERE team = 'payments'))
GROUP BY m.team;
SELECT count(*) AS changes FROM sim.feishu_truth
WHERE work_item_id IN (1001, 1002, 9007199254740993);
SELECT count(*) AS requests, min(ids) AS ids FROM sim.feishu_requests WHERE api = 'feishu';

-- a correlated subquery rescans with a new id per outer row
SELECT sim.reset();
SELECT m.id,
       (SELECT count(*) FROM feishu_op_records r WHERE r.work_item_id = m.id) AS changes,
       (SELECT count(*) FROM sim.feishu_truth t WHERE t.work_item_id = m.id) AS expected
FROM my_items m ORDER BY m.id;
SELECT ids FROM sim.feishu_requests WHERE api = 'feishu' ORDER BY seq;

-- operation_time = ANY (...) is sent as the span of its values and
-- checked on each row
SELECT sim.reset();
CREATE TEMP TABLE result AS SELECT * FROM feishu_op_records WHERE work_item_id = 1200
    AND operation_time IN (sim.ms(1740787200000), sim.ms(1741391999999), sim.ms(1740873600000));
SELECT * FROM sim.compare('result', $$work_item_id = 1200 AND operation_time IN
    (sim.ms(1740787200000), sim.ms(1741391999999), sim.ms(1740873600000))$$);
SELECT window_start, window_end FROM sim.feishu_requests WHERE api = 'feishu' ORDER BY seq;
DROP TABLE result;
SELECT count(*) FROM feishu_op_records WHERE work_item_id = 1200
    AND operation_time = ANY (ARRAY[NULL, NULL]::timestamptz[]);
SELECT count(*) FROM feishu_op_records WHERE work_item_id = 1200
    AND operation_time = ANY ('{}'::timestamptz[]);

-- what drivers and BI tools send: ids as numeric or float8 values (only
-- integral ones name an id), and OR of equalities, pushed like IN.
SELECT sim.reset();
SELECT count(*) FROM feishu_op_records WHERE work_item_id = 1001.0;
SELECT count(*) FROM feishu_op_records WHERE work_item_id = 1002::numeric;
SELECT count(*) FROM feishu_op_records WHERE work_item_id = '1003'::float8;
SELECT count(*) FROM feishu_op_records WHERE work_item_id = ANY (ARRAY[1004.0, 1005.5]);
SELECT count(*) FROM feishu_op_records WHERE work_item_id = 1001 OR work_item_id = 1002.0;
SELECT count(*) FROM feishu_op_records WHERE work_item_id = 1001.5;
SELECT count(*) FROM feishu_op_records WHERE work_item_id = 1e30;
SELECT count(*) FROM feishu_op_records WHERE work_item_id IN (1006, 1007)
    AND (operator = '7491126018028090001' OR operator = '7491126018028090002');
SELECT ids, filters FROM sim.feishu_requests WHERE api = 'feishu' ORDER BY seq;
SELECT (SELECT count(*) FROM sim.feishu_truth WHERE work_item_id = 1001) AS truth_1001,
       (SELECT count(*) FROM sim.feishu_truth WHERE work_item_id = 1002) AS truth_1002,
       (SELECT count(*) FROM sim.feishu_truth WHERE work_item_id = 1003) AS truth_1003,
       (SELECT count(*) FROM sim.feishu_truth WHERE work_item_id = 1004) AS truth_1004,
       (SELECT count(*) FROM sim.feishu_truth WHERE work_item_id IN (1006, 1007)
            AND operator IN ('7491126018028090001', '7491126018028090002')) AS truth_1006_1007;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT work_item_id FROM feishu_op_records WHERE work_item_id = 1001 OR work_item_id = 1002.0;
-- float8 arrays, and a float8 past 2^53: it equals several ids cast to
-- float8, and every one of them is asked for (the one that does not exist
-- is named in a NOTICE)
SELECT sim.reset();
SELECT count(*) FROM feishu_op_records WHERE work_item_id = ANY ('{1001, 1002.5, 1003}'::float8[]);
SELECT work_item_id, count(*) FROM feishu_op_records
WHERE work_item_id = 9007199254740993::float8 GROUP BY 1;
SELECT work_item_id, count(*) FROM sim.feishu_truth
WHERE work_item_id::float8 = 9007199254740993::float8 AND project_key = 'proj_alpha' GROUP BY 1;
SELECT ids FROM sim.feishu_requests WHERE api = 'feishu' ORDER BY seq;

ALTER SERVER feishu OPTIONS (DROP time_windows);
