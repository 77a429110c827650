"""Measurements for bench/new_connection.sh (run inside pg_virtualenv with
oprec_fdw preloaded, the API simulator at OPREC_SIM_URL): oprec_fdw against
a Python asyncio client (bench/peer_asyncio.py) that reads the same records
from the same simulator and COPYs them into a table, in new and in reused
connections, at two latencies, with a normal and a small accept queue.

The peer sends what the API reference describes: ids in batches of 50 x
7-day windows, every chain in flight at once (up to in-flight), each
following start_from.  oprec_fdw chooses between walking a batch's history
and windows by expected time, so the two sides' list request counts may
differ: the table shows both (list f/p); they are not compared.  The
correctness check is the content check: once per scenario both sides' rows,
compared column by column with EXCEPT ALL.  Prints one table and a legend;
asserts nothing (rows that differ, a run whose row count is not oprec_fdw's
or a refused request is a warning line).

Environment:
  BENCH_QUICK=1          one latency (30 ms) and one scenario (the 450 ids)
  BENCH_LATENCIES="30 100"  BENCH_SCENARIOS="120,450"  BENCH_IN_FLIGHT="8 64"
  BENCH_CONNECTIONS="new same"  BENCH_QUEUES="normal small"  BENCH_REPS=3
"""

import datetime
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.error

import psycopg2

from benchlib import SIM, psql, sim

HERE = os.path.dirname(os.path.abspath(__file__))
PEER = os.path.join(HERE, "peer_asyncio.py")
PYTHON = sys.executable or "/usr/bin/python3"

PLUGIN_ID, PLUGIN_SECRET = "MII_SIM_PLUGIN", "sim-plugin-secret"   # test/simulator/README.md
USER_KEY = "7491126018028090001"

QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0")


def env_list(name, default):
    value = os.environ.get(name)
    return value.replace(",", " ").split() if value else default


LATENCIES = [int(x) for x in env_list("BENCH_LATENCIES", ["30"] if QUICK else ["30", "100"])]
IN_FLIGHT = [int(x) for x in env_list("BENCH_IN_FLIGHT", ["8", "64"])]
CONNECTIONS = env_list("BENCH_CONNECTIONS", ["new", "same"])
QUEUES = env_list("BENCH_QUEUES", ["normal", "small"])
REPS = int(os.environ.get("BENCH_REPS", "3"))

# The simulator's Feishu data end on 2026-10-31 (+08:00): "the last N days"
# ends there when the clock is past it (else now), so that there are rows.
# Both bounds are fixed for the whole run, so that every run of a side sends
# the same requests and both sides read the same rows.
DATA_END = datetime.datetime.fromisoformat("2026-11-01T00:00:00+08:00")
DAY = datetime.timedelta(days=1)

# (key, label, project_key, ids, days).  No space of the simulator has 1000
# work items (proj_alpha 135, proj_wide 450, test/simulator/dataset.py), and
# an unknown id costs the fdw a request of its own: the wide scenario uses
# every item of proj_wide.
SCENARIOS = [
    ("120", "120 ids x 90 d", "proj_alpha", list(range(1001, 1121)), 90),
    ("450", "450 ids x 30 d", "proj_wide", list(range(3001, 3451)), 30),
]
SCENARIO_KEYS = env_list("BENCH_SCENARIOS", ["450"] if QUICK else ["120", "450"])

COLUMNS = ("project_key text, work_item_id bigint, work_item_type_key text, "
           "operation_time timestamptz, operator text, operator_type text, operation_type text, "
           "op_record_module text, source_type text, source text, record_contents jsonb")

# Keys a request log entry may carry its arrival time under (the log had
# none when this was written: the timeline is then the peer's own clock).
TIME_KEYS = ("t", "ts", "time", "time_ms", "at", "at_ms", "arrived", "arrived_ms",
             "arrival_ms", "received", "received_ms", "received_at", "start_ms",
             "started", "started_at", "wall_ms", "unix_ms", "epoch_ms", "timestamp",
             "timestamp_ms")


# --------------------------------------------------------------------------
# Simulator
# --------------------------------------------------------------------------


def sim_json(path):
    """A control endpoint's JSON, None if the simulator does not have it."""
    try:
        return json.loads(sim("GET", path))
    except urllib.error.HTTPError:
        return None


def sim_prepare(latency):
    """Every call answered after latency ms, the token exchange too (the
    simulator's delay_ms leaves token endpoints out: a slow fault adds it),
    and no quota."""
    sim("POST", "/_sim/reset")
    sim("POST", "/_sim/config", {
        "delay_ms": latency, "feishu_qps": 0,
        "faults": [{"path": "/open_api/authen/plugin_token", "kind": "slow",
                    "delay_ms": latency}] if latency else []})


def sim_log():
    return [json.loads(line) for line in sim("GET", "/_sim/requests").splitlines() if line]


def overflows():
    """The kernel's ListenDrops (a superset of ListenOverflows) so far, None
    if the simulator cannot tell."""
    counts = sim_json("/_sim/listen_overflows") or {}
    if counts.get("listen_drops") is not None:
        return counts["listen_drops"]
    return counts.get("listen_overflows")


def list_requests(log):
    return [e for e in log if e["api"] == "feishu" and e["path"].endswith("/work_item/list")]


def tcp_connections(log, before=()):
    """TCP connections the requests of log came on that no earlier request
    (before) used; None when the log does not say."""
    if not log or "connection" not in log[0]:
        return None
    seen = {(e.get("listener"), e.get("connection")) for e in before}
    return len({(e.get("listener"), e.get("connection")) for e in log} - seen)


def entry_time(entry):
    """The arrival time of a log entry in Unix seconds, None if not logged."""
    for key in TIME_KEYS:
        value = entry.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if value > 1e11:
                return value / 1000.0
            if value > 1e8:
                return float(value)
        elif isinstance(value, str):
            try:
                return datetime.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                pass
    return None


def timeline(log, started_unix):
    """ms from started_unix to the token request and the first and last list
    requests, from the log's own times; None when it has none."""
    if not log or entry_time(log[0]) is None:
        return None
    tokens = [entry_time(e) for e in log if e["api"] == "feishu_auth"]
    lists = [entry_time(e) for e in list_requests(log)]

    def rel(t):
        return None if t is None else (t - started_unix) * 1000
    return {"token": rel(min(tokens)) if tokens else None,
            "first_list": rel(min(lists)) if lists else None,
            "last_list": rel(max(lists)) if lists else None}


# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------


def connect():
    db = psycopg2.connect("")
    db.autocommit = True
    db.cursor().execute("SET statement_timeout = '300s'")
    return db


def setup(small_url):
    """bench/objects.sql, then the feishu server with a plugin credential
    (token exchange) and the quota opened; a second server and table at
    the small accept queue."""
    sql = r"""
SET client_min_messages = warning;
\i :objects
ALTER USER MAPPING FOR CURRENT_USER SERVER feishu
    OPTIONS (DROP plugin_token, ADD plugin_id :'plugin_id', ADD plugin_secret :'plugin_secret');
ALTER SERVER feishu OPTIONS (SET requests_per_second '1000', ADD max_concurrency '8');
"""
    variables = {"objects": os.path.join(HERE, "objects.sql"), "sim_url": SIM,
                 "plugin_id": PLUGIN_ID, "plugin_secret": PLUGIN_SECRET}
    if small_url:
        sql += r"""
CREATE SERVER feishu_small FOREIGN DATA WRAPPER oprec_fdw
    OPTIONS (api 'feishu', base_url :'small_url', project_key 'proj_alpha',
             requests_per_second '1000', max_concurrency '8');
CREATE USER MAPPING FOR CURRENT_USER SERVER feishu_small
    OPTIONS (plugin_id :'plugin_id', plugin_secret :'plugin_secret', user_key :'user_key');
CREATE FOREIGN TABLE feishu_op_records_small (""" + COLUMNS + """) SERVER feishu_small;
"""
        variables.update(small_url=small_url, user_key=USER_KEY)
    psql(sql, variables)


SERVER_OF = {"normal": ("feishu", "feishu_op_records"),
             "small": ("feishu_small", "feishu_op_records_small")}
current_concurrency = {}


def set_concurrency(queue, in_flight):
    server = SERVER_OF[queue][0]
    if current_concurrency.get(server) != in_flight:
        psql(f"ALTER SERVER {server} OPTIONS (SET max_concurrency '{in_flight}')")
        current_concurrency[server] = in_flight


def fdw_query(queue, scenario, table="bench_fdw_rows", temporary=True):
    _, _, project_key, ids, _ = scenario
    lower, upper = BOUNDS[scenario[0]]
    sql = (f"CREATE {'TEMP ' if temporary else ''}TABLE {table} AS "
           f"SELECT * FROM {SERVER_OF[queue][1]} WHERE work_item_id = ANY (%s::bigint[]) "
           "AND operation_time >= %s::timestamptz AND operation_time < %s::timestamptz")
    params = [ids, lower.isoformat(), upper.isoformat()]
    if project_key != "proj_alpha":
        sql += " AND project_key = %s"
        params.append(project_key)
    return sql, params


def backend_memory(db):
    """(VmHWM MB, whether llvmjit is mapped) of the connection's backend."""
    cur = db.cursor()
    cur.execute(r"SELECT (regexp_match(pg_read_file('/proc/self/status'), 'VmHWM:\s+(\d+)'))[1]::int,"
                r" pg_read_file('/proc/self/maps') ~ 'llvmjit'")
    kb, jit = cur.fetchone()
    return round(kb / 1024, 1), jit


def fdw_measure(db, queue, scenario, latency, before_log=()):
    """One measured oprec_fdw run on db (autocommit): the query materialized
    into a temporary table; what it cost."""
    cur = db.cursor()
    cur.execute("DROP TABLE IF EXISTS bench_fdw_rows")
    sql, params = fdw_query(queue, scenario)
    sim_prepare(latency)
    ovf = overflows()
    started_unix = time.time()
    started = time.perf_counter()
    cur.execute(sql, params)
    ms = (time.perf_counter() - started) * 1000
    rows = cur.rowcount
    ovf_after = overflows()
    log = sim_log()
    mb, jit = backend_memory(db)
    return {"ms": ms, "rows": rows, "log": log, "mb": mb, "jit": jit,
            "tcp": tcp_connections(log, before_log),
            "ovf": None if ovf is None or ovf_after is None else ovf_after - ovf,
            "timeline": timeline(log, started_unix), "client_timeline": None}


# Scans without ids: planned at the cost of a scan never to prefer, far
# above jit_above_cost.
NO_ID_SCANS = [
    ("the last 30 days of proj_alpha", "operation_time >= %(lower)s AND operation_time < %(upper)s"),
    ("the first 100 rows, no time range", None),
]


def no_id_scan(label, condition, bounds):
    """One scan without ids in a new connection: rows, ms, peak MB, JIT."""
    set_concurrency("normal", 64)
    sim_prepare(30)
    db = connect()
    try:
        cur = db.cursor()
        lower, upper = bounds["450"] if "450" in bounds else next(iter(bounds.values()))
        if condition:
            sql = ("CREATE TEMP TABLE bench_no_ids AS SELECT * FROM feishu_op_records WHERE "
                   + condition)
        else:
            sql = "CREATE TEMP TABLE bench_no_ids AS SELECT * FROM feishu_op_records LIMIT 100"
        started = time.perf_counter()
        cur.execute(sql, {"lower": lower, "upper": upper})
        ms = (time.perf_counter() - started) * 1000
        rows = cur.rowcount
        mb, jit = backend_memory(db)
    finally:
        db.close()
    requests = len(list_requests(sim_log()))
    return (f"{label}: {rows} rows, {requests} record requests, {ms:.0f} ms, peak {mb} MB, "
            f"JIT {'yes' if jit else 'no'}")


def peer_args(queue, scenario, in_flight, mode, table="bench_peer_rows", regular=False):
    _, _, project_key, ids, _ = scenario
    lower, upper = BOUNDS[scenario[0]]
    url = URLS[queue]
    args = [PYTHON, PEER, "--url", url, "--plugin-id", PLUGIN_ID, "--plugin-secret", PLUGIN_SECRET,
            "--user-key", USER_KEY, "--project-key", project_key,
            "--ids", f"{ids[0]}-{ids[-1]}" if ids == list(range(ids[0], ids[-1] + 1))
            else ",".join(map(str, ids)),
            "--lower-ms", str(ms_ceil(lower)), "--upper-ms", str(ms_ceil(upper) - 1),
            "--in-flight", str(in_flight), "--mode", mode, "--table", table, "--json"]
    if regular:
        args.append("--regular-table")
    return args


def run_peer(args, between=None):
    """Run peer_asyncio.py; its result.  Mode same with between: the first
    run's line is read, between() called, then the timed run started."""
    if between is None:
        done = subprocess.run(args, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError("peer_asyncio.py failed: "
                               + (done.stderr.strip() or done.stdout)[-800:])
        return json.loads(done.stdout.strip().splitlines()[-1])
    process = subprocess.Popen(args + ["--wait"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    first = process.stdout.readline()
    if first:
        between()
        process.stdin.write("go\n")
        process.stdin.flush()
    out, err = process.communicate()
    if process.returncode != 0 or not first:
        raise RuntimeError("peer_asyncio.py failed: " + (err.strip() or out)[-800:])
    return json.loads(out.strip().splitlines()[-1])


def peer_measure(queue, scenario, latency, in_flight, mode):
    """One run of bench/peer_asyncio.py (mode same: the second run of its
    process, after an untimed first with the same session and token), as
    fdw_measure measures oprec_fdw: the simulator reset just before it."""
    counters = {}

    def prepare():
        sim_prepare(latency)
        counters["ovf"] = overflows()

    before = []
    if mode == "same":
        sim_prepare(latency)
        result = run_peer(peer_args(queue, scenario, in_flight, mode),
                          between=lambda: (before.extend(sim_log()), prepare()))
    else:
        prepare()
        result = run_peer(peer_args(queue, scenario, in_flight, mode))
    ovf_after = overflows()
    log = sim_log()
    ovf = counters.get("ovf")
    started_unix = result.get("started_unix")
    return {"ms": result["ms"], "rows": result["rows"], "log": log, "mb": result["backend_mb"],
            "peer_mb": result["peer_mb"], "jit": None, "tcp": tcp_connections(log, before),
            "ovf": None if ovf is None or ovf_after is None else ovf_after - ovf,
            "retries": sum((result.get("retries") or {}).values()),
            "timeline": timeline(log, started_unix) if started_unix else None,
            "client_timeline": result.get("timeline")}


def ms_ceil(ts):
    return -((-int(round(ts.timestamp() * 1e6))) // 1000)


# --------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------

def fmt(value, spec="", none="-"):
    return none if value is None else format(value, spec)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def timeline_text(t):
    if not t:
        return "n/a"
    parts = []
    for key, label in (("token", "token"), ("first_list", "first list"),
                       ("last_list", "last list")):
        parts.append(f"{label} {fmt(t.get(key), '+.0f')}")
    return ", ".join(parts) + " ms"


def client_timeline_text(t):
    if not t:
        return "n/a"
    return (f"token sent {fmt(t.get('token_sent'), '+.0f')}, first list sent "
            f"{fmt(t.get('first_list_sent'), '+.0f')}, last list sent "
            f"{fmt(t.get('last_list_sent'), '+.0f')}, last answer "
            f"{fmt(t.get('last_answer'), '+.0f')} ms")


def content_check(scenario, warnings):
    """Once per scenario: the fdw's and the peer's rows, in regular tables,
    compared as multisets."""
    sim_prepare(0)
    set_concurrency("normal", 8)
    db = connect()
    try:
        cur = db.cursor()
        cur.execute("DROP TABLE IF EXISTS bench_check_fdw")
        sql, params = fdw_query("normal", scenario, "bench_check_fdw", temporary=False)
        cur.execute(sql, params)
        run_peer(peer_args("normal", scenario, 8, "new", "bench_check_peer", regular=True))
        cur.execute("SELECT (SELECT count(*) FROM bench_check_fdw), "
                    "(SELECT count(*) FROM bench_check_peer), "
                    "(SELECT count(*) FROM (SELECT * FROM bench_check_fdw EXCEPT ALL "
                    "SELECT * FROM bench_check_peer) a), "
                    "(SELECT count(*) FROM (SELECT * FROM bench_check_peer EXCEPT ALL "
                    "SELECT * FROM bench_check_fdw) b)")
        fdw_rows, peer_rows, only_fdw, only_peer = cur.fetchone()
        cur.execute("DROP TABLE bench_check_fdw, bench_check_peer")
    finally:
        db.close()
    if only_fdw or only_peer:
        warnings.append(f"WARNING {scenario[1]}: rows differ: {only_fdw} only in oprec_fdw's "
                        f"{fdw_rows}, {only_peer} only in the peer's {peer_rows}")
        return f"{scenario[1]}: rows DIFFER ({fdw_rows} fdw, {peer_rows} peer)"
    return f"{scenario[1]}: the same {fdw_rows} rows, column for column"


def measure_cell(latency, scenario, queue, in_flight, mode, warnings):
    set_concurrency(queue, in_flight)
    fdw_runs, peer_runs = [], []
    same_db = None
    seen = []           # mode same: the requests before, whose connections are not new
    try:
        if mode == "same":
            same_db = connect()
            sql, params = fdw_query(queue, scenario)
            sim_prepare(latency)
            same_db.cursor().execute(sql, params)       # the run that makes it a used connection
            seen = sim_log()
        for _ in range(REPS):
            if mode == "new":
                db = connect()
                try:
                    fdw_runs.append(fdw_measure(db, queue, scenario, latency))
                finally:
                    db.close()
            else:
                fdw_runs.append(fdw_measure(same_db, queue, scenario, latency, seen))
                seen = seen + fdw_runs[-1]["log"]
            peer_runs.append(peer_measure(queue, scenario, latency, in_flight, mode))
    finally:
        if same_db is not None:
            same_db.close()

    rows = fdw_runs[0]["rows"]
    name = f"{latency} ms {scenario[1]} in-flight {in_flight} {mode} {queue}"
    matched = True
    for side, runs in (("oprec_fdw", fdw_runs), ("peer", peer_runs)):
        problems = {}           # what differs -> the runs it differs in
        for i, run in enumerate(runs, 1):
            if run["rows"] != rows:
                problems.setdefault(f"{run['rows']} rows where oprec_fdw's first run got {rows}",
                                    []).append(i)
            bad = [e for e in run["log"]
                   if e.get("status") != 200 or e.get("err_code") not in (0, None)]
            if bad:
                problems.setdefault(f"{len(bad)} requests refused (first: HTTP "
                                    f"{bad[0].get('status')} err_code {bad[0].get('err_code')})",
                                    []).append(i)
        for problem, which in problems.items():
            matched = False
            warnings.append(f"WARNING {name}: {side} run{'s' if len(which) > 1 else ''} "
                            f"{','.join(map(str, which))}: {problem}")
    tokens = len([e for e in fdw_runs[0]["log"] if e["api"] == "feishu_auth"])
    peer_tokens = len([e for e in peer_runs[0]["log"] if e["api"] == "feishu_auth"])
    fdw_ms = median([r["ms"] for r in fdw_runs])
    peer_ms = median([r["ms"] for r in peer_runs])
    return {
        "latency": latency, "scenario": scenario[1], "queue": queue, "in_flight": in_flight,
        "mode": mode, "fdw_ms": fdw_ms, "peer_ms": peer_ms,
        "list": (len(list_requests(fdw_runs[0]["log"])),
                 len(list_requests(peer_runs[0]["log"]))),
        "tokens": tokens, "peer_tokens": peer_tokens, "rows": rows,
        "fdw_mb": max(r["mb"] for r in fdw_runs),
        "peer_mb": max((r["peer_mb"] or 0) for r in peer_runs),
        "jit": "yes" if any(r["jit"] for r in fdw_runs) else "no",
        "tcp": (median([r["tcp"] for r in fdw_runs]), median([r["tcp"] for r in peer_runs])),
        "ovf": (median([r["ovf"] for r in fdw_runs]), median([r["ovf"] for r in peer_runs])),
        "retries": median([r["retries"] for r in peer_runs]),
        "match": "ok" if matched else "DIFF",
        "fdw_timeline": fdw_runs[0]["timeline"] if mode == "new" else None,
        "peer_timeline": peer_runs[0]["timeline"] if mode == "new" else None,
        "peer_client_timeline": peer_runs[0]["client_timeline"] if mode == "new" else None,
    }


HEADER = (f"{'lat':>6} {'scenario':<15} {'queue':<6} {'infl':>4} {'conn':<4} | {'fdw ms':>8} "
          f"{'peer ms':>8} {'fdw/peer':>8} | {'list f/p':>9} {'tok f/p':>7} {'rows':>5} | {'fdw MB':>6} "
          f"{'peer MB':>7} {'JIT':>3} | {'tcp f/p':>7} {'ovf f/p':>7} {'p.rt':>4} | {'chk':<4}")


def row_text(c):
    tcp = f"{fmt(c['tcp'][0], '.0f')}/{fmt(c['tcp'][1], '.0f')}"
    ovf = f"{fmt(c['ovf'][0], '.0f')}/{fmt(c['ovf'][1], '.0f')}"
    lists = f"{c['list'][0]}/{c['list'][1]}"
    ratio = c["fdw_ms"] / c["peer_ms"] if c["fdw_ms"] and c["peer_ms"] else None
    return (f"{c['latency']:>4}ms {c['scenario']:<15} {c['queue']:<6} {c['in_flight']:>4} "
            f"{c['mode']:<4} | {c['fdw_ms']:>8.1f} {c['peer_ms']:>8.1f} {fmt(ratio, '.2f'):>8} | "
            f"{lists:>9} {str(c['tokens']) + '/' + str(c['peer_tokens']):>7} {c['rows']:>5} | "
            f"{c['fdw_mb']:>6.1f} "
            f"{c['peer_mb']:>7.1f} {c['jit']:>3} | {tcp:>7} {ovf:>7} {fmt(c['retries'], '.0f'):>4} | "
            f"{c['match']:<4}")


def main():
    global BOUNDS, URLS
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    end = min(now, DATA_END)
    BOUNDS = {s[0]: (end - s[4] * DAY, end) for s in SCENARIOS}
    listeners = sim_json("/_sim/listeners")
    small = (listeners or {}).get("small_backlog")
    URLS = {"normal": SIM}
    notes = []
    queues = list(QUEUES)
    if small and small.get("port"):
        host = SIM.rsplit(":", 1)[0]
        URLS["small"] = f"{host}:{small['port']}"
    elif "small" in queues:
        queues.remove("small")
        notes.append("the simulator has no small-backlog listener (GET /_sim/listeners "
                     + ("answered 404" if listeners is None else f"says {json.dumps(listeners)}")
                     + "): the small accept queue rows are skipped")
    setup(URLS.get("small"))

    scenarios = [s for s in SCENARIOS if s[0] in SCENARIO_KEYS]
    warnings, errors = [], []
    print(f"oprec_fdw vs a Python asyncio client (bench/peer_asyncio.py), simulator {SIM}; "
          f"{REPS} runs per side and cell, median wall ms")
    print(f"time range: operation_time >= end - N days AND < end, end = {end.isoformat()} "
          f"({'now' if end == now else 'the end of the simulator data, before now'})")
    print("both sides materialize: oprec_fdw CREATE TEMP TABLE ... AS SELECT * FROM "
          "feishu_op_records WHERE work_item_id = ANY(ids) AND operation_time ...; the peer "
          "CREATE TEMP TABLE + COPY, one commit")
    for note in notes:
        print("note: " + note)
    print("content check (0 ms latency, rows compared with EXCEPT ALL):")
    for scenario in scenarios:
        try:
            print("  " + content_check(scenario, warnings))
        except Exception as exc:  # noqa: BLE001 - printed, the run goes on
            errors.append(f"content check {scenario[1]}: {exc}")
            print(f"  {scenario[1]}: ERROR {exc}")
    print()
    print(HEADER)
    print("-" * len(HEADER))
    cells = []
    for latency in LATENCIES:
        for scenario in scenarios:
            for queue in queues:
                for in_flight in IN_FLIGHT:
                    for mode in CONNECTIONS:
                        try:
                            cell = measure_cell(latency, scenario, queue, in_flight, mode, warnings)
                        except Exception as exc:  # noqa: BLE001
                            text = str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc)
                            errors.append(f"{latency} ms {scenario[1]} {queue} {in_flight} {mode}: {text}")
                            print(f"{latency:>4}ms {scenario[1]:<15} {queue:<6} {in_flight:>4} "
                                  f"{mode:<4} | ERROR {text[:150]}", flush=True)
                            continue
                        cells.append(cell)
                        print(row_text(cell), flush=True)
        print()

    print("Scans that name no ids (the listing first), each in a new connection, 64 in flight, "
          "30 ms: the backend's peak memory and whether JIT was loaded")
    for label, condition in NO_ID_SCANS:
        try:
            print("  " + no_id_scan(label, condition, BOUNDS))
        except Exception as exc:  # noqa: BLE001 - printed, the run goes on
            print(f"  {label}: ERROR {str(exc).strip()[:150]}")
    print()

    print("Request timelines, first run of each new-connection cell (ms from just before the "
          "measured call):")
    logged = any(c["fdw_timeline"] for c in cells)
    for c in cells:
        if c["mode"] != "new":
            continue
        head = f"  {c['latency']:>3} ms {c['scenario']:<15} {c['queue']:<6} in-flight {c['in_flight']:>2}"
        if logged:
            print(f"{head}: oprec_fdw (sim log) {timeline_text(c['fdw_timeline'])}; "
                  f"peer (sim log) {timeline_text(c['peer_timeline'])}")
            head = " " * len(head)
        print(f"{head}: peer (own clock) {client_timeline_text(c['peer_client_timeline'])}")
    if cells and not logged:
        print("  oprec_fdw: none: the simulator's request log has no arrival times "
              "(test/simulator/README.md, Request log), so oprec_fdw's requests cannot be "
              "placed in time; the peer's come from its own clock")
    print()
    print("""Legend:
  lat       the simulator answers every request after lat ms, the token request too (delay_ms,
            and a slow fault on the token path); quota open: feishu_qps 0, servers with
            requests_per_second 1000 and max_concurrency = infl
  queue     normal: the simulator's main listener (backlog 128); small: its second listener,
            listen backlog 5 (GET /_sim/listeners)
  infl      requests in flight: oprec_fdw's max_concurrency; the peer's TCPConnector(limit)
            and semaphore
  conn      new: oprec_fdw in a fresh connection (made before the clock starts), so a new
            backend and new TCP connections to the API; with the library preloaded, the
            cluster's token and its knowledge that the credential works serve it (tok f 0).
            The peer with a new aiohttp session and token: a script's run.  same: oprec_fdw in a connection that ran the query
            once (cached token, kept-alive API connections); the peer's second run in one
            process with the session and token of the first
  fdw ms    median wall ms of CREATE TEMP TABLE ... AS SELECT on the foreign table, from just
            before execute to its result
  peer ms   median wall ms of the peer: (session,) token, list requests, rows built, CREATE TEMP
            TABLE, COPY, commit (its PostgreSQL connection made before the clock starts)
  fdw/peer  fdw ms / peer ms: below 1 oprec_fdw is faster
  list f/p  list requests of the first run, oprec_fdw / peer, from the simulator's log (a
            request that never reached it, its connection reset, is not counted).  Not
            compared: the peer sends what the API reference describes (50 ids x 7-day
            windows, all in flight); oprec_fdw chooses between walking a batch's history and
            windows by expected time, so their request counts may differ
  tok f/p   token requests (POST /open_api/authen/plugin_token) of the first run, oprec_fdw /
            peer: a new peer session always asks for one; oprec_fdw may find one cached
  rows      rows of oprec_fdw's first run; the content check above compares both sides'
            rows column by column
  fdw MB    the oprec_fdw backend's peak resident memory (VmHWM), highest of the runs
  peer MB   the peer process's VmHWM (most of it Python, aiohttp and psycopg2 themselves)
  JIT       whether llvmjit was mapped into the oprec_fdw backend after the query
  tcp f/p   new TCP connections to the simulator during a measured run (log's connection
            numbers), oprec_fdw / peer, median
  ovf f/p   the kernel's ListenDrops (accept queue overflows included) during a measured run
            (the whole host: other processes' too), oprec_fdw / peer, median
  p.rt      requests the peer sent again after a connection error (reset by the small queue),
            median; oprec_fdw retries too (max_retries), unseen here
  chk       ok: every run of both sides got the rows of oprec_fdw's first run (as many) and
            every logged request was answered 200 without err_code; DIFF: see the warnings
  The peer sends what the API reference describes: ids sorted in batches of 50 (the API's
  maximum) x half-open 7-day windows (its longest), every batch x window chain in flight at
  once (up to infl), each following start_from while has_more: batches x windows + cursor
  pages.  oprec_fdw chooses between walking a batch's whole history and those windows by
  expected time, so their request counts may differ; their rows may not.""")
    if warnings:
        print()
        for line in warnings:
            print(line)
    if errors:
        print()
        for line in errors:
            print("ERROR " + line)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
