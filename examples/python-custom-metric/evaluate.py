"""Evaluate hook: asks for twice the metric value as the replica count.

Runs unchanged under the Custom Pod Autoscaler and scalehub: the payload on stdin is
{"metrics": [{"resource": <name>, "value": <metric stdout>}], "resource": ..., "runType": ...}
and the hook prints {"targetReplicas": N}.
"""

import json
import sys


def evaluate(payload):
    """Returns the evaluation for a metric value `v`: {"targetReplicas": 2 * v}."""
    metrics = payload.get("metrics") or []
    if len(metrics) == 0:
        raise ValueError("no metric value was gathered")
    value = int(metrics[0]["value"])
    return {"targetReplicas": value * 2}


def main():
    try:
        payload = json.loads(sys.stdin.read())
        sys.stdout.write(json.dumps(evaluate(payload)))
    except (ValueError, KeyError, TypeError) as err:
        # A bad metric must not turn into 0 replicas: fail, and the hub holds the replicas.
        sys.stderr.write(f"invalid metric value: {err}")
        sys.exit(1)


if __name__ == "__main__":
    main()
