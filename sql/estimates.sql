--
-- Estimates: rows follow the number of ids, the length of the time range
-- and the other conditions; each request is charged request_cost; server
-- options tune the model; ANALYZE says why it skips these tables.
--
SET timezone = 'UTC';

-- rows grow with the ids named and shrink with the time range
EXPLAIN SELECT * FROM feishu_op_records WHERE work_item_id = 1001;
EXPLAIN SELECT * FROM feishu_op_records WHERE work_item_id IN (1001, 1002, 1003, 1004);
EXPLAIN SELECT * FROM feishu_op_records WHERE work_item_id BETWEEN 1001 AND 1100;
EXPLAIN SELECT * FROM feishu_op_records
WHERE work_item_id IN (1001, 1002, 1003, 1004)
  AND operation_time >= now() - interval '30 days';
-- an ARRAY(SELECT ...) counts the rows of its subquery
CREATE TABLE est_items AS SELECT g AS id FROM generate_series(1001, 1200) g;
ANALYZE est_items;
EXPLAIN SELECT * FROM feishu_op_records WHERE work_item_id = ANY (ARRAY(SELECT id FROM est_items));

-- each request costs request_cost: one work item's 12 days are expected
-- in one page of its history (a walk), or in two windows when the server
-- asks for windows always
EXPLAIN SELECT * FROM feishu_op_records
WHERE work_item_id = 1001 AND operation_time >= '2025-09-04' AND operation_time < '2025-09-16';
ALTER SERVER feishu OPTIONS (ADD time_windows 'always');
EXPLAIN SELECT * FROM feishu_op_records
WHERE work_item_id = 1001 AND operation_time >= '2025-09-04' AND operation_time < '2025-09-16';
ALTER SERVER feishu OPTIONS (DROP time_windows);
-- 130 work items over 28 months: a walk of their histories, not 3 x 122
-- windows (and a cost PostgreSQL's JIT threshold leaves alone)
EXPLAIN SELECT * FROM feishu_op_records
WHERE work_item_id BETWEEN 1001 AND 1130 AND operation_time >= '2024-07-02' AND operation_time < '2026-11-01';
ALTER SERVER feishu OPTIONS (ADD request_cost '10', ADD records_per_id '500',
                             ADD fdw_startup_cost '7', ADD fdw_tuple_cost '0.5');
EXPLAIN SELECT * FROM feishu_op_records
WHERE work_item_id = 1001 AND operation_time >= '2025-09-04' AND operation_time < '2025-09-16';
ALTER SERVER feishu OPTIONS (DROP request_cost, DROP records_per_id,
                             DROP fdw_startup_cost, DROP fdw_tuple_cost);
ALTER SERVER feishu OPTIONS (ADD request_cost '-1');
ALTER SERVER feishu OPTIONS (ADD records_per_id 'many');

-- the planner chooses by cost: a local table of ids is read and sent in
-- batches; a VALUES list is sent row by row
EXPLAIN (COSTS OFF)
SELECT * FROM est_items m JOIN feishu_op_records r ON r.work_item_id = m.id;
EXPLAIN (COSTS OFF)
SELECT * FROM (VALUES (1001::bigint), (1002)) v(id) JOIN feishu_op_records r ON r.work_item_id = v.id;

-- a small outer side reached through another table: its few ids are sent
-- one by one, cheaper than reading every id of the local table
CREATE TABLE est_teams (id int PRIMARY KEY, name text);
INSERT INTO est_teams SELECT g, 'team ' || g FROM generate_series(1, 1000) g;
CREATE TABLE est_assign (item bigint, team int);
INSERT INTO est_assign SELECT 1000 + g, g FROM generate_series(1, 1000) g;
ANALYZE est_teams, est_assign;
EXPLAIN (COSTS OFF)
SELECT r.* FROM est_teams t JOIN est_assign a ON a.team = t.id
JOIN feishu_op_records r ON r.work_item_id = a.item WHERE t.name = 'team 3';
SELECT sim.reset();
CREATE TEMP TABLE got AS
SELECT r.* FROM est_teams t JOIN est_assign a ON a.team = t.id
JOIN feishu_op_records r ON r.work_item_id = a.item WHERE t.name = 'team 3';
SELECT * FROM sim.compare('got', 'work_item_id = 1003');
SELECT ids FROM sim.feishu_requests WHERE api = 'feishu';
DROP TABLE got;
-- without the condition on the team, all 1000 ids are needed: in batches
EXPLAIN (COSTS OFF)
SELECT r.* FROM est_teams t JOIN est_assign a ON a.team = t.id
JOIN feishu_op_records r ON r.work_item_id = a.item;
DROP TABLE est_teams, est_assign;

-- ANALYZE would read the whole history: it says so and skips the table
SELECT sim.reset();
ANALYZE feishu_op_records;
SELECT count(*) AS requests FROM sim.feishu_requests WHERE api = 'feishu';
DROP TABLE est_items;
