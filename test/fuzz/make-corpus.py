#!/usr/bin/env python3
"""Regenerate the seed corpora test/fuzz/corpus/{json,page}/ from the API
simulator: real answers of both APIs (list pages, record pages, error
bodies) plus a few hand-written edge cases.

    python3 test/fuzz/make-corpus.py

json/ files are answer bodies as received.  page/ files are the page
target's input: two header bytes (page_fuzz.c: byte 0 picks the API and
flags, byte 1 the HTTP status) and then the body.
"""
import hashlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SIM = os.path.join(HERE, "..", "simulator", "oprec_sim.py")

# must match statuses[] in page_fuzz.c
STATUSES = [200, 201, 204, 206, 301, 400, 401, 403, 404, 408, 413, 429, 500, 502, 503, 504, 0, 99, 999, -1]

FEISHU_TOKEN = "p-static-sim-token"
USER_KEY = "7491126018028090001"
HUAWEI_TOKEN = "MIIsim-static-huawei-token"
HUAWEI_PROJECT = "c15cc54e338d4506afd9bd8103071ff0"


def status_byte(status):
    if status == 200:
        return 0
    i = STATUSES.index(status)
    return 128 + ((i - 128 % len(STATUSES)) % len(STATUSES))


def request(base, method, path, body=None, headers=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers or {})
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def main():
    proc = subprocess.Popen([sys.executable, SIM, "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        base = line.strip().rsplit(" ", 1)[-1]
        answers = []  # (api, status, body)

        def feishu(body, token=FEISHU_TOKEN, user_key=USER_KEY):
            headers = {}
            if token:
                headers["X-PLUGIN-TOKEN"] = token
            if user_key:
                headers["X-USER-KEY"] = user_key
            status, data = request(base, "POST", "/open_api/op_record/work_item/list", body, headers)
            answers.append(("feishu", status, data))
            return status, data

        def huawei(query, token=HUAWEI_TOKEN):
            headers = {"X-Auth-Token": token} if token else {}
            status, data = request(base, "GET", "/v2/issues/get-record?" + query, None, headers)
            answers.append(("huawei", status, data))
            return status, data

        # Feishu list pages
        feishu({"project_key": "proj_alpha", "work_item_ids": [1001], "page_size": 5})
        _, first = feishu({"project_key": "proj_alpha", "work_item_ids": [1002], "page_size": 3})
        cursor = json.loads(first).get("data", {}).get("start_from")
        if cursor:
            feishu({"project_key": "proj_alpha", "work_item_ids": [1002], "page_size": 3, "start_from": cursor})
        feishu({"project_key": "proj_alpha", "work_item_ids": [9007199254740993], "page_size": 10})
        feishu({"project_key": "proj_alpha", "work_item_ids": [1013], "page_size": 10})
        feishu({"project_key": "proj_alpha", "work_item_ids": [1200], "page_size": 4,
                "start": 1740787200000 - 1, "end": 1740787200000 + 604800000})
        feishu({"project_key": "proj_beta", "work_item_ids": [2001, 2002, 2003], "page_size": 8})
        # Feishu errors
        feishu({"project_key": "proj_alpha", "work_item_ids": [1001], "page_size": 5}, token="p-bogus")
        feishu({"project_key": "proj_alpha", "work_item_ids": [1001], "page_size": 5}, user_key=None)
        feishu({"project_key": "proj_alpha", "work_item_ids": [1001], "page_size": 500})
        feishu({"project_key": "proj_alpha", "work_item_ids": list(range(1001, 1060)), "page_size": 5})
        feishu({"project_key": "proj_alpha", "work_item_ids": [], "page_size": 5})
        feishu({"project_key": "proj_alpha", "work_item_ids": [1001], "page_size": 5,
                "start": 1719849600000, "end": 1760000000000})
        status, data = request(base, "POST", "/open_api/authen/plugin_token",
                               {"plugin_id": "MII_SIM_PLUGIN", "plugin_secret": "sim-plugin-secret", "type": 0})
        answers.append(("feishu", status, data))

        # Huawei record pages
        q = "project_id=%s&issue_id=%s&limit=%d&offset=%d&type=scrum"
        huawei(q % (HUAWEI_PROJECT, 9175005, 5, 0))
        huawei(q % (HUAWEI_PROJECT, 9175005, 5, 10))
        huawei(q % (HUAWEI_PROJECT, 107, 5, 0))
        huawei(q % (HUAWEI_PROJECT, 3000000001, 4, 0))
        huawei(q % (HUAWEI_PROJECT, 5555, 3, 0))
        huawei(q % ("0a1b2c3d4e5f60718293a4b5c6d7e8f9", 201, 10, 0))
        # Huawei errors
        huawei(q % (HUAWEI_PROJECT, 9175005, 5, 0), token="MIIbogus")
        huawei(q % (HUAWEI_PROJECT, 9175005, 500, 0))
        huawei(q % ("nonexistent", 9175005, 5, 0))
        huawei(q % (HUAWEI_PROJECT, 9175005, 5, 20000))

        # a gateway failure: not JSON
        request(base, "POST", "/_sim/config",
                {"fail_next": {"path": "get-record", "status": 502,
                               "raw": "<html><body><h1>502 Bad Gateway</h1></body></html>"}})
        huawei(q % (HUAWEI_PROJECT, 100, 5, 0))
        request(base, "POST", "/_sim/config",
                {"fail_next": {"path": "work_item/list", "status": 429,
                               "body": {"err_code": 10429, "err_msg": "too many requests"}}})
        feishu({"project_key": "proj_alpha", "work_item_ids": [1001], "page_size": 5})
    finally:
        proc.terminate()
        proc.wait()

    # hand-written edge cases of the JSON itself
    edge = [
        b'{"data":{"op_records":[{"work_item_id":18446744073709551616,"operation_time":1.5e3,'
        b'"record_contents":[{"new":[1e400,-0,0.1,123456789012345678901234567890]}]}],"has_more":false},"err_code":0}',
        b'{"data":{"op_records":[{"operation_time":"1747706400000","operator":"\\u0000N12"}],'
        b'"has_more":true,"start_from":""},"err_code":0}',
        b'{"status":"success","result":{"journals_total":99999,"record":[{"id":1,"details":[]},'
        b'{"id":2,"details":[{"id":3,"name":"x","old_value":null,"new_value":{"a":[]}}]}]}}',
        b'[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]',
        b'{"a":"\\ud83d\\ude00 \\ud800 \xc3\xa9 \xff"}',
    ]
    for e in edge:
        answers.append(("feishu" if b"op_records" in e else "huawei", 200, e))

    for target in ("json", "page"):
        d = os.path.join(HERE, "corpus", target)
        os.makedirs(d, exist_ok=True)
        for f in os.listdir(d):
            os.remove(os.path.join(d, f))
    seen = set()
    for api, status, body in answers:
        if body not in seen:
            seen.add(body)
            name = hashlib.sha1(body).hexdigest()[:16]
            with open(os.path.join(HERE, "corpus", "json", name), "wb") as f:
                f.write(body)
        flags = [0, 8, 2, 16] if api == "feishu" else [1, 3, 5]
        for fl in flags[:1]:
            data = bytes([fl, status_byte(status) if status in STATUSES else 0]) + body
            name = hashlib.sha1(data).hexdigest()[:16]
            with open(os.path.join(HERE, "corpus", "page", name), "wb") as f:
                f.write(data)
    print("json: %d files, page: %d files" % (len(os.listdir(os.path.join(HERE, "corpus", "json"))),
                                            len(os.listdir(os.path.join(HERE, "corpus", "page")))))


if __name__ == "__main__":
    main()
