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
import hashlib
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
BASE = HOSTPORT = SIM_PID = None
PASSED = FAILED = 0

FEISHU_STATIC = "p-static-sim-token"
USER_KEY = "7491126018028090001"
HW_STATIC = "MIIsim-static-huawei-token"
HW_PROJECT = dataset.HUAWEI_PROJECT_MAIN
HW_WIDE = dataset.HUAWEI_PROJECT_WIDE
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


def http(method, path, body=None, headers=None, raw=None, timeout=30, base=None):
    """One request on a new connection (urllib closes it), to BASE or `base`."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    headers = dict(headers or {})
    if data is not None:
        headers.setdefault("Content-Type", "application/json")
    req = urllib.request.Request((base or BASE) + path, data=data, method=method, headers=headers)
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


def issue_feishu_token(base=None):
    r = http("POST", TOKEN, {"plugin_id": "MII_SIM_PLUGIN",
                             "plugin_secret": "sim-plugin-secret", "type": 0}, base=base)
    assert r.status == 200, r
    return r.json["data"]["token"]


def flist(body, token=FEISHU_STATIC, user_key=USER_KEY, raw=None, base=None):
    headers = {}
    if token is not None:
        headers["X-PLUGIN-TOKEN"] = token
    if user_key is not None:
        headers["X-USER-KEY"] = user_key
    return http("POST", LIST, body, headers, raw=raw, base=base)


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
        "delay_ms": 0, "fail_next": None, "faults": [], "feishu_token_reported_ttl": None,
        "feishu_token_value": None, "huawei_token_ttl": 86400,
        "feishu_filter_requires_types": True, "feishu_filter_hides_terminated": True,
        "feishu_filter_max_results": None, "feishu_qps_shared": False, "huawei_qps_shared": False,
        "huawei_v4_max_offset": 10000, "edit_during_listing": None,
        "add_records": {"feishu": [], "huawei": []}}, cfg)
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
        if key[1] == dataset.HUAWEI_HUGE_ISSUE or key[0] == HW_WIDE:
            continue   # the wide project's 250 issues: one check in test_wide_data
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
                                       "status", "err_code", "records", "has_more", "fault",
                                       "in_flight", "listener", "connection"} for e in log))
    conns = [e["connection"] for e in log]
    check("log listener main, one new connection per urllib request",
          all(e["listener"] == "main" for e in log) and all(type(k) is int and k > 0 for k in conns)
          and conns == sorted(set(conns)), conns)
    check("log fault null on normal answers", all(e["fault"] is None for e in log))
    check("log in_flight 1 for a sequential client", [e["in_flight"] for e in log] == [1] * 10,
          [e["in_flight"] for e in log])
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
# Faults (the `faults` config key), token behaviour keys, proj_edge numbers
# --------------------------------------------------------------------------

FEISHU_THROTTLE = {"err_code": 10429, "err_msg": "request too frequent",
                   "err": {"code": 10429, "msg": "request too frequent"}, "data": None}
HUAWEI_THROTTLE = {"error_code": "APIGW.0308",
                   "error_msg": "The throttling threshold has been reached: policy user over ratelimit"}
FEISHU_50006 = {"err_code": 50006, "err_msg": "server error",
                "err": {"code": 50006, "msg": "server error"}, "data": None}
HUAWEI_BUSY = {"error_code": "PM.02175000", "error_msg": "System busy"}
LIST_BODY = {"project_key": "proj_alpha", "work_item_ids": [1001]}
HW_QUERY = {"project_id": HW_PROJECT, "issue_id": 100}


def set_faults(*faults, **other):
    return configure(faults=list(faults), **other)


def config_rejected(values):
    r = http("POST", "/_sim/config", values)
    return r.status == 400 and r.json.get("ok") is False and r.json.get("error")


def sim_port():
    return int(HOSTPORT.split(":")[1])


def raw_http(method, path, body=b"", headers=None, timeout=30):
    """One request on a fresh socket: (status, [(name bytes, value bytes)], body bytes).
    Header bytes are kept exactly as sent (no decoding)."""
    head = f"{method} {path} HTTP/1.1\r\nHost: {HOSTPORT}\r\nConnection: close\r\n"
    for name, value in (headers or {}).items():
        head += f"{name}: {value}\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    with socket.create_connection(("127.0.0.1", sim_port()), timeout=timeout) as s:
        s.sendall(head.encode("latin-1") + body)
        data = b""
        while True:
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            data += chunk
    head_part, rest = data.split(b"\r\n\r\n", 1)
    lines = head_part.split(b"\r\n")
    status = int(lines[0].split()[1])
    fields = [tuple(l.split(b": ", 1)) for l in lines[1:]]
    return status, fields, rest


def raw_list(token=FEISHU_STATIC, body=None):
    data = json.dumps(body or LIST_BODY).encode()
    return raw_http("POST", LIST, data, {"X-PLUGIN-TOKEN": token, "X-USER-KEY": USER_KEY,
                                         "Content-Type": "application/json"})


def header_values(fields, name):
    return [v for k, v in fields if k.lower() == name.lower().encode()]


def vm_hwm_kb():
    try:
        with open(f"/proc/{SIM_PID}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def test_fault_config():
    reset()
    bad = [
        ("faults not a list", {"faults": {"path": "list", "kind": "reset"}}),
        ("fault not an object", {"faults": ["list"]}),
        ("path missing", {"faults": [{"kind": "reset"}]}),
        ("path empty", {"faults": [{"path": "", "kind": "reset"}]}),
        ("path not a string", {"faults": [{"path": 5, "kind": "reset"}]}),
        ("control path", {"faults": [{"path": "/_sim/health", "kind": "reset"}]}),
        ("kind missing", {"faults": [{"path": "list"}]}),
        ("kind unknown", {"faults": [{"path": "list", "kind": "explode"}]}),
        ("unknown key", {"faults": [{"path": "list", "kind": "reset", "colour": 1}]}),
        ("key of another kind", {"faults": [{"path": "list", "kind": "throttle", "status": 500}]}),
        ("count and every", {"faults": [{"path": "list", "kind": "reset", "count": 1, "every": 2}]}),
        ("count 0", {"faults": [{"path": "list", "kind": "reset", "count": 0}]}),
        ("every 0", {"faults": [{"path": "list", "kind": "reset", "every": 0}]}),
        ("skip -1", {"faults": [{"path": "list", "kind": "reset", "skip": -1}]}),
        ("skip float", {"faults": [{"path": "list", "kind": "reset", "skip": 1.0}]}),
        ("count bool", {"faults": [{"path": "list", "kind": "reset", "count": True}]}),
        ("header value with LF", {"faults": [{"path": "list", "kind": "reset",
                                              "headers": {"X-A": "a\nb"}}]}),
        ("header value with CR", {"faults": [{"path": "list", "kind": "reset",
                                              "headers": {"X-A": "a\rb"}}]}),
        ("header name with LF", {"faults": [{"path": "list", "kind": "reset",
                                             "headers": {"X-A\nX-B": "1"}}]}),
        ("header name with colon", {"faults": [{"path": "list", "kind": "reset",
                                                "headers": {"X-A:": "1"}}]}),
        ("header value beyond latin-1", {"faults": [{"path": "list", "kind": "reset",
                                                     "headers": {"X-A": "\u4e2d"}}]}),
        ("header value not a string", {"faults": [{"path": "list", "kind": "reset",
                                                   "headers": {"X-A": 1}}]}),
        ("Content-Length header", {"faults": [{"path": "list", "kind": "error",
                                               "headers": {"Content-Length": "5"}}]}),
        ("retry_after words", {"faults": [{"path": "list", "kind": "throttle", "retry_after": "soon"}]}),
        ("retry_after date:x", {"faults": [{"path": "list", "kind": "throttle", "retry_after": "date:x"}]}),
        ("error body and raw", {"faults": [{"path": "list", "kind": "error", "body": {}, "raw": ""}]}),
        ("error status 600", {"faults": [{"path": "list", "kind": "error", "status": 600}]}),
        ("slow without delay_ms", {"faults": [{"path": "list", "kind": "slow"}]}),
        ("slow delay_ms negative", {"faults": [{"path": "list", "kind": "slow", "delay_ms": -1}]}),
        ("template without raw", {"faults": [{"path": "list", "kind": "template"}]}),
        ("template repeat -1", {"faults": [{"path": "list", "kind": "template", "raw": "", "repeat": -1}]}),
        ("template gzip not bool", {"faults": [{"path": "list", "kind": "template", "raw": "",
                                                "gzip": 1}]}),
        ("template latin-1 with U+4E2D", {"faults": [{"path": "list", "kind": "template",
                                                      "raw": "\u4e2d", "encoding": "latin-1"}]}),
        ("endless empty fill", {"faults": [{"path": "list", "kind": "endless", "fill": ""}]}),
        ("paging_loop on get-record", {"faults": [{"path": "get-record", "kind": "paging_loop"}]}),
        ("match empty", {"faults": [{"path": "list", "kind": "reset", "match": ""}]}),
        ("match not a string", {"faults": [{"path": "list", "kind": "reset", "match": 7003}]}),
        ("match null", {"faults": [{"path": "list", "kind": "reset", "match": None}]}),
        ("match over 1000 characters", {"faults": [{"path": "list", "kind": "reset",
                                                    "match": "x" * 1001}]}),
        ("paging_loop cursor_length 0", {"faults": [{"path": "list", "kind": "paging_loop",
                                                     "cursor_length": 0}]}),
    ]
    for name, values in bad:
        check(f"faults config: {name} -> 400", config_rejected(values), values)
    check("rejected faults leave none armed", http("GET", "/_sim/config").json["faults"] == []
          and flist(LIST_BODY).status == 200)

    spec = {"path": "work_item/list", "kind": "throttle", "count": 2, "retry_after": 3}
    r = set_faults(spec)
    check("faults echoed in the config", r.json["config"]["faults"] == [spec], r)
    check("GET /_sim/config shows faults", http("GET", "/_sim/config").json["faults"] == [spec])
    first = flist(LIST_BODY).status
    configure(feishu_qps=50)   # another key: the faults and their counters stay
    statuses = [first] + [flist(LIST_BODY).status for _ in range(2)]
    check("other config keys keep faults and counters", statuses == [429, 429, 200], statuses)
    set_faults(spec)
    check("posting faults again restarts the counters", flist(LIST_BODY).status == 429)
    set_faults({"path": "list", "kind": "throttle"})
    reset()
    check("reset clears faults", http("GET", "/_sim/config").json["faults"] == []
          and flist(LIST_BODY).status == 200)
    set_faults({"path": "list", "kind": "throttle"})
    configure(faults=[])
    check("faults [] disarms", flist(LIST_BODY).status == 200)


def test_fault_selection():
    def run(fault, n, call=lambda: flist(LIST_BODY).status):
        reset()
        set_faults(fault)
        return [call() for _ in range(n)]

    err = {"path": "work_item/list", "kind": "error"}
    got = run(err, 4)
    check("no selection: every matching request", got == [500] * 4, got)
    got = run(dict(err, count=2), 4)
    check("count 2", got == [500, 500, 200, 200], got)
    got = run(dict(err, skip=2), 4)
    check("skip 2 (then forever)", got == [200, 200, 500, 500], got)
    got = run(dict(err, skip=2, count=2), 6)
    check("skip 2 count 2", got == [200, 200, 500, 500, 200, 200], got)
    got = run(dict(err, every=4), 12)
    check("every 4: requests 4, 8, 12",
          [i + 1 for i, s in enumerate(got) if s == 500] == [4, 8, 12], got)
    got = run(dict(err, skip=1, every=2), 7)
    check("skip 1 every 2: requests 3, 5, 7",
          [i + 1 for i, s in enumerate(got) if s == 500] == [3, 5, 7], got)

    reset()
    set_faults(dict(err, path="get-record"))
    check("path is a substring of the request path: other paths untouched",
          flist(LIST_BODY).status == 200 and issue_feishu_token().startswith("p-"))
    check("get-record faulted", hw_get(HW_QUERY).status == 500)
    reset()
    set_faults(dict(err, path="/open_api/"))
    check("a path prefix matches every Feishu call",
          http("POST", TOKEN, {"plugin_id": "x"}).status == 500 and flist(LIST_BODY).status == 500)
    check("control endpoints are never faulted", http("GET", "/_sim/health").status == 200)

    # Several faults: the first whose selection picks the request; every
    # matching fault counts every matching request.
    reset()
    set_faults(dict(err, status=503, count=1), {"path": "list", "kind": "throttle"})
    got = [flist(LIST_BODY).status for _ in range(3)]
    check("first fault in list order wins", got == [503, 429, 429], got)
    reset()
    set_faults(dict(err, count=1), {"path": "list", "kind": "throttle", "count": 1})
    got = [flist(LIST_BODY).status for _ in range(3)]
    check("a list of count-1 faults is a script", got == [500, 429, 200], got)
    reset()
    set_faults(dict(err, count=1), {"path": "list", "kind": "throttle", "skip": 1, "count": 1})
    got = [flist(LIST_BODY).status for _ in range(4)]
    check("a request taken by a fault is not counted by the later ones", got == [500, 200, 429, 200], got)
    log = request_log()
    check("log fault field", [e["fault"] for e in log] == ["error", None, "throttle", None], log)


def test_fault_match():
    reset()
    spec = {"path": "list", "kind": "error", "status": 400, "match": "y" * 1000}
    r = set_faults(spec)
    check("match of 1000 characters accepted and echoed", r.json["config"]["faults"] == [spec], r)

    def body(item):
        return {"project_key": "proj_alpha", "work_item_ids": [item]}

    # Feishu: the work item id is in the body.
    reset()
    set_faults({"path": "list", "kind": "error", "status": 400, "match": "1002",
                "body": {"err_code": 1, "err_msg": "bad"}, "skip": 1, "count": 1})
    got = [flist(body(item)).status for item in (1001, 1002, 1001, 1001, 1002, 1002, 1001)]
    check("match: only matching requests count and are faulted",
          got == [200, 200, 200, 200, 400, 200, 200], got)
    log = request_log()
    check("match: log fault field", [e["fault"] for e in log] == [None] * 4 + ["error", None, None], log)
    reset()
    set_faults({"path": "list", "kind": "error", "match": "1002", "every": 2})
    got = [flist(body(item)).status for item in (1002, 1001, 1001, 1002, 1001, 1002, 1002)]
    check("match: every counts matching requests only", got == [200, 200, 200, 500, 200, 200, 500], got)

    # A request the first fault does not match goes on to the next fault.
    reset()
    set_faults({"path": "list", "kind": "error", "status": 400, "match": "[1002]"},
               {"path": "list", "kind": "throttle", "count": 1})
    got = [flist(body(item)).status for item in (1002, 1001, 1002, 1001)]
    check("match: unmatched requests go on to later faults, taken ones are not counted there",
          got == [400, 429, 400, 200], got)

    # Huawei get-record: the issue id is in the query string (matched as sent).
    reset()
    set_faults({"path": "get-record", "kind": "error", "match": "issue_id=101&"})
    q101 = "issue_id=101&project_id=" + HW_PROJECT
    check("match: huawei query string",
          hw_get(HW_QUERY).status == 200 and hw_get(q101).status == 500
          and hw_get("issue_id=1010&project_id=" + HW_PROJECT).status != 500, q101)
    reset()
    set_faults({"path": "get-record", "kind": "error", "match": "get-record"})
    check("match: the path is not searched", hw_get(HW_QUERY).status == 200)
    reset()
    set_faults({"path": "list", "kind": "throttle", "match": "start_from=abc"})
    check("match: the query string of a POST is searched too",
          http("POST", LIST + "?start_from=abc", LIST_BODY,
               {"X-PLUGIN-TOKEN": FEISHU_STATIC, "X-USER-KEY": USER_KEY}).status == 429
          and flist(LIST_BODY).status == 200)

    # Body as sent, decoded as UTF-8 with errors replaced.
    reset()
    set_faults({"path": "list", "kind": "error", "status": 418, "match": "项目"},
               {"path": "list", "kind": "error", "status": 419, "match": "needle"})
    utf8 = json.dumps({"project_key": "项目", "work_item_ids": [1001]}, ensure_ascii=False).encode()
    escaped = json.dumps({"project_key": "项目", "work_item_ids": [1001]}).encode()
    check("match: UTF-8 body", flist(None, raw=utf8).status == 418)
    check("match: JSON escapes are not undone", flist(None, raw=escaped).status == 200)
    check("match: invalid UTF-8 body still searched",
          flist(None, raw=b'\xff\xfe{"needle": \x80}').status == 419)
    check("match: empty body, no query -> no match", flist(None, raw=b"").status != 419)
    reset()
    set_faults({"path": "list", "kind": "paging_loop", "match": "proj_beta"})
    r1 = flist({"project_key": "proj_beta", "work_item_ids": [2001]})
    r2 = flist(LIST_BODY)
    check("match: works for every kind (paging_loop)",
          r1.json["data"]["op_records"] == [] and r1.json["data"]["has_more"] is True
          and r2.json["data"]["op_records"] != [], (r1, r2))


def in_flight_now():
    return http("GET", "/_sim/in_flight").json


def wait_idle(timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if in_flight_now()["in_flight"] == 0:
            return True
        time.sleep(0.05)
    return False


def parallel(calls):
    """Run the calls from one thread each, all released at once; their results in order."""
    import threading
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        barrier.wait()
        try:
            results[i] = call()
        except Exception as exc:   # a failed call is a result too
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    return threads, results


def test_in_flight():
    reset()
    check("in_flight endpoint idle", in_flight_now() == {"in_flight": 0, "max_in_flight": 0})
    for _ in range(3):
        flist(LIST_BODY)
        hw_get(HW_QUERY)
    issue_feishu_token()
    check("sequential requests: in_flight 1",
          [e["in_flight"] for e in request_log()] == [1] * 7 and in_flight_now()["max_in_flight"] == 1)

    # Four requests at once on a slow API (two per vendor).
    reset()
    configure(delay_ms=400)
    t0 = time.time()
    threads, results = parallel([lambda: flist(LIST_BODY).status, lambda: hw_get(HW_QUERY).status,
                                 lambda: flist(LIST_BODY).status, lambda: hw_get(HW_QUERY).status])
    time.sleep(0.15)
    during = in_flight_now()
    token_ok = issue_feishu_token().startswith("p-")   # not delayed, arrives while 4 are open
    for t in threads:
        t.join(10)
    elapsed = time.time() - t0
    log = request_log()
    check("4 parallel requests all answered, together", results == [200] * 4 and token_ok
          and elapsed < 1.5, (results, elapsed))
    check("4 parallel requests: in_flight 1..4", sorted(e["in_flight"] for e in log[:4]) == [1, 2, 3, 4],
          log)
    check("a request arriving meanwhile counts the 4 open ones (any vendor path)",
          log[4]["api"] == "feishu_auth" and log[4]["in_flight"] == 5, log[4:])
    check("/_sim/in_flight during and after", during == {"in_flight": 4, "max_in_flight": 4}
          and in_flight_now() == {"in_flight": 0, "max_in_flight": 5}, during)
    flist(LIST_BODY)
    check("after them a request is alone again", request_log()[-1]["in_flight"] == 1)

    # Faults: every way an answer ends gives the count back.
    reset()
    set_faults({"path": "list", "kind": "reset", "count": 1},
               {"path": "list", "kind": "slow", "delay_ms": 100, "count": 1},
               {"path": "list", "kind": "error", "count": 1},
               {"path": "list", "kind": "template", "raw": "{}", "count": 1},
               {"path": "list", "kind": "endless", "max_seconds": 5, "count": 1})
    try:
        flist(LIST_BODY)
    except (ConnectionError, http_client.HTTPException, urllib.error.URLError):
        pass
    flist(LIST_BODY)
    flist(LIST_BODY)
    flist(LIST_BODY)
    with socket.create_connection(("127.0.0.1", sim_port()), timeout=10) as s:
        s.sendall(f"POST {LIST} HTTP/1.1\r\nHost: {HOSTPORT}\r\nContent-Length: 0\r\n\r\n".encode())
        s.recv(65536)
        streaming = in_flight_now()["in_flight"]   # the endless body is still being sent
    http("POST", "/_sim/config", raw=b"{not json")
    http("GET", "/nowhere")
    flist(LIST_BODY)
    log = request_log()
    check("faulted answers (reset, slow, error, template, endless), 404: in_flight back to 1",
          [e["fault"] for e in log] == ["reset", "slow", "error", "template", "endless", None, None]
          and [e["in_flight"] for e in log] == [1] * 7 and streaming == 0, (streaming, log))

    # Requests still open across /_sim/reset keep being counted, then end.
    reset()
    configure(delay_ms=600)
    threads, results = parallel([lambda: flist(LIST_BODY).status, lambda: hw_get(HW_QUERY).status])
    time.sleep(0.2)
    reset()
    check("reset: requests still open stay counted", in_flight_now() == {"in_flight": 2, "max_in_flight": 0})
    issue_feishu_token()
    check("reset: a new request counts the ones open across it", request_log()[0]["in_flight"] == 3,
          request_log())
    for t in threads:
        t.join(10)
    check("reset: the old ones end normally", results == [200, 200], results)
    check("reset: counter back to 0, never negative", wait_idle() and in_flight_now()["in_flight"] == 0)
    flist(LIST_BODY)
    check("reset: then 1 again", [e["in_flight"] for e in request_log()] == [3, 1])

    # A client that gives up during delay_ms: counted until the delay is over.
    reset()
    configure(delay_ms=400)
    try:
        urllib.request.urlopen(urllib.request.Request(
            BASE + LIST, data=json.dumps(LIST_BODY).encode(), method="POST",
            headers={"X-PLUGIN-TOKEN": FEISHU_STATIC, "X-USER-KEY": USER_KEY}), timeout=0.1)
    except (socket.timeout, TimeoutError, urllib.error.URLError):
        pass
    check("cancelled request still counted during its delay", in_flight_now()["in_flight"] == 1)
    check("cancelled request ends", wait_idle())
    configure(delay_ms=0)

    # Exceptions (in process): a handler bug and a failure after the answer
    # was built both give the count back exactly once.
    import io
    import oprec_sim
    from common import Request, SimState
    state = SimState(None, None)
    req = Request("POST", LIST, LIST, "", {}, {}, b"{}")
    saved_route, saved_close, saved_err = oprec_sim.API_ROUTES[LIST], oprec_sim.close_log_entry, sys.stderr

    def boom(*args):
        raise RuntimeError("test")

    try:
        sys.stderr = io.StringIO()   # the handler bug's traceback
        oprec_sim.API_ROUTES[LIST] = ("feishu", "POST", boom)
        resp = oprec_sim.dispatch_api(state, req)
        sys.stderr = saved_err
        check("in process: handler exception -> 500, in_flight 0",
              resp.status == 500 and state.in_flight == 0 and state.log[0]["in_flight"] == 1)
        oprec_sim.API_ROUTES[LIST] = saved_route
        oprec_sim.close_log_entry = boom
        try:
            oprec_sim.dispatch_api(state, req)
            raised = False
        except RuntimeError:
            raised = True
        check("in process: exception outside the handler, in_flight 0",
              raised and state.in_flight == 0 and state.log[1]["in_flight"] == 1)
    finally:
        sys.stderr = saved_err
        oprec_sim.API_ROUTES[LIST] = saved_route
        oprec_sim.close_log_entry = saved_close


def test_fault_order_and_rate_limit():
    # delay_ms first, then the faults.
    reset()
    configure(delay_ms=300)
    set_faults({"path": "list", "kind": "throttle", "count": 1})
    t0 = time.time()
    r = flist(LIST_BODY)
    check("delay_ms applies before faults", r.status == 429 and time.time() - t0 >= 0.28)
    # Faults come before authentication.
    reset()
    set_faults({"path": "list", "kind": "throttle", "count": 1})
    check("faults before auth", feishu_error(flist(LIST_BODY, token=None), 429, 10429))
    check("then auth as usual", feishu_error(flist(LIST_BODY, token=None), 401, 10021))
    # Faults come before fail_next, which they do not consume.
    reset()
    configure(fail_next={"path": "list", "status": 502, "raw": "bad gateway"})
    set_faults({"path": "list", "kind": "error", "status": 503, "count": 1})
    got = [flist(LIST_BODY).status for _ in range(3)]
    check("faults before fail_next", got == [503, 502, 200], got)
    # slow: sleeps, then the normal path (fail_next included).
    reset()
    configure(fail_next={"path": "list", "status": 502, "raw": "bad gateway"})
    set_faults({"path": "list", "kind": "slow", "delay_ms": 250, "count": 1})
    t0 = time.time()
    r = flist(LIST_BODY)
    check("slow then fail_next", r.status == 502 and time.time() - t0 >= 0.23, r)
    check("slow logged with its fault and the real status",
          [(e["status"], e["fault"]) for e in request_log()] == [(502, "slow")])

    # Faulted requests never reach the rate limiter; slow ones do.
    reset()
    configure(feishu_qps=2)
    set_faults({"path": "list", "kind": "error", "count": 3})
    got = [flist(LIST_BODY).status for _ in range(6)]
    check("faulted requests do not use the rate limit", got == [500, 500, 500, 200, 200, 429], got)
    time.sleep(1.05)
    reset()
    configure(huawei_qps=1)
    set_faults({"path": "get-record", "kind": "throttle", "count": 2})
    got = [hw_get(HW_QUERY).status for _ in range(4)]
    check("huawei: faulted requests do not use the rate limit", got == [429, 429, 200, 429], got)
    check("the last 429 is the real limiter (not a fault)",
          [e["fault"] for e in request_log()] == ["throttle", "throttle", None, None])
    time.sleep(1.05)
    reset()
    configure(feishu_qps=1)
    set_faults({"path": "list", "kind": "slow", "delay_ms": 10})
    got = [flist(LIST_BODY).status for _ in range(2)]
    check("slow requests are rate limited like normal ones", got == [200, 429], got)
    time.sleep(1.05)


def test_fault_throttle_and_error():
    reset()
    set_faults({"path": "list", "kind": "throttle", "count": 1},
               {"path": "list", "kind": "throttle", "count": 1, "retry_after": 7},
               {"path": "list", "kind": "throttle", "count": 1, "retry_after": "date:120"},
               {"path": "get-record", "kind": "throttle", "count": 1, "retry_after": 0})
    r = flist(LIST_BODY)
    check("throttle feishu: 429 + exact body", r.status == 429 and r.json == FEISHU_THROTTLE, r)
    check("throttle without retry_after: no Retry-After", r.headers.get("Retry-After") is None)
    check("throttle keeps X-Tt-Logid", len(r.headers.get("X-Tt-Logid", "")) == 20)
    r = flist(LIST_BODY)
    check("throttle retry_after 7 -> Retry-After: 7", r.status == 429 and r.headers.get("Retry-After") == "7")
    r = flist(LIST_BODY)
    when = r.headers.get("Retry-After", "")
    try:
        import email.utils
        delta = email.utils.parsedate_to_datetime(when).timestamp() - time.time()
    except (TypeError, ValueError):
        delta = None
    check("throttle retry_after date:120 -> HTTP-date 120 s ahead",
          when.endswith(" GMT") and delta is not None and 115 <= delta <= 121, when)
    r = hw_get(HW_QUERY)
    check("throttle huawei: 429 + exact body", r.status == 429 and r.json == HUAWEI_THROTTLE
          and r.headers.get("Retry-After") == "0" and len(r.headers.get("X-Request-Id", "")) == 32, r)
    check("throttle huawei content type", r.headers.get("Content-Type") == "application/json;charset=UTF-8")
    log = request_log()
    check("throttle logged", [(e["status"], e["err_code"], e["fault"]) for e in log] ==
          [(429, 10429, "throttle")] * 3 + [(429, "APIGW.0308", "throttle")], log)

    reset()
    set_faults({"path": "list", "kind": "error", "count": 1},
               {"path": "list", "kind": "error", "count": 1, "status": 503, "retry_after": 2},
               {"path": "list", "kind": "error", "count": 1, "status": 502, "raw": "<html>502</html>",
                "headers": {"Content-Type": "text/html"}},
               {"path": "list", "kind": "error", "count": 1, "status": 200,
                "body": {"err_code": 0, "data": {"op_records": "nope"}}},
               {"path": "list", "kind": "error", "count": 1, "status": 200,
                "raw": "{\"x\":\"\u00ff\u00fe\"}", "encoding": "latin-1"},
               {"path": "get-record", "kind": "error", "count": 1})
    r = flist(LIST_BODY)
    check("error feishu default: 500 + 50006 body", r.status == 500 and r.json == FEISHU_50006, r)
    r = flist(LIST_BODY)
    check("error status 503 + Retry-After", r.status == 503 and r.json == FEISHU_50006
          and r.headers.get("Retry-After") == "2", r)
    r = flist(LIST_BODY)
    check("error raw + Content-Type header", r.status == 502 and r.raw == b"<html>502</html>"
          and r.headers.get("Content-Type") == "text/html", r)
    r = flist(LIST_BODY)
    check("error JSON body", r.status == 200 and r.json == {"err_code": 0, "data": {"op_records": "nope"}}, r)
    r = flist(LIST_BODY)
    check("error raw latin-1: invalid UTF-8 bytes", r.raw == b'{"x":"\xff\xfe"}', r.raw)
    r = hw_get(HW_QUERY)
    check("error huawei default: 500 PM.02175000 System busy", r.status == 500 and r.json == HUAWEI_BUSY, r)
    log = request_log()
    check("error logged", [(e["status"], e["err_code"], e["fault"]) for e in log] ==
          [(500, 50006, "error"), (503, 50006, "error"), (502, None, "error"), (200, 0, "error"),
           (200, None, "error"), (500, "PM.02175000", "error")], log)


def test_fault_headers():
    reset()
    set_faults({"path": "list", "kind": "error", "count": 1,
                "headers": {"X-Tt-Logid": "\u00ff\u00fe\u0080log", "X-Extra": "caf\u00e9"}},
               {"path": "list", "kind": "slow", "delay_ms": 1, "count": 1,
                "headers": {"x-tt-logid": "slow-id", "Retry-After": "9"}},
               {"path": "get-record", "kind": "throttle", "count": 1,
                "headers": {"x-request-id": "\u00ff", "Retry-After": "\u00ff"}})
    status, fields, _ = raw_list()
    check("header bytes 0xFF 0xFE 0x80 arrive as such",
          header_values(fields, "X-Tt-Logid") == [b"\xff\xfe\x80log"], fields)
    check("latin-1 header value é -> byte 0xE9", header_values(fields, "X-Extra") == [b"caf\xe9"], fields)
    status, fields, body = raw_list()
    check("slow: headers added to the normal answer (name in any case overrides)",
          status == 200 and json.loads(body)["err_code"] == 0
          and header_values(fields, "X-Tt-Logid") == [b"slow-id"]
          and header_values(fields, "Retry-After") == [b"9"], fields)
    status, fields, _ = raw_http("GET", RECORD + "?" + urllib.parse.urlencode(HW_QUERY),
                                 headers={"X-Auth-Token": HW_STATIC})
    check("X-Request-Id overridden (lower-case name), Retry-After byte 0xFF",
          status == 429 and header_values(fields, "X-Request-Id") == [b"\xff"]
          and header_values(fields, "Retry-After") == [b"\xff"], fields)


def test_fault_reset():
    reset()
    set_faults({"path": "list", "kind": "reset", "count": 1})
    outcome = None
    body = json.dumps(LIST_BODY).encode()
    with socket.create_connection(("127.0.0.1", sim_port()), timeout=10) as s:
        s.sendall((f"POST {LIST} HTTP/1.1\r\nHost: {HOSTPORT}\r\nX-PLUGIN-TOKEN: {FEISHU_STATIC}\r\n"
                   f"X-USER-KEY: {USER_KEY}\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body)
        try:
            data = s.recv(4096)
            outcome = "eof" if data == b"" else data
        except ConnectionResetError:
            outcome = "reset"
    check("reset: TCP reset, no answer", outcome == "reset", outcome)
    check("reset: only once (count 1)", flist(LIST_BODY).status == 200)
    log = request_log()
    check("reset logged with status 0", [(e["status"], e["err_code"], e["fault"]) for e in log[:1]]
          == [(0, None, "reset")] and log[1]["fault"] is None, log)
    set_faults({"path": "get-record", "kind": "reset", "count": 1})
    try:
        hw_get(HW_QUERY)
        failed = False
    except (ConnectionError, http_client.HTTPException, urllib.error.URLError):
        failed = True
    check("reset seen by an HTTP client", failed)
    check("server fine after resets", http("GET", "/_sim/health").status == 200)


def test_fault_paging_loop():
    reset()
    set_faults({"path": "work_item/list", "kind": "paging_loop"})
    cursors, shapes_ok = [], True
    cursor = ""
    for _ in range(25):
        r = flist(dict(LIST_BODY, start_from=cursor), token=None)   # before auth, too
        d = r.json
        if not (r.status == 200 and set(d) == {"err_code", "err_msg", "data"} and d["err_code"] == 0
                and d["err_msg"] == "" and set(d["data"]) == {"op_records", "has_more", "start_from"}
                and d["data"]["op_records"] == [] and d["data"]["has_more"] is True):
            shapes_ok = False
        cursor = d["data"]["start_from"]
        cursors.append(cursor)
    check("paging_loop: empty page, has_more true, forever", shapes_ok)
    check("paging_loop: cursors unique", len(set(cursors)) == 25, cursors)
    check("paging_loop: default cursor length 16", all(len(c) == 16 for c in cursors), cursors)
    check("paging_loop: log", all(e["fault"] == "paging_loop" and e["has_more"] is True and e["records"] == 0
                                  for e in request_log()))
    check("paging_loop leaves the token endpoint alone", issue_feishu_token().startswith("p-"))
    for length in (1, 40, 3000):
        set_faults({"path": LIST, "kind": "paging_loop", "cursor_length": length})
        got = [flist(LIST_BODY).json["data"]["start_from"] for _ in range(3)]
        check(f"paging_loop cursor_length {length}", all(len(c) == length for c in got)
              and (length == 1 or len(set(got)) == 3), got if length < 100 else len(got))
    reset()
    set_faults({"path": "list", "kind": "paging_loop", "skip": 1})
    first, second = flist(LIST_BODY), flist(LIST_BODY)
    check("paging_loop with skip", first.json["data"].get("total") is not None
          and "total" not in second.json["data"])


def test_fault_template():
    reset()
    raw = '{"err_code":0,"err_msg":"","data":{"op_records":[@@FILL@@{}],"has_more":false,"note":"@@FILL@@"}}'
    set_faults({"path": "list", "kind": "template", "raw": raw, "fill": "{},", "repeat": 3, "count": 1},
               {"path": "list", "kind": "template", "raw": raw, "count": 1},
               {"path": "list", "kind": "template", "raw": "<b>\u4e2d</b>", "status": 502, "count": 1,
                "content_type": "text/html"},
               {"path": "list", "kind": "template", "raw": "[@@FILL@@1]", "fill": "1,", "repeat": 5,
                "gzip": True, "count": 1})
    r = flist(LIST_BODY)
    want = raw.replace("@@FILL@@", "{},{},{},").encode()
    check("template: every @@FILL@@ replaced", r.status == 200 and r.raw == want, r.raw)
    check("template: Content-Length and type", r.headers.get("Content-Length") == str(len(want))
          and r.headers.get("Content-Type") == "application/json", dict(r.headers))
    r = flist(LIST_BODY)
    check("template: fill default empty, repeat default 0", r.raw == raw.replace("@@FILL@@", "").encode(), r.raw)
    r = flist(LIST_BODY)
    check("template: status, content_type, UTF-8", r.status == 502 and r.raw == "<b>中</b>".encode()
          and r.headers.get("Content-Type") == "text/html", r)
    status, fields, body = raw_list()
    import gzip as gzip_module
    check("template gzip: Content-Encoding gzip, valid gzip",
          status == 200 and header_values(fields, "Content-Encoding") == [b"gzip"]
          and gzip_module.decompress(body) == b"[1,1,1,1,1,1]", (fields, body))
    log = request_log()
    check("template logged", [(e["status"], e["err_code"], e["records"], e["fault"]) for e in log] ==
          [(200, 0, 4, "template"), (200, 0, 1, "template"), (502, None, None, "template"),
           (200, None, None, "template")], log)

    # 30 MB, plain and gzip: seconds, modest memory.
    big_raw = '{"err_code":0,"data":{"op_records":[@@FILL@@{}],"has_more":false}}'
    prefix, suffix = big_raw.split("@@FILL@@")
    repeat = 10_000_000
    want_len = len(prefix) + 3 * repeat + len(suffix)
    before = vm_hwm_kb()
    set_faults({"path": "list", "kind": "template", "raw": big_raw, "fill": "{},", "repeat": repeat})
    t0 = time.time()
    r = flist(LIST_BODY)
    elapsed = time.time() - t0
    ok = (r.status == 200 and len(r.raw) == want_len and r.raw.startswith(prefix.encode() + b"{},{},")
          and r.raw.endswith(b"{},{}," + suffix.encode()) and r.raw.count(b"{},") == repeat)
    check("template 30 MB plain: exact body", ok and r.headers.get("Content-Length") == str(want_len),
          (r.status, len(r.raw), want_len))
    check("template 30 MB plain: fast", elapsed < 10, elapsed)
    del r
    set_faults({"path": "list", "kind": "template", "raw": big_raw, "fill": "{},", "repeat": repeat,
                "gzip": True})
    t0 = time.time()
    status, fields, body = raw_list()
    elapsed = time.time() - t0
    plain = gzip_module.decompress(body)
    check("template 30 MB gzip: decompresses to the exact body", status == 200 and len(plain) == want_len
          and plain.startswith(prefix.encode() + b"{},") and plain.endswith(b"{},{}," + suffix.encode())
          and plain.count(b"{},") == repeat, (status, len(plain)))
    check("template 30 MB gzip: small and fast", len(body) < 1_000_000 and elapsed < 10, (len(body), elapsed))
    del plain, body
    set_faults({"path": "list", "kind": "template", "raw": "[@@FILL@@0]", "fill": "{},",
                "repeat": 100_000_000, "gzip": True})
    t0 = time.time()
    status, fields, body = raw_list()
    elapsed = time.time() - t0
    import zlib
    inflater = zlib.decompressobj(31)
    size, pos, tail = 0, 0, b""
    while pos < len(body):
        out = inflater.decompress(body[pos:pos + 65536], 1 << 22)
        size += len(out)
        tail = (tail + out)[-16:]
        pos += 65536
        while inflater.unconsumed_tail:
            out = inflater.decompress(inflater.unconsumed_tail, 1 << 22)
            size += len(out)
            tail = (tail + out)[-16:]
    check("template 300 MB gzip: right size, fast", status == 200 and inflater.eof and size == 300_000_003
          and tail.endswith(b"{},{},0]") and elapsed < 20, (size, elapsed))
    after = vm_hwm_kb()
    if before is not None and after is not None:
        check("simulator memory stays modest (< 100 MB growth)", after - before < 100_000, (before, after))
        if VERBOSE:
            print(f"     simulator peak RSS {before} kB before the big templates, {after} kB after")


def test_fault_endless():
    def read_all(timeout):
        head, data, error = b"", b"", None
        body = json.dumps(LIST_BODY).encode()
        t0 = time.time()
        with socket.create_connection(("127.0.0.1", sim_port()), timeout=timeout) as s:
            s.sendall((f"POST {LIST} HTTP/1.1\r\nHost: {HOSTPORT}\r\nContent-Length: {len(body)}\r\n\r\n")
                      .encode() + body)
            try:
                while True:
                    chunk = s.recv(1 << 20)
                    if not chunk:
                        break
                    if not head:
                        data += chunk
                        if b"\r\n\r\n" in data:
                            head, data = data.split(b"\r\n\r\n", 1)
                            data = data[:100000]
                    elif len(data) < 100000:
                        data += chunk[:100000]
            except OSError as exc:
                error = exc
        return head, data, time.time() - t0, error

    reset()
    set_faults({"path": "list", "kind": "endless", "max_seconds": 1, "count": 1},
               {"path": "list", "kind": "endless", "max_seconds": 1, "count": 1, "chunked": True,
                "fill": "x", "prefix": "{\"data\":"})
    head, data, elapsed, error = read_all(10)
    check("endless: 200, Content-Length 10^12", head.startswith(b"HTTP/1.1 200")
          and b"\r\nContent-Length: 1000000000000" in head and b"application/json" in head, head)
    check("endless: writes fill over and over", data.startswith(b"[{},[{},[{},"), data[:40])
    check("endless: closes after max_seconds", 0.9 <= elapsed < 5 and error is None, (elapsed, error))
    head, data, elapsed, error = read_all(10)
    payload, rest = b"", data
    while b"\r\n" in rest:   # undo the chunk framing as far as it was read
        size_text, rest = rest.split(b"\r\n", 1)
        size = int(size_text, 16)
        if size == 0 or len(rest) < size + 2:
            payload += rest[:size]
            break
        payload, rest = payload + rest[:size], rest[size + 2:]
    check("endless chunked", b"Transfer-Encoding: chunked" in head and b"Content-Length" not in head
          and payload.startswith(b'{"data":xxxx'), (head, data[:40]))
    # A client that gives up early.
    set_faults({"path": "list", "kind": "endless", "max_seconds": 30, "count": 1})
    t0 = time.time()
    with socket.create_connection(("127.0.0.1", sim_port()), timeout=10) as s:
        s.sendall(f"POST {LIST} HTTP/1.1\r\nHost: {HOSTPORT}\r\nContent-Length: 0\r\n\r\n".encode())
        s.recv(65536)
    check("endless: client may hang up", http("GET", "/_sim/health").status == 200 and time.time() - t0 < 5)
    log = request_log()
    check("endless logged with status 0", [(e["status"], e["fault"]) for e in log] == [(0, "endless")] * 3, log)


def raw_token_answer():
    status, _, body = raw_http("POST", TOKEN, json.dumps(
        {"plugin_id": "MII_SIM_PLUGIN", "plugin_secret": "sim-plugin-secret", "type": 0}).encode(),
        {"Content-Type": "application/json"})
    return status, body


def test_token_keys():
    reset()
    for key, value in (("feishu_token_reported_ttl", "5"), ("feishu_token_reported_ttl", True),
                       ("feishu_token_reported_ttl", [1]), ("feishu_token_value", 5),
                       ("huawei_token_ttl", 0), ("huawei_token_ttl", 1.5), ("huawei_token_ttl", "60")):
        check(f"config {key}={value!r} -> 400", config_rejected({key: value}))
    for text in ("9223372036854775807", "1e30", "-5", "0", "1.5E+300", "-0.0"):
        r = http("POST", "/_sim/config", raw=('{"feishu_token_reported_ttl": %s}' % text).encode())
        status, body = raw_token_answer()
        check(f"feishu_token_reported_ttl {text} written exactly",
              r.status == 200 and status == 200 and (b'"expire_time":' + text.encode() + b"}") in body, body)
    r = http("GET", "/_sim/config")
    check("config shows the number text exactly", b'"feishu_token_reported_ttl":-0.0' in r.raw, r.raw)
    configure(feishu_token_reported_ttl=10 ** 30, feishu_token_ttl=1)
    token = issue_feishu_token()
    check("reported ttl is not the real one: token works now", flist(LIST_BODY, token=token).status == 200)
    time.sleep(1.1)
    check("... and expires after feishu_token_ttl", feishu_error(flist(LIST_BODY, token=token), 401, 10022))
    configure(feishu_token_reported_ttl=None)
    check("reported ttl null -> real ttl", json.loads(raw_token_answer()[1])["data"]["expire_time"] == 1)

    reset()
    evil = "p-evil\r\nX-Injected: 1\u0000\u0007"
    configure(feishu_token_value=evil)
    status, body = raw_token_answer()
    check("feishu_token_value issued exactly", status == 200 and json.loads(body)["data"]["token"] == evil
          and b'"token":"p-evil\\r\\nX-Injected: 1\\u0000\\u0007"' in body, body)
    configure(feishu_token_value="p-fixed-sim-token")
    check("fixed token issued", issue_feishu_token() == "p-fixed-sim-token")
    r = flist(LIST_BODY, token="p-fixed-sim-token")
    check("fixed token accepted on the list call", r.status == 200 and r.json["err_code"] == 0, r)
    check("fixed token logged as issued", request_log()[-1]["token"] == "issued")
    reset()
    cfg = http("GET", "/_sim/config").json
    check("reset clears token keys", cfg["feishu_token_reported_ttl"] is None
          and cfg["feishu_token_value"] is None and cfg["huawei_token_ttl"] == 86400, cfg)
    check("random tokens again after reset", issue_feishu_token() != "p-fixed-sim-token")

    # huawei_token_ttl: expires_at and enforcement.
    configure(huawei_token_ttl=2)
    t0 = time.time()
    r = http("POST", IAM, iam_body())
    token = r.headers.get("X-Subject-Token", "")
    expires = r.json["token"]["expires_at"]
    import re
    exp = calendar.timegm(time.strptime(expires[:19], "%Y-%m-%dT%H:%M:%S")) + float("0" + expires[19:-1])
    check("huawei_token_ttl in expires_at", re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", expires)
          and abs(exp - (t0 + 2)) < 1.5, expires)
    q = {"project_id": HW_PROJECT, "issue_id": 100}
    check("IAM token valid before its ttl", hw_get(q, token=token).status == 200)
    time.sleep(max(0, t0 + 2.1 - time.time()))
    check("IAM token past huawei_token_ttl -> 401 PM.10001002",
          hw_error(hw_get(q, token=token), 401, "PM.10001002"))
    check("IAM expiry logged", request_log()[-1]["token"] == "expired")
    configure(huawei_token_ttl=3600)
    r = http("POST", IAM, iam_body())
    exp = calendar.timegm(time.strptime(r.json["token"]["expires_at"][:19], "%Y-%m-%dT%H:%M:%S"))
    check("huawei_token_ttl 3600", abs(exp - time.time() - 3600) < 5)


EDGE_EXTRA_1 = (b'"extra":{"big":123456789012345678901234567890,"neg":-99999999999999999999,'
                b'"small":1,"real":1.5e300}')
EDGE_EXTRA_2 = b'"extra":{"precise":0.1000000000000000055511151231257827}'


def test_proj_edge():
    reset()
    import decimal
    r = http("GET", "/_sim/truth/feishu")
    check("truth: proj_edge numbers exact", EDGE_EXTRA_1 in r.raw and EDGE_EXTRA_2 in r.raw)
    exact = [json.loads(line, parse_float=decimal.Decimal) for line in r.text.splitlines()]
    edge = [x for x in exact if x["project_key"] == "proj_edge"]
    check("proj_edge: item 7000, 3 records in 2025, 13-digit ms",
          len(edge) == 3 and all(x["work_item_id"] == 7000 for x in edge)
          and all(isinstance(x["operation_time"], int) and MIN_MS <= x["operation_time"]
                  and 1735689600000 <= x["operation_time"] < 1767225600000 for x in edge), edge)
    extras = [x["record_contents"][0].get("extra") for x in edge]
    check("proj_edge extras", extras == [
        {"big": 123456789012345678901234567890, "neg": -99999999999999999999, "small": 1,
         "real": decimal.Decimal("1.5e300")},
        {"precise": decimal.Decimal("0.1000000000000000055511151231257827")},
        {"reviewed": True, "score": 7, "labels": ["a", None, 3]}], extras)
    r = flist({"project_key": "proj_edge", "work_item_ids": [7000]})
    check("list: proj_edge numbers exact", r.status == 200 and EDGE_EXTRA_1 in r.raw and EDGE_EXTRA_2 in r.raw)
    pages = feishu_pages({"project_key": "proj_edge", "work_item_ids": [7000], "page_size": 1})
    check("proj_edge paging rules", [len(d["op_records"]) for _, d in pages] == [1, 0, 1, 1]
          and all(d["total"] == 3 for _, d in pages), [len(d["op_records"]) for _, d in pages])
    got = feishu_all({"project_key": "proj_edge", "work_item_ids": [7000], "page_size": 2})
    plain_truth = [json.loads(line) for line in http("GET", "/_sim/truth/feishu").text.splitlines()
                   if '"proj_edge"' in line]
    check("proj_edge list == truth", got == plain_truth)
    t0 = edge[0]["operation_time"]
    got = feishu_all({"project_key": "proj_edge", "work_item_ids": [7000], "start": t0, "end": t0 + 60000})
    check("proj_edge window filter", [x["operation_time"] for x in got] == [t0, t0 + 60000])
    check("7000 not in proj_alpha", feishu_error(flist({"project_key": "proj_alpha", "work_item_ids": [7000]}),
                                                 200, 30005))
    check("proj_alpha item not in proj_edge", feishu_error(flist({"project_key": "proj_edge",
                                                                  "work_item_ids": [1001]}), 200, 30005))
    cursor = pages[1][0]
    r = flist({"project_key": "proj_alpha", "work_item_ids": [7000], "page_size": 1, "start_from": cursor})
    check("proj_edge cursor bound to its project", r.status == 200 and r.json["err_code"] in (20006, 30005), r)


# --------------------------------------------------------------------------
# Enumeration calls: Feishu work_item/filter, work_item/all-types, user/query;
# Huawei V4 project-wide records and issue list
# --------------------------------------------------------------------------

USER_QUERY = "/open_api/user/query"
V4_SECOND = dataset.HUAWEI_PROJECT_SECOND


def filter_path(project="proj_alpha"):
    return f"/open_api/{project}/work_item/filter"


def types_path(project="proj_alpha"):
    return f"/open_api/{project}/work_item/all-types"


def v4_records_path(project=HW_PROJECT):
    return f"/v4/projects/{project}/issues/records"


def v4_issues_path(project=HW_PROJECT):
    return f"/v4/projects/{project}/issues"


def feishu_headers(token=FEISHU_STATIC, user_key=USER_KEY):
    headers = {}
    if token is not None:
        headers["X-PLUGIN-TOKEN"] = token
    if user_key is not None:
        headers["X-USER-KEY"] = user_key
    return headers


def ffilter(body, project="proj_alpha", token=FEISHU_STATIC, user_key=USER_KEY, raw=None):
    return http("POST", filter_path(project), body, feishu_headers(token, user_key), raw=raw)


def ftypes(project="proj_alpha", token=FEISHU_STATIC, user_key=USER_KEY):
    return http("GET", types_path(project), headers=feishu_headers(token, user_key))


def fusers(body, token=FEISHU_STATIC, user_key=USER_KEY, raw=None):
    return http("POST", USER_QUERY, body, feishu_headers(token, user_key), raw=raw)


def feishu_ok(r):
    return (r.status == 200 and isinstance(r.json, dict) and r.json.get("err_code") == 0
            and r.json.get("err_msg") == "" and r.json.get("err") == {})


def filter_all(body, project="proj_alpha", page_size=200):
    """Every item of a filter, page by page: (items, [pagination...])."""
    items, pages, page = [], [], 1
    while True:
        r = ffilter(dict(body, page_num=page, page_size=page_size), project)
        assert feishu_ok(r), r
        pages.append(r.json["pagination"])
        items.extend(r.json["data"])
        if len(r.json["data"]) < page_size or len(items) >= r.json["pagination"]["total"]:
            return items, pages
        page += 1
        assert page < 1000, "runaway paging"


def all_type_keys(project):
    return [t["type_key"] for t in ftypes(project).json["data"]]


def hw4_records(query, token=HW_STATIC, project=HW_PROJECT):
    qs = query if isinstance(query, str) else urllib.parse.urlencode(query)
    headers = {"X-Auth-Token": token} if token is not None else {}
    return http("GET", v4_records_path(project) + ("?" + qs if qs else ""), headers=headers)


def hw4_issues(body, token=HW_STATIC, project=HW_PROJECT, raw=None, query=""):
    headers = {"X-Auth-Token": token} if token is not None else {}
    path = v4_issues_path(project) + ("?" + query if query else "")
    if raw is None and body is None:
        raw = b""
    return http("POST", path, body, headers, raw=raw)


def hw_signed_call(method, path, query="", body=None, tamper=None):
    """An AK/SK-signed request (host, x-sdk-date and content-type signed).
    tamper: "query" or "body" changes that part after signing."""
    raw = b"" if body is None else json.dumps(body).encode()
    headers = {"Host": HOSTPORT, "X-Sdk-Date": sdk_date(), "Content-Type": "application/json"}
    names = sorted(h.lower() for h in headers)
    headers["Authorization"] = hw.sign_request(hw.AK, hw.SK, method, path, query, headers, raw, names)
    if tamper == "query":
        query += "&limit=1" if query else "limit=1"
    elif tamper == "body":
        raw = raw.replace(b"}", b',"include_deleted":true}', 1)
    return http(method, path + ("?" + query if query else ""), headers=headers,
                raw=raw if method == "POST" else None)


def hw4_all_records(project=HW_PROJECT, interval=None, limit=100):
    out, offset = [], 0
    while True:
        query = {"offset": offset, "limit": limit}
        if interval is not None:
            query["operated_time_interval"] = interval
        r = hw4_records(query, project=project)
        assert r.status == 200, r
        out.extend(r.json["records"])
        offset += limit
        if offset >= r.json["total"]:
            return out, r.json["total"]


def hw4_all_issues(body, project=HW_PROJECT, limit=7):
    out, offset = [], 0
    while True:
        r = hw4_issues(dict(body, offset=offset, limit=limit), project=project)
        assert r.status == 200, r
        out.extend(r.json["issues"])
        offset += limit
        if offset >= r.json["total"]:
            return out, r.json["total"]


def op_truth_by_item():
    by_item = collections.defaultdict(list)
    for rec in jsonl("/_sim/truth/feishu"):
        by_item[rec["work_item_id"]].append(rec)
    return by_item


def test_feishu_filter_validation():
    reset()
    configure(feishu_qps=0)
    good = {"work_item_type_keys": ["story", "issue"]}
    with_ = lambda **kw: dict(good, **kw)
    check("filter: missing token -> 401 10021", feishu_error(ffilter(good, token=None), 401, 10021))
    check("filter: unknown token -> 401 10022",
          feishu_error(ffilter(good, token="p-" + "0" * 32), 401, 10022))
    check("filter: missing X-USER-KEY -> 403 10211", feishu_error(ffilter(good, user_key=None), 403, 10211))
    check("filter: auth before body", feishu_error(ffilter(None, token=None, raw=b"{nope"), 401, 10021))
    token = issue_feishu_token()
    check("filter: issued token works", feishu_ok(ffilter(good, token=token)))
    http("POST", "/_sim/expire_tokens")
    check("filter: expired token -> 401 10022", feishu_error(ffilter(good, token=token), 401, 10022))
    r = http("GET", filter_path())
    check("filter: GET -> 405", r.status == 405 and r.headers.get("Allow") == "POST", r)
    check("filter: X-Tt-Logid", len(r.headers.get("X-Tt-Logid", "")) == 20)
    cases = [
        ("body not JSON", None, b"{nope", 9999),
        ("body is a list", ["story"], None, 9999),
        ("no body", None, b"", 9999),
        ("work_item_type_keys missing", {}, None, 20003),
        ("work_item_type_keys null", {"work_item_type_keys": None}, None, 20003),
        ("work_item_type_keys empty", {"work_item_type_keys": []}, None, 20003),
        ("work_item_type_keys not a list", {"work_item_type_keys": "story"}, None, 20003),
        ("work_item_type_keys non-string", {"work_item_type_keys": [1]}, None, 20003),
        ("work_item_type_keys unknown", {"work_item_type_keys": ["story", "epic"]}, None, 20003),
        ("type of another space", {"work_item_type_keys": ["bug"]}, None, 20003),
        ("work_item_ids strings", with_(work_item_ids=["1001"]), None, 20006),
        ("work_item_ids not list", with_(work_item_ids=1001), None, 20006),
        ("created_at not object", with_(created_at=EDGE), None, 20006),
        ("created_at without start", with_(created_at={"end": EDGE}), None, 20013),
        ("updated_at start 12 digits", with_(updated_at={"start": 174078720000}), None, 20013),
        ("updated_at end 14 digits", with_(updated_at={"start": EDGE, "end": 17407872000000}), None, 20013),
        ("updated_at start string", with_(updated_at={"start": str(EDGE)}), None, 20013),
        ("updated_at start > end", with_(updated_at={"start": EDGE + 1, "end": EDGE}), None, 20013),
        ("user_keys 11", with_(user_keys=[str(7491126018028090001 + i) for i in range(11)]), None, 20006),
        ("user_keys non-string", with_(user_keys=[7491126018028090001]), None, 20006),
        ("work_item_status strings", with_(work_item_status=["terminated"]), None, 20006),
        ("work_item_status without state_key", with_(work_item_status=[{"is_archived_state": True}]),
         None, 20006),
        ("work_item_name number", with_(work_item_name=5), None, 20006),
        ("expand not object", with_(expand=True), None, 20006),
        ("page_size 201", with_(page_size=201), None, 20002),
        ("page_size -1", with_(page_size=-1), None, 20006),
        ("page_size string", with_(page_size="10"), None, 20006),
        ("page_size float", with_(page_size=1.5), None, 20006),
        ("page_num -1", with_(page_num=-1), None, 20006),
        ("page_num bool", with_(page_num=True), None, 20006),
        ("tags not simulated", with_(tags=["x"]), None, 20006),
        ("search_id not simulated", with_(search_id="abc"), None, 20006),
    ]
    for name, body, raw, code in cases:
        r = ffilter(body, raw=raw)
        check(f"filter validation: {name} -> 200 err_code {code}", feishu_error(r, 200, code), r)
    r = ffilter(good, project="proj_nope")
    check("filter: unknown space -> 30014", feishu_error(r, 200, 30014) and "proj_nope" in r.json["err_msg"], r)
    r = ffilter(with_(page_size=201))
    check("filter: page_size message", r.json["err_msg"] == "page_size over 200", r)
    ok_cases = [
        ("unknown fields ignored", with_(foo=1, bar={"x": [1]})),
        ("page_size 200", with_(page_size=200)),
        ("disabled type accepted", {"work_item_type_keys": [dataset.FEISHU_DISABLED_TYPE]}),
        ("Go SDK zero values", with_(work_item_name="", user_keys=None, work_item_ids=None,
                                     created_at=None, updated_at=None, sub_stages=None,
                                     businesses=None, priorities=None, tags=None,
                                     page_num=0, page_size=0, work_item_status=None,
                                     expand={"need_workflow": False}, search_id="")),
        ("end 0 = now", with_(updated_at={"start": EDGE, "end": 0})),
        ("end null = now", with_(updated_at={"start": EDGE, "end": None})),
    ]
    for name, body in ok_cases:
        r = ffilter(body)
        check(f"filter valid: {name}", feishu_ok(r), r)
    r = ffilter(ok_cases[3][1])
    check("filter: zero page_num/page_size -> 1/20",
          r.json["pagination"]["page_num"] == 1 and r.json["pagination"]["page_size"] == 20
          and len(r.json["data"]) == 20, r.json.get("pagination"))
    r = ffilter(good)
    check("filter: answer shape", set(r.json) == {"data", "pagination", "err_code", "err_msg", "err"}
          and set(r.json["pagination"]) == {"page_num", "page_size", "total"}, r)
    check("filter: WorkItemInfo fields", all(
        {"id", "name", "work_item_type_key", "project_key", "created_at", "updated_at",
         "deleted_at", "simple_name"} <= set(x) for x in r.json["data"]), r.json["data"][:1])
    r = ffilter(good, project="alpha")
    check("filter: space by simple_name", feishu_ok(r) and r.json["data"]
          and all(x["project_key"] == "proj_alpha" and x["simple_name"] == "alpha" for x in r.json["data"]), r)
    configure(feishu_filter_requires_types=False)
    r = ffilter({})
    check("feishu_filter_requires_types false: {} lists every type", feishu_ok(r)
          and r.json["pagination"]["total"] == ffilter(good).json["pagination"]["total"], r)
    check("feishu_filter_requires_types false: still 20003 for an unknown type",
          feishu_error(ffilter({"work_item_type_keys": ["epic"]}), 200, 20003))
    check("config: feishu_filter_max_results 0 refused", config_rejected({"feishu_filter_max_results": 0}))
    check("config: feishu_filter_requires_types string refused",
          config_rejected({"feishu_filter_requires_types": "yes"}))
    check("config: huawei_v4_max_offset -1 refused", config_rejected({"huawei_v4_max_offset": -1}))
    check("config: feishu_qps_shared 1 refused", config_rejected({"feishu_qps_shared": 1}))


def test_feishu_filter_data():
    reset()
    configure(feishu_qps=0)
    items = jsonl("/_sim/truth/feishu_work_items")
    by_id = {x["id"]: x for x in items}
    ops = op_truth_by_item()
    check("work items truth: one line per item, 146 items + 450 of proj_wide",
          len(items) == len(by_id) == 596
          and sum(1 for x in items if x["project_key"] == dataset.FEISHU_WIDE_PROJECT) == 450, len(items))
    check("work items truth: line fields", all(set(x) == {
        "project_key", "id", "work_item_type_key", "name", "created_at", "updated_at", "state_key",
        "terminated", "deleted", "deleted_at", "created_by", "updated_by", "participants",
        "served_records", "latest_record_ms", "violates_coverage"} for x in items))
    check("work items truth: projects in order, ids ascending",
          [(x["project_key"], x["id"]) for x in items] == sorted(
              ((x["project_key"], x["id"]) for x in items),
              key=lambda k: (dataset.FEISHU_PROJECTS.index(k[0]), k[1])))
    check("every item with op records is a work item of the same space", all(
        i in by_id and by_id[i]["project_key"] == recs[0]["project_key"] for i, recs in ops.items()))
    check("no deleted item has op records", all(not by_id[i]["deleted"] for i in ops))
    check("type matches the records' work_item_type_key", all(
        r.get("work_item_type_key", by_id[i]["work_item_type_key"]) == by_id[i]["work_item_type_key"]
        for i, recs in ops.items() for r in recs))
    check("created_at <= first record, created_at <= updated_at", all(
        x["created_at"] <= x["updated_at"] and (x["id"] not in ops or
                                                x["created_at"] <= ops[x["id"]][0]["operation_time"])
        for x in items))
    stale = sorted(i for i, recs in ops.items() if by_id[i]["updated_at"] < recs[-1]["operation_time"])
    check("coverage: updated_at >= latest record except the documented items",
          stale == sorted(dataset.FEISHU_STALE_ITEMS), stale)
    check("coverage: violates_coverage flags exactly those",
          sorted(x["id"] for x in items if x["violates_coverage"]) == sorted(dataset.FEISHU_STALE_ITEMS))
    check("coverage: a stale item's updated_at is past its previous record", all(
        ops[i][-2]["operation_time"] < by_id[i]["updated_at"] < ops[i][-1]["operation_time"]
        for i in dataset.FEISHU_STALE_ITEMS))
    check("truth latest_record_ms / served_records agree with the op records", all(
        x["served_records"] == len(ops.get(x["id"], []))
        and x["latest_record_ms"] == (ops[x["id"]][-1]["operation_time"] if x["id"] in ops else None)
        for x in items))
    check("some updated_at equal the latest record exactly", any(
        x["latest_record_ms"] == x["updated_at"] for x in items))
    check("terminated / deleted items as documented",
          sorted(x["id"] for x in items if x["terminated"]) == sorted(dataset.FEISHU_TERMINATED_ITEMS)
          and sorted(x["id"] for x in items if x["deleted"]) == sorted(dataset.FEISHU_DELETED_ITEMS)
          and all((x["deleted_at"] > 0) == x["deleted"] for x in items)
          and all((x["state_key"] == "terminated") == x["terminated"] for x in items))
    check("terminated items have records", all(ops[i] for i in dataset.FEISHU_TERMINATED_ITEMS))
    check("participants hold the record operators", all(
        {r["operator"] for r in ops.get(x["id"], []) if r["operator_type"] == "user"} <= set(x["participants"])
        and x["created_by"] in x["participants"] for x in items))

    # Default listing: every item but terminated and deleted ones, newest update first.
    for project in dataset.FEISHU_PROJECTS:
        types = all_type_keys(project)
        got, pages = filter_all({"work_item_type_keys": types}, project, page_size=7)
        want = [x for x in items if x["project_key"] == project and not x["terminated"] and not x["deleted"]]
        want.sort(key=lambda x: (-x["updated_at"], -x["id"]))
        check(f"filter {project}: every listed item, updated_at desc then id desc",
              [x["id"] for x in got] == [x["id"] for x in want], (len(got), len(want)))
        check(f"filter {project}: fields match the truth", all(
            g["name"] == by_id[g["id"]]["name"] and g["created_at"] == by_id[g["id"]]["created_at"]
            and g["updated_at"] == by_id[g["id"]]["updated_at"] and g["deleted_at"] == 0
            and g["work_item_type_key"] == by_id[g["id"]]["work_item_type_key"]
            and g["project_key"] == project and g["simple_name"] == dataset.FEISHU_SIMPLE_NAMES[project]
            and g["work_item_status"]["state_key"] == by_id[g["id"]]["state_key"] for g in got))
        check(f"filter {project}: pagination", all(
            p["page_num"] == k + 1 and p["page_size"] == 7 and p["total"] == len(want)
            for k, p in enumerate(pages)), pages)
        terminated, _ = filter_all({"work_item_type_keys": types,
                                    "work_item_status": [{"state_key": "terminated"}]}, project)
        check(f"filter {project}: terminated only with work_item_status",
              sorted(x["id"] for x in terminated) == sorted(
                  x["id"] for x in items if x["project_key"] == project and x["terminated"]))
        every, _ = filter_all({"work_item_type_keys": types, "work_item_status": [
            {"state_key": s} for s in dataset.FEISHU_ALL_STATES]}, project)
        check(f"filter {project}: all states = every item but the deleted",
              sorted(x["id"] for x in every) == sorted(
                  x["id"] for x in items if x["project_key"] == project and not x["deleted"]))
        check(f"filter {project}: every item with records is reachable",
              {i for i, recs in ops.items() if recs[0]["project_key"] == project}
              <= {x["id"] for x in got} | {x["id"] for x in terminated})
    r = ffilter({"work_item_type_keys": ["story", "issue"], "page_num": 99, "page_size": 200})
    check("filter: page past the end is empty, total kept", feishu_ok(r) and r.json["data"] == []
          and r.json["pagination"]["total"] > 0 and r.json["pagination"]["page_num"] == 99, r)
    r = ffilter({"work_item_type_keys": ["story"], "work_item_ids": [9007199254740993], "page_size": 5})
    check("filter: big ids exact on the wire", b'"id":9007199254740993' in r.raw
          and r.json["data"][0]["id"] == 9007199254740993, r)
    r = ffilter({"work_item_type_keys": ["story", "issue"], "work_item_ids": [1001, 2001, 1099, 1017, 424242]})
    check("filter: work_item_ids (other space, deleted, terminated, unknown left out)",
          [x["id"] for x in r.json["data"]] == [1001], r)
    r = ffilter({"work_item_type_keys": ["story", "issue"], "work_item_name": "支付流程"})
    check("filter: work_item_name substring", [x["id"] for x in r.json["data"]] == [1001], r)
    got, _ = filter_all({"work_item_type_keys": ["issue"]})
    check("filter: type filter", got and all(x["work_item_type_key"] == "issue" for x in got)
          and len(got) == sum(1 for x in items if x["project_key"] == "proj_alpha"
                              and x["work_item_type_key"] == "issue" and not x["terminated"]
                              and not x["deleted"]))
    keys = ["7380021184471550118", "7122334455667788990"]
    got, _ = filter_all({"work_item_type_keys": ["story", "issue"], "user_keys": keys})
    check("filter: user_keys = participants", sorted(x["id"] for x in got) == sorted(
        x["id"] for x in items if x["project_key"] == "proj_alpha" and not x["terminated"]
        and not x["deleted"] and set(keys) & set(x["participants"])), len(got))
    configure(feishu_filter_hides_terminated=False)
    got, _ = filter_all({"work_item_type_keys": ["story", "issue"]})
    check("feishu_filter_hides_terminated false: terminated listed by default",
          {1017, 1064} <= {x["id"] for x in got} and 1099 not in {x["id"] for x in got})
    configure(feishu_filter_hides_terminated=True)

    # Time filters: inclusive bounds, end absent = the simulated now.
    alpha = [x for x in items if x["project_key"] == "proj_alpha" and not x["terminated"] and not x["deleted"]]
    for field in ("updated_at", "created_at"):
        lo, hi = sorted(x[field] for x in alpha)[10], sorted(x[field] for x in alpha)[60]
        got, _ = filter_all({"work_item_type_keys": ["story", "issue"], field: {"start": lo, "end": hi}})
        want = sorted(x["id"] for x in alpha if lo <= x[field] <= hi)
        check(f"filter: {field} window inclusive", sorted(x["id"] for x in got) == want and len(want) >= 51,
              (len(got), len(want)))
        got, _ = filter_all({"work_item_type_keys": ["story", "issue"], field: {"start": lo}})
        check(f"filter: {field} without end reaches the newest item",
              sorted(x["id"] for x in got) == sorted(x["id"] for x in alpha if lo <= x[field]))
    newest = max(x["updated_at"] for x in alpha)
    check("filter: data newer than the wall clock is still 'now' (item 5000, 2027)",
          newest > time.time() * 1000 and 5000 in [x["id"] for x in filter_all(
              {"work_item_type_keys": ["story"], "updated_at": {"start": newest}})[0]])

    # The coverage caveat: items with a record in a window, found by updated_at >= window start.
    misses = set()
    windows = [(EDGE, EDGE + 30 * 86400000), (1735689600000, 1767225599999), (MIN_MS, 1893456000000)]
    windows += [(by_id[i]["latest_record_ms"] - 3600000, by_id[i]["latest_record_ms"])
                for i in dataset.FEISHU_STALE_ITEMS]
    for start, end in windows:
        touched = {i for i, recs in ops.items() for r in recs if start <= r["operation_time"] <= end
                   and not by_id[i]["terminated"]}
        found = set()
        for project in dataset.FEISHU_PROJECTS:
            got, _ = filter_all({"work_item_type_keys": all_type_keys(project),
                                 "updated_at": {"start": start}}, project)
            found |= {x["id"] for x in got}
        misses |= touched - found
    check("coverage caveat: exactly the documented items are missed",
          misses == set(dataset.FEISHU_STALE_ITEMS), misses)
    stale = by_id[1077]
    r = ffilter({"work_item_type_keys": ["story"], "work_item_ids": [1077],
                 "updated_at": {"start": stale["latest_record_ms"]}})
    check("coverage caveat: 1077 is not found from its latest record's time",
          feishu_ok(r) and r.json["data"] == [], r)

    # feishu_filter_max_results: a deep page is refused (from + size > N).
    configure(feishu_filter_max_results=30)
    base = {"work_item_type_keys": ["story", "issue"], "page_size": 10}
    check("max_results 30: page 3 of 10 served", feishu_ok(ffilter(dict(base, page_num=3))))
    r = ffilter(dict(base, page_num=4))
    check("max_results 30: page 4 of 10 -> 20055", feishu_error(r, 200, 20055) and "30" in r.json["err_msg"], r)
    check("max_results 30: page_size 50 -> 20055", feishu_error(ffilter(dict(base, page_size=50)), 200, 20055))
    configure(feishu_filter_max_results=None)
    check("max_results null: no cap", feishu_ok(ffilter(dict(base, page_num=4))))

    log = request_log()
    entry = log[-1]
    check("filter logged", entry["api"] == "feishu" and entry["path"] == "/open_api/proj_alpha/work_item/filter"
          and entry["status"] == 200 and entry["err_code"] == 0 and entry["records"] == 10
          and entry["has_more"] is None and entry["token"] == "static" and entry["user_key"] == USER_KEY, entry)


def test_feishu_types_and_users():
    reset()
    configure(feishu_qps=0)
    items = jsonl("/_sim/truth/feishu_work_items")
    ops = jsonl("/_sim/truth/feishu")
    types_truth = jsonl("/_sim/truth/feishu_types")
    for project in dataset.FEISHU_PROJECTS:
        r = ftypes(project)
        data = r.json["data"] if feishu_ok(r) else []
        keys = {t["type_key"] for t in data}
        used = {x["work_item_type_key"] for x in items if x["project_key"] == project} | {
            rec["work_item_type_key"] for rec in ops if rec["project_key"] == project and "work_item_type_key" in rec}
        check(f"all-types {project}: covers every type in the data", used <= keys, (used, keys))
        check(f"all-types {project}: fields and one disabled type", all(
            set(t) == {"type_key", "name", "is_disable", "api_name"} for t in data)
              and [t["type_key"] for t in data if t["is_disable"] == 1] == [dataset.FEISHU_DISABLED_TYPE]
              and all(t["is_disable"] == 2 for t in data if t["type_key"] != dataset.FEISHU_DISABLED_TYPE))
        check(f"all-types {project} == truth", data == [
            {k: v for k, v in t.items() if k != "project_key"} for t in types_truth if t["project_key"] == project])
        check(f"all-types by simple_name {project}",
              ftypes(dataset.FEISHU_SIMPLE_NAMES[project]).json["data"] == data)
    check("all-types: unknown space -> 30014", feishu_error(ftypes("proj_nope"), 200, 30014))
    check("all-types: missing token -> 401 10021", feishu_error(ftypes(token=None), 401, 10021))
    check("all-types: missing X-USER-KEY -> 403 10211", feishu_error(ftypes(user_key=None), 403, 10211))
    r = http("POST", types_path(), {}, feishu_headers())
    check("all-types: POST -> 405", r.status == 405 and r.headers.get("Allow") == "GET", r)

    users = jsonl("/_sim/truth/feishu_users")
    operators = {rec["operator"] for rec in ops if rec["operator_type"] == "user"}
    check("users truth: every user operator of the records", {u["user_key"] for u in users} == operators
          == set(dataset.FEISHU_USER_KEYS), operators)
    check("users truth: fields", all({"user_key", "username", "email", "name_cn", "name_en", "name", "status"}
                                     <= set(u) for u in users))
    check("users: some resigned, Chinese and English names",
          any(u["status"] == "resigned" for u in users) and any(u["status"] == "activated" for u in users)
          and all(u["name_cn"] for u in users) and any(u["name_en"] == "" for u in users)
          and any("'" in u["name_en"] for u in users))
    r = fusers({"user_keys": sorted(operators, reverse=True)})
    check("user/query: every operator, in request order", feishu_ok(r)
          and [u["user_key"] for u in r.json["data"]] == sorted(operators, reverse=True)
          and sorted(r.json["data"], key=lambda u: u["user_key"]) == sorted(users, key=lambda u: u["user_key"]), r)
    r = fusers({"user_keys": ["7122334455667788990", "auto_8842", "123", "7122334455667788990"]})
    check("user/query: unknown keys absent, duplicates once", feishu_ok(r)
          and [u["user_key"] for u in r.json["data"]] == ["7122334455667788990"], r)
    check("user/query: user_key kept as a string", b'"user_key":"7122334455667788990"' in r.raw)
    r = fusers({"user_keys": [str(i) for i in range(99)] + [USER_KEY]})
    check("user/query: 100 keys", feishu_ok(r) and [u["user_key"] for u in r.json["data"]] == [USER_KEY], r)
    check("user/query: unknown field ignored, SDK empties accepted",
          feishu_ok(fusers({"user_keys": [USER_KEY], "x": 1, "emails": None, "out_ids": [], "tenant_key": ""})))
    for name, body, raw, code in (
            ("101 keys", {"user_keys": [str(i) for i in range(101)]}, None, 20006),
            ("empty list", {"user_keys": []}, None, 20005),
            ("missing", {}, None, 20005),
            ("null", {"user_keys": None}, None, 20005),
            ("numbers", {"user_keys": [7491126018028090001]}, None, 20006),
            ("not a list", {"user_keys": USER_KEY}, None, 20006),
            ("emails not simulated", {"user_keys": [USER_KEY], "emails": ["a@b"]}, None, 20006),
            ("body not JSON", None, b"{", 9999),
            ("body a list", [USER_KEY], None, 9999)):
        check(f"user/query: {name} -> {code}", feishu_error(fusers(body, raw=raw), 200, code))
    check("user/query: missing token -> 401 10021", feishu_error(fusers({"user_keys": [USER_KEY]}, token=None),
                                                                 401, 10021))
    check("user/query: missing X-USER-KEY -> 403 10211",
          feishu_error(fusers({"user_keys": [USER_KEY]}, user_key=None), 403, 10211))
    log = request_log()
    check("user/query logged with the number of users", [e["records"] for e in log
                                                         if e["path"] == USER_QUERY][:3] == [6, 1, 1])


def test_enumeration_quota_and_faults():
    reset()
    configure(feishu_qps=2)
    body = {"work_item_type_keys": ["story"]}
    statuses = [ffilter(body).status for _ in range(3)]
    check("feishu_qps applies to filter", statuses == [200, 200, 429], statuses)
    check("filter 429 body", feishu_error(ffilter(body), 429, 10429))
    check("quota per endpoint: all-types still served", feishu_ok(ftypes()))
    check("quota per endpoint: list still served", flist(LIST_BODY).status == 200)
    check("quota per endpoint: user/query still served", feishu_ok(fusers({"user_keys": [USER_KEY]})))
    time.sleep(1.05)
    reset()
    configure(feishu_qps=2, feishu_qps_shared=True)
    results = [ffilter(body).status, flist(LIST_BODY).status, ftypes().status, fusers({"user_keys": [USER_KEY]}).status]
    check("feishu_qps_shared: one bucket per token", results == [200, 200, 429, 429], results)
    time.sleep(1.05)
    reset()
    configure(huawei_qps=2)
    q = {"limit": 1}
    statuses = [hw4_records(q).status for _ in range(3)]
    check("huawei_qps applies to V4 records", statuses == [200, 200, 429], statuses)
    check("V4 records 429 body", hw_error(hw4_records(q), 429, "APIGW.0308"))
    check("huawei quota per endpoint: issues still served", hw4_issues({}).status == 200)
    check("huawei quota per endpoint: get-record still served", hw_get(HW_QUERY).status == 200)
    time.sleep(1.05)
    reset()
    configure(huawei_qps=2, huawei_qps_shared=True)
    results = [hw4_records(q).status, hw4_issues({}).status, hw_get(HW_QUERY).status]
    check("huawei_qps_shared: one bucket per credential", results == [200, 200, 429], results)
    time.sleep(1.05)
    reset()
    set_faults({"path": "work_item/filter", "kind": "throttle", "count": 1},
               {"path": "issues/records", "kind": "error", "count": 1})
    r = ffilter(body)
    check("faults on filter: Feishu throttle body", r.status == 429 and r.json == FEISHU_THROTTLE, r)
    r = hw4_records(q)
    check("faults on V4 records: Huawei error body", r.status == 500 and r.json == HUAWEI_BUSY, r)
    check("faults then normal", feishu_ok(ffilter(body)) and hw4_records(q).status == 200)
    configure(faults=[], delay_ms=300)
    t0 = time.time()
    ffilter(body)
    hw4_issues({})
    check("delay_ms applies to the enumeration calls", time.time() - t0 >= 0.58)
    configure(delay_ms=0)
    log = request_log()
    check("enumeration faults logged", [e["fault"] for e in log[:2]] == ["throttle", "error"], log[:2])


def test_huawei_v4_records():
    reset()
    truth = jsonl("/_sim/truth/huawei_v4_records")
    v2 = jsonl("/_sim/truth/huawei")
    by_project = collections.defaultdict(list)
    for line in truth:
        by_project[line["project_id"]].append(line["record"])
    check("V4 truth: line shape", all(set(line) == {"project_id", "record"} for line in truth))
    check("V4 truth: record fields", all(
        {"id", "issue_id", "field_key", "field_name", "property", "new_value", "operated_time",
         "operation", "operator"} <= set(r) <= {"id", "issue_id", "field_key", "field_name", "property",
                                                "old_value", "new_value", "operated_time", "operation",
                                                "operator"}
        and set(r["operator"]) == {"user_id", "user_num_id", "id", "name", "nick_name"}
        and r["operation"] in ("create", "modify", "delete") for line in truth for r in [line["record"]]))
    v2_details = {}
    for line in v2:
        for d in line["entry"]["details"]:
            v2_details[(line["project_id"], d["id"])] = (line, d)
    check("V4 truth: one record per V2 detail", len(truth) == len(v2_details) == len(
        {(line["project_id"], line["record"]["id"]) for line in truth}), (len(truth), len(v2_details)))
    mapping = {"新建": "create", "修改": "modify", "批量编辑": "modify", "删除": "delete"}
    consistent = True
    for line in truth:
        r = line["record"]
        v2line, d = v2_details[(line["project_id"], r["id"])]
        e = v2line["entry"]
        if not (r["issue_id"] == v2line["issue_id"] and r["field_key"] == d["name"]
                and r["new_value"] == d["new_value"] and r.get("old_value") == d.get("old_value")
                and ("old_value" in r) == ("old_value" in d) and r["property"] == d["property"]
                and r["operated_time"] == int(e["created_on"]) and r["operation"] == mapping[d["operation"]]
                and r["operator"] == {"user_id": e["user"]["identifier"], "user_num_id": e["user"]["id"],
                                      "id": e["user"]["id"], "name": e["user"]["name"],
                                      "nick_name": e["user"]["nick_name"]}):
            consistent = False
            break
    check("V4 truth: derived from the V2 details", consistent, line)
    for project, records in by_project.items():
        check(f"V4 truth {project[:6]}: newest first, then id desc",
              [(-r["operated_time"], -r["id"]) for r in records]
              == sorted((-r["operated_time"], -r["id"]) for r in records))
    check("V4: some records without old_value, some with field_name in Chinese",
          any("old_value" not in line["record"] for line in truth)
          and any(line["record"]["field_name"] == "状态" for line in truth))
    check("V4: main project above the default offset cap", len(by_project[HW_PROJECT]) > 10100)

    # Auth
    r = hw4_records({"limit": 5})
    check("V4 records: static token, default shape", r.status == 200 and set(r.json) == {"records", "total"}
          and r.json["records"] == by_project[HW_PROJECT][:5] and r.json["total"] == len(by_project[HW_PROJECT]), r)
    check("V4 records: no credentials -> 401", hw_error(hw4_records({}, token=None), 401, "PM.10001002"))
    check("V4 records: bad token -> 401 PM.10001002", hw_error(hw4_records({}, token="MIIbad"), 401, "PM.10001002"))
    r = http("POST", IAM, iam_body())
    check("V4 records: IAM token", hw4_records({"limit": 1}, token=r.headers["X-Subject-Token"]).status == 200)
    qs = urllib.parse.urlencode({"offset": 0, "limit": 3, "operated_time_interval": "1700000000000,"})
    r = hw_signed_call("GET", v4_records_path(), qs)
    check("V4 records: AK/SK signed", r.status == 200 and len(r.json["records"]) == 3, r)
    r = hw_signed_call("GET", v4_records_path(), qs, tamper="query")
    check("V4 records: query changed after signing -> 401 APIG.0301", hw_error(r, 401, "APIG.0301"), r)
    r = http("POST", v4_records_path(), {}, {"X-Auth-Token": HW_STATIC})
    check("V4 records: POST -> 405", r.status == 405, r)
    r = hw4_records({"limit": 1})
    check("V4 records: X-Request-Id", len(r.headers.get("X-Request-Id", "")) == 32)

    # Validation
    for name, query, code in (
            ("limit 0", {"limit": 0}, "PM.02174103"), ("limit 101", {"limit": 101}, "PM.02174103"),
            ("limit text", {"limit": "ten"}, "PM.02174103"), ("offset negative", {"offset": -100}, "PM.02174103"),
            ("offset not a multiple", {"offset": 5, "limit": 10}, "PM.02174103"),
            ("offset not a multiple of the default 100", {"offset": 50}, "PM.02174103"),
            ("offset over the cap", {"offset": 10100, "limit": 100}, "PM.02174103"),
            ("interval without comma", {"operated_time_interval": "1700000000000"}, "PM.02175006"),
            ("interval empty", {"operated_time_interval": ""}, "PM.02175006"),
            ("interval with 0", {"operated_time_interval": "0,1700000000000"}, "PM.02175006"),
            ("interval leading zero", {"operated_time_interval": "01700000000000,"}, "PM.02175006"),
            ("interval 14 digits", {"operated_time_interval": "17000000000000,"}, "PM.02175006"),
            ("interval three parts", {"operated_time_interval": "1,2,3"}, "PM.02175006"),
            ("interval letters", {"operated_time_interval": "a,b"}, "PM.02175006"),
            ("interval start > end", {"operated_time_interval": "1700000000001,1700000000000"}, "PM.02175006"),
            ("unknown parameter", {"issue_id": 100}, "PM.02175006")):
        check(f"V4 records validation: {name} -> {code}", hw_error(hw4_records(query), 400, code))
    check("V4 records: repeated parameter -> PM.02175006", hw_error(hw4_records("limit=1&limit=2"), 400, "PM.02175006"))
    check("V4 records: malformed project -> PM.02175006",
          hw_error(hw4_records({}, project=HW_PROJECT.upper()), 400, "PM.02175006"))
    check("V4 records: unknown project -> PM.02152005", hw_error(hw4_records({}, project="f" * 32), 400, "PM.02152005"))
    for name, query in (("offset 10000", {"offset": 10000, "limit": 100}), ("limit 1 offset 7", {"limit": 1, "offset": 7}),
                        ("open interval", {"operated_time_interval": ","}),
                        ("interval with start only", {"operated_time_interval": "1700000000000,"}),
                        ("interval with end only", {"operated_time_interval": ",1700000000000"})):
        check(f"V4 records valid: {name}", hw4_records(query).status == 200)

    # Data and paging
    got, total = hw4_all_records(V4_SECOND, limit=7)
    check("V4 records: second project == truth (limit 7)", got == by_project[V4_SECOND]
          and total == len(got), (len(got), total))
    r = hw4_records({"offset": 10000, "limit": 100})
    check("V4 records: offset 10000 readable", r.json["records"] == by_project[HW_PROJECT][10000:10100])
    configure(huawei_v4_max_offset=None)
    got, total = hw4_all_records()
    check("V4 records: huawei_v4_max_offset null -> whole main project == truth",
          got == by_project[HW_PROJECT] and total == len(got), (len(got), total))
    configure(huawei_v4_max_offset=500)
    check("V4 records: huawei_v4_max_offset 500", hw_error(hw4_records({"offset": 600}), 400, "PM.02174103")
          and hw4_records({"offset": 500}).status == 200)
    configure(huawei_v4_max_offset=10000)
    main = by_project[HW_PROJECT]
    for interval, lo, hi in ((",", None, None), ("1700000000000,", 1700000000000, None),
                             (",1609811186000", None, 1609811186000),
                             (f"{main[300]['operated_time']},{main[20]['operated_time']}",
                              main[300]["operated_time"], main[20]["operated_time"])):
        got, total = hw4_all_records(interval=interval) if interval != "," else (hw4_records(
            {"operated_time_interval": ",", "limit": 100}).json["records"], None)
        want = [r for r in main if (lo is None or r["operated_time"] >= lo) and (hi is None or r["operated_time"] <= hi)]
        if interval == ",":
            want = want[:100]
        check(f"V4 records: interval {interval!r} (inclusive) == truth", got == want, (len(got), len(want)))
    # A client that meets the offset cap splits the time range: the pieces add up.
    pieces, end = [], None
    while True:
        interval = "," + (str(end) if end else "")
        r = hw4_records({"operated_time_interval": interval, "limit": 100})
        total = r.json["total"]
        if total <= 10100:
            pieces.extend(hw4_all_records(interval=interval)[0])
            break
        oldest_first_page = hw4_records({"operated_time_interval": interval, "limit": 100,
                                         "offset": 9900}).json["records"][-1]["operated_time"]
        # take everything newer than that time by a bounded window, then go on below it
        pieces.extend(hw4_all_records(interval=f"{oldest_first_page},{end or ''}")[0])
        end = oldest_first_page - 1
    check("V4 records: splitting by operated_time_interval reads the whole project",
          pieces == main, (len(pieces), len(main)))
    hw4_records({"limit": 3, "operated_time_interval": "1700000000000,"})
    entry = request_log()[-1]
    check("V4 records logged", entry["api"] == "huawei" and entry["path"] == v4_records_path()
          and entry["records"] == 3 and entry["err_code"] == "" and entry["status"] == 200
          and entry["query"] == {"limit": "3", "operated_time_interval": "1700000000000,"}
          and entry["token"] == "static", entry)


def test_huawei_v4_issues():
    reset()
    truth = jsonl("/_sim/truth/huawei_issues")
    v2 = jsonl("/_sim/truth/huawei")
    check("issues truth: line fields", all(set(x) == {"project_id", "issue", "created_ms", "updated_ms",
                                                      "closed_ms", "latest_entry_ms", "v4_records"} for x in truth))
    v2_issues = {(x["project_id"], x["issue_id"]) for x in v2} | {(HW_PROJECT, 107), (HW_PROJECT, 123)}
    check("issues truth: every issue of the history data",
          {(x["project_id"], x["issue"]["id"]) for x in truth} == v2_issues, len(truth))
    latest = collections.defaultdict(int)
    for x in v2:
        key = (x["project_id"], x["issue_id"])
        latest[key] = max(latest[key], int(x["entry"]["created_on"]))
    check("issues: updated >= latest history entry, created <= it", all(
        x["updated_ms"] >= latest.get((x["project_id"], x["issue"]["id"]), 0)
        and x["latest_entry_ms"] == latest.get((x["project_id"], x["issue"]["id"]))
        and x["created_ms"] <= x["updated_ms"] for x in truth))
    import datetime as _dt
    fmt = lambda ms: _dt.datetime.fromtimestamp(ms // 1000, _dt.timezone(_dt.timedelta(hours=8))).strftime(
        "%Y-%m-%d %H:%M:%S")
    check("issues: times are 'YYYY-MM-DD hh:mm:ss' in UTC+08:00", all(
        x["issue"]["created_time"] == fmt(x["created_ms"]) and x["issue"]["updated_time"] == fmt(x["updated_ms"])
        and (x["closed_ms"] is None) == ("closed_time" not in x["issue"])
        and (x["closed_ms"] is None or x["issue"]["closed_time"] == fmt(x["closed_ms"])) for x in truth))
    check("issues: closed_time exactly on closed issues", all(
        (x["issue"]["status"]["name"] == "已关闭") == (x["closed_ms"] is not None) for x in truth)
          and any(x["closed_ms"] for x in truth))
    check("issues: deleted as documented", sorted(x["issue"]["id"] for x in truth if x["issue"]["deleted"])
          == sorted(dataset.HUAWEI_DELETED_ISSUES))
    check("issues: sample issue is a Story named 444", [x["issue"]["tracker"] for x in truth
          if x["issue"]["id"] == 9175005] == [{"id": 7, "name": "Story"}]
          and [x["issue"]["name"] for x in truth if x["issue"]["id"] == 9175005] == ["444"])
    v4 = jsonl("/_sim/truth/huawei_v4_records")
    counts = collections.Counter((x["project_id"], x["record"]["issue_id"]) for x in v4)
    check("issues truth: v4_records counts", all(
        x["v4_records"] == counts.get((x["project_id"], x["issue"]["id"]), 0) for x in truth))

    # Auth and signing of the body
    body = {"offset": 0, "limit": 5, "include_deleted": True}
    r = hw_signed_call("POST", v4_issues_path(), body=body)
    check("V4 issues: AK/SK signed body", r.status == 200 and len(r.json["issues"]) == 5, r)
    r = hw_signed_call("POST", v4_issues_path(), body=body, tamper="body")
    check("V4 issues: body changed after signing -> 401 APIG.0301", hw_error(r, 401, "APIG.0301"), r)
    check("V4 issues: no credentials -> 401", hw_error(hw4_issues({}, token=None), 401, "PM.10001002"))
    check("V4 issues: GET -> 405", http("GET", v4_issues_path(), headers={"X-Auth-Token": HW_STATIC}).status == 405)

    # Validation
    for name, b, raw, code in (
            ("no body", None, b"", "PM.02175006"), ("body not JSON", None, b"{", "PM.02175006"),
            ("body a list", [1], None, "PM.02175006"),
            ("limit 0", {"limit": 0}, None, "PM.02174103"), ("limit 101", {"limit": 101}, None, "PM.02174103"),
            ("limit string", {"limit": "10"}, None, "PM.02174103"),
            ("offset not a multiple", {"offset": 5, "limit": 10}, None, "PM.02174103"),
            ("offset negative", {"offset": -10, "limit": 10}, None, "PM.02174103"),
            ("offset over the cap", {"offset": 10010, "limit": 10}, None, "PM.02174103"),
            ("created interval bad", {"created_time_interval": "0,"}, None, "PM.02175006"),
            ("updated interval number", {"updated_time_interval": 1700000000000}, None, "PM.02175006"),
            ("closed interval reversed", {"closed_time_interval": "1700000000001,1700000000000"}, None,
             "PM.02175006"),
            ("include_deleted string", {"include_deleted": "true"}, None, "PM.02175006"),
            ("tracker_ids strings", {"tracker_ids": ["7"]}, None, "PM.02175006"),
            ("status_ids not list", {"status_ids": 1}, None, "PM.02175006"),
            ("assigned_ids not simulated", {"assigned_ids": [1111]}, None, "PM.02175006"),
            ("query_type not simulated", {"query_type": "backlog"}, None, "PM.02175006")):
        check(f"V4 issues validation: {name} -> {code}", hw_error(hw4_issues(b, raw=raw), 400, code))
    check("V4 issues: query parameter -> PM.02175006", hw_error(hw4_issues({}, query="x=1"), 400, "PM.02175006"))
    check("V4 issues: unknown project -> PM.02152005", hw_error(hw4_issues({}, project="f" * 32), 400, "PM.02152005"))
    r = hw4_issues({"x": 1, "assigned_ids": [], "query_type": None, "include_deleted": None})
    check("V4 issues: unknown fields ignored, empty unsimulated ones accepted", r.status == 200, r)
    r = hw4_issues({})
    check("V4 issues: default limit 10, answer shape", r.status == 200 and set(r.json) == {"issues", "total"}
          and len(r.json["issues"]) == 10, r)

    # Data.  Order: updated time descending, then id descending (as Feishu's
    # filter); it used to be id descending.
    for project in (HW_PROJECT, V4_SECOND, HW_WIDE):
        mine = [x for x in truth if x["project_id"] == project]
        got, total = hw4_all_issues({"include_deleted": True}, project=project)
        updated = {x["issue"]["id"]: x["updated_ms"] for x in mine}
        check(f"V4 issues {project[:6]}: include_deleted == truth, updated desc then id desc",
              got == [x["issue"] for x in mine] and [g["id"] for g in got] == sorted(
                  (g["id"] for g in got), key=lambda i: (-updated[i], -i))
              and total == len(mine), (len(got), total))
        got, total = hw4_all_issues({}, project=project)
        check(f"V4 issues {project[:6]}: deleted left out by default",
              got == [x["issue"] for x in mine if not x["issue"]["deleted"]] and total == len(got))
    main = [x for x in truth if x["project_id"] == HW_PROJECT and not x["issue"]["deleted"]]
    got, _ = hw4_all_issues({"tracker_ids": [7, 6]})
    check("V4 issues: tracker_ids", got and [g["id"] for g in got] == [
        x["issue"]["id"] for x in main if x["issue"]["tracker"]["id"] in (6, 7)])
    got, _ = hw4_all_issues({"status_ids": [5]})
    check("V4 issues: status_ids", got and [g["id"] for g in got] == [
        x["issue"]["id"] for x in main if x["issue"]["status"]["id"] == 5])
    stamps = sorted(x["updated_ms"] for x in main)
    lo, hi = stamps[5], stamps[25]
    for field, key in (("updated_time_interval", "updated_ms"), ("created_time_interval", "created_ms"),
                       ("closed_time_interval", "closed_ms")):
        for interval, a, b in ((f"{lo},{hi}", lo, hi), (f"{lo},", lo, None), (f",{hi}", None, hi)):
            got, _ = hw4_all_issues({field: interval})
            want = [x["issue"]["id"] for x in main if x[key] is not None
                    and (a is None or x[key] >= a) and (b is None or x[key] <= b)]
            check(f"V4 issues: {field} {interval!r}", [g["id"] for g in got] == want, (len(got), len(want)))
    hw4_issues({"limit": 4, "include_deleted": True})
    hw4_issues({"limit": 0})
    log = request_log()
    check("V4 issues logged", [(e["api"], e["path"], e["status"], e["err_code"], e["records"])
                               for e in log[-2:]] == [
        ("huawei", v4_issues_path(), 200, "", 4), ("huawei", v4_issues_path(), 400, "PM.02174103", 0)]
          and log[-2]["body"] == {"limit": 4, "include_deleted": True}, log[-2:])


# --------------------------------------------------------------------------
# Wide spaces (listings of several pages), the data of the other projects
# unchanged, and edit_during_listing (the list moves while it is read)
# --------------------------------------------------------------------------

FEISHU_WIDE = dataset.FEISHU_WIDE_PROJECT
WIDE_FIRST_MS = 1735660800000          # 2025-01-01T00:00:00+08:00
WIDE_LAST_MS = 1793462399000           # 2026-10-31T23:59:59+08:00
# Items whose data follow the server start (Feishu 1300, Huawei 5555): left out
# of the fingerprints below.
START_DEPENDENT = (dataset.FEISHU_RECENT_ITEM, dataset.HUAWEI_RECENT_ISSUE)


def truth_lines(name):
    """(raw line, parsed) of a truth endpoint: the fingerprints hash the bytes as served."""
    return [(line, json.loads(line)) for line in http("GET", "/_sim/truth/" + name).text.splitlines()]


def existing_fingerprints():
    """name -> (lines, sha256) of the data of every project but the wide ones,
    without the start-dependent items.  EXISTING_FINGERPRINTS holds what the
    simulator served before the wide projects were added."""
    def digest(lines):
        return len(lines), hashlib.sha256("\n".join(lines).encode("utf-8")).hexdigest()

    def kept(project, item):
        return project not in (FEISHU_WIDE, HW_WIDE) and item not in START_DEPENDENT

    out = {}
    out["feishu"] = digest([line for line, r in truth_lines("feishu")
                            if kept(r["project_key"], r["work_item_id"])])
    out["feishu_work_items"] = digest([line for line, x in truth_lines("feishu_work_items")
                                       if kept(x["project_key"], x["id"])])
    out["feishu_types"] = digest([line for line, t in truth_lines("feishu_types")
                                  if kept(t["project_key"], None)])
    out["feishu_users"] = digest([line for line, _ in truth_lines("feishu_users")])
    out["huawei"] = digest([line for line, x in truth_lines("huawei") if kept(x["project_id"], x["issue_id"])])
    out["huawei_v4_records"] = digest([line for line, x in truth_lines("huawei_v4_records")
                                       if kept(x["project_id"], x["record"]["issue_id"])])
    # The V4 list's order changed (updated time first): the old order, by id.
    issues = [(line, x) for line, x in truth_lines("huawei_issues") if kept(x["project_id"], x["issue"]["id"])]
    projects = [HW_PROJECT, V4_SECOND]
    issues.sort(key=lambda p: (projects.index(p[1]["project_id"]), -p[1]["issue"]["id"]))
    out["huawei_issues"] = digest([line for line, _ in issues])
    for project in ("proj_alpha", "proj_beta", "proj_edge"):
        got, _ = filter_all({"work_item_type_keys": all_type_keys(project)}, project)
        out["filter " + project] = digest([json.dumps(x, ensure_ascii=False, separators=(",", ":"))
                                           for x in got if x["id"] not in START_DEPENDENT])
    return out


# Computed from the simulator as it was before proj_wide and the wide Huawei
# project existed (and before the V4 list's order changed).
EXISTING_FINGERPRINTS = {
    "feishu": (4679, "7d35e3a9b14cc2bd560c673d39f673f64306b6f1a36a4c1931cd012e1ba4a1ba"),
    "feishu_work_items": (145, "b170495ef99d8483bad93e62a8be48810ce99bb360b4ea6ca6f46908f4aafd4b"),
    "feishu_types": (9, "4d9a0d47dfbcdea21067643f03499e5544efeacab515c417b79074c5b90a8be6"),
    "feishu_users": (6, "c1f87aeb9a580dd568510c0a3ab01c1fb5f3555da637cd9bd3991b20cb7be465"),
    "huawei": (10883, "2701b035eec460b5530319dfdbf9e8f58b7c1511338507dd6844ad42008a460c"),
    "huawei_v4_records": (11566, "4d5804c78983bfdb75831d71fd681cd2db6292a40b71b584dc3689ad564a5ffa"),
    "huawei_issues": (40, "14857f45102b1b12f770ba95d6d59d4c4cc7ccef857e1fe61741f41522d2a69c"),
    "filter proj_alpha": (131, "9bbaada6b7dccef4362581a29e1decef54299e9a783df0659e2a56120c86b9fd"),
    "filter proj_beta": (9, "9b82f0fde80b819b3aeda649924f87a6e30174360608af087dec034817fe4b3f"),
    "filter proj_edge": (1, "2b3366916ee6e22f625ce4e843dae14e3c85fa2365267b6cfdb3b4bfe8f6f1ab"),
}


def test_existing_data_unchanged():
    reset()
    configure(feishu_qps=0)
    got = existing_fingerprints()
    for name, want in EXISTING_FINGERPRINTS.items():
        check(f"existing data unchanged: {name} ({want[0]} lines)", got.get(name) == want, got.get(name))
    r = ffilter({"work_item_type_keys": all_type_keys("proj_alpha"), "page_size": 200})
    check("existing data: proj_alpha lists 132 items, on one filter page",
          feishu_ok(r) and r.json["pagination"]["total"] == 132 and len(r.json["data"]) == 132, r)
    counts = collections.Counter(x["project_key"] for x in jsonl("/_sim/truth/feishu_work_items"))
    check("existing data: work item counts", counts == {"proj_alpha": 135, "proj_beta": 10, "proj_edge": 1,
                                                        FEISHU_WIDE: 450}, counts)
    counts = collections.Counter(x["project_id"] for x in jsonl("/_sim/truth/huawei_issues"))
    check("existing data: issue counts", counts == {HW_PROJECT: 35, V4_SECOND: 6, HW_WIDE: 250}, counts)


def wide_listing(page_size, pages=None, project=FEISHU_WIDE, between=None):
    """The wide space listed by page_num: ids in the order read.  between(k) runs
    after page k's answer (to look at the truth in the middle of a listing)."""
    ids, page = [], 1
    while True:
        r = ffilter({"work_item_type_keys": ["story", "issue"], "page_num": page,
                     "page_size": page_size}, project)
        assert feishu_ok(r), r
        ids.extend(x["id"] for x in r.json["data"])
        if between:
            between(page)
        if page * page_size >= r.json["pagination"]["total"] or (pages and page == pages):
            return ids
        page += 1


def test_wide_data():
    reset()
    configure(feishu_qps=0)
    items = [x for x in jsonl("/_sim/truth/feishu_work_items") if x["project_key"] == FEISHU_WIDE]
    ops = op_truth_by_item()
    check("proj_wide: items 3001..3450", [x["id"] for x in items] == list(dataset.FEISHU_WIDE_ITEMS))
    check("proj_wide: 1 to 4 records each, 2025-01-01..2026-10-31 (+08:00)", all(
        1 <= len(ops[x["id"]]) <= 4 and x["served_records"] == len(ops[x["id"]])
        and all(WIDE_FIRST_MS <= r["operation_time"] <= WIDE_LAST_MS and r["project_key"] == FEISHU_WIDE
                for r in ops[x["id"]]) for x in items))
    check("proj_wide: every record count 1..4 occurs",
          {len(ops[x["id"]]) for x in items} == {1, 2, 3, 4})
    check("proj_wide: story and issue items", {x["work_item_type_key"] for x in items} == {"story", "issue"})
    check("proj_wide: none terminated, deleted or stale", not any(
        x["terminated"] or x["deleted"] or x["violates_coverage"] for x in items))
    check("proj_wide: updated_at >= latest record, created_at <= first", all(
        x["latest_record_ms"] == ops[x["id"]][-1]["operation_time"] <= x["updated_at"]
        and x["created_at"] <= ops[x["id"]][0]["operation_time"] for x in items))
    recs = [r for x in items for r in ops[x["id"]]]
    check("proj_wide: records look like the others (operators, modules, missing type keys, ms)",
          {r["operator_type"] for r in recs} >= {"user", "auto", "system"}
          and len({r["op_record_module"] for r in recs}) >= 5
          and any("work_item_type_key" not in r for r in recs)
          and any(r["operation_time"] % 1000 for r in recs)
          and {r["operator"] for r in recs if r["operator_type"] == "user"} <= set(dataset.FEISHU_USER_KEYS))
    types = [t for t in jsonl("/_sim/truth/feishu_types") if t["project_key"] == FEISHU_WIDE]
    check("proj_wide: types story, issue and the disabled one",
          [t["type_key"] for t in types] == ["story", "issue", dataset.FEISHU_DISABLED_TYPE], types)

    # filter: three pages of 200, by project_key or simple_name "wide"
    want = sorted(items, key=lambda x: (-x["updated_at"], -x["id"]))
    sizes = []
    for page in (1, 2, 3, 4):
        r = ffilter({"work_item_type_keys": ["story", "issue"], "page_num": page, "page_size": 200}, "wide")
        sizes.append((len(r.json["data"]), r.json["pagination"]["total"]) if feishu_ok(r) else r)
    check("proj_wide filter: pages of 200, 200, 50, 0; total 450",
          sizes == [(200, 450), (200, 450), (50, 450), (0, 450)], sizes)
    got, _ = filter_all({"work_item_type_keys": ["story", "issue"]}, FEISHU_WIDE)
    check("proj_wide filter == truth, updated_at desc then id desc",
          [g["id"] for g in got] == [x["id"] for x in want] and all(
              g["updated_at"] == x["updated_at"] and g["simple_name"] == "wide" for g, x in zip(got, want)))
    # op_record list: every item in batches of 50 ids serves its truth
    ids = [x["id"] for x in items]
    served = []
    for k in range(0, len(ids), 50):
        served += feishu_all({"project_key": FEISHU_WIDE, "work_item_ids": ids[k:k + 50], "page_size": 200})
    check("proj_wide op_record list == truth (9 batches of 50 ids)",
          sorted(map(json.dumps, served)) == sorted(json.dumps(r) for r in recs), (len(served), len(recs)))
    check("proj_wide: another space's ids are not found there",
          feishu_error(flist({"project_key": "proj_alpha", "work_item_ids": [3001]}), 200, 30005))

    # Huawei: 250 issues, get-record, V4 records and issue list
    v2 = collections.defaultdict(list)
    for x in jsonl("/_sim/truth/huawei"):
        if x["project_id"] == HW_WIDE:
            v2[x["issue_id"]].append(x["entry"])
    check("wide project: issues 8000001..8000250 with 1 to 3 entries",
          sorted(v2) == list(dataset.HUAWEI_WIDE_ISSUES) and all(1 <= len(e) <= 3 for e in v2.values())
          and {len(e) for e in v2.values()} == {1, 2, 3})
    entries = [e for es in v2.values() for e in es]
    check("wide project: every entry has details, 2025-01-01..2026-10-31 (+08:00)", all(
        e["details"] and WIDE_FIRST_MS <= int(e["created_on"]) <= WIDE_LAST_MS for e in entries))
    check("wide project: entries newest first, created by a 新建 subject detail", all(
        [int(e["created_on"]) for e in es] == sorted((int(e["created_on"]) for e in es), reverse=True)
        and es[-1]["details"][0]["name"] == "subject" and es[-1]["details"][0]["operation"] == "新建"
        for es in v2.values()))
    mismatched = []
    for issue_id in sorted(v2):
        got, total = hw_all(HW_WIDE, issue_id)
        if got != v2[issue_id] or total != len(got):
            mismatched.append(issue_id)
    check("wide project: get-record == truth for all 250 issues", not mismatched, mismatched[:5])
    truth = [x["record"] for x in jsonl("/_sim/truth/huawei_v4_records") if x["project_id"] == HW_WIDE]
    got, total = hw4_all_records(HW_WIDE)
    check("wide project: V4 records == truth, one per detail",
          got == truth and total == len(truth) == sum(len(e["details"]) for e in entries), (len(got), total))
    issues = [x for x in jsonl("/_sim/truth/huawei_issues") if x["project_id"] == HW_WIDE]
    check("wide project: issues not deleted, updated >= last entry, in V4 order", all(
        not x["issue"]["deleted"] and x["updated_ms"] >= x["latest_entry_ms"] >= x["created_ms"]
        and x["issue"]["project"]["project_id"] == HW_WIDE for x in issues)
          and [x["issue"]["id"] for x in issues] == [x["issue"]["id"] for x in sorted(
              issues, key=lambda x: (-x["updated_ms"], -x["issue"]["id"]))])
    sizes = [len(hw4_issues({"offset": o, "limit": 100}, project=HW_WIDE).json["issues"]) for o in (0, 100, 200)]
    check("wide project: V4 issue list pages of 100, 100, 50", sizes == [100, 100, 50], sizes)


def edit_plan(**values):
    plan = {"feishu_after": None, "feishu_items": [], "huawei_after": None, "huawei_issues": []}
    plan.update(values)
    return plan


def test_edit_during_listing_config():
    reset()
    for name, value in (
            ("a number", 5), ("a list", [3001]), ("unknown key", {"feishu_after": 1, "feishu_items": [3001], "x": 1}),
            ("feishu_after 0", {"feishu_after": 0, "feishu_items": [3001]}),
            ("feishu_after a string", {"feishu_after": "1", "feishu_items": [3001]}),
            ("feishu_after true", {"feishu_after": True, "feishu_items": [3001]}),
            ("feishu_after 1.5", {"feishu_after": 1.5, "feishu_items": [3001]}),
            ("feishu_items without feishu_after", {"feishu_items": [3001]}),
            ("feishu_after without items", {"feishu_after": 1}),
            ("feishu_after with []", {"feishu_after": 1, "feishu_items": []}),
            ("feishu_items strings", {"feishu_after": 1, "feishu_items": ["3001"]}),
            ("feishu_items not a list", {"feishu_after": 1, "feishu_items": 3001}),
            ("feishu_items twice the same", {"feishu_after": 1, "feishu_items": [3001, 3001]}),
            ("unknown Feishu item", {"feishu_after": 1, "feishu_items": [424242]}),
            ("a Huawei id as Feishu item", {"feishu_after": 1, "feishu_items": [8000001]}),
            ("huawei_after -1", {"huawei_after": -1, "huawei_issues": [8000001]}),
            ("unknown Huawei issue", {"huawei_after": 1, "huawei_issues": [8000251]}),
            ("huawei_issues without huawei_after", {"huawei_issues": [100]})):
        check(f"config: edit_during_listing {name} refused",
              config_rejected({"edit_during_listing": value, "feishu_qps": 3}))
    cfg = http("GET", "/_sim/config").json
    check("config: a refused edit_during_listing changes nothing",
          cfg["edit_during_listing"] is None and cfg["feishu_qps"] == 15, cfg)
    plan = edit_plan(feishu_after=3, feishu_items=[3002, 1001], huawei_after=1, huawei_issues=[8000250, 100])
    r = configure(edit_during_listing=plan)
    check("config: edit_during_listing echoed", r.json["config"]["edit_during_listing"] == plan, r)
    r = configure(edit_during_listing={"huawei_after": 2, "huawei_issues": [204]})
    check("config: edit_during_listing keys optional, shown in full",
          r.json["config"]["edit_during_listing"] == edit_plan(huawei_after=2, huawei_issues=[204]), r)
    r = configure(edit_during_listing={})
    check("config: edit_during_listing {} = no edit", r.json["config"]["edit_during_listing"] == edit_plan(), r)
    configure(edit_during_listing=None)
    reset()
    check("config: reset clears edit_during_listing", http("GET", "/_sim/config").json["edit_during_listing"] is None)


def test_edit_during_listing_feishu():
    reset()
    configure(feishu_qps=0)
    before_text = http("GET", "/_sim/truth/feishu_work_items").text
    before = {x["id"]: x for x in jsonl("/_sim/truth/feishu_work_items")}
    order = wide_listing(200)
    edited = [order[300], order[420]]          # read on pages 7 and 9 of 50
    ops_before = {i: recs for i, recs in op_truth_by_item().items() if i in edited}
    reset()
    configure(feishu_qps=0, edit_during_listing=edit_plan(feishu_after=3, feishu_items=edited))
    check("edit: a refused filter request does not count",
          feishu_error(ffilter({"work_item_type_keys": []}, FEISHU_WIDE), 200, 20003))
    seen_updates = {}

    def look(page):
        now = {x["id"]: x["updated_at"] for x in jsonl("/_sim/truth/feishu_work_items") if x["id"] in edited}
        seen_updates[page] = [now[i] for i in edited]

    wall_ms = int(time.time() * 1000)
    got = wide_listing(50, between=look)
    original = [before[i]["updated_at"] for i in edited]
    check("edit: Feishu items unchanged after 2 listing answers, moved after the 3rd",
          seen_updates[1] == seen_updates[2] == original and seen_updates[3] != original, seen_updates)
    after = {x["id"]: x for x in jsonl("/_sim/truth/feishu_work_items")}
    others = max(x["updated_at"] for i, x in after.items() if i not in edited)
    t1, t2 = (after[i]["updated_at"] for i in edited)
    check("edit: updated_at = simulated now + 1 ms, + 2 ms (wall clock or newest item): newer than every other",
          t2 == t1 + 1 and t1 > others and t1 - 1 >= max(wall_ms, others), (t1, t2, others))
    moved = [edited[1], edited[0]] + [i for i in order if i not in edited]
    check("edit: pages after the edit come from the moved list", got == order[:150] + moved[150:],
          (len(got), got[145:155]))
    twice = sorted(i for i, n in collections.Counter(got).items() if n == 2)
    check("edit: page_num paging shows two items twice and the edited ones never",
          twice == sorted(order[148:150]) and not set(edited) & set(got) and len(got) == 450
          and set(got) == set(order) - set(edited), (twice, sorted(order[148:150])))
    log = [e for e in request_log() if e["path"].endswith("/work_item/filter")]
    check("edit: logged as edited on the 3rd listing answer only",
          [e.get("edited") for e in log] == [None, None, None, edited] + [None] * 6
          and all("edited" not in e for e in log if e is not log[3]), [e.get("edited") for e in log])
    r = ffilter({"work_item_type_keys": ["story", "issue"], "page_size": 5}, FEISHU_WIDE)
    check("edit: the edited items now lead the listing, the last named first",
          [x["id"] for x in r.json["data"][:2]] == [edited[1], edited[0]]
          and [x["updated_at"] for x in r.json["data"][:2]] == [t2, t1], r.json["data"][:2])
    check("edit: the state's own time does not move",
          [x["work_item_status"]["updated_at"] for x in r.json["data"][:2]] == [original[1], original[0]])
    r = ffilter({"work_item_type_keys": ["story", "issue"], "updated_at": {"start": t1}}, FEISHU_WIDE)
    check("edit: an updated_at filter without end reaches the edited items",
          feishu_ok(r) and [x["id"] for x in r.json["data"]] == [edited[1], edited[0]], r)
    check("edit: no record added", {i: recs for i, recs in op_truth_by_item().items() if i in edited}
          == ops_before and all(feishu_all({"project_key": FEISHU_WIDE, "work_item_ids": [i]}) == ops_before[i]
                                for i in edited))
    check("edit: only the update time changed in the truth", all(
        dict(after[i], updated_at=0) == dict(before[i], updated_at=0) for i in edited)
          and all(after[i] == before[i] for i in after if i not in edited))
    check("edit: made once", wide_listing(200)[:2] == [edited[1], edited[0]]
          and len([e for e in request_log() if "edited" in e]) == 1)

    # Set again: the counter restarts; the new edit is newer still; any space counts.
    configure(edit_during_listing=edit_plan(feishu_after=1, feishu_items=[order[0]]))
    ffilter({"work_item_type_keys": ["bug"]}, "proj_beta")
    check("edit: a listing of another space counts",
          request_log()[-1].get("edited") == [order[0]]
          and wide_listing(200, pages=1)[:3] == [order[0], edited[1], edited[0]])
    reset()
    check("edit: reset restores every update time", http("GET", "/_sim/truth/feishu_work_items").text == before_text)
    configure(feishu_qps=0)
    check("edit: reset restores the listing", wide_listing(200) == order)
    check("edit: reset clears the key: nothing moves any more", wide_listing(200) == order
          and not any("edited" in e for e in request_log()))


def test_edit_during_listing_huawei():
    reset()
    before_text = http("GET", "/_sim/truth/huawei_issues").text
    v4_before = http("GET", "/_sim/truth/huawei_v4_records").text
    before = {x["issue"]["id"]: x for x in jsonl("/_sim/truth/huawei_issues")}
    order = [i["id"] for i in hw4_all_issues({}, project=HW_WIDE, limit=100)[0]]
    edited = [order[150], order[210]]
    history = {i: hw_all(HW_WIDE, i)[0] for i in edited}
    configure(edit_during_listing=edit_plan(huawei_after=1, huawei_issues=edited))
    check("edit: a refused V4 issue request does not count",
          hw_error(hw4_issues({"limit": 0}, project=HW_WIDE), 400, "PM.02174103"))
    wall_s = int(time.time())
    got, seen = [], []
    for offset in (0, 100, 200):
        got += [i["id"] for i in hw4_issues({"offset": offset, "limit": 100}, project=HW_WIDE).json["issues"]]
        seen.append([x["updated_ms"] for x in jsonl("/_sim/truth/huawei_issues") if x["issue"]["id"] in edited])
    original = sorted(before[i]["updated_ms"] for i in edited)
    check("edit: Huawei issues moved right after the 1st listing answer",
          sorted(seen[0]) != original and seen[0] == seen[1] == seen[2], seen)
    after = {x["issue"]["id"]: x for x in jsonl("/_sim/truth/huawei_issues")}
    others = max(x["updated_ms"] for i, x in after.items() if i not in edited)
    t1, t2 = (after[i]["updated_ms"] for i in edited)
    check("edit: updated time = simulated now + 1 s, + 2 s (whole seconds, wall clock or later)",
          t2 == t1 + 1000 and t1 > others and t1 % 1000 == 0 and t1 >= (wall_s + 1) * 1000, (t1, t2, others))
    check("edit: updated_time text follows", all(
        after[i]["issue"]["updated_time"] == dataset.beijing_text(after[i]["updated_ms"]) for i in edited))
    moved = [edited[1], edited[0]] + [i for i in order if i not in edited]
    check("edit: V4 pages after the edit come from the moved list", got == order[:100] + moved[100:])
    twice = sorted(i for i, n in collections.Counter(got).items() if n == 2)
    check("edit: offset paging shows two issues twice and the edited ones never",
          twice == sorted(order[98:100]) and not set(edited) & set(got) and len(got) == 250, twice)
    log = [e for e in request_log() if e["path"] == v4_issues_path(HW_WIDE)][-4:]   # since the config
    check("edit: logged as edited on the 1st listing answer",
          [e.get("edited") for e in log] == [None, edited, None, None], [e.get("edited") for e in log])
    r = hw4_issues({"updated_time_interval": f"{t1},"}, project=HW_WIDE)
    check("edit: updated_time_interval finds the edited issues, newest first",
          [i["id"] for i in r.json["issues"]] == [edited[1], edited[0]], r)
    check("edit: no history added", all(hw_all(HW_WIDE, i)[0] == history[i] for i in edited)
          and http("GET", "/_sim/truth/huawei_v4_records").text == v4_before)
    check("edit: only the update time changed", all(
        after[i]["latest_entry_ms"] == before[i]["latest_entry_ms"]
        and dict(after[i]["issue"], updated_time="") == dict(before[i]["issue"], updated_time="") for i in edited)
          and all(after[i] == before[i] for i in after if i not in edited))
    reset()
    check("edit: reset restores the issues", http("GET", "/_sim/truth/huawei_issues").text == before_text
          and [i["id"] for i in hw4_all_issues({}, project=HW_WIDE, limit=100)[0]] == order)

# --------------------------------------------------------------------------
# add_records: records that arrive while the simulator runs
# --------------------------------------------------------------------------

TIE_MS = 1747706640000                  # two records of 1001 and one of 1002 share it


def add_records(feishu=None, huawei=None):
    body = {}
    if feishu is not None:
        body["feishu"] = feishu
    if huawei is not None:
        body["huawei"] = huawei
    return configure(add_records=body).json["config"]["add_records"]


def feishu_added_record(item, t, number, **fields):
    """The record add_records makes with its defaults (fields override them)."""
    rec = {"project_key": item["project_key"], "work_item_id": item["id"],
           "work_item_type_key": item["work_item_type_key"], "operation_time": t,
           "operator_type": "user", "operator": USER_KEY, "operation_type": "modify",
           "op_record_module": "field_mod",
           "record_contents": [{"object": {"object_type": "field", "object_value": "description"},
                                "add": [], "delete": [], "old": [], "new": [f"added record {number}"]}]}
    rec.update(fields)
    order = ["project_key", "work_item_id", "work_item_type_key", "operation_time", "operator_type",
             "operator", "operation_type", "op_record_module", "source_type", "source", "record_contents"]
    return {key: rec[key] for key in order if key in rec}


def feishu_truth_with(before, added):
    """The Feishu truth once `added` arrived: by work_item_id, operation_time,
    and the added ones after the records of the same time (stable sort)."""
    return sorted(before + added, key=lambda r: (r["work_item_id"], r["operation_time"]))


def test_add_records_config():
    reset()
    truth_before = {name: http("GET", "/_sim/truth/" + name).text
                    for name in ("feishu", "huawei", "feishu_work_items", "huawei_v4_records", "huawei_issues")}
    good_f = {"work_item_id": 1001, "operation_time": TIE_MS}
    good_h = {"issue_id": 100, "created_on": TIE_MS}
    f = lambda **kw: {"feishu": [dict(good_f, **kw)]}
    h = lambda **kw: {"huawei": [dict(good_h, **kw)]}
    f_without = lambda key: {"feishu": [{k: v for k, v in good_f.items() if k != key}]}
    h_without = lambda key: {"huawei": [{k: v for k, v in good_h.items() if k != key}]}
    for name, value in (
            ("null", None), ("a list", [good_f]), ("a number", 1), ("unknown key", {"feishu": [], "jira": []}),
            ("feishu not a list", {"feishu": good_f}), ("feishu [1]", {"feishu": [1]}),
            ("huawei null", {"huawei": None}),
            ("Feishu without work_item_id", f_without("work_item_id")),
            ("Feishu without operation_time", f_without("operation_time")),
            ("Feishu work_item_id a string", f(work_item_id="1001")),
            ("Feishu work_item_id true", f(work_item_id=True)),
            ("unknown Feishu item", f(work_item_id=424242)),
            ("a Huawei id as Feishu item", f(work_item_id=8000001)),
            ("deleted Feishu item 1099", f(work_item_id=1099)),
            ("operation_time before 2024-07-02", f(operation_time=MIN_MS - 1)),
            ("operation_time of 12 digits", f(operation_time=999999999999)),
            ("operation_time of 14 digits", f(operation_time=10 ** 13)),
            ("operation_time 1.5", f(operation_time=1747706640000.5)),
            ("operation_time a string", f(operation_time=str(TIE_MS))),
            ("operator_type robot", f(operator_type="robot")),
            ("operator a number", f(operator=7491126018028090001)),
            ("operation_type edit", f(operation_type="edit")),
            ("op_record_module work_item", f(op_record_module="work_item")),
            ("source_type without source", f(source_type="auto")),
            ("source without source_type", f(source="auto_8842")),
            ("source_type manual", f(source_type="manual", source="x")),
            ("source empty", f(source_type="auto", source="")),
            ("record_contents an object", f(record_contents={})),
            ("record_contents [1]", f(record_contents=[1])),
            ("Feishu project_key", f(project_key="proj_alpha")),
            ("Feishu work_item_type_key", f(work_item_type_key="story")),
            ("a lone surrogate", f(operator="\ud800")),
            ("a lone surrogate in record_contents", f(record_contents=[{"new": ["\udfff"]}])),
            ("Huawei without issue_id", h_without("issue_id")),
            ("Huawei without created_on", h_without("created_on")),
            ("unknown Huawei issue", h(issue_id=999)),
            ("a Feishu id as Huawei issue", h(issue_id=1001)),
            ("deleted issue 204", h(issue_id=204)),
            ("deleted issue 123", h(issue_id=123)),
            ("created_on of 12 digits", h(created_on=999999999999)),
            ("created_on of 14 digits", h(created_on=10 ** 13)),
            ("created_on a string", h(created_on=str(TIE_MS))),
            ("created_on in seconds", h(created_on=1747706640)),
            ("unknown user", h(user=9999)),
            ("user as a string", h(user="1111")),
            ("notes a number", h(notes=5)),
            ("detail a list", h(detail=[])),
            ("detail with an unknown key", h(detail={"id": 5})),
            ("detail.name unknown", h(detail={"name": "foo"})),
            ("detail.operation modify", h(detail={"operation": "modify"})),
            ("detail.new_value a number", h(detail={"new_value": 5})),
            ("detail.old_value a number", h(detail={"old_value": 5})),
            ("Huawei project_id", h(project_id=HW_PROJECT)),
            ("a good Feishu record with a bad Huawei one", {"feishu": [good_f], "huawei": [{"issue_id": 999,
                                                                                           "created_on": TIE_MS}]}),
            ("a good record before a bad one", {"feishu": [good_f, dict(good_f, work_item_id=424242)]})):
        check(f"add_records: {name} refused", config_rejected({"add_records": value, "feishu_qps": 3}))
    cfg = http("GET", "/_sim/config").json
    check("add_records: a refused post changes nothing",
          cfg["add_records"] == {"feishu": [], "huawei": []} and cfg["feishu_qps"] == 15, cfg)
    check("add_records: a refused post adds nothing", all(
        http("GET", "/_sim/truth/" + name).text == text for name, text in truth_before.items()))
    for value in ({}, {"feishu": []}, {"feishu": [], "huawei": []}):
        r = configure(add_records=value)
        check(f"add_records: {json.dumps(value)} adds nothing",
              r.json["config"]["add_records"] == {"feishu": [], "huawei": []}, r)
    check("add_records: an empty post changes no truth", all(
        http("GET", "/_sim/truth/" + name).text == text for name, text in truth_before.items()))
    shown = add_records(feishu=[good_f], huawei=[good_h])
    check("add_records: the config shows what was added",
          [r["work_item_id"] for r in shown["feishu"]] == [1001]
          and [x["issue_id"] for x in shown["huawei"]] == [100], shown)
    r = configure(feishu_qps=4)
    check("add_records: posting other keys keeps the additions",
          r.json["config"]["add_records"] == shown and r.json["config"]["feishu_qps"] == 4, r)
    check("add_records: GET /_sim/config shows them", http("GET", "/_sim/config").json["add_records"] == shown)
    check("add_records: config posts are not logged", request_log() == [])
    reset()
    check("add_records: reset empties the key",
          http("GET", "/_sim/config").json["add_records"] == {"feishu": [], "huawei": []})
    check("add_records: reset removes the records", all(
        http("GET", "/_sim/truth/" + name).text == text for name, text in truth_before.items()))


def test_add_records_feishu():
    reset()
    configure(feishu_qps=0)
    names = ("feishu", "feishu_work_items")
    before_text = {name: http("GET", "/_sim/truth/" + name).text for name in names}
    truth = jsonl("/_sim/truth/feishu")
    items = {x["id"]: x for x in jsonl("/_sim/truth/feishu_work_items")}
    ops = op_truth_by_item()
    list_1001 = feishu_all({"project_key": "proj_alpha", "work_item_ids": [1001, 1002], "page_size": 200})
    wide = 3001
    wide_first = ops[wide][0]["operation_time"]
    late_t = MIN_MS                        # older than every record of 3001: a late record
    new_t = ops[wide][-1]["operation_time"] + 1
    assert late_t < wide_first
    wall_ms = int(time.time() * 1000)
    shown = add_records(feishu=[
        {"work_item_id": 1001, "operation_time": TIE_MS},
        {"work_item_id": wide, "operation_time": late_t, "operator_type": "auto"},
        {"work_item_id": 2003, "operation_time": new_t, "operator_type": "user",
         "operator": "7380021184471550023", "operation_type": "complete", "op_record_module": "node_mod",
         "source_type": "plugin", "source": "plugin_77",
         "record_contents": [{"object": {"object_type": "node", "object_value": "state_test"},
                              "extra": {"big": 123456789012345678901234567890}}]}])["feishu"]
    want = [feishu_added_record(items[1001], TIE_MS, 1),
            feishu_added_record(items[wide], late_t, 2, operator_type="auto", operator="auto_8842",
                                source_type="auto", source="auto_8842"),
            feishu_added_record(items[2003], new_t, 3, operator="7380021184471550023",
                                operation_type="complete", op_record_module="node_mod",
                                source_type="plugin", source="plugin_77",
                                record_contents=[{"object": {"object_type": "node", "object_value": "state_test"},
                                                  "extra": {"big": 123456789012345678901234567890}}])]
    check("add Feishu: records with their defaults (item's space and type, user 7491126018028090001, "
          "modify, field_mod, one field change)", shown == want, shown)
    check("add Feishu: served key order", [list(r) for r in shown] == [list(r) for r in want])
    want_keys = ["project_key", "work_item_id", "work_item_type_key", "operation_time", "operator_type",
                 "operator", "operation_type", "op_record_module", "source_type", "source", "record_contents"]
    check("add Feishu: key order of a record with a source", list(shown[1]) == want_keys, list(shown[1]))
    check("add Feishu: the truth holds them in their place",
          jsonl("/_sim/truth/feishu") == feishu_truth_with(truth, want))
    check("add Feishu: big numbers written exactly",
          '"big":123456789012345678901234567890' in http("GET", "/_sim/truth/feishu").text)
    got = feishu_all({"project_key": "proj_alpha", "work_item_ids": [1001, 1002], "page_size": 200})
    at = next(k for k, r in enumerate(list_1001) if r["operation_time"] > TIE_MS)
    check("add Feishu: list call serves it after the records of the same time (1001, 1001, 1002, new)",
          got == list_1001[:at] + [want[0]] + list_1001[at:]
          and [r["work_item_id"] for r in got[at - 3:at + 1]] == [1001, 1001, 1002, 1001], got[at - 3:at + 2])
    got = feishu_all({"project_key": FEISHU_WIDE, "work_item_ids": [wide]})
    check("add Feishu: a late record is served first, by its time", got == [want[1]] + ops[wide], got[:2])
    r = flist({"project_key": FEISHU_WIDE, "work_item_ids": [wide], "start": MIN_MS, "end": MIN_MS + WEEK})
    check("add Feishu: a window in the past finds the late record",
          r.json["data"]["op_records"] == [want[1]] and r.json["data"]["total"] == 1, r)
    got = feishu_all({"project_key": "proj_beta", "work_item_ids": [2003], "operator_type": ["user"],
                      "source_type": ["plugin"], "op_record_module": ["node_mod"]})
    check("add Feishu: the list filters see the given fields", got == [want[2]], got)
    pages = feishu_pages({"project_key": "proj_alpha", "work_item_ids": [1001, 1002], "page_size": 4})
    paged = [rec for _, data in pages for rec in data["op_records"]]
    check("add Feishu: paging with cursors serves the new list, total counts it",
          paged == list_1001[:at] + [want[0]] + list_1001[at:]
          and all(data["total"] == len(list_1001) + 1 for _, data in pages)
          and [len(data["op_records"]) for _, data in pages][:3] == [4, 1, 4], [len(d["op_records"]) for _, d in pages])

    after = {x["id"]: x for x in jsonl("/_sim/truth/feishu_work_items")}
    others = max(x["updated_at"] for i, x in after.items() if i not in (1001, wide, 2003))
    t1, t2, t3 = (after[i]["updated_at"] for i in (1001, wide, 2003))
    check("add Feishu: updated_at = simulated now + k ms for the k-th record, newer than every other item",
          t2 == t1 + 1 and t3 == t1 + 2 and t1 > others and t1 - 1 >= max(wall_ms, others), (t1, t2, t3, others))
    check("add Feishu: served_records and latest_record_ms count them", [
        (after[i]["served_records"], after[i]["latest_record_ms"]) for i in (1001, wide, 2003)] == [
        (items[1001]["served_records"] + 1, items[1001]["latest_record_ms"]),
        (items[wide]["served_records"] + 1, items[wide]["latest_record_ms"]),
        (items[2003]["served_records"] + 1, new_t)], [after[i] for i in (wide, 2003)])
    check("add Feishu: a new user-type operator becomes a participant",
          after[2003]["participants"] == sorted(set(items[2003]["participants"]) | {"7380021184471550023"}))
    check("add Feishu: nothing else of the items changes (state, created/updated_by, name)", all(
        dict(after[i], updated_at=0, served_records=0, latest_record_ms=0, participants=0)
        == dict(items[i], updated_at=0, served_records=0, latest_record_ms=0, participants=0)
        for i in (1001, wide, 2003))
          and all(after[i] == items[i] for i in after if i not in (1001, wide, 2003)))
    check("add Feishu: no coverage violation (updated_at >= every record)",
          not any(after[i]["violates_coverage"] for i in (1001, wide, 2003)))
    for project, item in (("proj_alpha", 1001), (FEISHU_WIDE, wide), ("proj_beta", 2003)):
        r = ffilter({"work_item_type_keys": all_type_keys(project), "updated_at": {"start": t1}}, project)
        check(f"add Feishu: a listing by updated_at since the addition finds {item}",
              feishu_ok(r) and [x["id"] for x in r.json["data"]] == [item]
              and r.json["data"][0]["updated_at"] == after[item]["updated_at"], r)
        r = ffilter({"work_item_type_keys": all_type_keys(project), "page_size": 1}, project)
        check(f"add Feishu: {item} leads the listing of its space", r.json["data"][0]["id"] == item, r)
    check("add Feishu: the state's own time does not move",
          ffilter({"work_item_type_keys": ["story"], "work_item_ids": [1001]}).json["data"][0]
          ["work_item_status"]["updated_at"] == items[1001]["updated_at"])

    # A second post appends; a terminated item is reached with work_item_status.
    shown = add_records(feishu=[{"work_item_id": 1017, "operation_time": TIE_MS}])["feishu"]
    want.append(feishu_added_record(items[1017], TIE_MS, 4))
    check("add Feishu: a second post appends (config shows all four, numbered on)", shown == want, shown[-1:])
    t4 = jsonl("/_sim/truth/feishu_work_items")
    t4 = next(x["updated_at"] for x in t4 if x["id"] == 1017)
    check("add Feishu: a later addition is newer still", t4 > t3, (t4, t3))
    r = ffilter({"work_item_type_keys": ["story"], "updated_at": {"start": t4}})
    check("add Feishu: a terminated item is not listed without work_item_status", feishu_ok(r)
          and r.json["data"] == [], r)
    r = ffilter({"work_item_type_keys": ["story"], "updated_at": {"start": t4},
                 "work_item_status": [{"state_key": "terminated"}]})
    check("add Feishu: ... but with work_item_status terminated", feishu_ok(r)
          and [x["id"] for x in r.json["data"]] == [1017], r)
    check("add Feishu: truth after two posts", jsonl("/_sim/truth/feishu") == feishu_truth_with(truth, want))

    # A record added in the part a cursor has already read shifts the rest.
    body = {"project_key": "proj_alpha", "work_item_ids": [1001], "page_size": 6}
    first = flist(dict(body, start_from="")).json["data"]
    add_records(feishu=[{"work_item_id": 1001, "operation_time": MIN_MS}])
    rest, cursor = [], first["start_from"]
    while cursor:
        data = flist(dict(body, start_from=cursor)).json["data"]
        rest += data["op_records"]
        cursor = data["start_from"]
    now_1001 = feishu_all({"project_key": "proj_alpha", "work_item_ids": [1001]})
    check("add Feishu: a cursor holds an offset: an addition before it serves one record twice, "
          "not the added one", now_1001[0]["record_contents"][0]["new"] == ["added record 5"]
          and first["op_records"] == now_1001[1:7] and rest == now_1001[6:]
          and rest[0] == first["op_records"][-1], (len(first["op_records"]), len(rest)))
    reset()
    check("add Feishu: reset removes every added record and restores the items",
          all(http("GET", "/_sim/truth/" + name).text == before_text[name] for name in names))
    configure(feishu_qps=0)
    check("add Feishu: reset: the list call serves what it served",
          feishu_all({"project_key": "proj_alpha", "work_item_ids": [1001, 1002], "page_size": 200}) == list_1001)


def test_add_records_huawei():
    reset()
    names = ("huawei", "huawei_v4_records", "huawei_issues")
    before_text = {name: http("GET", "/_sim/truth/" + name).text for name in names}
    v2 = jsonl("/_sim/truth/huawei")
    max_entry = max(x["entry"]["id"] for x in v2)
    max_detail = max(d["id"] for x in v2 for d in x["entry"]["details"])
    issues = {x["issue"]["id"]: x for x in jsonl("/_sim/truth/huawei_issues")}
    hist = {i: hw_all(p, i)[0] for p, i in ((HW_PROJECT, 100), (HW_WIDE, 8000010), (HW_PROJECT, 107))}
    newest_100 = int(hist[100][0]["created_on"])
    stamps = sorted(int(e["created_on"]) for e in hist[8000010])
    assert len(stamps) >= 2 and stamps[-1] - stamps[-2] > 1000, stamps
    late = stamps[-2] + 1000                     # between its last two entries: a late entry
    new_t = newest_100 + 60000
    wall_s = int(time.time())
    shown = add_records(huawei=[
        {"issue_id": 100, "created_on": new_t},
        {"issue_id": 8000010, "created_on": late, "user": 2233, "notes": "迟到的记录",
         "detail": {"name": "status_id", "old_value": None, "new_value": "已关闭", "operation": "修改"}},
        {"issue_id": 107, "created_on": TIE_MS},
        {"issue_id": 100, "created_on": new_t, "detail": {"name": "priority_id", "old_value": "低",
                                                           "new_value": "高"}}])["huawei"]
    # Ids are never handed out twice: earlier sections may have used some.
    first_entry, first_detail = shown[0]["entry"]["id"], shown[0]["entry"]["details"][0]["id"]
    check("add Huawei: new entry and detail ids lie above every id of the data",
          first_entry > max_entry and first_detail > max_detail, (first_entry, first_detail))
    max_entry, max_detail = first_entry - 1, first_detail - 1
    users = {u["id"]: u for u in dataset.HUAWEI_USERS}

    def entry(k, t, user=1111, notes=None, **detail):
        d = {"id": max_detail + k, "journal_id": max_entry + k, "property": "attr", "old_value": "",
             "new_value": f"<p>added entry {k}</p>", "name": "description", "operation": "修改"}
        d.update(detail)
        if d["old_value"] is None:
            del d["old_value"]
        out = {"id": max_entry + k}
        if notes is not None:
            out["notes"] = notes
        out.update({"created_on": str(t), "user": users[user], "details": [d]})
        return out

    want = [{"project_id": HW_PROJECT, "issue_id": 100, "entry": entry(1, new_t)},
            {"project_id": HW_WIDE, "issue_id": 8000010,
             "entry": entry(2, late, user=2233, notes="迟到的记录", old_value=None, new_value="已关闭",
                            name="status_id")},
            {"project_id": HW_PROJECT, "issue_id": 107, "entry": entry(3, TIE_MS)},
            {"project_id": HW_PROJECT, "issue_id": 100,
             "entry": entry(4, new_t, old_value="低", new_value="高", name="priority_id")}]
    check("add Huawei: entries with consecutive new ids, one detail, the defaults "
          "(user 1111, a description change)", shown == want, shown)
    check("add Huawei: key order as served", [list(x["entry"]) for x in shown] == [list(x["entry"]) for x in want]
          and [list(x["entry"]["details"][0]) for x in shown] == [list(x["entry"]["details"][0]) for x in want])
    e = {x["entry"]["id"]: x["entry"] for x in want}
    e1, e2, e3, e4 = (max_entry + k for k in (1, 2, 3, 4))
    got100 = hw_all(HW_PROJECT, 100)
    check("add Huawei: get-record serves new entries first, the later id of the same time first",
          got100 == ([e[e4], e[e1]] + hist[100], len(hist[100]) + 2), got100[0][:3])
    at = next(k for k, x in enumerate(hist[8000010]) if int(x["created_on"]) <= late)
    got = hw_all(HW_WIDE, 8000010)
    check("add Huawei: a late entry is placed by its created_on (newest first)",
          got == (hist[8000010][:at] + [e[e2]] + hist[8000010][at:], len(hist[8000010]) + 1) and at == 1,
          (at, [x["created_on"] for x in got[0]]))
    check("add Huawei: an issue without history gets its first entry", hw_all(HW_PROJECT, 107) == ([e[e3]], 1))
    pages = [hw_get({"project_id": HW_PROJECT, "issue_id": 100, "limit": 1, "offset": k}).json["result"]
             for k in range(len(hist[100]) + 2)]
    check("add Huawei: offset paging and journals_total follow",
          [x for p in pages for x in p["record"]] == got100[0]
          and {p["journals_total"] for p in pages} == {len(hist[100]) + 2})
    v2_now = jsonl("/_sim/truth/huawei")
    check("add Huawei: truth holds them as get-record orders them", all(
        [x["entry"] for x in v2_now if x["issue_id"] == i] == hw_all(p, i)[0]
        for p, i in ((HW_PROJECT, 100), (HW_WIDE, 8000010), (HW_PROJECT, 107)))
          and len(v2_now) == len(v2) + 4
          and [x for x in v2_now if x["entry"]["id"] <= max_entry] == v2)
    check("add Huawei: every issue's entries by created_on desc, then id desc", all(
        keys == sorted(keys) for keys in [
            [(-int(x["entry"]["created_on"]), -x["entry"]["id"]) for x in v2_now if x["issue_id"] == i]
            for i in (100, 8000010, 107)]))

    # V4 records (the main project's cannot all be read by offset under the cap)
    configure(huawei_v4_max_offset=None)
    v4_truth = jsonl("/_sim/truth/huawei_v4_records")
    by_id = {x["record"]["id"]: x for x in v4_truth}
    rec2 = by_id.get(max_detail + 2, {}).get("record")
    check("add Huawei: one V4 record per added detail",
          all(max_detail + k in by_id for k in (1, 2, 3, 4)) and rec2 == {
              "id": max_detail + 2, "issue_id": 8000010, "field_key": "status_id", "field_name": "状态",
              "property": "attr", "new_value": "已关闭", "operated_time": late, "operation": "modify",
              "operator": {"user_id": users[2233]["identifier"], "user_num_id": 2233, "id": 2233,
                           "name": users[2233]["name"], "nick_name": users[2233]["nick_name"]}}, rec2)
    for project in (HW_PROJECT, HW_WIDE):
        truth = [x["record"] for x in v4_truth if x["project_id"] == project]
        got, total = hw4_all_records(project)
        check(f"add Huawei: V4 records of {project[:6]} == truth, newest first (time desc, id desc)",
              got == truth and total == len(truth) and [(-r["operated_time"], -r["id"]) for r in got]
              == sorted((-r["operated_time"], -r["id"]) for r in got), (len(got), total))
    r = hw4_records({"operated_time_interval": f"{late},{late}"}, project=HW_WIDE)
    check("add Huawei: V4 interval finds the late record", r.json["records"] == [rec2] and r.json["total"] == 1, r)
    r = hw4_records({"operated_time_interval": f"{new_t},{new_t}"})
    check("add Huawei: V4 records of one time: the higher id first",
          [x["id"] for x in r.json["records"]] == [max_detail + 4, max_detail + 1], r)

    # The issues: updated time moved, counts follow, nothing else changes
    after = {x["issue"]["id"]: x for x in jsonl("/_sim/truth/huawei_issues")}
    others = max(x["updated_ms"] for i, x in after.items() if i not in (100, 8000010, 107))
    u100, u10, u107 = (after[i]["updated_ms"] for i in (100, 8000010, 107))
    check("add Huawei: updated time = now + k s for the k-th entry (100 keeps its later one)",
          u10 % 1000 == 0 and u107 == u10 + 1000 and u100 == u10 + 2000 and u10 - 1000 >= max(wall_s * 1000, others)
          and u10 > others, (u10, u107, u100, others))
    check("add Huawei: latest_entry_ms and v4_records follow", [
        (after[i]["latest_entry_ms"], after[i]["v4_records"]) for i in (100, 8000010, 107)] == [
        (new_t, issues[100]["v4_records"] + 2),
        (issues[8000010]["latest_entry_ms"], issues[8000010]["v4_records"] + 1), (TIE_MS, 1)])
    check("add Huawei: status, name, created and closed time do not change", all(
        dict(after[i]["issue"], updated_time="") == dict(issues[i]["issue"], updated_time="")
        and after[i]["created_ms"] == issues[i]["created_ms"] and after[i]["closed_ms"] == issues[i]["closed_ms"]
        for i in (100, 8000010, 107)) and all(after[i] == issues[i] for i in after if i not in (100, 8000010, 107)))
    r = hw4_issues({"updated_time_interval": f"{u10},"}, project=HW_WIDE)
    check("add Huawei: the V4 issue list by updated time finds the issue",
          [i["id"] for i in r.json["issues"]] == [8000010] and r.json["total"] == 1, r)
    r = hw4_issues({"updated_time_interval": f"{u10},"})
    check("add Huawei: ... in the main project both, newest first",
          [i["id"] for i in r.json["issues"]] == [100, 107], r)

    # Issue 4000000000: the offset cap keeps the newest 10100 reachable
    huge = dataset.HUAWEI_HUGE_ISSUE
    first = hw_get({"project_id": HW_PROJECT, "issue_id": huge, "limit": 100}).json["result"]
    add_records(huawei=[{"issue_id": huge, "created_on": int(first["record"][0]["created_on"]) + 1000}])
    now = hw_get({"project_id": HW_PROJECT, "issue_id": huge, "limit": 100}).json["result"]
    check("add Huawei: 4000000000 serves the new entry first, journals_total 10251",
          now["journals_total"] == dataset.HUAWEI_HUGE_COUNT + 1 and now["record"][0]["id"] == max_entry + 5
          and now["record"][1:] == first["record"][:99], now["journals_total"])
    r = hw_get({"project_id": HW_PROJECT, "issue_id": huge, "limit": 100, "offset": 10000})
    check("add Huawei: the offset cap still applies (the newest 10100 of 10251 reachable)",
          r.status == 200 and len(r.json["result"]["record"]) == 100
          and hw_error(hw_get({"project_id": HW_PROJECT, "issue_id": huge, "limit": 100, "offset": 10100}),
                       400, "PM.02174103"), r)

    reset()
    check("add Huawei: reset removes every added entry and restores the issues",
          all(http("GET", "/_sim/truth/" + name).text == before_text[name] for name in names))
    check("add Huawei: reset: get-record serves what it served", hw_all(HW_PROJECT, 100)[0] == hist[100])
    again = add_records(huawei=[{"issue_id": 101, "created_on": TIE_MS}])["huawei"][0]["entry"]
    check("add Huawei: ids are never handed out twice (not even after a reset), numbering restarts",
          again["id"] == max_entry + 6 and again["details"][0]["id"] == max_detail + 6
          and again["details"][0]["new_value"] == "<p>added entry 1</p>", again)
    reset()


def test_add_records_concurrent():
    """Additions while listings are read: every answer is one consistent
    state (total, paging), and nothing breaks."""
    reset()
    configure(feishu_qps=0)
    base_f = len(feishu_all({"project_key": "proj_alpha", "work_item_ids": [1003], "page_size": 200}))
    base_h = hw_get({"project_id": HW_PROJECT, "issue_id": 102, "limit": 100}).json["result"]["journals_total"]
    posts = 15
    start_t = 1790000000000

    def adder():
        for k in range(posts):
            configure(add_records={"feishu": [{"work_item_id": 1003, "operation_time": start_t + k}],
                                   "huawei": [{"issue_id": 102, "created_on": start_t + k}]})
        return True

    def feishu_reader():
        out = []
        for _ in range(30):
            r = flist({"project_key": "proj_alpha", "work_item_ids": [1003], "page_size": 200})
            data = r.json["data"]
            out.append(len(data["op_records"]) == data["total"] and base_f <= data["total"] <= base_f + posts
                       and [x["operation_time"] for x in data["op_records"]]
                       == sorted(x["operation_time"] for x in data["op_records"]))
        return all(out)

    def huawei_reader():
        out = []
        for _ in range(30):
            res = hw_get({"project_id": HW_PROJECT, "issue_id": 102, "limit": 100}).json["result"]
            n = res["journals_total"] - base_h
            ids = [x["id"] for x in res["record"][:n]]
            out.append(0 <= n <= posts and ids == sorted(ids, reverse=True) and len(res["record"]) == min(100, n + base_h))
        return all(out)

    threads, results = parallel([adder, feishu_reader, feishu_reader, huawei_reader, huawei_reader])
    for t in threads:
        t.join(120)
    check("add concurrent: every answer during additions is consistent", results == [True] * 5, results)
    check("add concurrent: all additions made", len(feishu_all(
        {"project_key": "proj_alpha", "work_item_ids": [1003], "page_size": 200})) == base_f + posts
          and hw_get({"project_id": HW_PROJECT, "issue_id": 102}).json["result"]["journals_total"] == base_h + posts)
    reset()

# --------------------------------------------------------------------------
# Listeners: the second (small accept queue) listener, connection identity
# --------------------------------------------------------------------------

def listeners():
    r = http("GET", "/_sim/listeners")
    assert r.status == 200, r
    return r.json


def listen_overflows():
    r = http("GET", "/_sim/listen_overflows")
    assert r.status == 200, r
    return r.json


def settle_listeners(timeout=10):
    """Wait until no listener accepts anything for 300 ms (late connections
    of a burst); the last counts."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        now = {name: info["accepted"] for name, info in listeners().items()}
        # The call itself is one accepted connection on main.
        if last is not None and now["main"] == last["main"] + 1 \
                and all(now[n] == last[n] for n in now if n != "main"):
            return now
        last = now
        time.sleep(0.3)
    return None


def test_listeners():
    reset()
    info = listeners()
    main_port = sim_port()
    small_port = info.get("small_backlog", {}).get("port")
    small = f"http://127.0.0.1:{small_port}"
    check("listeners: main and small_backlog", info == {
        "main": {"port": main_port, "backlog": 128, "accepted": 1},
        "small_backlog": {"port": small_port, "backlog": 5, "accepted": 0}}
        and type(small_port) is int and small_port not in (0, main_port), info)

    # The same API and the same state on the second port.
    token = issue_feishu_token(base=small)
    r = flist({"project_key": "proj_alpha", "work_item_ids": [1001], "page_size": 3}, token=token, base=small)
    check("small_backlog: token and list call answered", r.status == 200 and r.json["err_code"] == 0
          and len(r.json["data"]["op_records"]) == 3, r)
    r_main = flist({"project_key": "proj_alpha", "work_item_ids": [1001], "page_size": 3}, token=token)
    check("small_backlog: its token is valid on main (one token store)",
          r_main.status == 200 and r_main.json["data"] == r.json["data"], r_main)
    r = http("POST", "/_sim/config", {"feishu_qps": 7}, base=small)
    check("small_backlog: config set there is the config of main",
          r.status == 200 and http("GET", "/_sim/config").json["feishu_qps"] == 7, r)
    r = http("GET", "/_sim/requests", base=small)
    log = request_log()
    check("small_backlog: one request log, shared",
          r.status == 200 and [json.loads(l) for l in r.text.splitlines()] == log, r)
    check("small_backlog: logged with listener small_backlog",
          [(e["api"], e["listener"], e["token"], e["status"]) for e in log]
          == [("feishu_auth", "small_backlog", "none", 200), ("feishu", "small_backlog", "issued", 200),
              ("feishu", "main", "issued", 200)], log)
    check("small_backlog: a connection each, numbered per listener",
          log[1]["connection"] == log[0]["connection"] + 1 and type(log[2]["connection"]) is int, log)
    r = hw_get({"project_id": HW_PROJECT, "issue_id": 9175005, "limit": 5})
    r_small = http("GET", RECORD + "?" + urllib.parse.urlencode(
        {"project_id": HW_PROJECT, "issue_id": 9175005, "limit": 5}),
        headers={"X-Auth-Token": HW_STATIC}, base=small)
    check("small_backlog: Huawei call answers as on main",
          r_small.status == 200 and r_small.json == r.json, r_small)
    # Accepted since the reset: small 5 (token, list, config, requests,
    # get-record); main 1 (listeners) + list, config get, requests, get-record,
    # this call = 6.
    info = listeners()
    check("listeners: accepted counts every connection",
          info["small_backlog"]["accepted"] == 5 and info["main"]["accepted"] == 6, info)

    # Keep-alive: the requests of one connection share its number.
    body = json.dumps({"project_key": "proj_alpha", "work_item_ids": [1001]})
    hdrs = {"X-PLUGIN-TOKEN": FEISHU_STATIC, "X-USER-KEY": USER_KEY, "Content-Type": "application/json"}
    reset()
    numbers = {}
    for name, port in (("main", main_port), ("small_backlog", small_port)):
        conn = http_client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(2):
            conn.request("POST", LIST, body, hdrs)
            conn.getresponse().read()
        conn.close()
        conn = http_client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("POST", LIST, body, hdrs)
        conn.getresponse().read()
        conn.close()
    log = request_log()
    for name in ("main", "small_backlog"):
        numbers[name] = [e["connection"] for e in log if e["listener"] == name]
        k = numbers[name]
        check(f"keep-alive on {name}: same connection number, a new connection another",
              len(k) == 3 and k[0] == k[1] and k[2] > k[1], log)
    info = listeners()
    check("listeners: a kept-alive connection is accepted once",
          info["small_backlog"]["accepted"] == 2 and info["main"]["accepted"] == 4, info)

    # Reset zeroes the counts; connection numbers go on (never repeat).
    reset()
    info = listeners()
    check("listeners: reset zeroes accepted", info["main"]["accepted"] == 1
          and info["small_backlog"]["accepted"] == 0 and info["small_backlog"]["port"] == small_port, info)
    flist({"project_key": "proj_alpha", "work_item_ids": [1001]}, base=small)
    entry = request_log()[0]
    check("listeners: connection numbers are not reused after a reset",
          entry["listener"] == "small_backlog" and entry["connection"] > numbers["small_backlog"][2], entry)
    check("listeners: control calls on small_backlog are not logged",
          http("GET", "/_sim/health", base=small).status == 200 and len(request_log()) == 1)

    # In process: an unreadable or odd netstat file gives nulls.
    import tempfile
    import oprec_sim
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "netstat")
        with open(path, "w") as f:
            f.write("TcpExt: SyncookiesSent ListenOverflows ListenDrops\nTcpExt: 0 12 15\n"
                    "IpExt: InNoRoutes\nIpExt: 3\n")
        parsed = oprec_sim.read_listen_overflows(path)
        with open(path, "w") as f:
            f.write("TcpExt: SyncookiesSent\nTcpExt: 0\n")
        missing_fields = oprec_sim.read_listen_overflows(path)
        missing_file = oprec_sim.read_listen_overflows(os.path.join(tmp, "none"))
    check("listen_overflows: parsed from the TcpExt names and values",
          parsed == (12, 15) and missing_fields == (None, None) and missing_file == (None, None),
          (parsed, missing_fields, missing_file))
    reset()


def test_listen_overflows():
    reset()
    counters = listen_overflows()
    linux = os.path.exists("/proc/net/netstat")
    check("listen_overflows: integers on Linux (nulls elsewhere)",
          set(counters) == {"listen_overflows", "listen_drops"}
          and all((type(v) is int and v >= 0) if linux else v is None for v in counters.values()), counters)
    check("listen_overflows: not logged", request_log() == [])
    if not linux:
        return
    # A burst of 40 connects to the small accept queue (backlog 5): the
    # simulator cannot accept them as fast as the kernel completes them, so
    # the queue overflows (SYNs dropped; a client would retry after 1 s).
    small_port = listeners()["small_backlog"]["port"]
    before = listen_overflows()
    socks = []
    try:
        for _ in range(40):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            socks.append(s)
            s.connect_ex(("127.0.0.1", small_port))
        time.sleep(0.2)
        after = listen_overflows()
    finally:
        for s in socks:
            s.close()
    delta = after["listen_overflows"] - before["listen_overflows"]
    check("listen_overflows: a burst of 40 connects overflows the small queue", delta > 0, (before, after))
    if VERBOSE:
        print(f"     burst: ListenOverflows +{delta}, ListenDrops "
              f"+{after['listen_drops'] - before['listen_drops']}")
    check("listen_overflows: the small listener still serves after the burst",
          settle_listeners() is not None
          and http("GET", "/_sim/health", base=f"http://127.0.0.1:{small_port}").status == 200)
    reset()


def test_small_backlog_flag():
    """--small-backlog N sets the second queue, 0 opens none, the start-up
    line stays the one line on stdout."""
    for extra, expect in ((["--small-backlog", "0"], None), (["--small-backlog", "3"], 3)):
        proc, line, _ = free_start(*extra)
        try:
            ok = line.startswith("oprec simulator listening on http://127.0.0.1:")
            info = {}
            if ok:
                base = line.rsplit(" ", 1)[1]
                info = http("GET", "/_sim/listeners", base=base).json
                want = {"main"} if expect is None else {"main", "small_backlog"}
                ok = set(info) == want and info["main"]["backlog"] == 128 and (
                    expect is None or info["small_backlog"]["backlog"] == expect)
        finally:
            proc.terminate()
            out, err = proc.communicate(timeout=10)
        check(f"--small-backlog {extra[1]}: listeners and start-up line", ok and out == "" and err == "",
              (line, info, out, err))
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "oprec_sim.py"), "--port", "0",
                             "--small-backlog", "-1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out, err = proc.communicate(timeout=30)
    check("--small-backlog -1 refused", proc.returncode == 2 and out == "" and "small-backlog" in err, err)

# --------------------------------------------------------------------------

def free_start(*extra):
    sim = os.path.join(HERE, "oprec_sim.py")
    start_s = int(time.time())
    proc = subprocess.Popen([sys.executable, sim, "--port", "0", *extra], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    return proc, line, start_s


def main():
    global BASE, HOSTPORT, SIM_PID
    proc, line, start_s = free_start()
    SIM_PID = proc.pid
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
                     test_fail_next, test_request_log, test_fault_config, test_fault_selection, test_fault_match, test_in_flight,
                     test_fault_order_and_rate_limit, test_fault_throttle_and_error, test_fault_headers,
                     test_fault_reset, test_fault_paging_loop, test_fault_template, test_fault_endless,
                     test_token_keys, test_proj_edge, test_feishu_filter_validation,
                     test_feishu_filter_data, test_feishu_types_and_users,
                     test_enumeration_quota_and_faults, test_huawei_v4_records, test_huawei_v4_issues,
                     test_existing_data_unchanged, test_wide_data, test_edit_during_listing_config,
                     test_edit_during_listing_feishu, test_edit_during_listing_huawei,
                     test_add_records_config, test_add_records_feishu, test_add_records_huawei,
                     test_add_records_concurrent, test_listeners, test_listen_overflows,
                     test_small_backlog_flag):
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
