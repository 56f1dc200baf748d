//! What the benchmark reads about its own process and the hub's counters.

/// CPU seconds (user + system) of this process, and of its reaped children (shell hooks).
pub fn cpu_seconds() -> (f64, f64) {
    process_cpu_seconds("/proc/self/stat")
}

/// CPU seconds of the process whose `stat` file is at `path`, and of its reaped children.
pub fn process_cpu_seconds(path: &str) -> (f64, f64) {
    // Fields 14–17 of /proc/PID/stat: utime, stime, cutime, cstime, in clock ticks.
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<f64> = after.split_whitespace().skip(11).take(4).map(|v| v.parse().unwrap_or(0.0)).collect();
    let tick = clock_ticks();
    match fields.as_slice() {
        [u, s, cu, cs] => ((u + s) / tick, (cu + cs) / tick),
        _ => (0.0, 0.0),
    }
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// Resident set size of this process in bytes (`VmRSS`), and its peak (`VmHWM`).
pub fn rss_bytes() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .map(|kib| kib * 1024)
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// API-server requests the hub made, split the way the benchmark reports them.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Requests {
    /// Reads of metrics.k8s.io, custom.metrics.k8s.io and external.metrics.k8s.io.
    pub metrics: f64,
    /// Writes of `/scale` (real scale changes).
    pub scale: f64,
    /// Everything else: watches, lists, Events, Leases.
    pub other: f64,
}

impl std::ops::Sub for Requests {
    type Output = Requests;
    fn sub(self, o: Requests) -> Requests {
        Requests { metrics: self.metrics - o.metrics, scale: self.scale - o.scale, other: self.other - o.other }
    }
}

/// `scalehub_decisions_total` by outcome, from a Prometheus text exposition.
pub fn outcomes(exposition: &str) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    for line in exposition.lines().filter(|l| l.starts_with("scalehub_decisions_total{")) {
        let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else { continue };
        let outcome = line.split("outcome=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or("");
        *out.entry(outcome.to_owned()).or_default() += value;
    }
    out
}

/// Sums `scalehub_apiserver_requests_total` from a Prometheus text exposition.
pub fn requests(exposition: &str) -> Requests {
    let mut out = Requests::default();
    for line in exposition.lines().filter(|l| l.starts_with("scalehub_apiserver_requests_total{")) {
        let Some(value) = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()) else { continue };
        let resource = line.split("resource=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or("");
        if resource.ends_with("metrics.k8s.io") {
            out.metrics += value;
        } else if resource.ends_with("/scale") && !line.contains("verb=\"get\"") {
            out.scale += value;
        } else {
            out.other += value;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_split_into_metrics_reads_scale_writes_and_the_rest() {
        let text = "\
scalehub_apiserver_requests_total{verb=\"list\",resource=\"pods.metrics.k8s.io\",code=\"200\"} 40
scalehub_apiserver_requests_total{verb=\"patch\",resource=\"deployments/scale\",code=\"200\"} 3
scalehub_apiserver_requests_total{verb=\"watch\",resource=\"pods\",code=\"200\"} 2
scalehub_apiserver_requests_total{verb=\"update\",resource=\"leases\",code=\"200\"} 5
# HELP something else 9
";
        assert_eq!(requests(text), Requests { metrics: 40.0, scale: 3.0, other: 7.0 });
    }

    #[test]
    fn this_process_has_cpu_time_and_memory() {
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        let (rss, peak) = rss_bytes();
        assert!(rss > 0 && peak >= rss);
        assert!(cpu_seconds().0 >= 0.0);
    }
}
