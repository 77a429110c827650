--
-- feishu_users: people by user key (POST /open_api/user/query, 100 keys a
-- request), so that an operator's user key joins to a name.  A table of a
-- feishu server with OPTIONS (resource 'users').
--
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';

CREATE FOREIGN TABLE feishu_users (
    user_key text,
    username text,
    name_cn text,
    name_en text,
    email text,
    status text,
    name jsonb
) SERVER feishu OPTIONS (resource 'users');

-- Every user the simulated API knows.
CREATE TABLE sim.feishu_people AS
SELECT r->>'user_key' AS user_key, r->>'username' AS username, r->>'name_cn' AS name_cn,
       r->>'name_en' AS name_en, r->>'email' AS email, r->>'status' AS status, r->'name' AS name
FROM (SELECT line::jsonb AS r FROM sim.call('GET', '/_sim/truth/feishu_users') AS line) AS t;
SELECT count(*) AS users FROM sim.feishu_people;

-- by key: one request for the keys, unknown and malformed keys give no row
SELECT sim.reset();
SELECT user_key, username, name_cn, name_en, email, status
FROM feishu_users
WHERE user_key IN ('7491126018028090001', '7380021184471550023', '123', 'not-a-key', '')
ORDER BY user_key;
SELECT r->'body'->'user_keys' AS user_keys
FROM sim.requests() r WHERE r->>'path' = '/open_api/user/query';
-- every user, compared with the simulator's
CREATE TEMP TABLE got AS SELECT * FROM feishu_users
WHERE user_key = ANY (ARRAY(SELECT user_key FROM sim.feishu_people));
SELECT * FROM sim.compare('got', 'true', 'sim.feishu_people');
DROP TABLE got;

-- operators joined to names: each distinct operator asked for once
SELECT sim.reset();
EXPLAIN (COSTS OFF)
SELECT u.name_cn, count(*) FROM feishu_op_records r JOIN feishu_users u ON u.user_key = r.operator
WHERE r.work_item_id IN (1001, 1002, 1003) GROUP BY u.name_cn;
SELECT u.name_cn, count(*) FROM feishu_op_records r JOIN feishu_users u ON u.user_key = r.operator
WHERE r.work_item_id IN (1001, 1002, 1003) GROUP BY u.name_cn ORDER BY u.name_cn;
SELECT p.name_cn, count(*) FROM sim.feishu_truth t JOIN sim.feishu_people p ON p.user_key = t.operator
WHERE t.work_item_id IN (1001, 1002, 1003) AND t.project_key = 'proj_alpha' GROUP BY p.name_cn ORDER BY p.name_cn;
SELECT count(*) AS user_requests,
       count(DISTINCT r->'body'->'user_keys') AS distinct_asks
FROM sim.requests() r WHERE r->>'path' = '/open_api/user/query';

-- a dashboard: changes per person per day, names joined
SELECT u.name_en, date_trunc('day', r.operation_time) AS day, count(*) AS changes
FROM feishu_op_records r JOIN feishu_users u ON u.user_key = r.operator
WHERE r.operation_time >= '2026-08-20' AND r.operation_time < '2026-08-27'
GROUP BY 1, 2 ORDER BY 2, 1;
SELECT p.name_en, date_trunc('day', t.operation_time) AS day, count(*) AS changes
FROM sim.feishu_truth t JOIN sim.feishu_people p ON p.user_key = t.operator
WHERE t.operation_time >= '2026-08-20' AND t.operation_time < '2026-08-27'
  AND t.project_key = 'proj_alpha'
  AND t.work_item_id NOT IN (SELECT id FROM sim.feishu_items WHERE terminated OR updated_at < '2026-08-20')
GROUP BY 1, 2 ORDER BY 2, 1;

-- more than 100 keys: batches of 100
SELECT sim.reset();
SELECT count(*) FROM feishu_users
WHERE user_key = ANY (ARRAY(SELECT (7491126018028090000 + g)::text FROM generate_series(1, 250) g));
SELECT jsonb_array_length(r->'body'->'user_keys') AS keys
FROM sim.requests() r WHERE r->>'path' = '/open_api/user/query' ORDER BY (r->>'seq')::int;

-- no user key: refused before any request; a range of text keys is no list
SELECT * FROM sim.error_of('SELECT * FROM feishu_users');
SELECT * FROM sim.error_of($$SELECT * FROM feishu_users WHERE user_key > '7'$$);
-- the resource option is checked
CREATE FOREIGN TABLE feishu_bad_resource (user_key text) SERVER feishu OPTIONS (resource 'groups');

-- IMPORT FOREIGN SCHEMA creates both tables
CREATE SCHEMA users_import;
IMPORT FOREIGN SCHEMA feishu FROM SERVER feishu INTO users_import;
SELECT c.relname, ft.ftoptions
FROM pg_foreign_table ft JOIN pg_class c ON c.oid = ft.ftrelid
WHERE c.relnamespace = 'users_import'::regnamespace ORDER BY 1;
SELECT count(*) FROM users_import.feishu_users WHERE user_key = '7491126018028090001';
DROP SCHEMA users_import CASCADE;

DROP TABLE sim.feishu_people, sim.feishu_items;
DROP FOREIGN TABLE feishu_users;
