--
-- A transfer never outlives the call that sent it.  An error raised while
-- a request is in flight (statement_timeout, a cancel) inside a cursor
-- opened before a savepoint used to leave the transfer on the backend's
-- curl multi handle; the next request then ran its callbacks against
-- memory that was gone.  Each block below is such a sequence: the request
-- after the rollback must run normally, and the backend must survive.
--
SET timezone = 'UTC';

-- every list request takes 1.5 s to answer: the abandoned request is
-- answered while the next one is in flight, when curl used to run the
-- abandoned transfer's callbacks
SELECT sim.reset();
SELECT sim.configure('{"faults": [{"path": "/op_record/", "kind": "slow", "delay_ms": 1500}]}');
BEGIN;
DECLARE c CURSOR FOR SELECT work_item_id, operation_time FROM feishu_op_records WHERE work_item_id = 1001;
SAVEPOINT s;
SET LOCAL statement_timeout = '500ms';
FETCH 1 FROM c;
ROLLBACK TO s;
SELECT count(*) AS rows FROM feishu_op_records WHERE work_item_id = 1002;
COMMIT;
SELECT pg_sleep(2);
SELECT count(*) = (SELECT count(*) FROM sim.feishu_truth WHERE work_item_id = 1002) AS all_rows
FROM feishu_op_records WHERE work_item_id = 1002;

-- the same inside PL/pgSQL: an EXCEPTION block is a subtransaction
SELECT sim.reset();
SELECT sim.configure('{"faults": [{"path": "/op_record/", "kind": "slow", "delay_ms": 1500}]}');
CREATE FUNCTION pg_temp.timed_out_then_again() RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    c CURSOR FOR SELECT work_item_id FROM feishu_op_records WHERE work_item_id = 1001;
    r record;
    n bigint;
BEGIN
    OPEN c;
    BEGIN
        PERFORM set_config('statement_timeout', '500ms', true);
        FETCH c INTO r;
    EXCEPTION WHEN query_canceled THEN
        RAISE NOTICE 'cancelled: %', SQLERRM;
    END;
    PERFORM set_config('statement_timeout', '0', true);
    SELECT count(*) INTO n FROM feishu_op_records WHERE work_item_id = 1002;
    RETURN n;
END $$;
SELECT pg_temp.timed_out_then_again() AS rows;
SELECT pg_sleep(2);

-- a token request in flight when the error comes: the same rule
SELECT sim.reset();
SELECT sim.expire_tokens();
SELECT sim.configure('{"faults": [{"path": "/authen/plugin_token", "kind": "slow", "delay_ms": 1500}]}');
BEGIN;
DECLARE c CURSOR FOR SELECT work_item_id FROM feishu_op_records WHERE work_item_id = 1001;
SAVEPOINT s;
SET LOCAL statement_timeout = '500ms';
FETCH 1 FROM c;
ROLLBACK TO s;
SELECT count(*) AS rows FROM feishu_op_records WHERE work_item_id = 1002;
COMMIT;
SELECT pg_sleep(2);

-- psql's ON_ERROR_ROLLBACK does the same with an implicit savepoint
SELECT sim.reset();
SELECT sim.configure('{"faults": [{"path": "/op_record/", "kind": "slow", "delay_ms": 1500}]}');
\set ON_ERROR_ROLLBACK on
BEGIN;
DECLARE c CURSOR FOR SELECT work_item_id FROM feishu_op_records WHERE work_item_id = 1001;
SET statement_timeout = '500ms';
FETCH 1 FROM c;
RESET statement_timeout;
SELECT count(*) AS rows FROM feishu_op_records WHERE work_item_id = 1002;
COMMIT;
\set ON_ERROR_ROLLBACK off
SELECT pg_sleep(2);

-- the abandoned request and the next one, both answered
SELECT api, status, fault, ids FROM sim.feishu_requests ORDER BY seq;
