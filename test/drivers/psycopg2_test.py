#!/usr/bin/python3
"""oprec_fdw through psycopg2 (libpq), as Python BI tools reach it.

Run by test/drivers/run.sh inside pg_virtualenv, after it created the
foreign tables; OPREC_SIM_URL names the API simulator.  Every result is
compared with the simulator's own data (/_sim/truth/...).  Prints one line
per check, "ok - NAME" or "not ok - NAME: WHY"; run.sh counts them.

The helpers above the psycopg2 checks (truth, rows, check) are shared with
odbc_test.py.
"""
import collections
import datetime
import json
import os
import threading
import time
import urllib.request
from decimal import Decimal

SIM = os.environ["OPREC_SIM_URL"]
FEISHU_PROJECT = "proj_alpha"
HUAWEI_PROJECT = "c15cc54e338d4506afd9bd8103071ff0"
FEISHU_COLS = [("project_key", "text"), ("work_item_id", "bigint"),
               ("work_item_type_key", "text"), ("operation_time", "timestamp with time zone"),
               ("operator", "text"), ("operator_type", "text"), ("operation_type", "text"),
               ("op_record_module", "text"), ("source_type", "text"), ("source", "text"),
               ("record_contents", "jsonb")]
HUAWEI_COLS = [("project_id", "text"), ("issue_id", "bigint"), ("journal_id", "bigint"),
               ("created_on", "timestamp with time zone"), ("notes", "text"),
               ("user_id", "bigint"), ("user_name", "text"), ("user_nick_name", "text"),
               ("user_first_name", "text"), ("user_identifier", "text"),
               ("detail_id", "bigint"), ("property", "text"), ("field_name", "text"),
               ("operation", "text"), ("old_value", "text"), ("new_value", "text")]
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
DAY_MS = 86400000


# --- the simulator ---------------------------------------------------------

def sim(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(SIM + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.read().decode()


def sim_lines(path):
    return [json.loads(line, parse_float=Decimal)
            for line in sim("GET", path).splitlines() if line.strip()]


def api_requests(api):
    """API requests logged since the last /_sim/reset whose api starts with api."""
    return sum(1 for r in sim_lines("/_sim/requests") if r["api"].startswith(api))


# --- values compared as the truth gives them --------------------------------

def canon(v):
    """A hashable form of a JSON value: numbers compare by value, exactly."""
    if isinstance(v, dict):
        return ("{}",) + tuple(sorted((k, canon(x)) for k, x in v.items()))
    if isinstance(v, list):
        return ("[]",) + tuple(canon(x) for x in v)
    if isinstance(v, bool):
        return ("bool", v)
    return v


def ms(dt):
    """A timestamptz read by a driver as epoch milliseconds (naive = UTC)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=datetime.timezone.utc)
    return (dt - EPOCH) // datetime.timedelta(milliseconds=1)


def from_ms(m):
    return EPOCH + datetime.timedelta(milliseconds=m)


def row_of(values, json_text=()):
    """A row read by a driver, in the form of truth rows; json_text: the
    positions of jsonb values the driver gives as text."""
    return tuple(ms(v) if isinstance(v, datetime.datetime)
                 else canon(json.loads(v, parse_float=Decimal)) if k in json_text and v is not None
                 else canon(v) if isinstance(v, (list, dict)) else v
                 for k, v in enumerate(values))


class Truth:
    """Every row the two tables can return, as dicts by column name."""

    def __init__(self):
        self.feishu = [{**r, "record_contents": canon(r["record_contents"])}
                       for r in sim_lines("/_sim/truth/feishu")
                       if r["project_key"] == FEISHU_PROJECT]
        for r in self.feishu:
            for name, _ in FEISHU_COLS:
                r.setdefault(name, None)
        self.huawei = []
        for h in sim_lines("/_sim/truth/huawei"):
            if h["project_id"] != HUAWEI_PROJECT:
                continue
            e, user = h["entry"], h["entry"]["user"]
            entry = {"project_id": h["project_id"], "issue_id": h["issue_id"],
                     "journal_id": e["id"], "created_on": int(e["created_on"]),
                     "notes": e.get("notes"), "user_id": user.get("id"),
                     "user_name": user.get("name"), "user_nick_name": user.get("nick_name"),
                     "user_first_name": user.get("first_name"),
                     "user_identifier": user.get("identifier")}
            for d in e.get("details") or [None]:
                d = d or {}
                self.huawei.append({**entry, "detail_id": d.get("id"), "property": d.get("property"),
                                    "field_name": d.get("name"), "operation": d.get("operation"),
                                    "old_value": d.get("old_value"), "new_value": d.get("new_value")})

        # What the checks ask for, chosen from the data.
        counts = collections.Counter(r["work_item_id"] for r in self.feishu)
        self.ids = sorted(counts)                                # work items with records
        self.fetch_ids = self.ids[:20]                           # hundreds of rows
        self.longest = counts.most_common(1)[0][0]               # the longest history
        self.big_ids = [i for i in self.ids if i > 2 ** 53]
        self.ids_120 = self.ids[:120]
        times = sorted(r["operation_time"] for r in self.feishu if r["work_item_id"] in self.ids_120)
        self.t1 = times[len(times) // 2] // DAY_MS * DAY_MS      # 12 days from the median's day
        self.t2 = self.t1 + 12 * DAY_MS
        self.ids_5 = sorted({r["work_item_id"] for r in self.feishu
                             if r["work_item_id"] in self.ids_120 and self.t1 <= r["operation_time"] < self.t2})[:5]
        self.issues_5 = sorted({r["issue_id"] for r in self.huawei})[:5]
        assert len(self.ids_5) == 5 and self.big_ids

    @staticmethod
    def rows(table, keep, cols):
        return [tuple(r[c] for c, _ in cols) for r in table if keep(r)]

    def feishu_rows(self, ids, t1=None, t2=None):
        ids = set(ids)
        return self.rows(self.feishu, lambda r: r["work_item_id"] in ids and
                         (t1 is None or t1 <= r["operation_time"] < t2), FEISHU_COLS)

    def huawei_rows(self, ids):
        ids = set(ids)
        return self.rows(self.huawei, lambda r: r["issue_id"] in ids, HUAWEI_COLS)


class CheckFailed(Exception):
    pass


def same_rows(got, want):
    """got and want are equal as multisets of rows; want must not be empty."""
    if not want:
        raise CheckFailed("the truth has no row for this query (bad test data)")
    g, w = collections.Counter(got), collections.Counter(want)
    if g != w:
        missing, extra = w - g, g - w
        sample = next(iter(missing or extra))
        raise CheckFailed(f"{len(got)} rows, expected {len(want)}: {sum(missing.values())} missing, "
                          f"{sum(extra.values())} extra, e.g. {'missing' if missing else 'extra'} {str(sample)[:200]}")


def check(name, fn):
    """Run one check: fn raises to fail, may return a note for the ok line."""
    try:
        note = fn()
    except Exception as e:  # a failed check or an error from the driver
        state = f"SQLSTATE {e.pgcode}: " if getattr(e, "pgcode", None) else ""
        why = " ".join(f"{state}{type(e).__name__}: {e}".split())
        print(f"not ok - {name}: {why[:600]}", flush=True)
    else:
        print(f"ok - {name}" + (f" ({note})" if note else ""), flush=True)


def expect(cond, why):
    if not cond:
        raise CheckFailed(why)


def local_tables_sql(truth):
    """Recreate the local tables the joins use (my_items, my_items_120, my_issues)."""
    def table(name, ids):
        return (f"DROP TABLE IF EXISTS {name}; CREATE TABLE {name} (id bigint); "
                f"INSERT INTO {name} VALUES {', '.join(f'({i})' for i in ids)}; ANALYZE {name};")
    return " ".join([table("my_items", truth.ids_5), table("my_items_120", truth.ids_120),
                     table("my_issues", truth.issues_5)])


# --- the psycopg2 checks -----------------------------------------------------

def main():
    import psycopg2
    import psycopg2.extras

    # jsonb numbers exactly as sent (the simulator's truth is parsed the same way)
    psycopg2.extras.register_default_jsonb(globally=True, loads=lambda s: json.loads(s, parse_float=Decimal))
    truth = Truth()
    conn = psycopg2.connect("")          # PGHOST/PGPORT/PGUSER/... from pg_virtualenv
    conn.autocommit = True
    cur = conn.cursor()
    P = "psycopg2: "

    def fetch(sql, params=None):
        cur.execute(sql, params)
        return [row_of(r) for r in cur.fetchall()]

    cur.execute(local_tables_sql(truth))

    # 1. metadata
    def metadata():
        cur.execute("SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = 'public' AND table_type = 'FOREIGN' ORDER BY 1")
        tables = [r[0] for r in cur.fetchall()]
        expect(tables == ["feishu_op_records", "huawei_issue_records"], f"foreign tables {tables}")
        for table, cols in (("feishu_op_records", FEISHU_COLS), ("huawei_issue_records", HUAWEI_COLS)):
            cur.execute("SELECT column_name, data_type FROM information_schema.columns "
                        "WHERE table_schema = 'public' AND table_name = %s ORDER BY ordinal_position", (table,))
            got = [tuple(r) for r in cur.fetchall()]
            expect(got == cols, f"{table} columns {got}")
    check(P + "information_schema lists the foreign tables and their column types", metadata)

    # 2. prepared statements, each run 10 times with different values (the
    # planner may then switch to the generic plan) and 3 times more with the
    # generic plan forced
    def prepared(name, signature, where, runs):
        cur.execute(f"PREPARE {name}({signature}) AS SELECT * FROM feishu_op_records WHERE {where}")
        try:
            for k, (params, want) in enumerate(runs):
                if k == 10:
                    cur.execute("SET plan_cache_mode = force_generic_plan")
                args = ", ".join(["%s"] * len(params))
                same_rows(fetch(f"EXECUTE {name}({args})", params), want)
        finally:
            cur.execute("RESET plan_cache_mode")
        cur.execute("SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE name = %s", (name,))
        generic, custom = cur.fetchone()
        expect(generic >= 3 and generic + custom == len(runs), f"{generic} generic, {custom} custom plans")
        return f"{generic} generic, {custom} custom plans"

    check(P + "PREPARE/EXECUTE work_item_id = $1, 13 ids",
          lambda: prepared("by_id", "bigint", "work_item_id = $1",
                           [((i,), truth.feishu_rows([i])) for i in truth.ids[:13]]))
    check(P + "PREPARE/EXECUTE = ANY ($1) AND operation_time >= $2 AND < $3, 13 runs",
          lambda: prepared("by_ids_time", "bigint[], timestamptz, timestamptz",
                           "work_item_id = ANY ($1) AND operation_time >= $2 AND operation_time < $3",
                           [((ids, from_ms(t1), from_ms(t2)), truth.feishu_rows(ids, t1, t2))
                            for ids, t1, t2 in array_time_runs(truth)]))

    def client_parameters():
        for ids, t1, t2 in array_time_runs(truth)[:4]:
            same_rows(fetch("SELECT * FROM feishu_op_records WHERE work_item_id = ANY (%s) "
                            "AND operation_time >= %s AND operation_time < %s", (ids, from_ms(t1), from_ms(t2))),
                      truth.feishu_rows(ids, t1, t2))
    check(P + "client-side parameters: a list and datetimes", client_parameters)

    # 3. a named (server-side) cursor fetching 50 rows at a time
    def named_cursor():
        want = truth.feishu_rows(truth.fetch_ids)
        expect(len(want) >= 200, f"only {len(want)} rows in the truth for 20 work items")
        conn.autocommit = False
        try:
            with conn.cursor(name="records") as c:
                c.itersize = 50
                c.execute("SELECT * FROM feishu_op_records WHERE work_item_id = ANY (%s)", (truth.fetch_ids,))
                got = [row_of(r) for r in c]
            conn.commit()
        finally:
            conn.rollback()
            conn.autocommit = True
        same_rows(got, want)
        return f"{len(got)} rows"
    check(P + "named cursor, itersize 50, over 20 work items", named_cursor)

    # 4. the wrappers BI tools put around a query
    def wrappers():
        query = f"SELECT * FROM feishu_op_records WHERE work_item_id IN ({', '.join(map(str, truth.fetch_ids))})"
        want = truth.feishu_rows(truth.fetch_ids)
        got = fetch(f"SELECT * FROM ({query}) sub LIMIT 17")
        expect(len(got) == 17 and not collections.Counter(got) - collections.Counter(want),
               f"LIMIT 17 gave {len(got)} rows, not all of them in the truth")
        got = fetch(f"SELECT count(*) FROM ({query}) sub")
        expect(got == [(len(want),)], f"count(*) gave {got}, the truth has {len(want)}")
    check(P + "SELECT * FROM (query) sub LIMIT n and SELECT count(*) FROM (query) sub", wrappers)

    def limit_probes():
        sim("POST", "/_sim/reset")
        cur.execute("SELECT * FROM (SELECT * FROM feishu_op_records) sub LIMIT 0")
        expect([d.name for d in cur.description] == [c for c, _ in FEISHU_COLS] and cur.fetchall() == [],
               "LIMIT 0 probe: wrong columns or rows")
        got = fetch(f"SELECT * FROM (SELECT * FROM feishu_op_records WHERE work_item_id = {truth.longest}) sub LIMIT 5")
        want = truth.feishu_rows([truth.longest])
        expect(len(got) == 5 and not collections.Counter(got) - collections.Counter(want), "LIMIT 5: wrong rows")
        n = api_requests("feishu")
        expect(n <= 1, f"{n} API requests for a LIMIT 0 probe and LIMIT 5 over {len(want)} records")
        return f"{n} request"
    check(P + "LIMIT 0 probe without ids, LIMIT 5 over the longest history in one request", limit_probes)

    # 5. cancel while the API is slow
    def cancel():
        sim("POST", "/_sim/config", {"delay_ms": 3000})
        timer = threading.Timer(0.5, conn.cancel)
        started = time.monotonic()
        timer.start()
        try:
            cur.execute("SELECT count(*) FROM feishu_op_records WHERE work_item_id = %s", (truth.ids[0],))
            raise CheckFailed("the query was not cancelled")
        except psycopg2.Error as e:
            elapsed = time.monotonic() - started
            expect(e.pgcode == "57014", f"SQLSTATE {e.pgcode}: {e}")
        finally:
            timer.join()
            sim("POST", "/_sim/config", {"delay_ms": 0})
        expect(elapsed < 2.5, f"the cancel took {elapsed:.1f} s")
        got = fetch("SELECT * FROM feishu_op_records WHERE work_item_id = %s", (truth.ids[1],))
        same_rows(got, truth.feishu_rows([truth.ids[1]]))
        return f"cancelled after {elapsed:.2f} s"
    check(P + "connection.cancel() during a slow request: 57014, then the connection works", cancel)

    # 6. ids past 2^53
    def big_ids():
        for i in truth.big_ids:
            got = fetch("SELECT * FROM feishu_op_records WHERE work_item_id = %s", (i,))
            same_rows(got, truth.feishu_rows([i]))
            expect(all(type(r[1]) is int and r[1] == i for r in got), f"ids read {[r[1] for r in got]}, not {i}")
        return ", ".join(map(str, truth.big_ids))
    check(P + "work item ids past 2^53 arrive exact", big_ids)

    # 7. joins with local tables, as BI tools write them
    window = (f"r.operation_time >= '{from_ms(truth.t1).isoformat()}'::timestamptz "
              f"AND r.operation_time < '{from_ms(truth.t2).isoformat()}'::timestamptz")
    feishu_5 = truth.feishu_rows(truth.ids_5, truth.t1, truth.t2)
    for name, sql, want in [
            ("JOIN my_items (5 ids) with a 12-day window",
             f"SELECT r.* FROM my_items m JOIN feishu_op_records r ON r.work_item_id = m.id WHERE {window}",
             feishu_5),
            ("work_item_id IN (SELECT id FROM my_items)",
             f"SELECT r.* FROM feishu_op_records r WHERE r.work_item_id IN (SELECT id FROM my_items) AND {window}",
             feishu_5),
            ("EXISTS (SELECT 1 FROM my_items ...)",
             "SELECT r.* FROM feishu_op_records r "
             f"WHERE EXISTS (SELECT 1 FROM my_items m WHERE m.id = r.work_item_id) AND {window}",
             feishu_5),
            ("JOIN my_issues (5 ids) with huawei_issue_records",
             "SELECT r.* FROM my_issues m JOIN huawei_issue_records r ON r.issue_id = m.id",
             truth.huawei_rows(truth.issues_5))]:
        check(P + name, lambda: same_rows(fetch(sql), want))

    # the same 12 days of 120 work items, and the API requests made for them
    want_120 = truth.feishu_rows(truth.ids_120, truth.t1, truth.t2)
    counts = {}

    def counted(form, sql):
        sim("POST", "/_sim/reset")
        same_rows(fetch(sql), want_120)
        counts[form] = api_requests("feishu")
        return f"{counts[form]} API requests"
    check(P + "= ANY (ARRAY(SELECT id FROM my_items_120)) with a 12-day window",
          lambda: counted("any", "SELECT r.* FROM feishu_op_records r "
                          f"WHERE r.work_item_id = ANY (ARRAY(SELECT id FROM my_items_120)) AND {window}"))

    def join_120():
        counted("join", f"SELECT r.* FROM my_items_120 m JOIN feishu_op_records r ON r.work_item_id = m.id WHERE {window}")
        expect("any" in counts, "no count for the = ANY (ARRAY(...)) form")
        expect(counts["join"] <= counts["any"],
               f"the join made {counts['join']} API requests, = ANY (ARRAY(...)) {counts['any']}")
        return f"{counts['join']} API requests, = ANY (ARRAY(...)) {counts['any']}"
    check(P + "JOIN my_items_120 with a 12-day window, no more requests than = ANY (ARRAY(...))", join_120)
    conn.close()


def array_time_runs(truth):
    """13 runs of (ids, start, end): 4 work items, and a window from the day
    of the middle record of theirs, 10 + k days long."""
    runs = []
    for k in range(13):
        ids = [truth.ids[(4 * k + j) % len(truth.ids)] for j in range(4)]
        times = sorted(r["operation_time"] for r in truth.feishu if r["work_item_id"] in ids)
        start = times[len(times) // 2] // DAY_MS * DAY_MS
        runs.append((ids, start, start + (10 + k) * DAY_MS))
    return runs


if __name__ == "__main__":
    main()
