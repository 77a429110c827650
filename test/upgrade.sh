#!/usr/bin/env bash
# ALTER EXTENSION oprec_fdw UPDATE with objects in place: a database gets
# the extension at its first version (0.1), a server, a user mapping, a
# foreign table and a mirror; after the update to the current version
# every object still works, the new version's function works, and the
# extension's objects are those of a fresh install of the current
# version (definitions and comments compared).  Run inside pg_virtualenv
# with the library preloaded and OPREC_SIM_URL set (test/suite.sh does).
# Prints "upgrade: N passed, M failed".
#
#   test/upgrade.sh

set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/session_checks.sh"

current="$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$here/../oprec_fdw.control")"
q -d postgres -c "DROP DATABASE IF EXISTS upgraded" -c "DROP DATABASE IF EXISTS fresh" \
    -c "CREATE DATABASE upgraded" -c "CREATE DATABASE fresh" >/dev/null

# the first version, and objects of every kind
out="$(q -d upgraded <<'SQL'
SET client_min_messages = warning;
CREATE EXTENSION oprec_fdw VERSION '0.1';
CREATE SERVER feishu FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url :'sim_url', project_key 'proj_alpha', requests_per_second '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER feishu
    OPTIONS (plugin_id 'MII_SIM_PLUGIN', plugin_secret 'sim-plugin-secret',
             user_key '7491126018028090001');
CREATE FOREIGN TABLE records (work_item_id bigint, operation_time timestamptz, operator text)
    SERVER feishu;
SELECT count(*) FROM records WHERE work_item_id = 1001;
SELECT oprec_fdw_create_mirror('records', 'records_mirror', '1 hour', since => '2025-01-01');
SELECT count(*) FROM records_mirror;
SQL
)"
rows_before="$(echo "$out" | sed -n 1p)"
mirror_before="$(echo "$out" | sed -n 3p)"
check "version 0.1: a scan and a mirror" \
    "$([ -n "$rows_before" ] && [ "$rows_before" -gt 0 ] 2>/dev/null && [ "$mirror_before" -gt 0 ] 2>/dev/null && echo yes || echo no)" \
    "$(echo "$out" | head -c 400)"

update="$(q -d upgraded -c "ALTER EXTENSION oprec_fdw UPDATE" \
    -c "SELECT extversion FROM pg_extension WHERE extname = 'oprec_fdw'")"
check "ALTER EXTENSION oprec_fdw UPDATE goes to $current" \
    "$([ "$update" = "$current" ] && echo yes || echo no)" "got: $update"

# every object still works, and what the new version adds
out="$(q -d upgraded <<'SQL'
SET client_min_messages = warning;
SELECT count(*) FROM records WHERE work_item_id = 1001;
SELECT outcome FROM oprec_fdw_refresh_mirror('records_mirror');
SELECT shared FROM oprec_fdw_pace('records');
SELECT oprec_fdw_alter_mirror('records_mirror', refresh_every => '5 minutes');
SELECT refresh_every FROM oprec_fdw_mirrors WHERE mirror = 'records_mirror'::regclass;
DROP TABLE records_mirror;
SELECT count(*) FROM oprec_fdw_mirrors;
SQL
)"
check "after the update: the foreign table reads the same rows" \
    "$([ "$(echo "$out" | sed -n 1p)" = "$rows_before" ] && echo yes || echo no)" "$out"
check "after the update: the mirror refreshes" \
    "$([ "$(echo "$out" | sed -n 2p)" = "refreshed" ] && echo yes || echo no)" "$out"
check "after the update: the pace of the credential is shown" \
    "$([ "$(echo "$out" | sed -n 3p)" = "t" ] && echo yes || echo no)" "$out"
check "after the update: the mirror can be altered (new in 1.0)" \
    "$([ "$(echo "$out" | sed -n 5p)" = "00:05:00" ] && echo yes || echo no)" "$out"
check "after the update: a dropped mirror is forgotten (the event trigger)" \
    "$([ "$(echo "$out" | sed -n 6p)" = "0" ] && echo yes || echo no)" "$out"

# the updated extension is the fresh one: its objects, definitions, comments
q -d fresh -c "CREATE EXTENSION oprec_fdw" >/dev/null
describe='
SELECT string_agg(d, E"\n" ORDER BY d) FROM (
    SELECT pg_describe_object(dep.classid, dep.objid, dep.objsubid)
           || coalesce(E"\n  " || obj_description(dep.objid, c.relname), "")
           || CASE c.relname
                WHEN $$pg_proc$$ THEN E"\n" || pg_get_functiondef(dep.objid)
                WHEN $$pg_class$$ THEN E"\n" || coalesce(pg_get_viewdef(dep.objid), "")
                    || (SELECT string_agg(attname || " " || format_type(atttypid, atttypmod)
                                          || CASE WHEN attnotnull THEN " not null" ELSE "" END,
                                          ", " ORDER BY attnum)
                        FROM pg_attribute WHERE attrelid = dep.objid AND attnum > 0
                          AND NOT attisdropped)
                ELSE "" END AS d
    FROM pg_depend dep JOIN pg_class c ON c.oid = dep.classid
    WHERE dep.refclassid = $$pg_extension$$::regclass AND dep.deptype = $$e$$
      AND dep.refobjid = (SELECT oid FROM pg_extension WHERE extname = $$oprec_fdw$$)) s'
describe="${describe//\"/\'}"
upgraded_objects="$(q -d upgraded -c "$describe")"
fresh_objects="$(q -d fresh -c "$describe")"
check "the updated extension's objects are a fresh install's ($(echo "$fresh_objects" | grep -c '^[a-z]') objects)" \
    "$([ -n "$fresh_objects" ] && [ "$upgraded_objects" = "$fresh_objects" ] && echo yes || echo no)" \
    "$(diff <(echo "$fresh_objects") <(echo "$upgraded_objects") | head -20)"

q -d postgres -c "DROP DATABASE upgraded" -c "DROP DATABASE fresh" >/dev/null
echo "upgrade: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
