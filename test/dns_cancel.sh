#!/usr/bin/env bash
# A cancel must end a query at once even while the host name of the API is
# being resolved by a resolver that never answers (libcurl resolves in a
# thread, and by default waits for that thread when a transfer is
# abandoned).  Runs a throw-away cluster in a mount namespace whose
# /etc/resolv.conf names a loopback "resolver" that swallows every query,
# so that a lookup hangs for about 20 s there; the query with a 500 ms
# statement_timeout must be over long before that.  Needs root and the
# extension installed.  Prints "dns-cancel: N passed, M failed".
#
#   test/dns_cancel.sh

set -uo pipefail
if [ "$(id -u)" -ne 0 ]; then
    echo "dns-cancel: skipped: a mount namespace needs root"
    exit 0
fi
work="$(mktemp -d /tmp/oprec-dns.XXXXXX)"
trap 'kill "${dns_pid:-}" 2>/dev/null; rm -rf "$work"' EXIT

# a resolver on 127.0.83.53:53 that reads queries and answers none
cat >"$work/blackhole.py" <<'PY'
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.83.53", 53))
s.settimeout(0.5)
end = time.time() + 120
while time.time() < end:
    try:
        s.recvfrom(4096)
    except socket.timeout:
        pass
PY
python3 "$work/blackhole.py" & dns_pid=$!
echo "nameserver 127.0.83.53" >"$work/resolv.conf"
chmod 644 "$work/resolv.conf"; chmod 755 "$work"
sleep 0.5
if ! kill -0 "$dns_pid" 2>/dev/null; then
    echo "could not start the silent resolver on 127.0.83.53:53" >&2
    echo "dns-cancel: 0 passed, 1 failed"
    exit 1
fi

cat >"$work/query.sql" <<'SQL'
\set VERBOSITY terse
CREATE EXTENSION oprec_fdw;
CREATE SERVER unresolvable FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url 'http://api.unresolvable.example', project_key 'p');
CREATE USER MAPPING FOR CURRENT_USER SERVER unresolvable
    OPTIONS (plugin_token 'p-token', user_key '1');
CREATE FOREIGN TABLE t (work_item_id bigint) SERVER unresolvable;
SELECT extract(epoch FROM clock_timestamp()) AS started \gset
SET statement_timeout = '500ms';
SELECT * FROM t WHERE work_item_id = 1;
RESET statement_timeout;
SELECT 'after the cancel' AS next_query,
       'query seconds: ' || floor(extract(epoch FROM clock_timestamp()) - :started) AS took;
SQL

# The bound is a liveness check, not a measurement: the lookup alone takes
# about 20 s here, the query with its cancel must not.
out="$(timeout 90 unshare --mount bash -c "
    mount --bind '$work/resolv.conf' /etc/resolv.conf &&
    pg_virtualenv -v ${OPREC_PG_VERSION:-15} psql -X -f '$work/query.sql'" 2>&1)"
took=$(grep -o 'query seconds: [0-9]*' <<<"$out" | grep -o '[0-9]*$')

passed=0
failed=0
if grep -q 'canceling statement due to statement timeout' <<<"$out" &&
   [ -n "$took" ] && [ "$took" -lt 5 ]; then
    passed=1
else
    failed=1
    echo "the cancel did not end the query while the host name was being resolved:" >&2
    echo "$out" >&2
fi
echo "dns-cancel: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
