--
-- Types: how record fields become column values.  Ids stay exact past
-- 2^53, operation_time converts from epoch milliseconds exactly, text
-- keeps every character, missing fields are NULL and '' stays ''.
--
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

-- ids beyond 2^53 (a double would turn ...993 into ...992)
SELECT DISTINCT work_item_id, work_item_id::text AS as_text, work_item_id - 9007199254740992 AS above_2_53
FROM feishu_op_records WHERE work_item_id IN (9007199254740993, 9007199254740995)
ORDER BY 1;
SELECT ids FROM sim.feishu_requests WHERE api = 'feishu' ORDER BY seq DESC LIMIT 1;

-- milliseconds are exact, also in other time zones
SELECT operation_time, (extract(epoch FROM operation_time) * 1000)::bigint AS ms
FROM feishu_op_records WHERE work_item_id = 1200 ORDER BY operation_time LIMIT 4;
SET timezone = 'Asia/Shanghai';
SELECT operation_time FROM feishu_op_records
WHERE work_item_id = 1200 AND operation_time = '2025-03-02 00:00:00+08';
SET timezone = 'UTC';

-- every field of every record of a few items, compared with the API's
CREATE TEMP TABLE got AS SELECT * FROM feishu_op_records
    WHERE work_item_id IN (1001, 1002, 1200, 9007199254740993, 9007199254740995);
SELECT * FROM sim.compare('got', 'work_item_id IN (1001, 1002, 1200, 9007199254740993, 9007199254740995)');

-- text with Chinese, quotes, backslashes, newlines, tabs and emoji
SELECT operation_time, c->'new' AS new_value, c->'old' AS old_value
FROM got, jsonb_array_elements(record_contents) AS c
WHERE work_item_id IN (1001, 1002)
  AND operation_time BETWEEN '2025-05-20 02:00:00+00' AND '2025-05-20 02:02:00+00'
ORDER BY work_item_id, operation_time;
SELECT c->'new'->>0 AS multi_line
FROM got, jsonb_array_elements(record_contents) AS c
WHERE work_item_id = 1001 AND operation_time = '2025-05-20 02:02:00+00';

-- empty record_contents, missing fields and empty strings
SELECT count(*) FILTER (WHERE record_contents = '[]') AS empty_contents,
       count(*) FILTER (WHERE record_contents IS NULL) AS null_contents,
       count(*) FILTER (WHERE operator = '') AS empty_operator,
       count(*) FILTER (WHERE operator IS NULL) AS null_operator,
       count(*) FILTER (WHERE source IS NULL) AS no_source,
       count(*) FILTER (WHERE work_item_type_key IS NULL) AS no_type
FROM feishu_op_records WHERE work_item_id = ANY (ARRAY(SELECT generate_series(1001, 1130)::bigint));
SELECT count(*) FILTER (WHERE record_contents = '[]') AS empty_contents,
       count(*) FILTER (WHERE operator = '') AS empty_operator,
       count(*) FILTER (WHERE source IS NULL) AS no_source,
       count(*) FILTER (WHERE work_item_type_key IS NULL) AS no_type
FROM sim.feishu_truth WHERE work_item_id BETWEEN 1001 AND 1130;

-- a table may declare any subset of the columns, in any order and with
-- other types: varchar, json, a bigint of raw milliseconds
CREATE FOREIGN TABLE feishu_narrow (
    record_contents json,
    operation_time bigint,
    operator varchar(40),
    work_item_id bigint
) SERVER feishu;
SELECT operation_time, operator, work_item_id, record_contents::text
FROM feishu_narrow WHERE work_item_id = 1002
ORDER BY operation_time LIMIT 3;

-- whole-row references read every column
SELECT n FROM feishu_narrow n WHERE work_item_id = 9007199254740995 ORDER BY operation_time LIMIT 1;

-- a key column declared with another type cannot be pushed down
CREATE FOREIGN TABLE feishu_text_ids (work_item_id text, operator text) SERVER feishu;
SELECT count(*) FROM feishu_text_ids WHERE work_item_id = '1001';

-- flattening record_contents
SELECT r.operation_time, c->'object'->>'object_type' AS object_type,
       c->'object'->>'object_value' AS field, c->'old' AS old, c->'new' AS new
FROM feishu_op_records r, jsonb_array_elements(r.record_contents) AS c
WHERE r.work_item_id = 1002
ORDER BY r.operation_time, field
LIMIT 6;

DROP TABLE got;
DROP FOREIGN TABLE feishu_narrow, feishu_text_ids;
