"""Deterministic test data for the oprec simulator.

Feishu Project: operation records of work items (proj_alpha, proj_beta,
proj_edge, whose item 7000 carries JSON numbers past int64 and double, and
proj_wide, 450 items for listings longer than one filter page).
Huawei CodeArts Req: issue history entries (three projects, the third with
250 issues for listings of several pages).

Everything comes from random.Random with fixed seeds, so every run serves the
same data; the only exception is the "recent" items (Feishu 1300, Huawei 5555),
whose timestamps are relative to the server start so that "last N days" queries
always find something.  Records added while the simulator runs (the
add_records config key, additions.py) are inserted in their place and removed
again by /_sim/reset.
"""

import bisect
import collections
import datetime
import random

from common import RawJSON


def _ms(iso):
    return int(datetime.datetime.fromisoformat(iso).timestamp() * 1000)


HOUR_MS = 3600 * 1000
DAY_MS = 24 * HOUR_MS
WEEK_MS = 7 * DAY_MS

# ==========================================================================
# Feishu Project
# ==========================================================================

FEISHU_MIN_SERVED_MS = 1719849600000          # 2024-07-02T00:00:00+08:00
FEISHU_DATA_FIRST_MS = _ms("2024-06-01T00:00:00+08:00")
FEISHU_DATA_LAST_MS = _ms("2026-10-31T23:59:59+08:00")

FEISHU_PROJECTS = ("proj_alpha", "proj_beta", "proj_edge", "proj_wide")
FEISHU_NORMAL_ITEMS = range(1001, 1131)       # proj_alpha, 130 items
FEISHU_EMPTY_ITEMS = (1013, 1057, 1099)       # forced to have no records at all
FEISHU_UNSERVED_ITEM = 1120                   # records only before 2024-07-02
FEISHU_BULK_ITEM = 5000                       # 3000 records, ~6 h apart
FEISHU_BULK_COUNT = 3000
FEISHU_BIG_ITEMS = (9007199254740993, 9007199254740995)   # > 2^53
FEISHU_EDGE_ITEM = 1200
FEISHU_EDGE_BASE_MS = 1740787200000           # 2025-03-01T00:00:00Z
FEISHU_EDGE_WEEKS = 9                         # edges k = 0..8
FEISHU_RECENT_ITEM = 1300
FEISHU_RECENT_OFFSETS_S = (3600, 2 * 86400, 5 * 86400, 10 * 86400, 40 * 86400)
FEISHU_BETA_ITEMS = range(2001, 2011)
FEISHU_NUMBER_PROJECT = "proj_edge"
FEISHU_NUMBER_ITEM = 7000
FEISHU_NUMBER_BASE_MS = 1743465600000         # 2025-04-01T00:00:00Z; records +0, +1, +2 min
# proj_wide: more items than one work_item/filter page (200) holds, built
# last from seeds of its own so that no other project's data moves.
FEISHU_WIDE_PROJECT = "proj_wide"
FEISHU_WIDE_ITEMS = range(3001, 3451)         # 450 items, 1..4 records each
FEISHU_WIDE_FIRST_MS = _ms("2025-01-01T00:00:00+08:00")
FEISHU_WIDE_LAST_MS = _ms("2026-10-31T23:59:59+08:00")
FEISHU_WIDE_SEED = 20250101
FEISHU_WIDE_CATALOG_SEED = 45003001

FEISHU_OPERATOR_TYPES = ("user", "auto", "system", "calc_field", "plugin", "others")
FEISHU_SOURCE_TYPES = ("auto", "plugin")
FEISHU_OPERATION_TYPES = ("modify", "create", "delete", "terminate", "restore",
                          "complete", "rollback", "add", "remove")
FEISHU_MODULES = ("work_item_mod", "node_mod", "sub_task_mod", "field_mod",
                  "role_and_user_mod", "baseline_mod")

FEISHU_USER_KEYS = ("7491126018028090001", "7491126018028090002",
                    "7491126018028090017", "7380021184471550023",
                    "7380021184471550118", "7122334455667788990")
FEISHU_AUTOMATIONS = ("auto_8842", "auto_9310")
FEISHU_PLUGIN = "plugin_77"

_OPERATOR_TYPE_WEIGHTS = (("user", 70), ("auto", 10), ("system", 6),
                          ("calc_field", 5), ("plugin", 5), ("others", 4))
_OPERATION_TYPE_WEIGHTS = (("modify", 60), ("create", 6), ("delete", 3),
                           ("terminate", 2), ("restore", 2), ("complete", 12),
                           ("rollback", 5), ("add", 5), ("remove", 5))
_MODULE_WEIGHTS = (("field_mod", 45), ("node_mod", 20), ("sub_task_mod", 10),
                   ("work_item_mod", 10), ("role_and_user_mod", 10),
                   ("baseline_mod", 5))
_MODULE_OBJECT_TYPE = {"field_mod": "field", "node_mod": "node",
                       "sub_task_mod": "sub_task", "work_item_mod": "work_item",
                       "role_and_user_mod": "role", "baseline_mod": "baseline"}
_FIELD_KEYS = ("field_4b512b", "field_b34565", "field_db0b07", "priority",
               "name", "description", "business", "tags")
_FIELD_VALUES = ("1", "2", "3", "6436220011", "高", "中", "低", "进行中",
                 "已完成", "支付", "checkout", "v2.3.1", "")
_NODE_KEYS = ("state_design", "state_dev", "state_test", "state_release")
_ROLE_KEYS = ("role_owner", "role_dev", "role_qa", "role_pm")


def _weighted(rng, pairs):
    total = sum(w for _, w in pairs)
    pick = rng.uniform(0, total)
    for value, weight in pairs:
        pick -= weight
        if pick <= 0:
            return value
    return pairs[-1][0]


class FeishuRecord:
    """A record as served (`data`, a dict in the API's key order) plus the
    stable sequence number used to break ties on operation_time."""

    __slots__ = ("seq", "data")

    def __init__(self, seq, data):
        self.seq = seq
        self.data = data

    @property
    def time(self):
        return self.data["operation_time"]

    def sort_key(self):
        return (self.data["operation_time"], self.seq)


class FeishuData:
    def __init__(self, start_s):
        self.projects = {key: set() for key in FEISHU_PROJECTS}
        self.records = {}          # work_item_id -> [FeishuRecord] oldest first
        self._seq = 0
        self._rng = random.Random(20240702)
        self.item_types = {}       # work_item_id -> type key drawn for 1001..1130 and proj_wide
        self._build(start_s)
        self._build_wide()
        for item_id, recs in self.records.items():
            recs.sort(key=FeishuRecord.sort_key)
        self._built_seq = self._seq
        self.added = []            # FeishuRecord added by add_records, in the order added
        # Work items, types and users for the enumeration calls: derived from
        # the records above with a separate random stream (never changes them).
        self.catalog = FeishuCatalog(self, start_s)

    # -- public -----------------------------------------------------------

    def project_of(self, item_id):
        for key, items in self.projects.items():
            if item_id in items:
                return key
        return None

    def served_records(self, item_id):
        return [r for r in self.records.get(item_id, ()) if r.time >= FEISHU_MIN_SERVED_MS]

    def truth(self):
        """Every served record, by work_item_id, operation_time, sequence."""
        out = []
        for item_id in sorted(self.records):
            out.extend(self.served_records(item_id))
        return out

    def add_record(self, data):
        """A record that arrives after start-up (add_records): inserted by
        operation_time, after the records of the same time (its sequence is
        the newest).  The caller holds the state lock."""
        self._seq += 1
        rec = FeishuRecord(self._seq, data)
        bisect.insort(self.records[data["work_item_id"]], rec, key=FeishuRecord.sort_key)
        self.added.append(rec)
        self.catalog.record_added(rec)
        return rec

    def remove_added(self):
        """Remove every added record (/_sim/reset); True when there was one."""
        if not self.added:
            return False
        for item_id in {rec.data["work_item_id"] for rec in self.added}:
            self.records[item_id] = [r for r in self.records[item_id] if r.seq <= self._built_seq]
        self.added = []
        self._seq = self._built_seq
        return True

    # -- construction -----------------------------------------------------

    def _add_item(self, project_key, item_id):
        self.projects[project_key].add(item_id)
        self.records.setdefault(item_id, [])

    def _add(self, data):
        self._seq += 1
        self.records[data["work_item_id"]].append(FeishuRecord(self._seq, data))

    def _build(self, start_s):
        rng = self._rng
        for item_id in FEISHU_NORMAL_ITEMS:
            self._add_item("proj_alpha", item_id)
            type_key = rng.choice(("story", "issue"))
            self.item_types[item_id] = type_key   # metadata only: no extra draw
            count = rng.randint(0, 25)
            if item_id in FEISHU_EMPTY_ITEMS:
                count = 0
            for _ in range(count):
                if item_id == FEISHU_UNSERVED_ITEM:
                    t = rng.randint(FEISHU_DATA_FIRST_MS, FEISHU_MIN_SERVED_MS - 1)
                else:
                    t = self._random_time(rng)
                self._add(self._random_record(rng, "proj_alpha", item_id, type_key, t))
        self._build_special_strings()
        self._build_bulk_item(rng)
        for item_id in FEISHU_BIG_ITEMS:
            self._add_item("proj_alpha", item_id)
            for _ in range(rng.randint(4, 6)):
                t = rng.randint(_ms("2025-01-01T00:00:00+08:00"), _ms("2025-12-31T00:00:00+08:00"))
                self._add(self._random_record(rng, "proj_alpha", item_id, "story", t // 1000 * 1000))
        self._build_edge_item()
        self._build_recent_item(rng, start_s)
        self._build_number_item()
        for item_id in FEISHU_BETA_ITEMS:
            self._add_item("proj_beta", item_id)
            for _ in range(rng.randint(1, 5)):
                self._add(self._random_record(rng, "proj_beta", item_id, "bug",
                                              self._random_time(rng)))

    def _build_wide(self):
        """proj_wide, after everything else and with its own random stream."""
        rng = random.Random(FEISHU_WIDE_SEED)
        for item_id in FEISHU_WIDE_ITEMS:
            self._add_item(FEISHU_WIDE_PROJECT, item_id)
            type_key = rng.choice(("story", "issue"))
            self.item_types[item_id] = type_key   # when no record names the type
            for _ in range(rng.randint(1, 4)):
                t = self._random_time(rng, FEISHU_WIDE_FIRST_MS, FEISHU_WIDE_LAST_MS)
                self._add(self._random_record(rng, FEISHU_WIDE_PROJECT, item_id, type_key, t))

    @staticmethod
    def _random_time(rng, first=FEISHU_DATA_FIRST_MS, last=FEISHU_DATA_LAST_MS):
        t = rng.randint(first, last)
        # Most real timestamps are whole seconds; keep some with ms to catch truncation.
        return t if rng.random() < 0.1 else t // 1000 * 1000

    def _random_record(self, rng, project_key, item_id, type_key, t):
        operator_type = _weighted(rng, _OPERATOR_TYPE_WEIGHTS)
        if operator_type == "auto":
            operator = rng.choice(FEISHU_AUTOMATIONS)
        elif operator_type == "plugin":
            operator = FEISHU_PLUGIN
        elif operator_type in ("system", "others"):
            operator = ""
        else:
            operator = rng.choice(FEISHU_USER_KEYS)
        module = _weighted(rng, _MODULE_WEIGHTS)
        rec = {"project_key": project_key, "work_item_id": item_id}
        if rng.random() >= 0.05:
            rec["work_item_type_key"] = type_key
        rec["operation_time"] = t
        rec["operator_type"] = operator_type
        rec["operator"] = operator
        rec["operation_type"] = _weighted(rng, _OPERATION_TYPE_WEIGHTS)
        rec["op_record_module"] = module
        if operator_type == "auto":
            rec["source_type"], rec["source"] = "auto", operator
        elif operator_type == "plugin":
            rec["source_type"], rec["source"] = "plugin", FEISHU_PLUGIN
        elif operator_type == "user" and rng.random() < 0.12:
            if rng.random() < 0.5:
                rec["source_type"], rec["source"] = "auto", "auto_8842"
            else:
                rec["source_type"], rec["source"] = "plugin", FEISHU_PLUGIN
        rec["record_contents"] = [self._random_content(rng, module)
                                  for _ in range(rng.randint(0, 3))]
        return rec

    @staticmethod
    def _random_content(rng, module):
        object_type = _MODULE_OBJECT_TYPE[module]
        if module == "field_mod":
            value = rng.choice(_FIELD_KEYS)
        elif module == "node_mod":
            value = rng.choice(_NODE_KEYS)
        elif module == "sub_task_mod":
            value = str(rng.randint(7000000, 7999999))
        elif module == "role_and_user_mod":
            value = rng.choice(_ROLE_KEYS)
        elif module == "baseline_mod":
            value = "baseline_v%d" % rng.randint(1, 4)
        else:
            value = str(rng.randint(6437110000, 6437119999))
        content = {"object": {"object_type": object_type, "object_value": value}}
        if module == "role_and_user_mod":
            content["add"] = [rng.choice(FEISHU_USER_KEYS)]
            content["delete"] = [rng.choice(FEISHU_USER_KEYS)] if rng.random() < 0.4 else []
            content["old"], content["new"] = [], []
        else:
            content["add"], content["delete"] = [], []
            content["old"] = [rng.choice(_FIELD_VALUES)] if rng.random() < 0.6 else []
            content["new"] = [rng.choice(_FIELD_VALUES) for _ in range(rng.randint(1, 2))]
        if module == "node_mod" and rng.random() < 0.5:
            content["object_property"] = rng.choice(("owner", "schedule", "points"))
        if rng.random() < 0.15:
            content["belong_object"] = [{"object_type": "field", "object_value": "field_c9c844"}]
        if rng.random() < 0.05:
            content["status_values"] = ["started", "closed"]
        if rng.random() < 0.05:
            content["extra"] = {"comment_id": str(rng.randint(100000, 999999))}
        return content

    def _fixed(self, item_id, t, contents, operation_type="modify", module="field_mod",
               operator="7491126018028090001"):
        self._add({"project_key": "proj_alpha", "work_item_id": item_id,
                   "work_item_type_key": "story", "operation_time": t,
                   "operator_type": "user", "operator": operator,
                   "operation_type": operation_type, "op_record_module": module,
                   "record_contents": contents})

    @staticmethod
    def _field_change(field, old, new):
        return {"add": [], "delete": [], "old": old, "new": new,
                "object": {"object_type": "field", "object_value": field}}

    def _build_special_strings(self):
        """Hand-written records on 1001/1002 carrying awkward text and ties."""
        f = self._field_change
        base = _ms("2025-05-20T10:00:00+08:00")
        self._fixed(1001, base, [f("name", ["支付流程"], ["修改了标题：支付流程优化"])])
        self._fixed(1001, base + 60000,
                    [f("description", ['say "hi"'], ['He said "ok" \\ C:\\temp\\new'])])
        self._fixed(1001, base + 120000,
                    [f("description", [], ["line1\nline2\tcolumn2"])])
        self._fixed(1001, base + 180000, [], operation_type="complete", module="node_mod")
        # Two records of 1001 and one of 1002 share one timestamp (tie-breaking).
        tie = base + 240000
        self._fixed(1001, tie, [f("priority", ["低"], ["高"])])
        self._fixed(1001, tie, [f("priority", ["高"], ["中"])])
        self._fixed(1002, tie, [f("tags", [], ["🚀 上线", "✅ done", "emoji 😀"])])
        self._fixed(1002, base + 300000, [])
        self._fixed(1002, base + 360000, [{
            "object": {"object_type": "work_item", "object_value": "1002"},
            "add": [], "delete": [], "old": ["进行中"], "new": ["已完成"],
            "status_values": ["started", "closed"],
            "extra": {"reason": "released", "note": "多行\n说明"}}],
            operation_type="complete", module="work_item_mod")

    def _build_bulk_item(self, rng):
        self._add_item("proj_alpha", FEISHU_BULK_ITEM)
        base = _ms("2025-01-01T00:00:00+00:00")
        for k in range(FEISHU_BULK_COUNT):
            # ~6 h apart; the jitter stays below the step so order is by k.
            t = base + k * 6 * HOUR_MS + rng.randint(0, 1800) * 1000
            self._add(self._random_record(rng, "proj_alpha", FEISHU_BULK_ITEM, "story", t))

    def _build_edge_item(self):
        self._add_item("proj_alpha", FEISHU_EDGE_ITEM)
        for t, label in feishu_edge_times():
            self._add({"project_key": "proj_alpha", "work_item_id": FEISHU_EDGE_ITEM,
                       "work_item_type_key": "issue", "operation_time": t,
                       "operator_type": "user", "operator": "7491126018028090002",
                       "operation_type": "modify", "op_record_module": "field_mod",
                       "record_contents": [self._field_change("edge_label", [], [label])]})

    def _build_number_item(self):
        """proj_edge / 7000: numbers a double or int64 cannot hold, written to
        the wire with exactly this text (RawJSON for the non-integers)."""
        self._add_item(FEISHU_NUMBER_PROJECT, FEISHU_NUMBER_ITEM)
        extras = [
            {"big": 123456789012345678901234567890, "neg": -99999999999999999999,
             "small": 1, "real": RawJSON("1.5e300")},
            {"precise": RawJSON("0.1000000000000000055511151231257827")},
            {"reviewed": True, "score": 7, "labels": ["a", None, 3]},
        ]
        for k, extra in enumerate(extras):
            content = self._field_change("story_points", [str(k)], [str(k + 1)])
            if extra is not None:
                content["extra"] = extra
            self._add({"project_key": FEISHU_NUMBER_PROJECT, "work_item_id": FEISHU_NUMBER_ITEM,
                       "work_item_type_key": "story",
                       "operation_time": FEISHU_NUMBER_BASE_MS + k * 60000,
                       "operator_type": "user", "operator": "7491126018028090001",
                       "operation_type": "modify", "op_record_module": "field_mod",
                       "record_contents": [content]})

    def _build_recent_item(self, rng, start_s):
        self._add_item("proj_alpha", FEISHU_RECENT_ITEM)
        for offset_s in FEISHU_RECENT_OFFSETS_S:
            rec = self._random_record(rng, "proj_alpha", FEISHU_RECENT_ITEM, "story",
                                      (start_s - offset_s) * 1000)
            self._add(rec)


def feishu_edge_times():
    """(operation_time, label) of every record of the edge item 1200."""
    out = []
    for k in range(FEISHU_EDGE_WEEKS):
        edge = FEISHU_EDGE_BASE_MS + k * WEEK_MS
        out.append((edge - 1, f"week {k} edge -1ms"))
        out.append((edge, f"week {k} edge"))
        out.append((edge + 1, f"week {k} edge +1ms"))
    out.append((_ms("2025-03-02T00:00:00+08:00"), "midnight +08:00"))
    out.append((_ms("2025-03-02T00:00:00+00:00"), "midnight UTC"))
    out.append((FEISHU_MIN_SERVED_MS, "first served instant"))
    out.append((FEISHU_MIN_SERVED_MS - 1, "never served"))
    return out


# ==========================================================================
# Huawei CodeArts Req
# ==========================================================================

HUAWEI_PROJECT_MAIN = "c15cc54e338d4506afd9bd8103071ff0"
HUAWEI_PROJECT_SECOND = "0a1b2c3d4e5f60718293a4b5c6d7e8f9"
HUAWEI_SAMPLE_ISSUE = 9175005
HUAWEI_NORMAL_ISSUES = range(100, 131)
HUAWEI_EMPTY_ISSUES = (107, 123)
HUAWEI_BIG_ID_ISSUE = 3000000001
HUAWEI_HUGE_ISSUE = 4000000000
HUAWEI_HUGE_COUNT = 10250
HUAWEI_RECENT_ISSUE = 5555
HUAWEI_SECOND_ISSUES = range(200, 206)
# The wide project: more issues than a few V4 pages hold, built last from
# seeds and id ranges of its own so that no other project's data moves.
HUAWEI_PROJECT_WIDE = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
HUAWEI_WIDE_ISSUES = range(8000001, 8000251)   # 250 issues, 1..3 entries each
HUAWEI_WIDE_FIRST_MS = _ms("2025-01-01T00:00:00+08:00")
HUAWEI_WIDE_LAST_MS = _ms("2026-10-31T23:59:59+08:00")
HUAWEI_WIDE_SEED = 80000001
HUAWEI_WIDE_CATALOG_SEED = 80000250
HUAWEI_WIDE_BATCH_BASE = 60000000              # entry ids above every other project's
HUAWEI_WIDE_DETAIL_BASE = 70000000             # detail (= V4 record) ids likewise

HUAWEI_USERS = (
    {"id": 1111, "name": "sim_domain_zhangwei", "first_name": "zhangwei",
     "identifier": "2f1c0a9e6b7d4c3e8a5b1d2c3e4f5a6b", "nick_name": "张伟",
     "image_id": ""},
    {"id": 2233, "name": "sim_domain_lina", "first_name": "lina",
     "identifier": "7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c2d", "nick_name": "李娜",
     "image_id": "img_2233"},
    {"id": 40961, "name": "sim_domain_wangfang", "first_name": "wangfang",
     "identifier": "0f9e8d7c6b5a49382716f5e4d3c2b1a0", "nick_name": "王芳",
     "image_id": "img_40961"},
    {"id": 3000000007, "name": "sim_domain_liuyang", "first_name": "liuyang",
     "identifier": "c0ffee00c0ffee00c0ffee00c0ffee00", "nick_name": "刘洋",
     "image_id": "img_3000000007"},
)

_ABSENT = object()   # a detail without old_value, an entry without notes
_STATUSES = ("新建", "进行中", "测试中", "已解决", "已关闭", "已拒绝")
_PRIORITIES = ("高", "中", "低")
_SUBJECTS = ("支付流程优化", "登录页报错", "Export CSV fails on 'Größe'",
             "订单列表分页", "Crash when title has \"quotes\"")


class _JournalBuilder:
    """Builds history entries the way the API shapes them: one batch (`id`)
    per save, usually one detail per entry, detail ids increasing."""

    def __init__(self, batch_id, detail_id):
        self.batch_id = batch_id
        self.detail_id = detail_id

    def batch(self, created_ms, user, entries, notes=_ABSENT):
        """entries: list of detail lists; a detail is (name, old, new, operation)."""
        self.batch_id += 1
        out = []
        for details in entries:
            entry = {"id": self.batch_id}
            if notes is not _ABSENT:
                entry["notes"] = notes
            entry["created_on"] = str(created_ms)
            entry["user"] = dict(user)
            entry["details"] = []
            for name, old, new, operation in details:
                self.detail_id += 1
                detail = {"id": self.detail_id, "journal_id": self.batch_id,
                          "property": "attr"}
                if old is not _ABSENT:
                    detail["old_value"] = old
                detail["new_value"] = new
                detail["name"] = name
                detail["operation"] = operation
                entry["details"].append(detail)
            out.append(entry)
        return out


def _newest_first(batches):
    """Batches were built oldest first; the API lists the newest batch first
    but keeps the entries of one batch in detail order (as in the sample)."""
    out = []
    for batch in reversed(batches):
        out.extend(batch)
    return out


class HuaweiData:
    def __init__(self, start_s):
        self.projects = {HUAWEI_PROJECT_MAIN: {}, HUAWEI_PROJECT_SECOND: {}}
        self._rng = random.Random(31415926)
        self._builder = _JournalBuilder(20000000, 30000000)
        self._build(start_s)
        self._build_wide()
        # Issue metadata and the V4 project-wide history, derived from the
        # entries above with a separate random stream (never changes them).
        self.catalog = HuaweiCatalog(self, start_s)
        # add_records: new entry and detail ids lie above every id of the
        # data and are never handed out twice (not even across resets).
        entries = [e for issues in self.projects.values() for es in issues.values() for e in es]
        self._next_entry_id = max(e["id"] for e in entries) + 1
        self._next_detail_id = max(d["id"] for e in entries for d in e["details"]) + 1
        self.added = []            # (project_id, issue_id, entry) added, in the order added

    def new_ids(self):
        """(entry id, detail id) for an added entry; the caller holds the state lock."""
        ids = self._next_entry_id, self._next_detail_id
        self._next_entry_id += 1
        self._next_detail_id += 1
        return ids

    def add_entry(self, project_id, issue_id, entry):
        """A history entry that arrives after start-up (add_records), placed
        where get-record's order puts it: entries by created_on descending,
        then entry id descending (its id is the newest, so it comes before
        the entries of the same time).  The caller holds the state lock."""
        entries = self.projects[project_id][issue_id]
        t = int(entry["created_on"])
        at = next((k for k, e in enumerate(entries) if int(e["created_on"]) <= t), len(entries))
        entries.insert(at, entry)
        self.added.append((project_id, issue_id, entry))
        self.catalog.entry_added(project_id, issue_id, entry)

    def remove_added(self):
        """Remove every added entry (/_sim/reset); True when there was one."""
        if not self.added:
            return False
        entry_ids = {entry["id"] for _, _, entry in self.added}
        for project_id, issue_id in {(p, i) for p, i, _ in self.added}:
            issues = self.projects[project_id]
            issues[issue_id] = [e for e in issues[issue_id] if e["id"] not in entry_ids]
        self.catalog.remove_added({d["id"] for _, _, entry in self.added for d in entry["details"]},
                                  {p for p, _, _ in self.added})
        self.added = []
        return True

    def entries(self, project_id, issue_id):
        return self.projects.get(project_id, {}).get(issue_id, [])

    def truth(self):
        for project_id, issues in self.projects.items():
            for issue_id in sorted(issues):
                for entry in issues[issue_id]:
                    yield project_id, issue_id, entry

    # -- construction -----------------------------------------------------

    def _build(self, start_s):
        rng = self._rng
        main = self.projects[HUAWEI_PROJECT_MAIN]
        main[HUAWEI_SAMPLE_ISSUE] = _sample_issue()
        for issue_id in HUAWEI_NORMAL_ISSUES:
            count = 0 if issue_id in HUAWEI_EMPTY_ISSUES else rng.randint(0, 40)
            start = rng.randint(_ms("2024-01-01T00:00:00+08:00"), _ms("2025-09-01T00:00:00+08:00"))
            main[issue_id] = self._synthetic(rng, start // 1000 * 1000, count)
        main[HUAWEI_BIG_ID_ISSUE] = self._synthetic(rng, _ms("2025-02-03T09:30:00+08:00"), 25)
        main[HUAWEI_HUGE_ISSUE] = self._synthetic(rng, _ms("2021-01-04T09:00:00+08:00"),
                                                  HUAWEI_HUGE_COUNT, max_gap_s=4 * 3600)
        main[HUAWEI_RECENT_ISSUE] = self._recent_issue(start_s)
        second = self.projects[HUAWEI_PROJECT_SECOND]
        for issue_id in HUAWEI_SECOND_ISSUES:
            start = rng.randint(_ms("2025-01-01T00:00:00+08:00"), _ms("2025-06-01T00:00:00+08:00"))
            second[issue_id] = self._synthetic(rng, start // 1000 * 1000, rng.randint(3, 8))

    def _build_wide(self):
        """The wide project: a creation entry, then status, priority or
        description changes; every entry has details (so V4 records)."""
        rng = random.Random(HUAWEI_WIDE_SEED)
        b = _JournalBuilder(HUAWEI_WIDE_BATCH_BASE, HUAWEI_WIDE_DETAIL_BASE)
        wide = self.projects[HUAWEI_PROJECT_WIDE] = {}
        for issue_id in HUAWEI_WIDE_ISSUES:
            stamps = sorted(rng.randint(HUAWEI_WIDE_FIRST_MS, HUAWEI_WIDE_LAST_MS) // 1000 * 1000
                            for _ in range(rng.randint(1, 3)))
            status = "新建"
            batches = [b.batch(stamps[0], rng.choice(HUAWEI_USERS),
                               [[("subject", "", rng.choice(_SUBJECTS), "新建")]], notes="")]
            for t in stamps[1:]:
                user = rng.choice(HUAWEI_USERS)
                kind = rng.random()
                if kind < 0.6:
                    new_status = rng.choice([s for s in _STATUSES if s != status])
                    batches.append(b.batch(t, user, [[("status_id", status, new_status, "修改")]],
                                           notes=""))
                    status = new_status
                elif kind < 0.85:
                    batches.append(b.batch(t, user, [[
                        ("priority_id", rng.choice(_PRIORITIES), rng.choice(_PRIORITIES), "修改"),
                        ("due_date", "", str(t + 7 * DAY_MS), "修改")]]))
                else:
                    html = '<p>更新 <b>%d</b></p>' % rng.randint(1, 9)
                    batches.append(b.batch(t, user, [[("description", "<p>旧描述</p>", html, "修改")]]))
            wide[issue_id] = _newest_first(batches)

    def _synthetic(self, rng, start_ms, count, max_gap_s=5 * 86400):
        """`count` entries of plausible history starting with a creation batch."""
        b = self._builder
        if count == 0:
            return []
        user = rng.choice(HUAWEI_USERS)
        status = "新建"
        creation = [[("subject", "", rng.choice(_SUBJECTS), "新建")],
                    [("status_id", _ABSENT, status, "新建")],
                    [("priority_id", _ABSENT, rng.choice(_PRIORITIES), "新建")],
                    [("assigned_to_id", "", rng.choice(HUAWEI_USERS)["nick_name"], "新建")]]
        batches = [b.batch(start_ms, user, creation, notes="")[:count]]
        total = len(batches[0])
        t = start_ms
        while total < count:
            t += rng.randint(600, max_gap_s) * 1000
            user = rng.choice(HUAWEI_USERS)
            kind = rng.random()
            if kind < 0.55:
                new_status = rng.choice([s for s in _STATUSES if s != status])
                entries = [[("status_id", status, new_status, "修改")]]
                status = new_status
                batch = b.batch(t, user, entries, notes="")
            elif kind < 0.70:
                entries = [[("priority_id", rng.choice(_PRIORITIES), rng.choice(_PRIORITIES), "修改"),
                            ("due_date", "", str(t + 7 * DAY_MS), "修改")]]
                batch = b.batch(t, user, entries)
            elif kind < 0.82:
                entries = [[("due_date", "", str(t + 3 * DAY_MS), "批量编辑")],
                           [("start_date", "", str(t), "批量编辑")]]
                if rng.random() < 0.5:
                    entries.append([("assigned_to_id", rng.choice(HUAWEI_USERS)["nick_name"],
                                     rng.choice(HUAWEI_USERS)["nick_name"], "批量编辑")])
                batch = b.batch(t, user, entries)
            elif kind < 0.90:
                batch = b.batch(t, user, [[]], notes="评论：请补充复现步骤 #%d" % rng.randint(1, 99))
            elif kind < 0.95:
                batch = b.batch(t, user, [[("due_date", str(t), "", "删除")]], notes="")
            else:
                html = '<p style="padding-top: 5.0px;">更新 <b>%d</b> &amp; more</p>' % rng.randint(1, 9)
                batch = b.batch(t, user, [[("description", "<p>旧描述</p>", html, "修改")]])
            # Cut the last batch short so the issue has exactly `count` entries.
            batch = batch[:count - total]
            batches.append(batch)
            total += len(batch)
        return _newest_first(batches)

    def _recent_issue(self, start_s):
        """Issue 5555: everything within the 10 days before the server start."""
        b = self._builder
        zhang, li, wang, liu = HUAWEI_USERS
        at = lambda seconds_ago: (start_s - seconds_ago) * 1000
        batches = [
            b.batch(at(9 * 86400), zhang, [
                [("subject", "", "近期工作项：状态流转", "新建")],
                [("status_id", _ABSENT, "新建", "新建")],
                [("priority_id", _ABSENT, "高", "新建")],
                [("assigned_to_id", "", "李娜", "新建")]], notes=""),
            b.batch(at(7 * 86400), li, [[("status_id", "新建", "进行中", "修改")]], notes=""),
            b.batch(at(5 * 86400), li, [[("description", "", "<p>补充说明</p>", "修改")]]),
            b.batch(at(4 * 86400), wang, [[("status_id", "进行中", "测试中", "修改")]], notes=""),
            b.batch(at(3 * 86400), liu, [[("status_id", "测试中", "进行中", "修改")]],
                    notes="测试未通过"),
            b.batch(at(2 * 86400), li, [[]], notes="已修复，重新提测"),
            b.batch(at(1 * 86400), li, [[("status_id", "进行中", "已解决", "修改"),
                                         ("due_date", "", str(at(0)), "修改")]]),
            b.batch(at(2 * 3600), zhang, [[("status_id", "已解决", "已关闭", "修改")]], notes=""),
        ]
        return _newest_first(batches)


def _sample_issue():
    """Issue 9175005: the reference page's sample (10 entries shown, 14 in all)."""
    b = _JournalBuilder(11248511, 15270148)
    zhang = HUAWEI_USERS[0]
    description = ('<p style="padding-top: 5.0px;"><span style="font-weight: bold;"> 作为 </span>'
                   '<用户角色></p><p><br></p><p style="padding-top: 5.0px;"><span style="'
                   'font-weight: bold;"> 我想要 </span><结果></p><p><br></p><p style="'
                   'padding-top: 5.0px;"><span style="font-weight: bold;"> 以便于 </span>'
                   '<目的> </p>')
    creation = b.batch(1752829683000, zhang, [
        [("subject", "", "444", "新建")],
        [("description", "", description, "新建")],
        [("status_id", _ABSENT, "新建", "新建")],
        [("assigned_to_id", "", "张伟", "新建")],
        [("order", "", "1", "新建")],
        [("priority_id", _ABSENT, "中", "新建")],
        [("severity_id", _ABSENT, "一般", "新建")],
        [("assigned_cc", "", "李娜", "新建")],
        [("tracker_id", _ABSENT, "Story", "新建")],
        [("done_ratio", "", "0", "新建")],
        [("expected_work_hours", "", "0", "新建")],
        [("iteration_id", "", "Sprint 3", "新建")],
    ], notes="")
    b.detail_id = 15270160
    bulk_edit = b.batch(1752829690000, zhang, [
        [("due_date", "", "1752854400000", "批量编辑")],
        [("start_date", "", "1752768000000", "批量编辑")],
    ])
    return _newest_first([creation, bulk_edit])


# ==========================================================================
# Enumeration metadata (the calls that list items rather than history)
#
# Derived from the records and entries above, after they are built, with
# random streams of their own: nothing here adds, removes or changes a
# Feishu record or a Huawei history entry.
# ==========================================================================

_BEIJING = datetime.timezone(datetime.timedelta(hours=8))


def beijing_text(ms):
    """'YYYY-MM-DD hh:mm:ss' in UTC+08:00, the format of Huawei's V4 issue times."""
    return datetime.datetime.fromtimestamp(ms // 1000, _BEIJING).strftime("%Y-%m-%d %H:%M:%S")


# -- Feishu Project ----------------------------------------------------------

FEISHU_SIMPLE_NAMES = {"proj_alpha": "alpha", "proj_beta": "beta", "proj_edge": "edge",
                       "proj_wide": "wide"}
FEISHU_DISABLED_TYPE = "642ec373f4af608bb3cb1c90"   # a custom type, switched off
# is_disable: 1 = disabled, 2 = enabled (Feishu Project's 1/2 convention for flags).
_DISABLED_TYPE = (FEISHU_DISABLED_TYPE, "旧任务（已停用）", "legacy_task", 1)
FEISHU_TYPES = {
    "proj_alpha": (("story", "需求", "story", 2), ("issue", "缺陷", "issue", 2),
                   ("version", "版本", "version", 2), _DISABLED_TYPE),
    "proj_beta": (("bug", "缺陷", "bug", 2), ("story", "需求", "story", 2), _DISABLED_TYPE),
    "proj_edge": (("story", "需求", "story", 2), _DISABLED_TYPE),
    "proj_wide": (("story", "需求", "story", 2), ("issue", "缺陷", "issue", 2), _DISABLED_TYPE),
}
FEISHU_STATES = ("started", "in_progress", "closed")
FEISHU_TERMINATED_STATE = "terminated"
FEISHU_ALL_STATES = FEISHU_STATES + (FEISHU_TERMINATED_STATE,)
# Terminated: hidden from work_item/filter unless work_item_status names "terminated".
FEISHU_TERMINATED_ITEMS = (1017, 1064, 2007)
# updated_at lies between the times of the item's last two records: the
# coverage assumption (updated_at >= every record) deliberately fails.
FEISHU_STALE_ITEMS = (1010, 1077, 2004)
# Deleted (deleted_at set): never listed.  Only items without any record.
FEISHU_DELETED_ITEMS = (1099,)

# user_key, username, email, name_cn, name_en, status
FEISHU_USERS = (
    ("7491126018028090001", "zhangwei", "zhangwei@example.com", "张伟", "Zhang Wei", "activated"),
    ("7491126018028090002", "lina", "lina@example.com", "李娜", "Li Na", "activated"),
    ("7491126018028090017", "wangfang", "wangfang@example.com", "王芳", 'Fang "Fiona" Wang', "activated"),
    ("7380021184471550023", "abdurahman", "", "阿卜杜·热合曼", "", "activated"),
    ("7380021184471550118", "chenjing", "chenjing@example.com", "陈静", "Chen Jing", "resigned"),
    ("7122334455667788990", "sean.obrien", "sean.obrien@example.com", "肖恩", "Sean O'Brien", "resigned"),
)

_FEISHU_ITEM_NAMES = {
    1001: "支付流程优化",
    1002: '🚀 上线检查 "quotes" \\ backslash',
    1200: "Edge cases: week boundaries",
    1300: "近期工作项",
    5000: "批量导入 3000 条记录",
    7000: "Numbers past int64",
    9007199254740993: "Big id above 2^53 (odd)",
    9007199254740995: "Big id above 2^53 (odd, +2)",
}
_FEISHU_TITLES = ("登录页报错", "订单列表分页", "消息推送延迟", "Export CSV fails on 'Größe'",
                  "Dark mode for settings", "权限配置：只读角色", "搜索结果排序", "Upgrade to v2.3.1",
                  "发票抬头校验", "移动端适配")


class FeishuWorkItem:
    """One work item: what work_item/filter answers plus what the truth shows.
    `updated_at` changes after start-up (edit_during_listing, add_records), and
    so do `participants`, `served_count` and `latest_record_ms` (add_records);
    the `built_` copies keep the values /_sim/reset restores."""

    def __init__(self, **fields):
        self.__dict__.update(fields)
        self.built_updated_at = self.updated_at
        self.built_participants = set(self.participants)
        self.built_served_count = self.served_count
        self.built_latest_record_ms = self.latest_record_ms

    def info(self):
        """The WorkItemInfo object of a filter answer (key order as served)."""
        return {
            "id": self.id, "name": self.name, "work_item_type_key": self.type_key,
            "project_key": self.project_key, "simple_name": FEISHU_SIMPLE_NAMES[self.project_key],
            "created_by": self.created_by, "updated_by": self.updated_by,
            "created_at": self.created_at, "updated_at": self.updated_at,
            "deleted_by": self.deleted_by, "deleted_at": self.deleted_at,
            "work_item_status": {
                "state_key": self.state_key,
                "is_archived_state": self.state_key in ("closed", FEISHU_TERMINATED_STATE),
                "is_init_state": self.state_key == "started",
                # An edit changes no state: the state keeps its own time.
                "updated_at": self.built_updated_at, "updated_by": self.updated_by},
        }

    def truth(self):
        return {
            "project_key": self.project_key, "id": self.id, "work_item_type_key": self.type_key,
            "name": self.name, "created_at": self.created_at, "updated_at": self.updated_at,
            "state_key": self.state_key, "terminated": self.terminated, "deleted": self.deleted,
            "deleted_at": self.deleted_at, "created_by": self.created_by,
            "updated_by": self.updated_by, "participants": sorted(self.participants),
            "served_records": self.served_count, "latest_record_ms": self.latest_record_ms,
            "violates_coverage": self.latest_record_ms is not None
                                 and self.updated_at < self.latest_record_ms,
        }


class FeishuCatalog:
    """Work items (every item of FeishuData.projects), work item types and users."""

    def __init__(self, data, start_s):
        # start_s only reaches the data through the records of the recent item.
        rng = random.Random(77031)
        wide_rng = random.Random(FEISHU_WIDE_CATALOG_SEED)
        self.items = {}                                    # id -> FeishuWorkItem
        self.by_project = {key: [] for key in FEISHU_PROJECTS}
        for project_key in FEISHU_PROJECTS:
            project_rng = wide_rng if project_key == FEISHU_WIDE_PROJECT else rng
            for item_id in sorted(data.projects[project_key]):
                item = self._build_item(project_rng, data, project_key, item_id)
                self.items[item_id] = item
                self.by_project[project_key].append(item)
        # Some records (item 5000) lie in the future of the real clock: the
        # simulated present of work_item/filter is never before the newest item.
        self.horizon_ms = max(max(item.updated_at, item.deleted_at) for item in self.items.values())
        self._built_horizon_ms = self.horizon_ms
        self.types = {key: [{"type_key": t, "name": n, "is_disable": d, "api_name": a}
                            for t, n, a, d in FEISHU_TYPES[key]] for key in FEISHU_PROJECTS}
        self.users = {}
        for k, (user_key, username, email, name_cn, name_en, status) in enumerate(FEISHU_USERS):
            self.users[user_key] = {
                "user_id": 7300000000000000101 + k * 1000003, "user_key": user_key,
                "username": username, "email": email,
                "avatar_url": f"https://sim.invalid/avatar/{username}.png",
                "name_cn": name_cn, "name_en": name_en,
                "name": {"default": name_cn or name_en, "zh_cn": name_cn, "en_us": name_en},
                "out_id": "", "status": status}

    def edit(self, item_ids, now_ms):
        """edit_during_listing: the k-th item (from 1) gets updated_at now_ms + k,
        distinct and newer than every other item; no record is added.  The
        horizon moves too, so that an open interval end still reaches them.
        add_records moves the item of its k-th record the same way (an id
        named twice keeps the later time)."""
        for k, item_id in enumerate(item_ids, 1):
            self.items[item_id].updated_at = now_ms + k
        self.horizon_ms = max(self.horizon_ms, now_ms + len(item_ids))

    def record_added(self, rec):
        """add_records: the item counts the new (served) record; a user-type
        operator becomes a participant.  Its update time is moved by edit()."""
        item = self.items[rec.data["work_item_id"]]
        if rec.time >= FEISHU_MIN_SERVED_MS:
            item.served_count += 1
            if item.latest_record_ms is None or rec.time > item.latest_record_ms:
                item.latest_record_ms = rec.time
        if rec.data.get("operator_type") == "user" and rec.data.get("operator"):
            item.participants.add(rec.data["operator"])

    def restore(self):
        """Undo every edit and addition (/_sim/reset)."""
        for item in self.items.values():
            item.updated_at = item.built_updated_at
            item.participants = set(item.built_participants)
            item.served_count = item.built_served_count
            item.latest_record_ms = item.built_latest_record_ms
        self.horizon_ms = self._built_horizon_ms

    def project_by_key_or_simple_name(self, text):
        if text in self.by_project:
            return text
        for key, simple in FEISHU_SIMPLE_NAMES.items():
            if text == simple:
                return key
        return None

    @staticmethod
    def _build_item(rng, data, project_key, item_id):
        recs = data.records.get(item_id, [])           # every record, oldest first
        served = data.served_records(item_id)
        typed = collections.Counter(r.data["work_item_type_key"] for r in recs
                                    if "work_item_type_key" in r.data)
        if typed:
            type_key = typed.most_common(1)[0][0]
        else:
            type_key = data.item_types.get(item_id, "bug" if project_key == "proj_beta" else "story")
        users = [r.data["operator"] for r in recs
                 if r.data.get("operator_type") == "user" and r.data.get("operator")]
        times = [r.time for r in recs]
        if times:
            first, last = times[0], times[-1]
            created_at = first - rng.randint(0, 72 * 3600) * 1000
            if item_id in FEISHU_STALE_ITEMS:
                previous = max(t for t in times if t < last)
                updated_at = (previous + last) // 2        # < last: coverage fails
            elif rng.random() < 0.2:
                updated_at = last                          # exactly the last record
            else:
                # Up to 1 h later.  No clamp to the clock, so the data never
                # depends on the start time (1300's last record is 1 h before it).
                updated_at = last + rng.randint(1, 3600) * 1000
        else:
            created_at = rng.randint(_ms("2024-06-01T00:00:00+08:00"),
                                     _ms("2025-06-01T00:00:00+08:00")) // 1000 * 1000
            updated_at = created_at + rng.randint(0, 30 * 86400) * 1000
        created_by = users[0] if users else rng.choice(FEISHU_USER_KEYS)
        updated_by = users[-1] if users else created_by
        terminated = item_id in FEISHU_TERMINATED_ITEMS
        state_key = FEISHU_TERMINATED_STATE if terminated else rng.choice(FEISHU_STATES)
        name = _FEISHU_ITEM_NAMES.get(item_id) or f"{rng.choice(_FEISHU_TITLES)} #{item_id}"
        deleted = item_id in FEISHU_DELETED_ITEMS
        assert not (deleted and recs), "a deleted item must not have records"
        latest = served[-1].time if served else None
        return FeishuWorkItem(
            id=item_id, project_key=project_key, type_key=type_key, name=name,
            created_at=created_at, updated_at=updated_at, created_by=created_by,
            updated_by=updated_by, participants=set(users) | {created_by},
            state_key=state_key, terminated=terminated, deleted=deleted,
            deleted_at=updated_at + HOUR_MS if deleted else 0,
            deleted_by=updated_by if deleted else "",
            served_count=len(served), latest_record_ms=latest)


# -- Huawei CodeArts Req -------------------------------------------------------

HUAWEI_PROJECT_INFO = {HUAWEI_PROJECT_MAIN: ("oprec 模拟项目", 9000001),
                       HUAWEI_PROJECT_SECOND: ("第二项目 Second", 9000002),
                       HUAWEI_PROJECT_WIDE: ("宽项目 Wide", 9000003)}
HUAWEI_TRACKERS = {2: "Task", 3: "Bug", 5: "Epic", 6: "Feature", 7: "Story"}
HUAWEI_STATUS_IDS = {"新建": 1, "进行中": 2, "已解决": 3, "测试中": 4, "已关闭": 5, "已拒绝": 6}
# Logically deleted: listed by POST /v4/.../issues only with include_deleted.
HUAWEI_DELETED_ISSUES = (123, 204)
HUAWEI_FIELD_NAMES = {
    "subject": "标题", "description": "描述", "status_id": "状态", "priority_id": "优先级",
    "assigned_to_id": "处理人", "due_date": "预计结束日期", "start_date": "预计开始日期",
    "order": "顺序", "severity_id": "重要程度", "assigned_cc": "抄送人", "tracker_id": "类型",
    "done_ratio": "完成度", "expected_work_hours": "预计工时", "iteration_id": "迭代",
}
HUAWEI_V4_OPERATIONS = {"新建": "create", "修改": "modify", "批量编辑": "modify", "删除": "delete"}


def huawei_issue_user(user):
    """A V2 entry's user as a V4 IssueUser."""
    return {"user_id": user["identifier"], "user_num_id": user["id"], "id": user["id"],
            "name": user["name"], "nick_name": user["nick_name"]}


class HuaweiIssue:
    """One issue of the V4 list.  `updated_ms` changes after start-up
    (edit_during_listing, add_records), and so do `latest_entry_ms` and
    `v4_count` (add_records); the `built_` copies are what /_sim/reset restores."""

    def __init__(self, **fields):
        self.__dict__.update(fields)
        self.built_updated_ms = self.updated_ms
        self.built_latest_entry_ms = self.latest_entry_ms
        self.built_v4_count = self.v4_count

    def served(self):
        """The object of a POST /v4/projects/{id}/issues answer."""
        name, num_id = HUAWEI_PROJECT_INFO[self.project_id]
        out = {"id": self.id, "name": self.name,
               "project": {"project_id": self.project_id, "project_name": name,
                           "project_num_id": num_id},
               "tracker": {"id": self.tracker_id, "name": HUAWEI_TRACKERS[self.tracker_id]},
               "status": {"id": HUAWEI_STATUS_IDS[self.status], "name": self.status},
               "creator": self.creator, "done_ratio": self.done_ratio,
               "created_time": beijing_text(self.created_ms),
               "updated_time": beijing_text(self.updated_ms)}
        if self.closed_ms is not None:
            out["closed_time"] = beijing_text(self.closed_ms)
        out["deleted"] = self.deleted
        return out

    def truth(self):
        return {"project_id": self.project_id, "issue": self.served(),
                "created_ms": self.created_ms, "updated_ms": self.updated_ms,
                "closed_ms": self.closed_ms, "latest_entry_ms": self.latest_entry_ms,
                "v4_records": self.v4_count}


class HuaweiCatalog:
    """Per project: the issues (V4 list) and the project-wide history (V4
    records, one per V2 detail, newest first: operated_time desc, id desc)."""

    def __init__(self, data, start_s):
        rng = random.Random(27182818)
        wide_rng = random.Random(HUAWEI_WIDE_CATALOG_SEED)
        self.issues = {}      # project_id -> [HuaweiIssue] by id descending
        self.records = {}     # project_id -> [V4 record] served order
        self.by_id = {}       # issue id -> HuaweiIssue (ids are unique across projects)
        for project_id, issues in data.projects.items():
            project_rng = wide_rng if project_id == HUAWEI_PROJECT_WIDE else rng
            records = []
            built = []
            for issue_id in sorted(issues):
                issue_records = self._v4_records(issue_id, issues[issue_id])
                records.extend(issue_records)
                built.append(self._build_issue(project_rng, project_id, issue_id, issues[issue_id],
                                               len(issue_records)))
            ids = [r["id"] for r in records]
            assert len(set(ids)) == len(ids), "V4 record ids must be unique in a project"
            records.sort(key=lambda r: (-r["operated_time"], -r["id"]))
            self.records[project_id] = records
            self.issues[project_id] = sorted(built, key=lambda i: -i.id)
            for issue in built:
                assert issue.id not in self.by_id, "issue ids must be unique across projects"
                self.by_id[issue.id] = issue

    def listed(self, project_id):
        """The project's issues in the order the V4 list serves them: updated
        time descending, then id descending (as Feishu's filter orders items)."""
        return sorted(self.issues[project_id], key=lambda i: (-i.updated_ms, -i.id))

    def newest_updated_ms(self):
        return max(issue.updated_ms for issue in self.by_id.values())

    def edit(self, issue_ids, now_s):
        """edit_during_listing: the k-th issue (from 1) gets the updated time
        now_s + k seconds (V4 times have whole seconds); no history is added.
        add_records moves the issue of its k-th entry the same way."""
        for k, issue_id in enumerate(issue_ids, 1):
            self.by_id[issue_id].updated_ms = (now_s + k) * 1000

    def entry_added(self, project_id, issue_id, entry):
        """add_records: the entry's V4 records (one per detail) in their place
        (operated_time descending, then id descending); the issue counts them.
        Its update time is moved by edit()."""
        records = self.records[project_id]
        for rec in self._v4_records(issue_id, [entry]):
            bisect.insort(records, rec, key=lambda r: (-r["operated_time"], -r["id"]))
            self.by_id[issue_id].v4_count += 1
        issue = self.by_id[issue_id]
        t = int(entry["created_on"])
        if issue.latest_entry_ms is None or t > issue.latest_entry_ms:
            issue.latest_entry_ms = t

    def remove_added(self, detail_ids, project_ids):
        """Drop the V4 records of added entries (/_sim/reset; restore() resets the counts)."""
        for project_id in project_ids:
            self.records[project_id] = [r for r in self.records[project_id] if r["id"] not in detail_ids]

    def restore(self):
        """Undo every edit and addition (/_sim/reset)."""
        for issue in self.by_id.values():
            issue.updated_ms = issue.built_updated_ms
            issue.latest_entry_ms = issue.built_latest_entry_ms
            issue.v4_count = issue.built_v4_count

    @staticmethod
    def _v4_records(issue_id, entries):
        out = []
        for entry in entries:
            operator = huawei_issue_user(entry["user"])
            for detail in entry["details"]:
                rec = {"id": detail["id"], "issue_id": issue_id, "field_key": detail["name"],
                       "field_name": HUAWEI_FIELD_NAMES.get(detail["name"], detail["name"]),
                       "property": detail["property"]}
                if "old_value" in detail:
                    rec["old_value"] = detail["old_value"]
                rec["new_value"] = detail["new_value"]
                rec["operated_time"] = int(entry["created_on"])
                rec["operation"] = HUAWEI_V4_OPERATIONS[detail["operation"]]
                rec["operator"] = dict(operator)
                out.append(rec)
        return out

    @staticmethod
    def _build_issue(rng, project_id, issue_id, entries, v4_count):
        # Chronological details: (time, detail id, entry, detail).
        steps = sorted(((int(e["created_on"]), d["id"], e, d) for e in entries for d in e["details"]),
                       key=lambda s: (s[0], s[1]))
        stamps = [int(e["created_on"]) for e in entries]
        if stamps:
            created_ms, latest = min(stamps), max(stamps)
            if rng.random() < 0.3:
                updated_ms = latest
            else:
                updated_ms = latest + rng.randint(1, 600) * 1000   # 5555: latest is 2 h ago
            first_entry = min(entries, key=lambda e: (int(e["created_on"]), e["id"]))
            creator = huawei_issue_user(first_entry["user"])
        else:
            latest = None
            created_ms = rng.randint(_ms("2024-03-01T00:00:00+08:00"),
                                     _ms("2025-03-01T00:00:00+08:00")) // 1000 * 1000
            updated_ms = created_ms + rng.randint(0, 10 * 86400) * 1000
            creator = huawei_issue_user(HUAWEI_USERS[issue_id % len(HUAWEI_USERS)])
        status, closed_ms, name = "新建", None, None
        for t, _, _, detail in steps:
            if detail["name"] == "status_id":
                status = detail["new_value"]
                if status == "已关闭":
                    closed_ms = t
            elif detail["name"] == "subject":
                name = detail["new_value"]
        if status != "已关闭":
            closed_ms = None
        tracker_id = 7 if issue_id == HUAWEI_SAMPLE_ISSUE else rng.choice((2, 3, 3, 7, 7, 6, 5))
        return HuaweiIssue(
            project_id=project_id, id=issue_id, name=name or f"未命名工作项 {issue_id}",
            tracker_id=tracker_id, status=status, creator=creator,
            done_ratio=100 if status in ("已解决", "已关闭") else 0,
            created_ms=created_ms, updated_ms=updated_ms, closed_ms=closed_ms,
            deleted=issue_id in HUAWEI_DELETED_ISSUES, latest_entry_ms=latest,
            v4_count=v4_count)
