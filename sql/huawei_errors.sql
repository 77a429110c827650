--
-- Huawei errors: missing conditions fail before any request; error bodies
-- ({"error_code", "error_msg"}, status "error") become clear errors.
--

-- no issue_id condition
SELECT sim.reset();
SELECT count(*) FROM (SELECT * FROM huawei_issue_records LIMIT 0) AS probe;
SELECT * FROM huawei_issue_records WHERE field_name = 'status_id';
SELECT * FROM huawei_issue_records WHERE issue_id > 100;  -- one bound is no list of ids
SELECT count(*) AS requests FROM sim.huawei_requests;

-- error bodies (retries are off here: sql/retries.sql shows them)
ALTER SERVER huawei OPTIONS (ADD max_retries '0');
SELECT sim.configure('{"fail_next": {"path": "/v2/issues/get-record", "status": 400,
    "body": {"error_code": "PM.02175000", "error_msg": "system busy"}}}');
SELECT * FROM sim.error_of('SELECT * FROM huawei_issue_records WHERE issue_id = 101');
SELECT sim.configure('{"fail_next": {"path": "/v2/issues/get-record", "status": 200,
    "body": {"status": "error", "result": {}}}}');
SELECT * FROM sim.error_of('SELECT * FROM huawei_issue_records WHERE issue_id = 101');
SELECT sim.configure('{"fail_next": {"path": "/v2/issues/get-record", "status": 200,
    "body": {"status": "success", "result": {"record": [], "offset": 0}}}}');
SELECT * FROM sim.error_of('SELECT * FROM huawei_issue_records WHERE issue_id = 101');
SELECT sim.configure('{"fail_next": {"path": "/v2/issues/get-record", "status": 504, "raw": "upstream timed out"}}');
SELECT * FROM sim.error_of('SELECT * FROM huawei_issue_records WHERE issue_id = 101');

-- a project the API does not know, a page size it refuses
ALTER FOREIGN TABLE huawei_issue_records OPTIONS (ADD project_id 'ffffffffffffffffffffffffffffffff');
SELECT * FROM sim.error_of('SELECT * FROM huawei_issue_records WHERE issue_id = 101');
ALTER FOREIGN TABLE huawei_issue_records OPTIONS (DROP project_id);
ALTER SERVER huawei OPTIONS (ADD page_size '500');
SELECT * FROM sim.error_of('SELECT * FROM huawei_issue_records WHERE issue_id = 101');
ALTER SERVER huawei OPTIONS (DROP page_size);

-- the gateway's rate limit
SELECT sim.reset();
SELECT sim.configure('{"huawei_qps": 2}');
SELECT * FROM sim.error_of('SELECT * FROM huawei_issue_records WHERE issue_id IN (100, 101, 102, 103, 104)');
-- ... which pacing at the same rate keeps to
SELECT sim.reset();
SELECT sim.configure('{"huawei_qps": 2}');
ALTER SERVER huawei OPTIONS (SET requests_per_second '2');
SELECT count(*) > 0 AS read FROM huawei_issue_records WHERE issue_id IN (100, 101, 102, 103, 104);
SELECT count(*) AS requests, count(*) FILTER (WHERE status = 429) AS refused
FROM sim.huawei_requests WHERE api = 'huawei';
ALTER SERVER huawei OPTIONS (SET requests_per_second '0', DROP max_retries);
SELECT sim.reset();
