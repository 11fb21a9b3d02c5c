//! A private mosquitto broker per test (`Mosquitto`): on a free port, optionally with
//! users or more configuration, stopped and started again on the same port, its log
//! kept.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{find_program, free_port, port_accepts};

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
