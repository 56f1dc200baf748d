#!/usr/bin/env python3
"""Metric hook of the end-to-end tests, written to the CPA contract (payload JSON on stdin).

Prints the target's value: the content of the file named by the `valueFile` parameter when the
workload sets `scalehub.io/param.valueFile` (tests rewrite the file to change the answer),
else its `scalehub.io/param.replicas`. In per-pod mode the resource is the Pod; the value is
the same for every pod, so the evaluation does not depend on which pods exist.
"""
import json
import sys

payload = json.load(sys.stdin)
params = payload.get("params") or {}
if "valueFile" in params:
    with open(params["valueFile"], encoding="utf-8") as f:
        value = f.read().strip()
else:
    value = params.get("replicas", "1")
sys.stdout.write(value)
