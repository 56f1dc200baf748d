#!/usr/bin/env python3
"""Writes hub/core/src/predict/fixtures.json: Holt-Winters forecasts computed by statsmodels.

The hub's Holt-Winters model (hub/core/src/predict/holt_winters.rs) is checked against these in
`cargo test`. The call is the predictive HPA's (algorithms/holt_winters/holt_winters.py):
ExponentialSmoothing(..., initialization_method="estimated").fit(..., optimized=False).

Run it after changing a case (needs statsmodels: pip install statsmodels):
    python3 scripts/predict-fixtures.py
"""
import json
import math
import pathlib

import numpy as np
import statsmodels
import statsmodels.tsa.api as sm

OUT = pathlib.Path(__file__).resolve().parent.parent / "hub/core/src/predict/fixtures.json"


def daily(n, m, base, amplitude, trend, noise_seed):
    rng = np.random.default_rng(noise_seed)
    t = np.arange(n)
    return base + trend * t + amplitude * np.sin(2 * math.pi * t / m) + rng.normal(0, 0.5, n)


def weekly(n, m):
    # A daily peak and a quieter weekend-like second half of every season.
    t = np.arange(n)
    day = 6 + 3 * np.sin(2 * math.pi * t / (m / 2))
    quiet = np.where((t % m) >= m * 3 // 4, 0.6, 1.0)
    return np.round(day * quiet + 0.02 * t, 3)


def spiky(n, m):
    t = np.arange(n)
    series = 4 + 2 * np.cos(2 * math.pi * t / m)
    series[(t % m) == 3] += 6  # a spike at the same phase of every season
    return series


CASES = [
    ("additive, odd season", daily(40, 7, 10, 3, 0.1, 1), dict(trend="add", seasonal="add", seasonal_periods=7, alpha=0.5, beta=0.2, gamma=0.3)),
    ("additive, even season", daily(60, 12, 20, 5, 0.05, 2), dict(trend="add", seasonal="add", seasonal_periods=12, alpha=0.9, beta=0.9, gamma=0.9)),
    ("multiplicative seasonal", daily(48, 12, 30, 6, 0.2, 3), dict(trend="add", seasonal="mul", seasonal_periods=12, alpha=0.3, beta=0.1, gamma=0.4)),
    ("multiplicative trend and season", weekly(64, 16), dict(trend="mul", seasonal="mul", seasonal_periods=16, alpha=0.4, beta=0.05, gamma=0.2)),
    ("damped additive", spiky(36, 6), dict(trend="add", seasonal="add", seasonal_periods=6, alpha=0.6, beta=0.3, gamma=0.5, damped_trend=True, damping_trend=0.9)),
    ("shortest series", daily(14, 4, 8, 2, 0.0, 4), dict(trend="add", seasonal="add", seasonal_periods=4, alpha=0.5, beta=0.5, gamma=0.5)),
]


def main():
    cases = []
    for name, series, p in CASES:
        series = [float(v) for v in series]
        model = sm.ExponentialSmoothing(
            series,
            trend=p["trend"],
            seasonal=p["seasonal"],
            seasonal_periods=p["seasonal_periods"],
            damped_trend=p.get("damped_trend", False),
            initialization_method="estimated",
        )
        fit = model.fit(
            smoothing_level=p["alpha"],
            smoothing_trend=p["beta"],
            smoothing_seasonal=p["gamma"],
            damping_trend=p.get("damping_trend"),
            optimized=False,
        )
        cases.append({
            "name": name,
            "series": series,
            "params": p,
            "initialLevel": float(fit.params["initial_level"]),
            "initialTrend": float(fit.params["initial_trend"]),
            "initialSeasonal": [float(v) for v in fit.params["initial_seasons"]],
            "forecast": float(fit.forecast(1)[0]),
            "sse": float(fit.sse),
        })
    doc = {"generator": "scripts/predict-fixtures.py", "statsmodels": statsmodels.__version__, "cases": cases}
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {len(cases)} cases to {OUT}")


if __name__ == "__main__":
    main()
