--
-- Column mapping: a column's field option names an API column by another
-- name (and conditions on it are pushed down as on that column), or a path
-- into the record.  Every supported type, and errors that name the column,
-- the field and the value.
--
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

CREATE FOREIGN TABLE feishu_mapped (
    wid bigint OPTIONS (field 'work_item_id'),
    at timestamptz OPTIONS (field 'operation_time'),
    at_utc timestamp OPTIONS (field 'operation_time'),
    day date OPTIONS (field 'operation_time'),
    at_ms bigint OPTIONS (field 'operation_time'),
    who varchar(40) OPTIONS (field 'operator'),
    kind text OPTIONS (field 'operation_type'),
    wid_numeric numeric OPTIONS (field 'work_item_id'),
    contents json OPTIONS (field 'record_contents'),
    first_change jsonb OPTIONS (field 'record_contents.0'),
    first_new text[] OPTIONS (field 'record_contents.0.new'),
    object_types text[] OPTIONS (field 'record_contents.object.object_type'),
    properties text[] OPTIONS (field 'record_contents.object_property'),
    missing text OPTIONS (field 'no_such_field.x')
) SERVER feishu;

-- the mapped key is pushed down; so are the time and list filters
EXPLAIN (VERBOSE, COSTS OFF)
SELECT wid, at, who FROM feishu_mapped
WHERE wid = 1002 AND at >= '2025-05-20' AND at < '2025-05-21' AND kind = 'modify';
SELECT sim.reset();
SELECT wid, at, at_utc, day, at_ms, who, kind, wid_numeric
FROM feishu_mapped
WHERE wid = 1002 AND at >= '2025-05-20' AND at < '2025-05-21' AND kind = 'modify'
ORDER BY at;
SELECT ids, window_start, window_end, filters FROM sim.feishu_requests WHERE api = 'feishu';

-- paths into record_contents: an element, and a step taken on every element
SELECT at, first_change->'object'->>'object_value' AS first_field, first_new,
       object_types, properties, missing
FROM feishu_mapped WHERE wid = 1001 AND at >= '2025-04-21' AND at < '2025-04-22';
SELECT record_contents FROM sim.feishu_truth
WHERE work_item_id = 1001 AND operation_time >= '2025-04-21' AND operation_time < '2025-04-22';
-- every row agrees with the truth read the same way in SQL
CREATE TEMP VIEW truth_mapped AS
SELECT work_item_id AS wid, operation_time AS at, record_contents AS contents,
       CASE WHEN record_contents->0 ? 'new'
            THEN ARRAY(SELECT jsonb_array_elements_text(record_contents->0->'new')) END AS first_new,
       ARRAY(SELECT c->'object'->>'object_type' FROM jsonb_array_elements(record_contents) c
             WHERE c->'object' ? 'object_type') AS object_types
FROM sim.feishu_truth;
SELECT (SELECT count(*) FROM feishu_mapped WHERE wid IN (1001, 1002, 1003)) AS rows,
       (SELECT count(*) FROM (SELECT wid, at, contents::jsonb, first_new, object_types
                              FROM feishu_mapped WHERE wid IN (1001, 1002, 1003)
                              EXCEPT ALL
                              SELECT * FROM truth_mapped WHERE wid IN (1001, 1002, 1003)) d) AS differ,
       (SELECT count(*) FROM (SELECT * FROM truth_mapped WHERE wid IN (1001, 1002, 1003)
                              EXCEPT ALL
                              SELECT wid, at, contents::jsonb, first_new, object_types
                              FROM feishu_mapped WHERE wid IN (1001, 1002, 1003)) d) AS missing;

-- booleans, integers and arrays of mixed JSON values from a path
CREATE FOREIGN TABLE edge_mapped (
    wid bigint OPTIONS (field 'work_item_id'),
    at timestamptz OPTIONS (field 'operation_time'),
    reviewed boolean OPTIONS (field 'record_contents.0.extra.reviewed'),
    score integer OPTIONS (field 'record_contents.0.extra.score'),
    labels text[] OPTIONS (field 'record_contents.0.extra.labels'),
    big numeric OPTIONS (field 'record_contents.0.extra.big'),
    old_points integer[] OPTIONS (field 'record_contents.0.old')
) SERVER feishu OPTIONS (project_key 'proj_edge');
SELECT at, reviewed, score, labels, big, old_points FROM edge_mapped WHERE wid = 7000 ORDER BY at;

-- Huawei: nested user fields, and details (the row's own detail)
CREATE FOREIGN TABLE huawei_mapped (
    issue bigint OPTIONS (field 'issue_id'),
    journal bigint OPTIONS (field 'id'),
    nick text OPTIONS (field 'user.nick_name'),
    uid integer OPTIONS (field 'user.id'),
    detail_name text OPTIONS (field 'details.name'),
    old text OPTIONS (field 'details.old_value'),
    detail jsonb OPTIONS (field 'details'),
    created date OPTIONS (field 'created_on')
) SERVER huawei;
EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM huawei_mapped WHERE issue = 102;
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT issue AS issue_id, journal AS journal_id, nick AS user_nick_name,
       detail_name AS field_name, old AS old_value FROM huawei_mapped WHERE issue = 102;
SELECT * FROM sim.compare('got', $$issue_id = 102 AND project_id = 'c15cc54e338d4506afd9bd8103071ff0'$$,
                          'sim.huawei_truth');
SELECT issue_id FROM sim.huawei_requests WHERE api = 'huawei';
DROP TABLE got;
SELECT count(*) AS rows, count(*) FILTER (WHERE detail->>'name' = detail_name) AS detail_matches,
       count(*) FILTER (WHERE detail IS NULL) AS entries_without_details,
       min(created) >= '2024-01-01' AS dates
FROM huawei_mapped WHERE issue = 102;

-- impossible conversions are errors naming the column, the field and the value
CREATE FOREIGN TABLE feishu_bad_types (
    work_item_id bigint,
    wid_int integer OPTIONS (field 'work_item_id'),
    flag boolean OPTIONS (field 'operator_type'),
    tags text[] OPTIONS (field 'operator'),
    short varchar(3) OPTIONS (field 'operation_type')
) SERVER feishu;
SELECT wid_int FROM feishu_bad_types WHERE work_item_id = 1001 LIMIT 1;
SELECT wid_int FROM feishu_bad_types WHERE work_item_id = 9007199254740993 LIMIT 1;
SELECT flag FROM feishu_bad_types WHERE work_item_id = 1001 LIMIT 1;
SELECT tags FROM feishu_bad_types WHERE work_item_id = 1001 LIMIT 1;
SELECT short FROM feishu_bad_types WHERE work_item_id = 1001 LIMIT 1;

-- a column that is no API field needs a field option; a bad path is refused
CREATE FOREIGN TABLE feishu_unmapped (wid bigint) SERVER feishu;
SELECT * FROM feishu_unmapped WHERE wid = 1001;
ALTER FOREIGN TABLE feishu_unmapped ALTER COLUMN wid OPTIONS (ADD field '.work_item_id');
ALTER FOREIGN TABLE feishu_unmapped ALTER COLUMN wid OPTIONS (ADD field 'work_item_id');
SELECT count(*) FROM feishu_unmapped WHERE wid = 1001;

DROP VIEW truth_mapped;
DROP FOREIGN TABLE feishu_mapped, edge_mapped, huawei_mapped, feishu_bad_types, feishu_unmapped;
