--
-- Ids as BI tools and drivers write them: ranges of ids (BETWEEN, a pair
-- of bounds) sent as the ids they span, up to max_id_range; metadata
-- probes that run without ids; and a refusal that says what to do in the
-- message and DETAIL (psqlODBC drops the HINT).
--
SET timezone = 'UTC';

-- a BETWEEN spanning a few ids is sent as those ids
EXPLAIN (VERBOSE, COSTS OFF)
SELECT * FROM feishu_op_records WHERE work_item_id BETWEEN 1001 AND 1004;
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records WHERE work_item_id BETWEEN 1001 AND 1004;
SELECT * FROM sim.compare('got', 'work_item_id BETWEEN 1001 AND 1004');
SELECT ids FROM sim.feishu_requests WHERE api = 'feishu' ORDER BY seq;
DROP TABLE got;

-- strict bounds, and bounds intersected with a list
SELECT sim.reset();
SELECT count(*) FROM feishu_op_records WHERE work_item_id > 1001 AND work_item_id < 1004;
SELECT count(*) FROM sim.feishu_truth WHERE work_item_id > 1001 AND work_item_id < 1004;
SELECT count(*) FROM feishu_op_records
WHERE work_item_id IN (1001, 1002, 1005, 1100) AND work_item_id BETWEEN 1002 AND 1010;
SELECT ids FROM sim.feishu_requests WHERE api = 'feishu' ORDER BY seq;

-- an empty range asks for nothing; ids below 1 cannot exist
SELECT sim.reset();
SELECT count(*) FROM feishu_op_records WHERE work_item_id BETWEEN 1004 AND 1001;
SELECT count(*) FROM feishu_op_records WHERE work_item_id BETWEEN -5 AND 0;
SELECT count(*) FROM feishu_op_records WHERE work_item_id > 9223372036854775807 AND work_item_id < 1;
SELECT count(*) AS requests FROM sim.feishu_requests WHERE api = 'feishu';

-- 130 ids, in three batches of at most 50
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records WHERE work_item_id BETWEEN 1001 AND 1130;
SELECT * FROM sim.compare('got', 'work_item_id BETWEEN 1001 AND 1130');
SELECT cardinality(ids) AS ids, ids[1] AS first_id FROM sim.feishu_requests WHERE api = 'feishu' ORDER BY first_id, ids;
DROP TABLE got;

-- a range wider than max_id_range is refused before any request, saying why
SELECT sim.reset();
SELECT * FROM sim.error_of('SELECT * FROM feishu_op_records WHERE work_item_id BETWEEN 1 AND 5000');
SELECT count(*) AS requests FROM sim.feishu_requests;
ALTER SERVER feishu OPTIONS (ADD max_id_range '20');
SELECT * FROM sim.error_of('SELECT * FROM feishu_op_records WHERE work_item_id BETWEEN 1121 AND 1141');

-- ids of a range that do not exist: Feishu refuses a batch naming one
-- (error 30005); each named in the answer is left out and the batch asked
-- again, and a NOTICE lists them
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records WHERE work_item_id BETWEEN 1121 AND 1140;
SELECT * FROM sim.compare('got', 'work_item_id BETWEEN 1121 AND 1140');
SELECT cardinality(ids) AS ids, err_code FROM sim.feishu_requests WHERE api = 'feishu' ORDER BY seq;
DROP TABLE got;
ALTER SERVER feishu OPTIONS (DROP max_id_range);
-- an explicit unknown id is the same: no rows for it
SELECT count(*) FROM feishu_op_records WHERE work_item_id IN (1001, 424242);
SELECT count(*) FROM sim.feishu_truth WHERE work_item_id IN (1001, 424242);

-- when the refusal does not say which id, the batch is asked for in halves
SELECT sim.reset();
SELECT sim.configure('{"fail_next": {"path": "/work_item/list", "status": 200,
                                     "body": {"err_code": 30005, "err_msg": "work item not found", "data": {}}}}');
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records WHERE work_item_id IN (1001, 1002, 1003, 1004);
SELECT * FROM sim.compare('got', 'work_item_id IN (1001, 1002, 1003, 1004)');
SELECT ids, err_code FROM sim.feishu_requests WHERE api = 'feishu' ORDER BY cardinality(ids) DESC, ids;
DROP TABLE got;

-- EXPLAIN of such a range works: its ids are listed when the scan starts
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM feishu_op_records WHERE work_item_id BETWEEN 1 AND 5000000;

-- one bound is not a list of ids
SELECT * FROM sim.error_of('SELECT * FROM feishu_op_records WHERE work_item_id >= 1001');

-- a range on Huawei issues: one request per issue
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM huawei_issue_records WHERE issue_id BETWEEN 101 AND 103;
SELECT * FROM sim.compare('got', $$issue_id BETWEEN 101 AND 103 AND project_id = 'c15cc54e338d4506afd9bd8103071ff0'$$,
                          'sim.huawei_truth');
SELECT issue_id FROM sim.huawei_requests WHERE api = 'huawei' ORDER BY issue_id;
DROP TABLE got;

-- probes without ids: EXPLAIN, LIMIT 0 and a wrapped LIMIT 0 make no request
SELECT sim.reset();
EXPLAIN (COSTS OFF) SELECT * FROM feishu_op_records WHERE operator = 'x';
SELECT * FROM feishu_op_records LIMIT 0;
SELECT * FROM (SELECT * FROM huawei_issue_records) sub LIMIT 0;
SELECT count(*) AS requests FROM sim.feishu_requests;
