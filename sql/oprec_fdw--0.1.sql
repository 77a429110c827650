/* oprec_fdw install script: the handler, the validator, the wrapper, and
 * a view of the request pace */

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
