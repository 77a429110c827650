--
-- huawei_issue_records: one row per detail of an issue's history entries,
-- one request chain per issue, offset/limit paging, and the API's offset
-- cap.  sim.compare checks rows against the simulator's truth.
--
SET timezone = 'UTC';
SET datestyle = 'ISO, YMD';
\getenv sim_url OPREC_SIM_URL

-- (one request at a time, so that the request log's order is known)
CREATE SERVER huawei FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'huawei', base_url :'sim_url', iam_url :'sim_url',
             project_id 'c15cc54e338d4506afd9bd8103071ff0', requests_per_second '0',
             max_concurrency '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER huawei
    OPTIONS (user_name 'sim_user', password 'sim-password', domain_name 'sim_domain');
CREATE FOREIGN TABLE huawei_issue_records (
    project_id text,
    issue_id bigint,
    journal_id bigint,
    created_on timestamptz,
    notes text,
    user_id bigint,
    user_name text,
    user_nick_name text,
    user_first_name text,
    user_identifier text,
    detail_id bigint,
    property text,
    field_name text,
    operation text,
    old_value text,
    new_value text
) SERVER huawei;

-- one issue's history: entries of one operation batch share journal_id
SELECT sim.reset();
SELECT journal_id, created_on, user_nick_name, field_name, operation, old_value,
       left(new_value, 24) AS new_value
FROM huawei_issue_records WHERE issue_id = 9175005
ORDER BY created_on DESC, detail_id;
CREATE TEMP TABLE got AS SELECT * FROM huawei_issue_records WHERE issue_id = 9175005;
SELECT * FROM sim.compare('got', 'issue_id = 9175005', 'sim.huawei_truth');
SELECT api, status, token, issue_id, "offset", "limit", type FROM sim.huawei_requests ORDER BY seq;
DROP TABLE got;

-- a list of issues: one chain per issue; issues with no history give no row
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM huawei_issue_records
    WHERE issue_id = ANY (ARRAY(SELECT generate_series(100, 130)::bigint));
SELECT * FROM sim.compare('got', 'issue_id BETWEEN 100 AND 130 AND project_id = ''c15cc54e338d4506afd9bd8103071ff0''',
                          'sim.huawei_truth');
SELECT count(*) AS requests, count(DISTINCT issue_id) AS issues, max("offset") AS max_offset
FROM sim.huawei_requests WHERE api = 'huawei';
SELECT v.id AS issue_id, count(got.issue_id) AS rows
FROM (VALUES (107::bigint), (123), (124)) AS v(id) LEFT JOIN got ON got.issue_id = v.id
GROUP BY v.id ORDER BY v.id;
DROP TABLE got;

-- entries without details give one row with NULL detail columns; absent
-- notes and old values are NULL, empty ones stay ''
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM huawei_issue_records
    WHERE issue_id IN (100, 101, 102, 103, 104, 105, 3000000001);
SELECT * FROM sim.compare('got', 'issue_id IN (100, 101, 102, 103, 104, 105, 3000000001)', 'sim.huawei_truth');
SELECT count(*) FILTER (WHERE detail_id IS NULL) AS without_details,
       count(*) FILTER (WHERE detail_id IS NULL AND field_name IS NULL AND new_value IS NULL) AS all_detail_columns_null,
       count(*) FILTER (WHERE notes IS NULL) AS no_notes,
       count(*) FILTER (WHERE notes = '') AS empty_notes,
       count(*) FILTER (WHERE old_value IS NULL AND detail_id IS NOT NULL) AS no_old_value,
       count(*) FILTER (WHERE old_value = '') AS empty_old_value,
       count(DISTINCT journal_id) AS batches, count(DISTINCT (journal_id, created_on)) AS entries_by_time
FROM got;
SELECT DISTINCT issue_id, issue_id > 2147483647 AS beyond_int4 FROM got WHERE issue_id > 1000;
SELECT count(*) FILTER (WHERE user_id > 2147483647) AS users_beyond_int4 FROM got;
DROP TABLE got;

-- ids that cannot exist (1 to 10 digits) are not asked for
SELECT sim.reset();
SELECT count(*) FROM huawei_issue_records WHERE issue_id IN (0, -5, 12345678901, 100);
SELECT issue_id FROM sim.huawei_requests;

-- project_id: a condition, else the table's option, else the server's
SELECT sim.reset();
SELECT count(*) FROM huawei_issue_records
WHERE project_id = '0a1b2c3d4e5f60718293a4b5c6d7e8f9' AND issue_id IN (200, 201, 202);
SELECT count(*) FROM sim.huawei_truth
WHERE project_id = '0a1b2c3d4e5f60718293a4b5c6d7e8f9' AND issue_id IN (200, 201, 202);
CREATE FOREIGN TABLE huawei_other_project (issue_id bigint, project_id text, field_name text)
    SERVER huawei OPTIONS (project_id '0a1b2c3d4e5f60718293a4b5c6d7e8f9');
SELECT project_id, count(*) FROM huawei_other_project WHERE issue_id = 203 GROUP BY 1;
SELECT DISTINCT project_id FROM sim.huawei_requests WHERE api = 'huawei';

-- who changed status_id last week (created_on is checked locally)
SELECT sim.reset();
SELECT user_nick_name, old_value, new_value, created_on > now() - interval '7 days' AS last_week
FROM huawei_issue_records
WHERE issue_id = 5555 AND field_name = 'status_id' AND created_on >= now() - interval '7 days'
ORDER BY created_on;
SELECT count(*) AS requests, max(issue_id) AS issue FROM sim.huawei_requests WHERE api = 'huawei';

-- the history of every issue in a local list, and a join
CREATE TEMP TABLE my_issues (id bigint PRIMARY KEY, owner text);
INSERT INTO my_issues VALUES (9175005, 'ana'), (101, 'bo'), (102, 'bo'), (3000000001, 'ana');
SELECT sim.reset();
SELECT m.owner, count(*) AS changes, count(DISTINCT r.issue_id) AS issues
FROM my_issues m
JOIN huawei_issue_records r ON r.issue_id = m.id
WHERE r.issue_id = ANY (ARRAY(SELECT id FROM my_issues))
GROUP BY m.owner ORDER BY m.owner;
SELECT count(*) FROM sim.huawei_truth
WHERE issue_id IN (9175005, 101, 102, 3000000001) AND project_id = 'c15cc54e338d4506afd9bd8103071ff0';
SELECT count(*) AS requests FROM sim.huawei_requests WHERE api = 'huawei';

-- small pages: offsets step by the limit until journals_total is reached
CREATE SERVER huawei_pages FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'huawei', base_url :'sim_url', project_id 'c15cc54e338d4506afd9bd8103071ff0',
             page_size '7', requests_per_second '0', max_concurrency '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER huawei_pages
    OPTIONS (auth_token 'MIIsim-static-huawei-token');
CREATE FOREIGN TABLE huawei_small_pages (issue_id bigint, journal_id bigint, detail_id bigint,
    field_name text, new_value text) SERVER huawei_pages;
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM huawei_small_pages WHERE issue_id = 3000000001;
SELECT * FROM sim.compare('got', 'issue_id = 3000000001', 'sim.huawei_truth');
SELECT "offset", "limit", records FROM sim.huawei_requests ORDER BY "offset";
DROP TABLE got;

-- LIMIT stops fetching
SELECT sim.reset();
SELECT count(*) FROM (SELECT * FROM huawei_small_pages WHERE issue_id = 3000000001 LIMIT 3) s;
SELECT count(*) AS requests FROM sim.huawei_requests;

-- more history than the API can page through: a warning says how much
-- could not be read, and the rest comes back
SELECT sim.reset();
CREATE TEMP TABLE got AS SELECT * FROM huawei_issue_records WHERE issue_id = 4000000000;
SELECT * FROM sim.compare('got', 'issue_id = 4000000000 AND position <= 10100', 'sim.huawei_truth');
SELECT count(*) AS requests, min("offset") AS first_offset, max("offset") AS last_offset,
       sum(records) AS entries
FROM sim.huawei_requests WHERE api = 'huawei';
SELECT count(DISTINCT position) AS entries_held FROM sim.huawei_truth WHERE issue_id = 4000000000;
DROP TABLE got;

-- what is pushed: issue_id and project_id; everything else stays local
EXPLAIN (VERBOSE, COSTS OFF)
SELECT field_name, new_value FROM huawei_issue_records
WHERE issue_id IN (100, 101) AND project_id = 'c15cc54e338d4506afd9bd8103071ff0'
  AND field_name = 'status_id' AND created_on > '2025-01-01';

DROP FOREIGN TABLE huawei_other_project, huawei_small_pages;
DROP USER MAPPING FOR CURRENT_USER SERVER huawei_pages;
DROP SERVER huawei_pages;
