#!/usr/bin/env python3
"""The peer of bench/new_connection.py: a well-written Python asyncio client
that reads Feishu Project operation records and COPYs them into a
PostgreSQL table, planned as the API reference describes it (not as
oprec_fdw plans), so that oprec_fdw can be timed against what a good engineer
writes from that reference.

    peer_asyncio.py --url URL --ids 1001-1120 --lower-ms MS --upper-ms MS
                    [--project-key proj_alpha] [--in-flight 8|64] [--mode new|same]
                    [--plugin-id ID --plugin-secret SECRET --user-key KEY]
                    [--dsn DSN] [--table bench_peer_rows] [--regular-table] [--json]

What it sends (the API reference, /work/shared/api/feishu-op-record-list.txt):
  - one plugin token (POST /open_api/authen/plugin_token), then the list
    call (POST /open_api/op_record/work_item/list) with X-PLUGIN-TOKEN and
    X-USER-KEY, page_size 200 (the API's maximum);
  - the ids deduplicated and sorted, in batches of 50 (the API's maximum);
  - the time range [lower, upper] (inclusive milliseconds), clipped to the
    history the API serves (2024-07-02 00:00+08) and to an hour past now
    (as oprec_fdw clips it, so that both read the same rows), cut into
    consecutive half-open 7-day windows [start, end) (the API's longest
    window); with neither bound, each batch once without start/end;
  - one chain per batch x window, all started at once (--in-flight bounds
    how many requests are out), each following start_from while has_more:
    list requests = batches x windows + the further cursor pages;
  - a batch refused with 30005 (unknown work item) is asked for again
    without the id named, or in halves when none is named.
There is no other plan: oprec_fdw may choose differently (it walks a batch's
whole history instead of windows when it expects that to be quicker), so
the two sides' request counts may differ; their rows may not.
Every record is checked against the range (and its window: a record on a
window's end belongs to the next one), converted to the columns of the
foreign table feishu_op_records, and the rows are COPYed (text format, built
in memory) into a table in one transaction, committed once.

--in-flight N: aiohttp TCPConnector(limit=N) and a semaphore of N around
every request.  --mode new: a fresh aiohttp session (new TCP connections, a
new token), timed from its creation to the commit.  --mode same: two runs in
one process with the same session and token; the second is timed (the table
of the first is dropped between them, untimed; with --wait the process says
when the first is done and waits for a line on stdin, so that a benchmark
can clear the simulator's request log in between).  The PostgreSQL connection
is made before the clock starts (as the benchmark's oprec_fdw side has its
connection made already).

With --json one line of JSON is printed: ms, rows, the requests of the timed
run (and of the untimed first run in mode same), the batch x window chains
planned, a client-side timeline
(ms from the start of the timed run to sending the token request and the
first and last list requests, and to the last answer), the peak memory of
this process and of its PostgreSQL backend.
"""

import argparse
import asyncio
import datetime
import io
import json
import os
import re
import sys
import time

import aiohttp
import psycopg2

LIST_PATH = "/open_api/op_record/work_item/list"
TOKEN_PATH = "/open_api/authen/plugin_token"

MAX_IDS = 50                          # ids per list request
PAGE_SIZE = 200                       # the API's largest page
WEEK_MS = 7 * 86400 * 1000            # the API's longest window
HISTORY_START_MS = 1719849600000      # 2024-07-02 00:00:00+08: nothing older is served
CLOCK_SKEW_MS = 3600 * 1000           # windows never end later than an hour past now
MAX_RETRIES = 5

WORK_ITEM_NOT_FOUND = 30005
TOKEN_REFUSED = (10022, 10211)
PASSING = (10429, 50006)              # quota and server errors pass when sent again

# The columns of the foreign table feishu_op_records (bench/objects.sql), each
# the record's member of the same name (src/api/feishu.c).
COLUMNS = ("project_key", "work_item_id", "work_item_type_key", "operation_time",
           "operator", "operator_type", "operation_type", "op_record_module",
           "source_type", "source", "record_contents")
TABLE_DDL = ("project_key text, work_item_id bigint, work_item_type_key text, "
             "operation_time timestamptz, operator text, operator_type text, "
             "operation_type text, op_record_module text, source_type text, source text, "
             "record_contents jsonb")

EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t"})


class ApiError(Exception):
    def __init__(self, message, code=None, status=None):
        super().__init__(message)
        self.code = code
        self.status = status


class UnknownWorkItem(Exception):
    def __init__(self, item_id):
        super().__init__(f"unknown work item {item_id}")
        self.item_id = item_id


class Chain:
    """One request chain: a batch of ids with a window [start, end), or
    without time range when the query has none."""
    __slots__ = ("ids", "start", "end")

    def __init__(self, ids, start=None, end=None):
        self.ids = ids
        self.start = start
        self.end = end


def parse_ids(text):
    """'1001-1120,5000' or '@file' (ids separated by blanks or commas)."""
    if text.startswith("@"):
        with open(text[1:]) as f:
            text = f.read()
    ids = []
    for part in re.split(r"[\s,]+", text.strip()):
        if not part:
            continue
        if "-" in part:
            lo, hi = part.split("-", 1)
            ids.extend(range(int(lo), int(hi) + 1))
        else:
            ids.append(int(part))
    return ids


def plan(ids, lower_ms, upper_ms, now_ms):
    """(chains, lower, upper): every batch of 50 ids x every 7-day window."""
    keys = sorted({i for i in ids if i is not None and 1 <= i <= 2 ** 63 - 1})
    if not keys:
        return [], None, None
    batches = [keys[i:i + MAX_IDS] for i in range(0, len(keys), MAX_IDS)]
    if lower_ms is None and upper_ms is None:
        return [Chain(b) for b in batches], None, None
    lower = max(lower_ms, HISTORY_START_MS) if lower_ms is not None else HISTORY_START_MS
    upper = now_ms + CLOCK_SKEW_MS
    if upper_ms is not None:
        upper = min(upper_ms, upper)
    if lower > upper:
        return [], lower, upper
    windows = [(start, min(start + WEEK_MS, upper + 1))
               for start in range(lower, upper + 1, WEEK_MS)]
    return [Chain(b, start, end) for b in batches for start, end in windows], lower, upper


def copy_text(value):
    return value.translate(COPY_ESCAPES)


def text_field(value):
    """A text column: a JSON string as is, another scalar as its JSON text."""
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return copy_text(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    return copy_text(json.dumps(value, ensure_ascii=False, separators=(",", ":")))


def time_field(ms):
    if ms is None:
        return "\\N"
    return (EPOCH + datetime.timedelta(milliseconds=ms)).isoformat()


class FeishuPeer:
    """An aiohttp session (with its token) that reads records; reusable."""

    def __init__(self, url, plugin_id, plugin_secret, user_key, in_flight):
        self.url = url.rstrip("/")
        self.plugin_id = plugin_id
        self.plugin_secret = plugin_secret
        self.user_key = user_key
        self.in_flight = in_flight
        self.session = None
        self.token = None
        self.semaphore = None
        self.reset_counters()

    def reset_counters(self, clock_start=None):
        self.clock_start = clock_start if clock_start is not None else time.perf_counter()
        self.token_requests = 0
        self.list_requests = 0
        self.chains = 0             # batch x window chains planned (before any 30005 split)
        self.token_sent_ms = None
        self.first_list_ms = None
        self.last_list_ms = None
        self.last_answer_ms = None
        self.retries = {}           # why requests were sent again: count

    def _since(self):
        return (time.perf_counter() - self.clock_start) * 1000

    async def open(self):
        connector = aiohttp.TCPConnector(limit=self.in_flight)
        self.session = aiohttp.ClientSession(
            connector=connector, json_serialize=json.dumps,
            timeout=aiohttp.ClientTimeout(total=60, connect=10))
        self.semaphore = asyncio.Semaphore(self.in_flight)

    async def close(self):
        if self.session is not None:
            await self.session.close()
            self.session = None

    async def _post(self, path, body, headers):
        """(HTTP status, JSON answer) of one POST, within the semaphore."""
        data = json.dumps(body, separators=(",", ":")).encode()
        async with self.semaphore:
            async with self.session.post(self.url + path, data=data, headers=headers) as answer:
                raw = await answer.read()
                status = answer.status
        self.last_answer_ms = self._since()
        try:
            return status, json.loads(raw)
        except ValueError:
            raise ApiError(f"{path}: HTTP {status}, not JSON: {raw[:200]!r}", status=status)

    async def get_token(self):
        self.token_requests += 1
        if self.token_sent_ms is None:
            self.token_sent_ms = self._since()
        status, answer = await self._post(
            TOKEN_PATH, {"plugin_id": self.plugin_id, "plugin_secret": self.plugin_secret,
                         "type": 0}, {"Content-Type": "application/json"})
        token = ((answer or {}).get("data") or {}).get("token")
        if status != 200 or not token:
            raise ApiError(f"the plugin token was not issued: HTTP {status} {answer}", status=status)
        self.token = token
        return token

    async def list_page(self, project_key, chain, cursor):
        body = {"project_key": project_key, "work_item_ids": chain.ids}
        if chain.start is not None:
            body["start"], body["end"] = chain.start, chain.end
        body["page_size"] = PAGE_SIZE
        if cursor:
            body["start_from"] = cursor
        renewed = False
        for attempt in range(MAX_RETRIES + 1):
            if self.token is None:
                await self.get_token()
            self.list_requests += 1
            now = self._since()
            if self.first_list_ms is None:
                self.first_list_ms = now
            self.last_list_ms = now
            try:
                status, answer = await self._post(
                    LIST_PATH, body, {"Content-Type": "application/json",
                                      "X-PLUGIN-TOKEN": self.token, "X-USER-KEY": self.user_key})
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                reason = type(exc).__name__
                self.retries[reason] = self.retries.get(reason, 0) + 1
                if attempt == MAX_RETRIES:
                    raise ApiError(f"list request failed: {exc!r}") from exc
                await asyncio.sleep(0.1 * 2 ** attempt)
                continue
            code = answer.get("err_code") if isinstance(answer, dict) else None
            if not code and isinstance(answer, dict) and isinstance(answer.get("err"), dict):
                code = answer["err"].get("code")
            if code in TOKEN_REFUSED and not renewed:
                renewed = True
                self.token = None
                continue
            if code == WORK_ITEM_NOT_FOUND:
                found = re.search(r"(\d+)", str(answer.get("err_msg") or ""))
                raise UnknownWorkItem(int(found.group(1)) if found else None)
            if code in PASSING or status >= 500 or status == 429:
                reason = f"HTTP {status} {code}"
                self.retries[reason] = self.retries.get(reason, 0) + 1
                if attempt == MAX_RETRIES:
                    raise ApiError(f"list request refused: HTTP {status} {answer}", code, status)
                await asyncio.sleep(0.1 * 2 ** attempt)
                continue
            if code or status != 200 or not isinstance(answer.get("data"), dict):
                raise ApiError(f"list request refused: HTTP {status} {str(answer)[:300]}",
                               code, status)
            return answer["data"]
        raise ApiError("list request: out of retries")

    async def read_chain(self, project_key, chain, lower, upper, out, missing):
        """Every page of a chain; rows appended to out (COPY text lines)."""
        cursor = None
        while True:
            try:
                data = await self.list_page(project_key, chain, cursor)
            except UnknownWorkItem as exc:
                if exc.item_id in chain.ids:
                    missing.append(exc.item_id)
                    parts = [[i for i in chain.ids if i != exc.item_id]]
                elif len(chain.ids) > 1:
                    half = (len(chain.ids) + 1) // 2
                    parts = [chain.ids[:half], chain.ids[half:]]
                else:
                    missing.extend(chain.ids)
                    parts = []
                await asyncio.gather(*(
                    self.read_chain(project_key, Chain(p, chain.start, chain.end),
                                    lower, upper, out, missing)
                    for p in parts if p))
                return
            records = data.get("op_records") or []
            has_more = data.get("has_more") is True
            self.convert(project_key, chain, records, lower, upper, out)
            if not has_more:
                return
            cursor = data.get("start_from")
            if not cursor:
                raise ApiError("more records announced without a cursor")

    @staticmethod
    def convert(project_key, chain, records, lower, upper, out):
        single = chain.ids[0] if len(chain.ids) == 1 else None
        for rec in records:
            t = rec.get("operation_time")
            if lower is not None and (not isinstance(t, int) or t < lower or t > upper):
                continue
            if chain.start is not None and not chain.start <= t < chain.end:
                continue            # on the window's end: the next window's
            item = rec.get("work_item_id", single)
            contents = rec.get("record_contents")
            out.append("\t".join((
                text_field(rec.get("project_key", project_key)),
                "\\N" if item is None else str(item),
                text_field(rec.get("work_item_type_key")),
                time_field(t),
                text_field(rec.get("operator")),
                text_field(rec.get("operator_type")),
                text_field(rec.get("operation_type")),
                text_field(rec.get("op_record_module")),
                text_field(rec.get("source_type")),
                text_field(rec.get("source")),
                "\\N" if contents is None else copy_text(
                    json.dumps(contents, ensure_ascii=False, separators=(",", ":"))),
            )))

    async def fetch(self, project_key, ids, lower_ms, upper_ms):
        """(COPY lines, missing ids) of every record of ids in the range."""
        now_ms = int(time.time() * 1000)
        chains, lower, upper = plan(ids, lower_ms, upper_ms, now_ms)
        self.chains = len(chains)
        if self.token is None and chains:
            await self.get_token()          # one token before the chains start
        out, missing = [], []
        await asyncio.gather(*(self.read_chain(project_key, c, lower, upper, out, missing)
                               for c in chains))
        return out, missing


def copy_rows(db, table, lines, temporary=True):
    """Create the table, COPY the rows into it, commit once."""
    cur = db.cursor()
    cur.execute(f"CREATE {'TEMP ' if temporary else ''}TABLE {table} ({TABLE_DDL})")
    buf = io.StringIO("\n".join(lines) + ("\n" if lines else ""))
    cur.copy_expert(f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN", buf)
    db.commit()
    return len(lines)


def drop_table(db, table):
    cur = db.cursor()
    cur.execute(f"DROP TABLE IF EXISTS {table}")
    db.commit()


def vmhwm_mb(text):
    found = re.search(r"VmHWM:\s+(\d+)", text)
    return round(int(found.group(1)) / 1024, 1) if found else None


async def run(args):
    ids = parse_ids(args.ids)
    db = psycopg2.connect(args.dsn)
    drop_table(db, args.table)
    peer = FeishuPeer(args.url, args.plugin_id, args.plugin_secret, args.user_key, args.in_flight)
    first_run = None
    try:
        if args.mode == "same":
            # the untimed run whose session and token the timed one reuses
            peer.reset_counters()
            await peer.open()
            lines, _ = await peer.fetch(args.project_key, ids, args.lower_ms, args.upper_ms)
            copy_rows(db, args.table, lines, not args.regular_table)
            first_run = {"token": peer.token_requests, "list": peer.list_requests,
                         "rows": len(lines), "retries": peer.retries}
            drop_table(db, args.table)
            if args.wait:
                # the caller resets the simulator's log (and reads its
                # counters) between the runs, then writes a line
                print(json.dumps({"first_run": first_run}), flush=True)
                await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        started_unix = time.time()
        started = time.perf_counter()
        peer.reset_counters(started)
        if args.mode == "new":
            await peer.open()
        lines, missing = await peer.fetch(args.project_key, ids, args.lower_ms, args.upper_ms)
        rows = copy_rows(db, args.table, lines, not args.regular_table)
        ms = (time.perf_counter() - started) * 1000
    finally:
        await peer.close()
    backend_mb = None
    try:
        cur = db.cursor()
        cur.execute("SELECT pg_read_file('/proc/self/status')")
        backend_mb = vmhwm_mb(cur.fetchone()[0])
        db.commit()
    except psycopg2.Error:
        db.rollback()
    db.close()
    with open("/proc/self/status") as f:
        own_mb = vmhwm_mb(f.read())
    return {"ms": round(ms, 2), "rows": rows, "mode": args.mode, "in_flight": args.in_flight,
            "started_unix": started_unix,
            "token_requests": peer.token_requests, "list_requests": peer.list_requests,
            "chains": peer.chains,
            "retries": peer.retries,
            "first_run": first_run, "missing_ids": sorted(set(missing)),   # once per window
            "timeline": {"token_sent": peer.token_sent_ms, "first_list_sent": peer.first_list_ms,
                         "last_list_sent": peer.last_list_ms, "last_answer": peer.last_answer_ms},
            "peer_mb": own_mb, "backend_mb": backend_mb}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("OPREC_SIM_URL"), required=False)
    parser.add_argument("--plugin-id", default="MII_SIM_PLUGIN")
    parser.add_argument("--plugin-secret", default="sim-plugin-secret")
    parser.add_argument("--user-key", default="7491126018028090001")
    parser.add_argument("--project-key", default="proj_alpha")
    parser.add_argument("--ids", required=True, help="e.g. 1001-1120 or 1,2,3 or @file")
    parser.add_argument("--lower-ms", type=int, help="inclusive lower bound, epoch ms")
    parser.add_argument("--upper-ms", type=int, help="inclusive upper bound, epoch ms")
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument("--mode", choices=("new", "same"), default="new")
    parser.add_argument("--dsn", default="", help="libpq connection string (default: PG* env)")
    parser.add_argument("--table", default="bench_peer_rows")
    parser.add_argument("--regular-table", action="store_true",
                        help="a regular table (kept) instead of a temporary one")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--wait", action="store_true",
                        help="mode same: after the first run print its JSON line and wait for "
                             "a line on stdin before the timed run")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("--url (or OPREC_SIM_URL) is required")
    result = asyncio.run(run(args))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{result['rows']} rows in {result['ms']:.1f} ms, {result['list_requests']} list "
              f"requests ({result['chains']} chains), {result['token_requests']} token requests "
              f"(mode {args.mode}, "
              f"in flight {args.in_flight})")
        if result["missing_ids"]:
            print(f"unknown work items: {sorted(result['missing_ids'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
