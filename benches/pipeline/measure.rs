//! CPU accounting, measured child runs, `gst-launch-1.0` decode runs and the small
//! numeric helpers every scenario uses.
//!
//! CPU time of a child (all its threads) is the growth of this process's
//! `cutime + cstime` in `/proc/self/stat` across waiting for it: the kernel adds a
//! child's user and system time there when it is reaped, which is what
//! `getrusage(RUSAGE_CHILDREN)` reports. Children are therefore run one at a time
//! while a measurement is open (the broker, also a child, lives on and is not reaped).

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::common;

/// Kernel clock ticks a second (the unit of /proc/*/stat times).
pub fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// Fields of a `/proc/*/stat` line, numbered as in proc(5) (1 = pid).
fn stat_field(stat: &str, field: usize) -> Option<f64> {
    // The command name (field 2) is in parentheses and may hold spaces: the fields
    // after its closing parenthesis start at field 3 (state).
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    rest.split_whitespace()
        .nth(field.checked_sub(3)?)?
        .parse()
        .ok()
}

/// User + system seconds of this process's reaped children (`cutime + cstime`).
pub fn children_cpu_s(ticks: f64) -> f64 {
    let stat = fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    let cutime = stat_field(&stat, 16).expect("cutime in /proc/self/stat");
    let cstime = stat_field(&stat, 17).expect("cstime in /proc/self/stat");
    (cutime + cstime) / ticks
}

/// User + system seconds of a live process, all its threads (`utime + stime`);
/// `None` once it is gone.
pub fn process_cpu_s(pid: &str, ticks: f64) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some((stat_field(&stat, 14)? + stat_field(&stat, 15)?) / ticks)
}

/// `VmRSS` and `VmHWM` of a live process, in MB (10^6 bytes).
pub fn rss_mb(pid: u32) -> Option<(f64, f64)> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb = |key: &str| -> Option<f64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse::<f64>()
            .ok()
    };
    Some((kb("VmRSS:")? * 1024.0 / 1e6, kb("VmHWM:")? * 1024.0 / 1e6))
}

/// Wall and CPU seconds of one child run.
#[derive(Clone, Copy, Debug)]
pub struct Usage {
    pub wall_s: f64,
    pub cpu_s: f64,
}

/// A finished child: its status (`None`: killed at the time limit), its output and
/// what it cost.
pub struct ChildRun {
    pub status: Option<ExitStatus>,
    pub stdout: String,
    pub stderr: String,
    pub usage: Usage,
}

impl ChildRun {
    pub fn ok(&self) -> bool {
        self.status.is_some_and(|s| s.success())
    }

    /// `Err` with the status and the tail of stderr unless the child succeeded.
    pub fn check(&self, what: &str) -> Result<(), String> {
        if self.ok() {
            return Ok(());
        }
        let status = match self.status {
            Some(s) => s.to_string(),
            None => "killed at its time limit".into(),
        };
        Err(format!(
            "{what}: {status}; stderr: {}",
            tail(&self.stderr, 1500)
        ))
    }
}

/// The last `max` bytes of `s` (on a character boundary).
pub fn tail(s: &str, max: usize) -> &str {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    s[start..].trim()
}

/// Runs `cmd` to completion (killed after `limit`), collecting stdout and stderr,
/// and measures its CPU time as described at the top of this file.
pub fn run_child(cmd: &mut Command, limit: Duration, ticks: f64) -> Result<ChildRun, String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let cpu0 = children_cpu_s(ticks);
    let t0 = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {cmd:?}: {e}"))?;
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let mut bytes = Vec::new();
                let _ = p.read_to_end(&mut bytes);
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
            text
        })
    };
    let out = read(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = read(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status = common::wait_or_kill(&mut child, limit);
    let wall_s = t0.elapsed().as_secs_f64();
    let cpu_s = children_cpu_s(ticks) - cpu0;
    Ok(ChildRun {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        usage: Usage { wall_s, cpu_s },
    })
}

/// Longest a `gst-launch-1.0` decode run may take.
const DECODE_LIMIT: Duration = Duration::from_secs(300);

/// `gst-launch-1.0 -q ARGS` once: its wall and CPU seconds.
pub fn gst_launch(args: &[String], ticks: f64) -> Result<Usage, String> {
    let run = run_child(
        Command::new("gst-launch-1.0").arg("-q").args(args),
        DECODE_LIMIT,
        ticks,
    )?;
    run.check(&format!("gst-launch-1.0 {}", args.join(" ")))?;
    Ok(run.usage)
}

/// How many times each decode-only measurement runs (the median is kept).
pub const DECODE_RUNS: usize = 3;

/// The run with the median wall time of `DECODE_RUNS` runs.
pub fn median_run(mut run: impl FnMut() -> Result<Usage, String>) -> Result<Usage, String> {
    let mut runs = (0..DECODE_RUNS)
        .map(|_| run())
        .collect::<Result<Vec<_>, _>>()?;
    runs.sort_by(|a, b| a.wall_s.total_cmp(&b.wall_s));
    Ok(runs.swap_remove(DECODE_RUNS / 2))
}

/// How many times each contender of scenario "every" runs (the median CPU is kept).
pub const EVERY_RUNS: usize = 3;

/// The run with the median `cpu` of `n` runs of `run` (machines here are noisy: one
/// run can be off by several per cent).
pub fn median_by<T>(
    n: usize,
    mut run: impl FnMut() -> Result<T, String>,
    cpu: impl Fn(&T) -> f64,
) -> Result<T, String> {
    let mut runs = (0..n.max(1))
        .map(|_| run())
        .collect::<Result<Vec<_>, _>>()?;
    runs.sort_by(|a, b| cpu(a).total_cmp(&cpu(b)));
    Ok(runs.swap_remove(runs.len() / 2))
}

/// `filesrc location=CLIP ! decodebin ! fakesink sync=false`, median of 3.
pub fn decode_only(clip: &Path, ticks: f64) -> Result<Usage, String> {
    let args: Vec<String> = vec![
        "filesrc".into(),
        format!("location={}", clip.display()),
        "!".into(),
        "decodebin".into(),
        "!".into(),
        "fakesink".into(),
        "sync=false".into(),
    ];
    let u = median_run(|| gst_launch(&args, ticks))?;
    eprintln!(
        "bench: decode {}: {:.2} s wall, {:.2} s CPU (median of {DECODE_RUNS})",
        clip.display(),
        u.wall_s,
        u.cpu_s
    );
    Ok(u)
}

/// Whether `gst-inspect-1.0 ELEMENT` lists `property`.
pub fn element_has_property(element: &str, property: &str) -> bool {
    Command::new("gst-inspect-1.0")
        .arg(element)
        .output()
        .is_ok_and(|o| {
            o.status.success()
                && String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .any(|l| l.trim_start().starts_with(property))
        })
}

/// Runs `f`, turning a panic into `Err` with its message, so that one failed part
/// of the benchmark does not take the others down.
pub fn guarded<T>(what: &str, f: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => {
            eprintln!("bench: {what} failed: {e}");
            Err(e)
        }
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panicked".into());
            let msg = format!("panicked: {msg}");
            eprintln!("bench: {what} {msg}");
            Err(msg)
        }
    }
}

/// Nearest-rank percentile of sorted values (NaN when there are none).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The median of unsorted values (NaN when there are none).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Long-minus-short difference per unit: the cost once fixed start-up costs are out.
pub fn marginal(long: f64, short: f64, long_units: f64, short_units: f64) -> f64 {
    (long - short) / (long_units - short_units)
}

/// A number rounded to 4 decimals (JSON has no NaN or infinity: null then).
pub fn num(v: f64) -> Value {
    if v.is_finite() {
        json!((v * 1e4).round() / 1e4)
    } else {
        Value::Null
    }
}

/// `num` of an optional number.
pub fn opt_num(v: Option<f64>) -> Value {
    v.map_or(Value::Null, num)
}

/// Busy CPU seconds of the whole machine since boot (`/proc/stat`: all but idle and
/// iowait), to tell how much other work ran beside a scenario.
pub fn machine_busy_s(ticks: f64) -> Option<f64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let total: f64 = v.iter().take(8).sum();
    Some((total - v.get(3)? - v.get(4)?) / ticks)
}

/// This process's and its reaped children's CPU seconds so far.
pub fn own_cpu_s(ticks: f64) -> Option<f64> {
    Some(process_cpu_s("self", ticks)? + children_cpu_s(ticks))
}

/// Where a live process's resident memory is: `/proc/PID/smaps` grouped by mapping,
/// and its threads.
///
/// Anonymous memory is told apart by the shape glibc gives it: a malloc arena of a
/// thread (not the main one) is a 64 MiB-aligned read-write mapping followed by the
/// `---p` rest of its 64 MiB reservation; a thread stack is a read-write mapping
/// right above its `---p` guard page(s); the main arena is `[heap]` (brk). Every other
/// anonymous mapping (malloc's own mmaps of large blocks, libraries' mmaps) is
/// `anon_other`. File-backed mappings are grouped by library.
#[derive(Clone, Debug, Default)]
pub struct MemoryBreakdown {
    /// Group → (Rss MB, mappings).
    pub groups: BTreeMap<&'static str, (f64, usize)>,
    pub threads: usize,
    /// Thread names with their digits taken out (`cam12-src` → `cam#-src`) → count.
    pub thread_names: BTreeMap<String, usize>,
}

/// One line of smaps' mapping header: start, end, permissions, path ("" when anonymous).
struct Mapping {
    start: u64,
    end: u64,
    perms: String,
    path: String,
    rss_kb: u64,
}

const ARENA_ALIGN: u64 = 64 << 20;
const MAX_GUARD: u64 = 1 << 20;

fn mappings(smaps: &str) -> Vec<Mapping> {
    let mut out: Vec<Mapping> = Vec::new();
    for line in smaps.lines() {
        if let Some(rest) = line.strip_prefix("Rss:") {
            if let Some(m) = out.last_mut() {
                m.rss_kb = rest
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse()
                    .unwrap_or(0);
            }
            continue;
        }
        let mut parts = line.splitn(6, ' ');
        let Some((range, perms)) = parts.next().zip(parts.next()) else {
            continue;
        };
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else {
            continue;
        };
        if perms.len() != 4 {
            continue;
        }
        let path = parts.nth(3).unwrap_or("").trim().to_string();
        out.push(Mapping {
            start,
            end,
            perms: perms.into(),
            path,
            rss_kb: 0,
        });
    }
    out
}

fn group_of(maps: &[Mapping], i: usize) -> &'static str {
    let m = &maps[i];
    let anon = |x: &Mapping| x.path.is_empty();
    let none = |x: &Mapping| x.perms.starts_with("---");
    if anon(m) {
        if none(m) {
            return "reserved";
        }
        let next = maps.get(i + 1);
        let prev = i.checked_sub(1).map(|p| &maps[p]);
        if m.start.is_multiple_of(ARENA_ALIGN)
            && next.is_some_and(|n| anon(n) && none(n) && n.start == m.end)
        {
            return "malloc_arenas";
        }
        if prev
            .is_some_and(|p| anon(p) && none(p) && p.end == m.start && p.end - p.start <= MAX_GUARD)
        {
            return "stacks";
        }
        return "anon_other";
    }
    let p = m.path.as_str();
    let file = p.rsplit('/').next().unwrap_or(p);
    match p {
        "[heap]" => "heap_brk",
        "[stack]" => "stacks",
        _ if p.starts_with('[') => "other",
        _ if file.contains("onnxruntime") => "onnxruntime",
        _ if p.contains("/gstreamer-1.0/")
            || [
                "libgst",
                "libav",
                "libsw",
                "libx26",
                "liborc",
                "libopenh264",
                "libdav1d",
                "libvpx",
            ]
            .iter()
            .any(|l| file.starts_with(l)) =>
        {
            "gstreamer_and_codecs"
        }
        _ if file == "ocellus" => "ocellus_binary",
        _ if file.contains(".so") => "other_libs",
        _ => "other_files",
    }
}

/// [`MemoryBreakdown`] of `pid`; `None` once it is gone.
pub fn memory_breakdown(pid: u32) -> Option<MemoryBreakdown> {
    let smaps = fs::read_to_string(format!("/proc/{pid}/smaps")).ok()?;
    let maps = mappings(&smaps);
    let mut b = MemoryBreakdown::default();
    for i in 0..maps.len() {
        let g = b.groups.entry(group_of(&maps, i)).or_insert((0.0, 0));
        g.0 += maps[i].rss_kb as f64 * 1024.0 / 1e6;
        g.1 += 1;
    }
    for task in fs::read_dir(format!("/proc/{pid}/task")).ok()?.flatten() {
        b.threads += 1;
        let name = fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        // Each run of digits becomes one `#`.
        let mut short = String::new();
        for c in name.trim().chars() {
            if !c.is_ascii_digit() {
                short.push(c);
            } else if !short.ends_with('#') {
                short.push('#');
            }
        }
        *b.thread_names.entry(short).or_insert(0) += 1;
    }
    Some(b)
}

impl MemoryBreakdown {
    /// `rss_breakdown_mb` (group → MB, and their sum), `mappings_count` per group,
    /// `threads_count`, `threads_by_name_count`.
    pub fn insert(&self, out: &mut Map<String, Value>) {
        let mut mb = Map::new();
        let mut count = Map::new();
        for (g, (rss, n)) in &self.groups {
            mb.insert((*g).into(), num((rss * 10.0).round() / 10.0));
            count.insert((*g).into(), json!(n));
        }
        let total: f64 = self.groups.values().map(|(r, _)| r).sum();
        mb.insert("total".into(), num((total * 10.0).round() / 10.0));
        out.insert("rss_breakdown_mb".into(), Value::Object(mb));
        out.insert("rss_breakdown_mappings_count".into(), Value::Object(count));
        out.insert("threads_count".into(), json!(self.threads));
        let mut names: Vec<(&String, &usize)> = self.thread_names.iter().collect();
        names.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        out.insert(
            "threads_by_name_count".into(),
            Value::Object(
                names
                    .into_iter()
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect(),
            ),
        );
    }
}
