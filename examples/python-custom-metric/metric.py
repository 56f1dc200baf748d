"""Metric hook: reports the workload's `numPods` label as the metric value.

Runs unchanged under the Custom Pod Autoscaler and scalehub (per-resource run mode):
the JSON payload arrives on stdin as {"resource": <workload>, "runType": ..., ...}
and whatever is printed on stdout becomes metrics[0].value for the evaluate hook.
"""

import json
import sys


def metric(payload):
    """Returns the value of the `numPods` label of the workload, as a string."""
    labels = payload["resource"]["metadata"].get("labels") or {}
    if "numPods" not in labels:
        raise ValueError("no 'numPods' label on the managed resource")
    return labels["numPods"]


def main():
    try:
        payload = json.loads(sys.stdin.read())
        sys.stdout.write(metric(payload))
    except (ValueError, KeyError, TypeError) as err:
        # A non-zero exit fails the tick; the hub records stderr with the decision.
        sys.stderr.write(f"metric failed: {err}")
        sys.exit(1)


if __name__ == "__main__":
    main()
