"""Shared pieces of the oprec API simulator: the request/response objects,
JSON helpers, the runtime configuration, token stores and rate limiters.

The simulator state lives in one SimState object guarded by one lock; the
API modules (feishu.py, huawei.py) receive it and never keep state of their own.
"""

import collections
import copy
import json
import os
import re
import threading
import time


# --------------------------------------------------------------------------
# JSON helpers
# --------------------------------------------------------------------------

class RawJSON:
    """A JSON number written to the wire with exactly this text (e.g. "1.5e300",
    "0.1000000000000000055511151231257827"), which a Python float cannot keep."""

    __slots__ = ("text",)
    _NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")

    def __init__(self, text):
        if not self._NUMBER.fullmatch(text):
            raise ValueError(f"not a JSON number: {text!r}")
        self.text = text

    def __eq__(self, other):
        return isinstance(other, RawJSON) and other.text == self.text

    def __hash__(self):
        return hash(self.text)

    def __repr__(self):
        return f"RawJSON({self.text!r})"


# RawJSON values are first encoded as a marked string, then the quotes and
# marks are cut away (private-use characters: never in real data).
_RAW_OPEN, _RAW_CLOSE = "\ue000oprec-raw:", "\ue001"
_RAW_MARKED = re.compile('"' + _RAW_OPEN + '([^"' + _RAW_CLOSE + ']*)' + _RAW_CLOSE + '"')


def dumps(obj):
    """Compact JSON, UTF-8 text kept as is (the real APIs do not escape it).
    RawJSON numbers are written with their exact text."""
    used = []

    def default(value):
        if isinstance(value, RawJSON):
            used.append(True)
            return _RAW_OPEN + value.text + _RAW_CLOSE
        raise TypeError(f"{type(value).__name__} is not JSON serializable")

    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=default)
    if used:
        text = _RAW_MARKED.sub(lambda m: m.group(1), text)
    return text


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def loads_exact(text):
    """json.loads, but non-integer numbers become RawJSON (their text is kept
    exactly) and NaN/Infinity are rejected.  Used for /_sim/config bodies."""
    return json.loads(text, parse_float=RawJSON, parse_constant=_reject_constant)


def jsonl_line(obj):
    """One JSON Lines line.  U+2028/U+2029/U+0085 are escaped because some
    line splitters (Python's str.splitlines among them) break on them."""
    text = dumps(obj)
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    text = text.replace("\u0085", "\\u0085")
    return text + "\n"


def is_json_int(value):
    """True for a JSON integer; bool is an int subclass in Python, so exclude it."""
    return isinstance(value, int) and not isinstance(value, bool)


def random_hex(nbytes):
    return os.urandom(nbytes).hex()


# Marker for "the body was not valid JSON" (distinct from a JSON null body).
INVALID_JSON = object()


# --------------------------------------------------------------------------
# Request and response
# --------------------------------------------------------------------------

class Request:
    """What the API modules need to know about one HTTP request."""

    def __init__(self, method, raw_path, path, raw_query, query, headers, body):
        self.method = method
        self.raw_path = raw_path      # path as sent, still percent-encoded
        self.path = path              # path without the query string
        self.raw_query = raw_query    # query string as sent
        self.query = query            # dict: name -> list of values
        self.headers = headers        # email.message.Message (case-insensitive)
        self.body = body              # bytes
        self.path_params = ()         # path segments captured by a pattern route
        self.listener = None          # "main" / "small_backlog" (None in process)
        self.connection = None        # the listener's number of the TCP connection
        self._json = None
        self._json_parsed = False
        self._match_texts = None

    def header(self, name):
        return self.headers.get(name)

    @property
    def json(self):
        """The parsed body; None when empty, INVALID_JSON when malformed."""
        if not self._json_parsed:
            self._json_parsed = True
            if not self.body:
                self._json = None
            else:
                try:
                    self._json = json.loads(self.body.decode("utf-8"))
                except (UnicodeDecodeError, ValueError):
                    self._json = INVALID_JSON
        return self._json


    def match_texts(self):
        """(query, body) as text for the `match` key of faults: the query string
        as sent (still percent-encoded) and the body, both decoded as UTF-8
        with errors replaced.  Computed once per request."""
        if self._match_texts is None:
            # http.server decodes the request line as latin-1: get the bytes back.
            query = self.raw_query.encode("latin-1", "replace").decode("utf-8", "replace")
            body = self.body.decode("utf-8", "replace")
            self._match_texts = (query, body)
        return self._match_texts


class Response:
    """An answer ready to send.  `payload` keeps the JSON object (if any) so the
    request log can summarise it; `token` is the auth classification for the log."""

    def __init__(self, status, body=b"", headers=None,
                 content_type="application/json; charset=utf-8", payload=None,
                 token=None):
        self.status = status
        # surrogatepass: a lone surrogate from a config string goes out as is
        # (invalid UTF-8) instead of crashing the handler.
        self.body = body if isinstance(body, bytes) else body.encode("utf-8", "surrogatepass")
        self.headers = dict(headers or {})
        self.headers.setdefault("Content-Type", content_type)
        self.payload = payload
        self.token = token
        # Fault injection (faults.py): "reset" = drop the connection without an
        # answer; `stream` = an iterable of byte chunks sent instead of `body`,
        # with Content-Length `length` or chunked; `deadline` (time.monotonic)
        # ends a stream early and closes the connection.
        self.action = None
        self.stream = None
        self.length = None
        self.chunked = False
        self.deadline = None
        self.close_after = False
        # (status, err_code, records, has_more) for the request log when the
        # answer cannot be summarised from `payload`.
        self.log_summary = None
        # Ids edited by edit_during_listing right after this answer was built:
        # logged as `edited`, so that a test can tell when the list moved.
        self.log_edited = None

    def set_header(self, name, value):
        """Set a header, replacing any of the same name in another case."""
        for existing in [k for k in self.headers if k.lower() == name.lower()]:
            del self.headers[existing]
        self.headers[name] = value

    def has_header(self, name):
        return any(k.lower() == name.lower() for k in self.headers)

    @classmethod
    def json(cls, status, obj, headers=None, token=None,
             content_type="application/json; charset=utf-8"):
        return cls(status, dumps(obj), headers=headers, content_type=content_type,
                   payload=obj, token=token)

    @classmethod
    def text(cls, status, text, content_type="text/plain; charset=utf-8"):
        return cls(status, text, content_type=content_type)


# --------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------

DEFAULT_CONFIG = {
    "feishu_end_inclusive": True,
    "feishu_qps": 15,
    "feishu_token_ttl": 7200,
    "feishu_repeat_cursor": False,
    "huawei_max_limit": 100,
    "huawei_qps": 0,
    "delay_ms": 0,
    "fail_next": None,
    "faults": [],
    "feishu_token_reported_ttl": None,
    "feishu_token_value": None,
    "huawei_token_ttl": 86400,
    "feishu_filter_requires_types": True,
    "feishu_filter_hides_terminated": True,
    "feishu_filter_max_results": None,
    "feishu_qps_shared": False,
    "huawei_qps_shared": False,
    "huawei_v4_max_offset": 10000,
    "edit_during_listing": None,
    # Records added since the last reset (see additions.py); a post appends.
    "add_records": {"feishu": [], "huawei": []},
}

HUAWEI_TOKEN_TTL_MAX = 10 ** 10   # keeps expires_at within year 9999


class ConfigError(ValueError):
    pass


def _need_bool(key, value):
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false")


def _need_int(key, value, minimum):
    if not is_json_int(value) or value < minimum:
        raise ConfigError(f"{key} must be an integer >= {minimum}")


def _validate_fail_next(value):
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError("fail_next must be an object or null")
    allowed = {"path", "count", "status", "body", "raw", "headers"}
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ConfigError(f"fail_next: unknown key {unknown[0]!r}")
    if not isinstance(value.get("path"), str) or not value["path"]:
        raise ConfigError("fail_next.path must be a non-empty string")
    count = value.get("count", 1)
    if not is_json_int(count) or count < 1:
        raise ConfigError("fail_next.count must be an integer >= 1")
    status = value.get("status", 500)
    if not is_json_int(status) or not 100 <= status <= 599:
        raise ConfigError("fail_next.status must be an HTTP status code")
    if ("body" in value) == ("raw" in value):
        raise ConfigError("fail_next needs exactly one of body or raw")
    if "raw" in value and not isinstance(value["raw"], str):
        raise ConfigError("fail_next.raw must be a string")
    headers = value.get("headers", {})
    if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()):
        raise ConfigError("fail_next.headers must be an object of strings")
    return {"path": value["path"], "count": count, "status": status,
            "body": value.get("body"), "raw": value.get("raw"),
            "has_raw": "raw" in value, "headers": headers}


# edit_during_listing: per vendor, (count key, ids key).
EDIT_VENDORS = {"feishu": ("feishu_after", "feishu_items"),
                "huawei": ("huawei_after", "huawei_issues")}


def _validate_edit_during_listing(value):
    """{"feishu_after": N|null, "feishu_items": [ids], "huawei_after": M|null,
    "huawei_issues": [ids]}, keys optional; returns it with every key.  Whether
    the ids exist is checked by SimState, which has the data."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ConfigError("edit_during_listing must be an object or null")
    allowed = [key for pair in EDIT_VENDORS.values() for key in pair]
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ConfigError(f"edit_during_listing: unknown key {unknown[0]!r}")
    clean = {}
    for after_key, ids_key in EDIT_VENDORS.values():
        after = value.get(after_key)
        if after is not None:
            _need_int(f"edit_during_listing.{after_key}", after, 1)
        ids = value.get(ids_key)
        ids = [] if ids is None else ids
        if not isinstance(ids, list) or not all(is_json_int(i) for i in ids):
            raise ConfigError(f"edit_during_listing.{ids_key} must be a list of integers")
        if len(set(ids)) != len(ids):
            raise ConfigError(f"edit_during_listing.{ids_key} names an id twice")
        # One without the other would arm an edit that never changes anything.
        if (after is None) != (not ids):
            raise ConfigError(f"edit_during_listing: {after_key} and a non-empty {ids_key} "
                              "go together")
        clean[after_key], clean[ids_key] = after, list(ids)
    return clean


def validate_config_update(update):
    """Check a /_sim/config body; returns the normalised values to merge."""
    if not isinstance(update, dict):
        raise ConfigError("config body must be a JSON object")
    clean = {}
    for key, value in update.items():
        if key not in DEFAULT_CONFIG:
            raise ConfigError(f"unknown config key {key!r}")
        if key in ("feishu_end_inclusive", "feishu_repeat_cursor",
                   "feishu_filter_requires_types", "feishu_filter_hides_terminated",
                   "feishu_qps_shared", "huawei_qps_shared"):
            _need_bool(key, value)
        elif key == "feishu_filter_max_results":
            if value is not None:
                _need_int(key, value, 1)
        elif key == "huawei_v4_max_offset":
            if value is not None:
                _need_int(key, value, 0)
        elif key in ("feishu_qps", "huawei_qps", "feishu_token_ttl", "delay_ms"):
            _need_int(key, value, 0)
        elif key == "huawei_max_limit":
            _need_int(key, value, 1)
        elif key == "fail_next":
            value = _validate_fail_next(value)
        elif key == "faults":
            import faults   # faults.py imports this module
            value = faults.validate_faults(value)
        elif key == "edit_during_listing":
            value = _validate_edit_during_listing(value)
        elif key == "add_records":
            import additions   # additions.py imports this module
            value = additions.validate(value)
        elif key == "feishu_token_reported_ttl":
            if value is not None and not (is_json_int(value) or isinstance(value, RawJSON)):
                raise ConfigError("feishu_token_reported_ttl must be a JSON number or null")
        elif key == "feishu_token_value":
            if value is not None and not isinstance(value, str):
                raise ConfigError("feishu_token_value must be a string or null")
        elif key == "huawei_token_ttl":
            _need_int(key, value, 1)
            if value > HUAWEI_TOKEN_TTL_MAX:
                raise ConfigError(f"huawei_token_ttl must be at most {HUAWEI_TOKEN_TTL_MAX}")
        clean[key] = value
    return clean


# --------------------------------------------------------------------------
# Rate limiting and tokens
# --------------------------------------------------------------------------

class RollingWindowLimiter:
    """At most `limit` accepted requests per key in any rolling 1.000 s window.
    Rejected requests do not consume the quota."""

    def __init__(self):
        self._hits = {}

    def allow(self, key, limit, now=None):
        if limit <= 0:
            return True
        now = time.monotonic() if now is None else now
        hits = self._hits.setdefault(key, collections.deque())
        while hits and hits[0] <= now - 1.0:
            hits.popleft()
        if len(hits) >= limit:
            return False
        hits.append(now)
        return True

    def clear(self):
        self._hits.clear()


class TokenStore:
    """Issued tokens with a wall-clock deadline, plus a 'forced expired' flag
    set by /_sim/expire_tokens (cleared again by /_sim/reset)."""

    def __init__(self):
        self._deadline = {}
        self._forced = set()

    def issue(self, token, lifetime_s):
        self._deadline[token] = time.time() + lifetime_s

    def state(self, token):
        """'issued', 'expired' or 'invalid' (unknown)."""
        if token not in self._deadline:
            return "invalid"
        if token in self._forced or time.time() >= self._deadline[token]:
            return "expired"
        return "issued"

    def expire_all(self):
        self._forced.update(self._deadline)

    def clear_forced(self):
        self._forced.clear()


class SimState:
    """All mutable simulator state.  Callers take `lock` around every access."""

    def __init__(self, feishu_data, huawei_data):
        self.lock = threading.RLock()
        self.feishu_data = feishu_data
        self.huawei_data = huawei_data
        self.config = copy.deepcopy(DEFAULT_CONFIG)
        self.fail_remaining = 0
        self.feishu_tokens = TokenStore()
        self.huawei_tokens = TokenStore()
        self.iam_issue_count = 0       # never reset, so token strings never repeat
        self.iam_salt = random_hex(8)  # tokens of another run are never valid here
        self.feishu_limiter = RollingWindowLimiter()
        self.huawei_limiter = RollingWindowLimiter()
        self.aksk_failures = {}        # AK -> consecutive failures
        self.aksk_locked_until = {}    # AK -> time.time() when the lock ends
        self.log = []
        self.log_generation = 0
        self.in_flight = 0             # API requests being handled; never reset (see request_done)
        self.faults = []               # faults.Fault, in config order, with their counters
        self.loop_cursor_count = 0     # never reset, so paging_loop cursors never repeat
        # edit_during_listing: listing answers per vendor since the key was
        # set, and the edits still to make: vendor -> (after N answers, ids).
        self.listing_answers = {vendor: 0 for vendor in EDIT_VENDORS}
        self.edits_pending = {}
        # Changes whenever add_records adds records or a reset removes them:
        # the truth endpoints rebuild what they cache.
        self.data_version = 0
        # Listener name -> {"port", "backlog", "accepted" (since the last
        # reset), "connections" (since start: never reset, so connection
        # numbers never repeat)}; filled in by oprec_sim.SimServer.
        self.listeners = {}

    def reset(self):
        with self.lock:
            self.config = copy.deepcopy(DEFAULT_CONFIG)
            self.fail_remaining = 0
            self.faults = []
            self.feishu_tokens.clear_forced()
            self.huawei_tokens.clear_forced()
            self.feishu_limiter.clear()
            self.huawei_limiter.clear()
            self.aksk_failures.clear()
            self.aksk_locked_until.clear()
            self.log = []
            self.log_generation += 1
            for counts in self.listeners.values():
                counts["accepted"] = 0
            self._arm_edits(None)
            removed_feishu = self.feishu_data.remove_added()
            removed_huawei = self.huawei_data.remove_added()
            if removed_feishu or removed_huawei:
                self.data_version += 1
            self.feishu_data.catalog.restore()
            self.huawei_data.catalog.restore()

    def _check_edit_ids(self, plan):
        """An unknown id would arm an edit that changes nothing: refuse it."""
        if plan is None:
            return
        for item_id in plan["feishu_items"]:
            if item_id not in self.feishu_data.catalog.items:
                raise ConfigError(f"edit_during_listing.feishu_items: {item_id} is not a "
                                  "Feishu work item")
        for issue_id in plan["huawei_issues"]:
            if issue_id not in self.huawei_data.catalog.by_id:
                raise ConfigError(f"edit_during_listing.huawei_issues: {issue_id} is not a "
                                  "Huawei issue")

    def _arm_edits(self, plan):
        """Restart the listing counters; edits made before stay made."""
        self.listing_answers = {vendor: 0 for vendor in EDIT_VENDORS}
        self.edits_pending = {}
        for vendor, (after_key, ids_key) in EDIT_VENDORS.items():
            if plan is not None and plan[after_key] is not None:
                self.edits_pending[vendor] = (plan[after_key], plan[ids_key])

    def listing_answered(self, vendor):
        """Count one listing answer (feishu: work_item/filter, huawei: the V4
        issue list, served with data).  Returns the ids edit_during_listing
        edits right now, i.e. after the N-th answer (once), else None.  The
        caller holds the lock, makes the edit and logs the ids."""
        self.listing_answers[vendor] += 1
        pending = self.edits_pending.get(vendor)
        if pending is None or self.listing_answers[vendor] < pending[0]:
            return None
        del self.edits_pending[vendor]
        return pending[1]

    def update_config(self, update):
        clean = validate_config_update(update)
        self._check_edit_ids(clean.get("edit_during_listing"))
        added = clean.pop("add_records", None)
        if added is not None:
            import additions
            additions.check_targets(added, self.feishu_data, self.huawei_data)
        with self.lock:
            if added is not None:
                # Appended, never replaced: the config shows every record
                # added since the last reset.
                shown = self.config["add_records"]
                feishu_new, huawei_new = additions.apply(
                    added, self.feishu_data, self.huawei_data,
                    {vendor: len(shown[vendor]) for vendor in shown})
                self.config["add_records"] = {"feishu": shown["feishu"] + feishu_new,
                                              "huawei": shown["huawei"] + huawei_new}
                if feishu_new or huawei_new:
                    self.data_version += 1
            if "edit_during_listing" in clean:
                self._arm_edits(clean["edit_during_listing"])
            if "faults" in clean:
                # New list, fresh counters; the config shows the objects as given.
                self.faults = clean["faults"]
                clean["faults"] = [fault.spec for fault in self.faults]
            self.config.update(clean)
            if "fail_next" in clean:
                fault = clean["fail_next"]
                self.fail_remaining = fault["count"] if fault else 0

    def cfg(self, key):
        with self.lock:
            return self.config[key]

    def request_done(self):
        """One API request counted in `in_flight` (by the log entry opened for
        it) has its answer.  The counter is not part of what /_sim/reset
        clears: requests still being handled across a reset end here too."""
        with self.lock:
            if self.in_flight > 0:
                self.in_flight -= 1

    def pick_fault(self, req):
        """The `faults` entry (faults.Fault) that answers this request, or None.
        The request walks down the list: each fault whose path (and `match`, if
        any) matches counts it, the first whose selection picks it takes it,
        and the faults after that one neither see nor count it."""
        with self.lock:
            for fault in self.faults:
                if fault.matches(req) and fault.count_and_select():
                    return fault
            return None

    def take_fault(self, path):
        """Consume one injected failure if one is armed for this path (fail_next)."""
        with self.lock:
            fault = self.config["fail_next"]
            if not fault or self.fail_remaining <= 0 or fault["path"] not in path:
                return None
            self.fail_remaining -= 1
            if self.fail_remaining == 0:
                self.config["fail_next"] = None
            return fault
