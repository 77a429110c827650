"""Measurements for bench/compare.sh (run inside pg_virtualenv, with the
API simulator at OPREC_SIM_URL): each scenario at each latency, through
oprec_fdw and through a PL/Python function written the way users call the
API today, with the floor computed from the requests the scan made.

Every measurement runs in a new connection, so that the backend's peak
memory (VmHWM) is that of the one query.  Figures are printed, never
checked."""

import json
import os
import subprocess
import time
import urllib.request

SIM = os.environ["OPREC_SIM_URL"]
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


def sim(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(SIM + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request) as answer:
        return answer.read().decode()


def psql(sql, variables=None):
    args = ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"]
    for name, value in (variables or {}).items():
        args += ["-v", f"{name}={value}"]
    done = subprocess.run(args, input=sql, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip())
    return done.stdout.strip()


def sim_cpu_seconds():
    with open(f"/proc/{SIM_PID}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def measure(query, latency=0):
    """Wall ms, rows, peak backend memory (MB) of one query in a new
    connection, with the requests it made and the simulator's CPU; every
    API request answered after latency ms, no quota."""
    sim("POST", "/_sim/reset")
    sim("POST", "/_sim/config", {"feishu_qps": 0, "huawei_qps": 0, "delay_ms": latency})
    cpu = sim_cpu_seconds()
    out = psql(f"""
        SELECT clock_timestamp() AS t0 \\gset
        SELECT count(*) AS n FROM ({query}) q \\gset
        SELECT round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz) * 1000, 1),
               :n,
               (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\\s+(\\d+)'))[1]::int / 1024;
    """)
    cpu = sim_cpu_seconds() - cpu
    ms, rows, hwm = out.split("|")
    log = [json.loads(line) for line in sim("GET", "/_sim/requests").splitlines() if line]
    listing = [e for e in log if e["api"] in ("feishu", "huawei")]
    return float(ms), int(rows), int(hwm), listing, cpu


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


def main():
    psql(SETUP, {"sim_url": SIM,
                 "objects": os.path.join(os.path.dirname(os.path.abspath(__file__)), "objects.sql")})
    header = (f"{'scenario':<38} {'latency':>7} {'client':<10} {'ms':>9} {'rows':>6} "
              f"{'requests':>8} {'rows/s':>9} {'peak MB':>7} {'sim CPU':>7} "
              f"{'x floor':>7} {'x fdw':>6}")
    print(header)
    print("-" * len(header))
    for latency in LATENCIES:
        for name, fdw_query, py_query in SCENARIOS:
            ms, rows, hwm, listing, cpu = measure(fdw_query, latency)
            floor = longest_chain(listing) * latency
            results = [("oprec_fdw", ms, rows, hwm, len(listing), cpu)]
            if py_query:
                p_ms, p_rows, p_hwm, p_listing, p_cpu = measure(py_query, latency)
                results.append(("plpython", p_ms, p_rows, p_hwm, len(p_listing), p_cpu))
            for client, c_ms, c_rows, c_hwm, c_requests, c_cpu in results:
                print(f"{name:<38} {latency:>5}ms {client:<10} {c_ms:>9.1f} {c_rows:>6} "
                      f"{c_requests:>8} {c_rows / max(c_ms, 0.001) * 1000:>9.0f} {c_hwm:>7} "
                      f"{100 * c_cpu / max(c_ms / 1000, 0.001):>6.0f}% "
                      f"{(f'{c_ms / floor:.2f}' if floor else '-'):>7} "
                      f"{c_ms / ms:>6.2f}")
            print(f"{name:<38} {latency:>5}ms {'floor':<10} {floor:>9.1f}")
    sim("POST", "/_sim/reset")
    sim("POST", "/_sim/config", {"feishu_qps": 0})

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
    ms, rows, hwm, listing, cpu = measure("SELECT * FROM feishu_op_records WHERE work_item_id = 5000")
    print(f"oprec_fdw, the same records at 0 ms latency: {ms} ms for {rows} rows, "
          f"{rows / max(ms, 0.001) * 1000:.0f} rows/s (simulator CPU {100 * cpu / max(ms / 1000, 0.001):.0f}%)")


if __name__ == "__main__":
    main()
