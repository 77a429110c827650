--
-- Tokens and credentials shared by the backends of the cluster, with the
-- library preloaded as the suite's cluster has it: a new connection uses
-- the token another backend got, and sends its requests together once the
-- API has accepted the credential in any backend; a token that expires or
-- is refused is renewed once for the cluster, not once per backend; a
-- credential never seen to work sends one request alone first.
--
SET timezone = 'UTC';
SET client_min_messages = warning;
\getenv sim_url OPREC_SIM_URL
CREATE EXTENSION dblink;

SELECT EXISTS (SELECT FROM pg_shmem_allocations WHERE name = 'oprec_fdw credentials')
    AS credentials_shared;

-- user keys no earlier run of this cluster used: credentials never seen
SELECT (1000000000 + floor(random() * 8000000000))::bigint::text AS exchange_key,
       (1000000000 + floor(random() * 8000000000))::bigint::text AS static_key \gset

-- plugin_id and plugin_secret, exchanged for a token; 8 requests in flight
CREATE SERVER feishu_tokens FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url :'sim_url', project_key 'proj_alpha',
             max_concurrency '8', requests_per_second '0');
CREATE USER MAPPING FOR PUBLIC SERVER feishu_tokens
    OPTIONS (plugin_id 'MII_SIM_PLUGIN', plugin_secret 'sim-plugin-secret',
             user_key :'exchange_key');
-- a static plugin token: nothing to exchange
CREATE SERVER feishu_static FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url :'sim_url', project_key 'proj_alpha',
             max_concurrency '8', requests_per_second '0');
CREATE USER MAPPING FOR PUBLIC SERVER feishu_static
    OPTIONS (plugin_token 'p-static-sim-token', user_key :'static_key');
CREATE FOREIGN TABLE token_records (
    project_key text, work_item_id bigint, work_item_type_key text,
    operation_time timestamptz, operator text, operator_type text,
    operation_type text, op_record_module text, source_type text,
    source text, record_contents jsonb
) SERVER feishu_tokens;
CREATE FOREIGN TABLE static_records (
    project_key text, work_item_id bigint, work_item_type_key text,
    operation_time timestamptz, operator text, operator_type text,
    operation_type text, op_record_module text, source_type text,
    source text, record_contents jsonb
) SERVER feishu_static;

-- Every row of three batches of ids (1001-1130, 50 ids a request), and
-- the token requests and the first list requests of a backend: whether its
-- second list request arrived while the first was still being answered
-- (the simulator counts the requests it is handling: in_flight).
CREATE FUNCTION pg_temp.all_rows(n bigint) RETURNS boolean LANGUAGE sql
    RETURN n = (SELECT count(*) FROM sim.feishu_truth WHERE work_item_id BETWEEN 1001 AND 1130);
CREATE FUNCTION pg_temp.requests(OUT token_requests bigint, OUT list_requests bigint,
                                 OUT second_sent_with_first boolean)
LANGUAGE sql AS $$
    SELECT count(*) FILTER (WHERE r->>'api' = 'feishu_auth'),
           count(*) FILTER (WHERE r->>'api' = 'feishu'),
           (array_agg((r->>'in_flight')::int ORDER BY (r->>'seq')::int)
               FILTER (WHERE r->>'api' = 'feishu'))[2] > 1
    FROM sim.requests() AS r
$$;
-- every answer takes 200 ms, so requests sent together are seen together;
-- the quota is opened (no throttling retries to wait for)
SELECT sim.reset();
SELECT sim.configure('{"delay_ms": 200, "feishu_qps": 0}');

-- 1. The first backend to use the credentials gets a token: the token
-- request goes alone by its nature, and a token issued for the secrets
-- shows that they work, so the list requests then go together.
SELECT pg_temp.all_rows(count(*)) FROM token_records WHERE work_item_id BETWEEN 1001 AND 1130;
SELECT * FROM pg_temp.requests();

-- 2. New connections, two at once: they use that token (no token
-- request), and send their requests together.
SELECT sim.reset();
SELECT sim.configure('{"delay_ms": 200, "feishu_qps": 0}');
SELECT dblink_connect('b1', sim.connstr()), dblink_connect('b2', sim.connstr());
SELECT dblink_send_query('b1', 'SELECT count(*) FROM token_records WHERE work_item_id BETWEEN 1001 AND 1130');
SELECT dblink_send_query('b2', 'SELECT count(*) FROM token_records WHERE work_item_id BETWEEN 1001 AND 1130');
SELECT pg_temp.all_rows(n) FROM dblink_get_result('b1') AS r(n bigint);
SELECT pg_temp.all_rows(n) FROM dblink_get_result('b2') AS r(n bigint);
SELECT count(*) AS ended FROM dblink_get_result('b1') AS r(n bigint);
SELECT count(*) AS ended FROM dblink_get_result('b2') AS r(n bigint);
SELECT token_requests, list_requests FROM pg_temp.requests();
-- one new connection alone: its second request goes with its first
SELECT sim.reset();
SELECT sim.configure('{"delay_ms": 200, "feishu_qps": 0}');
SELECT pg_temp.all_rows(n)
FROM dblink(sim.connstr(), 'SELECT count(*) FROM token_records WHERE work_item_id BETWEEN 1001 AND 1130')
    AS r(n bigint);
SELECT * FROM pg_temp.requests();

-- 3. The API refuses the token (it expired early): the three backends
-- that hold it are refused together, and one of them renews it for all.
SELECT sim.reset();
SELECT sim.configure('{"delay_ms": 200, "feishu_qps": 0}');
SELECT sim.expire_tokens();
SELECT dblink_send_query('b1', 'SELECT count(*) FROM token_records WHERE work_item_id BETWEEN 1001 AND 1130');
SELECT dblink_send_query('b2', 'SELECT count(*) FROM token_records WHERE work_item_id BETWEEN 1001 AND 1130');
SELECT pg_temp.all_rows(count(*)) FROM token_records WHERE work_item_id BETWEEN 1001 AND 1130;
SELECT pg_temp.all_rows(n) FROM dblink_get_result('b1') AS r(n bigint);
SELECT pg_temp.all_rows(n) FROM dblink_get_result('b2') AS r(n bigint);
SELECT count(*) AS ended FROM dblink_get_result('b1') AS r(n bigint);
SELECT count(*) AS ended FROM dblink_get_result('b2') AS r(n bigint);
SELECT count(*) FILTER (WHERE r->>'api' = 'feishu_auth') AS token_requests,
       count(*) FILTER (WHERE r->>'api' = 'feishu' AND r->>'token' = 'expired') > 0 AS refused_some
FROM sim.requests() AS r;

-- 4. The token comes due (it lasts 4 s: renewed half-way): the first
-- backend to need it renews it, and the others take the new one.
SELECT sim.reset();
SELECT sim.expire_tokens();
SELECT sim.configure('{"feishu_token_ttl": 4, "feishu_qps": 0}');
SELECT pg_temp.all_rows(count(*)) FROM token_records WHERE work_item_id BETWEEN 1001 AND 1130;
SELECT pg_sleep(2.5);
SELECT pg_temp.all_rows(n)
FROM dblink('b1', 'SELECT count(*) FROM token_records WHERE work_item_id BETWEEN 1001 AND 1130')
    AS r(n bigint);
SELECT pg_temp.all_rows(count(*)) FROM token_records WHERE work_item_id BETWEEN 1001 AND 1130;
SELECT pg_temp.all_rows(n)
FROM dblink('b2', 'SELECT count(*) FROM token_records WHERE work_item_id BETWEEN 1001 AND 1130')
    AS r(n bigint);
SELECT count(*) FILTER (WHERE r->>'api' = 'feishu_auth') AS token_requests,
       count(*) FILTER (WHERE r->>'token' IN ('expired', 'invalid')) AS refused
FROM sim.requests() AS r;

-- 5. A static token never seen to work: the first request goes alone (a
-- wrong secret then fails one request, not eight; an AK/SK pair is locked
-- after five), the others together once it was answered.
SELECT sim.reset();
SELECT sim.configure('{"delay_ms": 200, "feishu_qps": 0}');
SELECT pg_temp.all_rows(count(*)) FROM static_records WHERE work_item_id BETWEEN 1001 AND 1130;
SELECT * FROM pg_temp.requests();
-- seen to work now, in any backend: a new connection sends them together
SELECT sim.reset();
SELECT sim.configure('{"delay_ms": 200, "feishu_qps": 0}');
SELECT pg_temp.all_rows(n)
FROM dblink(sim.connstr(), 'SELECT count(*) FROM static_records WHERE work_item_id BETWEEN 1001 AND 1130')
    AS r(n bigint);
SELECT * FROM pg_temp.requests();

SELECT dblink_disconnect('b1'), dblink_disconnect('b2');
SELECT sim.reset();
DROP SERVER feishu_tokens CASCADE;
DROP SERVER feishu_static CASCADE;
DROP EXTENSION dblink;
