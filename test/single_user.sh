#!/usr/bin/env bash
# A scan from a single-user backend (postgres --single), which has no
# postmaster to watch while it waits on the API.  Needs the extension
# installed and OPREC_SIM_URL set (test/suite.sh runs it).  Prints
# "single-user: N passed, M failed".
#
#   test/single_user.sh

set -euo pipefail
: "${OPREC_SIM_URL:?run through test/suite.sh, which starts the simulator}"

bindir="$("${PG_CONFIG:-pg_config}" --bindir)"
dir="$(mktemp -d /tmp/oprec-single.XXXXXX)"
trap 'rm -rf "$dir"' EXIT
chown postgres "$dir"

as_postgres() {
    if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}

as_postgres "$bindir/initdb" -D "$dir/data" -A trust -E UTF8 --locale=C.UTF-8 >/dev/null

out="$(as_postgres "$bindir/postgres" --single -D "$dir/data" -j postgres 2>&1 <<SQL
CREATE EXTENSION oprec_fdw;
CREATE SERVER feishu FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url '$OPREC_SIM_URL', project_key 'proj_alpha');
CREATE USER MAPPING FOR CURRENT_USER SERVER feishu
    OPTIONS (plugin_id 'MII_SIM_PLUGIN', plugin_secret 'sim-plugin-secret', user_key '7491126018028090001');
CREATE FOREIGN TABLE records (work_item_id bigint, operation_time timestamptz) SERVER feishu;
SELECT 'rows=' || count(*) AS result FROM records WHERE work_item_id = 1001;
SQL
)" || true

passed=0
failed=0
if grep -q 'result = "rows=[1-9]' <<<"$out"; then
    passed=$((passed + 1))
else
    failed=$((failed + 1))
    echo "a single-user backend could not scan:" >&2
    grep -E 'ERROR|FATAL|result' <<<"$out" >&2 || true
fi
echo "single-user: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
