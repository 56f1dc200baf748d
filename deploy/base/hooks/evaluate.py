"""Evaluate hook: the HPA's replica calculation for CPU utilisation, in Python.

Input: the CPU kubernetesMetrics element, either straight from the payload (when the
autoscaler forwards `kubernetesMetrics` to evaluate) or as the JSON printed by metric.py
(metrics[0].value, which is how it reaches evaluate under the CPA). Output:
{"targetReplicas": N}.

It follows the HPA (pkg/controller/podautoscaler/replica_calculator.go): the usage ratio
over pods with a sample, a tolerance band, and when pods lack a sample or are not ready,
a second pass that assumes the least helpful value for them, so it never over-reacts.

The target utilisation (percent of requests) comes from the workload annotation
`scalehub.io/param.targetUtilization` (scalehub's `params`), else the environment
variable TARGET_UTILIZATION (how the CPA passes settings), else 50.
"""

import json
import math
import os
import sys

DEFAULT_TARGET_UTILIZATION = 50
TOLERANCE = 0.1


def target_utilization(payload):
    """The utilisation goal in percent: params, then environment, then the default."""
    raw = (payload.get("params") or {}).get("targetUtilization")
    if raw is None:
        raw = os.environ.get("TARGET_UTILIZATION", DEFAULT_TARGET_UTILIZATION)
    value = int(raw)
    if value <= 0:
        raise ValueError(f"target utilization must be positive, got {value}")
    return value


def cpu_element(payload):
    """The CPU kubernetesMetrics element, from the payload or from metrics[0].value."""
    for element in payload.get("kubernetesMetrics") or []:
        if ((element.get("spec") or {}).get("resource") or {}).get("name") == "cpu":
            return element
    metrics = payload.get("metrics") or []
    if len(metrics) != 1:
        raise ValueError(f"expected exactly one metric, got {len(metrics)}")
    return json.loads(metrics[0]["value"])


def within_tolerance(ratio):
    return abs(1.0 - ratio) <= TOLERANCE


def replicas(element, target):
    """HPA-style desired replicas for a Resource Utilization metric."""
    current = int(element["current_replicas"])
    resource = element["resource"]
    samples = {pod: int(info["Value"]) for pod, info in (resource.get("pod_metrics_info") or {}).items()}
    requests = {pod: int(milli) for pod, milli in (resource.get("requests") or {}).items()}
    if not samples:
        raise ValueError("did not receive metrics for targeted pods")
    known = [requests[p] for p in samples if p in requests]
    if len(known) != len(samples) or sum(known) <= 0:
        raise ValueError("missing cpu requests for pods with metrics")

    def request_of(pod):
        # A pod without a sample may be missing from `requests` too: assume the average.
        return requests.get(pod, sum(known) / len(known))

    usage = sum(samples.values())
    ratio = (usage * 100.0 / sum(known)) / target
    missing = list((resource.get("missing_pods") or {}).keys())
    unready = list((resource.get("ignored_pods") or {}).keys())
    scale_up = ratio > 1.0

    if not missing and not (scale_up and unready):
        if within_tolerance(ratio):
            return current
        return math.ceil(ratio * len(samples))

    # Fill the gaps conservatively: on a scale-down a missing pod counts as using its full
    # request (or the target, if higher); on a scale-up it, and every unready pod, counts as idle.
    total_usage, total_request, counted = float(usage), float(sum(known)), len(samples)
    for pod in missing:
        share = max(100, target) / 100.0 if not scale_up else 0.0
        total_usage += request_of(pod) * share
        total_request += request_of(pod)
        counted += 1
    if scale_up:
        for pod in unready:
            total_request += request_of(pod)
            counted += 1
    new_ratio = (total_usage * 100.0 / total_request) / target
    if within_tolerance(new_ratio) or (ratio > 1.0) != (new_ratio > 1.0):
        return current
    desired = math.ceil(new_ratio * counted)
    # Never move against the direction the measured pods asked for.
    if (scale_up and desired < current) or (not scale_up and desired > current):
        return current
    return desired


def main():
    try:
        payload = json.loads(sys.stdin.read())
        result = replicas(cpu_element(payload), target_utilization(payload))
        sys.stdout.write(json.dumps({"targetReplicas": result}))
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        sys.stderr.write(f"evaluate failed: {err}")
        sys.exit(1)


if __name__ == "__main__":
    main()
