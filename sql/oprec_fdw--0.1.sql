/* oprec_fdw install script: the handler, the validator and the wrapper */

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
