--
-- Token lifetimes from the API are taken with care: a huge one is clamped,
-- a short one is still used for most of its life, and one token serves
-- many pages.
--
SET timezone = 'UTC';

-- expire_time of 2^63-1 seconds: one token for the whole scan
SELECT sim.reset();
SELECT sim.expire_tokens();
ALTER SERVER feishu OPTIONS (ADD page_size '2');
SELECT sim.configure('{"feishu_token_reported_ttl": 9223372036854775807}');
SELECT count(*) AS rows FROM feishu_op_records WHERE work_item_id = 1001;
SELECT count(*) FILTER (WHERE api = 'feishu_auth') AS token_requests,
       count(*) FILTER (WHERE api = 'feishu') AS list_requests
FROM sim.feishu_requests;
-- and the next query still uses it
SELECT count(*) AS rows FROM feishu_op_records WHERE work_item_id = 1001;
SELECT count(*) FILTER (WHERE api = 'feishu_auth') AS token_requests FROM sim.feishu_requests;

-- a negative, zero or non-integer lifetime falls back to the default
SELECT sim.reset();
SELECT sim.expire_tokens();
SELECT sim.configure('{"feishu_token_reported_ttl": -5}');
SELECT count(*) AS rows FROM feishu_op_records WHERE work_item_id = 1001;
SELECT sim.configure('{"feishu_token_reported_ttl": 1e30}');
SELECT count(*) AS rows FROM feishu_op_records WHERE work_item_id = 1002;
SELECT count(*) FILTER (WHERE api = 'feishu_auth') AS token_requests FROM sim.feishu_requests;

-- a token that lasts 4 s is renewed half-way, not on every page (three
-- minutes before it lapses would be before it was issued)
SELECT sim.reset();
SELECT sim.expire_tokens();
SELECT sim.configure('{"feishu_token_ttl": 4}');
SELECT count(*) AS rows FROM feishu_op_records WHERE work_item_id = 1001;
SELECT count(*) AS rows FROM feishu_op_records WHERE work_item_id = 1002;
SELECT count(*) FILTER (WHERE api = 'feishu_auth') BETWEEN 1 AND 3 AS not_every_page,
       count(*) FILTER (WHERE api = 'feishu') >= 15 AS pages
FROM sim.feishu_requests;
ALTER SERVER feishu OPTIONS (DROP page_size);
