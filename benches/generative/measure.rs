//! Repeated timing (one warm-up, then as many runs as fit a budget), medians and 90th
//! percentiles, and the CPU time other processes took meanwhile.

use std::fmt::Display;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Fewest and most measured runs of one measurement (unless `OCELLUS_BENCH_RUNS`).
const MIN_RUNS: usize = 3;
const MAX_RUNS: usize = 50;

/// How measurements are repeated.
pub struct Bench {
    /// Intra-op threads of every session.
    pub threads: usize,
    /// A fixed number of measured runs (`OCELLUS_BENCH_RUNS`).
    pub runs: Option<usize>,
    /// About how long one model's measurements may take together.
    pub model_budget: Duration,
}

/// Wall milliseconds and outputs of the measured runs.
pub struct Sampled<T> {
    pub wall: Vec<f64>,
    pub out: Vec<T>,
}

impl Bench {
    /// Calls `f` once to warm up, then measures it: `runs` times, or as many times as
    /// fit in `model_budget / parts` judging by the first measured run.
    pub fn sample<T, E: Display>(
        &self,
        parts: u32,
        mut f: impl FnMut() -> Result<T, E>,
    ) -> Result<Sampled<T>, String> {
        f().map_err(|e| e.to_string())?;
        let budget = (self.model_budget / parts).as_secs_f64();
        let mut want = self.runs.unwrap_or(MIN_RUNS);
        let mut s = Sampled {
            wall: Vec::new(),
            out: Vec::new(),
        };
        while s.wall.len() < want {
            let t0 = Instant::now();
            let out = f().map_err(|e| e.to_string())?;
            let one = t0.elapsed().as_secs_f64();
            if s.wall.is_empty() && self.runs.is_none() {
                want = ((budget / one.max(1e-6)) as usize).clamp(MIN_RUNS, MAX_RUNS);
            }
            s.wall.push(one * 1e3);
            s.out.push(out);
        }
        Ok(s)
    }
}

impl<T> Sampled<T> {
    /// Statistics of the wall time.
    pub fn wall(&self) -> Stat {
        Stat::of(self.wall.clone())
    }

    /// Statistics of a value of each run's output.
    pub fn of(&self, f: impl Fn(&T) -> f64) -> Stat {
        Stat::of(self.out.iter().map(f).collect())
    }

    /// `{median_ms, p90_ms, runs}` of the wall time.
    pub fn json(&self) -> Value {
        let w = self.wall();
        json!({"median_ms": num(w.median), "p90_ms": num(w.p90), "runs": self.wall.len()})
    }
}

/// Median and nearest-rank 90th percentile.
#[derive(Clone, Copy)]
pub struct Stat {
    pub median: f64,
    pub p90: f64,
}

impl Stat {
    pub fn of(mut v: Vec<f64>) -> Self {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        if n == 0 {
            return Self {
                median: f64::NAN,
                p90: f64::NAN,
            };
        }
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        let rank = (0.9 * n as f64).ceil() as usize;
        Self {
            median,
            p90: v[rank.clamp(1, n) - 1],
        }
    }
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A number rounded to 3 decimals (`null` for NaN or infinity).
pub fn num(v: f64) -> Value {
    if v.is_finite() {
        json!((v * 1e3).round() / 1e3)
    } else {
        Value::Null
    }
}

/// CPU seconds since boot of the whole machine (all but idle and iowait) and of this
/// process, to tell how much other work ran beside the benchmark.
pub fn cpu_s() -> Option<(f64, f64)> {
    let ticks = 100.0; // USER_HZ, the unit of /proc/stat and /proc/self/stat
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<f64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|x| x.parse().ok())
        .collect();
    let machine = v.iter().sum::<f64>() - v.get(3)? - v.get(4)?;
    let own = std::fs::read_to_string("/proc/self/stat").ok()?;
    let f: Vec<f64> = own
        .get(own.rfind(')')? + 2..)?
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse().ok())
        .collect();
    Some((machine / ticks, (f.first()? + f.get(1)?) / ticks))
}
