"""Fault injection for the oprec simulator: the `faults` config key.

Each fault object names a path substring (and optionally a `match` substring
of the query string or body), a selection among the matching requests (skip, then count or every) and a kind of misbehaviour: throttle,
error, slow, reset, template, endless, paging_loop.  See README.md ("Faults").

validate_faults() turns the config value into Fault objects (each with its own
request counter); respond() builds the answer of a picked fault.  The HTTP
side of the special answers (connection reset, streamed bodies) is in
oprec_sim.py, driven by the Response attributes action/stream/length/chunked.
"""

import email.utils
import functools
import json
import os
import re
import string
import struct
import time
import zlib

from common import ConfigError, Response, is_json_int

FEISHU_LIST_PATH = "/open_api/op_record/work_item/list"
FEISHU_JSON = "application/json; charset=utf-8"
HUAWEI_JSON = "application/json;charset=UTF-8"
FILL_MARK = "@@FILL@@"

# Keys every fault may carry, and those of each kind.
COMMON_KEYS = {"path", "kind", "skip", "count", "every", "headers", "match"}
KIND_KEYS = {
    "throttle": {"retry_after"},
    "error": {"status", "body", "raw", "encoding", "retry_after"},
    "slow": {"delay_ms"},
    "reset": set(),
    "template": {"status", "raw", "fill", "repeat", "gzip", "content_type", "encoding"},
    "endless": {"fill", "prefix", "max_seconds", "chunked", "content_type", "encoding"},
    "paging_loop": {"cursor_length"},
}
ENCODINGS = ("utf-8", "latin-1")

STREAM_ABOVE = 4 * 1024 * 1024      # bodies larger than this are sent in chunks
CHUNK = 1024 * 1024                 # size of one repeated block of `fill`
ENDLESS_CHUNK = 64 * 1024
ENDLESS_LENGTH = 10 ** 12
GZIP_MAX_INPUT = 2 ** 31            # the gzip trailer keeps the size mod 2^32
MAX_CURSOR_LENGTH = 16 * 1024 * 1024
MAX_RETRY_DATE_S = 10 ** 9
MAX_ENDLESS_S = 3600
MAX_MATCH_LENGTH = 1000

FEISHU_THROTTLE = {"err_code": 10429, "err_msg": "request too frequent",
                   "err": {"code": 10429, "msg": "request too frequent"}, "data": None}
HUAWEI_THROTTLE = {"error_code": "APIGW.0308",
                   "error_msg": "The throttling threshold has been reached: policy user over ratelimit"}
FEISHU_SERVER_ERROR = {"err_code": 50006, "err_msg": "server error",
                       "err": {"code": 50006, "msg": "server error"}, "data": None}
HUAWEI_SERVER_ERROR = {"error_code": "PM.02175000", "error_msg": "System busy"}

_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_CURSOR_ALPHABET = string.ascii_letters + string.digits


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------

def _int(where, key, value, minimum, maximum=None):
    if not is_json_int(value) or value < minimum or (maximum is not None and value > maximum):
        limit = f" and <= {maximum}" if maximum is not None else ""
        raise ConfigError(f"{where}.{key} must be an integer >= {minimum}{limit}")
    return value


def _str(where, key, value, encoding="utf-8"):
    if not isinstance(value, str):
        raise ConfigError(f"{where}.{key} must be a string")
    if encoding == "latin-1":
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise ConfigError(f"{where}.{key}: with encoding latin-1 only characters "
                              "U+0000..U+00FF are allowed") from None
    return value


def _headers(where, headers):
    if not isinstance(headers, dict):
        raise ConfigError(f"{where}.headers must be an object of strings")
    for name, value in headers.items():
        if not isinstance(value, str):
            raise ConfigError(f"{where}.headers must be an object of strings")
        if not _HEADER_NAME.fullmatch(name):
            raise ConfigError(f"{where}.headers: {name!r} is not a valid header name "
                              "(no CR, LF, colon, space or control characters)")
        if "\r" in value or "\n" in value:
            raise ConfigError(f"{where}.headers: the value of {name} contains CR or LF")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise ConfigError(f"{where}.headers: the value of {name} must use characters "
                              "U+0000..U+00FF only (each is sent as one byte)") from None
        if name.lower() in ("content-length", "transfer-encoding"):
            raise ConfigError(f"{where}.headers: {name} is set by the simulator")
    return dict(headers)


def _retry_after(where, value):
    if is_json_int(value):
        return value
    if isinstance(value, str) and value.startswith("date:"):
        try:
            seconds = int(value[5:])
        except ValueError:
            seconds = None
        if seconds is not None and abs(seconds) <= MAX_RETRY_DATE_S and value[5:].strip() == value[5:]:
            return value
    raise ConfigError(f'{where}.retry_after must be an integer or "date:N" (N seconds from now)')


class Fault:
    """One validated fault plus its request counter (`seen`)."""

    def __init__(self, spec, index):
        where = f"faults[{index}]"
        if not isinstance(spec, dict):
            raise ConfigError(f"{where} must be an object")
        kind = spec.get("kind")
        if kind not in KIND_KEYS:
            raise ConfigError(f"{where}.kind must be one of " + ", ".join(KIND_KEYS))
        unknown = sorted(set(spec) - COMMON_KEYS - KIND_KEYS[kind])
        if unknown:
            raise ConfigError(f"{where}: unknown key {unknown[0]!r} for kind {kind}")
        path = spec.get("path")
        if not isinstance(path, str) or not path:
            raise ConfigError(f"{where}.path must be a non-empty string")
        if path.startswith("/_sim/") or "/_sim/" in path:
            raise ConfigError(f"{where}.path: control endpoints cannot be faulted")
        if "count" in spec and "every" in spec:
            raise ConfigError(f"{where}: give count or every, not both")
        match = spec.get("match")
        if "match" in spec and (not isinstance(match, str) or not match
                                or len(match) > MAX_MATCH_LENGTH):
            raise ConfigError(f"{where}.match must be a non-empty string of at most "
                              f"{MAX_MATCH_LENGTH} characters")
        self.spec = spec
        self.kind = kind
        self.path = path
        self.match = match
        self.skip = _int(where, "skip", spec.get("skip", 0), 0)
        self.count = _int(where, "count", spec["count"], 1) if "count" in spec else None
        self.every = _int(where, "every", spec["every"], 1) if "every" in spec else None
        self.headers = _headers(where, spec.get("headers", {}))
        self.seen = 0
        getattr(self, "_check_" + kind)(where, spec)

    # -- per-kind options ---------------------------------------------------

    def _check_throttle(self, where, spec):
        self.retry_after = _retry_after(where, spec["retry_after"]) if "retry_after" in spec else None

    def _check_error(self, where, spec):
        self.status = self._status(where, spec, 500)
        self.encoding = self._encoding(where, spec)
        if "body" in spec and "raw" in spec:
            raise ConfigError(f"{where}: give body or raw, not both")
        self.raw = _str(where, "raw", spec["raw"], self.encoding) if "raw" in spec else None
        self.has_body = "body" in spec
        self.body = spec.get("body")
        self.retry_after = _retry_after(where, spec["retry_after"]) if "retry_after" in spec else None

    def _check_slow(self, where, spec):
        if "delay_ms" not in spec:
            raise ConfigError(f"{where}: kind slow needs delay_ms")
        self.delay_ms = _int(where, "delay_ms", spec["delay_ms"], 0)

    def _check_reset(self, where, spec):
        pass

    def _check_template(self, where, spec):
        self.status = self._status(where, spec, 200)
        self.encoding = self._encoding(where, spec)
        if "raw" not in spec:
            raise ConfigError(f"{where}: kind template needs raw")
        self.raw = _str(where, "raw", spec["raw"], self.encoding)
        self.fill = _str(where, "fill", spec.get("fill", ""), self.encoding)
        self.repeat = _int(where, "repeat", spec.get("repeat", 0), 0)
        self.gzip = spec.get("gzip", False)
        if not isinstance(self.gzip, bool):
            raise ConfigError(f"{where}.gzip must be true or false")
        self.content_type = _str(where, "content_type", spec.get("content_type", "application/json"))
        self._check_header_text(where, "content_type", self.content_type)
        if self.gzip and self.total_length() > GZIP_MAX_INPUT:
            raise ConfigError(f"{where}: a gzip template may expand to at most {GZIP_MAX_INPUT} bytes")

    def _check_endless(self, where, spec):
        self.encoding = self._encoding(where, spec)
        self.fill = _str(where, "fill", spec.get("fill", "[{},"), self.encoding)
        if not self.fill:
            raise ConfigError(f"{where}.fill must not be empty")
        self.prefix = _str(where, "prefix", spec.get("prefix", ""), self.encoding)
        self.max_seconds = _int(where, "max_seconds", spec.get("max_seconds", 30), 0, MAX_ENDLESS_S)
        self.chunked = spec.get("chunked", False)
        if not isinstance(self.chunked, bool):
            raise ConfigError(f"{where}.chunked must be true or false")
        self.content_type = _str(where, "content_type", spec.get("content_type", "application/json"))
        self._check_header_text(where, "content_type", self.content_type)

    def _check_paging_loop(self, where, spec):
        if self.path not in FEISHU_LIST_PATH:
            raise ConfigError(f"{where}: kind paging_loop only applies to {FEISHU_LIST_PATH}")
        self.cursor_length = _int(where, "cursor_length", spec.get("cursor_length", 16), 1,
                                  MAX_CURSOR_LENGTH)

    @staticmethod
    def _status(where, spec, default):
        status = spec.get("status", default)
        if not is_json_int(status) or not 100 <= status <= 599:
            raise ConfigError(f"{where}.status must be an HTTP status code")
        return status

    @staticmethod
    def _encoding(where, spec):
        encoding = spec.get("encoding", "utf-8")
        if encoding not in ENCODINGS:
            raise ConfigError(f"{where}.encoding must be utf-8 or latin-1")
        return encoding

    @staticmethod
    def _check_header_text(where, key, value):
        if "\r" in value or "\n" in value:
            raise ConfigError(f"{where}.{key} contains CR or LF")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise ConfigError(f"{where}.{key} must use characters U+0000..U+00FF only") from None

    # -- selection ------------------------------------------------------------

    def matches(self, req):
        """Path (without query) contains `path`, and the query string or the
        body contains `match` when one is given."""
        path = req.path
        if self.path not in path:
            return False
        if self.kind == "paging_loop" and path != FEISHU_LIST_PATH:
            return False
        if self.match is not None:
            query, body = req.match_texts()
            return self.match in query or self.match in body
        return True

    def count_and_select(self):
        """Count one more matching request; True when this one is faulted."""
        self.seen += 1
        n = self.seen - self.skip
        if n <= 0:
            return False
        if self.count is not None:
            return n <= self.count
        if self.every is not None:
            return n % self.every == 0
        return True

    # -- template helpers -------------------------------------------------------

    def segments(self):
        return tuple(part.encode(self.encoding, "surrogatepass")
                     for part in self.raw.split(FILL_MARK))

    def fill_bytes(self):
        return self.fill.encode(self.encoding, "surrogatepass")

    def total_length(self):
        segments = self.segments()
        return sum(map(len, segments)) + (len(segments) - 1) * len(self.fill_bytes()) * self.repeat


def validate_faults(value):
    if not isinstance(value, list):
        raise ConfigError("faults must be a list of fault objects")
    return [Fault(spec, i) for i, spec in enumerate(value)]


# --------------------------------------------------------------------------
# Answers
# --------------------------------------------------------------------------

def _is_feishu(path):
    return path.startswith("/open_api/")


def _retry_after_value(value):
    if isinstance(value, str):   # "date:N"
        return email.utils.formatdate(time.time() + int(value[5:]), usegmt=True)
    return str(value)


def respond(state, fault, req):
    """The answer of a picked fault (not for kind slow, which answers normally)."""
    feishu = _is_feishu(req.path)
    vendor_json = FEISHU_JSON if feishu else HUAWEI_JSON
    kind = fault.kind
    if kind == "throttle":
        resp = Response.json(429, FEISHU_THROTTLE if feishu else HUAWEI_THROTTLE,
                             content_type=vendor_json)
        if fault.retry_after is not None:
            resp.set_header("Retry-After", _retry_after_value(fault.retry_after))
    elif kind == "error":
        if fault.raw is not None:
            resp = _parsed_if_json(fault.status, fault.raw.encode(fault.encoding, "surrogatepass"),
                                   vendor_json)
        elif fault.has_body:
            resp = Response.json(fault.status, fault.body, content_type=vendor_json)
        else:
            resp = Response.json(fault.status, FEISHU_SERVER_ERROR if feishu else HUAWEI_SERVER_ERROR,
                                 content_type=vendor_json)
        if fault.retry_after is not None:
            resp.set_header("Retry-After", _retry_after_value(fault.retry_after))
    elif kind == "reset":
        resp = Response(0)
        resp.action = "reset"
        resp.log_summary = (0, None, None, None)
    elif kind == "template":
        resp = _template(fault)
    elif kind == "endless":
        resp = _endless(fault)
    elif kind == "paging_loop":
        with state.lock:
            state.loop_cursor_count += 1
            number = state.loop_cursor_count
        payload = {"err_code": 0, "err_msg": "",
                   "data": {"op_records": [], "has_more": True,
                            "start_from": _loop_cursor(number, fault.cursor_length)}}
        resp = Response.json(200, payload, content_type=FEISHU_JSON)
    else:   # validate_faults admits no other kind
        raise AssertionError(kind)
    return resp


def apply_headers(resp, fault):
    for name, value in fault.headers.items():
        resp.set_header(name, value)


def _loop_cursor(number, length):
    """A cursor of exactly `length` characters, ending with `number` in base 62
    (so unique while 62**length exceeds the number of cursors handed out)."""
    digits = ""
    while True:
        number, rem = divmod(number, 62)
        digits = _CURSOR_ALPHABET[rem] + digits
        if number == 0:
            break
    if len(digits) >= length:
        return digits[-length:]
    pad = length - len(digits)
    if pad <= 64:
        prefix = "".join(_CURSOR_ALPHABET[b % 62] for b in os.urandom(pad))
    else:   # long cursors: random text repeated (cheap), still unique by the suffix
        block = "".join(_CURSOR_ALPHABET[b % 62] for b in os.urandom(4096))
        prefix = (block * (pad // len(block) + 1))[:pad]
    return prefix + digits


def _repeat_blocks(fill, repeat):
    """fill * repeat as chunks of about CHUNK bytes: (block, times, tail)."""
    if not fill or repeat == 0:
        return b"", 0, b""
    per_block = max(1, CHUNK // len(fill))
    per_block = min(per_block, repeat)
    times, rest = divmod(repeat, per_block)
    return fill * per_block, times, fill * rest


def _template_stream(segments, fill, repeat):
    block, times, tail = _repeat_blocks(fill, repeat)
    last = len(segments) - 1
    for i, segment in enumerate(segments):
        if segment:
            yield segment
        if i < last:
            for _ in range(times):
                yield block
            if tail:
                yield tail


_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"   # deflate, no name, max compression


def _deflate_piece(data):
    """Raw deflate of `data` ending in a full flush: byte-aligned, no reference
    to earlier data, so such pieces can be concatenated (and one repeated)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)


@functools.lru_cache(maxsize=8)
def gzip_template(segments, fill, repeat):
    """The gzip body of a template, built in O(output) memory: the repeated
    block of `fill` is compressed once and its compressed bytes repeated
    (CRC-32 still runs over every input byte)."""
    block, times, tail = _repeat_blocks(fill, repeat)
    block_z = _deflate_piece(block) if times else b""
    tail_z = _deflate_piece(tail) if tail else b""
    out, crc, size = [_GZIP_HEADER], 0, 0
    last = len(segments) - 1
    for i, segment in enumerate(segments):
        if segment:
            out.append(_deflate_piece(segment))
            crc = zlib.crc32(segment, crc)
            size += len(segment)
        if i < last:
            for _ in range(times):
                out.append(block_z)
                crc = zlib.crc32(block, crc)
            size += len(block) * times
            if tail:
                out.append(tail_z)
                crc = zlib.crc32(tail, crc)
                size += len(tail)
    out.append(zlib.compressobj(9, zlib.DEFLATED, -15).flush(zlib.Z_FINISH))  # final block
    out.append(struct.pack("<II", crc & 0xFFFFFFFF, size & 0xFFFFFFFF))
    return b"".join(out)


def _parsed_if_json(status, body, content_type):
    """A Response whose log line is summarised from the body when it is JSON
    (err_code/records/has_more null otherwise)."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        payload = None
    resp = Response(status, body, content_type=content_type, payload=payload)
    if not isinstance(payload, dict):
        resp.log_summary = (status, None, None, None)
    return resp


def _template(fault):
    segments, fill = fault.segments(), fault.fill_bytes()
    if fault.gzip:
        body = gzip_template(segments, fill, fault.repeat)
        resp = Response(fault.status, body, content_type=fault.content_type)
        resp.set_header("Content-Encoding", "gzip")
        resp.log_summary = (fault.status, None, None, None)
        return resp
    length = fault.total_length()
    if length <= STREAM_ABOVE:
        body = b"".join(_template_stream(segments, fill, fault.repeat))
        return _parsed_if_json(fault.status, body, fault.content_type)
    resp = Response(fault.status, b"", content_type=fault.content_type)
    resp.stream = _template_stream(segments, fill, fault.repeat)
    resp.length = length
    resp.log_summary = (fault.status, None, None, None)
    return resp


def _endless_stream(prefix, fill):
    if prefix:
        yield prefix
    block = fill * max(1, ENDLESS_CHUNK // len(fill))
    while True:
        yield block


def _endless(fault):
    resp = Response(200, b"", content_type=fault.content_type)
    resp.stream = _endless_stream(fault.prefix.encode(fault.encoding, "surrogatepass"),
                                  fault.fill.encode(fault.encoding, "surrogatepass"))
    resp.chunked = fault.chunked
    resp.length = None if fault.chunked else ENDLESS_LENGTH
    resp.deadline = time.monotonic() + fault.max_seconds
    resp.close_after = True
    resp.log_summary = (0, None, None, None)
    return resp

