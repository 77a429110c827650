#!/usr/bin/env python3
"""Write a Feishu-shaped answer (about 2.5 MB) that makes jansson 2.14
overflow a heap buffer when json.c's budget (8 MB) refuses one allocation
in the middle of a string token.  See test/fuzz/FINDINGS.md, finding 1.

    python3 test/fuzz/repro/jansson_oom_answer.py > /tmp/answer.json
    test/fuzz/build/json_fuzz /tmp/answer.json
"""
import json
import sys

n = int(sys.argv[1]) if len(sys.argv) > 1 else 6000
records = [{"operator": "u%d" % i, "operation_time": 1747706400000 + i} for i in range(n)]
text = json.dumps({"data": {"op_records": records}})[:-3]
text += ',{"record_contents":"' + "x" * 2200000 + '"}]}}'
sys.stdout.write(text)
