--
-- A copy of some items' history kept by hand: a first copy, then a step
-- that adds what came after the newest record copied (a bound an initplan
-- gives, known when the scan starts).  The copy then equals what the API
-- holds; the step asks only for the time after that record.  Mirrors
-- (sql/mirrors.sql) do this for a whole space, exactly.
--
SET timezone = 'UTC';
CREATE TABLE tracked (id bigint PRIMARY KEY);
INSERT INTO tracked VALUES (1001), (1002), (1003), (1004), (1300);
ANALYZE tracked;

-- the first copy: as of an earlier day
CREATE TABLE op_history AS
SELECT r.* FROM tracked m JOIN feishu_op_records r ON r.work_item_id = m.id
WHERE r.operation_time < '2025-06-01';
SELECT count(*), max(operation_time) FROM op_history;

-- the scheduled step, long after: the bound is checked on a walk through
-- the history, which costs fewer requests than a year of 7-day windows
SELECT sim.reset();
INSERT INTO op_history
SELECT r.* FROM tracked m JOIN feishu_op_records r ON r.work_item_id = m.id
WHERE r.operation_time > (SELECT max(operation_time) FROM op_history);
SELECT ids, window_start IS NOT NULL AS time_range_sent FROM sim.feishu_requests
WHERE api = 'feishu' ORDER BY seq;
SELECT * FROM sim.compare('op_history', 'work_item_id IN (1001, 1002, 1003, 1004, 1300)');

-- as it runs when scheduled every few minutes: only the last hours are
-- missing, and they are asked for as one time window
DELETE FROM op_history WHERE operation_time > now() - interval '1 day';
SELECT sim.reset();
INSERT INTO op_history
SELECT r.* FROM tracked m JOIN feishu_op_records r ON r.work_item_id = m.id
WHERE r.operation_time > (SELECT max(operation_time) FROM op_history);
SELECT ids, window_start = (SELECT max(operation_time) FROM op_history
                            WHERE operation_time < now() - interval '1 day') + interval '1 ms'
       AS window_starts_after_newest_copied,
       window_end > now() AS window_ends_now
FROM sim.feishu_requests WHERE api = 'feishu' ORDER BY seq;
SELECT * FROM sim.compare('op_history', 'work_item_id IN (1001, 1002, 1003, 1004, 1300)');
-- run again: nothing new, nothing added
INSERT INTO op_history
SELECT r.* FROM tracked m JOIN feishu_op_records r ON r.work_item_id = m.id
WHERE r.operation_time > (SELECT max(operation_time) FROM op_history);
SELECT * FROM sim.compare('op_history', 'work_item_id IN (1001, 1002, 1003, 1004, 1300)');
DROP TABLE op_history, tracked;
