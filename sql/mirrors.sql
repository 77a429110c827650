--
-- Mirrors: exact local copies of a foreign table's history in an ordinary
-- table, kept current by replacing their recent tail in one transaction.
-- Records later than an hour past now are never copied (the engine reads
-- none), so the truth is compared up to then.
--
SET timezone = 'UTC';
\getenv sim_url OPREC_SIM_URL

CREATE FUNCTION pg_temp.equal_to_truth(mirror regclass, condition text,
                                       truth regclass DEFAULT 'sim.feishu_truth_now')
RETURNS TABLE (equal boolean, missing bigint, extra bigint) LANGUAGE sql AS $$
    SELECT c.got = c.expected AND c.missing = 0 AND c.extra = 0, c.missing, c.extra
    FROM sim.compare(mirror, condition, truth) c
$$;
CREATE FUNCTION pg_temp.ms(t timestamptz) RETURNS bigint LANGUAGE sql
    RETURN (extract(epoch FROM t) * 1000)::bigint;

-- the first fill of a space: every item, terminated ones included (the
-- filter lists them only when asked by their state), in one transaction
SELECT sim.reset();
SELECT oprec_fdw_create_mirror('feishu_op_records', 'alpha_records', refresh_every => '1 day');
SELECT * FROM pg_temp.equal_to_truth('alpha_records',
    $$project_key = 'proj_alpha' AND operation_time < now() + interval '1 hour'$$);
SELECT count(DISTINCT work_item_id) FILTER (WHERE work_item_id IN (1017, 1064)) AS terminated_items
FROM alpha_records;
SELECT count(*) FILTER (WHERE filters ? 'work_item_status') AS terminated_listings,
       count(*) FILTER (WHERE filters ? 'work_item_type_keys') AS listings
FROM sim.feishu_requests r JOIN sim.requests() q ON (q->>'seq')::int = r.seq
WHERE q->>'path' LIKE '%/work_item/filter';
SELECT mirror, source, owner, rows = (SELECT count(*) FROM alpha_records) AS rows_counted,
       refreshing, last_outcome, last_error, last_requests > 0 AS requested,
       next_due - last_start AS due_after, tail, full_every,
       since = '2024-07-02 00:00:00+08' AS since_history_start
FROM oprec_fdw_mirrors;

-- a refresh when nothing changed re-reads the tail only: from an hour
-- before the newest record copied (or before now, if that is earlier)
SELECT sim.reset();
CREATE TEMP TABLE tail_start AS
SELECT least(max(operation_time), now()) - interval '1 hour' AS expected FROM alpha_records;
SELECT outcome, requests < 10 AS few_requests,
       abs(extract(epoch FROM reread_since - (SELECT expected FROM tail_start))) < 60 AS from_the_tail
FROM oprec_fdw_refresh_mirror('alpha_records');
DROP TABLE tail_start;
SELECT * FROM pg_temp.equal_to_truth('alpha_records',
    $$project_key = 'proj_alpha' AND operation_time < now() + interval '1 hour'$$);

-- what BI tools send, on the mirror: no request
SELECT sim.reset();
SELECT count(*) > 4000 AS plenty FROM alpha_records;
SELECT DISTINCT operator_type FROM alpha_records ORDER BY 1 LIMIT 1000;
SELECT count(*) > 4000 AS whole_table_read FROM (SELECT * FROM alpha_records) AS whole_table;
SELECT count(*) AS requests FROM sim.requests();

-- records arrive: a new one, and a late one whose time the mirror already
-- holds (within the tail): the next refresh copies both, none twice, in a
-- handful of requests
SELECT sim.reset();
SELECT sim.configure(jsonb_build_object('add_records', jsonb_build_object('feishu', jsonb_build_array(
    jsonb_build_object('work_item_id', 1001, 'operation_time', pg_temp.ms(now() - interval '1 minute')),
    jsonb_build_object('work_item_id', 1002, 'operation_time', pg_temp.ms(now() - interval '30 minutes'))))));
SELECT outcome, rows_read > 0 AS read_some, requests <= 10 AS handful
FROM oprec_fdw_refresh_mirror('alpha_records');
SELECT * FROM pg_temp.equal_to_truth('alpha_records',
    $$project_key = 'proj_alpha' AND operation_time < now() + interval '1 hour'$$);
-- (the rows the view shows follow the rows replaced and read, uncounted)
SELECT rows = (SELECT count(*) FROM alpha_records) AS rows_followed
FROM oprec_fdw_mirrors WHERE mirror = 'alpha_records'::regclass;

-- a record later than the tail (two days late) waits for a deeper re-read:
-- the next full refresh (full_every), or one asked for
SELECT sim.configure(jsonb_build_object('add_records', jsonb_build_object('feishu', jsonb_build_array(
    jsonb_build_object('work_item_id', 1003, 'operation_time', pg_temp.ms(now() - interval '2 days'))))));
SELECT outcome FROM oprec_fdw_refresh_mirror('alpha_records');
SELECT * FROM pg_temp.equal_to_truth('alpha_records',
    $$project_key = 'proj_alpha' AND operation_time < now() + interval '1 hour'$$);
SELECT outcome, reread_since = date_trunc('day', now() - interval '3 days') AS from_then
FROM oprec_fdw_refresh_mirror('alpha_records', reread_from => date_trunc('day', now() - interval '3 days'));
SELECT * FROM pg_temp.equal_to_truth('alpha_records',
    $$project_key = 'proj_alpha' AND operation_time < now() + interval '1 hour'$$);

-- a re-read asked for from a time: everything since then is replaced (the
-- records added above are gone from the API since its reset: from the
-- mirror too)
SELECT sim.reset();
SELECT outcome, rows_read = (SELECT count(*) FROM sim.feishu_truth_now
                             WHERE project_key = 'proj_alpha' AND operation_time >= '2026-01-01'
                               AND operation_time < now() + interval '1 hour') AS rows_replaced,
       reread_since
FROM oprec_fdw_refresh_mirror('alpha_records', reread_from => '2026-01-01');
SELECT * FROM pg_temp.equal_to_truth('alpha_records',
    $$project_key = 'proj_alpha' AND operation_time < now() + interval '1 hour'$$);

-- a refresh the API fails leaves the mirror as it was, and says so
SELECT sim.reset();
SELECT sim.configure('{"faults": [{"path": "work_item/filter", "kind": "error", "status": 400,
    "body": {"err_code": 20006, "err_msg": "invalid param"}}]}');
SELECT outcome, error FROM oprec_fdw_refresh_mirror('alpha_records', reread_from => '2025-01-01');
SELECT * FROM pg_temp.equal_to_truth('alpha_records',
    $$project_key = 'proj_alpha' AND operation_time < now() + interval '1 hour'$$);
SELECT last_outcome, last_error, last_requests FROM oprec_fdw_mirrors;
SELECT sim.reset();
SELECT outcome FROM oprec_fdw_refresh_mirror('alpha_records', reread_from => '2025-01-01');
SELECT last_outcome, last_error FROM oprec_fdw_mirrors;

-- a cancelled refresh (statement_timeout) leaves it too
SELECT sim.configure('{"delay_ms": 3000}');
SET statement_timeout = '1s';
SELECT outcome FROM oprec_fdw_refresh_mirror('alpha_records', reread_from => '2025-01-01');
RESET statement_timeout;
SELECT sim.reset();
SELECT * FROM pg_temp.equal_to_truth('alpha_records',
    $$project_key = 'proj_alpha' AND operation_time < now() + interval '1 hour'$$);

-- two refreshes of one mirror never run at once: another session's waits
-- for nothing, it says the mirror is being refreshed
CREATE EXTENSION IF NOT EXISTS dblink;
SELECT dblink_connect('other', sim.connstr());
BEGIN;
LOCK TABLE alpha_records IN SHARE ROW EXCLUSIVE MODE;
SELECT * FROM dblink('other', $$SELECT outcome FROM oprec_fdw_refresh_mirror('alpha_records')$$)
    AS t(outcome text);
COMMIT;
SELECT dblink_disconnect('other');

-- people: the operators of the records mirror, replaced whole each time
SELECT sim.reset();
CREATE FOREIGN TABLE people_source (user_key text, username text, status text)
    SERVER feishu OPTIONS (resource 'users');
SELECT oprec_fdw_create_mirror('people_source', 'alpha_people', refresh_every => '1 day',
                               keys_from => 'alpha_records', keys_column => 'operator');
SELECT user_key, username, status FROM alpha_people ORDER BY user_key;
SELECT r->'body'->'user_keys' AS user_keys
FROM sim.requests() r WHERE r->>'path' = '/open_api/user/query';
SELECT outcome, rows_read FROM oprec_fdw_refresh_mirror('alpha_people');

-- a Huawei project: deleted issues are listed too (include_deleted), and
-- their history is copied
CREATE FOREIGN TABLE huawei_second (
    project_id text, issue_id bigint, journal_id bigint, created_on timestamptz, notes text,
    user_id bigint, user_name text, user_nick_name text, user_first_name text,
    user_identifier text, detail_id bigint, property text, field_name text, operation text,
    old_value text, new_value text
) SERVER huawei OPTIONS (project_id '0a1b2c3d4e5f60718293a4b5c6d7e8f9');
SELECT sim.reset();
SELECT oprec_fdw_create_mirror('huawei_second', 'second_history', refresh_every => '1 day');
SELECT * FROM pg_temp.equal_to_truth('second_history',
    $$project_id = '0a1b2c3d4e5f60718293a4b5c6d7e8f9'$$, 'sim.huawei_truth_now');
SELECT count(*) > 0 AS deleted_issue_copied FROM second_history WHERE issue_id = 204;
SELECT r->'body'->'include_deleted' AS include_deleted
FROM sim.requests() r WHERE r->>'path' LIKE '/v4/projects/%/issues' LIMIT 1;

-- the largest space (450 work items, more than a listing page): its first
-- fill, while three items are edited in the middle of the listing, holds
-- every record once
CREATE SERVER mirror_wide FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url :'sim_url', project_key 'proj_wide',
             requests_per_second '0', max_concurrency '8');
CREATE USER MAPPING FOR CURRENT_USER SERVER mirror_wide
    OPTIONS (plugin_token 'p-static-sim-token', user_key '7491126018028090001');
CREATE FOREIGN TABLE wide_source (project_key text, work_item_id bigint,
    work_item_type_key text, operation_time timestamptz, operator text, operator_type text,
    operation_type text, op_record_module text, source_type text, source text,
    record_contents jsonb) SERVER mirror_wide;
SELECT sim.reset();
SELECT sim.configure(jsonb_build_object('edit_during_listing', jsonb_build_object(
    'feishu_after', 1, 'feishu_items', (SELECT jsonb_agg(id) FROM (SELECT id FROM sim.feishu_items
        WHERE project_key = 'proj_wide' ORDER BY updated_at, id LIMIT 3) oldest))));
SELECT oprec_fdw_create_mirror('wide_source', 'wide_records', refresh_every => '1 day');
SELECT * FROM pg_temp.equal_to_truth('wide_records', $$project_key = 'proj_wide'$$);
SELECT count(*) FILTER (WHERE r ? 'edited') AS edits FROM sim.requests() r;
SELECT oprec_fdw_drop_mirror('wide_records');
DROP FOREIGN TABLE wide_source;
DROP SERVER mirror_wide CASCADE;

-- how a mirror is kept can be changed: NULL keeps a setting; a new
-- refresh_every counts from the last refresh's start
SELECT oprec_fdw_alter_mirror('alpha_records', refresh_every => '2 hours', tail => '30 minutes');
SELECT refresh_every, tail, full_every, next_due = last_start + interval '2 hours' AS due_from_last
FROM oprec_fdw_mirrors WHERE mirror = 'alpha_records'::regclass;
SELECT oprec_fdw_alter_mirror('alpha_records', full_every => '7 days');
SELECT refresh_every, tail, full_every FROM oprec_fdw_mirrors WHERE mirror = 'alpha_records'::regclass;
SELECT oprec_fdw_alter_mirror('alpha_records', no_full_refresh => true);
SELECT full_every IS NULL AS no_full_refresh FROM oprec_fdw_mirrors WHERE mirror = 'alpha_records'::regclass;
SELECT oprec_fdw_alter_mirror('alpha_records', refresh_every => '0');
SELECT oprec_fdw_alter_mirror('alpha_records', tail => '-1 hour');
SELECT oprec_fdw_alter_mirror('alpha_records', full_every => '1 day', no_full_refresh => true);
SELECT oprec_fdw_alter_mirror('sim.feishu_truth', refresh_every => '1 hour');
SELECT oprec_fdw_alter_mirror(NULL);
-- the refresh after it keeps it as altered
SELECT outcome FROM oprec_fdw_refresh_mirror('alpha_records');
SELECT refresh_every, tail, full_every FROM oprec_fdw_mirrors WHERE mirror = 'alpha_records'::regclass;

-- what cannot be a mirror, and who may refresh one
SELECT oprec_fdw_create_mirror('sim.feishu_truth', 'nope');
SELECT oprec_fdw_create_mirror('people_source', 'nope');
SELECT oprec_fdw_refresh_mirror('sim.feishu_truth');
CREATE ROLE mirror_stranger;
SET ROLE mirror_stranger;
SELECT count(*) AS mirrors_seen FROM oprec_fdw_mirrors;
SELECT count(*) FROM oprec_fdw_mirror;
SELECT oprec_fdw_refresh_mirror('alpha_records');
SELECT oprec_fdw_alter_mirror('alpha_records', refresh_every => '1 minute');
SELECT oprec_fdw_create_mirror('feishu_op_records', 'stranger_records');
RESET ROLE;
DROP ROLE mirror_stranger;

-- a plain DROP TABLE forgets a mirror; oprec_fdw_drop_mirror drops and forgets
DROP TABLE alpha_people;
SELECT mirror FROM oprec_fdw_mirrors ORDER BY 1;
SELECT oprec_fdw_drop_mirror('second_history');
SELECT oprec_fdw_drop_mirror('alpha_records');
SELECT count(*) AS mirrors FROM oprec_fdw_mirror;
DROP FOREIGN TABLE huawei_second, people_source;
