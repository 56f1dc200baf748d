"""Evaluate hook: asks for as many replicas as the metric value says.

Runs unchanged under the Custom Pod Autoscaler and scalehub: the payload on stdin is
{"metrics": [{"resource": <name>, "value": <metric stdout>}], "resource": ..., "runType": ...}
and the hook prints {"targetReplicas": N}. Paired with the python-custom-metric example's
metric.py, a Rollout follows its `numPods` label.
"""

import json
import sys


def evaluate(payload):
    """Returns {"targetReplicas": v} for the first metric value `v`."""
    metrics = payload.get("metrics") or []
    if not metrics:
        raise ValueError("no metric value was gathered")
    return {"targetReplicas": int(metrics[0]["value"])}


def main():
    try:
        payload = json.loads(sys.stdin.read())
        sys.stdout.write(json.dumps(evaluate(payload)))
    except (ValueError, KeyError, TypeError) as err:
        # Not a number: fail the tick, and the hub holds the replicas.
        sys.stderr.write(f"invalid metric value: {err}")
        sys.exit(1)


if __name__ == "__main__":
    main()
