"""Metric hook: passes the CPU Resource metric that the autoscaler gathered on to evaluate.

The profile's `kubernetesMetricSpecs` asks for CPU utilisation, so the payload on stdin
carries `kubernetesMetrics`: one element per spec, in the CPA's (k8shorizmetrics v3)
snake_case shape. The CPA does not forward `kubernetesMetrics` to the evaluate stage,
so this hook prints the CPU element as JSON; it becomes metrics[0].value for evaluate.
Runs unchanged under the Custom Pod Autoscaler and scalehub (per-resource run mode).
"""

import json
import sys


def cpu_metric(payload):
    """Returns the kubernetesMetrics element of the `cpu` Resource spec."""
    for element in payload.get("kubernetesMetrics") or []:
        spec = element.get("spec") or {}
        if spec.get("type") == "Resource" and (spec.get("resource") or {}).get("name") == "cpu":
            if "resource" not in element:
                raise ValueError("the cpu metric carries no resource samples")
            return element
    raise ValueError("no cpu Resource metric in kubernetesMetrics (is kubernetesMetricSpecs set?)")


def main():
    try:
        payload = json.loads(sys.stdin.read())
        sys.stdout.write(json.dumps(cpu_metric(payload)))
    except (ValueError, KeyError, TypeError, AttributeError) as err:
        sys.stderr.write(f"metric failed: {err}")
        sys.exit(1)


if __name__ == "__main__":
    main()
