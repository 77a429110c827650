"""Feishu Project (飞书项目) API semantics for the oprec simulator:
plugin token issue, the work item operation record list call, and the calls
that enumerate a space (work_item/filter, work_item/all-types, user/query).

Validation is deliberately strict so that a client bug fails loudly in tests.
"""

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
import urllib.parse

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

def authenticate(state, req, endpoint):
    """Token, X-USER-KEY and quota checks shared by every Feishu data call.
    Returns (error Response or None, token class).  The quota is feishu_qps
    per token and endpoint (`endpoint` None = the op_record list call, whose
    bucket is the token itself), or per token when feishu_qps_shared is set."""
    token_class = classify_token(state, req)
    if token_class == "none":
        return _error(401, 10021, "token is missing: X-PLUGIN-TOKEN header required",
                      token_class), token_class
    if token_class in ("invalid", "expired"):
        return _error(401, 10022, "token check failed", token_class), token_class
    user_key = req.header("X-USER-KEY")
    if not user_key or not (user_key.isascii() and user_key.isdigit()):
        return _error(403, 10211, "token info invalid: X-USER-KEY must be a numeric user_key",
                      token_class), token_class
    token = req.header("X-PLUGIN-TOKEN")
    with state.lock:
        shared = state.config["feishu_qps_shared"]
        bucket = token if shared or endpoint is None else (token, endpoint)
        allowed = state.feishu_limiter.allow(bucket, state.config["feishu_qps"])
    if not allowed:
        return _error(429, 10429, "Too Many Requests", token_class), token_class
    return None, token_class


def list_records(state, req):
    error, token_class = authenticate(state, req, None)
    if error:
        return error
    with state.lock:
        end_inclusive = state.config["feishu_end_inclusive"]
        repeat_cursor = state.config["feishu_repeat_cursor"]
    try:
        query = parse_list_body(req.json, repeat_cursor)
        # Under the lock: add_records inserts records between two answers,
        # never during one.
        with state.lock:
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


# --------------------------------------------------------------------------
# Enumeration: work_item/filter, work_item/all-types, user/query
# --------------------------------------------------------------------------

FILTER_DEFAULT_PAGE_SIZE = 20
FILTER_MAX_PAGE_SIZE = 200
FILTER_MAX_USER_KEYS = 10
USER_QUERY_MAX_KEYS = 100
# Fields of the SDK's FilterReqBody (and search_id from the docs) that the
# simulator does not implement: null / [] / "" are accepted (the Go SDK sends
# every field), anything else is refused so that a test never gets a silently
# unfiltered answer.  Other unknown fields are ignored.
FILTER_UNSIMULATED = ("sub_stages", "businesses", "priorities", "tags", "search_id")
USER_QUERY_UNSIMULATED = ("usernames", "out_ids", "emails", "tenant_key")


def _ok_list(data, token, **extra):
    body = {"data": data}
    body.update(extra)
    body.update({"err_code": 0, "err_msg": "", "err": {}})
    return Response.json(200, body, token=token)


def _empty(value):
    return value is None or value == [] or value == ""


def _project(state, req):
    """The space of /open_api/:project_key/...: its project_key or simple_name."""
    text = urllib.parse.unquote(req.path_params[0])
    project_key = state.feishu_data.catalog.project_by_key_or_simple_name(text)
    if project_key is None:
        raise InvalidParam(30014, f"project not found: {text}")
    return project_key


def _check_unsimulated(body, names):
    for name in names:
        if name in body and not _empty(body[name]):
            raise InvalidParam(20006, f"invalid param: {name} is not simulated "
                                      "(send null, [] or \"\" or leave it out)")


def _opt_int(body, name, default):
    """null / absent / 0 -> default (the Go SDK sends 0 for an unset field)."""
    value = body.get(name)
    if value is None or value == 0 and is_json_int(value):
        return default
    if not is_json_int(value) or value < 1:
        raise InvalidParam(20006, f"invalid param: {name} must be a positive integer")
    return value


def _time_interval(body, name, now_ms):
    """{"start": ms, "end": ms}: start required, end null/absent/0 = now."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InvalidParam(20006, f"invalid param: {name} must be an object {{start, end}}")
    start = value.get("start")
    if not is_json_int(start) or not 10 ** 12 <= start < 10 ** 13:
        raise InvalidParam(20013, f"invalid time interval: {name}.start must be a 13-digit ms timestamp")
    end = value.get("end")
    if end is None or (is_json_int(end) and end == 0):
        end = now_ms
    elif not is_json_int(end) or not 10 ** 12 <= end < 10 ** 13:
        raise InvalidParam(20013, f"invalid time interval: {name}.end must be a 13-digit ms timestamp")
    if start > end:
        raise InvalidParam(20013, f"invalid time interval: {name}.start is after its end")
    return start, end


def parse_filter_body(body, types, requires_types, now_ms):
    """Validate a work_item/filter body; `types` = the space's type keys."""
    if body is INVALID_JSON or not isinstance(body, dict):
        raise InvalidParam(9999, "request body is not a JSON object")
    query = {}
    type_keys = body.get("work_item_type_keys")
    if _empty(type_keys):
        if requires_types:
            raise InvalidParam(20003, "missing or invalid param: work_item_type_keys")
        query["types"] = None
    else:
        if not isinstance(type_keys, list) or not all(isinstance(t, str) and t for t in type_keys):
            raise InvalidParam(20003, "missing or invalid param: work_item_type_keys "
                                      "must be a list of type keys")
        for type_key in type_keys:
            if type_key not in types:
                raise InvalidParam(20003, f"missing or invalid param: work_item_type_keys: "
                                          f"{type_key!r} is not a work item type of this space")
        query["types"] = set(type_keys)

    ids = body.get("work_item_ids")
    if _empty(ids):
        query["ids"] = None
    elif not isinstance(ids, list) or not all(is_json_int(i) for i in ids):
        raise InvalidParam(20006, "invalid param: work_item_ids must be a list of integers")
    else:
        query["ids"] = set(ids)

    query["created_at"] = _time_interval(body, "created_at", now_ms)
    query["updated_at"] = _time_interval(body, "updated_at", now_ms)

    user_keys = body.get("user_keys")
    if _empty(user_keys):
        query["user_keys"] = None
    elif not isinstance(user_keys, list) or not all(isinstance(u, str) and u for u in user_keys):
        raise InvalidParam(20006, "invalid param: user_keys must be a list of strings")
    elif len(user_keys) > FILTER_MAX_USER_KEYS:
        raise InvalidParam(20006, f"invalid param: too many user_keys: {len(user_keys)} > "
                                  f"{FILTER_MAX_USER_KEYS}")
    else:
        query["user_keys"] = set(user_keys)

    statuses = body.get("work_item_status")
    if _empty(statuses):
        query["states"] = None
    elif not isinstance(statuses, list) or not all(
            isinstance(x, dict) and isinstance(x.get("state_key"), str) and x["state_key"]
            for x in statuses):
        raise InvalidParam(20006, "invalid param: work_item_status must be a list of "
                                  "{\"state_key\": ...} objects")
    else:
        query["states"] = {x["state_key"] for x in statuses}

    name = body.get("work_item_name")
    if _empty(name):
        query["name"] = None
    elif not isinstance(name, str):
        raise InvalidParam(20006, "invalid param: work_item_name must be a string")
    else:
        query["name"] = name

    expand = body.get("expand")
    if expand is not None and not isinstance(expand, dict):
        raise InvalidParam(20006, "invalid param: expand must be an object")
    _check_unsimulated(body, FILTER_UNSIMULATED)

    query["page_num"] = _opt_int(body, "page_num", 1)
    query["page_size"] = _opt_int(body, "page_size", FILTER_DEFAULT_PAGE_SIZE)
    if query["page_size"] > FILTER_MAX_PAGE_SIZE:
        raise InvalidParam(20002, f"page_size over {FILTER_MAX_PAGE_SIZE}")
    return query


def simulated_now_ms(catalog):
    """"now" for an interval without end: the wall clock, but never before the
    newest updated_at of the data (item 5000 has records into 2027, and
    edit_during_listing moves items past it)."""
    return max(int(time.time() * 1000), catalog.horizon_ms)


def filter_matches(item, query, hides_terminated):
    if item.deleted:
        return False
    if query["states"] is not None:
        if item.state_key not in query["states"]:
            return False
    elif item.terminated and hides_terminated:
        return False
    if query["types"] is not None and item.type_key not in query["types"]:
        return False
    if query["ids"] is not None and item.id not in query["ids"]:
        return False
    for name, attr in (("created_at", "created_at"), ("updated_at", "updated_at")):
        bounds = query[name]
        if bounds is not None and not bounds[0] <= getattr(item, attr) <= bounds[1]:
            return False
    if query["user_keys"] is not None and not query["user_keys"] & item.participants:
        return False
    if query["name"] is not None and query["name"] not in item.name:
        return False
    return True


def filter_work_items(state, req):
    """POST /open_api/:project_key/work_item/filter"""
    error, token_class = authenticate(state, req, "filter")
    if error:
        return error
    catalog = state.feishu_data.catalog
    # Under the lock: edit_during_listing moves updated_at between two answers,
    # never during one.
    with state.lock:
        requires_types = state.config["feishu_filter_requires_types"]
        hides_terminated = state.config["feishu_filter_hides_terminated"]
        max_results = state.config["feishu_filter_max_results"]
        try:
            project_key = _project(state, req)
            types = {t["type_key"] for t in catalog.types[project_key]}
            now_ms = simulated_now_ms(catalog)
            query = parse_filter_body(req.json, types, requires_types, now_ms)
            page_num, page_size = query["page_num"], query["page_size"]
            if max_results is not None and page_num * page_size > max_results:
                raise InvalidParam(20055, f"search result exceeds {max_results}: page_num * "
                                          f"page_size must be at most {max_results}")
        except InvalidParam as exc:
            return _error(200, exc.code, exc.msg, token_class)
        items = [item for item in catalog.by_project[project_key]
                 if filter_matches(item, query, hides_terminated)]
        items.sort(key=lambda item: (-item.updated_at, -item.id))
        start = (page_num - 1) * page_size
        data = [item.info() for item in items[start:start + page_size]]
        edited = state.listing_answered("feishu")
        if edited:
            catalog.edit(edited, simulated_now_ms(catalog))
    resp = _ok_list(data, token_class, pagination={"page_num": page_num, "page_size": page_size,
                                                   "total": len(items)})
    resp.log_edited = edited
    return resp


def all_types(state, req):
    """GET /open_api/:project_key/work_item/all-types"""
    error, token_class = authenticate(state, req, "all-types")
    if error:
        return error
    try:
        project_key = _project(state, req)
    except InvalidParam as exc:
        return _error(200, exc.code, exc.msg, token_class)
    return _ok_list([dict(t) for t in state.feishu_data.catalog.types[project_key]], token_class)


def query_users(state, req):
    """POST /open_api/user/query"""
    error, token_class = authenticate(state, req, "user-query")
    if error:
        return error
    body = req.json
    try:
        if body is INVALID_JSON or not isinstance(body, dict):
            raise InvalidParam(9999, "request body is not a JSON object")
        keys = body.get("user_keys")
        if _empty(keys):
            raise InvalidParam(20005, "missing param: user_keys")
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            raise InvalidParam(20006, "invalid param: user_keys must be a list of strings")
        if len(keys) > USER_QUERY_MAX_KEYS:
            raise InvalidParam(20006, f"invalid param: too many user_keys: {len(keys)} > "
                                      f"{USER_QUERY_MAX_KEYS}")
        _check_unsimulated(body, USER_QUERY_UNSIMULATED)
    except InvalidParam as exc:
        return _error(200, exc.code, exc.msg, token_class)
    users = state.feishu_data.catalog.users
    data, seen = [], set()
    for key in keys:
        if key in users and key not in seen:
            seen.add(key)
            data.append(dict(users[key]))
    return _ok_list(data, token_class)
