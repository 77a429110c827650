--
-- Joins with local tables on the key column: the batched path (the keys of
-- a plain local table, read when the scan starts and sent in batches), the
-- parameterized path (a nested loop sends each outer row's id), and the
-- rescan cache for repeated outer values.  Every result is compared with
-- the same join over the simulator's truth; the requests are counted.
--
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

CREATE TABLE my_items (id bigint PRIMARY KEY, team text);
INSERT INTO my_items VALUES (1001, 'pay'), (1002, 'pay'), (1003, 'core'), (1004, 'core'), (1005, 'core');
ANALYZE my_items;

-- the first query anyone writes: a plain join, sent as one batch of ids
EXPLAIN (VERBOSE, COSTS OFF)
SELECT m.team, r.work_item_id, r.operation_time
FROM my_items m JOIN feishu_op_records r ON r.work_item_id = m.id;
SELECT sim.reset();
CREATE TEMP TABLE got AS
SELECT r.* FROM my_items m JOIN feishu_op_records r ON r.work_item_id = m.id;
SELECT * FROM sim.compare('got', 'work_item_id IN (SELECT id FROM my_items)');
SELECT ids, window_start, window_end FROM sim.feishu_requests WHERE api = 'feishu' ORDER BY seq;
DROP TABLE got;

-- the local table's own conditions choose the ids that are sent
SELECT sim.reset();
CREATE TEMP TABLE got AS
SELECT r.* FROM my_items m JOIN feishu_op_records r ON m.id = r.work_item_id
WHERE m.team = 'pay' AND r.operator_type = 'user';
SELECT * FROM sim.compare('got', $$work_item_id IN (SELECT id FROM my_items WHERE team = 'pay') AND operator_type = 'user'$$);
SELECT ids, filters FROM sim.feishu_requests WHERE api = 'feishu' ORDER BY seq;
DROP TABLE got;

-- semi-joins: IN (SELECT ...) and EXISTS
EXPLAIN (COSTS OFF)
SELECT * FROM feishu_op_records r WHERE r.work_item_id IN (SELECT id FROM my_items WHERE team = 'core');
CREATE TEMP TABLE got AS
SELECT * FROM feishu_op_records r WHERE r.work_item_id IN (SELECT id FROM my_items WHERE team = 'core');
SELECT * FROM sim.compare('got', $$work_item_id IN (SELECT id FROM my_items WHERE team = 'core')$$);
DROP TABLE got;
EXPLAIN (COSTS OFF)
SELECT m.id, (SELECT count(*) FROM feishu_op_records r WHERE r.work_item_id = m.id) AS n
FROM my_items m WHERE EXISTS (SELECT 1 FROM feishu_op_records r WHERE r.work_item_id = m.id AND r.operation_type = 'complete');
SELECT m.id FROM my_items m
WHERE EXISTS (SELECT 1 FROM feishu_op_records r WHERE r.work_item_id = m.id AND r.operation_type = 'complete')
ORDER BY m.id;
SELECT m.id FROM my_items m
WHERE EXISTS (SELECT 1 FROM sim.feishu_truth r WHERE r.work_item_id = m.id AND r.operation_type = 'complete')
ORDER BY m.id;

-- a LEFT JOIN keeps every local row; the foreign side still gets its ids
SELECT m.id, count(r.work_item_id) AS records
FROM my_items m LEFT JOIN feishu_op_records r ON r.work_item_id = m.id AND r.operation_type = 'complete'
GROUP BY m.id ORDER BY m.id;
SELECT m.id, count(r.work_item_id) AS records
FROM my_items m LEFT JOIN sim.feishu_truth r ON r.work_item_id = m.id AND r.operation_type = 'complete'
GROUP BY m.id ORDER BY m.id;
-- the preserved side of an outer join is never restricted by the join
SELECT count(*) FROM feishu_op_records r LEFT JOIN my_items m ON r.work_item_id = m.id;

-- 120 local ids over 12 days: no more requests than = ANY (ARRAY(SELECT ...))
CREATE TABLE my_items_120 AS
SELECT DISTINCT work_item_id AS id FROM sim.feishu_truth WHERE work_item_id < 100000 ORDER BY 1 LIMIT 120;
ANALYZE my_items_120;
EXPLAIN (COSTS OFF)
SELECT r.* FROM my_items_120 m JOIN feishu_op_records r ON r.work_item_id = m.id
WHERE r.operation_time >= '2025-09-04' AND r.operation_time < '2025-09-16';
SELECT sim.reset();
CREATE TEMP TABLE got AS
SELECT r.* FROM my_items_120 m JOIN feishu_op_records r ON r.work_item_id = m.id
WHERE r.operation_time >= '2025-09-04' AND r.operation_time < '2025-09-16';
SELECT * FROM sim.compare('got', $$work_item_id IN (SELECT id FROM my_items_120)
                                  AND operation_time >= '2025-09-04' AND operation_time < '2025-09-16'$$);
CREATE TEMP TABLE join_requests AS SELECT * FROM sim.feishu_requests WHERE api = 'feishu';
DROP TABLE got;
SELECT sim.reset();
CREATE TEMP TABLE got AS
SELECT r.* FROM feishu_op_records r
WHERE r.work_item_id = ANY (ARRAY(SELECT id FROM my_items_120))
  AND r.operation_time >= '2025-09-04' AND r.operation_time < '2025-09-16';
SELECT * FROM sim.compare('got', $$work_item_id IN (SELECT id FROM my_items_120)
                                  AND operation_time >= '2025-09-04' AND operation_time < '2025-09-16'$$);
SELECT (SELECT count(*) FROM join_requests) AS join_requests,
       (SELECT count(*) FROM sim.feishu_requests WHERE api = 'feishu') AS any_array_requests,
       (SELECT count(DISTINCT ids) FROM join_requests) AS id_batches,
       (SELECT count(DISTINCT window_start) FROM join_requests) AS time_windows;
DROP TABLE got;

-- an outer side that is no plain table (VALUES, a function): a nested loop
-- sends each outer row's id as a parameter
EXPLAIN (VERBOSE, COSTS OFF)
SELECT v.id, r.operation_time FROM (VALUES (1001::bigint), (1003)) v(id)
JOIN feishu_op_records r ON r.work_item_id = v.id;
SELECT sim.reset();
CREATE TEMP TABLE got AS
SELECT r.* FROM (VALUES (1001::bigint), (1003)) v(id) JOIN feishu_op_records r ON r.work_item_id = v.id;
SELECT * FROM sim.compare('got', 'work_item_id IN (1001, 1003)');
SELECT ids FROM sim.feishu_requests WHERE api = 'feishu' ORDER BY seq;
DROP TABLE got;

-- repeated outer values are asked for once: the scan keeps the rows of
-- each id it has fetched for the rest of the query
SELECT sim.reset();
EXPLAIN (ANALYZE, VERBOSE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF)
SELECT count(*) FROM unnest('{1001,1002,1001,1001,1002,1003,1001}'::bigint[]) u(id)
JOIN feishu_op_records r ON r.work_item_id = u.id;
SELECT ids FROM sim.feishu_requests WHERE api = 'feishu' ORDER BY seq;
SELECT count(*) FROM unnest('{1001,1002,1001,1001,1002,1003,1001}'::bigint[]) u(id)
JOIN feishu_op_records r ON r.work_item_id = u.id;
SELECT count(*) FROM unnest('{1001,1002,1001,1001,1002,1003,1001}'::bigint[]) u(id)
JOIN sim.feishu_truth r ON r.work_item_id = u.id;

-- a LATERAL subquery: the latest two records of each local item
SELECT m.id, x.operation_time
FROM my_items m, LATERAL (SELECT operation_time FROM feishu_op_records r
                          WHERE r.work_item_id = m.id ORDER BY operation_time DESC LIMIT 2) x
ORDER BY m.id, x.operation_time DESC;
SELECT m.id, x.operation_time
FROM my_items m, LATERAL (SELECT operation_time FROM sim.feishu_truth r
                          WHERE r.work_item_id = m.id ORDER BY operation_time DESC LIMIT 2) x
ORDER BY m.id, x.operation_time DESC;

-- a local table with NULL and impossible ids: they name no records
CREATE TABLE odd_ids (id numeric);
INSERT INTO odd_ids VALUES (NULL), (1004.0), (1004.5), (-3), (1005);
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT r.* FROM odd_ids o JOIN feishu_op_records r ON r.work_item_id = o.id;
SELECT * FROM sim.compare('got', 'work_item_id IN (1004, 1005)');
SELECT ids FROM sim.feishu_requests WHERE api = 'feishu' ORDER BY seq;
DROP TABLE got;

-- Huawei: one issue per request either way
CREATE TABLE my_issues (id bigint);
INSERT INTO my_issues VALUES (101), (102), (103), (104), (105);
ANALYZE my_issues;
EXPLAIN (VERBOSE, COSTS OFF)
SELECT h.issue_id, h.journal_id FROM my_issues m JOIN huawei_issue_records h ON h.issue_id = m.id;
SELECT sim.reset();
CREATE TEMP TABLE got AS
SELECT h.* FROM my_issues m JOIN huawei_issue_records h ON h.issue_id = m.id;
SELECT * FROM sim.compare('got', $$issue_id IN (SELECT id FROM my_issues)
                                  AND project_id = 'c15cc54e338d4506afd9bd8103071ff0'$$,
                          'sim.huawei_truth');
SELECT issue_id, count(*) AS requests FROM sim.huawei_requests WHERE api = 'huawei'
GROUP BY issue_id ORDER BY issue_id;
DROP TABLE got;

DROP TABLE my_items, my_items_120, odd_ids, my_issues, join_requests;
