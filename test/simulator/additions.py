"""Records that arrive while the simulator runs: the `add_records` config key.

    {"add_records": {"feishu": [{"work_item_id": 1001, "operation_time": 1747706400000, ...}],
                     "huawei": [{"issue_id": 100, "created_on": 1747706400000, ...}]}}

validate() checks a posted value (its shape and types); check_targets() checks
the ids against the data; apply() builds the records with their defaults,
inserts them in their place and moves the update time of their item / issue
(the caller holds the state lock).  Nothing is added unless the whole post is
valid.  /_sim/reset removes them again (FeishuData.remove_added,
HuaweiData.remove_added).  See README.md ("Records that arrive").
"""

from common import ConfigError, is_json_int
from dataset import (FEISHU_AUTOMATIONS, FEISHU_MIN_SERVED_MS, FEISHU_MODULES,
                     FEISHU_OPERATION_TYPES, FEISHU_OPERATOR_TYPES, FEISHU_PLUGIN,
                     FEISHU_SOURCE_TYPES, FEISHU_USER_KEYS, HUAWEI_FIELD_NAMES,
                     HUAWEI_USERS, HUAWEI_V4_OPERATIONS)
from feishu import simulated_now_ms
from huawei import simulated_now_s

VENDORS = ("feishu", "huawei")
FEISHU_KEYS = ("work_item_id", "operation_time", "operator_type", "operator", "operation_type",
               "op_record_module", "source_type", "source", "record_contents")
HUAWEI_KEYS = ("issue_id", "created_on", "user", "notes", "detail")
DETAIL_KEYS = ("name", "old_value", "new_value", "operation")
MIN_MS, MAX_MS = 10 ** 12, 10 ** 13 - 1          # 13-digit ms timestamps

# Feishu defaults: the operator follows operator_type (as in the data).
FEISHU_DEFAULT_USER = FEISHU_USER_KEYS[0]        # 7491126018028090001, zhangwei
FEISHU_DEFAULT_OPERATOR = {"user": FEISHU_DEFAULT_USER, "calc_field": FEISHU_DEFAULT_USER,
                           "auto": FEISHU_AUTOMATIONS[0], "plugin": FEISHU_PLUGIN,
                           "system": "", "others": ""}
HUAWEI_USER_IDS = {user["id"]: user for user in HUAWEI_USERS}
HUAWEI_DEFAULT_USER = HUAWEI_USERS[0]["id"]      # 1111, sim_domain_zhangwei


def _fail(where, message):
    raise ConfigError(f"add_records.{where} {message}")


def _check_text(where, value):
    """Every string (keys too) must be valid Unicode: a lone surrogate could
    not be written as UTF-8 by the truth endpoints."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            _fail(where, "holds a lone surrogate")
    elif isinstance(value, list):
        for item in value:
            _check_text(where, item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(where, key)
            _check_text(where, item)


def _object(where, value, allowed, required):
    if not isinstance(value, dict):
        _fail(where, "must be an object")
    unknown = [key for key in value if key not in allowed]
    if unknown:
        _fail(where, f"has an unknown key {unknown[0]!r} (allowed: {', '.join(allowed)})")
    for key in required:
        if key not in value:
            _fail(where, f"needs {key}")


def _one_of(where, value, allowed):
    if not isinstance(value, str) or value not in allowed:
        _fail(where, "must be one of " + ", ".join(allowed))


def _string(where, value):
    if not isinstance(value, str):
        _fail(where, "must be a string")


def _validate_feishu(where, spec):
    _object(where, spec, FEISHU_KEYS, ("work_item_id", "operation_time"))
    if not is_json_int(spec["work_item_id"]):
        _fail(where + ".work_item_id", "must be an integer")
    t = spec["operation_time"]
    if not is_json_int(t) or not FEISHU_MIN_SERVED_MS <= t <= MAX_MS:
        _fail(where + ".operation_time", f"must be a 13-digit ms timestamp >= {FEISHU_MIN_SERVED_MS} "
                                         "(only those are served)")
    if "operator_type" in spec:
        _one_of(where + ".operator_type", spec["operator_type"], FEISHU_OPERATOR_TYPES)
    if "operator" in spec:
        _string(where + ".operator", spec["operator"])
    if "operation_type" in spec:
        _one_of(where + ".operation_type", spec["operation_type"], FEISHU_OPERATION_TYPES)
    if "op_record_module" in spec:
        _one_of(where + ".op_record_module", spec["op_record_module"], FEISHU_MODULES)
    if ("source_type" in spec) != ("source" in spec):
        _fail(where, "needs source_type and source together")
    if "source_type" in spec:
        _one_of(where + ".source_type", spec["source_type"], FEISHU_SOURCE_TYPES)
        if not isinstance(spec["source"], str) or not spec["source"]:
            _fail(where + ".source", "must be a non-empty string")
    if "record_contents" in spec:
        contents = spec["record_contents"]
        if not isinstance(contents, list) or not all(isinstance(c, dict) for c in contents):
            _fail(where + ".record_contents", "must be a list of objects")
    _check_text(where, spec)
    return dict(spec)


def _validate_huawei(where, spec):
    _object(where, spec, HUAWEI_KEYS, ("issue_id", "created_on"))
    if not is_json_int(spec["issue_id"]):
        _fail(where + ".issue_id", "must be an integer")
    t = spec["created_on"]
    if not is_json_int(t) or not MIN_MS <= t <= MAX_MS:
        _fail(where + ".created_on", "must be a 13-digit ms timestamp (an integer)")
    if "user" in spec and (not is_json_int(spec["user"]) or spec["user"] not in HUAWEI_USER_IDS):
        _fail(where + ".user", "must be the id of a known user: "
                               + ", ".join(str(u) for u in HUAWEI_USER_IDS))
    if "notes" in spec:
        _string(where + ".notes", spec["notes"])
    if "detail" in spec:
        detail = spec["detail"]
        _object(where + ".detail", detail, DETAIL_KEYS, ())
        if "name" in detail:
            _one_of(where + ".detail.name", detail["name"], tuple(HUAWEI_FIELD_NAMES))
        if "old_value" in detail and detail["old_value"] is not None:
            _string(where + ".detail.old_value", detail["old_value"])
        if "new_value" in detail:
            _string(where + ".detail.new_value", detail["new_value"])
        if "operation" in detail:
            _one_of(where + ".detail.operation", detail["operation"], tuple(HUAWEI_V4_OPERATIONS))
    _check_text(where, spec)
    return dict(spec)


def validate(value):
    """{"feishu": [...], "huawei": [...]}, both optional; returns both lists."""
    if not isinstance(value, dict):
        raise ConfigError("add_records must be an object {\"feishu\": [...], \"huawei\": [...]} "
                          "(added records are removed only by /_sim/reset)")
    unknown = [key for key in value if key not in VENDORS]
    if unknown:
        raise ConfigError(f"add_records: unknown key {unknown[0]!r}")
    clean = {}
    for vendor, check in (("feishu", _validate_feishu), ("huawei", _validate_huawei)):
        specs = value.get(vendor, [])
        if not isinstance(specs, list):
            raise ConfigError(f"add_records.{vendor} must be a list of objects")
        clean[vendor] = [check(f"{vendor}[{k}]", spec) for k, spec in enumerate(specs)]
    return clean


def check_targets(clean, feishu_data, huawei_data):
    """The work items and issues must exist and not be deleted (the ids and
    the deleted flags never change after start-up)."""
    targets = [("feishu", "work_item_id", feishu_data.catalog.items, "Feishu work item", "work item"),
               ("huawei", "issue_id", huawei_data.catalog.by_id, "Huawei issue", "issue")]
    for vendor, key, known, what, short in targets:
        for k, spec in enumerate(clean[vendor]):
            target = known.get(spec[key])
            if target is None:
                _fail(f"{vendor}[{k}].{key}", f"{spec[key]} is not a {what}")
            if target.deleted:
                _fail(f"{vendor}[{k}].{key}", f"{target.id} is a deleted {short}")


def feishu_record(spec, item, number):
    """The record as served, in the key order of the list call."""
    operator_type = spec.get("operator_type", "user")
    operator = spec.get("operator", FEISHU_DEFAULT_OPERATOR[operator_type])
    rec = {"project_key": item.project_key, "work_item_id": item.id,
           "work_item_type_key": item.type_key, "operation_time": spec["operation_time"],
           "operator_type": operator_type, "operator": operator,
           "operation_type": spec.get("operation_type", "modify"),
           "op_record_module": spec.get("op_record_module", "field_mod")}
    if "source_type" in spec:
        rec["source_type"], rec["source"] = spec["source_type"], spec["source"]
    elif operator_type in ("auto", "plugin"):
        rec["source_type"], rec["source"] = operator_type, operator
    if "record_contents" in spec:
        rec["record_contents"] = spec["record_contents"]
    else:
        rec["record_contents"] = [{"object": {"object_type": "field", "object_value": "description"},
                                   "add": [], "delete": [], "old": [],
                                   "new": [f"added record {number}"]}]
    return rec


def huawei_entry(spec, entry_id, detail_id, number):
    """The history entry as get-record serves it: one batch, one detail."""
    given = spec.get("detail", {})
    detail = {"id": detail_id, "journal_id": entry_id, "property": "attr"}
    old_value = given.get("old_value", "")
    if old_value is not None:
        detail["old_value"] = old_value
    detail["new_value"] = given.get("new_value", f"<p>added entry {number}</p>")
    detail["name"] = given.get("name", "description")
    detail["operation"] = given.get("operation", "修改")
    entry = {"id": entry_id}
    if "notes" in spec:
        entry["notes"] = spec["notes"]
    entry["created_on"] = str(spec["created_on"])
    entry["user"] = dict(HUAWEI_USER_IDS[spec.get("user", HUAWEI_DEFAULT_USER)])
    entry["details"] = [detail]
    return entry


def apply(clean, feishu_data, huawei_data, done):
    """Add the records of one valid post.  `done` = the records added since the
    last reset ({"feishu": n, "huawei": m}), for the default texts.  Returns
    (Feishu records as served, Huawei {"project_id", "issue_id", "entry"}).
    The caller holds the state lock."""
    feishu_out = []
    if clean["feishu"]:
        catalog = feishu_data.catalog
        now_ms = simulated_now_ms(catalog)          # before the records move anything
        for k, spec in enumerate(clean["feishu"], 1):
            item = catalog.items[spec["work_item_id"]]
            rec = feishu_data.add_record(feishu_record(spec, item, done["feishu"] + k))
            feishu_out.append(rec.data)
        catalog.edit([spec["work_item_id"] for spec in clean["feishu"]], now_ms)
    huawei_out = []
    if clean["huawei"]:
        catalog = huawei_data.catalog
        now_s = simulated_now_s(catalog)
        for k, spec in enumerate(clean["huawei"], 1):
            issue = catalog.by_id[spec["issue_id"]]
            entry_id, detail_id = huawei_data.new_ids()
            entry = huawei_entry(spec, entry_id, detail_id, done["huawei"] + k)
            huawei_data.add_entry(issue.project_id, issue.id, entry)
            huawei_out.append({"project_id": issue.project_id, "issue_id": issue.id, "entry": entry})
        catalog.edit([spec["issue_id"] for spec in clean["huawei"]], now_s)
    return feishu_out, huawei_out
