#!/usr/bin/env python3
"""Checks the last line of `scalehub bench` output: a complete report in which every due tick ran.

Timings are printed, never asserted: a noisy 2-core CI machine must not fail on them.
"""
import json
import sys

REQUIRED = [
    "targets", "namespaces", "seconds", "ticks_due", "ticks_run", "ticks_within_1s",
    "lateness_p50_s", "lateness_p99_s", "lateness_p999_s", "hub_cpu_cores", "cpu_us_per_decision",
    "hub_rss_bytes", "rss_per_target_bytes", "api_requests_per_target_hour",
    "metrics_requests_per_interval", "db_bytes_per_target_day", "restore_seconds", "resume_seconds",
    "restart",
]

lines = [line for line in sys.stdin.read().splitlines() if line.strip()]
if not lines:
    sys.exit("bench printed nothing")
report = json.loads(lines[-1])
missing = [key for key in REQUIRED if key not in report]
if missing:
    sys.exit(f"bench report lacks {missing}: {report}")
if report["ticks_due"] <= 0:
    sys.exit(f"no tick was due: {report}")
if report["ticks_run"] < report["ticks_due"]:
    sys.exit(f"{report['ticks_due'] - report['ticks_run']} of {report['ticks_due']} due ticks never ran: {report}")
if report["restored_states"] != report["targets"]:
    sys.exit(f"restored {report['restored_states']} policy states for {report['targets']} targets: {report}")
restart = report["restart"]
if restart["ticks_due"] <= 0 or restart["ticks_run"] < restart["ticks_due"]:
    sys.exit(f"after the restart, {restart['ticks_run']} of {restart['ticks_due']} due ticks ran: {report}")
print(f"bench: {report['ticks_run']} of {report['ticks_due']} due ticks ran, {restart['ticks_run']} after the restart; "
      f"{report['ticks_within_1s']:.4f} within 1 s, p99 {report['lateness_p99_s']:.3f} s, "
      f"{report['hub_cpu_cores']:.2f} cores, {report['rss_per_target_bytes']} B/target, "
      f"{restart['store_writes_per_tick']:.2f} writes per tick after the restart (figures, not checks)")
