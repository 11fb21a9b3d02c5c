//! MQTT over TLS with username/password (mosquitto with a CA made at test time,
//! checked by mosquitto_sub as an independent client), a wrong password, and a
//! camera read over HTTP.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Daemon, free_port, make_clip, media, models_dir, ocellus_bin, write_config};

const PASSWORD: &str = "s3cret-Pa55";

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for 127.0.0.1, made with openssl.
fn make_certs(dir: &Path) {
    let d = |f: &str| dir.join(f);
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=ocellus test CA",
        ])
        .arg("-keyout")
        .arg(d("ca.key"))
        .arg("-out")
        .arg(d("ca.crt")));
    run(Command::new("openssl")
        .args([
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
        ])
        .arg("-keyout")
        .arg(d("server.key"))
        .arg("-out")
        .arg(d("server.csr")));
    std::fs::write(d("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(Command::new("openssl")
        .args(["x509", "-req", "-days", "2", "-CAcreateserial"])
        .arg("-in")
        .arg(d("server.csr"))
        .arg("-CA")
        .arg(d("ca.crt"))
        .arg("-CAkey")
        .arg(d("ca.key"))
        .arg("-extfile")
        .arg(d("san.ext"))
        .arg("-out")
        .arg(d("server.crt")));
}

struct TlsBroker {
    child: Child,
    port: u16,
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn tls_broker(dir: &Path) -> TlsBroker {
    make_certs(dir);
    run(Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(dir.join("passwd"))
        .args(["camuser", PASSWORD]));
    // mosquitto started as root drops to its own user: it must be able to read these.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for f in ["ca.crt", "server.crt", "server.key", "passwd"] {
        std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let port = free_port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\ncafile {ca}\ncertfile {crt}\nkeyfile {key}\nallow_anonymous false\npassword_file {pw}\npersistence false\nlog_dest stderr\n",
            ca = dir.join("ca.crt").display(),
            crt = dir.join("server.crt").display(),
            key = dir.join("server.key").display(),
            pw = dir.join("passwd").display(),
        ),
    )
    .unwrap();
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "TLS mosquitto did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    TlsBroker { child, port }
}

fn config(dir: &Path, port: u16, clip: &Path, password_file: &Path) -> std::path::PathBuf {
    write_config(
        dir,
        &format!(
            r#"
[mqtt]
url = "mqtts://127.0.0.1:{port}"
client_id = "ocellus-tls-test"
ca_file = "{ca}"
username = "camuser"
password_file = "{pw}"
keep_alive = "5s"

[models.coco]
family = "yolox"
dir = "{models}/yolox_nano_coco"
providers = ["cpu"]

[[cameras]]
id = "door"
url = "{clip}"
repeat = true
sample_fps = 2

[[cameras.queries]]
id = "person"
ask = "is there a person at the door?"
kind = "yes_no"
model = "coco"
label = "person"
"#,
            ca = dir.join("ca.crt").display(),
            pw = password_file.display(),
            models = models_dir().display(),
            clip = clip.display(),
        ),
    )
}

#[test]
fn mqtts_with_ca_file_and_password_file_delivers_state() {
    let dir = tempfile::tempdir().unwrap();
    let broker = tls_broker(dir.path());
    let clip = dir.path().join("person.mkv");
    make_clip(&clip, &[(&media("astronaut.png"), 2.0)], 320, 240, 10);
    let pw = dir.path().join("mqtt.pass");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let cfg = config(dir.path(), broker.port, &clip, &pw);
    let mut daemon = Daemon::start(&cfg, &[]);

    // An independent client over TLS with the same credentials sees the retained state.
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut seen = String::new();
    while Instant::now() < deadline && !seen.contains("ocellus/door/query/person/state ON") {
        let out = Command::new("mosquitto_sub")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &broker.port.to_string(),
                "-u",
                "camuser",
                "-P",
                PASSWORD,
            ])
            .arg("--cafile")
            .arg(dir.path().join("ca.crt"))
            .args(["-t", "ocellus/#", "-v", "-W", "3"])
            .output()
            .unwrap();
        seen = String::from_utf8_lossy(&out.stdout).into_owned();
    }
    assert!(
        seen.contains("ocellus/status online"),
        "no online status over TLS: {seen}"
    );
    assert!(
        seen.contains("ocellus/door/query/person/state ON"),
        "no person state over TLS: {seen}"
    );
    let status = daemon.stop();
    assert!(status.success(), "daemon exit {status:?}");
    assert!(
        daemon
            .output()
            .contains("mqtt: connected to mqtts://127.0.0.1"),
        "{}",
        daemon.output()
    );
    assert!(
        !daemon.output().contains(PASSWORD),
        "the password must never be logged"
    );
}

#[test]
fn wrong_password_is_one_clear_error_and_the_daemon_keeps_running() {
    let dir = tempfile::tempdir().unwrap();
    let broker = tls_broker(dir.path());
    let clip = dir.path().join("person.mkv");
    make_clip(&clip, &[(&media("astronaut.png"), 2.0)], 320, 240, 10);
    let pw = dir.path().join("mqtt.pass");
    std::fs::write(&pw, "not-the-password\n").unwrap();
    let cfg = config(dir.path(), broker.port, &clip, &pw);
    let mut daemon = Daemon::start(&cfg, &[]);
    let url = format!("mqtt: broker mqtts://127.0.0.1:{} unreachable", broker.port);
    assert!(
        daemon.wait_output(&url, Duration::from_secs(30)),
        "{}",
        daemon.output()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        daemon.is_running(),
        "the daemon must keep running while the broker refuses it"
    );
    let out = daemon.output();
    let line = out.lines().find(|l| l.contains(&url)).unwrap();
    assert!(
        line.to_lowercase().contains("refused")
            || line.contains("NotAuthorized")
            || line.contains("BadUserName"),
        "{line}"
    );
    assert_eq!(
        out.matches(&url).count(),
        1,
        "the refusal is reported once, not per retry:\n{out}"
    );
    assert!(
        !out.contains("not-the-password"),
        "the password must never be logged"
    );
    daemon.stop();
}

/// A camera URL over HTTP (souphttpsrc behind uridecodebin).
#[test]
fn http_clip_is_decoded_and_answered() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("door.mkv");
    make_clip(&clip, &[(&media("astronaut.png"), 2.0)], 320, 240, 10);
    let port = free_port();
    let mut server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
            "--directory",
        ])
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 http.server");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "http server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let pw = dir.path().join("unused.pass");
    std::fs::write(&pw, "x").unwrap();
    let cfg = config(dir.path(), 1, &clip, &pw);
    let out = Command::new(ocellus_bin())
        .arg("ask")
        .arg(format!("http://127.0.0.1:{port}/door.mkv"))
        .arg("-c")
        .arg(&cfg)
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ask over http failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let frames: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        frames.len() >= 3,
        "expected ~4 evaluated frames at 2 fps over 2 s, got {}",
        frames.len()
    );
    for f in &frames {
        let person = f["detections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["label"] == "person" && d["score"].as_f64().unwrap() > 0.8);
        assert!(person, "person not detected in {f}");
    }
}
