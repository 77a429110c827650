"""Measurements for bench/compare.sh (run inside pg_virtualenv, with the
API simulator at OPREC_SIM_URL): each scenario at each latency, through
oprec_fdw and through a PL/Python function written the way users call the
API today, with the floor computed from the requests the scan made.

Every measurement runs in a new connection, so that the backend's peak
memory (VmHWM) is that of the one query.  Figures are printed, never
checked."""

import json
import os
import time
import urllib.request

import psycopg2

from benchlib import SIM, psql, sim

SIM_PID = int(os.environ["BENCH_SIM_PID"])
LATENCIES = [int(x) for x in os.environ.get("BENCH_LATENCIES", "0 30 150").split()]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

SETUP = r"""
SET client_min_messages = warning;
\i :objects
CREATE EXTENSION IF NOT EXISTS plpython3u;
CREATE TABLE my_items AS SELECT g::bigint AS id FROM generate_series(1001, 1120) g;
ANALYZE my_items;
CREATE TABLE bench_settings (url text);
INSERT INTO bench_settings VALUES (:'sim_url');

-- What users write today: the API called in a loop from PL/Python, with
-- the standard library, 50 ids per request and 7-day windows.
CREATE FUNCTION feishu_py(ids bigint[], start_ms bigint, end_ms bigint)
RETURNS TABLE (work_item_id bigint, operation_ms bigint, record_contents jsonb)
LANGUAGE plpython3u AS $py$
import json
import urllib.request
url = plpy.execute("SELECT url FROM bench_settings")[0]["url"]
week = 7 * 86400 * 1000
if start_ms is None:
    windows = [(None, None)]
else:
    windows = [(s, min(s + week, end_ms)) for s in range(start_ms, end_ms, week)]
rows = []
for i in range(0, len(ids), 50):
    for start, end in windows:
        cursor = None
        while True:
            body = {"project_key": "proj_alpha", "work_item_ids": ids[i:i + 50],
                    "page_size": 200}
            if start is not None:
                body["start"], body["end"] = start, end
            if cursor:
                body["start_from"] = cursor
            request = urllib.request.Request(
                url + "/open_api/op_record/work_item/list", data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json",
                         "X-PLUGIN-TOKEN": "p-static-sim-token",
                         "X-USER-KEY": "7491126018028090001"})
            with urllib.request.urlopen(request) as answer:
                reply = json.load(answer)
            data = reply.get("data")
            if not data:
                plpy.error("the API refused: %s" % json.dumps(reply)[:300])
            for record in data.get("op_records") or []:
                rows.append((record["work_item_id"], record["operation_time"],
                             json.dumps(record.get("record_contents"))))
            if not data.get("has_more"):
                break
            cursor = data["start_from"]
return rows
$py$;

CREATE TABLE page_bodies (body text);
"""

MS = "(extract(epoch FROM timestamptz '{}') * 1000)::bigint"

# (name, oprec_fdw query, PL/Python query or None)
SCENARIOS = [
    ("1 busy work item, whole history",
     "SELECT * FROM feishu_op_records WHERE work_item_id = 5000",
     "SELECT * FROM feishu_py('{5000}', NULL, NULL)"),
    ("120 ids over 90 days",
     "SELECT * FROM feishu_op_records WHERE work_item_id BETWEEN 1001 AND 1120"
     " AND operation_time >= '2025-01-01' AND operation_time < '2025-04-01'",
     "SELECT * FROM feishu_py(ARRAY(SELECT generate_series(1001, 1120)::bigint), "
     + MS.format("2025-01-01 UTC") + ", " + MS.format("2025-04-01 UTC") + ")"),
    ("130 ids over 28 months",
     "SELECT * FROM feishu_op_records WHERE work_item_id BETWEEN 1001 AND 1130"
     " AND operation_time >= '2024-07-02' AND operation_time < '2026-11-01'",
     "SELECT * FROM feishu_py(ARRAY(SELECT generate_series(1001, 1130)::bigint), "
     + MS.format("2024-07-02 UTC") + ", " + MS.format("2026-11-01 UTC") + ")"),
    ("join with 120 local ids over 90 days",
     "SELECT r.* FROM my_items m JOIN feishu_op_records r ON r.work_item_id = m.id"
     " WHERE r.operation_time >= '2025-01-01' AND r.operation_time < '2025-04-01'",
     None),
    ("20 Huawei issues",
     "SELECT * FROM huawei_issue_records WHERE issue_id BETWEEN 101 AND 120",
     None),
]


def cpu_seconds(pid):
    """User and system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def set_server(server, options):
    """Set (or, with None, drop) options of a server."""
    current = psql(f"SELECT array_to_string(srvoptions, ',') FROM pg_foreign_server "
                   f"WHERE srvname = '{server}'")
    names = {item.split("=", 1)[0] for item in current.split(",") if item}
    actions = []
    for name, value in options.items():
        if value is None:
            if name in names:
                actions.append(f"DROP {name}")
        else:
            actions.append(f"{'SET' if name in names else 'ADD'} {name} '{value}'")
    if actions:
        psql(f"ALTER SERVER {server} OPTIONS ({', '.join(actions)})")


# A new connection's first query sends one request alone, to check the
# credential before sending many; a warm-up query pays for it, so that what
# is measured is a session in use (a BI tool's pooled connection).
WARM_UP = {
    "feishu": "SELECT 1 FROM feishu_op_records WHERE work_item_id = 1001 LIMIT 1",
    "huawei": "SELECT 1 FROM huawei_issue_records WHERE issue_id = 101 LIMIT 1",
}


def measure(query, latency=0, qps=0):
    """Wall ms, rows, peak backend memory (MB) of one query in a new
    connection, with the requests it made, the simulator's CPU seconds and
    the backend's; every API request answered after latency ms, the
    simulator enforcing qps requests per second (0: no quota)."""
    connection = psycopg2.connect("")
    connection.autocommit = True
    try:
        db = connection.cursor()
        db.execute("SELECT pg_backend_pid()")
        backend = db.fetchone()[0]
        if "_py(" not in query:
            sim("POST", "/_sim/config", {"feishu_qps": 0, "huawei_qps": 0, "delay_ms": 0})
            db.execute(WARM_UP["huawei" if "huawei_issue" in query else "feishu"])
            db.fetchall()
        sim("POST", "/_sim/reset")
        sim("POST", "/_sim/config", {"feishu_qps": qps, "huawei_qps": qps, "delay_ms": latency})
        cpu = cpu_seconds(SIM_PID)
        backend_cpu = cpu_seconds(backend)
        started = time.monotonic()
        db.execute(f"SELECT count(q) FROM ({query}) q")
        rows = db.fetchone()[0]
        ms = (time.monotonic() - started) * 1000
        cpu = cpu_seconds(SIM_PID) - cpu
        backend_cpu = cpu_seconds(backend) - backend_cpu
        db.execute("SELECT (regexp_match(pg_read_file('/proc/self/status'), "
                   "'VmHWM:\\s+(\\d+)'))[1]::int / 1024")
        hwm = db.fetchone()[0]
    finally:
        connection.close()
    log = [json.loads(line) for line in sim("GET", "/_sim/requests").splitlines() if line]
    listing = [e for e in log if e["api"] in ("feishu", "huawei")]
    return ms, int(rows), int(hwm), listing, cpu, backend_cpu


def longest_chain(listing):
    """Pages of the longest request chain: requests asking for the same ids
    and window (Feishu) or the same issue (Huawei) form one chain."""
    chains = {}
    for e in listing:
        if e["api"] == "feishu":
            body = e.get("body") or {}
            key = (tuple(body.get("work_item_ids") or ()), body.get("start"), body.get("end"))
        else:
            key = (e.get("query") or {}).get("issue_id")
        chains[key] = chains.get(key, 0) + 1
    return max(chains.values(), default=0)


# The fdw rows: the quota opened (a raised quota or a private deployment),
# with every chain in flight together, and with one request at a time.
FDW_CLIENTS = [
    ("oprec_fdw", {"max_concurrency": "64", "requests_per_second": "1000"}),
    ("fdw conc=1", {"max_concurrency": "1", "requests_per_second": "1000"}),
]
OPEN_QUOTA = 1000


def set_servers(options):
    for server in ("feishu", "huawei"):
        set_server(server, options)


def refused(listing):
    return sum(1 for e in listing
               if e.get("status") == 429 or str(e.get("err_code")) in ("10429", "APIGW.0308"))


def main():
    psql(SETUP, {"sim_url": SIM,
                 "objects": os.path.join(os.path.dirname(os.path.abspath(__file__)), "objects.sql")})
    header = (f"{'scenario':<38} {'latency':>7} {'client':<10} {'ms':>9} {'rows':>6} "
              f"{'requests':>8} {'rows/s':>9} {'peak MB':>7} {'sim CPU':>7} {'be CPU':>7} "
              f"{'x floor':>7} {'py/this':>7}")
    print(header)
    print("-" * len(header))
    for latency in LATENCIES:
        for name, fdw_query, py_query in SCENARIOS:
            results = []
            for client, options in FDW_CLIENTS:
                set_servers(options)
                results.append((client,) + measure(fdw_query, latency))
            listing = results[0][4]
            floor = max(longest_chain(listing) * latency, len(listing) * 1000.0 / OPEN_QUOTA)
            py_ms = None
            if py_query:
                results.append(("plpython",) + measure(py_query, latency))
                py_ms = results[-1][1]
            for client, c_ms, c_rows, c_hwm, c_listing, c_cpu, c_be in results:
                print(f"{name:<38} {latency:>5}ms {client:<10} {c_ms:>9.1f} {c_rows:>6} "
                      f"{len(c_listing):>8} {c_rows / max(c_ms, 0.001) * 1000:>9.0f} {c_hwm:>7} "
                      f"{100 * c_cpu / max(c_ms / 1000, 0.001):>6.0f}% "
                      f"{100 * c_be / max(c_ms / 1000, 0.001):>6.0f}% "
                      f"{(f'{c_ms / floor:.2f}' if floor >= 1 else '-'):>7} "
                      f"{(f'{py_ms / c_ms:.1f}' if py_ms else '-'):>7}")
            print(f"{name:<38} {latency:>5}ms {'floor':<10} {floor:>9.1f}")
        print()

    # Quota-bound: the simulator enforces 15 requests/s and the servers keep
    # their default options (requests_per_second 15, max_concurrency 8).
    set_servers({"max_concurrency": None, "requests_per_second": None})
    print("Quota-bound: the API allows 15 requests/s, default server options, 30 ms latency")
    for name, fdw_query, _ in SCENARIOS[1:3]:
        ms, rows, hwm, listing, cpu, backend_cpu = measure(fdw_query, 30, qps=15)
        bound = len(listing) * 1000.0 / 15
        print(f"  {name:<36} {ms:>9.1f} ms  {rows:>6} rows  {len(listing):>4} requests  "
              f"{refused(listing)} refused (429)  requests/15 = {bound:.0f} ms  "
              f"x bound {ms / bound:.2f}")
    set_servers(FDW_CLIENTS[0][1])
    sim("POST", "/_sim/reset")
    sim("POST", "/_sim/config", {"feishu_qps": 0, "huawei_qps": 0, "delay_ms": 0})
    print()

    # The CPU reference: PostgreSQL's own jsonb parsing of the page bodies
    # of the busy work item, from a local table.
    bodies = []
    cursor = None
    while True:
        body = {"project_key": "proj_alpha", "work_item_ids": [5000], "page_size": 200}
        if cursor:
            body["start_from"] = cursor
        request = urllib.request.Request(
            SIM + "/open_api/op_record/work_item/list", data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "X-PLUGIN-TOKEN": "p-static-sim-token",
                     "X-USER-KEY": "7491126018028090001"})
        with urllib.request.urlopen(request) as answer:
            text = answer.read().decode()
        bodies.append(text)
        data = json.loads(text)["data"]
        if not data.get("has_more"):
            break
        cursor = data["start_from"]
    copy = "COPY page_bodies (body) FROM STDIN WITH (FORMAT csv);\n" + "".join(
        '"' + b.replace('"', '""') + '"\n' for b in bodies) + "\\.\n"
    psql("TRUNCATE page_bodies;\n" + copy)
    out = psql("""
        SELECT clock_timestamp() AS t0 \\gset
        SELECT sum(jsonb_array_length((body::jsonb)->'data'->'op_records')) AS n FROM page_bodies \\gset
        SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000, 1), :n;
    """)
    ms, rows = out.split("|")
    print()
    print(f"PostgreSQL's jsonb parsing of the same {len(bodies)} page bodies (busy work item): "
          f"{ms} ms for {rows} records, {int(rows) / max(float(ms), 0.001) * 1000:.0f} records/s")
    # The backend's CPU per row, over several scans of the busy work item
    # at 0 ms latency (every column converted: count of whole rows).
    scans = 5
    total_ms = total_be = 0.0
    for _ in range(scans):
        ms, rows, hwm, listing, cpu, backend_cpu = measure(
            "SELECT * FROM feishu_op_records WHERE work_item_id = 5000")
        total_ms += ms
        total_be += backend_cpu
    print(f"oprec_fdw, the same records at 0 ms latency, {scans} scans: "
          f"{total_ms / scans:.1f} ms and {1000 * total_be / scans:.0f} ms of backend CPU per scan "
          f"of {rows} rows: {rows * scans / max(total_ms / 1000, 0.001):.0f} rows/s of wall time, "
          f"{rows * scans / max(total_be, 0.001):.0f} rows per backend CPU second; peak {hwm} MB")


if __name__ == "__main__":
    main()
