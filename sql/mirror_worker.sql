--
-- The background worker keeps mirrors current: with the library preloaded
-- and oprec_fdw.mirror_databases naming this database (as the test command
-- sets it, with oprec_fdw.mirror_naptime 1 s), a mirror is refreshed when
-- it is due, as its owner: that role's user mapping, that role's rights.
--
SET timezone = 'UTC';

SELECT current_setting('oprec_fdw.mirror_databases') = current_database() AS this_database;

-- Wait (60 s at most) until the worker has finished a refresh of the mirror
-- that started after a time; its outcome.
CREATE FUNCTION pg_temp.next_worker_refresh(mirror regclass, after timestamptz)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    outcome text;
BEGIN
    FOR i IN 1 .. 300 LOOP
        SELECT m.last_outcome INTO outcome FROM oprec_fdw_mirrors m
        WHERE m.mirror = next_worker_refresh.mirror
          AND m.last_start > after AND m.last_end >= m.last_start;
        IF FOUND THEN
            RETURN outcome;
        END IF;
        PERFORM pg_sleep(0.2);
    END LOOP;
    RETURN 'no refresh within 60 s';
END $$;

-- a role of its own, with its own user key
CREATE ROLE mirror_owner;
GRANT USAGE ON FOREIGN SERVER feishu TO mirror_owner;
GRANT SELECT ON feishu_op_records TO mirror_owner;
GRANT CREATE ON SCHEMA public TO mirror_owner;
CREATE USER MAPPING FOR mirror_owner SERVER feishu
    OPTIONS (plugin_id 'MII_SIM_PLUGIN', plugin_secret 'sim-plugin-secret',
             user_key '7491126018028090002');
SET ROLE mirror_owner;
SELECT oprec_fdw_create_mirror('feishu_op_records', 'owned_records', refresh_every => '1 second',
                               since => now() - interval '60 days');
RESET ROLE;

-- the worker refreshes it on schedule, and reads the API as its owner
SELECT sim.reset();
SELECT pg_temp.next_worker_refresh('owned_records', clock_timestamp());
SELECT owner, last_outcome, last_error FROM oprec_fdw_mirrors
WHERE mirror = 'owned_records'::regclass;
SELECT DISTINCT r->>'user_key' AS user_key FROM sim.requests() r WHERE r->>'api' = 'feishu';
SELECT count(*) AS workers FROM pg_stat_activity
WHERE backend_type = 'oprec_fdw mirror worker' AND datname = current_database();

-- its owner's user mapping gone, the refresh fails and says why; the
-- mirror stays as it was
CREATE TEMP TABLE before AS SELECT count(*) AS n FROM owned_records;
DROP USER MAPPING FOR mirror_owner SERVER feishu;
SELECT pg_temp.next_worker_refresh('owned_records', clock_timestamp());
SELECT last_error FROM oprec_fdw_mirrors WHERE mirror = 'owned_records'::regclass;
SELECT count(*) = (SELECT n FROM before) AS unchanged FROM owned_records;

SELECT oprec_fdw_drop_mirror('owned_records');
REVOKE ALL ON feishu_op_records FROM mirror_owner;
REVOKE ALL ON FOREIGN SERVER feishu FROM mirror_owner;
REVOKE CREATE ON SCHEMA public FROM mirror_owner;
DROP ROLE mirror_owner;
