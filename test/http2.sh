#!/usr/bin/env bash
# HTTP/2: where an https API offers it, a backend's requests in flight share
# one connection.  Puts nghttpx (TLS, HTTP/2 only to clients) in front of the
# API simulator with a certificate made here, points a server at it with
# ca_file, and scans with 16 requests in flight, twice in one backend: the
# first scan opens one connection, the second none, and every request
# reached the proxy over h2.  Run inside pg_virtualenv with OPREC_SIM_URL
# set (test/suite.sh does).  Prints "http2: N passed, M failed".
#
#   test/http2.sh

set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$here/session_checks.sh"

work="$(mktemp -d /tmp/oprec-h2.XXXXXX)"
trap 'kill "${proxy_pid:-}" 2>/dev/null; rm -rf "$work"' EXIT
chmod 755 "$work"

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=127.0.0.1" \
    -addext "subjectAltName=IP:127.0.0.1" \
    -keyout "$work/key.pem" -out "$work/cert.pem" >/dev/null 2>&1
chmod 644 "$work/cert.pem"
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
backend="${OPREC_SIM_URL#http://}"
nghttpx --conf=/dev/null --frontend="127.0.0.1,$port" --backend="${backend%%:*},${backend##*:}" \
    --workers=1 --log-level=WARN --errorlog-file="$work/error.log" \
    --accesslog-file="$work/access.log" --accesslog-format='$alpn $status $request' \
    "$work/key.pem" "$work/cert.pem" 2>"$work/nghttpx.log" & proxy_pid=$!
for _ in $(seq 1 50); do
    curl -sf --cacert "$work/cert.pem" "https://127.0.0.1:$port/_sim/health" >/dev/null && break
    sleep 0.1
done

sim reset
sim config '{"delay_ms": 50, "feishu_qps": 0}'
# one backend: two scans of 3 batches x 22 weekly windows, 16 in flight
out="$(q <<SQL
CREATE EXTENSION IF NOT EXISTS oprec_fdw;
CREATE SERVER feishu_h2 FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url 'https://127.0.0.1:$port', ca_file '$work/cert.pem',
             project_key 'proj_alpha', max_concurrency '16', requests_per_second '0',
             time_windows 'always');
CREATE USER MAPPING FOR CURRENT_USER SERVER feishu_h2
    OPTIONS (plugin_token 'p-static-sim-token', user_key '7491126018028090001');
CREATE FOREIGN TABLE h2_records (work_item_id bigint, operation_time timestamptz)
    SERVER feishu_h2;
CREATE FUNCTION pg_temp.connections() RETURNS text LANGUAGE plpgsql AS \$\$
DECLARE plan json;
BEGIN
    EXECUTE \$q\$EXPLAIN (ANALYZE, FORMAT JSON) SELECT * FROM h2_records
        WHERE work_item_id BETWEEN 1001 AND 1130
          AND operation_time >= '2025-03-01' AND operation_time < '2025-08-02'\$q\$ INTO plan;
    -- rows as an integer: PostgreSQL 18 shows "279.00"
    RETURN ((plan->0->'Plan'->>'Actual Rows')::numeric)::bigint || ' '
        || (plan->0->'Plan'->>'HTTP Requests')
        || ' ' || (plan->0->'Plan'->>'Connections Opened');
END \$\$;
SELECT pg_temp.connections();
SELECT pg_temp.connections();
DROP SERVER feishu_h2 CASCADE;
SQL
)"
first="$(echo "$out" | sed -n 1p)"
second="$(echo "$out" | sed -n 2p)"
rows="$(curl -sf "$OPREC_SIM_URL/_sim/truth/feishu" | python3 -c '
import json, sys, datetime
lo = datetime.datetime(2025, 3, 1, tzinfo=datetime.timezone.utc).timestamp() * 1000
hi = datetime.datetime(2025, 8, 2, tzinfo=datetime.timezone.utc).timestamp() * 1000
print(sum(1 for line in sys.stdin if line.strip()
          for r in [json.loads(line)]
          if 1001 <= int(r["work_item_id"]) <= 1130 and lo <= int(r["operation_time"]) < hi))')"

check "the scan over HTTP/2 returns every row" \
    "$([ "${first%% *}" = "$rows" ] && [ "${second%% *}" = "$rows" ] && echo yes || echo no)" \
    "rows, requests, connections: '$first' and '$second', truth $rows rows"
check "66 requests in flight 16 at a time share one connection" \
    "$([ "$(echo "$first" | cut -d' ' -f2-)" = "66 1" ] && echo yes || echo no)" "got '$first'"
check "the next scan of the backend opens none" \
    "$([ "$(echo "$second" | cut -d' ' -f2-)" = "66 0" ] && echo yes || echo no)" "got '$second'"
h2="$(grep -c '^h2 ' "$work/access.log" 2>/dev/null)"
other="$(grep -vc '^h2 ' "$work/access.log" 2>/dev/null)"
check "every request reached the proxy over h2" \
    "$([ "${h2:-0}" -ge 132 ] && [ "${other:-1}" = 0 ] && echo yes || echo no)" \
    "h2: ${h2:-0}, other: ${other:-?} ($(head -c 300 "$work/error.log" 2>/dev/null))"

echo "http2: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
