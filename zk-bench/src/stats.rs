//! What a child measures about itself, and the numbers a row is made of.

use std::time::Duration;

/// CPU time (user + system) of this process so far, in clock ticks from `/proc/self/stat`
/// (which also counts threads that have exited).
fn cpu_ticks(clk_tck: u64) -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let total = ticks(11) + ticks(12);
    Duration::from_micros(total * 1_000_000 / clk_tck.max(1))
}

/// CPU time of the live threads in ns, summed from `/proc/self/task/*/schedstat`.
fn cpu_schedstat() -> Duration {
    let mut ns = 0u64;
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for t in dir.flatten() {
            if let Ok(s) = std::fs::read_to_string(t.path().join("schedstat")) {
                ns += s
                    .split_whitespace()
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
    }
    Duration::from_nanos(ns)
}

/// A CPU-time reading: precise (live threads, ns) and coarse (whole process, ticks).
#[derive(Clone, Copy, Debug)]
pub struct Cpu {
    precise: Duration,
    coarse: Duration,
    tick: Duration,
}

impl Cpu {
    /// Reads both now.
    pub fn now(clk_tck: u64) -> Cpu {
        Cpu {
            precise: cpu_schedstat(),
            coarse: cpu_ticks(clk_tck),
            tick: Duration::from_micros(1_000_000 / clk_tck.max(1)),
        }
    }

    /// CPU used since `earlier`: the ns-precise sum over live threads, unless the tick count
    /// shows clearly more (threads that exited meanwhile took their time with them).
    pub fn since(&self, earlier: &Cpu) -> Duration {
        let precise = self.precise.saturating_sub(earlier.precise);
        let coarse = self.coarse.saturating_sub(earlier.coarse);
        if coarse > precise + 2 * self.tick {
            coarse
        } else {
            precise
        }
    }
}

/// A `Vm*` line of `/proc/self/status`, in KiB.
pub fn status_kib(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.strip_prefix(':')))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Peak resident set size (VmHWM), KiB.
pub fn peak_rss_kib() -> u64 {
    status_kib("VmHWM")
}

/// Current resident set size (VmRSS), KiB.
pub fn rss_kib() -> u64 {
    status_kib("VmRSS")
}

/// The `q` quantile (0..=1) of unsorted samples, in µs.
pub fn quantile_us(samples: &mut [Duration], q: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    samples.sort_unstable();
    let i = ((samples.len() - 1) as f64 * q).round() as usize;
    samples[i].as_secs_f64() * 1e6
}

/// Median of a few values (the runs).
pub fn median(v: &[f64]) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Spread of the runs as (max - min) / median, in percent.
pub fn spread_pct(v: &[f64]) -> f64 {
    let m = median(v);
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() || m == 0.0 {
        return 0.0;
    }
    (hi - lo) / m * 100.0
}

/// One child's result: the fields of one JSON line.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// Operations done (W4: watches; W5: sessions).
    pub ops: u64,
    /// Wall time of the measured phase.
    pub secs: f64,
    /// Per-op latency quantiles, µs (0 where not measured).
    pub p50_us: f64,
    pub p99_us: f64,
    /// CPU of the measured phase, µs.
    pub cpu_us: f64,
    /// VmHWM at the end, KiB.
    pub peak_rss_kib: u64,
    /// W4: restore time after the new connection, ms; notifications received.
    pub restore_ms: f64,
    pub notified: u64,
    /// W5: client memory per session, KiB.
    pub kib_per_session: f64,
    /// W5: client CPU per session over the idle period (all sessions open, none
    /// used), µs.
    pub idle_cpu_us: f64,
    /// Failure, if the workload could not complete.
    pub error: Option<String>,
}

impl Measured {
    /// One line of JSON (hand-written: no serde needed for flat numbers).
    pub fn to_json(&self, workload: &str, client: &str, run: usize) -> String {
        let ops_s = if self.secs > 0.0 {
            self.ops as f64 / self.secs
        } else {
            0.0
        };
        let cpu_per_op = if self.ops > 0 {
            self.cpu_us / self.ops as f64
        } else {
            0.0
        };
        let err = match &self.error {
            Some(e) => format!("\"{}\"", e.replace(['"', '\\', '\n'], " ")),
            None => "null".into(),
        };
        format!(
            "{{\"workload\":\"{workload}\",\"client\":\"{client}\",\"run\":{run},\"ops\":{},\"secs\":{:.6},\"ops_per_s\":{:.1},\"p50_us\":{:.1},\"p99_us\":{:.1},\"cpu_us\":{:.0},\"cpu_us_per_op\":{:.3},\"peak_rss_kib\":{},\"restore_ms\":{:.2},\"notified\":{},\"kib_per_session\":{:.2},\"idle_cpu_us\":{:.3},\"error\":{err}}}",
            self.ops, self.secs, ops_s, self.p50_us, self.p99_us, self.cpu_us, cpu_per_op,
            self.peak_rss_kib, self.restore_ms, self.notified, self.kib_per_session,
            self.idle_cpu_us
        )
    }

    /// Parses a line written by [`to_json`](Measured::to_json) (flat, known keys only).
    pub fn from_json(line: &str) -> Option<Measured> {
        let get = |key: &str| -> Option<&str> {
            let pat = format!("\"{key}\":");
            let start = line.find(&pat)? + pat.len();
            let rest = &line[start..];
            if let Some(s) = rest.strip_prefix('"') {
                s.find('"').map(|e| &s[..e])
            } else {
                let end = rest.find([',', '}']).unwrap_or(rest.len());
                Some(&rest[..end])
            }
        };
        let num = |key: &str| get(key).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        Some(Measured {
            ops: num("ops") as u64,
            secs: num("secs"),
            p50_us: num("p50_us"),
            p99_us: num("p99_us"),
            cpu_us: num("cpu_us"),
            peak_rss_kib: num("peak_rss_kib") as u64,
            restore_ms: num("restore_ms"),
            notified: num("notified") as u64,
            kib_per_session: num("kib_per_session"),
            idle_cpu_us: num("idle_cpu_us"),
            error: match get("error") {
                Some("null") | None => None,
                Some(e) => Some(e.to_string()),
            },
        })
    }
}
