--
-- Set-up shared by the regression tests: the extension, helpers that talk
-- to the API simulator's control interface (its request log and the truth:
-- every record the simulated API holds), and the Feishu objects.
--
\getenv sim_url OPREC_SIM_URL
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
       (r->>'has_more')::boolean AS has_more
FROM sim.requests() AS r
WHERE r->>'api' LIKE 'feishu%';

-- Every record the simulated Feishu API serves.
CREATE TABLE sim.feishu_truth AS
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
SELECT count(*) > 4000 AS plenty, count(DISTINCT work_item_id) AS work_items,
       min(operation_time) >= '2024-07-02 00:00:00+08' AS all_served
FROM sim.feishu_truth;

--
-- Compare a result table with the truth under a condition: the rows
-- missing from the result, those it has that the API does not hold, and
-- rows it has more often than the API holds them.
--
CREATE FUNCTION sim.compare(result regclass, condition text,
                            OUT expected bigint, OUT got bigint,
                            OUT missing bigint, OUT extra bigint)
LANGUAGE plpgsql AS $$
DECLARE
    cols text := 'project_key, work_item_id, work_item_type_key, operation_time, operator, '
                 'operator_type, operation_type, op_record_module, source_type, source, '
                 'record_contents::text';
BEGIN
    EXECUTE format('SELECT count(*) FROM sim.feishu_truth WHERE %s', condition) INTO expected;
    EXECUTE format('SELECT count(*) FROM %s', result) INTO got;
    EXECUTE format('SELECT count(*) FROM (SELECT %s FROM sim.feishu_truth WHERE %s EXCEPT ALL SELECT %s FROM %s) d',
                   cols, condition, cols, result) INTO missing;
    EXECUTE format('SELECT count(*) FROM (SELECT %s FROM %s EXCEPT ALL SELECT %s FROM sim.feishu_truth WHERE %s) d',
                   cols, result, cols, condition) INTO extra;
END $$;

--
-- The Feishu objects most tests use.
--
CREATE SERVER feishu FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url :'sim_url', project_key 'proj_alpha');
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
