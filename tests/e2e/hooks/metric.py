#!/usr/bin/env python3
"""Metric hook of the end-to-end tests, written to the CPA contract (payload JSON on stdin).

Prints the target's value: the content of the file named by the `valueFile` parameter when the
workload sets `scalehub.io/param.valueFile` (tests rewrite the file to change the answer),
else its `scalehub.io/param.replicas`. In per-pod mode the resource is the Pod; the value is
the same for every pod, so the evaluation does not depend on which pods exist.
With `scalehub.io/param.expectKind` the hook fails unless the payload's resource has that kind.
"""
import json
import sys

payload = json.load(sys.stdin)
params = payload.get("params") or {}
# `param.expectKind` makes the hook check which object it was given (per-pod mode: the Pod).
expected = params.get("expectKind")
kind = (payload.get("resource") or {}).get("kind")
if expected is not None and kind != expected:
    sys.stderr.write("resource kind %r, expected %r\n" % (kind, expected))
    sys.exit(4)
if "valueFile" in params:
    with open(params["valueFile"], encoding="utf-8") as f:
        value = f.read().strip()
else:
    value = params.get("replicas", "1")
sys.stdout.write(value)
