--
-- IMPORT FOREIGN SCHEMA: the documented table of the server's API, with
-- exactly the README's columns and types, options passed on, LIMIT TO and
-- EXCEPT, and clear errors for a schema or table the API does not have.
--
SET timezone = 'UTC';
CREATE SCHEMA imported;

IMPORT FOREIGN SCHEMA feishu FROM SERVER feishu INTO imported;
IMPORT FOREIGN SCHEMA huawei FROM SERVER huawei INTO imported;
SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE c.relnamespace = 'imported'::regnamespace AND a.attnum > 0
ORDER BY c.relname, a.attnum;
-- the same columns and types as the tables the other tests create by hand
SELECT a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a WHERE a.attrelid = 'imported.feishu_op_records'::regclass AND a.attnum > 0
EXCEPT
SELECT a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a WHERE a.attrelid = 'public.feishu_op_records'::regclass AND a.attnum > 0;
SELECT a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a WHERE a.attrelid = 'imported.huawei_issue_records'::regclass AND a.attnum > 0
EXCEPT
SELECT a.attname, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a WHERE a.attrelid = 'public.huawei_issue_records'::regclass AND a.attnum > 0;

-- the imported tables work
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM imported.feishu_op_records WHERE work_item_id = 1002;
SELECT * FROM sim.compare('got', 'work_item_id = 1002');
DROP TABLE got;
CREATE TEMP TABLE got AS SELECT * FROM imported.huawei_issue_records WHERE issue_id = 102;
SELECT * FROM sim.compare('got', $$issue_id = 102 AND project_id = 'c15cc54e338d4506afd9bd8103071ff0'$$,
                          'sim.huawei_truth');
DROP TABLE got;

-- OPTIONS become the table's options
CREATE SCHEMA imported_beta;
IMPORT FOREIGN SCHEMA feishu FROM SERVER feishu INTO imported_beta OPTIONS (project_key 'proj_beta');
SELECT ftoptions FROM pg_foreign_table WHERE ftrelid = 'imported_beta.feishu_op_records'::regclass;
SELECT sim.reset();
SELECT count(*) > 0 AS has_rows FROM imported_beta.feishu_op_records
WHERE work_item_id IN (SELECT work_item_id FROM sim.feishu_truth WHERE project_key = 'proj_beta');
SELECT DISTINCT project_key FROM sim.feishu_requests WHERE api = 'feishu';
IMPORT FOREIGN SCHEMA feishu FROM SERVER feishu INTO imported_beta OPTIONS (page_size '10');
IMPORT FOREIGN SCHEMA feishu FROM SERVER feishu INTO imported_beta OPTIONS (project_id 'x');

-- LIMIT TO and EXCEPT
CREATE SCHEMA imported_some;
IMPORT FOREIGN SCHEMA feishu EXCEPT (feishu_op_records) FROM SERVER feishu INTO imported_some;
IMPORT FOREIGN SCHEMA feishu LIMIT TO (feishu_op_records) FROM SERVER feishu INTO imported_some;
SELECT relname FROM pg_class WHERE relnamespace = 'imported_some'::regnamespace;

-- what the API does not have
IMPORT FOREIGN SCHEMA huawei FROM SERVER feishu INTO imported_some;
IMPORT FOREIGN SCHEMA public FROM SERVER huawei INTO imported_some;
IMPORT FOREIGN SCHEMA feishu LIMIT TO (work_items) FROM SERVER feishu INTO imported_some;
-- the table exists already
IMPORT FOREIGN SCHEMA feishu FROM SERVER feishu INTO imported;

DROP SCHEMA imported, imported_beta, imported_some CASCADE;
