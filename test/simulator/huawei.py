"""Huawei Cloud CodeArts Req API semantics for the oprec simulator:
IAM password tokens, AK/SK (SDK-HMAC-SHA256) signature verification,
GET /v2/issues/get-record, and the V4 project-wide calls
GET /v4/projects/{project_id}/issues/records and POST /v4/projects/{project_id}/issues.
"""

import base64
import datetime
import hashlib
import hmac
import re
import time
import urllib.parse

from common import INVALID_JSON, Response, is_json_int
from dataset import HUAWEI_STATUS_IDS

# --------------------------------------------------------------------------
# Credentials
# --------------------------------------------------------------------------

IAM_USER = "sim_user"
IAM_PASSWORD = "sim-password"
IAM_DOMAIN = "sim_domain"
IAM_REGION = "cn-north-4"
IAM_TOKEN_LIFETIME_S = 24 * 3600   # the default of the huawei_token_ttl config key
STATIC_TOKEN = "MIIsim-static-huawei-token"

AK = "SIMAK0000000000000001"
SK = "sim-secret-key-0001"
TEMP_AK = "SIMTMPAK00000000000001"
TEMP_SK = "sim-temp-secret-0001"
SECURITY_TOKEN = "sim-security-token"
SECRET_KEYS = {AK: SK, TEMP_AK: TEMP_SK}

MAX_SKEW_S = 15 * 60
LOCK_AFTER_FAILURES = 5
LOCK_SECONDS = 300
MAX_OFFSET = 10000

_DEFAULT_LIMIT = 10
_PROJECT_ID = re.compile(r"[0-9a-f]{32}")
_ISSUE_ID = re.compile(r"[0-9]{1,10}")
_DIGITS = re.compile(r"[0-9]+")


HUAWEI_JSON = "application/json;charset=UTF-8"


def _error(status, code, msg, token):
    return Response.json(status, {"error_code": code, "error_msg": msg}, token=token,
                         content_type=HUAWEI_JSON)


# --------------------------------------------------------------------------
# SDK-HMAC-SHA256 signing (the algorithm of the official SDKs)
# --------------------------------------------------------------------------

def _escape(text):
    """Percent-encode everything except A-Za-z0-9-_.~ (uppercase hex)."""
    return urllib.parse.quote(text, safe="-_.~")


def canonical_uri(path):
    """Each decoded path segment re-encoded; always ends with '/'."""
    segments = [_escape(urllib.parse.unquote(s)) for s in path.split("/")]
    uri = "/".join(segments)
    return uri if uri.endswith("/") else uri + "/"


def canonical_query(raw_query):
    pairs = urllib.parse.parse_qsl(raw_query, keep_blank_values=True)
    encoded = sorted((_escape(k), _escape(v)) for k, v in pairs)
    return "&".join(f"{k}={v}" for k, v in encoded)


def canonical_headers(headers, signed_headers):
    """headers: dict of lowercase name -> value."""
    return "".join(f"{name}:{headers.get(name, '').strip()}\n" for name in signed_headers)


def canonical_request(method, path, raw_query, headers, signed_headers, body):
    if headers.get("x-sdk-content-sha256") == "UNSIGNED-PAYLOAD":
        body_hash = "UNSIGNED-PAYLOAD"
    else:
        body_hash = hashlib.sha256(body).hexdigest()
    return "\n".join([method, canonical_uri(path), canonical_query(raw_query),
                      canonical_headers(headers, signed_headers),
                      ";".join(signed_headers), body_hash])


def string_to_sign(canonical, sdk_date):
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return f"SDK-HMAC-SHA256\n{sdk_date}\n{digest}"


def signature(secret_key, method, path, raw_query, headers, signed_headers, body):
    """Lowercase hex signature; headers: dict of lowercase name -> value."""
    canonical = canonical_request(method, path, raw_query, headers, signed_headers, body)
    message = string_to_sign(canonical, headers.get("x-sdk-date", ""))
    return hmac.new(secret_key.encode(), message.encode(), hashlib.sha256).hexdigest()


def sign_request(access_key, secret_key, method, url_path, raw_query, headers, body=b"",
                 signed_headers=None):
    """Client-side helper (used by the self-test): returns the Authorization value."""
    lower = {k.lower(): v for k, v in headers.items()}
    names = sorted(signed_headers or lower)
    sig = signature(secret_key, method, url_path, raw_query, lower, names, body)
    return f"SDK-HMAC-SHA256 Access={access_key}, SignedHeaders={';'.join(names)}, Signature={sig}"


_AUTH_HEADER = re.compile(
    r"^SDK-HMAC-SHA256\s+Access=([^,\s]+)\s*,\s*SignedHeaders=([^,\s]+)\s*,\s*Signature=([0-9a-fA-F]+)\s*$")


class AkskResult:
    """Outcome of verifying one signed request (no side effects yet)."""

    def __init__(self, ok, access_key=None, error_msg=None, counts_as_failure=False):
        self.ok = ok
        self.access_key = access_key
        self.error_msg = error_msg
        self.counts_as_failure = counts_as_failure


def verify_aksk(state, req, now=None):
    now = time.time() if now is None else now
    verify_fail = "Incorrect IAM authentication information: verify aksk signature fail"

    match = _AUTH_HEADER.match(req.header("Authorization") or "")
    if not match:
        return AkskResult(False, None, verify_fail + " (malformed Authorization header)")
    access_key, signed, sig = match.group(1), match.group(2), match.group(3).lower()
    with state.lock:
        locked_until = state.aksk_locked_until.get(access_key, 0)
    if locked_until > now:
        return AkskResult(False, access_key,
                          "Incorrect IAM authentication information: the AK is locked "
                          f"for {LOCK_SECONDS} s after {LOCK_AFTER_FAILURES} failed signatures")

    def fail(detail):
        return AkskResult(False, access_key, f"{verify_fail} ({detail})", counts_as_failure=True)

    secret_key = SECRET_KEYS.get(access_key)
    if secret_key is None:
        return fail("unknown access key")
    signed_headers = signed.split(";")
    if signed_headers != sorted(signed_headers) or any(h != h.lower() for h in signed_headers):
        return fail("SignedHeaders must be lowercase and sorted")
    for needed in ("host", "x-sdk-date"):
        if needed not in signed_headers:
            return fail(f"{needed} must be a signed header")
    if access_key == TEMP_AK:
        if req.header("X-Security-Token") != SECURITY_TOKEN:
            return fail("temporary AK needs a valid X-Security-Token")
        if "x-security-token" not in signed_headers:
            return fail("x-security-token must be a signed header")
    headers = {}
    for name in signed_headers:
        value = req.header(name)
        if value is None:
            return fail(f"signed header {name} is missing")
        headers[name] = value
    content_hash = req.header("X-Sdk-Content-Sha256")
    if content_hash is not None:
        headers["x-sdk-content-sha256"] = content_hash
    sdk_date = headers["x-sdk-date"]
    try:
        signed_at = datetime.datetime.strptime(sdk_date, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    except ValueError:
        return fail("X-Sdk-Date must look like 20060102T150405Z")
    if abs(now - signed_at) > MAX_SKEW_S:
        # Clock skew is reported separately and does not count towards the lock.
        return AkskResult(False, access_key, "signature expired")
    expected = signature(secret_key, req.method, req.path,
                         req.raw_query, headers, signed_headers, req.body)
    if not hmac.compare_digest(expected, sig):
        return fail("signature mismatch")
    return AkskResult(True, access_key)


def record_aksk_outcome(state, result, now=None):
    """Apply the failure counter / lock rules of the gateway."""
    now = time.time() if now is None else now
    if result.access_key is None:
        return
    with state.lock:
        if result.ok:
            state.aksk_failures.pop(result.access_key, None)
        elif result.counts_as_failure:
            failures = state.aksk_failures.get(result.access_key, 0) + 1
            if failures >= LOCK_AFTER_FAILURES:
                state.aksk_locked_until[result.access_key] = now + LOCK_SECONDS
                failures = 0
            state.aksk_failures[result.access_key] = failures


# --------------------------------------------------------------------------
# Authentication of get-record
# --------------------------------------------------------------------------

def classify_token(state, req):
    """How a get-record request authenticates, for the request log (no side effects)."""
    if req.header("Authorization"):
        return "aksk" if verify_aksk(state, req).ok else "aksk-invalid"
    token = req.header("X-Auth-Token")
    if not token:
        return "none"
    if token == STATIC_TOKEN:
        return "static"
    with state.lock:
        return state.huawei_tokens.state(token)


def authenticate(state, req):
    """Returns (error Response or None, credential key for rate limiting, token class)."""
    if req.header("Authorization"):
        result = verify_aksk(state, req)
        record_aksk_outcome(state, result)
        if not result.ok:
            return _error(401, "APIG.0301", result.error_msg, "aksk-invalid"), None, "aksk-invalid"
        return None, "ak:" + result.access_key, "aksk"
    token = req.header("X-Auth-Token")
    token_class = classify_token(state, req)
    if token_class not in ("static", "issued"):
        return _error(401, "PM.10001002", "invalid token", token_class), None, token_class
    return None, "token:" + token, token_class


# --------------------------------------------------------------------------
# IAM
# --------------------------------------------------------------------------

def _iam_error(status, message, title):
    return Response.json(status, {"error": {"code": status, "message": message, "title": title}},
                         token="none", content_type=HUAWEI_JSON)


def _dig(obj, *keys):
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def _iso(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ")


def _make_iam_token(state):
    """'MII' + ~3000 base64url characters, unique per issue."""
    state.iam_issue_count += 1
    seed = f"{state.iam_salt}:{state.iam_issue_count}".encode()
    raw = b"".join(hashlib.sha256(seed + i.to_bytes(4, "big")).digest() for i in range(70))
    return "MII" + base64.urlsafe_b64encode(raw).decode().rstrip("=")[:2997]


def iam_tokens(state, req):
    body = req.json
    user = _dig(body, "auth", "identity", "password", "user") if body is not INVALID_JSON else None
    methods = _dig(body, "auth", "identity", "methods") if body is not INVALID_JSON else None
    if not isinstance(user, dict) or not isinstance(methods, list) or "password" not in methods:
        return _iam_error(400, "The request body is invalid", "Bad Request")
    if (user.get("name") != IAM_USER or user.get("password") != IAM_PASSWORD
            or _dig(user, "domain", "name") != IAM_DOMAIN):
        return _iam_error(401, "The username or password is wrong.", "Unauthorized")
    if _dig(body, "auth", "scope", "project", "name") != IAM_REGION:
        return _iam_error(400, "project scope is invalid", "Bad Request")
    now = time.time()
    with state.lock:
        token = _make_iam_token(state)
        lifetime = state.config["huawei_token_ttl"]
        state.huawei_tokens.issue(token, lifetime)
    body = {"token": {
        "expires_at": _iso(now + lifetime),
        "issued_at": _iso(now),
        "methods": ["password"],
        "user": {"name": IAM_USER, "id": "5b1a6e5e3c8d4f0a9e7d6c5b4a392817",
                 "domain": {"name": IAM_DOMAIN, "id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0"}},
        "project": {"name": IAM_REGION, "id": "3a4b5c6d7e8f90a1b2c3d4e5f6a7b8c9",
                    "domain": {"name": IAM_DOMAIN, "id": "0f1e2d3c4b5a69788796a5b4c3d2e1f0"}},
    }}
    return Response.json(201, body, headers={"X-Subject-Token": token},
                         content_type=HUAWEI_JSON, token="none")


# --------------------------------------------------------------------------
# get-record
# --------------------------------------------------------------------------

class BadQuery(Exception):
    def __init__(self, code, msg):
        super().__init__(msg)
        self.code = code
        self.msg = msg


def parse_record_query(query, max_limit, known_projects):
    """query: dict name -> list of values.  Returns (project_id, issue_id, limit, offset)."""
    for name, values in query.items():
        if len(values) > 1:
            raise BadQuery("PM.02175006", f"parameter {name} is given more than once")
    get = lambda name: query[name][0] if name in query else None

    project_id = get("project_id")
    if project_id is None or not _PROJECT_ID.fullmatch(project_id):
        raise BadQuery("PM.02175006", "project_id must be a 32-character lowercase hex string")
    issue_text = get("issue_id")
    if issue_text is None or not _ISSUE_ID.fullmatch(issue_text):
        raise BadQuery("PM.02175006", "issue_id must be 1 to 10 digits")

    limit_text = get("limit")
    limit = _DEFAULT_LIMIT
    if limit_text is not None:
        if not _DIGITS.fullmatch(limit_text) or not 1 <= int(limit_text) <= max_limit:
            raise BadQuery("PM.02174103", f"limit must be an integer from 1 to {max_limit}")
        limit = int(limit_text)
    offset_text = get("offset")
    offset = 0
    if offset_text is not None:
        if not _DIGITS.fullmatch(offset_text) or int(offset_text) > MAX_OFFSET:
            raise BadQuery("PM.02174103", f"offset must be an integer from 0 to {MAX_OFFSET}")
        offset = int(offset_text)
        if offset % limit:
            raise BadQuery("PM.02174103", "offset must be a multiple of limit")

    if "type" in query and get("type") != "scrum":
        raise BadQuery("PM.02175006", "type must be scrum")
    unknown = sorted(set(query) - {"project_id", "issue_id", "limit", "offset", "type"})
    if unknown:
        raise BadQuery("PM.02175006", f"unknown parameter: {unknown[0]}")
    if project_id not in known_projects:
        raise BadQuery("PM.02152005", "project does not exist or has been deleted")
    return project_id, int(issue_text), limit, offset


def _throttled(state, credential, endpoint, token_class):
    """None, or the 429 answer when huawei_qps is used up.  The bucket is the
    credential and the endpoint (`endpoint` None = get-record, whose bucket
    is the credential itself), or the credential alone with huawei_qps_shared."""
    with state.lock:
        shared = state.config["huawei_qps_shared"]
        bucket = credential if shared or endpoint is None else credential + "|" + endpoint
        allowed = state.huawei_limiter.allow(bucket, state.config["huawei_qps"])
    if allowed:
        return None
    return Response.json(429, {"error_code": "APIGW.0308",
                               "error_msg": "The throttling threshold has been reached"},
                         token=token_class, content_type=HUAWEI_JSON)


def get_record(state, req):
    error, credential, token_class = authenticate(state, req)
    if error:
        return error
    throttled = _throttled(state, credential, None, token_class)
    if throttled:
        return throttled
    with state.lock:
        max_limit = state.config["huawei_max_limit"]
    data = state.huawei_data
    try:
        project_id, issue_id, limit, offset = parse_record_query(req.query, max_limit,
                                                                 data.projects)
    except BadQuery as exc:
        return _error(400, exc.code, exc.msg, token_class)
    # Under the lock: add_records inserts entries between two answers, never
    # during one.
    with state.lock:
        entries = data.entries(project_id, issue_id)
        body = {"result": {"offset": offset, "record": entries[offset:offset + limit],
                           "limit": limit, "journals_total": len(entries)},
                "status": "success"}
    return Response.json(200, body, token=token_class, content_type=HUAWEI_JSON)


# --------------------------------------------------------------------------
# V4: project-wide history and issue list
# --------------------------------------------------------------------------

V4_MAX_LIMIT = 100
V4_RECORDS_DEFAULT_LIMIT = 100
V4_ISSUES_DEFAULT_LIMIT = 10
# The documented regex ([1-9][0-9]{0,12})?(,)?([1-9][0-9]{0,12})?, with the
# comma required: "startMs,endMs", either side may be empty.
_INTERVAL = re.compile(r"([1-9][0-9]{0,12})?,([1-9][0-9]{0,12})?")
V4_ISSUE_INTERVALS = ("created_time_interval", "updated_time_interval", "closed_time_interval")
# ListIssueRequestV4 fields the simulator does not implement: null / [] / ""
# accepted, anything else refused (never a silently unfiltered answer).
V4_ISSUES_UNSIMULATED = ("assigned_ids", "creator_ids", "developer_ids", "domain_ids",
                         "done_ratios", "iteration_ids", "module_ids", "priority_ids",
                         "query_type", "severity_ids", "story_point_ids", "custom_fields")


def parse_interval(name, text):
    """'startMs,endMs' -> (start or None, end or None), both inclusive."""
    if not isinstance(text, str) or not _INTERVAL.fullmatch(text):
        raise BadQuery("PM.02175006", f"{name} must look like startMs,endMs "
                                      "(13-digit ms without leading zeros; either side may be empty)")
    start_text, end_text = text.split(",")
    start = int(start_text) if start_text else None
    end = int(end_text) if end_text else None
    if start is not None and end is not None and start > end:
        raise BadQuery("PM.02175006", f"{name}: the start is after the end")
    return start, end


def _in_interval(value, bounds):
    if bounds is None:
        return True
    if value is None:
        return False
    start, end = bounds
    return (start is None or value >= start) and (end is None or value <= end)


def _v4_project(state, req):
    project_id = urllib.parse.unquote(req.path_params[0])
    if not _PROJECT_ID.fullmatch(project_id):
        raise BadQuery("PM.02175006", "project_id must be a 32-character lowercase hex string")
    return project_id


def _v4_paging(offset, limit, default_limit, max_offset):
    if limit is None:
        limit = default_limit
    if not 1 <= limit <= V4_MAX_LIMIT:
        raise BadQuery("PM.02174103", f"limit must be an integer from 1 to {V4_MAX_LIMIT}")
    offset = 0 if offset is None else offset
    if offset < 0:
        raise BadQuery("PM.02174103", "offset must be an integer >= 0")
    if offset % limit:
        raise BadQuery("PM.02174103", "offset must be a multiple of limit")
    if max_offset is not None and offset > max_offset:
        raise BadQuery("PM.02174103", f"offset must be at most {max_offset}")
    return offset, limit


def _v4_begin(state, req, endpoint):
    """Auth and quota; returns (error Response or None, token class, max offset)."""
    error, credential, token_class = authenticate(state, req)
    if error:
        return error, token_class, None
    throttled = _throttled(state, credential, endpoint, token_class)
    if throttled:
        return throttled, token_class, None
    with state.lock:
        return None, token_class, state.config["huawei_v4_max_offset"]


def list_project_records(state, req):
    """GET /v4/projects/{project_id}/issues/records"""
    error, token_class, max_offset = _v4_begin(state, req, "v4-records")
    if error:
        return error
    catalog = state.huawei_data.catalog
    try:
        project_id = _v4_project(state, req)
        query = req.query
        for name, values in query.items():
            if len(values) > 1:
                raise BadQuery("PM.02175006", f"parameter {name} is given more than once")
        unknown = sorted(set(query) - {"offset", "limit", "operated_time_interval"})
        if unknown:
            raise BadQuery("PM.02175006", f"unknown parameter: {unknown[0]}")
        numbers = {}
        for name in ("offset", "limit"):
            if name in query:
                if not _DIGITS.fullmatch(query[name][0]):
                    raise BadQuery("PM.02174103", f"{name} must be a non-negative integer")
                numbers[name] = int(query[name][0])
        offset, limit = _v4_paging(numbers.get("offset"), numbers.get("limit"),
                                   V4_RECORDS_DEFAULT_LIMIT, max_offset)
        bounds = None
        if "operated_time_interval" in query:
            bounds = parse_interval("operated_time_interval", query["operated_time_interval"][0])
        if project_id not in catalog.records:
            raise BadQuery("PM.02152005", "project does not exist or has been deleted")
    except BadQuery as exc:
        return _error(400, exc.code, exc.msg, token_class)
    with state.lock:   # add_records inserts records between two answers
        records = [r for r in catalog.records[project_id] if _in_interval(r["operated_time"], bounds)]
    body = {"records": records[offset:offset + limit], "total": len(records)}
    return Response.json(200, body, token=token_class, content_type=HUAWEI_JSON)


def _int_list(body, name):
    value = body.get(name)
    if value is None or value == []:
        return None
    if not isinstance(value, list) or not all(is_json_int(v) for v in value):
        raise BadQuery("PM.02175006", f"{name} must be a list of integers")
    return set(value)


def simulated_now_s(catalog):
    """"now" of the V4 issue list for edit_during_listing: the wall clock, but
    never before the newest updated time of the data, in whole seconds."""
    return max(int(time.time()), catalog.newest_updated_ms() // 1000)


def list_issues(state, req):
    """POST /v4/projects/{project_id}/issues"""
    error, token_class, max_offset = _v4_begin(state, req, "v4-issues")
    if error:
        return error
    catalog = state.huawei_data.catalog
    body = req.json
    try:
        project_id = _v4_project(state, req)
        if req.query:
            raise BadQuery("PM.02175006", f"unknown parameter: {sorted(req.query)[0]}")
        if body is INVALID_JSON or not isinstance(body, dict):
            raise BadQuery("PM.02175006", "the request body must be a JSON object")
        numbers = {}
        for name in ("offset", "limit"):
            value = body.get(name)
            if value is not None and not is_json_int(value):
                raise BadQuery("PM.02174103", f"{name} must be an integer")
            numbers[name] = value
        offset, limit = _v4_paging(numbers["offset"], numbers["limit"],
                                   V4_ISSUES_DEFAULT_LIMIT, max_offset)
        intervals = {}
        for name in V4_ISSUE_INTERVALS:
            if body.get(name) is not None:
                intervals[name] = parse_interval(name, body[name])
        include_deleted = body.get("include_deleted", False)
        if include_deleted is None:
            include_deleted = False
        if not isinstance(include_deleted, bool):
            raise BadQuery("PM.02175006", "include_deleted must be true or false")
        trackers = _int_list(body, "tracker_ids")
        statuses = _int_list(body, "status_ids")
        for name in V4_ISSUES_UNSIMULATED:
            if name in body and body[name] not in (None, [], ""):
                raise BadQuery("PM.02175006", f"{name} is not simulated "
                                              "(send null or [] or leave it out)")
        if project_id not in catalog.issues:
            raise BadQuery("PM.02152005", "project does not exist or has been deleted")
    except BadQuery as exc:
        return _error(400, exc.code, exc.msg, token_class)
    # Under the lock: edit_during_listing moves updated times between two
    # answers, never during one.
    with state.lock:
        matching = []
        for issue in catalog.listed(project_id):
            if issue.deleted and not include_deleted:
                continue
            if trackers is not None and issue.tracker_id not in trackers:
                continue
            if statuses is not None and HUAWEI_STATUS_IDS[issue.status] not in statuses:
                continue
            if not (_in_interval(issue.created_ms, intervals.get("created_time_interval"))
                    and _in_interval(issue.updated_ms, intervals.get("updated_time_interval"))
                    and _in_interval(issue.closed_ms, intervals.get("closed_time_interval"))):
                continue
            matching.append(issue)
        body = {"issues": [i.served() for i in matching[offset:offset + limit]],
                "total": len(matching)}
        edited = state.listing_answered("huawei")
        if edited:
            catalog.edit(edited, simulated_now_s(catalog))
    resp = Response.json(200, body, token=token_class, content_type=HUAWEI_JSON)
    resp.log_edited = edited
    return resp
