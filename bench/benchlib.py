"""What the benchmarks written in Python share: calls to the API
simulator's control endpoints, and psql runs of SQL."""

import json
import os
import subprocess
import urllib.request

SIM = os.environ["OPREC_SIM_URL"].rstrip("/")


def sim(method, path, body=None, base=SIM):
    """Call the simulator at base (by default OPREC_SIM_URL); its answer's text."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as answer:
        return answer.read().decode()


def psql(sql, variables=None):
    """Run SQL with psql (the PG* environment names the database) and return
    its unaligned output; raise with psql's error if it fails."""
    args = ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1"]
    for name, value in (variables or {}).items():
        args += ["-v", f"{name}={value}"]
    done = subprocess.run(args, input=sql, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip())
    return done.stdout.strip()
