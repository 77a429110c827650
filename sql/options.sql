--
-- Options: every object's options are checked at CREATE/ALTER time, with a
-- hint that lists the valid ones; secrets belong in user mappings only.
--
\getenv sim_url OPREC_SIM_URL

-- servers
CREATE SERVER opt_s FOREIGN DATA WRAPPER oprec_fdw;
CREATE SERVER opt_s FOREIGN DATA WRAPPER oprec_fdw OPTIONS (api 'jira');
CREATE SERVER opt_s FOREIGN DATA WRAPPER oprec_fdw OPTIONS (api 'feishu', base_url 'ftp://example.com');
CREATE SERVER opt_s FOREIGN DATA WRAPPER oprec_fdw OPTIONS (api 'feishu', base_url 'https://example.com/?x=1');
CREATE SERVER opt_s FOREIGN DATA WRAPPER oprec_fdw OPTIONS (api 'feishu', page_size '0');
CREATE SERVER opt_s FOREIGN DATA WRAPPER oprec_fdw OPTIONS (api 'feishu', page_size '201');
CREATE SERVER opt_s FOREIGN DATA WRAPPER oprec_fdw OPTIONS (api 'feishu', page_size 'many');
CREATE SERVER opt_s FOREIGN DATA WRAPPER oprec_fdw OPTIONS (api 'feishu', connect_timeout '0');
CREATE SERVER opt_s FOREIGN DATA WRAPPER oprec_fdw OPTIONS (api 'feishu', requests_per_second '1001');
CREATE SERVER opt_s FOREIGN DATA WRAPPER oprec_fdw OPTIONS (api 'feishu', max_concurrency '65');
CREATE SERVER opt_s FOREIGN DATA WRAPPER oprec_fdw OPTIONS (api 'feishu', max_concurrency '0');
CREATE SERVER opt_s FOREIGN DATA WRAPPER oprec_fdw OPTIONS (api 'feishu', history_start 'last tuesday');
CREATE SERVER opt_s FOREIGN DATA WRAPPER oprec_fdw OPTIONS (api 'feishu', project_key '');
CREATE SERVER opt_s FOREIGN DATA WRAPPER oprec_fdw OPTIONS (api 'feishu', pagesize '10');
-- a secret is refused outside a user mapping, and not echoed
CREATE SERVER opt_s FOREIGN DATA WRAPPER oprec_fdw OPTIONS (api 'feishu', plugin_secret 'do-not-echo');
CREATE SERVER opt_s FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url 'https://meegle.example.com/', project_key 'proj_alpha',
             page_size '200', connect_timeout '5', request_timeout '30',
             requests_per_second '10', history_start '2024-07-02 00:00:00+08');
ALTER SERVER opt_s OPTIONS (SET page_size '500');
ALTER SERVER opt_s OPTIONS (DROP api);
ALTER SERVER opt_s OPTIONS (SET page_size '50');
SELECT srvname, srvoptions FROM pg_foreign_server WHERE srvname = 'opt_s';

-- the wrapper itself and columns take no options
ALTER FOREIGN DATA WRAPPER oprec_fdw OPTIONS (ADD api 'feishu');

-- user mappings: exactly one complete way to get a token, and user_key
CREATE USER MAPPING FOR CURRENT_USER SERVER opt_s OPTIONS (plugin_id 'p');
CREATE USER MAPPING FOR CURRENT_USER SERVER opt_s OPTIONS (plugin_secret 's', user_key 'u');
CREATE USER MAPPING FOR CURRENT_USER SERVER opt_s
    OPTIONS (plugin_token 't', plugin_id 'p', plugin_secret 's', user_key 'u');
CREATE USER MAPPING FOR CURRENT_USER SERVER opt_s OPTIONS (plugin_token 't');
CREATE USER MAPPING FOR CURRENT_USER SERVER opt_s OPTIONS (user_key 'u');
CREATE USER MAPPING FOR CURRENT_USER SERVER opt_s OPTIONS (plugin_token 't', user_key 'u', project_key 'x');
CREATE USER MAPPING FOR CURRENT_USER SERVER opt_s OPTIONS (plugin_token 't', user_key 'u', token 'x');
CREATE USER MAPPING FOR CURRENT_USER SERVER opt_s OPTIONS (plugin_token 't', user_key 'u');
ALTER USER MAPPING FOR CURRENT_USER SERVER opt_s OPTIONS (DROP user_key);
ALTER USER MAPPING FOR CURRENT_USER SERVER opt_s
    OPTIONS (DROP plugin_token, ADD plugin_id 'p', ADD plugin_secret 's');

-- foreign tables: project_key overrides the server's
CREATE FOREIGN TABLE opt_t (work_item_id bigint) SERVER opt_s OPTIONS (base_url 'http://x');
CREATE FOREIGN TABLE opt_t (work_item_id bigint) SERVER opt_s OPTIONS (plugin_token 'do-not-echo');
CREATE FOREIGN TABLE opt_t (work_item_id bigint OPTIONS (column_name 'id')) SERVER opt_s;
CREATE FOREIGN TABLE opt_t (work_item_id bigint OPTIONS (field 'user..name')) SERVER opt_s;
CREATE FOREIGN TABLE opt_t (work_item_id bigint) SERVER opt_s OPTIONS (project_key 'proj_beta');
ALTER FOREIGN TABLE opt_t OPTIONS (SET project_key '');

-- columns must be fields of the API: checked when the table is used
CREATE FOREIGN TABLE opt_bad_column (work_item_id bigint, title text) SERVER feishu;
SELECT * FROM opt_bad_column WHERE work_item_id = 1;

-- no secret appears in any option error above or in the catalog views
SELECT count(*) AS server_options_with_secrets
FROM pg_foreign_server, unnest(srvoptions) AS o
WHERE o LIKE 'plugin_%';

DROP FOREIGN TABLE opt_t, opt_bad_column;
DROP USER MAPPING FOR CURRENT_USER SERVER opt_s;
DROP SERVER opt_s;
