#!/usr/bin/env python3
"""Evaluate hook of the end-to-end tests: asks for the largest metric value.

It also checks scalehub's additions to the CPA payload (`target`, `currentReplicas`), so a hub
that drops them fails the tick and the test sees the error in the decision.
"""
import json
import sys

payload = json.load(sys.stdin)
missing = [k for k in ("target", "currentReplicas", "metrics") if k not in payload]
if missing:
    sys.stderr.write("payload lacks %s\n" % ", ".join(missing))
    sys.exit(2)
values = [int(m["value"]) for m in payload["metrics"]]
if not values:
    sys.stderr.write("no metrics\n")
    sys.exit(3)
print(json.dumps({"targetReplicas": max(values)}))
