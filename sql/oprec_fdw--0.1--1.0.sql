/* oprec_fdw upgrade from 0.1 to 1.0: mirrors can be altered */

\echo Use "ALTER EXTENSION oprec_fdw UPDATE TO '1.0'" to load this file. \quit

CREATE FUNCTION oprec_fdw_alter_mirror(mirror regclass,
    refresh_every interval DEFAULT NULL,
    tail interval DEFAULT NULL,
    full_every interval DEFAULT NULL,
    no_full_refresh boolean DEFAULT false)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C;

COMMENT ON FUNCTION oprec_fdw_alter_mirror(regclass, interval, interval, interval, boolean) IS
  'change how a mirror is kept current: refresh_every, tail, full_every (NULL keeps a setting), or no full re-reads';
