--
-- Errors: what is missing from a query fails before any request; API and
-- transport failures say what happened, what was sent and what to do,
-- and never show a secret or a token.  Tokens are renewed once when the
-- API says they expired.
--
SET timezone = 'UTC';
\getenv sim_url OPREC_SIM_URL

-- no condition on work_item_id: an error when rows are asked for, no
-- request; what to do is in the message and DETAIL (psqlODBC drops HINTs).
-- EXPLAIN and LIMIT 0, which tools send to learn the columns, work.
SELECT sim.reset();
EXPLAIN (COSTS OFF) SELECT * FROM feishu_op_records;
SELECT * FROM feishu_op_records LIMIT 0;
SELECT * FROM feishu_op_records;
SELECT * FROM feishu_op_records WHERE work_item_id > 1000;  -- one bound is no list of ids
SELECT * FROM feishu_op_records WHERE work_item_id = 1001 OR operator = 'x';
SELECT * FROM feishu_op_records WHERE work_item_id = (random() * 10)::bigint;
SELECT count(*) AS requests FROM sim.feishu_requests;

-- no project_key anywhere
CREATE SERVER feishu_noproject FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url :'sim_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER feishu_noproject
    OPTIONS (plugin_token 'p-static-sim-token', user_key '7491126018028090001');
CREATE FOREIGN TABLE feishu_noproject_records (work_item_id bigint, project_key text)
    SERVER feishu_noproject;
SELECT * FROM feishu_noproject_records WHERE work_item_id = 1001;
SELECT count(*) FROM feishu_noproject_records WHERE work_item_id = 2001 AND project_key = 'proj_beta';

-- an API error names the API, the code, the message, the HTTP status and
-- the log id, shows the request, and hints at a fix.  (An unknown work
-- item is no error: sql/id_conditions.sql shows it has no rows.)
SELECT sim.reset();
SELECT * FROM sim.error_of($$SELECT * FROM feishu_op_records WHERE work_item_id = 1001 AND operator_type = 'robot'$$);

-- a failure on the API's side, and answers that are not what was expected
-- (retries are off here: sql/retries.sql shows them)
ALTER SERVER feishu OPTIONS (ADD max_retries '0');
SELECT sim.reset();
SELECT sim.configure('{"fail_next": {"path": "/op_record/", "status": 500,
    "body": {"err": {"code": 50006, "msg": "internal error"}, "err_code": 50006, "err_msg": "internal error", "data": null}}}');
SELECT * FROM sim.error_of('SELECT * FROM feishu_op_records WHERE work_item_id = 1001');
SELECT sim.configure('{"fail_next": {"path": "/op_record/", "status": 502, "raw": "<html>Bad Gateway</html>",
    "headers": {"Content-Type": "text/html"}}}');
SELECT * FROM sim.error_of('SELECT * FROM feishu_op_records WHERE work_item_id = 1001');
SELECT sim.configure('{"fail_next": {"path": "/op_record/", "status": 200, "raw": "{\"data\": {\"has_more\": fals"}}');
SELECT * FROM sim.error_of('SELECT * FROM feishu_op_records WHERE work_item_id = 1001');
SELECT sim.configure('{"fail_next": {"path": "/op_record/", "status": 200, "body": {"err_code": 0, "data": {"has_more": "no", "op_records": []}}}}');
SELECT * FROM sim.error_of('SELECT * FROM feishu_op_records WHERE work_item_id = 1001');

-- the quota: with pacing off, a burst over the API's rate is refused ...
SELECT sim.reset();
SELECT sim.configure('{"feishu_qps": 3}');
ALTER SERVER feishu OPTIONS (ADD requests_per_second '0', ADD time_windows 'always');  -- 8 windows
SELECT * FROM sim.error_of($$SELECT * FROM feishu_op_records WHERE work_item_id = 1200
    AND operation_time >= '2025-03-01' AND operation_time < '2025-04-26'$$);
-- ... and with pacing at the API's rate every request passes, 8 at a time
SELECT sim.reset();
SELECT sim.configure('{"feishu_qps": 3}');
ALTER SERVER feishu OPTIONS (SET requests_per_second '3', SET max_concurrency '8');
SELECT count(*) FROM feishu_op_records WHERE work_item_id = 1200
    AND operation_time >= '2025-03-01' AND operation_time < '2025-04-26';
SELECT count(*) AS requests, count(*) FILTER (WHERE status = 200) AS passed
FROM sim.feishu_requests WHERE api = 'feishu';
ALTER SERVER feishu OPTIONS (DROP requests_per_second, DROP max_retries, DROP time_windows,
                             SET max_concurrency '1');

-- an expired token is renewed once and the page asked again
SELECT sim.reset();
SELECT count(*) FROM feishu_op_records WHERE work_item_id = 1002;
SELECT sim.expire_tokens();
SELECT count(*) FROM feishu_op_records WHERE work_item_id = 1002;
SELECT seq, api, status, err_code, token FROM sim.feishu_requests ORDER BY seq;

-- a token is renewed 3 minutes before it lapses, or half-way through its
-- life if that is sooner: a token of 2 minutes serves both scans
SELECT sim.reset();
SELECT sim.configure('{"feishu_token_ttl": 120}');
SELECT sim.expire_tokens();
SELECT count(*) FROM feishu_op_records WHERE work_item_id = 1002;
SELECT count(*) FROM feishu_op_records WHERE work_item_id = 1002;
SELECT seq, api, status, err_code, token FROM sim.feishu_requests ORDER BY seq;

-- a token that keeps being refused is an error after one renewal
SELECT sim.reset();
SELECT sim.configure('{"fail_next": {"path": "/op_record/", "count": 2, "status": 401,
    "body": {"err": {"code": 10022, "msg": "token check failed"}, "err_code": 10022, "err_msg": "token check failed", "data": null}}}');
SELECT * FROM sim.error_of('SELECT * FROM feishu_op_records WHERE work_item_id = 1002');
SELECT seq, api, status, err_code FROM sim.feishu_requests ORDER BY seq;

-- wrong credentials: clear errors, and no secret in them
CREATE SERVER feishu_badauth FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url :'sim_url', project_key 'proj_alpha');
CREATE USER MAPPING FOR CURRENT_USER SERVER feishu_badauth
    OPTIONS (plugin_id 'MII_SIM_PLUGIN', plugin_secret 'wrong-secret-xyzzy', user_key '7491126018028090001');
CREATE FOREIGN TABLE feishu_badauth_records (work_item_id bigint, operator text) SERVER feishu_badauth;
SELECT sim.reset();
SELECT * FROM sim.error_of('SELECT * FROM feishu_badauth_records WHERE work_item_id = 1001');
SELECT api, status, body FROM sim.requests() AS r, LATERAL (SELECT r->>'api' AS api,
    (r->>'status')::int AS status, r->'body' AS body) s;
ALTER USER MAPPING FOR CURRENT_USER SERVER feishu_badauth
    OPTIONS (DROP plugin_id, DROP plugin_secret, ADD plugin_token 'p-revoked-token-xyzzy');
SELECT * FROM sim.error_of('SELECT * FROM feishu_badauth_records WHERE work_item_id = 1001');
SELECT count(*) FILTER (WHERE value LIKE '%xyzzy%') AS errors_showing_a_secret
FROM (SELECT * FROM sim.error_of('SELECT * FROM feishu_badauth_records WHERE work_item_id = 1001')
      UNION ALL
      SELECT * FROM sim.error_of('SELECT * FROM feishu_op_records WHERE work_item_id = 424242')) e;
-- the static token of a user mapping is used as is
ALTER USER MAPPING FOR CURRENT_USER SERVER feishu_badauth
    OPTIONS (SET plugin_token 'p-static-sim-token');
SELECT sim.reset();
SELECT count(*) FROM feishu_badauth_records WHERE work_item_id = 1001;
SELECT api, token FROM sim.feishu_requests;

-- transport failures say what failed
ALTER SERVER feishu_badauth OPTIONS (SET base_url 'http://127.0.0.1:1');
SELECT * FROM sim.error_of('SELECT * FROM feishu_badauth_records WHERE work_item_id = 1001');
ALTER SERVER feishu_badauth OPTIONS (SET base_url 'http://no-such-host.invalid');
SELECT * FROM sim.error_of('SELECT * FROM feishu_badauth_records WHERE work_item_id = 1001');
-- https to a server that speaks plain http: the TLS handshake fails
SELECT replace(:'sim_url', 'http://', 'https://') AS tls_url \gset
ALTER SERVER feishu_badauth OPTIONS (SET base_url :'tls_url');
SELECT * FROM sim.error_of('SELECT * FROM feishu_badauth_records WHERE work_item_id = 1001')
WHERE field <> 'detail';
ALTER SERVER feishu_badauth OPTIONS (SET base_url :'sim_url', ADD request_timeout '1', ADD max_retries '0');
SELECT sim.reset();
SELECT sim.configure('{"delay_ms": 2500}');
SELECT * FROM sim.error_of('SELECT * FROM feishu_badauth_records WHERE work_item_id = 1001');

-- statement_timeout (like a cancel) stops a query waiting on the API
SELECT sim.configure('{"delay_ms": 5000}');
ALTER SERVER feishu_badauth OPTIONS (SET request_timeout '60', DROP max_retries);
SET statement_timeout = '300ms';
SELECT * FROM feishu_badauth_records WHERE work_item_id = 1001;
RESET statement_timeout;
SELECT sim.reset();
-- ... and the backend is fine afterwards
SELECT count(*) FROM feishu_badauth_records WHERE work_item_id = 1001;

DROP FOREIGN TABLE feishu_badauth_records, feishu_noproject_records;
DROP USER MAPPING FOR CURRENT_USER SERVER feishu_badauth;
DROP USER MAPPING FOR CURRENT_USER SERVER feishu_noproject;
DROP SERVER feishu_badauth, feishu_noproject;
