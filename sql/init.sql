--
-- Set-up shared by the regression tests: the extension, helpers that talk
-- to the API simulator's control interface (its request log and the truth:
-- every record the simulated API holds), and the Feishu objects.
--
\getenv sim_url OPREC_SIM_URL
\if :{?sim_url}
\else
\echo 'OPREC_SIM_URL is not set: run the suite with test/run-tests.sh, which starts the API simulator'
\quit
\endif
SET client_min_messages = warning;

CREATE EXTENSION oprec_fdw;
SELECT fdwname, fdwhandler::regproc, fdwvalidator::regproc FROM pg_foreign_data_wrapper;

CREATE SCHEMA sim;
CREATE TABLE sim.settings (url text NOT NULL);
INSERT INTO sim.settings VALUES (:'sim_url');
CREATE UNLOGGED TABLE sim.lines (n serial, line text);

-- One call to the simulator's control interface; its answer, line by line.
CREATE FUNCTION sim.call(method text, path text, body text DEFAULT NULL)
RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE
    url text := (SELECT s.url FROM sim.settings s) || path;
    cmd text;
BEGIN
    cmd := format('curl -sS --fail -X %s ''%s''', method, url);
    IF body IS NOT NULL THEN
        cmd := cmd || format(' -H ''Content-Type: application/json'' --data-binary ''%s''',
                             replace(body, '''', ''''''''''));
    END IF;
    TRUNCATE sim.lines RESTART IDENTITY;
    -- each line is one field: no delimiter or quote character can occur in it
    EXECUTE format('COPY sim.lines (line) FROM PROGRAM %L WITH (FORMAT csv, DELIMITER %L, QUOTE %L)',
                   cmd, E'\x01', E'\x02');
    RETURN QUERY SELECT l.line FROM sim.lines l ORDER BY l.n;
END $$;

CREATE FUNCTION sim.reset() RETURNS void LANGUAGE sql
    BEGIN ATOMIC SELECT count(*) FROM sim.call('POST', '/_sim/reset'); END;
CREATE FUNCTION sim.configure(settings jsonb) RETURNS void LANGUAGE sql
    BEGIN ATOMIC SELECT count(*) FROM sim.call('POST', '/_sim/config', settings::text); END;
CREATE FUNCTION sim.expire_tokens() RETURNS void LANGUAGE sql
    BEGIN ATOMIC SELECT count(*) FROM sim.call('POST', '/_sim/expire_tokens'); END;

-- Epoch milliseconds to timestamptz, in integer steps (no float rounding).
CREATE FUNCTION sim.ms(ms bigint) RETURNS timestamptz LANGUAGE sql IMMUTABLE
    RETURN timestamptz 'epoch' + (ms / 1000) * interval '1 second'
                               + (ms % 1000) * interval '1 millisecond';

-- The simulator's log of API requests since the last reset.
CREATE FUNCTION sim.requests() RETURNS SETOF jsonb LANGUAGE sql
    BEGIN ATOMIC SELECT line::jsonb FROM sim.call('GET', '/_sim/requests') AS line; END;

CREATE VIEW sim.feishu_requests AS
SELECT (r->>'seq')::int AS seq,
       r->>'api' AS api,
       (r->>'status')::int AS status,
       r->>'err_code' AS err_code,
       r->>'token' AS token,
       r->'body'->>'project_key' AS project_key,
       ARRAY(SELECT x::bigint FROM jsonb_array_elements_text(r->'body'->'work_item_ids') AS x) AS ids,
       sim.ms((r->'body'->>'start')::bigint) AS window_start,
       sim.ms((r->'body'->>'end')::bigint) AS window_end,
       (r->'body') - 'project_key' - 'work_item_ids' - 'start' - 'end' - 'start_from' - 'page_size' AS filters,
       (r->'body'->>'page_size')::int AS page_size,
       r->'body'->>'start_from' AS start_from,
       (r->>'records')::int AS records,
       (r->>'has_more')::boolean AS has_more,
       r->>'fault' AS fault
FROM sim.requests() AS r
WHERE r->>'api' LIKE 'feishu%';

-- Every record the simulated Feishu API serves: now (the view asks the
-- simulator each time it is read), and as it started (the table).
CREATE VIEW sim.feishu_truth_now AS
SELECT r->>'project_key' AS project_key,
       (r->>'work_item_id')::bigint AS work_item_id,
       r->>'work_item_type_key' AS work_item_type_key,
       sim.ms((r->>'operation_time')::bigint) AS operation_time,
       r->>'operator' AS operator,
       r->>'operator_type' AS operator_type,
       r->>'operation_type' AS operation_type,
       r->>'op_record_module' AS op_record_module,
       r->>'source_type' AS source_type,
       r->>'source' AS source,
       r->'record_contents' AS record_contents
FROM (SELECT line::jsonb AS r FROM sim.call('GET', '/_sim/truth/feishu') AS line) AS t;
CREATE TABLE sim.feishu_truth AS SELECT * FROM sim.feishu_truth_now;
SELECT count(*) > 4000 AS plenty, count(DISTINCT work_item_id) AS work_items,
       min(operation_time) >= '2024-07-02 00:00:00+08' AS all_served
FROM sim.feishu_truth;

--
-- Compare a result table with the truth under a condition, on the result's
-- columns: the rows missing from the result, and those it has that the
-- API does not hold (a duplicate counts as extra).
--
CREATE FUNCTION sim.compare(result regclass, condition text,
                            truth regclass DEFAULT 'sim.feishu_truth',
                            OUT expected bigint, OUT got bigint,
                            OUT missing bigint, OUT extra bigint)
LANGUAGE plpgsql AS $$
DECLARE
    cols text := (SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum)
                  FROM pg_attribute
                  WHERE attrelid = result AND attnum > 0 AND NOT attisdropped);
BEGIN
    EXECUTE format('SELECT count(*) FROM %s WHERE %s', truth, condition) INTO expected;
    EXECUTE format('SELECT count(*) FROM %s', result) INTO got;
    EXECUTE format('SELECT count(*) FROM (SELECT %s FROM %s WHERE %s EXCEPT ALL SELECT %s FROM %s) d',
                   cols, truth, condition, cols, result) INTO missing;
    EXECUTE format('SELECT count(*) FROM (SELECT %s FROM %s EXCEPT ALL SELECT %s FROM %s WHERE %s) d',
                   cols, result, cols, truth, condition) INTO extra;
END $$;

--
-- Every row the simulated Huawei API holds: one per detail of a history
-- entry, or one with NULL details for an entry without any.  position is
-- the entry's place in the order the API returns an issue's history.
--
CREATE VIEW sim.huawei_truth_now AS
SELECT h->>'project_id' AS project_id,
       (h->>'issue_id')::bigint AS issue_id,
       (e->>'id')::bigint AS journal_id,
       sim.ms((e->>'created_on')::bigint) AS created_on,
       e->>'notes' AS notes,
       (e->'user'->>'id')::bigint AS user_id,
       e->'user'->>'name' AS user_name,
       e->'user'->>'nick_name' AS user_nick_name,
       e->'user'->>'first_name' AS user_first_name,
       e->'user'->>'identifier' AS user_identifier,
       (d->>'id')::bigint AS detail_id,
       d->>'property' AS property,
       d->>'name' AS field_name,
       d->>'operation' AS operation,
       d->>'old_value' AS old_value,
       d->>'new_value' AS new_value,
       dense_rank() OVER (PARTITION BY h->>'project_id', h->>'issue_id' ORDER BY n) AS position
FROM (SELECT line::jsonb AS h, n FROM sim.call('GET', '/_sim/truth/huawei') WITH ORDINALITY AS t(line, n)) AS s
CROSS JOIN LATERAL (SELECT s.h->'entry' AS e) AS x
LEFT JOIN LATERAL jsonb_array_elements(
    CASE WHEN jsonb_typeof(x.e->'details') = 'array' AND jsonb_array_length(x.e->'details') > 0
         THEN x.e->'details' END) AS d ON true;
CREATE TABLE sim.huawei_truth AS SELECT * FROM sim.huawei_truth_now;
SELECT count(DISTINCT issue_id) AS issues, count(*) FILTER (WHERE detail_id IS NULL) AS entries_without_details
FROM sim.huawei_truth;

CREATE VIEW sim.huawei_requests AS
SELECT (r->>'seq')::int AS seq,
       r->>'api' AS api,
       (r->>'status')::int AS status,
       r->>'err_code' AS err_code,
       r->>'token' AS token,
       r->'query'->>'project_id' AS project_id,
       (r->'query'->>'issue_id')::bigint AS issue_id,
       (r->'query'->>'offset')::int AS "offset",
       (r->'query'->>'limit')::int AS "limit",
       r->'query'->>'type' AS type,
       (r->>'records')::int AS records,
       r->>'fault' AS fault
FROM sim.requests() AS r
WHERE r->>'api' LIKE 'huawei%';

--
-- A libpq connection string back to this cluster, for tests that run
-- several backends through dblink: the socket directory, with Debian's
-- default peer authentication for the postgres user.
--
CREATE FUNCTION sim.connstr() RETURNS text LANGUAGE sql STABLE
    RETURN format('dbname=%s port=%s host=%s user=%s', current_database(),
                  current_setting('port'),
                  coalesce(nullif(split_part(current_setting('unix_socket_directories'), ',', 1), ''),
                           'localhost'),
                  current_user);

--
-- Run a query and return its error, if any, one row per field, so that a
-- test can show the DETAIL and HINT of an error or look for secrets in it.
-- libcurl's own words (after "libcurl: " in a DETAIL) carry timings that
-- vary from run to run and change from one libcurl version to the next:
-- masked.  The message says what failed in this extension's words.
--
CREATE FUNCTION sim.error_of(query text)
RETURNS TABLE (field text, value text) LANGUAGE plpgsql AS $$
DECLARE
    m text; d text; h text; s text;
BEGIN
    EXECUTE query;
    RETURN QUERY SELECT 'no error'::text, NULL::text;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL,
                            h = PG_EXCEPTION_HINT, s = RETURNED_SQLSTATE;
    d := regexp_replace(d, 'libcurl: .*$', 'libcurl: (its own words)');
    RETURN QUERY VALUES ('sqlstate', s), ('message', m), ('detail', d), ('hint', h);
END $$;

--
-- The Feishu objects most tests use.  One request at a time, so that the
-- request log's order is known; sql/concurrency.sql runs chains together.
--
CREATE SERVER feishu FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url :'sim_url', project_key 'proj_alpha', max_concurrency '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER feishu
    OPTIONS (plugin_id 'MII_SIM_PLUGIN', plugin_secret 'sim-plugin-secret',
             user_key '7491126018028090001');
CREATE FOREIGN TABLE feishu_op_records (
    project_key text,
    work_item_id bigint,
    work_item_type_key text,
    operation_time timestamptz,
    operator text,
    operator_type text,
    operation_type text,
    op_record_module text,
    source_type text,
    source text,
    record_contents jsonb
) SERVER feishu;

SELECT sim.reset();
SELECT count(*) AS rows FROM feishu_op_records WHERE work_item_id = 1001;
SELECT api, status, token, project_key, ids FROM sim.feishu_requests ORDER BY seq;
