//! The load model: a demand curve per workload (CPU in millicores, memory in bytes), read from
//! the workload annotations `sim.scalehub.io/load` and `sim.scalehub.io/memory`, evaluated at the
//! time since the simulator started, and spread evenly over the workload's ready pods.
//!
//! Curve syntax: `constant:800m`, `step:200m@0s,1200m@120s` (hold each value from its time on),
//! `trace:100m@0s,900m@60s,300m@180s` (linear interpolation, hold the last value),
//! `sine:base=500m,amp=400m,period=10m[,phase=0s]`,
//! `spikes:value=800m,every=10m[,at=0s][,width=30s]` (a pulse of `value` for `width`, from `at`
//! on, every `every`, else 0), and `sum:<curve>+<curve>+...` (the sum of other curves: daily
//! and weekly sines with spikes make a seasonal load a predictive model can learn, e.g.
//! `sum:sine:base=2,amp=1,period=2m+sine:base=0,amp=500m,period=14m+spikes:value=2,every=2m,at=80s`).
//! CPU values take `m` or plain cores; memory values take `Ki`, `Mi`, `Gi`, `k`, `M`, `G` or bytes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::time::Instant;

use crate::meta;

/// Annotation holding the workload's total CPU demand curve.
pub const LOAD_ANNOTATION: &str = "sim.scalehub.io/load";
/// Annotation holding the workload's total memory demand curve.
pub const MEMORY_ANNOTATION: &str = "sim.scalehub.io/memory";
/// CPU per ready pod when a workload has no load annotation.
pub const DEFAULT_CPU_MILLIS_PER_POD: f64 = 100.0;
/// Memory per ready pod when a workload has no memory annotation.
pub const DEFAULT_MEMORY_BYTES_PER_POD: f64 = 64.0 * 1024.0 * 1024.0;

/// A curve that cannot be parsed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LoadError {
    /// Unknown curve type or malformed parameters.
    #[error("invalid load curve {0:?}: {1}")]
    Curve(String, &'static str),
    /// A quantity or duration that does not parse.
    #[error("invalid quantity {0:?}")]
    Quantity(String),
}

/// What a curve's values measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Millicores.
    Cpu,
    /// Bytes.
    Memory,
}

/// A demand curve over seconds since the simulator started.
#[derive(Debug, Clone, PartialEq)]
pub enum Curve {
    /// The same value at all times.
    Constant(f64),
    /// `(from_second, value)` points, each held until the next.
    Step(Vec<(f64, f64)>),
    /// `(second, value)` points, linearly interpolated.
    Trace(Vec<(f64, f64)>),
    /// `base + amp * sin(2π (t + phase) / period)`, never below 0.
    Sine {
        /// Mean value.
        base: f64,
        /// Amplitude.
        amp: f64,
        /// Period in seconds.
        period: f64,
        /// Phase shift in seconds.
        phase: f64,
    },
    /// `value` for `width` seconds every `every` seconds from `at` on, else 0.
    Spikes {
        /// The spike's height.
        value: f64,
        /// Seconds between spike starts.
        every: f64,
        /// The first spike's start.
        at: f64,
        /// How long each spike lasts.
        width: f64,
    },
    /// The sum of its terms.
    Sum(Vec<Curve>),
}

impl Curve {
    /// Parses the curve syntax described in the module docs.
    pub fn parse(text: &str, unit: Unit) -> Result<Self, LoadError> {
        let bad = |why| LoadError::Curve(text.to_string(), why);
        let (kind, args) = text.trim().split_once(':').ok_or_else(|| bad("expected <type>:<parameters>"))?;
        let points = |args: &str| -> Result<Vec<(f64, f64)>, LoadError> {
            let mut pts = args
                .split(',')
                .map(|p| {
                    let (v, t) = p.trim().split_once('@').ok_or_else(|| bad("points are <value>@<time>"))?;
                    Ok((parse_duration_secs(t)?, parse_quantity(v, unit)?))
                })
                .collect::<Result<Vec<_>, LoadError>>()?;
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            if pts.is_empty() {
                return Err(bad("no points"));
            }
            Ok(pts)
        };
        match kind.trim() {
            "sum" => {
                let terms = args.split('+').map(|term| Self::parse(term, unit)).collect::<Result<Vec<_>, _>>()?;
                if terms.iter().any(|t| matches!(t, Self::Sum(_))) {
                    return Err(bad("a sum cannot hold a sum"));
                }
                Ok(Self::Sum(terms))
            }
            "spikes" => {
                let (mut value, mut every, mut at, mut width) = (None, None, 0.0, 30.0);
                for kv in args.split(',') {
                    let (k, v) = kv.trim().split_once('=').ok_or_else(|| bad("spikes parameters are key=value"))?;
                    match k.trim() {
                        "value" => value = Some(parse_quantity(v, unit)?),
                        "every" => every = Some(parse_duration_secs(v)?),
                        "at" => at = parse_duration_secs(v)?,
                        "width" => width = parse_duration_secs(v)?,
                        _ => return Err(bad("unknown spikes parameter")),
                    }
                }
                let every = every.filter(|e| *e > 0.0).ok_or_else(|| bad("spikes needs every > 0"))?;
                let value = value.ok_or_else(|| bad("spikes needs value"))?;
                Ok(Self::Spikes { value, every, at, width })
            }
            "constant" => Ok(Self::Constant(parse_quantity(args, unit)?)),
            "step" => Ok(Self::Step(points(args)?)),
            "trace" => Ok(Self::Trace(points(args)?)),
            "sine" => {
                let (mut base, mut amp, mut period, mut phase) = (None, 0.0, None, 0.0);
                for kv in args.split(',') {
                    let (k, v) = kv.trim().split_once('=').ok_or_else(|| bad("sine parameters are key=value"))?;
                    match k.trim() {
                        "base" => base = Some(parse_quantity(v, unit)?),
                        "amp" => amp = parse_quantity(v, unit)?,
                        "period" => period = Some(parse_duration_secs(v)?),
                        "phase" => phase = parse_duration_secs(v)?,
                        _ => return Err(bad("unknown sine parameter")),
                    }
                }
                let period = period.filter(|p| *p > 0.0).ok_or_else(|| bad("sine needs period > 0"))?;
                Ok(Self::Sine { base: base.ok_or_else(|| bad("sine needs base"))?, amp, period, phase })
            }
            _ => Err(bad("type must be constant, step, trace, sine, spikes or sum")),
        }
    }

    /// The value at `t` seconds.
    pub fn at(&self, t: f64) -> f64 {
        match self {
            Self::Constant(v) => *v,
            Self::Step(pts) => pts.iter().take_while(|(s, _)| *s <= t).last().or(pts.first()).map_or(0.0, |p| p.1),
            Self::Trace(pts) => {
                let i = pts.partition_point(|(s, _)| *s <= t);
                match (i.checked_sub(1).map(|j| pts[j]), pts.get(i)) {
                    (Some((t0, v0)), Some(&(t1, v1))) => v0 + (v1 - v0) * (t - t0) / (t1 - t0),
                    (Some((_, v)), None) | (None, Some(&(_, v))) => v,
                    (None, None) => 0.0,
                }
            }
            Self::Sine { base, amp, period, phase } => {
                (base + amp * (std::f64::consts::TAU * (t + phase) / period).sin()).max(0.0)
            }
            Self::Spikes { value, every, at, width } => {
                if t < *at || (t - at).rem_euclid(*every) >= *width {
                    0.0
                } else {
                    *value
                }
            }
            Self::Sum(terms) => terms.iter().map(|c| c.at(t)).sum::<f64>().max(0.0),
        }
    }
}

/// Parses `800m`/`1.5` (CPU → millicores) or `256Mi`/`1G`/`1024` (memory → bytes).
pub fn parse_quantity(text: &str, unit: Unit) -> Result<f64, LoadError> {
    let t = text.trim();
    let bad = || LoadError::Quantity(text.to_string());
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let factor = match (unit, suffix) {
        (Unit::Cpu, "m") => 1.0,
        (Unit::Cpu, "") => 1000.0,
        (Unit::Cpu, "n") => 1e-6,
        (Unit::Memory, "") => 1.0,
        (Unit::Memory, "Ki") => 1024.0,
        (Unit::Memory, "Mi") => 1024.0 * 1024.0,
        (Unit::Memory, "Gi") => 1024.0 * 1024.0 * 1024.0,
        (Unit::Memory, "k") => 1e3,
        (Unit::Memory, "M") => 1e6,
        (Unit::Memory, "G") => 1e9,
        _ => return Err(bad()),
    };
    if n < 0.0 || !n.is_finite() {
        return Err(bad());
    }
    Ok(n * factor)
}

/// Parses `90s`, `10m`, `1h`, `500ms` or plain seconds.
pub fn parse_duration_secs(text: &str) -> Result<f64, LoadError> {
    let t = text.trim();
    let bad = || LoadError::Quantity(text.to_string());
    let split = t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(split);
    let n: f64 = num.parse().map_err(|_| bad())?;
    let factor = match suffix {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    if n < 0.0 || !n.is_finite() {
        return Err(bad());
    }
    Ok(n * factor)
}

/// Parsed curves keyed by (annotation text, is CPU); None caches a parse failure.
type CurveCache = HashMap<(String, bool), Option<Arc<Curve>>>;

/// Parsed curves by annotation text, and the time origin.
#[derive(Debug)]
pub struct LoadModel {
    start: Instant,
    cache: Mutex<CurveCache>,
}

impl Default for LoadModel {
    fn default() -> Self {
        Self::new()
    }
}

impl LoadModel {
    /// A model whose time starts now.
    pub fn new() -> Self {
        Self { start: Instant::now(), cache: Mutex::new(HashMap::new()) }
    }

    /// Seconds since the model started.
    pub fn elapsed(&self) -> f64 {
        self.start.elapsed().as_secs_f64()
    }

    fn curve(&self, text: &str, unit: Unit) -> Option<Arc<Curve>> {
        let key = (text.to_string(), unit == Unit::Cpu);
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        cache.entry(key).or_insert_with(|| Curve::parse(text, unit).ok().map(Arc::new)).clone()
    }

    /// (CPU millicores, memory bytes) per ready pod of `owner` right now. An invalid annotation
    /// falls back to the defaults, so a typo shows as flat load rather than an API error.
    pub fn per_pod(&self, owner: &Value, ready_pods: usize) -> (f64, f64) {
        let t = self.elapsed();
        let pods = ready_pods.max(1) as f64;
        let cpu = meta::annotation(owner, LOAD_ANNOTATION)
            .and_then(|a| self.curve(a, Unit::Cpu))
            .map_or(DEFAULT_CPU_MILLIS_PER_POD, |c| c.at(t) / pods);
        let mem = meta::annotation(owner, MEMORY_ANNOTATION)
            .and_then(|a| self.curve(a, Unit::Memory))
            .map_or(DEFAULT_MEMORY_BYTES_PER_POD, |c| c.at(t) / pods);
        (cpu, mem)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_and_step_curves_hold_values() {
        assert_eq!(Curve::parse("constant:800m", Unit::Cpu).unwrap().at(99.0), 800.0);
        let step = Curve::parse("step:200m@0s,1200m@2m", Unit::Cpu).unwrap();
        assert_eq!((step.at(0.0), step.at(119.0), step.at(120.0), step.at(1e6)), (200.0, 200.0, 1200.0, 1200.0));
    }

    #[test]
    fn trace_curves_interpolate_linearly() {
        let tr = Curve::parse("trace:0m@0s,1000m@100s,500m@200s", Unit::Cpu).unwrap();
        assert_eq!((tr.at(50.0), tr.at(150.0), tr.at(500.0)), (500.0, 750.0, 500.0));
    }

    #[test]
    fn sine_curves_oscillate_around_base() {
        let s = Curve::parse("sine:base=500m,amp=400m,period=10m", Unit::Cpu).unwrap();
        assert!((s.at(0.0) - 500.0).abs() < 1e-9);
        assert!((s.at(150.0) - 900.0).abs() < 1e-9);
        assert!((s.at(450.0) - 100.0).abs() < 1e-9);
    }

    #[test]
    fn quantities_parse_cpu_and_memory_units() {
        assert_eq!(parse_quantity("1.5", Unit::Cpu).unwrap(), 1500.0);
        assert_eq!(parse_quantity("256Mi", Unit::Memory).unwrap(), 268_435_456.0);
        assert!(parse_quantity("5Mi", Unit::Cpu).is_err());
        assert!(Curve::parse("wave:1", Unit::Cpu).is_err());
        assert!(Curve::parse("sine:base=1,period=0s", Unit::Cpu).is_err());
        assert!(Curve::parse("spikes:value=1", Unit::Cpu).is_err());
        assert!(Curve::parse("sum:sum:constant:1", Unit::Cpu).is_err());
        assert!(Curve::parse("sum:constant:1+nope:2", Unit::Cpu).is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn demand_is_spread_over_ready_pods_and_follows_time() {
        let model = LoadModel::new();
        let w = serde_json::json!({"metadata": {"annotations": {LOAD_ANNOTATION: "step:400m@0s,1200m@60s", MEMORY_ANNOTATION: "constant:1Gi"}}});
        assert_eq!(model.per_pod(&w, 2), (200.0, 512.0 * 1024.0 * 1024.0));
        tokio::time::advance(std::time::Duration::from_secs(61)).await;
        assert_eq!(model.per_pod(&w, 4).0, 300.0);
        let plain = serde_json::json!({"metadata": {}});
        assert_eq!(model.per_pod(&plain, 3).0, DEFAULT_CPU_MILLIS_PER_POD);
    }

    #[test]
    fn seasonal_sums_of_sines_and_spikes() {
        let spikes = Curve::parse("spikes:value=2,every=2m,at=80s,width=15s", Unit::Cpu).unwrap();
        assert_eq!(spikes.at(79.0), 0.0);
        assert_eq!(spikes.at(80.0), 2000.0);
        assert_eq!(spikes.at(94.9), 2000.0);
        assert_eq!(spikes.at(95.0), 0.0);
        assert_eq!(spikes.at(200.0), 2000.0, "the next season's spike at 80 s + 2 min");
        let sum = Curve::parse("sum:sine:base=2,amp=1,period=2m+spikes:value=2,every=2m,at=80s,width=15s", Unit::Cpu)
            .unwrap();
        assert!((sum.at(30.0) - 3000.0).abs() < 1e-6, "a quarter period: base + amp");
        assert!((sum.at(85.0) - sum.at(205.0)).abs() < 1e-6, "the same every season");
        assert!(sum.at(85.0) > 2000.0 + sum.at(75.0) - 1000.0);
    }
}
