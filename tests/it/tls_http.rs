//! MQTT over TLS with username/password (mosquitto with a CA made at test time,
//! checked by mosquitto_sub as an independent client), a wrong password, and a
//! camera read over HTTP.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{
    Daemon, KillOnDrop, free_port, make_clip, media, person_query, port_accepts, run_ocellus,
    toml_path, wait_until, write_config, yolox_dir, yolox_model,
};

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
    _child: KillOnDrop,
    port: u16,
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
    let broker = TlsBroker {
        _child: KillOnDrop(child),
        port,
    };
    assert!(
        wait_until(Duration::from_secs(10), || port_accepts(port)),
        "TLS mosquitto did not start"
    );
    broker
}

fn config(dir: &Path, port: u16, clip: &Path, password_file: &Path) -> PathBuf {
    write_config(
        dir,
        &format!(
            r#"
[mqtt]
url = "mqtts://127.0.0.1:{port}"
client_id = "ocellus-tls-test"
ca_file = {ca}
username = "camuser"
password_file = {pw}
keep_alive = "5s"

{model}
[[cameras]]
realtime = false
id = "door"
url = {clip}
repeat = true
sample_fps = 2

{query}"#,
            ca = toml_path(&dir.join("ca.crt")),
            pw = toml_path(password_file),
            model = yolox_model(&yolox_dir(), ""),
            clip = toml_path(clip),
            query = person_query(""),
        ),
    )
}

/// A 2 s clip of the astronaut at 320x240, as `DIR/NAME`.
fn person_clip(dir: &Path, name: &str) -> PathBuf {
    let clip = dir.join(name);
    make_clip(&clip, &[(&media("astronaut.png"), 2.0)], 320, 240, 10);
    clip
}

/// A TLS broker with a password file, a 2 s clip of the astronaut, and the daemon
/// watching it (looping) and logging in with `password`.
fn start_tls_daemon(dir: &Path, password: &str) -> (TlsBroker, Daemon) {
    let broker = tls_broker(dir);
    let clip = person_clip(dir, "person.mkv");
    let pw = dir.join("mqtt.pass");
    std::fs::write(&pw, format!("{password}\n")).unwrap();
    let cfg = config(dir, broker.port, &clip, &pw);
    (broker, Daemon::start(&cfg, &[]))
}

#[test]
fn mqtts_with_ca_file_and_password_file_delivers_state() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, mut daemon) = start_tls_daemon(dir.path(), PASSWORD);

    // An independent client over TLS with the same credentials sees the retained state.
    let mut seen = String::new();
    wait_until(Duration::from_secs(40), || {
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
        seen.contains("ocellus/door/query/person/state ON")
    });
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
    let (broker, mut daemon) = start_tls_daemon(dir.path(), "not-the-password");
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
    let clip = person_clip(dir.path(), "door.mkv");
    let port = free_port();
    let server = Command::new("python3")
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
    let server = KillOnDrop(server);
    assert!(
        wait_until(Duration::from_secs(10), || port_accepts(port)),
        "http server did not start"
    );
    let pw = dir.path().join("unused.pass");
    std::fs::write(&pw, "x").unwrap();
    let cfg = config(dir.path(), 1, &clip, &pw);
    let out = run_ocellus(
        &[
            "ask",
            &format!("http://127.0.0.1:{port}/door.mkv"),
            "-c",
            &cfg.to_string_lossy(),
        ],
        &[],
    );
    drop(server);
    assert_eq!(out.code, Some(0), "ask over http failed:\n{}", out.show());
    let frames = out.json_lines();
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
