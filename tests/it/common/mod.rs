//! Shared helpers for the integration tests. Include with `mod common;`.
//!
//! * paths to the shared read-only material (`shared_dir`, `models_dir`, `media`),
//! * a throw-away MQTT broker (`Mosquitto`) and a subscriber that records
//!   everything it sees (`MqttCollector`), plus `publish_once` and the contract's
//!   topics (`status_topic`, `cam_status`, `state_topic`, `events_topic`,
//!   `detections_topic`),
//! * test clips made with `gst-launch-1.0`, killed and tried again when it hangs
//!   (`make_clip`, `media_clip`, `make_test_pattern_clip`, `run_gst_launch`), and
//!   ways to check them (`probe_clip`, `discover_duration`),
//! * the daemon under test as a child process (`Daemon`, `ocellus_bin`,
//!   `ocellus_command`, `ocellus_run_command`, `write_config`), one-shot runs of
//!   the binary with their output (`run_ocellus`, `Out`; in `cli`), and any child
//!   with a time limit (`wait_or_kill`) or killed on drop (`KillOnDrop`),
//! * config snippets for the real models (`conf`) and checks of the daemon's log
//!   (`logs`),
//! * a gated TCP proxy between the daemon and the broker (`GatedProxy`, in `proxy`).
#![allow(dead_code)]

mod cli;
mod conf;
mod http;
pub mod hub_server;
mod logs;
mod parity;
mod proxy;
mod rtsp;

// Each test crate uses only some of these.
#[allow(unused_imports)]
pub use cli::*;
#[allow(unused_imports)]
pub use conf::*;
#[allow(unused_imports)]
pub use http::*;
#[allow(unused_imports)]
pub use logs::*;
#[allow(unused_imports)]
pub use parity::*;
#[allow(unused_imports)]
pub use proxy::*;
#[allow(unused_imports)]
pub use rtsp::*;

use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

// ------------------------------------------------------------------ paths

/// The shared read-only material: `$OCELLUS_SHARED`, or `<crate>/../shared`.
pub fn shared_dir() -> PathBuf {
    let dir = match std::env::var_os("OCELLUS_SHARED") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("shared"),
    };
    dir.canonicalize().unwrap_or(dir)
}

/// The ONNX models: `$OCELLUS_MODELS`, or `<shared>/models`.
pub fn models_dir() -> PathBuf {
    let dir = match std::env::var_os("OCELLUS_MODELS") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => shared_dir().join("models"),
    };
    dir.canonicalize().unwrap_or(dir)
}

/// A file under `<shared>/media`; panics with a clear message when it is missing.
pub fn media(name: &str) -> PathBuf {
    let p = shared_dir().join("media").join(name);
    assert!(
        p.is_file(),
        "shared media file {} not found (set OCELLUS_SHARED to the shared folder)",
        p.display()
    );
    p
}

/// Polls `cond` every 10 ms until it is true or `timeout` has passed.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking reader thread must not hide the data from the test.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind 127.0.0.1:0")
        .port()
}

/// Whether something accepts TCP connections on 127.0.0.1:`port`.
pub fn port_accepts(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
}

/// Finds a program on `PATH`, then in the given fallback directories.
fn find_program(name: &str, fallbacks: &[&str]) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(fallbacks.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found on PATH (run deploy/setup.sh to install it)"))
}

// ------------------------------------------------------------- mosquitto

static BROKER_START_TIMEOUT: Duration = Duration::from_secs(10);

/// A private mosquitto broker on a free 127.0.0.1 port (anonymous, no
/// persistence, no limit on a subscriber's queue). Killed on drop.
pub struct Mosquitto {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    starts: usize,
    /// Only these users may connect (`start_with_users`); anonymous when empty.
    users: bool,
    /// More lines of mosquitto.conf (e.g. `max_packet_size 20000`).
    extra: String,
}

impl Mosquitto {
    /// Starts a broker on a free port and waits until it accepts connections.
    pub fn start() -> Self {
        Self::start_with(&[], "")
    }

    /// Like `start`, with `extra` lines added to mosquitto.conf.
    pub fn start_with_conf(extra: &str) -> Self {
        Self::start_with(&[], extra)
    }

    /// A broker that lets in only `users` (`(name, password)`, hashed into a password
    /// file by mosquitto_passwd; a password may hold any character), or anyone when
    /// `users` is empty.
    pub fn start_with_users(users: &[(&str, &str)]) -> Self {
        Self::start_with(users, "")
    }

    fn start_with(users: &[(&str, &str)], extra: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("ocellus-mosquitto-")
            .tempdir()
            .expect("tempdir for mosquitto");
        for (i, (user, password)) in users.iter().enumerate() {
            let mut cmd = Command::new(find_program("mosquitto_passwd", &["/usr/bin"]));
            cmd.arg("-b");
            if i == 0 {
                cmd.arg("-c");
            }
            let out = cmd
                .arg(dir.path().join("passwd"))
                .args([user, password])
                .output()
                .expect("run mosquitto_passwd");
            assert!(out.status.success(), "mosquitto_passwd: {out:?}");
        }
        if !users.is_empty() {
            // mosquitto started as root reads its password file as its own user.
            use std::os::unix::fs::PermissionsExt;
            for (p, mode) in [
                (dir.path().to_path_buf(), 0o755),
                (dir.path().join("passwd"), 0o644),
            ] {
                fs::set_permissions(p, fs::Permissions::from_mode(mode)).expect("chmod");
            }
        }
        let mut broker = Mosquitto {
            port: 0,
            dir,
            child: None,
            starts: 0,
            users: !users.is_empty(),
            extra: extra.to_string(),
        };
        let mut errors = Vec::new();
        for _ in 0..5 {
            broker.port = free_port();
            match broker.spawn() {
                Ok(()) => return broker,
                // Most likely someone else took the port in between: try another.
                Err(e) => errors.push(e),
            }
        }
        panic!("could not start mosquitto:\n{}", errors.join("\n---\n"));
    }

    /// `mqtt://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the broker and waits for it (the port is then free).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the broker again on the same port (after `stop`), retrying for
    /// up to 10 s while the port is still busy.
    pub fn start_again(&mut self) {
        self.stop();
        let deadline = Instant::now() + BROKER_START_TIMEOUT;
        loop {
            match self.spawn() {
                Ok(()) => return,
                Err(e) if Instant::now() >= deadline => {
                    panic!("could not restart mosquitto on port {}:\n{e}", self.port)
                }
                Err(_) => thread::sleep(Duration::from_millis(200)),
            }
        }
    }

    /// Everything the broker has logged, over all its starts.
    pub fn log(&self) -> String {
        (1..=self.starts)
            .map(|n| fs::read_to_string(self.log_path(n)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("")
    }

    fn log_path(&self, n: usize) -> PathBuf {
        self.dir.path().join(format!("mosquitto-{n}.log"))
    }

    fn spawn(&mut self) -> Result<(), String> {
        let conf = self.dir.path().join("mosquitto.conf");
        // No limit on the QoS 1 messages queued for a subscriber: by default mosquitto
        // keeps 1000 beyond those in flight and drops the rest (after acknowledging
        // them to the publisher), so a test's collector stalled for a moment on a
        // loaded machine would lose part of a daemon's post-outage backlog.
        let auth = if self.users {
            format!(
                "allow_anonymous false\npassword_file {}",
                self.dir.path().join("passwd").display()
            )
        } else {
            "allow_anonymous true".to_string()
        };
        fs::write(
            &conf,
            format!(
                "listener {} 127.0.0.1\n{auth}\npersistence false\n\
                 max_queued_messages 0\n\
                 log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n\
                 log_type information\nlog_timestamp_format %H:%M:%S\n{}\n",
                self.port, self.extra
            ),
        )
        .expect("write mosquitto.conf");
        self.starts += 1;
        let log_path = self.log_path(self.starts);
        let log = fs::File::create(&log_path).expect("create mosquitto log");
        let mut child = Command::new(find_program("mosquitto", &["/usr/sbin", "/usr/local/sbin"]))
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log fd"))
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run mosquitto: {e}"))?;
        let read_log = || fs::read_to_string(&log_path).unwrap_or_default();
        let deadline = Instant::now() + BROKER_START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "mosquitto on 127.0.0.1:{} exited at start ({status}); its output:\n{}",
                    self.port,
                    read_log()
                ));
            }
            if port_accepts(self.port) {
                // Make sure it is our broker that answers, not a port thief.
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!(
                        "mosquitto on 127.0.0.1:{} exited at start ({status}); its output:\n{}",
                        self.port,
                        read_log()
                    ));
                }
                self.child = Some(child);
                return Ok(());
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "mosquitto did not accept connections on 127.0.0.1:{} within {:?}; its output:\n{}",
                    self.port,
                    BROKER_START_TIMEOUT,
                    read_log()
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Mosquitto {
    fn drop(&mut self) {
        self.stop();
    }
}

// ------------------------------------------------------------------ MQTT

/// `(host, port)` from `mqtt://host:port`, `tcp://host:port` or `host:port`.
pub fn mqtt_host_port(url: &str) -> (String, u16) {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(url)
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    match rest.rsplit_once(':') {
        Some((h, p)) => (
            h.to_string(),
            p.parse()
                .unwrap_or_else(|_| panic!("bad port in MQTT url {url:?}")),
        ),
        None => (rest.to_string(), 1883),
    }
}

/// A client id no other client of this test process uses (`role` in it, to read
/// broker logs by).
pub fn client_id(role: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "ocellus-test-{role}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn mqtt_options(url: &str, role: &str) -> MqttOptions {
    let (host, port) = mqtt_host_port(url);
    let mut o = MqttOptions::new(client_id(role), host, port);
    o.set_keep_alive(Duration::from_secs(5))
        .set_clean_session(true)
        .set_max_packet_size(64 << 20, 64 << 20);
    o
}

/// `ocellus/status`: the daemon's availability.
pub fn status_topic() -> String {
    "ocellus/status".into()
}

/// `ocellus/CAM/status`: a camera's availability.
pub fn cam_status(cam: &str) -> String {
    format!("ocellus/{cam}/status")
}

/// `ocellus/CAM/query/Q/state`: a query's retained state.
pub fn state_topic(cam: &str, query: &str) -> String {
    format!("ocellus/{cam}/query/{query}/state")
}

/// `ocellus/CAM/events`: a camera's state changes.
pub fn events_topic(cam: &str) -> String {
    format!("ocellus/{cam}/events")
}

/// `ocellus/CAM/detections`: a camera's detections, one message per evaluated frame.
pub fn detections_topic(cam: &str) -> String {
    format!("ocellus/{cam}/detections")
}

/// One message as the collector received it.
#[derive(Clone, Debug)]
pub struct Msg {
    pub topic: String,
    pub payload: Vec<u8>,
    /// True only for retained messages delivered because of a (re)subscription.
    pub retain: bool,
    pub at: Instant,
}

impl Msg {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap_or_else(|e| {
            panic!(
                "payload on {} is not JSON ({e}): {:?}",
                self.topic,
                self.text()
            )
        })
    }
}

struct CollectorState {
    messages: Arc<Mutex<Vec<Msg>>>,
    subacks: AtomicUsize,
    connected: AtomicBool,
    stop: AtomicBool,
}

/// Subscribes to a topic filter at QoS 1 and records every message, from a
/// background thread that reconnects (and resubscribes) when the broker restarts.
pub struct MqttCollector {
    client: Client,
    state: Arc<CollectorState>,
    filter: String,
}

impl MqttCollector {
    /// Subscribes to `#` and waits (up to 10 s) for the subscription to be acknowledged.
    pub fn new(url: &str) -> Self {
        Self::with_filter(url, "#")
    }

    /// Subscribes to `filter` and waits (up to 10 s) for the subscription to be acknowledged.
    pub fn with_filter(url: &str, filter: &str) -> Self {
        let c = Self::start(url, filter);
        assert!(
            c.wait_subscribed(Duration::from_secs(10)),
            "MQTT collector could not subscribe to {filter:?} at {url} within 10 s"
        );
        c
    }

    /// Like `with_filter` but does not wait for the subscription.
    pub fn start(url: &str, filter: &str) -> Self {
        let (client, mut connection) = Client::new(mqtt_options(url, "collector"), 64);
        let state = Arc::new(CollectorState {
            messages: Arc::new(Mutex::new(Vec::new())),
            subacks: AtomicUsize::new(0),
            connected: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let thread_state = Arc::clone(&state);
        let thread_client = client.clone();
        let thread_filter = filter.to_string();
        thread::Builder::new()
            .name("mqtt-collector".into())
            .spawn(move || {
                let st = thread_state;
                for event in connection.iter() {
                    if st.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    match event {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            st.connected.store(true, Ordering::SeqCst);
                            // Clean session: subscribe on every (re)connection.
                            let _ = thread_client
                                .try_subscribe(thread_filter.clone(), QoS::AtLeastOnce);
                        }
                        Ok(Event::Incoming(Packet::SubAck(_))) => {
                            st.subacks.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            lock(&st.messages).push(Msg {
                                topic: p.topic.clone(),
                                payload: p.payload.to_vec(),
                                retain: p.retain,
                                at: Instant::now(),
                            });
                        }
                        Ok(_) => {}
                        Err(_) => {
                            // Broker gone or restarting: keep iterating, which reconnects.
                            st.connected.store(false, Ordering::SeqCst);
                            thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
                st.connected.store(false, Ordering::SeqCst);
            })
            .expect("spawn mqtt-collector thread");
        MqttCollector {
            client,
            state,
            filter: filter.to_string(),
        }
    }

    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// The shared message list the background thread appends to.
    pub fn shared(&self) -> Arc<Mutex<Vec<Msg>>> {
        Arc::clone(&self.state.messages)
    }

    /// Whether the client is connected right now.
    pub fn connected(&self) -> bool {
        self.state.connected.load(Ordering::SeqCst)
    }

    /// How many SUBACKs arrived so far (one per (re)connection).
    pub fn suback_count(&self) -> usize {
        self.state.subacks.load(Ordering::SeqCst)
    }

    /// Waits for the first SUBACK.
    pub fn wait_subscribed(&self, timeout: Duration) -> bool {
        self.wait_suback_count(1, timeout)
    }

    /// Waits until at least `n` SUBACKs arrived (e.g. `n = 2` after a broker restart).
    pub fn wait_suback_count(&self, n: usize, timeout: Duration) -> bool {
        wait_until(timeout, || self.suback_count() >= n)
    }

    /// Waits until the connection to the broker is lost.
    pub fn wait_disconnected(&self, timeout: Duration) -> bool {
        wait_until(timeout, || !self.connected())
    }

    /// A copy of every message so far.
    pub fn messages(&self) -> Vec<Msg> {
        lock(&self.state.messages).clone()
    }

    /// How many messages arrived so far (without copying them).
    pub fn len(&self) -> usize {
        lock(&self.state.messages).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&self) {
        lock(&self.state.messages).clear();
    }

    /// Waits until `pred` holds for the messages received so far.
    pub fn wait_for(&self, mut pred: impl FnMut(&[Msg]) -> bool, timeout: Duration) -> bool {
        wait_until(timeout, || pred(&lock(&self.state.messages)))
    }

    /// Waits for a message on `topic` and returns the latest one.
    pub fn wait_for_topic(&self, topic: &str, timeout: Duration) -> Option<Msg> {
        if self.wait_for(|m| m.iter().any(|m| m.topic == topic), timeout) {
            self.last(topic)
        } else {
            None
        }
    }

    /// Payloads (as lossy UTF-8) of every message on `topic`, oldest first.
    pub fn payloads(&self, topic: &str) -> Vec<String> {
        lock(&self.state.messages)
            .iter()
            .filter(|m| m.topic == topic)
            .map(Msg::text)
            .collect()
    }

    /// The latest message on `topic`.
    pub fn last(&self, topic: &str) -> Option<Msg> {
        lock(&self.state.messages)
            .iter()
            .rev()
            .find(|m| m.topic == topic)
            .cloned()
    }

    /// Distinct topics seen, in order of first appearance.
    pub fn topics(&self) -> Vec<String> {
        let mut seen = Vec::new();
        for m in lock(&self.state.messages).iter() {
            if !seen.contains(&m.topic) {
                seen.push(m.topic.clone());
            }
        }
        seen
    }

    /// A readable dump of everything received, for assertion messages.
    pub fn dump(&self) -> String {
        lock(&self.state.messages)
            .iter()
            .map(|m| {
                format!(
                    "{}{} {}\n",
                    m.topic,
                    if m.retain { " (retained)" } else { "" },
                    m.text()
                )
            })
            .collect()
    }
}

impl Drop for MqttCollector {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = self.client.try_disconnect();
    }
}

/// Publishes one message at QoS 1 and waits (up to 10 s) for the broker's PUBACK.
pub fn publish_once(url: &str, topic: &str, payload: impl Into<Vec<u8>>, retain: bool) {
    let (client, mut connection) = Client::new(mqtt_options(url, "publisher"), 16);
    client
        .publish(topic, QoS::AtLeastOnce, retain, payload.into())
        .expect("queue MQTT publish");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no PUBACK from {url} for {topic} within 10 s"
        );
        match connection.recv_timeout(left) {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => break,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                // Broker not there (yet): retry until the deadline.
                let _ = e;
                thread::sleep(Duration::from_millis(100));
            }
            Err(_) => {}
        }
    }
    let _ = client.disconnect();
    // Let the DISCONNECT go out (bounded).
    let _ = connection.recv_timeout(Duration::from_millis(200));
}

// ----------------------------------------------------------------- clips

/// How many times a `gst-launch-1.0` run that hangs is tried before giving up.
const GST_LAUNCH_TRIES: u32 = 3;

/// The longest one `gst-launch-1.0` run making a test clip of `seconds` may take.
/// A few seconds of 640x360 encode in about a second even on a loaded 2-core
/// machine, so this only catches a run that hangs.
pub fn clip_time_limit(seconds: f64) -> Duration {
    Duration::from_secs(30) + Duration::from_secs_f64(4.0 * seconds.max(0.0))
}

/// Waits up to `limit` for `child` to exit; kills it (and waits for it) when it
/// has not, returning `None` then.
pub fn wait_or_kill(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

fn muxer_for(out: &Path) -> Vec<String> {
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "mkv" => vec!["matroskamux".into()],
        "mp4" | "m4v" | "mov" => vec!["mp4mux".into(), "faststart=true".into()],
        "ts" => vec!["mpegtsmux".into()],
        _ => panic!(
            "make_clip: unsupported container for {} (use .mkv, .mp4 or .ts)",
            out.display()
        ),
    }
}

/// `x264enc ... ! h264parse ! MUX ! filesink location=LOCATION`, with the muxer
/// chosen by the extension of `out`.
fn encoder_tail(out: &Path, location: &Path, fps: u32) -> Vec<String> {
    let mut t: Vec<String> = ["x264enc", "tune=zerolatency", "speed-preset=ultrafast"]
        .map(String::from)
        .to_vec();
    t.push(format!("key-int-max={}", fps.max(1) * 2));
    t.extend(["!", "h264parse", "!"].map(String::from));
    t.extend(muxer_for(out));
    t.extend(["!", "filesink"].map(String::from));
    t.push(format!("location={}", location.display()));
    t
}

/// `DIR/.NAME.PID.ATTEMPT.partial` beside `out`.
fn partial_path(out: &Path, attempt: u32) -> PathBuf {
    let mut name = OsString::from(".");
    name.push(out.file_name().expect("clip path has a file name"));
    name.push(format!(".{}.{attempt}.partial", std::process::id()));
    out.with_file_name(name)
}

/// Runs `gst-launch-1.0 -q ARGS`, where ARGS (from `pipeline`, given the file to
/// write) write to a temporary file that is renamed to `out` on success. A run that
/// fails panics with the pipeline and its output (stderr and stdout). A run still
/// going after `limit` is killed and tried again: under heavy load gst-launch-1.0
/// sometimes never finishes a concat/imagefreeze pipeline (every streaming thread
/// idle, EOS never posted). After `GST_LAUNCH_TRIES` such runs it panics with what
/// each of them wrote.
pub fn run_gst_launch(out: &Path, limit: Duration, pipeline: impl Fn(&Path) -> Vec<String>) {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).expect("create clip directory");
    }
    let mut hung = Vec::new();
    let mut shown = String::new();
    for attempt in 1..=GST_LAUNCH_TRIES {
        let tmp = partial_path(out, attempt);
        let log_path = tmp.with_extension("log");
        let log = fs::File::create(&log_path).expect("create gst-launch-1.0 log");
        let args = pipeline(&tmp);
        shown = args.join(" ");
        let mut child = Command::new("gst-launch-1.0")
            .arg("-q")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log fd"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run gst-launch-1.0 ({e}); run deploy/setup.sh"));
        let status = wait_or_kill(&mut child, limit);
        let output = fs::read_to_string(&log_path).unwrap_or_default();
        let _ = fs::remove_file(&log_path);
        match status {
            Some(s) if s.success() && fs::metadata(&tmp).is_ok_and(|m| m.len() > 0) => {
                fs::rename(&tmp, out).expect("rename finished clip into place");
                return;
            }
            Some(s) => {
                let _ = fs::remove_file(&tmp);
                panic!(
                    "gst-launch-1.0 failed ({s}) making {}\npipeline: {shown}\nstderr and stdout:\n{output}",
                    out.display(),
                );
            }
            None => {
                let _ = fs::remove_file(&tmp);
                eprintln!(
                    "gst-launch-1.0 did not finish making {} within {limit:?} (attempt {attempt} \
                     of {GST_LAUNCH_TRIES}); killed",
                    out.display()
                );
                hung.push(format!("attempt {attempt}:\n{output}"));
            }
        }
    }
    panic!(
        "gst-launch-1.0 hung {GST_LAUNCH_TRIES} times making {} (killed after {limit:?} each \
         time)\npipeline: {shown}\nstderr and stdout:\n{}",
        out.display(),
        hung.join("\n")
    );
}

/// The raw format a clip is encoded from: 4:2:0 needs even sizes, so odd ones
/// are encoded as 4:4:4.
fn raw_format(width: u32, height: u32) -> &'static str {
    if width.is_multiple_of(2) && height.is_multiple_of(2) {
        "I420"
    } else {
        "Y444"
    }
}

/// The `gst-launch-1.0` arguments `make_clip` runs (without `-q`): the muxer
/// follows the extension of `out`, the file written is `location`.
fn clip_pipeline(
    out: &Path,
    location: &Path,
    segments: &[(&Path, f64)],
    width: u32,
    height: u32,
    fps: u32,
) -> Vec<String> {
    assert!(!segments.is_empty(), "make_clip needs at least one segment");
    assert!(fps > 0 && width > 0 && height > 0);
    let format = raw_format(width, height);
    let mut a: Vec<String> = ["concat", "name=c", "!", "videoconvert", "!"]
        .map(String::from)
        .to_vec();
    a.extend(encoder_tail(out, location, fps));
    for (image, seconds) in segments {
        let frames = ((seconds * f64::from(fps)).round() as u64).max(1);
        a.extend([
            "filesrc".to_string(),
            format!("location={}", image.display()),
        ]);
        a.extend(
            [
                "!",
                "decodebin",
                "!",
                "videoconvert",
                "!",
                "videoscale",
                "add-borders=true",
                "!",
            ]
            .map(String::from),
        );
        a.push(format!(
            "video/x-raw,format={format},width={width},height={height},pixel-aspect-ratio=1/1"
        ));
        a.extend([
            "!".into(),
            "imagefreeze".into(),
            format!("num-buffers={frames}"),
        ]);
        a.extend(["!", "videorate", "!"].map(String::from));
        a.push(format!("video/x-raw,framerate={fps}/1"));
        a.extend(["!", "c."].map(String::from));
    }
    a
}

/// Makes an H.264 clip from still images shown one after the other, each
/// scaled and letterboxed to `width` x `height`, at `fps` frames per second.
/// The container follows the extension of `out`: .mkv, .mp4 (faststart) or .ts.
/// Odd sizes work (x264 then encodes 4:4:4). Never hangs: see `run_gst_launch`.
pub fn make_clip(out: &Path, segments: &[(&Path, f64)], width: u32, height: u32, fps: u32) {
    for (image, _) in segments {
        assert!(
            image.is_file(),
            "make_clip: no image at {}",
            image.display()
        );
    }
    let seconds = segments.iter().map(|(_, s)| s).sum();
    run_gst_launch(out, clip_time_limit(seconds), |tmp| {
        clip_pipeline(out, tmp, segments, width, height, fps)
    });
}

/// `make_clip` of shared media files (`media(NAME)`), at 640x360 and 10 fps, as
/// `DIR/NAME`; returns its path.
pub fn media_clip(dir: &Path, name: &str, segments: &[(&str, f64)]) -> PathBuf {
    let images: Vec<(PathBuf, f64)> = segments.iter().map(|(n, s)| (media(n), *s)).collect();
    let refs: Vec<(&Path, f64)> = images.iter().map(|(p, s)| (p.as_path(), *s)).collect();
    let out = dir.join(name);
    make_clip(&out, &refs, 640, 360, 10);
    out
}

/// Makes an H.264 clip of `videotestsrc pattern=PATTERN` (e.g. "smpte", "ball",
/// "snow"). Odd sizes work (x264 then encodes 4:4:4). Never hangs: see
/// `run_gst_launch`.
pub fn make_test_pattern_clip(
    out: &Path,
    width: u32,
    height: u32,
    fps: u32,
    seconds: f64,
    pattern: &str,
) {
    assert!(fps > 0 && width > 0 && height > 0);
    let frames = ((seconds * f64::from(fps)).round() as u64).max(1);
    run_gst_launch(out, clip_time_limit(seconds), |tmp| {
        let mut a = vec![
            "videotestsrc".to_string(),
            format!("pattern={pattern}"),
            format!("num-buffers={frames}"),
            "!".into(),
            format!("video/x-raw,width={width},height={height},framerate={fps}/1"),
            "!".into(),
            "videoconvert".into(),
            "!".into(),
        ];
        a.extend(encoder_tail(out, tmp, fps));
        a
    });
}

/// What decoding a whole clip shows.
#[derive(Clone, Debug)]
pub struct ClipInfo {
    pub frames: u64,
    pub width: u32,
    pub height: u32,
    pub first_pts: Option<Duration>,
    pub last_pts: Option<Duration>,
}

/// Decodes the whole clip (as fast as possible) and counts its frames.
pub fn probe_clip(path: &Path) -> ClipInfo {
    use gstreamer as gst;
    use gstreamer::prelude::*;

    gst::init().expect("gst::init");
    let pipeline =
        gst::parse::launch("filesrc name=src ! decodebin ! fakesink name=sink sync=false")
            .expect("probe pipeline")
            .downcast::<gst::Pipeline>()
            .expect("a pipeline");
    pipeline
        .by_name("src")
        .unwrap()
        .set_property("location", path.to_str().expect("utf-8 path"));
    let sink_pad = pipeline
        .by_name("sink")
        .unwrap()
        .static_pad("sink")
        .unwrap();
    #[derive(Default)]
    struct Seen {
        frames: u64,
        first: Option<Duration>,
        last: Option<Duration>,
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let probe_seen = Arc::clone(&seen);
    sink_pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(buf) = info.buffer() {
            let mut s = lock(&probe_seen);
            s.frames += 1;
            if let Some(pts) = buf.pts() {
                let d = Duration::from_nanos(pts.nseconds());
                s.first.get_or_insert(d);
                s.last = Some(d);
            }
        }
        gst::PadProbeReturn::Ok
    });
    pipeline
        .set_state(gst::State::Playing)
        .expect("play probe pipeline");
    let bus = pipeline.bus().unwrap();
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(120),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let (width, height) = sink_pad
        .current_caps()
        .and_then(|c| {
            let s = c.structure(0)?;
            Some((s.get::<i32>("width").ok()?, s.get::<i32>("height").ok()?))
        })
        .map(|(w, h)| (w as u32, h as u32))
        .unwrap_or((0, 0));
    let _ = pipeline.set_state(gst::State::Null);
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => {}
        Some(gst::MessageView::Error(e)) => {
            panic!(
                "decoding {} failed: {} ({:?})",
                path.display(),
                e.error(),
                e.debug()
            )
        }
        _ => panic!("decoding {} did not finish within 120 s", path.display()),
    }
    let s = lock(&seen);
    ClipInfo {
        frames: s.frames,
        width,
        height,
        first_pts: s.first,
        last_pts: s.last,
    }
}

/// The duration `gst-discoverer-1.0` reports for a media file.
pub fn discover_duration(path: &Path) -> Duration {
    let out = Command::new("gst-discoverer-1.0")
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run gst-discoverer-1.0 ({e}); run deploy/setup.sh (gstreamer1.0-plugins-base-apps)")
        });
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Duration:"))
        .unwrap_or_else(|| panic!("no Duration in gst-discoverer-1.0 output:\n{text}"));
    // H:MM:SS.nnnnnnnnn
    let mut parts = line.trim().split(':');
    let (h, m, s) = (
        parts.next().and_then(|v| v.parse::<f64>().ok()),
        parts.next().and_then(|v| v.parse::<f64>().ok()),
        parts.next().and_then(|v| v.parse::<f64>().ok()),
    );
    match (h, m, s) {
        (Some(h), Some(m), Some(s)) => Duration::from_secs_f64(h * 3600.0 + m * 60.0 + s),
        _ => panic!("cannot parse gst-discoverer-1.0 duration {line:?}"),
    }
}

// ---------------------------------------------------------------- daemon

/// The `ocellus` binary cargo built for these tests.
pub fn ocellus_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ocellus"))
}

/// A command running `ocellus_bin()`, with `OCELLUS_MODELS` defaulting to
/// `models_dir()` and `RUST_BACKTRACE` to 1.
pub fn ocellus_command() -> Command {
    let mut cmd = Command::new(ocellus_bin());
    if std::env::var_os("OCELLUS_MODELS").is_none() {
        cmd.env("OCELLUS_MODELS", models_dir());
    }
    if std::env::var_os("RUST_BACKTRACE").is_none() {
        cmd.env("RUST_BACKTRACE", "1");
    }
    cmd
}

/// `ocellus run -c CONFIG EXTRA...` (see `ocellus_command`).
pub fn ocellus_run_command(config: &Path, extra: &[&str]) -> Command {
    let mut cmd = ocellus_command();
    cmd.arg("run").arg("-c").arg(config).args(extra);
    cmd
}

/// This test binary again, running only the test `NAME` of the module `module` (the
/// caller's `module_path!()`), exactly, on one thread: for a test that needs a process
/// of its own (process-wide counts, a server to kill). Add `--ignored` for an ignored
/// test.
pub fn rerun_this_test(module: &str, name: &str) -> Command {
    let exe = std::env::current_exe().expect("the path of the test binary");
    // `module_path!()` starts with the crate's name, test names do not.
    let test = match module.split_once("::") {
        Some((_, module)) => format!("{module}::{name}"),
        None => name.to_string(),
    };
    let mut cmd = Command::new(exe);
    cmd.arg(test).args(["--exact", "--test-threads", "1"]);
    cmd
}

/// Writes `toml` to `DIR/ocellus.toml` and returns that path.
pub fn write_config(dir: &Path, toml: &str) -> PathBuf {
    let path = dir.join("ocellus.toml");
    fs::write(&path, toml).expect("write config");
    path
}

/// Kills (and reaps) the child on drop: a failed assertion must not leave a helper
/// process running.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A child process (normally `ocellus run -c CONFIG ...`) whose stdout and
/// stderr are collected (and echoed to the test's stderr). Killed on drop.
pub struct Daemon {
    child: Child,
    name: String,
    output: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl Daemon {
    /// `ocellus run -c CONFIG EXTRA...`
    pub fn start(config: &Path, extra: &[&str]) -> Self {
        Self::start_with_env(config, extra, &[])
    }

    /// `ocellus run -c CONFIG EXTRA...` with extra environment variables.
    /// `OCELLUS_MODELS` defaults to `models_dir()` and `RUST_BACKTRACE` to 1.
    pub fn start_with_env(config: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = ocellus_run_command(config, extra);
        cmd.envs(env.iter().copied());
        Self::spawn("ocellus", cmd)
    }

    /// Any command, with the same output capture (used by the harness self-test).
    pub fn spawn(name: &str, mut cmd: Command) -> Self {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        let output = Arc::new(Mutex::new(String::new()));
        let pid = child.id();
        let mut readers = Vec::new();
        let streams: [(&str, Box<dyn Read + Send>); 2] = [
            ("out", Box::new(child.stdout.take().unwrap())),
            ("err", Box::new(child.stderr.take().unwrap())),
        ];
        for (stream, pipe) in streams {
            let out = Arc::clone(&output);
            let prefix = format!("[{name} {pid} {stream}]");
            readers.push(
                thread::Builder::new()
                    .name(format!("{name}-{stream}"))
                    .spawn(move || {
                        let mut r = BufReader::new(pipe);
                        let mut buf = Vec::new();
                        loop {
                            buf.clear();
                            match r.read_until(b'\n', &mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(_) => {
                                    let line = String::from_utf8_lossy(&buf);
                                    let line = line.trim_end_matches(['\n', '\r']);
                                    eprintln!("{prefix} {line}");
                                    let mut o = lock(&out);
                                    o.push_str(line);
                                    o.push('\n');
                                }
                            }
                        }
                    })
                    .expect("spawn output reader"),
            );
        }
        Daemon {
            child,
            name: name.to_string(),
            output,
            readers,
            status: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// stdout and stderr so far, line by line, interleaved as they arrived.
    pub fn output(&self) -> String {
        lock(&self.output).clone()
    }

    /// Waits until the output contains `needle`.
    pub fn wait_output(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || lock(&self.output).contains(needle))
    }

    /// The exit status if the process has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none()
            && let Ok(Some(s)) = self.child.try_wait()
        {
            self.status = Some(s);
            self.join_readers();
        }
        self.status
    }

    pub fn is_running(&mut self) -> bool {
        self.try_status().is_none()
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_status() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `timeout` for the process to exit by itself; panics (after
    /// SIGKILL) with the collected output when it does not.
    pub fn expect_exit(&mut self, timeout: Duration) -> ExitStatus {
        match self.wait_exit(timeout) {
            Some(s) => s,
            None => self.kill_and_panic(&format!("did not exit by itself within {timeout:?}")),
        }
    }

    /// Sends a signal by name ("TERM", "INT", "HUP", ...) with `kill`.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok && self.status.is_none() {
            eprintln!("[{}] kill -{sig} {} failed", self.name, self.pid());
        }
    }

    /// SIGKILL, then waits for the process.
    pub fn kill_hard(&mut self) -> ExitStatus {
        if let Some(s) = self.try_status() {
            return s;
        }
        let _ = self.child.kill();
        let s = self.child.wait().expect("wait for killed child");
        self.status = Some(s);
        self.join_readers();
        s
    }

    /// SIGTERM and waits up to 10 s for a clean exit; panics (after SIGKILL)
    /// with the collected output when the process does not exit in time.
    pub fn stop(&mut self) -> ExitStatus {
        self.stop_within(Duration::from_secs(10))
    }

    pub fn stop_within(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(s) = self.try_status() {
            return s;
        }
        self.signal("TERM");
        match self.wait_exit(timeout) {
            Some(s) => s,
            None => self.kill_and_panic(&format!("did not exit within {timeout:?} of SIGTERM")),
        }
    }

    fn kill_and_panic(&mut self, what: &str) -> ! {
        self.kill_hard();
        panic!(
            "{} (pid {}) {what}; its output:\n{}",
            self.name,
            self.pid(),
            self.output()
        );
    }

    /// Lets the reader threads drain the pipes (bounded: a grandchild could
    /// keep them open).
    fn join_readers(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.readers.iter().any(|h| !h.is_finished()) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        for h in std::mem::take(&mut self.readers) {
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The messages on `topic` in an outbox journal (`<state_dir>/outbox.jsonl`), in
/// order, each payload parsed as JSON (a UTF-8 payload is journaled as `text`).
pub fn journaled(journal: &Path, topic: &str) -> Vec<serde_json::Value> {
    fs::read_to_string(journal)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["topic"] == topic)
        .map(|m| {
            let text = m["text"]
                .as_str()
                .unwrap_or_else(|| panic!("journaled message is not text: {m}"));
            serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("journaled payload is not JSON ({e}): {text}"))
        })
        .collect()
}
