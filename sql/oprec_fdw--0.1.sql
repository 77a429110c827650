/* oprec_fdw install script: the handler, the validator, the wrapper, a
 * view of the request pace, and mirrors.  Later versions are installed as
 * this one followed by the update scripts (oprec_fdw--0.1--1.0.sql, ...). */

\echo Use "CREATE EXTENSION oprec_fdw" to load this file. \quit

CREATE FUNCTION oprec_fdw_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FUNCTION oprec_fdw_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER oprec_fdw
  HANDLER oprec_fdw_handler
  VALIDATOR oprec_fdw_validator;

COMMENT ON FOREIGN DATA WRAPPER oprec_fdw IS
  'operation histories of Feishu Project and Huawei CodeArts Req work items as tables';

CREATE FUNCTION oprec_fdw_pace(foreign_table regclass,
    OUT shared boolean,
    OUT requests_per_second integer,
    OUT current_rate integer,
    OUT in_flight integer,
    OUT completed_last_second integer)
RETURNS record
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

COMMENT ON FUNCTION oprec_fdw_pace(regclass) IS
  'the request pace of the credential the current user''s queries of a foreign table count against';

/*
 * Mirrors: ordinary tables holding a foreign table's history, kept current
 * by oprec_fdw_refresh_mirror() and, when the library is preloaded with
 * oprec_fdw.mirror_databases naming the database, by a background worker.
 * The registry is read and written by the mirror functions only (as the
 * extension's owner), and dumped with the database (its tables named, not
 * numbered); every refresh reads the API as the mirror's owner.
 */
CREATE TABLE oprec_fdw_mirror (
    mirror          regclass PRIMARY KEY,   -- the mirror table
    source          regclass NOT NULL,      -- the foreign table it copies
    time_column     name,                   -- the source's time column, or NULL:
    keys_from       regclass,               -- ...the keys are the values of this
    keys_column     name,                   --    table's column (replaced whole)
    since           timestamptz NOT NULL,   -- nothing older is copied
    refresh_every   interval NOT NULL,
    tail            interval NOT NULL,      -- re-read before the newest time
    full_every      interval,               -- re-read everything since; NULL: never
    created         timestamptz NOT NULL,
    next_due        timestamptz NOT NULL,
    last_start      timestamptz,
    last_end        timestamptz,
    last_outcome    text,                   -- 'refreshed', 'full refresh', 'failed'
    last_error      text,
    last_requests   bigint,
    last_rows_read  bigint,                 -- rows the API returned for the re-read part
    last_full       timestamptz,
    rows            bigint,                 -- the mirror's rows after the last refresh
    newest          timestamptz             -- its newest time after it
);
REVOKE ALL ON oprec_fdw_mirror FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('oprec_fdw_mirror', '');

CREATE FUNCTION oprec_fdw_create_mirror(source regclass, mirror text,
    refresh_every interval DEFAULT '10 minutes',
    since timestamptz DEFAULT NULL,
    keys_from regclass DEFAULT NULL,
    keys_column name DEFAULT NULL,
    tail interval DEFAULT '1 hour',
    full_every interval DEFAULT '1 day')
RETURNS regclass
AS 'MODULE_PATHNAME'
LANGUAGE C;

COMMENT ON FUNCTION oprec_fdw_create_mirror(regclass, text, interval, timestamptz, regclass, name, interval, interval) IS
  'make a table with a foreign table''s columns, fill it with its history since a time, and keep it current';

CREATE FUNCTION oprec_fdw_refresh_mirror(mirror regclass,
    reread_from timestamptz DEFAULT NULL,
    OUT outcome text, OUT rows_read bigint, OUT requests bigint,
    OUT reread_since timestamptz, OUT error text)
RETURNS record
AS 'MODULE_PATHNAME'
LANGUAGE C;

COMMENT ON FUNCTION oprec_fdw_refresh_mirror(regclass, timestamptz) IS
  'bring a mirror up to date: re-read its tail (or everything since reread_from) and replace it in one transaction';

CREATE FUNCTION oprec_fdw_drop_mirror(mirror regclass)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

COMMENT ON FUNCTION oprec_fdw_drop_mirror(regclass) IS
  'drop a mirror table and forget it';

/*
 * A mirror dropped with DROP TABLE, or whose source is dropped, is
 * forgotten (its table, if left, is an ordinary table).
 */
CREATE FUNCTION oprec_fdw_forget_dropped_mirrors()
RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog AS $$
DECLARE
    registry regclass := to_regclass(format('%I.oprec_fdw_mirror',
        (SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
         WHERE e.extname = 'oprec_fdw')));
BEGIN
    IF registry IS NULL THEN
        RETURN;                 -- the extension itself is being dropped
    END IF;
    EXECUTE format('DELETE FROM %s WHERE mirror IN (SELECT objid FROM pg_event_trigger_dropped_objects()
                    WHERE classid = ''pg_class''::regclass)
                 OR source IN (SELECT objid FROM pg_event_trigger_dropped_objects()
                    WHERE classid = ''pg_class''::regclass)', registry);
END $$;

CREATE EVENT TRIGGER oprec_fdw_forget_dropped_mirrors ON sql_drop
    EXECUTE FUNCTION oprec_fdw_forget_dropped_mirrors();

CREATE VIEW oprec_fdw_mirrors AS
SELECT m.mirror,
       m.source,
       c.relowner::regrole AS owner,
       m.rows,
       m.newest,
       now() - m.newest AS lag,
       EXISTS (SELECT 1 FROM pg_locks l
               WHERE l.locktype = 'relation' AND l.relation = m.mirror
                 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                 AND l.mode = 'ShareRowExclusiveLock' AND l.granted) AS refreshing,
       m.last_start, m.last_end, m.last_outcome, m.last_error, m.last_requests,
       m.last_rows_read, m.last_full, m.next_due,
       m.refresh_every, m.tail, m.full_every, m.since
FROM oprec_fdw_mirror m
JOIN pg_class c ON c.oid = m.mirror
WHERE pg_catalog.has_table_privilege(m.mirror, 'SELECT');

-- every role sees the mirrors it may read (an error quotes requests)
GRANT SELECT ON oprec_fdw_mirrors TO PUBLIC;
