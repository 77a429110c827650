--
-- Retries: throttling, 5xx answers, the APIs' transient error codes and
-- broken connections are sent again with backoff (or as Retry-After says),
-- up to max_retries; errors of the request itself and of authentication
-- are not.  Retries show in EXPLAIN ANALYZE.
--
SET timezone = 'UTC';

-- one 5xx, one throttle with Retry-After in seconds, one with an HTTP
-- date, one broken connection: the query returns every row
SELECT sim.reset();
SELECT sim.configure('{"faults": [
    {"path": "/op_record/", "kind": "error", "status": 503, "count": 1},
    {"path": "/op_record/", "kind": "throttle", "retry_after": 1, "count": 1},
    {"path": "/op_record/", "kind": "throttle", "retry_after": "date:1", "count": 1},
    {"path": "/op_record/", "kind": "reset", "count": 1}]}');
CREATE TEMP TABLE result AS SELECT * FROM feishu_op_records WHERE work_item_id = 1001;
SELECT * FROM sim.compare('result', 'work_item_id = 1001');
SELECT status, fault FROM sim.feishu_requests WHERE api = 'feishu' ORDER BY seq;
DROP TABLE result;

-- Feishu's own codes: 10429 and 50006, whatever the HTTP status
SELECT sim.reset();
SELECT sim.configure('{"faults": [
    {"path": "/op_record/", "kind": "error", "status": 200, "count": 1,
     "body": {"err_code": 50006, "err_msg": "server error", "data": null}},
    {"path": "/op_record/", "kind": "error", "status": 400, "count": 1,
     "body": {"err_code": 10429, "err_msg": "too many requests", "data": null}}]}');
SELECT count(*) = (SELECT count(*) FROM sim.feishu_truth WHERE work_item_id = 1002) AS all_rows
FROM feishu_op_records WHERE work_item_id = 1002;
SELECT status, err_code, fault FROM sim.feishu_requests WHERE api = 'feishu' ORDER BY seq;

-- EXPLAIN ANALYZE counts the retries
SELECT sim.reset();
SELECT sim.configure('{"faults": [{"path": "/op_record/", "kind": "error", "status": 500, "count": 2}]}');
EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF, BUFFERS OFF)
SELECT * FROM feishu_op_records WHERE work_item_id = 1001;

-- past max_retries the error says how many were made
SELECT sim.reset();
ALTER SERVER feishu OPTIONS (ADD max_retries '2');
SELECT sim.configure('{"faults": [{"path": "/op_record/", "kind": "error", "status": 502}]}');
SELECT * FROM sim.error_of('SELECT * FROM feishu_op_records WHERE work_item_id = 1001');
SELECT count(*) AS requests FROM sim.feishu_requests WHERE api = 'feishu';
SELECT sim.reset();
SELECT sim.configure('{"faults": [{"path": "/op_record/", "kind": "reset"}]}');
SELECT * FROM sim.error_of('SELECT * FROM feishu_op_records WHERE work_item_id = 1001');
ALTER SERVER feishu OPTIONS (SET max_retries '0');
SELECT sim.reset();
SELECT sim.configure('{"faults": [{"path": "/op_record/", "kind": "error", "status": 500, "count": 1}]}');
SELECT * FROM sim.error_of('SELECT * FROM feishu_op_records WHERE work_item_id = 1001') WHERE field = 'message';
ALTER SERVER feishu OPTIONS (DROP max_retries);

-- a Retry-After longer than two minutes is not waited for
SELECT sim.reset();
SELECT sim.configure('{"faults": [{"path": "/op_record/", "kind": "throttle", "retry_after": 3600, "count": 1}]}');
SELECT * FROM sim.error_of('SELECT * FROM feishu_op_records WHERE work_item_id = 1001') WHERE field IN ('message', 'hint');

-- parameter and authentication errors are never retried
SELECT sim.reset();
SELECT * FROM sim.error_of($$SELECT * FROM feishu_op_records WHERE work_item_id = 1001 AND operator_type = 'robot'$$) WHERE field = 'message';
SELECT count(*) AS requests FROM sim.feishu_requests WHERE api = 'feishu';

-- a cancel ends the wait between attempts at once
SELECT sim.reset();
SELECT sim.configure('{"faults": [{"path": "/op_record/", "kind": "throttle", "retry_after": 100}]}');
SET statement_timeout = '1s';
SELECT * FROM feishu_op_records WHERE work_item_id = 1001;
RESET statement_timeout;

-- Huawei: busy, rate and gateway throttling are retried
SELECT sim.reset();
SELECT sim.configure('{"faults": [
    {"path": "/v2/issues/get-record", "kind": "error", "status": 400, "count": 1},
    {"path": "/v2/issues/get-record", "kind": "throttle", "retry_after": 1, "count": 1},
    {"path": "/v2/issues/get-record", "kind": "error", "status": 400, "count": 1,
     "body": {"error_code": "PM.02153001", "error_msg": "request rate too high"}}]}');
SELECT count(*) = (SELECT count(*) FROM sim.huawei_truth WHERE issue_id = 9175005) AS all_rows
FROM huawei_issue_records WHERE issue_id = 9175005;
SELECT status, err_code, fault FROM sim.huawei_requests WHERE api = 'huawei' ORDER BY seq;

-- a long scan through an unreliable API: throttled at 15 requests/s,
-- one request in four failing with a 5xx, tokens lasting 3 s.  Every row
-- comes back exactly once.
SELECT sim.reset();
SELECT sim.expire_tokens();
ALTER SERVER feishu OPTIONS (ADD page_size '10');
SELECT sim.configure('{"feishu_qps": 15, "feishu_token_ttl": 3,
    "faults": [{"path": "/op_record/", "kind": "error", "status": 500, "every": 4}]}');
CREATE TEMP TABLE result AS SELECT * FROM feishu_op_records WHERE work_item_id = 5000;
SELECT * FROM sim.compare('result', 'work_item_id = 5000');
SELECT count(*) >= 300 AS many_requests,
       count(*) FILTER (WHERE status = 500) > 50 AS many_failures,
       count(*) FILTER (WHERE api = 'feishu_auth') > 3 AS tokens_renewed,
       count(*) FILTER (WHERE status = 429) AS throttled
FROM sim.feishu_requests;
ALTER SERVER feishu OPTIONS (DROP page_size);
DROP TABLE result;
