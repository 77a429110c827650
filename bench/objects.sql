--
-- The objects every benchmark queries: both APIs' servers at the simulator
-- (psql variable sim_url), pacing off, with static credentials, and their
-- tables.  Included by bench/scan_throughput.sh and bench/compare.py.
--
CREATE EXTENSION IF NOT EXISTS oprec_fdw;
CREATE SERVER feishu FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url :'sim_url', project_key 'proj_alpha', requests_per_second '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER feishu
    OPTIONS (plugin_token 'p-static-sim-token', user_key '7491126018028090001');
CREATE FOREIGN TABLE feishu_op_records (project_key text, work_item_id bigint,
    work_item_type_key text, operation_time timestamptz, operator text, operator_type text,
    operation_type text, op_record_module text, source_type text, source text,
    record_contents jsonb) SERVER feishu;
CREATE SERVER huawei FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'huawei', base_url :'sim_url', project_id 'c15cc54e338d4506afd9bd8103071ff0',
             requests_per_second '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER huawei
    OPTIONS (access_key 'SIMAK0000000000000001', secret_key 'sim-secret-key-0001');
CREATE FOREIGN TABLE huawei_issue_records (project_id text, issue_id bigint, journal_id bigint,
    created_on timestamptz, notes text, user_id bigint, user_name text, user_nick_name text,
    user_first_name text, user_identifier text, detail_id bigint, property text,
    field_name text, operation text, old_value text, new_value text) SERVER huawei;
