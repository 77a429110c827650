--
-- Answers an API should never send: each gives a short, clear error, the
-- backend's memory stays bounded, and the next query on the connection
-- works.  Numbers past int64 are kept exactly.
--
SET timezone = 'UTC';

-- peak resident memory of this backend, in MB
CREATE FUNCTION pg_temp.peak_mb() RETURNS int LANGUAGE sql AS $$
    SELECT (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'),
                         'VmHWM:\s+(\d+) kB'))[1]::int / 1024 $$;
-- a query's error message and its length, without the message itself
CREATE FUNCTION pg_temp.error_size(query text, OUT state text, OUT message_bytes int,
                                   OUT detail_bytes int) LANGUAGE plpgsql AS $$
DECLARE m text; d text;
BEGIN
    EXECUTE query;
    state := 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL, state = RETURNED_SQLSTATE;
    message_bytes := octet_length(m);
    detail_bytes := octet_length(d);
END $$;

-- 30 MB of [{},{},...]: refused at max_response_bytes, plain or gzipped
SELECT sim.reset();
SELECT sim.configure('{"faults": [{"path": "/op_record/", "kind": "template", "count": 1,
    "raw": "{\"err_code\":0,\"data\":{\"has_more\":false,\"op_records\":[@@FILL@@{}]}}",
    "fill": "{},", "repeat": 10000000}]}');
SELECT * FROM sim.error_of('SELECT * FROM feishu_op_records WHERE work_item_id = 1001');
SELECT sim.configure('{"faults": [{"path": "/op_record/", "kind": "template", "count": 1, "gzip": true,
    "raw": "{\"err_code\":0,\"data\":{\"has_more\":false,\"op_records\":[@@FILL@@{}]}}",
    "fill": "{},", "repeat": 10000000}]}');
SELECT * FROM sim.error_of('SELECT * FROM feishu_op_records WHERE work_item_id = 1001');
-- an answer that never ends
SELECT sim.configure('{"faults": [{"path": "/op_record/", "kind": "endless", "count": 1}]}');
SELECT * FROM sim.error_of('SELECT * FROM feishu_op_records WHERE work_item_id = 1001');
-- under the byte cap but too complex to read within its memory budget
ALTER SERVER feishu OPTIONS (ADD max_response_bytes '4000000');
SELECT sim.configure('{"faults": [{"path": "/op_record/", "kind": "template", "count": 1,
    "raw": "{\"err_code\":0,\"data\":{\"has_more\":false,\"op_records\":[@@FILL@@{}]}}",
    "fill": "{},", "repeat": 1300000}]}');
SELECT * FROM sim.error_of('SELECT * FROM feishu_op_records WHERE work_item_id = 1001');
ALTER SERVER feishu OPTIONS (DROP max_response_bytes);
SELECT pg_temp.peak_mb() < 300 AS bounded_memory;
SELECT count(*) = (SELECT count(*) FROM sim.feishu_truth WHERE work_item_id = 1001) AS next_query_works
FROM feishu_op_records WHERE work_item_id = 1001;

-- paging that never progresses: endless empty pages, an overlong cursor
SELECT sim.reset();
SELECT sim.configure('{"faults": [{"path": "/op_record/", "kind": "paging_loop"}]}');
SELECT * FROM sim.error_of('SELECT * FROM feishu_op_records WHERE work_item_id = 1001')
WHERE field <> 'detail';
SELECT count(*) AS requests FROM sim.feishu_requests WHERE fault = 'paging_loop';
SELECT sim.reset();
SELECT sim.configure('{"faults": [{"path": "/op_record/", "kind": "paging_loop", "cursor_length": 5000}]}');
SELECT * FROM sim.error_of('SELECT * FROM feishu_op_records WHERE work_item_id = 1001') WHERE field = 'message';
SELECT count(*) AS requests FROM sim.feishu_requests;

-- messages from the API are cut short, stripped of control characters and
-- made valid: a 5 MB err_msg, a log id of invalid bytes under LATIN1
SELECT sim.reset();
SELECT sim.configure('{"faults": [{"path": "/op_record/", "kind": "template", "status": 400, "count": 1,
    "raw": "{\"err_code\":20006,\"err_msg\":\"bad\\r\\nvalue @@FILL@@\"}", "fill": "x", "repeat": 5000000}]}');
SELECT * FROM pg_temp.error_size('SELECT * FROM feishu_op_records WHERE work_item_id = 1001');
SELECT sim.configure('{"faults": [{"path": "/op_record/", "kind": "template", "status": 400, "count": 1,
    "raw": "{\"err_code\":20006,\"err_msg\":\"bad\\u0007value\\nhere\"}"}]}');
SELECT * FROM sim.error_of('SELECT * FROM feishu_op_records WHERE work_item_id = 1001') WHERE field = 'message';
SELECT sim.configure('{"faults": [{"path": "/op_record/", "kind": "error", "status": 400, "count": 1,
    "body": {"err_code": 20006, "err_msg": "invalid value"}, "headers": {"X-Tt-Logid": "log\u00ff\u00fe\u0080id"}}]}');
SET client_encoding = 'LATIN1';
SELECT * FROM sim.error_of('SELECT * FROM feishu_op_records WHERE work_item_id = 1001') WHERE field = 'message';
RESET client_encoding;

-- numbers past int64 (and reals) come through exactly in record_contents
CREATE FOREIGN TABLE edge_records (project_key text, work_item_id bigint,
    operation_time timestamptz, record_contents jsonb, operator text)
    SERVER feishu OPTIONS (project_key 'proj_edge');
CREATE TEMP TABLE edge_result AS SELECT * FROM edge_records WHERE work_item_id = 7000;
SELECT * FROM sim.compare('edge_result', $$work_item_id = 7000$$);
SELECT e->'big' AS big, e->'neg' AS neg, e->'small' AS small,
       (e->>'real')::numeric = 1.5e300 AS real_exact, e->'precise' AS precise
FROM edge_result, jsonb_path_query(record_contents, '$[*].extra') AS e ORDER BY operation_time;
-- as json (not jsonb) the text is the API's own
CREATE FOREIGN TABLE edge_records_json (work_item_id bigint, operation_time timestamptz,
    record_contents json) SERVER feishu OPTIONS (project_key 'proj_edge');
SELECT record_contents::text ~ '123456789012345678901234567890' AS big_kept,
       record_contents::text ~ '1\.5e300' AS real_kept
FROM edge_records_json WHERE work_item_id = 7000 ORDER BY operation_time LIMIT 1;
-- a value that must fit a column and does not: a precise error
SELECT sim.configure('{"faults": [{"path": "/op_record/", "kind": "template", "count": 1,
    "raw": "{\"err_code\":0,\"data\":{\"has_more\":false,\"op_records\":[{\"work_item_id\":1001,\"operation_time\":123456789012345678901234,\"record_contents\":[{\"n\":99999999999999999999999}]}]}}"}]}');
SELECT * FROM sim.error_of('SELECT * FROM feishu_op_records WHERE work_item_id = 1001');
SELECT sim.configure('{"faults": [{"path": "/op_record/", "kind": "template", "count": 1,
    "raw": "{\"err_code\":0,\"data\":{\"has_more\":false,\"op_records\":[{\"work_item_id\":1001,\"operation_time\":123456789012345678901234,\"record_contents\":[{\"n\":99999999999999999999999}]}]}}"}]}');
SELECT work_item_id, record_contents FROM feishu_op_records WHERE work_item_id = 1001 LIMIT 1;
-- a NUL in a string from the API becomes U+FFFD: a value can never pass
-- for a number kept exactly
SELECT sim.configure('{"faults": [{"path": "/op_record/", "kind": "template", "count": 1,
    "raw": "{\"err_code\":0,\"data\":{\"has_more\":false,\"op_records\":[{\"work_item_id\":1001,\"operator\":\"\\u0000N42\",\"record_contents\":[{\"new\":[\"\\u0000N7\"]}]}]}}"}]}');
SELECT operator, record_contents FROM feishu_op_records WHERE work_item_id = 1001;

-- a valid JSON number numeric cannot hold (an exponent past 1000, more
-- digits than it keeps) cannot be a jsonb number: the record is kept, the
-- number as a string of its exact text, and the first such number of the
-- scan's column is warned of, with the record it is in (its CONTEXT)
SELECT sim.configure('{"faults": [{"path": "/op_record/", "kind": "template", "count": 1,
    "raw": "{\"err_code\":0,\"data\":{\"has_more\":false,\"op_records\":[{\"work_item_id\":1001,\"operation_time\":1736000000000,\"record_contents\":[{\"huge\":1e999999999,\"fits\":-1.5e1000,\"over\":1e1001,\"tiny\":2.5E-999999}]},{\"work_item_id\":1001,\"operation_time\":1736000001000,\"record_contents\":[{\"huge\":-9e999999999}]}]}}"}]}');
\set SHOW_CONTEXT always
SELECT operation_time, c->'huge' AS huge, jsonb_typeof(c->'huge') AS huge_type,
       c->'fits' = '-1.5e1000'::jsonb AS fits_exact, jsonb_typeof(c->'fits') AS fits_type,
       c->'over' AS over, c->'tiny' AS tiny
FROM feishu_op_records, jsonb_array_elements(record_contents) AS c
WHERE work_item_id = 1001 ORDER BY operation_time;
\set SHOW_CONTEXT errors
-- as json the number is the API's own text
SELECT sim.configure('{"faults": [{"path": "/op_record/", "kind": "template", "count": 1,
    "raw": "{\"err_code\":0,\"data\":{\"has_more\":false,\"op_records\":[{\"work_item_id\":1001,\"operation_time\":1736000000000,\"record_contents\":[{\"huge\":1e999999999}]}]}}"}]}');
SELECT record_contents FROM edge_records_json WHERE work_item_id = 1001;
