--
-- What may go into a request, and where requests may go.
--
SET timezone = 'UTC';
\getenv sim_url OPREC_SIM_URL

-- a control character in any option is refused when it is set: in a header
-- it would add headers, or a whole second request
CREATE SERVER feishu_inject FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url :'sim_url', project_key 'proj_alpha');
CREATE USER MAPPING FOR CURRENT_USER SERVER feishu_inject
    OPTIONS (plugin_token E'p-static-sim-token\r\nX-Evil: 1', user_key '7491126018028090001');
CREATE USER MAPPING FOR CURRENT_USER SERVER feishu_inject
    OPTIONS (plugin_token 'p-static-sim-token', user_key E'1\r\n\r\nDELETE /internal/admin HTTP/1.1');
CREATE USER MAPPING FOR CURRENT_USER SERVER feishu_inject
    OPTIONS (plugin_token 'p-static-sim-token', user_key '7491126018028090001');
ALTER USER MAPPING FOR CURRENT_USER SERVER feishu_inject OPTIONS (SET user_key E'1\n2');
ALTER SERVER feishu_inject OPTIONS (SET project_key E'proj\talpha');
CREATE SERVER huawei_inject FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'huawei', base_url :'sim_url', project_id 'c15cc54e338d4506afd9bd8103071ff0');
CREATE USER MAPPING FOR CURRENT_USER SERVER huawei_inject OPTIONS (auth_token E'tok\r\nX-A: b');
CREATE USER MAPPING FOR CURRENT_USER SERVER huawei_inject
    OPTIONS (access_key E'SIMAK\n', secret_key 'sim-secret-key-0001');
CREATE USER MAPPING FOR CURRENT_USER SERVER huawei_inject
    OPTIONS (access_key 'SIMTMPAK00000000000001', secret_key 'sim-temp-secret-0001',
             security_token E'sim-security-token\r\nHost: elsewhere');

-- a token the API issues with a line break is refused on receipt
CREATE SERVER feishu_badtoken FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url :'sim_url', project_key 'proj_alpha');
-- (a user key of its own: a credential no backend holds a token for)
CREATE USER MAPPING FOR CURRENT_USER SERVER feishu_badtoken
    OPTIONS (plugin_id 'MII_SIM_PLUGIN', plugin_secret 'sim-plugin-secret', user_key '7491126018028090077');
CREATE FOREIGN TABLE badtoken_records (work_item_id bigint) SERVER feishu_badtoken;
SELECT sim.reset();
SELECT sim.configure($${"feishu_token_value": "p-evil\r\nX-Injected: yes\r\n\r\nDELETE /internal/admin/x HTTP/1.1\r\nHost: a"}$$);
SELECT * FROM sim.error_of('SELECT * FROM badtoken_records WHERE work_item_id = 1001');
SELECT api, method, path FROM (SELECT r->>'api' AS api, r->>'method' AS method, r->>'path' AS path,
    (r->>'seq')::int AS seq FROM sim.requests() r) s ORDER BY seq;

-- region becomes part of a host name: only a plain label is accepted
CREATE SERVER huawei_region FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'huawei', region 'x@127.0.0.1:57402/#');
CREATE SERVER huawei_region FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'huawei', region 'CN-North-4');
CREATE SERVER huawei_region FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'huawei', region 'ap-southeast-3');
-- URLs: no user info, query or fragment
CREATE SERVER feishu_url FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url 'https://project.feishu.cn@127.0.0.1:1/');
CREATE SERVER feishu_url FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url 'https://');

-- ca_file names a file of the database server: superusers only
CREATE SERVER feishu_ca FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', ca_file 'relative/ca.pem');
CREATE SERVER feishu_ca FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', ca_file '/etc/ssl/certs/ca-certificates.crt');

-- a server owned by a role that is not a superuser may send requests only
-- to the API's own hosts or to origins a superuser allowed
CREATE ROLE oprec_owner LOGIN;
GRANT USAGE ON FOREIGN DATA WRAPPER oprec_fdw TO oprec_owner;
GRANT USAGE ON SCHEMA sim TO oprec_owner;
CREATE SCHEMA owned AUTHORIZATION oprec_owner;
SET ROLE oprec_owner;
\set VERBOSITY terse
CREATE SERVER feishu_owned FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url :'sim_url', project_key 'proj_alpha');
\set VERBOSITY default
CREATE SERVER feishu_owned FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', project_key 'proj_alpha');
CREATE SERVER feishu_ca2 FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', ca_file '/etc/ssl/certs/ca-certificates.crt');
CREATE USER MAPPING FOR oprec_owner SERVER feishu_owned
    OPTIONS (plugin_id 'MII_SIM_PLUGIN', plugin_secret 'sim-plugin-secret', user_key '7491126018028090001');
CREATE FOREIGN TABLE owned.records (work_item_id bigint) SERVER feishu_owned;
RESET ROLE;
-- a superuser points the server at another host: the owner cannot use it
-- until the host is allowed, so the owner's secret never goes there
ALTER SERVER feishu_owned OPTIONS (ADD base_url :'sim_url');
SELECT sim.reset();
SET ROLE oprec_owner;
SELECT * FROM sim.error_of('SELECT count(*) FROM owned.records WHERE work_item_id = 1001')
WHERE field <> 'detail';
RESET ROLE;
SELECT count(*) AS requests FROM sim.feishu_requests;
SELECT set_config('oprec_fdw.allowed_hosts', 'https://example.com, ' || :'sim_url', false) IS NOT NULL AS allowed;
SET ROLE oprec_owner;
SELECT count(*) > 0 AS rows FROM owned.records WHERE work_item_id = 1001;
RESET ROLE;
RESET oprec_fdw.allowed_hosts;
-- only a superuser may change the list
SET ROLE oprec_owner;
SET oprec_fdw.allowed_hosts = 'http://evil.example';
RESET ROLE;
DROP SCHEMA owned CASCADE;
DROP USER MAPPING FOR oprec_owner SERVER feishu_owned;
DROP SERVER feishu_owned;
REVOKE USAGE ON FOREIGN DATA WRAPPER oprec_fdw FROM oprec_owner;
REVOKE USAGE ON SCHEMA sim FROM oprec_owner;
DROP ROLE oprec_owner;

-- no message shows a secret: a refused plugin_secret, a refused token
SELECT sim.reset();
ALTER USER MAPPING FOR CURRENT_USER SERVER feishu_badtoken OPTIONS (SET plugin_secret 'wrong-secret-value');
SELECT bool_or(value LIKE '%wrong-secret-value%') AS secret_shown
FROM sim.error_of('SELECT * FROM badtoken_records WHERE work_item_id = 1001');
