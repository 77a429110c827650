"""Feishu Project (飞书项目) API semantics for the oprec simulator:
plugin token issue and the work item operation record list call.

Validation is deliberately strict so that a client bug fails loudly in tests.
"""

import base64
import binascii
import hashlib
import hmac
import json
import secrets

from common import INVALID_JSON, Response, dumps, is_json_int
from dataset import (FEISHU_MIN_SERVED_MS, FEISHU_MODULES, FEISHU_OPERATION_TYPES,
                     FEISHU_OPERATOR_TYPES, FEISHU_SOURCE_TYPES)

PLUGIN_ID = "MII_SIM_PLUGIN"
PLUGIN_SECRET = "sim-plugin-secret"
STATIC_TOKEN = "p-static-sim-token"
LOOP_CURSOR = "loop-cursor"

MAX_WINDOW_MS = 7 * 86400000
MAX_IDS = 50
MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50

# The six optional list filters and the values each accepts (None = any string).
LIST_FILTERS = {
    "operator": None,
    "operator_type": FEISHU_OPERATOR_TYPES,
    "source_type": FEISHU_SOURCE_TYPES,
    "source": None,
    "operation_type": FEISHU_OPERATION_TYPES,
    "op_record_module": FEISHU_MODULES,
}
ALLOWED_KEYS = ("project_key", "work_item_ids", "start_from", "start", "end",
                "page_size") + tuple(LIST_FILTERS)

# Fixed key: cursors stay valid across restarts and are reproducible in tests.
_CURSOR_KEY = b"oprec-sim-feishu-cursor-v1"


def _ok(data, token):
    return Response.json(200, {"err": {}, "err_code": 0, "err_msg": "", "data": data}, token=token)


def _error(status, code, msg, token):
    body = {"err": {"code": code, "msg": msg}, "err_code": code, "err_msg": msg, "data": None}
    return Response.json(status, body, token=token)


class InvalidParam(Exception):
    """Body validation failure: always HTTP 200 with this err_code."""

    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code
        self.msg = msg


# --------------------------------------------------------------------------
# Token endpoint
# --------------------------------------------------------------------------

def plugin_token(state, req):
    def fail(code, msg):
        return Response.json(400, {"data": None, "error": {"code": code, "msg": msg}}, token="none")

    body = req.json
    if body is INVALID_JSON or not isinstance(body, dict):
        return fail(9999, "request body is not a JSON object")
    for key in ("plugin_id", "plugin_secret"):
        if not isinstance(body.get(key), str) or not body[key]:
            return fail(20005, f"missing param: {key}")
    if "type" in body and body["type"] != 0:
        return fail(20006, "invalid param: type (only 0, plugin token, is simulated)")
    if body["plugin_id"] != PLUGIN_ID or body["plugin_secret"] != PLUGIN_SECRET:
        return fail(10211, "plugin_id or plugin_secret is invalid")
    with state.lock:
        # feishu_token_value / feishu_token_reported_ttl: a hostile answer (odd
        # token text, a lifetime that is not the real one); the real ttl rules.
        token = state.config["feishu_token_value"]
        if token is None:
            token = "p-" + secrets.token_hex(16)
        ttl = state.config["feishu_token_ttl"]
        reported = state.config["feishu_token_reported_ttl"]
        state.feishu_tokens.issue(token, ttl)
    return Response.json(200, {"data": {"token": token,
                                        "expire_time": ttl if reported is None else reported},
                               "error": {"code": 0, "msg": "success"}}, token="none")


def classify_token(state, req):
    """How a list request authenticates, for the request log (no side effects)."""
    token = req.header("X-PLUGIN-TOKEN")
    if not token:
        return "none"
    if token == STATIC_TOKEN:
        return "static"
    with state.lock:
        return state.feishu_tokens.state(token)


# --------------------------------------------------------------------------
# List call
# --------------------------------------------------------------------------

def list_records(state, req):
    token_class = classify_token(state, req)
    if token_class == "none":
        return _error(401, 10021, "token is missing: X-PLUGIN-TOKEN header required", token_class)
    if token_class in ("invalid", "expired"):
        return _error(401, 10022, "token check failed", token_class)
    user_key = req.header("X-USER-KEY")
    if not user_key or not (user_key.isascii() and user_key.isdigit()):
        return _error(403, 10211, "token info invalid: X-USER-KEY must be a numeric user_key",
                      token_class)
    with state.lock:
        allowed = state.feishu_limiter.allow(req.header("X-PLUGIN-TOKEN"),
                                             state.config["feishu_qps"])
        end_inclusive = state.config["feishu_end_inclusive"]
        repeat_cursor = state.config["feishu_repeat_cursor"]
    if not allowed:
        return _error(429, 10429, "Too Many Requests", token_class)
    try:
        query = parse_list_body(req.json, repeat_cursor)
        data = answer_list(state.feishu_data, query, end_inclusive, repeat_cursor)
    except InvalidParam as exc:
        return _error(200, exc.code, exc.msg, token_class)
    return _ok(data, token_class)


def _check_string_list(name, value, allowed):
    if not isinstance(value, list) or not value:
        raise InvalidParam(20006, f"invalid param: {name} must be a non-empty list of strings")
    for item in value:
        if not isinstance(item, str):
            raise InvalidParam(20006, f"invalid param: {name} must be a non-empty list of strings")
        if allowed is not None and item not in allowed:
            raise InvalidParam(20006, f"invalid param: {name} value {item!r} is not one of "
                                      + ", ".join(allowed))
    return value


def _check_timestamp(name, value):
    if not is_json_int(value) or not 10 ** 12 <= value < 10 ** 13:
        raise InvalidParam(20013, f"invalid time interval: {name} must be a 13-digit ms timestamp")
    return value


def parse_list_body(body, repeat_cursor=False):
    """Validate the request body; returns a normalised query dict."""
    if body is INVALID_JSON or not isinstance(body, dict):
        raise InvalidParam(9999, "request body is not a JSON object")
    for key in body:
        if key not in ALLOWED_KEYS:
            raise InvalidParam(9999, f"unknown field in request body: {key}")

    project_key = body.get("project_key")
    if not isinstance(project_key, str) or not project_key:
        raise InvalidParam(20005, "missing param: project_key")

    ids = body.get("work_item_ids")
    if ids is None or ids == []:
        raise InvalidParam(20005, "missing param: work_item_ids")
    if not isinstance(ids, list) or not all(is_json_int(i) for i in ids):
        raise InvalidParam(20006, "invalid param: work_item_ids must be a list of integers")
    if len(set(ids)) != len(ids):
        raise InvalidParam(20006, "invalid param: work_item_ids contains duplicates")
    if len(ids) > MAX_IDS:
        raise InvalidParam(20028, f"too many work_item_ids: {len(ids)} > {MAX_IDS}")

    page_size = body.get("page_size", DEFAULT_PAGE_SIZE)
    if not is_json_int(page_size) or page_size < 1:
        raise InvalidParam(20006, "invalid param: page_size must be a positive integer")
    if page_size > MAX_PAGE_SIZE:
        raise InvalidParam(20002, f"page_size over {MAX_PAGE_SIZE}")

    start = end = None
    if ("start" in body) != ("end" in body):
        raise InvalidParam(20005, "missing param: start and end must be given together")
    if "start" in body:
        start = _check_timestamp("start", body["start"])
        end = _check_timestamp("end", body["end"])
        if start > end:
            raise InvalidParam(20013, "invalid time interval: start is after end")
        if end - start > MAX_WINDOW_MS:
            raise InvalidParam(20013, "invalid time interval: window longer than 7 days")
        if start < FEISHU_MIN_SERVED_MS:
            raise InvalidParam(20013, "invalid time interval: history before 2024-07-02 is not served")

    filters = {}
    for name, allowed in LIST_FILTERS.items():
        if name in body:
            filters[name] = _check_string_list(name, body[name], allowed)

    start_from = body.get("start_from", "")
    if not isinstance(start_from, str):
        raise InvalidParam(20006, "invalid start_from")

    query = {"project_key": project_key, "work_item_ids": ids, "start": start, "end": end,
             "filters": filters, "page_size": page_size}
    if start_from == "":
        query["page"], query["offset"] = 0, 0
    elif repeat_cursor and start_from == LOOP_CURSOR:
        query["page"], query["offset"] = 0, 0
    else:
        query["page"], query["offset"] = decode_cursor(start_from, query)
    return query


# -- cursors ---------------------------------------------------------------
# A cursor is urlsafe base64 (no padding) of {"o": offset, "k": page, "h": mac};
# the MAC binds it to the filter, so the server stays stateless.

def _filter_fingerprint(query):
    canonical = {
        "project_key": query["project_key"],
        "work_item_ids": sorted(query["work_item_ids"]),
        "start": query["start"], "end": query["end"],
        "filters": {k: sorted(v) for k, v in sorted(query["filters"].items())},
        "page_size": query["page_size"],
    }
    return json.dumps(canonical, sort_keys=True, separators=(",", ":"))


def _cursor_mac(query, offset, page):
    message = f"{_filter_fingerprint(query)}|{offset}|{page}".encode()
    return hmac.new(_CURSOR_KEY, message, hashlib.sha256).hexdigest()[:24]


def encode_cursor(query, offset, page):
    payload = dumps({"o": offset, "k": page, "h": _cursor_mac(query, offset, page)})
    return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")


def decode_cursor(cursor, query):
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        offset, page, mac = payload["o"], payload["k"], payload["h"]
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeEncodeError):
        raise InvalidParam(20006, "invalid start_from") from None
    if not (is_json_int(offset) and is_json_int(page) and offset >= 0 and page >= 1
            and isinstance(mac, str)):
        raise InvalidParam(20006, "invalid start_from")
    if not hmac.compare_digest(mac, _cursor_mac(query, offset, page)):
        raise InvalidParam(20006, "invalid start_from: it belongs to another query")
    return page, offset


# -- answering ---------------------------------------------------------------

def page_length(page, page_size, remaining):
    """Every third page (k % 3 == 1) is short, empty for page_size <= 3."""
    if page % 3 == 1:
        return min(remaining, max(0, page_size // 2 - 1))
    return min(remaining, page_size)


def matching_records(data, query, end_inclusive):
    project_items = data.projects.get(query["project_key"], set())
    for item_id in query["work_item_ids"]:
        if item_id not in project_items:
            raise InvalidParam(30005, f"work item not found: {item_id}")
    start, end, filters = query["start"], query["end"], query["filters"]
    out = []
    for item_id in query["work_item_ids"]:
        for rec in data.served_records(item_id):
            t = rec.time
            if start is not None:
                if t < start or (t > end if end_inclusive else t >= end):
                    continue
            if any(rec.data.get(name) not in values for name, values in filters.items()):
                continue
            out.append(rec)
    out.sort(key=lambda r: r.sort_key())
    return out


def answer_list(data, query, end_inclusive, repeat_cursor):
    records = matching_records(data, query, end_inclusive)
    total = len(records)
    offset, page = query["offset"], query["page"]
    if offset > total:
        raise InvalidParam(20006, "invalid start_from")
    count = page_length(page, query["page_size"], total - offset)
    chunk = records[offset:offset + count]
    has_more = offset + count < total
    next_cursor = encode_cursor(query, offset + count, page + 1) if has_more else ""
    if repeat_cursor:
        has_more, next_cursor = True, LOOP_CURSOR
    return {"has_more": has_more, "start_from": next_cursor,
            "op_records": [r.data for r in chunk], "total": total}
