#!/usr/bin/python3
"""oprec API simulator: serves the Feishu Project operation-record API and the
Huawei CodeArts Req issue-history API (with their token endpoints) on one
local port, for the oprec_fdw regression tests.

    /usr/bin/python3 test/simulator/oprec_sim.py --port 18765 [--small-backlog 5]

A second listener on an ephemeral port serves the same API and state with a
small accept queue (listen backlog 5, like many small gateways), so that a
client's connection bursts can overflow it; /_sim/listeners names its port.

Control endpoints live under /_sim/ (see README.md): reset, config, token
expiry, the request log and the "truth" (every record the APIs serve).
"""

import argparse
import ipaddress
import os
import re
import socket
import struct
import sys
import threading
import time
import traceback
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.dont_write_bytecode = True   # keep the source tree free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import faults  # noqa: E402
import feishu  # noqa: E402
import huawei  # noqa: E402
from common import (INVALID_JSON, ConfigError, Request, Response, SimState,  # noqa: E402
                    jsonl_line, loads_exact)
from dataset import FeishuData, HuaweiData  # noqa: E402

MAX_BODY_BYTES = 16 * 1024 * 1024
MAIN_BACKLOG = 128
SMALL_BACKLOG = 5          # socketserver's default listen() backlog
NETSTAT = "/proc/net/netstat"

# path -> (api name for the log, method, handler)
API_ROUTES = {
    "/open_api/authen/plugin_token": ("feishu_auth", "POST", feishu.plugin_token),
    "/open_api/op_record/work_item/list": ("feishu", "POST", feishu.list_records),
    "/v3/auth/tokens": ("huawei_iam", "POST", huawei.iam_tokens),
    "/v2/issues/get-record": ("huawei", "GET", huawei.get_record),
    "/open_api/user/query": ("feishu", "POST", feishu.query_users),
}
# Routes with path parameters (captured into req.path_params), tried in order
# after the exact routes.
PATTERN_ROUTES = (
    (re.compile(r"/open_api/([^/]+)/work_item/filter"), ("feishu", "POST", feishu.filter_work_items)),
    (re.compile(r"/open_api/([^/]+)/work_item/all-types"), ("feishu", "GET", feishu.all_types)),
    (re.compile(r"/v4/projects/([^/]+)/issues/records"), ("huawei", "GET", huawei.list_project_records)),
    (re.compile(r"/v4/projects/([^/]+)/issues"), ("huawei", "POST", huawei.list_issues)),
)
DELAYED_APIS = ("feishu", "huawei")


def resolve_route(req):
    """(api, method, handler) for the request's path, or None; sets
    req.path_params for a pattern route."""
    route = API_ROUTES.get(req.path)
    if route is not None:
        return route
    for pattern, route in PATTERN_ROUTES:
        match = pattern.fullmatch(req.path)
        if match:
            req.path_params = match.groups()
            return route
    return None


# --------------------------------------------------------------------------
# Request log
# --------------------------------------------------------------------------

def _mask_secrets(obj):
    """Hide plugin_secret / password values (but keep the objects around them)."""
    if isinstance(obj, dict):
        return {k: ("***" if k in ("plugin_secret", "password")
                    and not isinstance(v, (dict, list)) else _mask_secrets(v))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [_mask_secrets(v) for v in obj]
    return obj


def _summarize(api, payload):
    """(err_code, records, has_more) of an answer, for the request log."""
    huawei_family = api in ("huawei", "huawei_iam")
    err_code = "" if huawei_family else 0
    records, has_more = 0, None
    if not isinstance(payload, dict):
        return err_code, records, has_more
    if "err_code" in payload:
        err_code = payload["err_code"]
    elif "error_code" in payload:
        err_code = payload["error_code"]
    elif isinstance(payload.get("error"), dict) and "code" in payload["error"]:
        err_code = payload["error"]["code"]
    if huawei_family and err_code != "":
        err_code = str(err_code)
    data = payload.get("data")
    if isinstance(data, dict):
        if isinstance(data.get("op_records"), list):
            records = len(data["op_records"])
        if isinstance(data.get("has_more"), bool):
            has_more = data["has_more"]
    elif isinstance(data, list) and not huawei_family:
        records = len(data)                 # filter, all-types, user/query
    result = payload.get("result")
    if isinstance(result, dict) and isinstance(result.get("record"), list):
        records = len(result["record"])
    if huawei_family:
        for key in ("records", "issues"):   # the V4 calls
            if isinstance(payload.get(key), list):
                records = len(payload[key])
    return err_code, records, has_more


def open_log_entry(state, api, req, token_class):
    """Log the request and count it in `state.in_flight`; whoever opens an
    entry must call state.request_done() exactly once afterwards."""
    body = req.json
    if body is INVALID_JSON:
        body = None
    if api in ("feishu_auth", "huawei_iam"):
        body = _mask_secrets(body)
    with state.lock:
        entry = {"seq": len(state.log) + 1, "api": api, "method": req.method,
                 "path": req.path,
                 "query": {k: v[0] for k, v in req.query.items()},
                 "body": body, "user_key": req.header("X-USER-KEY"),
                 "token": token_class, "status": None, "err_code": None,
                 "records": None, "has_more": None, "fault": None,
                 "in_flight": state.in_flight + 1,
                 "listener": req.listener, "connection": req.connection}
        state.log.append(entry)
        state.in_flight += 1
    return entry


def close_log_entry(state, entry, api, resp):
    if resp.log_summary is not None:
        status, err_code, records, has_more = resp.log_summary
    else:
        status = resp.status
        err_code, records, has_more = _summarize(api, resp.payload)
    with state.lock:
        entry.update(status=status, err_code=err_code, records=records,
                     has_more=has_more)
        if resp.log_edited:
            entry["edited"] = list(resp.log_edited)   # only where an edit happened
        if resp.token is not None:
            entry["token"] = resp.token


# --------------------------------------------------------------------------
# API dispatch
# --------------------------------------------------------------------------

def _injected_response(fault):
    """The answer configured with fail_next."""
    headers = {}
    content_type = "application/json; charset=utf-8"
    for name, value in fault["headers"].items():
        if name.lower() == "content-type":
            content_type = value
        else:
            headers[name] = value
    if fault["has_raw"]:
        return Response(fault["status"], fault["raw"], headers=headers,
                        content_type=content_type)
    return Response.json(fault["status"], fault["body"], headers=headers,
                         content_type=content_type)


def _initial_token_class(state, api, req):
    if api == "feishu":
        return feishu.classify_token(state, req)
    if api == "huawei":
        return huawei.classify_token(state, req)
    return "none"


def _normal_answer(state, req, route, injectable=True):
    """fail_next, else the route's handler."""
    injected = state.take_fault(req.path) if injectable else None
    if injected:
        return _injected_response(injected)
    if route is None:
        return Response.json(404, {"error": "not found", "path": req.path})
    if req.method != route[1]:
        return Response.json(405, {"error": f"method {req.method} not allowed, use {route[1]}"},
                             headers={"Allow": route[1]})
    return route[2](state, req)


def dispatch_api(state, req):
    """Order: log entry, delay_ms, faults (first picking fault wins; slow sleeps
    and goes on), fail_next, routing, then the handler (auth, rate limit, ...).
    A request still delayed when /_sim/reset comes (its client gave up) uses
    none of the faults configured after the reset.
    The request counts in `in_flight` from its log entry until its answer is
    built (delays and slow faults included; sending the answer, e.g. an
    endless stream, is not)."""
    route = resolve_route(req)
    api = route[0] if route else "other"
    generation = state.log_generation
    entry = open_log_entry(state, api, req, _initial_token_class(state, api, req))
    try:
        return _answer_api(state, req, route, api, generation, entry)
    finally:
        state.request_done()   # every path, exceptions included: exactly once


def _answer_api(state, req, route, api, generation, entry):
    picked = None
    try:
        if api in DELAYED_APIS:
            delay_ms = state.cfg("delay_ms")
            if delay_ms:
                time.sleep(delay_ms / 1000.0)
        current = state.log_generation == generation
        picked = state.pick_fault(req) if current else None
        resp = None
        if picked is not None:
            with state.lock:
                entry["fault"] = picked.kind
            if picked.kind == "slow":
                time.sleep(picked.delay_ms / 1000.0)
            else:
                resp = faults.respond(state, picked, req)
        if resp is None:
            resp = _normal_answer(state, req, route, injectable=current)
        if picked is not None:
            faults.apply_headers(resp, picked)   # they win over everything below
    except Exception as exc:  # a handler bug must not take the server down
        traceback.print_exc(file=sys.stderr)
        resp = Response.json(500, {"error": "internal simulator error", "detail": repr(exc)})
    # Every answer on a vendor path carries that vendor's request id header,
    # made from the log sequence number so that tests can name it (unless a
    # fault or fail_next sets it, in any letter case).
    if api.startswith("feishu"):
        if not resp.has_header("X-Tt-Logid"):
            resp.headers["X-Tt-Logid"] = f"{entry['seq']:020x}"
    elif api.startswith("huawei"):
        if not resp.has_header("X-Request-Id"):
            resp.headers["X-Request-Id"] = f"{entry['seq']:032x}"
    close_log_entry(state, entry, api, resp)
    return resp


# --------------------------------------------------------------------------
# Control endpoints (/_sim/...): never rate-limited, never logged
# --------------------------------------------------------------------------

class TruthCache:
    """The truth files are built once and kept while the data stay as they
    are: until add_records adds records or a reset removes them
    (state.data_version).  The update times of work items and issues
    (edit_during_listing, add_records) move more often: that truth is built on
    every request.  The objects are collected under the state lock, as the
    API calls read them (records and entries are never changed once made, so
    they are written out after it)."""

    LIVE = ("feishu_work_items", "huawei_issues")

    def __init__(self, state):
        self._state = state
        self._cache = {}          # name -> (data_version, bytes)

    def _cached(self, name, lines):
        with self._state.lock:
            version = self._state.data_version
            hit = self._cache.get(name)
            if hit is not None and hit[0] == version:
                return hit[1]
            objects = list(lines())
        text = "".join(jsonl_line(obj) for obj in objects).encode("utf-8")
        with self._state.lock:
            if self._state.data_version == version:
                self._cache[name] = (version, text)
        return text

    def feishu(self):
        return self._cached("feishu", lambda: (r.data for r in self._state.feishu_data.truth()))

    def huawei(self):
        return self._cached("huawei", lambda: ({"project_id": p, "issue_id": i, "entry": e}
                                               for p, i, e in self._state.huawei_data.truth()))

    def enumeration(self, name):
        """The truth of the enumeration calls (see README.md)."""
        if name in self.LIVE:
            with self._state.lock:
                return "".join(jsonl_line(obj) for obj in self._enumeration_lines(name)).encode("utf-8")
        return self._cached(name, lambda: self._enumeration_lines(name))

    def _enumeration_lines(self, name):
        feishu_catalog = self._state.feishu_data.catalog
        huawei_catalog = self._state.huawei_data.catalog
        if name == "feishu_work_items":
            return [item.truth() for items in feishu_catalog.by_project.values() for item in items]
        if name == "feishu_types":
            return [dict(t, project_key=key) for key, types in feishu_catalog.types.items()
                    for t in types]
        if name == "feishu_users":
            return list(feishu_catalog.users.values())
        if name == "huawei_v4_records":
            return [{"project_id": p, "record": r} for p, records in huawei_catalog.records.items()
                    for r in records]
        if name == "huawei_issues":
            return [issue.truth() for project_id in huawei_catalog.issues
                    for issue in huawei_catalog.listed(project_id)]
        raise KeyError(name)


ENUMERATION_TRUTH = ("feishu_work_items", "feishu_types", "feishu_users",
                     "huawei_v4_records", "huawei_issues")


JSONL = "application/x-ndjson; charset=utf-8"


def _public_config(state):
    with state.lock:
        config = dict(state.config)   # add_records: its lists are replaced, never changed
        fault = config["fail_next"]
        if fault:
            shown = {"path": fault["path"], "count": state.fail_remaining,
                     "status": fault["status"], "headers": fault["headers"]}
            if fault["has_raw"]:
                shown["raw"] = fault["raw"]
            else:
                shown["body"] = fault["body"]
            config["fail_next"] = shown
    return config


def _listeners(state):
    with state.lock:
        return {name: {"port": counts["port"], "backlog": counts["backlog"],
                       "accepted": counts["accepted"]}
                for name, counts in state.listeners.items()}


def read_listen_overflows(path=NETSTAT):
    """ListenOverflows and ListenDrops of the kernel's TcpExt counters (the
    whole network namespace, not only this process), None when unreadable.
    The file holds, per prefix, a line of names and then a line of values."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            lines = [line.split() for line in f if line.startswith("TcpExt:")]
    except OSError:
        return None, None
    if len(lines) < 2 or len(lines[0]) != len(lines[1]):
        return None, None
    counters = dict(zip(lines[0][1:], lines[1][1:]))

    def number(name):
        try:
            return int(counters[name])
        except (KeyError, ValueError):
            return None
    return number("ListenOverflows"), number("ListenDrops")


def dispatch_control(state, truth, req):
    key = (req.method, req.path)
    if key == ("GET", "/_sim/health"):
        return Response.text(200, "ok")
    if key == ("POST", "/_sim/reset"):
        state.reset()
        return Response.json(200, {"ok": True})
    if key == ("POST", "/_sim/config"):
        try:
            try:
                # Exact number text is kept (e.g. feishu_token_reported_ttl 1e30).
                body = loads_exact(req.body.decode("utf-8")) if req.body else None
            except (UnicodeDecodeError, ValueError, RecursionError):
                raise ConfigError("config body is not valid JSON") from None
            state.update_config(body)
        except ConfigError as exc:
            return Response.json(400, {"ok": False, "error": str(exc)})
        return Response.json(200, {"ok": True, "config": _public_config(state)})
    if key == ("GET", "/_sim/config"):
        return Response.json(200, _public_config(state))
    if key == ("POST", "/_sim/expire_tokens"):
        with state.lock:
            state.feishu_tokens.expire_all()
            state.huawei_tokens.expire_all()
        return Response.json(200, {"ok": True})
    if key == ("GET", "/_sim/in_flight"):
        with state.lock:
            peak = max((entry["in_flight"] for entry in state.log), default=0)
            return Response.json(200, {"in_flight": state.in_flight, "max_in_flight": peak})
    if key == ("GET", "/_sim/listeners"):
        return Response.json(200, _listeners(state))
    if key == ("GET", "/_sim/listen_overflows"):
        overflows, drops = read_listen_overflows()
        return Response.json(200, {"listen_overflows": overflows, "listen_drops": drops})
    if key == ("GET", "/_sim/requests"):
        with state.lock:
            text = "".join(jsonl_line(entry) for entry in state.log)
        return Response(200, text, content_type=JSONL)
    if key == ("GET", "/_sim/truth/feishu"):
        return Response(200, truth.feishu(), content_type=JSONL)
    if key == ("GET", "/_sim/truth/huawei"):
        return Response(200, truth.huawei(), content_type=JSONL)
    if req.method == "GET" and req.path.startswith("/_sim/truth/") \
            and req.path[len("/_sim/truth/"):] in ENUMERATION_TRUTH:
        return Response(200, truth.enumeration(req.path[len("/_sim/truth/"):]), content_type=JSONL)
    if key == ("GET", "/_sim/raise"):
        # Test hook: proves that a handler exception yields a 500, not a dead server.
        raise RuntimeError("deliberate failure requested via /_sim/raise")
    return Response.json(404, {"error": "unknown control endpoint", "path": req.path})


# --------------------------------------------------------------------------
# HTTP plumbing
# --------------------------------------------------------------------------

class BadRequest(Exception):
    pass


class SimHandler(BaseHTTPRequestHandler):
    # HTTP/1.1: keep-alive and "Expect: 100-continue" (handled by http.server).
    protocol_version = "HTTP/1.1"
    server_version = "oprec-sim/1.0"
    sys_version = ""
    timeout = 600

    def setup(self):
        super().setup()
        # Headers and body go out in two writes: without TCP_NODELAY, Nagle's
        # algorithm holds the body back until the client's delayed ACK
        # (about 40 ms per answer on a kept-alive connection).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # One handler per TCP connection: its requests share the number.
        self.connection_number = self.server.take_connection_number(self.request)

    def log_message(self, format, *args):  # quiet: no per-request output
        pass

    def version_string(self):
        return self.server_version

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_GET

    def _read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked()
        length_text = self.headers.get("Content-Length")
        if not length_text:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            raise BadRequest("bad Content-Length") from None
        if length < 0 or length > MAX_BODY_BYTES:
            raise BadRequest("Content-Length out of range")
        return self.rfile.read(length)

    def _read_chunked(self):
        chunks, total = [], 0
        while True:
            size_line = self.rfile.readline(1024)
            try:
                size = int(size_line.split(b";")[0].strip(), 16)
            except ValueError:
                raise BadRequest("bad chunk size") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass   # skip trailers
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                raise BadRequest("body too large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _build_request(self):
        split = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        req = Request(self.command, self.path, split.path, split.query, query,
                      self.headers, self._read_body())
        req.listener = self.server.listener_name
        req.connection = self.connection_number
        return req

    def _handle(self):
        app = self.server.app
        try:
            req = self._build_request()
        except BadRequest as exc:
            self.close_connection = True
            self._send(Response.json(400, {"error": str(exc)}))
            return
        try:
            if req.path.startswith("/_sim/"):
                resp = dispatch_control(app.state, app.truth, req)
            else:
                resp = dispatch_api(app.state, req)
        except Exception as exc:
            traceback.print_exc(file=sys.stderr)
            resp = Response.json(500, {"error": "internal simulator error", "detail": repr(exc)})
        self._send(resp)

    def _send(self, resp):
        if resp.action == "reset":
            self._abort_connection()
            return
        try:
            self.send_response(resp.status)
            for name, value in resp.headers.items():
                if name.lower() in ("content-length", "transfer-encoding"):
                    continue   # we always send our own Content-Length
                if name.lower() == "connection" and value.lower() == "close":
                    self.close_connection = True
                self.send_header(name, value)
            if resp.stream is None:
                self.send_header("Content-Length", str(len(resp.body)))
            elif resp.chunked:
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(resp.length))
            self.end_headers()
            if resp.stream is None:
                self.wfile.write(resp.body)
            else:
                self._write_stream(resp)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError):
            self.close_connection = True   # the client gave up (timeout/cancel)
        finally:
            if resp.close_after:
                self.close_connection = True

    def _write_stream(self, resp):
        """Send resp.stream chunk by chunk (never one giant buffer); stop at
        resp.deadline, also when the client stopped reading."""
        try:
            for chunk in resp.stream:
                if resp.deadline is not None:
                    left = resp.deadline - time.monotonic()
                    if left <= 0:
                        break
                    self.connection.settimeout(left)
                if resp.chunked:
                    self.wfile.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                else:
                    self.wfile.write(chunk)
        finally:
            if resp.deadline is not None:
                self.connection.settimeout(self.timeout)

    def _abort_connection(self):
        """Close without answering; SO_LINGER 0 makes the close a TCP reset."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.rfile.close()        # drops the last reference: the socket closes now
            self.connection.close()
        except OSError:
            pass


class SimServer(ThreadingHTTPServer):
    """One listening socket of the simulator; every listener serves the same
    App (state, log, config, tokens) and counts the connections it accepts."""
    daemon_threads = True
    request_queue_size = MAIN_BACKLOG

    def __init__(self, app, name, address, backlog):
        self.app = app
        self.listener_name = name
        self.request_queue_size = backlog   # server_activate: listen(backlog)
        self._numbers = {}                  # accepted socket -> connection number
        super().__init__(address, SimHandler)
        with app.state.lock:
            app.state.listeners[name] = {"port": self.server_address[1], "backlog": backlog,
                                         "accepted": 0, "connections": 0}

    def get_request(self):
        # Runs in the serve_forever thread; the handler thread takes the
        # number in setup(), so it is counted in accept order.
        conn, addr = super().get_request()
        state = self.app.state
        with state.lock:
            counts = state.listeners[self.listener_name]
            counts["accepted"] += 1
            counts["connections"] += 1
            self._numbers[conn] = counts["connections"]
        return conn, addr

    def take_connection_number(self, conn):
        with self.app.state.lock:
            return self._numbers.pop(conn, None)

    def shutdown_request(self, request):
        self.take_connection_number(request)   # a handler that never ran leaves none behind
        super().shutdown_request(request)

    def handle_error(self, request, client_address):
        # Connection-level errors (client vanished) are routine; stay quiet.
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError)):
            traceback.print_exc(file=sys.stderr)


class App:
    def __init__(self, start_s):
        self.state = SimState(FeishuData(start_s), HuaweiData(start_s))
        self.truth = TruthCache(self.state)


def _is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=18765,
                        help="TCP port (0 = pick a free one); default 18765")
    parser.add_argument("--host", default="127.0.0.1",
                        help="loopback address to bind; default 127.0.0.1")
    parser.add_argument("--small-backlog", type=int, default=SMALL_BACKLOG, metavar="N",
                        help="listen() backlog of the second listener (same API and state, "
                             "ephemeral port, see GET /_sim/listeners); 0 = none; default 5")
    args = parser.parse_args(argv)
    if not _is_loopback(args.host):
        parser.error("the simulator only binds loopback addresses")
    if not 0 <= args.small_backlog <= 65535:
        parser.error("--small-backlog must be 0..65535")

    if ":" in args.host:
        SimServer.address_family = socket.AF_INET6
    app = App(int(time.time()))
    server = SimServer(app, "main", (args.host, args.port), MAIN_BACKLOG)
    small = None
    if args.small_backlog:
        small = SimServer(app, "small_backlog", (args.host, 0), args.small_backlog)
        threading.Thread(target=small.serve_forever, name="small_backlog", daemon=True).start()
    host, port = server.server_address[:2]
    # Both sockets listen already; the line stays the only output (tools parse it).
    print(f"oprec simulator listening on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if small is not None:
            small.shutdown()
            small.server_close()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
