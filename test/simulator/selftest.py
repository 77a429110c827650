#!/usr/bin/python3
"""Self-check of the oprec API simulator.

Starts oprec_sim.py on a free port, exercises every documented rule over HTTP
(urllib / http.client / raw sockets) and prints "N passed, M failed".
Exit status is non-zero when anything failed.

    /usr/bin/python3 test/simulator/selftest.py [-v]
"""

import base64
import calendar
import collections
import http.client as http_client
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True   # keep the source tree free of __pycache__
sys.path.insert(0, HERE)

import dataset  # noqa: E402
import huawei as hw  # noqa: E402  (its signer doubles as the test client's signer)

VERBOSE = "-v" in sys.argv
BASE = HOSTPORT = None
PASSED = FAILED = 0

FEISHU_STATIC = "p-static-sim-token"
USER_KEY = "7491126018028090001"
HW_STATIC = "MIIsim-static-huawei-token"
HW_PROJECT = dataset.HUAWEI_PROJECT_MAIN
LIST = "/open_api/op_record/work_item/list"
TOKEN = "/open_api/authen/plugin_token"
RECORD = "/v2/issues/get-record"
IAM = "/v3/auth/tokens"
EDGE = dataset.FEISHU_EDGE_BASE_MS
WEEK = dataset.WEEK_MS
MIN_MS = dataset.FEISHU_MIN_SERVED_MS


# --------------------------------------------------------------------------
# Tiny test harness
# --------------------------------------------------------------------------

def check(name, condition, detail=""):
    global PASSED, FAILED
    if condition:
        PASSED += 1
        if VERBOSE:
            print(f"ok   {name}")
    else:
        FAILED += 1
        print(f"FAIL {name} {detail}")
    return condition


class Reply:
    def __init__(self, status, headers, raw):
        self.status = status
        self.headers = headers
        self.raw = raw
        self.text = raw.decode("utf-8", "replace")
        try:
            self.json = json.loads(self.text)
        except ValueError:
            self.json = None

    def __repr__(self):
        return f"<{self.status} {self.text[:300]}>"


def http(method, path, body=None, headers=None, raw=None, timeout=30):
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    headers = dict(headers or {})
    if data is not None:
        headers.setdefault("Content-Type", "application/json")
    req = urllib.request.Request(BASE + path, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Reply(resp.status, resp.headers, resp.read())
    except urllib.error.HTTPError as err:
        return Reply(err.code, err.headers, err.read())


def reset():
    r = http("POST", "/_sim/reset")
    assert r.status == 200 and r.json == {"ok": True}, r


def configure(**values):
    r = http("POST", "/_sim/config", values)
    assert r.status == 200, r
    return r


def request_log():
    r = http("GET", "/_sim/requests")
    return [json.loads(line) for line in r.text.splitlines()]


def jsonl(path):
    r = http("GET", path)
    return [json.loads(line) for line in r.text.splitlines()]


def feishu_error(r, status, code):
    return (r.status == status and isinstance(r.json, dict) and r.json.get("err_code") == code
            and r.json.get("err", {}).get("code") == code and r.json.get("data") is None)


def issue_feishu_token():
    r = http("POST", TOKEN, {"plugin_id": "MII_SIM_PLUGIN",
                             "plugin_secret": "sim-plugin-secret", "type": 0})
    assert r.status == 200, r
    return r.json["data"]["token"]


def flist(body, token=FEISHU_STATIC, user_key=USER_KEY, raw=None):
    headers = {}
    if token is not None:
        headers["X-PLUGIN-TOKEN"] = token
    if user_key is not None:
        headers["X-USER-KEY"] = user_key
    return http("POST", LIST, body, headers, raw=raw)


def feishu_pages(body, token=FEISHU_STATIC):
    """All pages of one listing: [(request start_from, data)]."""
    pages, cursor = [], ""
    while True:
        r = flist(dict(body, start_from=cursor), token=token)
        assert r.status == 200 and r.json["err_code"] == 0, r
        pages.append((cursor, r.json["data"]))
        if not r.json["data"]["has_more"]:
            return pages
        cursor = r.json["data"]["start_from"]
        assert len(pages) < 5000, "runaway paging"


def feishu_all(body, token=FEISHU_STATIC):
    return [rec for _, data in feishu_pages(body, token) for rec in data["op_records"]]


def hw_get(query, token=HW_STATIC, headers=None):
    headers = dict(headers or {})
    if token is not None:
        headers["X-Auth-Token"] = token
    qs = query if isinstance(query, str) else urllib.parse.urlencode(query)
    return http("GET", RECORD + "?" + qs, headers=headers)


def sdk_date(offset_s=0):
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() + offset_s))


def hw_signed(query, ak=hw.AK, sk=hw.SK, extra=None, signed=None, date_offset=0,
              tamper=False, drop_date=False):
    qs = urllib.parse.urlencode(query)
    headers = {"Host": HOSTPORT, "X-Sdk-Date": sdk_date(date_offset)}
    headers.update(extra or {})
    names = signed or sorted(h.lower() for h in headers)
    auth = hw.sign_request(ak, sk, "GET", RECORD, qs, headers, b"", names)
    if tamper:
        auth = auth[:-1] + ("0" if auth[-1] != "0" else "1")
    headers["Authorization"] = auth
    if drop_date:
        del headers["X-Sdk-Date"]
    return http("GET", RECORD + "?" + qs, headers=headers)


def hw_error(r, status, code):
    return r.status == status and isinstance(r.json, dict) and r.json.get("error_code") == code


def hw_all(project_id, issue_id, limit=100):
    out, offset = [], 0
    while True:
        r = hw_get({"project_id": project_id, "issue_id": issue_id, "limit": limit,
                    "offset": offset})
        assert r.status == 200, r
        out.extend(r.json["result"]["record"])
        offset += limit
        if offset >= r.json["result"]["journals_total"] or offset > hw.MAX_OFFSET:
            return out, r.json["result"]["journals_total"]


def expected_page_len(page, size, remaining):
    if page % 3 == 1:
        return min(remaining, max(0, size // 2 - 1))
    return min(remaining, size)


# --------------------------------------------------------------------------
# Server basics
# --------------------------------------------------------------------------

def test_basics(startup_line):
    check("startup line", startup_line.startswith("oprec simulator listening on http://127.0.0.1:"),
          startup_line)
    r = http("GET", "/_sim/health")
    check("health", r.status == 200 and r.text == "ok", r)

    reset()
    r = http("GET", "/nope")
    check("unknown path is 404 JSON", r.status == 404 and isinstance(r.json, dict), r)
    r = http("GET", LIST)
    check("wrong method is 405", r.status == 405, r)
    check("X-Tt-Logid on every Feishu-path answer", len(r.headers.get("X-Tt-Logid", "")) == 20)
    r = http("GET", "/_sim/raise")
    check("handler exception gives 500 JSON", r.status == 500 and "error" in r.json, r)
    check("server survives a handler exception", http("GET", "/_sim/health").status == 200)
    log = request_log()
    check("other paths are logged, control paths are not",
          [e["api"] for e in log] == ["other", "feishu"], log)

    # Keep-alive: two requests on one connection, Content-Length always present.
    conn = http_client.HTTPConnection("127.0.0.1", int(HOSTPORT.split(":")[1]), timeout=10)
    body = json.dumps({"project_key": "proj_alpha", "work_item_ids": [1001]})
    hdrs = {"X-PLUGIN-TOKEN": FEISHU_STATIC, "X-USER-KEY": USER_KEY,
            "Content-Type": "application/json"}
    conn.request("POST", LIST, body, hdrs)
    r1 = conn.getresponse()
    r1.read()
    sock = conn.sock
    conn.request("POST", LIST, body, hdrs)
    r2 = conn.getresponse()
    r2.read()
    check("keep-alive reuses the connection",
          r1.status == r2.status == 200 and sock is not None and conn.sock is sock)
    check("Content-Length sent", r2.getheader("Content-Length") is not None)
    # Chunked request body.
    conn.request("POST", LIST, iter([body[:10].encode(), body[10:].encode()]), hdrs,
                 encode_chunked=True)
    r3 = conn.getresponse()
    check("chunked request body accepted", r3.status == 200 and json.loads(r3.read())["err_code"] == 0)
    conn.close()

    # Expect: 100-continue with a body over 1 KB (what libcurl does).
    big = json.dumps({"project_key": "proj_alpha", "work_item_ids": [1001],
                      "operator": ["x" * 1500]}).encode()
    with socket.create_connection(("127.0.0.1", int(HOSTPORT.split(":")[1])), timeout=10) as s:
        head = (f"POST {LIST} HTTP/1.1\r\nHost: {HOSTPORT}\r\nContent-Type: application/json\r\n"
                f"X-PLUGIN-TOKEN: {FEISHU_STATIC}\r\nX-USER-KEY: {USER_KEY}\r\n"
                f"Expect: 100-continue\r\nContent-Length: {len(big)}\r\n\r\n")
        s.sendall(head.encode())
        interim = b""
        while b"\r\n\r\n" not in interim:
            chunk = s.recv(4096)
            if not chunk:
                break
            interim += chunk
        check("Expect: 100-continue answered with 100", interim.startswith(b"HTTP/1.1 100"), interim)
        s.sendall(big)
        reply = interim.split(b"\r\n\r\n", 1)[1]
        while b"\r\n\r\n" not in reply:
            reply += s.recv(4096)
        head_part, rest = reply.split(b"\r\n\r\n", 1)
        length = int([l for l in head_part.split(b"\r\n") if l.lower().startswith(b"content-length")][0]
                     .split(b":")[1])
        while len(rest) < length:
            rest += s.recv(65536)
        check("final answer after 100-continue",
              head_part.startswith(b"HTTP/1.1 200") and json.loads(rest)["err_code"] == 0, head_part)


# --------------------------------------------------------------------------
# Control endpoints
# --------------------------------------------------------------------------

def test_control():
    reset()
    r = http("POST", "/_sim/config", {"no_such_key": 1})
    check("config: unknown key -> 400", r.status == 400, r)
    r = http("POST", "/_sim/config", {"feishu_qps": "fast"})
    check("config: bad type -> 400", r.status == 400, r)
    r = http("POST", "/_sim/config", raw=b"{oops")
    check("config: bad JSON -> 400", r.status == 400, r)
    r = http("POST", "/_sim/config", {"fail_next": {"path": "x", "status": 500}})
    check("config: fail_next needs body or raw", r.status == 400, r)
    configure(feishu_qps=3, huawei_max_limit=7)
    cfg = http("GET", "/_sim/config").json
    check("config merges keys", cfg["feishu_qps"] == 3 and cfg["huawei_max_limit"] == 7
          and cfg["feishu_end_inclusive"] is True, cfg)
    reset()
    cfg = http("GET", "/_sim/config").json
    check("reset restores defaults", cfg == {
        "feishu_end_inclusive": True, "feishu_qps": 15, "feishu_token_ttl": 7200,
        "feishu_repeat_cursor": False, "huawei_max_limit": 100, "huawei_qps": 0,
        "delay_ms": 0, "fail_next": None}, cfg)
    check("reset clears the log", request_log() == [])


# --------------------------------------------------------------------------
# Feishu
# --------------------------------------------------------------------------

def test_feishu_token():
    reset()
    r = http("POST", TOKEN, {"plugin_id": "MII_SIM_PLUGIN", "plugin_secret": "sim-plugin-secret",
                             "type": 0})
    tok = (r.json or {}).get("data", {}).get("token", "")
    check("plugin_token success shape", r.status == 200 and r.json["error"] == {"code": 0, "msg": "success"}
          and r.json["data"]["expire_time"] == 7200 and len(tok) == 34 and tok.startswith("p-")
          and all(c in "0123456789abcdef" for c in tok[2:]), r)
    logid = r.headers.get("X-Tt-Logid", "")
    check("X-Tt-Logid is 20 hex", len(logid) == 20 and all(c in "0123456789abcdef" for c in logid), logid)
    r = http("POST", TOKEN, {"plugin_id": "MII_SIM_PLUGIN", "plugin_secret": "wrong", "type": 0})
    check("plugin_token wrong secret -> 400 10211", r.status == 400 and r.json["data"] is None
          and r.json["error"]["code"] == 10211, r)
    r = http("POST", TOKEN, {"plugin_id": "nobody", "plugin_secret": "sim-plugin-secret"})
    check("plugin_token wrong id -> 400 10211", r.status == 400 and r.json["error"]["code"] == 10211, r)
    r = http("POST", TOKEN, {"plugin_id": "MII_SIM_PLUGIN"})
    check("plugin_token missing field -> 400 20005", r.status == 400 and r.json["error"]["code"] == 20005, r)
    r = http("POST", TOKEN, raw=b"not json")
    check("plugin_token bad JSON -> 400 9999", r.status == 400 and r.json["error"]["code"] == 9999, r)
    configure(feishu_token_ttl=60)
    r = http("POST", TOKEN, {"plugin_id": "MII_SIM_PLUGIN", "plugin_secret": "sim-plugin-secret",
                             "type": 0})
    check("expire_time follows feishu_token_ttl", r.json["data"]["expire_time"] == 60, r)


def test_feishu_auth():
    reset()
    body = {"project_key": "proj_alpha", "work_item_ids": [1001]}
    check("missing token -> 401 10021", feishu_error(flist(body, token=None), 401, 10021))
    check("unknown token -> 401 10022", feishu_error(flist(body, token="p-" + "0" * 32), 401, 10022))
    r = flist({"bad": 1}, token=None)
    check("auth is checked before the body", feishu_error(r, 401, 10021), r)
    check("missing X-USER-KEY -> 403 10211", feishu_error(flist(body, user_key=None), 403, 10211))
    check("non-digit X-USER-KEY -> 403 10211", feishu_error(flist(body, user_key="12a4"), 403, 10211))
    r = flist(body, token="p-" + "0" * 32)
    check("error responses carry X-Tt-Logid", len(r.headers.get("X-Tt-Logid", "")) == 20)
    check("error body shape", set(r.json) >= {"err", "err_code", "err_msg", "data"}
          and r.json["err"]["msg"] == r.json["err_msg"] == "token check failed", r)

    token = issue_feishu_token()
    r = flist(body, token=token)
    check("issued token works", r.status == 200 and r.json["err_code"] == 0
          and r.json["err"] == {} and r.json["err_msg"] == "", r)
    check("static token works", flist(body).status == 200)
    http("POST", "/_sim/expire_tokens")
    check("expire_tokens -> issued token 401 10022", feishu_error(flist(body, token=token), 401, 10022))
    check("static token survives expire_tokens", flist(body).json["err_code"] == 0)
    fresh = issue_feishu_token()
    check("tokens issued after expire_tokens work", flist(body, token=fresh).json["err_code"] == 0)
    reset()
    check("reset clears forced expiry", flist(body, token=token).json["err_code"] == 0)
    configure(feishu_token_ttl=0)
    short = issue_feishu_token()
    check("token past its ttl -> 401 10022", feishu_error(flist(body, token=short), 401, 10022))
    log = request_log()
    check("log token classes (feishu)",
          [e["token"] for e in log if e["api"] == "feishu"] == ["issued", "expired"], log)


def test_feishu_rate_limit():
    reset()
    body = {"project_key": "proj_alpha", "work_item_ids": [1001]}
    statuses = [flist(body).status for _ in range(16)]
    check("default feishu_qps 15 per rolling second", statuses[:15] == [200] * 15
          and statuses[15] == 429, statuses)
    time.sleep(1.05)
    reset()
    configure(feishu_qps=3)
    token = issue_feishu_token()
    results = [flist(body, token=token) for _ in range(4)]
    check("4th request within 1 s -> 429 10429",
          [r.status for r in results[:3]] == [200] * 3 and feishu_error(results[3], 429, 10429),
          results[3])
    check("rate limit applies before body validation",
          feishu_error(flist({"bogus": 1}, token=token), 429, 10429))
    check("rate limit is per token", flist(body).status == 200)
    time.sleep(1.05)
    check("window rolls after 1 s", flist(body, token=token).status == 200)
    configure(feishu_qps=0)
    check("feishu_qps 0 = unlimited", all(flist(body).status == 200 for _ in range(20)))


def test_feishu_validation():
    reset()
    configure(feishu_qps=0)
    base = {"project_key": "proj_alpha", "work_item_ids": [1001]}
    good = lambda **kw: dict(base, **kw)
    drop = lambda key: {k: v for k, v in base.items() if k != key}
    day = 86400000
    cases = [
        ("body not JSON", None, b"{nope", 9999),
        ("body is a list", [1001], None, 9999),
        ("unknown key", good(foo=1), None, 9999),
        ("project_key missing", drop("project_key"), None, 20005),
        ("project_key empty", good(project_key=""), None, 20005),
        ("project_key not string", good(project_key=5), None, 20005),
        ("work_item_ids missing", drop("work_item_ids"), None, 20005),
        ("work_item_ids empty", good(work_item_ids=[]), None, 20005),
        ("work_item_ids strings", good(work_item_ids=["1001"]), None, 20006),
        ("work_item_ids float", good(work_item_ids=[1001.0]), None, 20006),
        ("work_item_ids bool", good(work_item_ids=[True]), None, 20006),
        ("work_item_ids not list", good(work_item_ids=1001), None, 20006),
        ("work_item_ids duplicate", good(work_item_ids=[1001, 1001]), None, 20006),
        ("work_item_ids over 50", good(work_item_ids=list(range(1001, 1052))), None, 20028),
        ("page_size string", good(page_size="10"), None, 20006),
        ("page_size 0", good(page_size=0), None, 20006),
        ("page_size float", good(page_size=1.5), None, 20006),
        ("page_size 201", good(page_size=201), None, 20002),
        ("start alone", good(start=EDGE), None, 20005),
        ("end alone", good(end=EDGE), None, 20005),
        ("start 12 digits", good(start=174078720000, end=EDGE), None, 20013),
        ("end 14 digits", good(start=EDGE, end=17407872000000), None, 20013),
        ("start string", good(start=str(EDGE), end=EDGE + day), None, 20013),
        ("start float", good(start=float(EDGE), end=EDGE + day), None, 20013),
        ("start > end", good(start=EDGE + 1, end=EDGE), None, 20013),
        ("window over 7 days", good(start=EDGE, end=EDGE + WEEK + 1), None, 20013),
        ("start before 2024-07-02", good(start=MIN_MS - 1, end=MIN_MS + day), None, 20013),
        ("operator empty list", good(operator=[]), None, 20006),
        ("operator not list", good(operator=USER_KEY), None, 20006),
        ("operator non-string", good(operator=[7491126018028090001]), None, 20006),
        ("operator_type bad value", good(operator_type=["robot"]), None, 20006),
        ("source_type bad value", good(source_type=["user"]), None, 20006),
        ("operation_type bad value", good(operation_type=["edit"]), None, 20006),
        ("op_record_module bad value", good(op_record_module=["x_mod"]), None, 20006),
        ("source empty list", good(source=[]), None, 20006),
        ("start_from not string", good(start_from=5), None, 20006),
        ("start_from garbage", good(start_from="garbage!"), None, 20006),
        ("loop-cursor when not configured", good(start_from="loop-cursor"), None, 20006),
        ("work item of other project", good(work_item_ids=[1001, 2001]), None, 30005),
        ("unknown work item", good(work_item_ids=[424242]), None, 30005),
    ]
    for name, body, raw, code in cases:
        r = flist(body, raw=raw)
        check(f"validation: {name} -> 200 err_code {code}", feishu_error(r, 200, code), r)
    r = flist(good(foo=1))
    check("unknown key named in message", "foo" in r.json["err_msg"], r)
    r = flist(good(work_item_ids=[1001, 2001]))
    check("30005 names the id", r.json["err_msg"] == "work item not found: 2001", r)
    r = flist(good(start=MIN_MS - 1, end=MIN_MS + day))
    check("pre-2024-07-02 message", "2024-07-02" in r.json["err_msg"], r)
    ok_cases = [
        ("page_size 200", good(page_size=200)),
        ("exactly 7 day window", good(start=EDGE, end=EDGE + WEEK)),
        ("start == end", good(start=EDGE, end=EDGE)),
        ("start at 2024-07-02", good(start=MIN_MS, end=MIN_MS + day)),
        ("all filters valid", good(operator=[USER_KEY, ""], operator_type=list(dataset.FEISHU_OPERATOR_TYPES),
                                   source_type=["auto"], source=["auto_8842"],
                                   operation_type=list(dataset.FEISHU_OPERATION_TYPES),
                                   op_record_module=list(dataset.FEISHU_MODULES))),
        ("start_from empty", good(start_from="")),
        ("proj_beta item", {"project_key": "proj_beta", "work_item_ids": [2001]}),
        ("50 ids", good(work_item_ids=list(range(1001, 1051)))),
    ]
    for name, body in ok_cases:
        r = flist(body)
        check(f"valid: {name}", r.status == 200 and r.json["err_code"] == 0, r)


def test_feishu_data_and_paging(start_s):
    reset()
    configure(feishu_qps=0)
    truth = jsonl("/_sim/truth/feishu")
    by_item = collections.defaultdict(list)
    for rec in truth:
        by_item[rec["work_item_id"]].append(rec)
    check("truth: only served records", all(r["operation_time"] >= MIN_MS for r in truth))
    check("truth: sorted by item then time",
          [(r["work_item_id"], r["operation_time"]) for r in truth]
          == sorted((r["work_item_id"], r["operation_time"]) for r in truth))
    r = http("GET", "/_sim/truth/feishu")
    check("truth keeps big ids exact", b'"work_item_id":9007199254740993' in r.raw)
    check("truth is raw UTF-8", "修改了标题：支付流程优化" in r.text)

    # Every listed item answers exactly its truth, oldest first.
    for item in (1001, 1002, 1200, 1300, 5000, 9007199254740993, 9007199254740995, 1013, 1120):
        got = feishu_all({"project_key": "proj_alpha", "work_item_ids": [item], "page_size": 200})
        check(f"list == truth for item {item}", got == by_item.get(item, []),
              f"{len(got)} vs {len(by_item.get(item, []))}")
    got = feishu_all({"project_key": "proj_beta", "work_item_ids": list(range(2001, 2011))})
    check("proj_beta list == truth", sorted(map(json.dumps, got)) ==
          sorted(json.dumps(r) for i in range(2001, 2011) for r in by_item[i]))

    check("item 5000 has 3000 records", len(by_item[5000]) == 3000)
    check("item 5000 starts 2025-01-01Z",
          1735689600000 <= by_item[5000][0]["operation_time"] < 1735689600000 + 3600000)
    check("items 1013 and 1120 serve nothing", not by_item[1013] and not by_item[1120])
    check("edge item serves 30 records", len(by_item[1200]) == 30)
    edge_times = {r["operation_time"] for r in by_item[1200]}
    check("edge record at 1719849600000 served, 1719849599999 not",
          MIN_MS in edge_times and MIN_MS - 1 not in edge_times)
    check("edge records exist at every week edge +-1 ms",
          all({e - 1, e, e + 1} <= edge_times for e in (EDGE + k * WEEK for k in range(9))))
    check("midnight edge records", {1740844800000, 1740873600000} <= edge_times)

    # Recent item 1300: relative to the server start, whole seconds.
    recent = [r["operation_time"] for r in by_item[1300]]
    newest = max(recent)
    check("recent item: newest is about now-1h",
          abs(newest - (start_s - 3600) * 1000) <= 120000 and newest % 1000 == 0, recent)
    check("recent item offsets", sorted(newest - t for t in recent)
          == [0, (2 * 86400 - 3600) * 1000, (5 * 86400 - 3600) * 1000,
              (10 * 86400 - 3600) * 1000, (40 * 86400 - 3600) * 1000], recent)

    # Special strings on 1001/1002.
    text = json.dumps(by_item[1001] + by_item[1002], ensure_ascii=False)
    for needle, what in (("修改了标题：支付流程优化", "Chinese"), ('\\"ok\\"', "double quote"),
                         ("\\\\", "backslash"), ("\\n", "newline"), ("\\t", "tab"), ("🚀", "emoji")):
        check(f"special strings: {what}", needle in text)
    check("records with empty record_contents",
          sum(1 for r in by_item[1001] + by_item[1002] if r["record_contents"] == []) >= 2)
    r = flist({"project_key": "proj_alpha", "work_item_ids": [1001], "page_size": 200})
    check("list answer is raw UTF-8", "修改了标题：支付流程优化" in r.text)
    r = flist({"project_key": "proj_alpha", "work_item_ids": [9007199254740993]})
    check("list keeps big ids exact", b"9007199254740993" in r.raw
          and r.json["data"]["op_records"][0]["work_item_id"] == 9007199254740993)
    check("some records lack work_item_type_key",
          any("work_item_type_key" not in r for r in truth))
    check("some records have source/source_type, most do not",
          0 < sum("source_type" in r for r in truth) < len(truth) / 2)
    check("some operators are empty", any(r["operator"] == "" for r in truth))
    check("all field values valid", all(
        r["operator_type"] in dataset.FEISHU_OPERATOR_TYPES
        and r["operation_type"] in dataset.FEISHU_OPERATION_TYPES
        and r["op_record_module"] in dataset.FEISHU_MODULES for r in truth))

    # Multi-item order: operation_time then record sequence (ties 1001 before 1002).
    got = feishu_all({"project_key": "proj_alpha", "work_item_ids": [1002, 1001], "page_size": 7})
    times = [r["operation_time"] for r in got]
    check("multi-item: oldest first", times == sorted(times))
    check("multi-item: same records as truth", sorted(map(json.dumps, got))
          == sorted(map(json.dumps, by_item[1001] + by_item[1002])))
    tie = dataset._ms("2025-05-20T10:04:00+08:00")
    tied = [r["work_item_id"] for r in got if r["operation_time"] == tie]
    check("ties broken by record sequence", tied == [1001, 1001, 1002], tied)

    # Paging pattern, totals and cursors.
    body = {"project_key": "proj_alpha", "work_item_ids": [1001, 1002, 1004, 1005]}
    expected_total = sum(len(by_item[i]) for i in (1001, 1002, 1004, 1005))
    for size in (1, 2, 3, 4, 7, 50, 200):
        pages = feishu_pages(dict(body, page_size=size))
        offset, pattern_ok = 0, True
        for k, (_, data) in enumerate(pages):
            want = expected_page_len(k, size, expected_total - offset)
            offset += len(data["op_records"])
            more = offset < expected_total
            if (len(data["op_records"]) != want or data["total"] != expected_total
                    or data["has_more"] != more or (data["start_from"] == "") == more):
                pattern_ok = False
        check(f"paging pattern page_size {size}", pattern_ok and offset == expected_total,
              [len(d["op_records"]) for _, d in pages])
        if size <= 3:
            check(f"page_size {size}: empty page with has_more",
                  pages[1][1]["op_records"] == [] and pages[1][1]["has_more"] is True)
    pages = feishu_pages(dict(body, page_size=5))
    cursor = pages[1][0]
    r = flist(dict(body, page_size=5, start_from=cursor))
    check("cursor is reusable (stateless)", r.json["data"] == pages[1][1])
    r = flist(dict(body, page_size=5, work_item_ids=[1005, 1004, 1002, 1001], start_from=cursor))
    check("cursor accepts the same ids in another order", r.json["err_code"] == 0, r)
    for name, changed in (("page_size", {"page_size": 6}), ("ids", {"work_item_ids": [1001, 1002]}),
                          ("filter", {"operation_type": ["modify"]}),
                          ("window", {"start": EDGE, "end": EDGE + 1000}),
                          ("project", {"project_key": "proj_beta"})):
        r = flist({**body, "page_size": 5, "start_from": cursor, **changed})
        check(f"cursor rejected for another {name}", feishu_error(r, 200, 20006), r)
    payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    payload["o"] += 1
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    check("forged cursor rejected", feishu_error(flist(dict(body, page_size=5, start_from=forged)),
                                                 200, 20006))
    empty = flist({"project_key": "proj_alpha", "work_item_ids": [1013]}).json["data"]
    check("empty answer", empty == {"has_more": False, "start_from": "", "op_records": [], "total": 0},
          empty)

    # Filters: records without the field never match.
    ids = list(range(1001, 1051))
    pool = [r for i in ids for r in by_item[i]]
    for field, values in (("operator_type", ["auto"]), ("source_type", ["plugin"]),
                          ("source", ["auto_8842"]), ("operator", [""]),
                          ("operation_type", ["modify", "complete"]),
                          ("op_record_module", ["field_mod"])):
        got = feishu_all({"project_key": "proj_alpha", "work_item_ids": ids, field: values,
                          "page_size": 200})
        want = [r for r in pool if field in r and r[field] in values]
        check(f"filter {field}={values}", len(got) == len(want) > 0
              and all(r.get(field) in values for r in got), f"{len(got)} vs {len(want)}")
    got = feishu_all({"project_key": "proj_alpha", "work_item_ids": ids, "operator_type": ["user"],
                      "op_record_module": ["field_mod"], "page_size": 200})
    want = [r for r in pool if r["operator_type"] == "user" and r["op_record_module"] == "field_mod"]
    check("filters combine with AND", len(got) == len(want), f"{len(got)} vs {len(want)}")

    # Windows on the edge item: start inclusive, end inclusive by default.
    def window(start, end):
        return [r["operation_time"] for r in feishu_all(
            {"project_key": "proj_alpha", "work_item_ids": [1200], "start": start, "end": end})]
    e1, e2 = EDGE + WEEK, EDGE + 2 * WEEK
    check("window [E1,E2] inclusive end", window(e1, e2) == [e1, e1 + 1, e2 - 1, e2])
    check("window [E0,E1]", window(EDGE, e1) == [EDGE, EDGE + 1, 1740844800000, 1740873600000,
                                                 e1 - 1, e1])
    check("window start == end", window(e1, e1) == [e1])
    check("window at 2024-07-02", window(MIN_MS, MIN_MS + 1000) == [MIN_MS])
    configure(feishu_end_inclusive=False)
    check("window [E1,E2) exclusive end", window(e1, e2) == [e1, e1 + 1, e2 - 1])
    check("consecutive exclusive windows cover every edge record once",
          sum(len(window(EDGE + k * WEEK, EDGE + (k + 1) * WEEK)) for k in range(-1, 9))
          == sum(1 for t in edge_times if EDGE - WEEK <= t < EDGE + 9 * WEEK))


def test_feishu_repeat_cursor():
    reset()
    configure(feishu_repeat_cursor=True)
    body = {"project_key": "proj_alpha", "work_item_ids": [1001], "page_size": 5}
    first = flist(body).json["data"]
    check("repeat cursor: has_more and loop-cursor",
          first["has_more"] is True and first["start_from"] == "loop-cursor", first)
    again = flist(dict(body, start_from="loop-cursor")).json["data"]
    check("repeat cursor: same page again", again == first)
    last = flist({"project_key": "proj_alpha", "work_item_ids": [1013]}).json["data"]
    check("repeat cursor even on empty answers", last["has_more"] is True
          and last["start_from"] == "loop-cursor")


# --------------------------------------------------------------------------
# Huawei
# --------------------------------------------------------------------------

def iam_body(name="sim_user", password="sim-password", domain="sim_domain", region="cn-north-4"):
    return {"auth": {"identity": {"methods": ["password"], "password": {"user": {
        "name": name, "password": password, "domain": {"name": domain}}}},
        "scope": {"project": {"name": region}}}}


def test_huawei_iam_and_token_auth():
    reset()
    r = http("POST", IAM, iam_body())
    token = r.headers.get("X-Subject-Token", "")
    check("IAM success 201 with X-Subject-Token", r.status == 201 and token.startswith("MII")
          and 2900 <= len(token) <= 3100, (r.status, len(token)))
    tok = (r.json or {}).get("token", {})
    check("IAM body shape", tok.get("methods") == ["password"] and tok.get("expires_at", "").endswith("Z")
          and "issued_at" in tok, r)
    exp = calendar.timegm(time.strptime(tok["expires_at"][:19], "%Y-%m-%dT%H:%M:%S"))
    check("IAM token valid 24 h", abs(exp - time.time() - 86400) < 120, tok)
    token2 = http("POST", IAM, iam_body()).headers.get("X-Subject-Token")
    check("IAM tokens differ", token2 != token)
    for name, body, status in (("wrong password", iam_body(password="x"), 401),
                               ("wrong user", iam_body(name="x"), 401),
                               ("wrong domain", iam_body(domain="x"), 401),
                               ("wrong scope", iam_body(region="cn-north-1"), 400)):
        r = http("POST", IAM, body)
        check(f"IAM {name} -> {status}", r.status == status and r.json["error"]["code"] == status, r)
    r = http("POST", IAM, iam_body(region="cn-north-1"))
    check("IAM scope message", r.json == {"error": {"code": 400, "message": "project scope is invalid",
                                                    "title": "Bad Request"}}, r)
    r = http("POST", IAM, iam_body(password="x"))
    check("IAM credential message", r.json["error"]["message"] == "The username or password is wrong.")
    check("IAM bad body -> 400", http("POST", IAM, {"auth": {}}).status == 400)

    q = {"project_id": HW_PROJECT, "issue_id": 9175005}
    check("issued IAM token works", hw_get(q, token=token).status == 200)
    check("static IAM token works", hw_get(q).status == 200)
    r = hw_get(q, token="MIIbogus")
    check("unknown token -> 401 PM.10001002", hw_error(r, 401, "PM.10001002")
          and r.json["error_msg"] == "invalid token", r)
    check("no credentials -> 401", hw_get(q, token=None).status == 401)
    http("POST", "/_sim/expire_tokens")
    check("expired IAM token -> 401 PM.10001002", hw_error(hw_get(q, token=token), 401, "PM.10001002"))
    check("static IAM token survives expire_tokens", hw_get(q).status == 200)
    reset()
    check("reset clears forced expiry (IAM)", hw_get(q, token=token).status == 200)
    log = request_log()
    check("log token classes (huawei tokens)", [e["token"] for e in log] == ["issued"], log)


def test_aksk():
    # The FACTS.md test vector (Go SDK): GET /path?limit=1, signed header x-sdk-date only.
    sig = hw.signature("SecretKey", "GET", "/path", "limit=1",
                       {"x-sdk-date": "20060102T150405Z"}, ["x-sdk-date"], b"")
    check("AK/SK test vector", sig == "5a2ce64c865e0e6046321c6f3d5a77ba8413eeaf355c3166c03d58d02ac79624", sig)
    check("canonical query sorts and encodes",
          hw.canonical_query("b=2&a=1&a=0&c=x+y&d=%E4%B8%AD~") == "a=0&a=1&b=2&c=x%20y&d=%E4%B8%AD~")
    check("canonical URI ends with /", hw.canonical_uri("/v2/issues/get-record") == "/v2/issues/get-record/"
          and hw.canonical_uri("/a b/c") == "/a%20b/c/")
    check("canonical headers leave a blank line",
          "\nhost:h\nx-sdk-date:d\n\nhost;x-sdk-date\n" in hw.canonical_request(
              "GET", "/", "", {"host": "h", "x-sdk-date": "d"}, ["host", "x-sdk-date"], b""))

    reset()
    q = [("project_id", HW_PROJECT), ("issue_id", "9175005"), ("limit", "5"), ("type", "scrum")]
    r = hw_signed(q)
    check("AK/SK signed request works", r.status == 200 and r.json["status"] == "success", r)
    r = hw_signed(list(reversed(q)))
    check("AK/SK query order on the wire does not matter", r.status == 200, r)
    temp_hdr = {"X-Security-Token": hw.SECURITY_TOKEN}
    check("temporary AK with signed security token",
          hw_signed(q, hw.TEMP_AK, hw.TEMP_SK, temp_hdr).status == 200)
    fails = [
        ("temporary AK without security token", dict(ak=hw.TEMP_AK, sk=hw.TEMP_SK)),
        ("temporary AK with wrong security token",
         dict(ak=hw.TEMP_AK, sk=hw.TEMP_SK, extra={"X-Security-Token": "nope"})),
        ("temporary AK, security token not signed",
         dict(ak=hw.TEMP_AK, sk=hw.TEMP_SK, extra=temp_hdr, signed=["host", "x-sdk-date"])),
        ("host not signed", dict(signed=["x-sdk-date"])),
        ("x-sdk-date not signed", dict(signed=["host"])),
        ("x-sdk-date header missing", dict(drop_date=True)),
        ("bad signature", dict(tamper=True)),
        ("wrong secret key", dict(sk="not-the-key")),
        ("unknown AK", dict(ak="SIMAKUNKNOWN", sk=hw.SK)),
    ]
    for name, kwargs in fails:
        reset()
        r = hw_signed(q, **kwargs)
        check(f"AK/SK {name} -> 401 APIG.0301", hw_error(r, 401, "APIG.0301")
              and "verify aksk signature fail" in r.json["error_msg"], r)
    reset()
    r = hw_signed(q, date_offset=-16 * 60)
    check("X-Sdk-Date 16 min old -> signature expired",
          hw_error(r, 401, "APIG.0301") and r.json["error_msg"] == "signature expired", r)
    r = hw_signed(q, date_offset=16 * 60)
    check("X-Sdk-Date 16 min ahead -> signature expired", r.json["error_msg"] == "signature expired", r)
    check("X-Sdk-Date 14 min off is fine", hw_signed(q, date_offset=-14 * 60).status == 200)

    reset()
    for _ in range(5):
        hw_signed(q, tamper=True)
    r = hw_signed(q)
    check("5 failures lock the AK", hw_error(r, 401, "APIG.0301") and "locked" in r.json["error_msg"], r)
    check("other AK not locked", hw_signed(q, hw.TEMP_AK, hw.TEMP_SK, temp_hdr).status == 200)
    reset()
    check("reset clears the lock", hw_signed(q).status == 200)
    for _ in range(4):
        hw_signed(q, tamper=True)
    check("4 failures do not lock", hw_signed(q).status == 200)
    for _ in range(4):
        hw_signed(q, tamper=True)
    check("success resets the failure count", hw_signed(q).status == 200)
    for _ in range(5):
        hw_signed(q, date_offset=-3600)
    check("expired signatures do not count towards the lock", hw_signed(q).status == 200)
    log = request_log()
    classes = collections.Counter(e["token"] for e in log)
    check("log token classes aksk / aksk-invalid",
          set(classes) == {"aksk", "aksk-invalid"}, classes)
    check("no Authorization value in the log", "SDK-HMAC" not in http("GET", "/_sim/requests").text)


def test_huawei_rate_limit():
    reset()
    q = {"project_id": HW_PROJECT, "issue_id": 100}
    check("huawei_qps 0 = unlimited", all(hw_get(q).status == 200 for _ in range(25)))
    configure(huawei_qps=2)
    results = [hw_get(q) for _ in range(3)]
    check("3rd request within 1 s -> 429 APIGW.0308",
          [r.status for r in results[:2]] == [200, 200] and hw_error(results[2], 429, "APIGW.0308")
          and results[2].json["error_msg"] == "The throttling threshold has been reached", results[2])
    check("huawei rate limit is per credential",
          hw_signed([("project_id", HW_PROJECT), ("issue_id", "100")]).status == 200)
    time.sleep(1.05)
    check("huawei window rolls", hw_get(q).status == 200)


def test_huawei_validation():
    reset()
    ok = {"project_id": HW_PROJECT, "issue_id": "100"}
    with_ = lambda **kw: dict(ok, **kw)
    without = lambda key: {k: v for k, v in ok.items() if k != key}
    bad = [
        ("project_id missing", without("project_id"), "PM.02175006"),
        ("project_id uppercase", with_(project_id=HW_PROJECT.upper()), "PM.02175006"),
        ("project_id 31 chars", with_(project_id=HW_PROJECT[:31]), "PM.02175006"),
        ("project unknown", with_(project_id="f" * 32), "PM.02152005"),
        ("issue_id missing", without("issue_id"), "PM.02175006"),
        ("issue_id letters", with_(issue_id="12a"), "PM.02175006"),
        ("issue_id 11 digits", with_(issue_id="12345678901"), "PM.02175006"),
        ("issue_id negative", with_(issue_id="-1"), "PM.02175006"),
        ("limit 0", with_(limit="0"), "PM.02174103"),
        ("limit 101", with_(limit="101"), "PM.02174103"),
        ("limit text", with_(limit="ten"), "PM.02174103"),
        ("offset not multiple", with_(limit="10", offset="5"), "PM.02174103"),
        ("offset over 10000", with_(limit="10", offset="10010"), "PM.02174103"),
        ("offset negative", with_(offset="-10"), "PM.02174103"),
        ("type kanban", with_(type="kanban"), "PM.02175006"),
        ("unknown parameter", with_(_="1753080349806"), "PM.02175006"),
    ]
    for name, query, code in bad:
        check(f"huawei validation: {name} -> 400 {code}", hw_error(hw_get(query), 400, code))
    r = hw_get(urllib.parse.urlencode(ok) + "&issue_id=101")
    check("huawei validation: repeated parameter -> 400", hw_error(r, 400, "PM.02175006"), r)
    for name, query in (("limit 100", with_(limit="100")), ("offset 10000", with_(limit="100", offset="10000")),
                        ("type scrum", with_(type="scrum")), ("limit 1", with_(limit="1", offset="7"))):
        check(f"huawei valid: {name}", hw_get(query).status == 200)
    configure(huawei_max_limit=1000)
    check("huawei_max_limit raises the cap", hw_get(with_(limit="500")).status == 200)
    configure(huawei_max_limit=20)
    check("huawei_max_limit lowers the cap", hw_error(hw_get(with_(limit="21")), 400, "PM.02174103"))
    r = hw_get(with_(issue_id="999"))
    check("unknown issue -> empty", r.status == 200 and r.json["result"]["journals_total"] == 0
          and r.json["result"]["record"] == [], r)


def test_huawei_data(start_s):
    reset()
    truth = jsonl("/_sim/truth/huawei")
    by_issue = collections.defaultdict(list)
    for line in truth:
        by_issue[(line["project_id"], line["issue_id"])].append(line["entry"])

    r = hw_get({"project_id": HW_PROJECT, "issue_id": "9175005", "limit": "10", "offset": "0",
                "type": "scrum"})
    res = r.json["result"]
    check("sample issue: 14 entries, newest first", res["journals_total"] == 14 and len(res["record"]) == 10
          and res["offset"] == 0 and res["limit"] == 10 and r.json["status"] == "success", res)
    first = res["record"][0]
    check("sample issue: first entry as in the reference",
          first["id"] == 11248513 and first["created_on"] == "1752829690000"
          and first["details"][0]["id"] == 15270161 and first["details"][0]["name"] == "due_date"
          and "notes" not in first, first)
    check("sample issue: HTML and Chinese", any("<span style=" in d.get("new_value", "")
                                                for e in res["record"] for d in e["details"]))
    r = hw_get({"project_id": HW_PROJECT, "issue_id": "9175005", "offset": "10"})
    check("default limit 10; last page short", r.json["result"]["limit"] == 10
          and len(r.json["result"]["record"]) == 4)

    for key in sorted(by_issue, key=lambda k: (k[0], k[1])):
        if key[1] == dataset.HUAWEI_HUGE_ISSUE:
            continue
        got, total = hw_all(*key)
        if not check(f"get-record == truth for {key[1]}", got == by_issue[key] and total == len(got)):
            break
    expected = {100 + i for i in range(31)} | {9175005, 3000000001, 4000000000, 5555}
    check("truth covers the documented issues",
          {i for p, i in by_issue if p == HW_PROJECT} | {107, 123} == expected)
    check("second project issues 200..205",
          {i for p, i in by_issue if p == dataset.HUAWEI_PROJECT_SECOND} == set(range(200, 206)))
    check("issue 3000000001 has 25 entries", len(by_issue[(HW_PROJECT, 3000000001)]) == 25)

    huge = by_issue[(HW_PROJECT, 4000000000)]
    check("issue 4000000000 has 10250 entries", len(huge) == 10250)
    r = hw_get({"project_id": HW_PROJECT, "issue_id": "4000000000", "limit": "100", "offset": "10000"})
    check("offset 10000 readable", r.json["result"]["record"] == huge[10000:10100]
          and r.json["result"]["journals_total"] == 10250)
    r = hw_get({"project_id": HW_PROJECT, "issue_id": "4000000000", "limit": "100", "offset": "10100"})
    check("offset 10100 rejected", hw_error(r, 400, "PM.02174103"), r)

    entries = [line["entry"] for line in truth]
    for key, got in by_issue.items():
        stamps = [int(e["created_on"]) for e in got]
        if stamps != sorted(stamps, reverse=True):
            check(f"newest first in {key}", False)
    check("created_on is a string of ms", all(isinstance(e["created_on"], str) and len(e["created_on"]) == 13
                                              for e in entries))
    check("journal_id equals entry id", all(d["journal_id"] == e["id"] for e in entries for d in e["details"]))
    batch_sizes = collections.Counter(e["id"] for e in entries)
    check("batches shared by several entries", max(batch_sizes.values()) > 1)
    check("mostly one detail; some two; some none",
          collections.Counter(min(len(e["details"]), 2) for e in entries)[1] > len(entries) / 2
          and any(len(e["details"]) == 2 for e in entries) and any(e["details"] == [] for e in entries))
    details = [d for e in entries for d in e["details"]]
    check("old_value absent on some, empty on some",
          any("old_value" not in d for d in details) and any(d.get("old_value") == "" for d in details))
    check("notes absent on some", any("notes" not in e for e in entries) and any("notes" in e for e in entries))
    check("operations", {d["operation"] for d in details} == {"新建", "修改", "批量编辑", "删除"})
    check("user id above 2^31", any(e["user"]["id"] > 2 ** 31 for e in entries))
    check("user fields", all(set(e["user"]) == {"id", "name", "first_name", "identifier", "nick_name",
                                                 "image_id"} for e in entries))

    recent = by_issue[(HW_PROJECT, 5555)]
    stamps = [int(e["created_on"]) for e in recent]
    check("issue 5555 within 10 days of start",
          all((start_s - 10 * 86400 - 120) * 1000 <= t <= (start_s + 120) * 1000 for t in stamps), stamps)
    check("issue 5555 has several status changes",
          sum(1 for e in recent for d in e["details"] if d["name"] == "status_id") >= 4)


# --------------------------------------------------------------------------
# Cross-cutting: delay, fault injection, request log
# --------------------------------------------------------------------------

def test_delay():
    reset()
    configure(delay_ms=400)
    body = {"project_key": "proj_alpha", "work_item_ids": [1001]}
    t0 = time.time()
    flist(body)
    check("delay_ms on Feishu list", time.time() - t0 >= 0.38)
    t0 = time.time()
    hw_get({"project_id": HW_PROJECT, "issue_id": 100})
    check("delay_ms on Huawei get-record", time.time() - t0 >= 0.38)
    t0 = time.time()
    issue_feishu_token()
    check("token endpoint not delayed", time.time() - t0 < 0.3)
    timed_out = False
    try:
        urllib.request.urlopen(urllib.request.Request(
            BASE + LIST, data=json.dumps(body).encode(), method="POST",
            headers={"X-PLUGIN-TOKEN": FEISHU_STATIC, "X-USER-KEY": USER_KEY}), timeout=0.1)
    except (socket.timeout, TimeoutError, urllib.error.URLError):
        timed_out = True
    check("client timeout during delay", timed_out)
    check("server fine after a cancelled request", http("GET", "/_sim/health").status == 200)
    log = request_log()
    check("in-flight request already logged", len(log) == 4 and log[-1]["api"] == "feishu", log)
    time.sleep(0.5)
    check("cancelled request's status filled in", request_log()[-1]["status"] == 200)


def test_fail_next():
    reset()
    body = {"project_key": "proj_alpha", "work_item_ids": [1001]}
    fault_body = {"err": {"code": 50006, "msg": "server error"}, "err_code": 50006,
                  "err_msg": "server error", "data": None}
    configure(fail_next={"path": "work_item/list", "count": 2, "status": 500, "body": fault_body,
                         "headers": {"Retry-After": "1"}})
    check("fail_next leaves other paths alone", issue_feishu_token().startswith("p-"))
    r1, r2, r3 = flist(body), flist(body, token=None), flist(body)
    check("fail_next answers N requests", r1.status == r2.status == 500 and r1.json == fault_body
          and r1.headers.get("Retry-After") == "1" and len(r1.headers.get("X-Tt-Logid", "")) == 20)
    check("fail_next then back to normal", r3.status == 200 and r3.json["err_code"] == 0)
    configure(fail_next={"path": "get-record", "status": 200, "raw": "{not json",
                         "headers": {"Content-Type": "text/html"}})
    r = hw_get({"project_id": HW_PROJECT, "issue_id": 100})
    check("fail_next raw body", r.status == 200 and r.text == "{not json"
          and r.headers.get("Content-Type") == "text/html", r)
    check("fail_next count defaults to 1", hw_get({"project_id": HW_PROJECT, "issue_id": 100}).status == 200)
    configure(fail_next={"path": "get-record", "count": 5, "status": 503, "raw": ""})
    configure(fail_next=None)
    check("fail_next null disarms", hw_get({"project_id": HW_PROJECT, "issue_id": 100}).status == 200)
    log = request_log()
    check("injected answers are logged with their status",
          [(e["status"], e["err_code"]) for e in log if e["api"] == "feishu"]
          == [(500, 50006), (500, 50006), (200, 0)], log)


def test_request_log():
    reset()
    token = issue_feishu_token()
    flist({"project_key": "proj_alpha", "work_item_ids": [1001], "page_size": 3}, token=token)
    flist({"project_key": "项目", "work_item_ids": [1001]})
    flist({"project_key": "proj_alpha", "work_item_ids": [1001]}, token="p-nope")
    flist({"project_key": "proj_alpha", "work_item_ids": [1001]}, token=None, user_key=None)
    http("POST", IAM, iam_body())
    hw_get({"project_id": HW_PROJECT, "issue_id": 9175005, "limit": 5})
    hw_get({"project_id": HW_PROJECT, "issue_id": 9175005}, token="MIIbad")
    hw_signed([("project_id", HW_PROJECT), ("issue_id", "100")])
    hw_signed([("project_id", HW_PROJECT), ("issue_id", "100")], tamper=True)
    http("GET", "/_sim/health")
    text = http("GET", "/_sim/requests").text
    lines = text.split("\n")
    check("log is JSON Lines, newline terminated", text.endswith("\n") and lines[-1] == ""
          and len(lines) - 1 == 10, len(lines))
    check("log keeps UTF-8 raw", "项目" in text)
    log = [json.loads(l) for l in lines[:-1]]
    check("log seq in arrival order", [e["seq"] for e in log] == list(range(1, 11)))
    check("log fields", all(set(e) == {"seq", "api", "method", "path", "query", "body", "user_key", "token",
                                       "status", "err_code", "records", "has_more"} for e in log))
    check("log api names", [e["api"] for e in log] == ["feishu_auth", "feishu", "feishu", "feishu", "feishu",
                                                       "huawei_iam", "huawei", "huawei", "huawei", "huawei"])
    check("log token classes", [e["token"] for e in log] == [
        "none", "issued", "static", "invalid", "none", "none", "static", "invalid", "aksk", "aksk-invalid"],
        [e["token"] for e in log])
    check("plugin_secret masked", log[0]["body"]["plugin_secret"] == "***"
          and log[0]["body"]["plugin_id"] == "MII_SIM_PLUGIN")
    user = log[5]["body"]["auth"]["identity"]["password"]["user"]
    check("IAM password masked", user["password"] == "***" and user["name"] == "sim_user", user)
    check("log feishu success", log[1]["status"] == 200 and log[1]["err_code"] == 0 and log[1]["records"] == 3
          and log[1]["has_more"] is True and log[1]["user_key"] == USER_KEY
          and log[1]["body"]["page_size"] == 3 and log[1]["query"] == {}, log[1])
    check("log feishu errors", [(e["status"], e["err_code"]) for e in log[2:5]]
          == [(200, 30005), (401, 10022), (401, 10021)] and log[4]["user_key"] is None)
    check("log huawei success", log[6]["status"] == 200 and log[6]["err_code"] == "" and log[6]["records"] == 5
          and log[6]["has_more"] is None and log[6]["body"] is None
          and log[6]["query"] == {"project_id": HW_PROJECT, "issue_id": "9175005", "limit": "5"}, log[6])
    check("log huawei errors", [(e["status"], e["err_code"]) for e in log[7:10:2]]
          == [(401, "PM.10001002"), (401, "APIG.0301")])
    check("log IAM", log[5]["status"] == 201 and log[5]["err_code"] == "")
    check("no secrets in the log", "sim-plugin-secret" not in text and "sim-password" not in text
          and "MIIsim" not in text)


# --------------------------------------------------------------------------

def free_start():
    sim = os.path.join(HERE, "oprec_sim.py")
    start_s = int(time.time())
    proc = subprocess.Popen([sys.executable, sim, "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    return proc, line, start_s


def main():
    global BASE, HOSTPORT
    proc, line, start_s = free_start()
    if not line.startswith("oprec simulator listening on http://"):
        print("simulator did not start:", line, proc.stderr.read() if proc.poll() is not None else "")
        return 2
    BASE = line.rsplit(" ", 1)[1]
    HOSTPORT = BASE.split("//", 1)[1]
    try:
        for test in (lambda: test_basics(line), test_control, test_feishu_token, test_feishu_auth,
                     test_feishu_rate_limit, test_feishu_validation,
                     lambda: test_feishu_data_and_paging(start_s), test_feishu_repeat_cursor,
                     test_huawei_iam_and_token_auth, test_aksk, test_huawei_rate_limit,
                     test_huawei_validation, lambda: test_huawei_data(start_s), test_delay,
                     test_fail_next, test_request_log):
            try:
                test()
            except Exception as exc:  # a crashed section is one failure, not the end
                import traceback
                traceback.print_exc()
                check(f"section {getattr(test, '__name__', test)} ran", False, repr(exc))
        check("server still healthy at the end", http("GET", "/_sim/health").status == 200)
    finally:
        proc.terminate()
        try:
            out, err = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
    check("nothing else printed on stdout", out.strip() == "", out[:300])
    # Only the deliberate /_sim/raise traceback may appear on stderr.
    check("no unexpected errors on stderr", err.count("Traceback") <= 1
          and (not err or "deliberate failure" in err), err[-2000:])
    print(f"{PASSED} passed, {FAILED} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
