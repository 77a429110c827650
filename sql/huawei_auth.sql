--
-- Huawei authentication: exactly one complete set of credentials per user
-- mapping; a given token, an IAM token from a password (cached, renewed
-- once when refused), or AK/SK signatures.  Wrong credentials give clear
-- errors with no secret in them, and auth failures are never retried
-- blindly (five bad signatures lock a key pair).
--
\getenv sim_url OPREC_SIM_URL

-- the validator: server options, and one complete credential set
CREATE SERVER hw_opt FOREIGN DATA WRAPPER oprec_fdw OPTIONS (api 'huawei', page_size '1001');
CREATE SERVER hw_opt FOREIGN DATA WRAPPER oprec_fdw OPTIONS (api 'huawei', iam_url 'iam.example.com');
CREATE SERVER hw_opt FOREIGN DATA WRAPPER oprec_fdw OPTIONS (api 'huawei', project_key 'x');
CREATE SERVER hw_opt FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'huawei', project_id 'c15cc54e338d4506afd9bd8103071ff0', project_type 'scrum',
             region 'cn-north-4', page_size '100');
CREATE USER MAPPING FOR CURRENT_USER SERVER hw_opt OPTIONS (user_name 'u', password 'p');
CREATE USER MAPPING FOR CURRENT_USER SERVER hw_opt OPTIONS (access_key 'ak');
CREATE USER MAPPING FOR CURRENT_USER SERVER hw_opt OPTIONS (security_token 't');
CREATE USER MAPPING FOR CURRENT_USER SERVER hw_opt
    OPTIONS (auth_token 't', access_key 'ak', secret_key 'sk');
CREATE USER MAPPING FOR CURRENT_USER SERVER hw_opt OPTIONS (auth_token 't', plugin_token 'p');
-- a validator cannot see the server: options of another API's mapping or
-- table are refused when the table is used
CREATE USER MAPPING FOR CURRENT_USER SERVER hw_opt OPTIONS (plugin_token 'p', user_key 'u');
CREATE FOREIGN TABLE hw_opt_t (issue_id bigint) SERVER hw_opt;
SELECT * FROM hw_opt_t WHERE issue_id = 1;
ALTER USER MAPPING FOR CURRENT_USER SERVER hw_opt
    OPTIONS (DROP plugin_token, DROP user_key, ADD auth_token 't');
ALTER FOREIGN TABLE hw_opt_t OPTIONS (ADD project_key 'x');
SELECT * FROM hw_opt_t WHERE issue_id = 1;
DROP FOREIGN TABLE hw_opt_t;
CREATE FOREIGN TABLE hw_opt_t (issue_id bigint, created_on timestamptz) SERVER hw_opt;
-- neither issue ids nor a lower bound on created_on: refused before any request
SELECT * FROM hw_opt_t WHERE created_on < now() - interval '1 day';
DROP FOREIGN TABLE hw_opt_t;
DROP USER MAPPING FOR CURRENT_USER SERVER hw_opt;
DROP SERVER hw_opt;

-- a table to read one issue through the server of huawei_records
CREATE FOREIGN TABLE hw_auth (issue_id bigint, journal_id bigint, field_name text) SERVER huawei;

-- password: an IAM token, cached across queries and shared by the
-- cluster's backends (the test of huawei_records got it: none is asked for)
SELECT sim.reset();
SELECT count(*) FROM hw_auth WHERE issue_id = 9175005;
SELECT count(*) FROM hw_auth WHERE issue_id = 101;
SELECT seq, api, status, token FROM sim.huawei_requests ORDER BY seq;

-- a refused token is renewed once and the page asked again
SELECT sim.reset();
SELECT sim.expire_tokens();
SELECT count(*) FROM hw_auth WHERE issue_id = 9175005;
SELECT seq, api, status, err_code, token FROM sim.huawei_requests ORDER BY seq;
SELECT r->'body'->'auth'->'identity'->'password'->'user'->>'password' AS password_logged,
       r->'body'->'auth'->'scope'->'project'->>'name' AS scope
FROM sim.requests() r WHERE r->>'api' = 'huawei_iam';

-- wrong password, wrong region: clear errors without the password
CREATE SERVER hw_bad FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'huawei', base_url :'sim_url', iam_url :'sim_url',
             project_id 'c15cc54e338d4506afd9bd8103071ff0');
CREATE USER MAPPING FOR CURRENT_USER SERVER hw_bad
    OPTIONS (user_name 'sim_user', password 'wrong-password-xyzzy', domain_name 'sim_domain');
CREATE FOREIGN TABLE hw_bad_t (issue_id bigint, field_name text) SERVER hw_bad;
SELECT sim.reset();
SELECT * FROM sim.error_of('SELECT * FROM hw_bad_t WHERE issue_id = 101');
ALTER USER MAPPING FOR CURRENT_USER SERVER hw_bad OPTIONS (SET password 'sim-password');
ALTER SERVER hw_bad OPTIONS (ADD region 'ap-southeast-3');
SELECT * FROM sim.error_of('SELECT * FROM hw_bad_t WHERE issue_id = 101');
ALTER SERVER hw_bad OPTIONS (DROP region);

-- a given token is sent as is, and never renewed
ALTER USER MAPPING FOR CURRENT_USER SERVER hw_bad
    OPTIONS (DROP user_name, DROP password, DROP domain_name, ADD auth_token 'MIIrevoked-token-xyzzy');
SELECT sim.reset();
SELECT * FROM sim.error_of('SELECT * FROM hw_bad_t WHERE issue_id = 101');
ALTER USER MAPPING FOR CURRENT_USER SERVER hw_bad OPTIONS (SET auth_token 'MIIsim-static-huawei-token');
SELECT count(*) FROM hw_bad_t WHERE issue_id = 101;
SELECT api, status, token FROM sim.huawei_requests ORDER BY seq;

-- AK/SK: every request signed
ALTER USER MAPPING FOR CURRENT_USER SERVER hw_bad
    OPTIONS (DROP auth_token, ADD access_key 'SIMAK0000000000000001', ADD secret_key 'sim-secret-key-0001');
SELECT sim.reset();
SELECT count(*) FROM hw_bad_t WHERE issue_id IN (100, 101, 102);
SELECT api, status, token, issue_id FROM sim.huawei_requests ORDER BY issue_id;

-- temporary AK/SK need their security token
ALTER USER MAPPING FOR CURRENT_USER SERVER hw_bad
    OPTIONS (SET access_key 'SIMTMPAK00000000000001', SET secret_key 'sim-temp-secret-0001');
SELECT * FROM sim.error_of('SELECT * FROM hw_bad_t WHERE issue_id = 101');
ALTER USER MAPPING FOR CURRENT_USER SERVER hw_bad OPTIONS (ADD security_token 'sim-security-token');
SELECT count(*) FROM hw_bad_t WHERE issue_id = 101;

-- a wrong secret key: one request per query, never retried; after five
-- failures the key pair is locked, which is why nothing retries blindly
ALTER USER MAPPING FOR CURRENT_USER SERVER hw_bad
    OPTIONS (DROP security_token, SET access_key 'SIMAK0000000000000001', SET secret_key 'wrong-secret-xyzzy');
SELECT sim.reset();
SELECT * FROM sim.error_of('SELECT * FROM hw_bad_t WHERE issue_id IN (101, 102, 103)');
SELECT count(*) AS requests FROM sim.huawei_requests;
DO $$
BEGIN
    FOR i IN 1..4 LOOP
        PERFORM * FROM sim.error_of('SELECT * FROM hw_bad_t WHERE issue_id = 101');
    END LOOP;
END $$;
ALTER USER MAPPING FOR CURRENT_USER SERVER hw_bad OPTIONS (SET secret_key 'sim-secret-key-0001');
SELECT * FROM sim.error_of('SELECT * FROM hw_bad_t WHERE issue_id = 101') WHERE field IN ('sqlstate', 'message');
SELECT count(*) AS requests, count(*) FILTER (WHERE status = 401) AS refused FROM sim.huawei_requests;

-- no secret, password or token in any of these errors
SELECT count(*) FILTER (WHERE value LIKE '%xyzzy%' OR value LIKE '%sim-secret%'
                           OR value LIKE '%sim-password%' OR value LIKE '%MIIsim%') AS errors_showing_a_secret
FROM sim.error_of('SELECT * FROM hw_bad_t WHERE issue_id = 101');

SELECT sim.reset();
DROP FOREIGN TABLE hw_bad_t, hw_auth;
DROP USER MAPPING FOR CURRENT_USER SERVER hw_bad;
DROP SERVER hw_bad;
