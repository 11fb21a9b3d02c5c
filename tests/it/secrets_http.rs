//! Secrets never leak and the HTTP API answers only its own clients (issue 12,
//! findings 8 and 9), through the real binary:
//!
//! - a password from `${VAR}` holding `"`, `\`, a newline and `"\nbogus = 1` passes
//!   `check`, logs in to a real mosquitto that has exactly that password, survives a
//!   `POST /api/reload`, and appears nowhere in stdout, stderr or an HTTP body; a
//!   reload that fails names the variable and the key, not the value;
//! - a broker URL with `user:password@` is refused by `check` and by `run --mqtt-url`,
//!   without the password in the output;
//! - camera URLs with `?pwd=` (RTSP, refused; HTTP, 404 from a real server whose
//!   GStreamer error quotes the URL) are shown as `?pwd=***` in logs and
//!   `/api/cameras`;
//! - a foreign `Host` is refused (421) on every route, even with the right token; the
//!   allowed names pass; a foreign `Origin` cannot POST, PUT or DELETE (403); a wrong
//!   or missing token is 401; an empty token (literal or `${VAR}`) or token file is
//!   refused by `check`.

use crate::common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(60);

/// Every character that broke (or silently changed) a config when `${VAR}` was pasted
/// into the TOML text: a quote, a backslash, a newline, and a would-be TOML key.
const PASSWORD: &str = "pa\"ss\\wo\"\nbogus = 1\n[evil]\nk = \"";
/// Pieces of `PASSWORD` that must not appear in any output.
const PASSWORD_PIECES: [&str; 3] = ["pa\"ss", "ss\\wo", "pa\\\"ss"];
const TOKEN: &str = "tok-S3cretHttp";
const CAMERA_SECRET: &str = "S3cretCam";

fn assert_secret_free(what: &str, text: &str) {
    for piece in PASSWORD_PIECES.iter().chain([&TOKEN, &CAMERA_SECRET]) {
        assert!(
            !text.contains(piece),
            "{what} holds the secret {piece:?}:\n{text}"
        );
    }
}

/// `ocellus check -c CFG` with `env`.
fn check(cfg: &Path, env: &[(&str, &str)]) -> Out {
    run_ocellus(&["check", "-c", &cfg.to_string_lossy()], env)
}

fn secret_config(dir: &Path, broker: &str, http: u16, password: &str) -> std::path::PathBuf {
    write_config(
        dir,
        &format!(
            "[mqtt]\nurl = {}\nclient_id = {}\nusername = \"camuser\"\npassword = {}\nkeep_alive = \"5s\"\n\n\
             [http]\nlisten = \"127.0.0.1:{http}\"\ntoken = \"${{OCELLUS_TEST_HTTP_TOKEN}}\"\n\n\
             [[cameras]]\nid = \"door\"\nurl = \"rtsp://127.0.0.1:1/x?pwd={CAMERA_SECRET}\"\n\
             frame_timeout = \"2s\"\nreconnect_max = \"1s\"\n",
            toml_str(broker),
            toml_str(&client_id("secrets")),
            toml_str(password),
        ),
    )
}

/// The retained `ocellus/status` as an independent client logged in as `camuser`
/// with `password` sees it ("" when the broker refuses it).
fn status_seen_with(broker: &Mosquitto, password: &str) -> String {
    let out = Command::new("mosquitto_sub")
        .args(["-h", "127.0.0.1", "-p", &broker.port().to_string()])
        .args(["-u", "camuser", "-P", password])
        .args(["-t", "ocellus/status", "-C", "1", "-W", "3"])
        .stdin(Stdio::null())
        .output()
        .expect("mosquitto_sub");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn a_password_with_quotes_backslashes_and_newlines_arrives_intact_and_is_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start_with_users(&[("camuser", PASSWORD)]);
    let port = free_port();
    let cfg = secret_config(
        dir.path(),
        &broker.url(),
        port,
        "${OCELLUS_TEST_MQTT_PASSWORD}",
    );
    let env = [
        ("OCELLUS_TEST_MQTT_PASSWORD", PASSWORD),
        ("OCELLUS_TEST_HTTP_TOKEN", TOKEN),
    ];

    let out = check(&cfg, &env);
    assert_eq!(out.code, Some(0), "{}", out.show());
    assert!(out.stdout.contains(": ok (1 cameras"), "{}", out.show());
    assert_secret_free("check's output", &out.show());

    let mut daemon = Daemon::start_with_env(&cfg, &[], &env);
    // The broker accepts exactly this password: the value reached the client intact.
    let mut seen = String::new();
    assert!(
        wait_until(WAIT, || {
            seen = status_seen_with(&broker, PASSWORD);
            seen == "online"
        }),
        "no online status with the password: {seen:?}\n{}",
        daemon.output()
    );
    assert_eq!(
        status_seen_with(&broker, "pa\"ss\\wo\""),
        "",
        "a prefix must not log in"
    );

    let reload = http(port, "POST", "/api/reload", Some(TOKEN), b"").expect("reload");
    assert_eq!(reload.status, 200, "{}", reload.text());
    assert_secret_free("the reload reply", &reload.text());

    // A reload that fails says which variable and key, not the value.
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg).unwrap().replace(
            "OCELLUS_TEST_MQTT_PASSWORD",
            "OCELLUS_TEST_NOT_SET_ANYWHERE",
        ),
    )
    .unwrap();
    let reload = http(port, "POST", "/api/reload", Some(TOKEN), b"").expect("reload");
    assert_eq!(reload.status, 400, "{}", reload.text());
    assert!(
        reload.json()["error"].as_str().unwrap().contains(
            "mqtt.password: environment variable OCELLUS_TEST_NOT_SET_ANYWHERE is not set"
        ),
        "{}",
        reload.text()
    );

    // The camera's URL is shown with its secret hidden, in the API and in the log.
    let cams = http(port, "GET", "/api/cameras", Some(TOKEN), b"").expect("cameras");
    assert_eq!(
        cams.json()["cameras"][0]["url"],
        "rtsp://127.0.0.1:1/x?pwd=***",
        "{}",
        cams.text()
    );
    assert!(
        daemon.wait_output("camera door: rtsp://127.0.0.1:1/x?pwd=***", WAIT),
        "{}",
        daemon.output()
    );
    assert!(daemon.stop().success(), "{}", daemon.output());
    assert_secret_free("the daemon's output", &daemon.output());
}

#[test]
fn a_broker_url_with_credentials_is_refused_and_never_printed() {
    let dir = tempfile::tempdir().unwrap();
    let cams = "[[cameras]]\nid = \"door\"\nurl = \"rtsp://127.0.0.1:1/x\"\n";
    let cfg = write_config(
        dir.path(),
        &format!("[mqtt]\nurl = \"mqtt://alice:S3cretPW@127.0.0.1:1883\"\n\n{cams}"),
    );
    let out = check(&cfg, &[]);
    assert_eq!(out.code, Some(1), "{}", out.show());
    assert!(
        out.stdout.contains(
            "mqtt.url: holds a user name or password (user:password@host): put them in mqtt.username and mqtt.password_file"
        ),
        "{}",
        out.show()
    );
    assert!(!out.show().contains("S3cretPW"), "{}", out.show());

    let cfg = write_config(dir.path(), cams);
    let out = run_ocellus(
        &[
            "run",
            "-c",
            &cfg.to_string_lossy(),
            "--mqtt-url",
            "mqtt://alice:S3cretPW@127.0.0.1:1",
        ],
        &[],
    );
    assert_eq!(out.code, Some(1), "{}", out.show());
    assert!(
        out.stderr
            .contains("--mqtt-url holds a user name or password"),
        "{}",
        out.show()
    );
    assert!(!out.show().contains("S3cretPW"), "{}", out.show());
}

/// A camera URL's `?pwd=` never shows: an RTSP server that is not there, and a real
/// HTTP server answering 404 (souphttpsrc's error quotes the URL it fetched).
#[test]
fn camera_url_secrets_are_redacted_in_every_error() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .arg("--directory")
        .arg(dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 http.server");
    let _server = KillOnDrop(server);
    assert!(
        wait_until(Duration::from_secs(10), || port_accepts(port)),
        "http server did not start"
    );
    let cfg = write_config(
        dir.path(),
        "[[cameras]]\nid = \"door\"\nurl = \"rtsp://127.0.0.1:1/unused\"\n",
    );
    for (url, shown) in [
        (
            format!("rtsp://127.0.0.1:1/x?pwd={CAMERA_SECRET}"),
            "rtsp://127.0.0.1:1/x?pwd=***".to_string(),
        ),
        (
            format!(
                "http://bob:{CAMERA_SECRET}@127.0.0.1:{port}/missing.mkv?pwd={CAMERA_SECRET}&channel=1"
            ),
            format!("http://bob:***@127.0.0.1:{port}/missing.mkv?pwd=***&channel=1"),
        ),
    ] {
        let out = run_ocellus(
            &["ask", &url, "-c", &cfg.to_string_lossy()],
            &[("OCELLUS_LOG", "debug")],
        );
        assert_eq!(out.code, Some(1), "{}", out.show());
        let errors = out.log("ERROR");
        assert!(
            errors
                .iter()
                .any(|l| l.contains(&format!("camera door: {shown}: "))),
            "{}",
            out.show()
        );
        assert!(!out.show().contains(CAMERA_SECRET), "{}", out.show());
    }
}

fn guarded_config(dir: &Path, port: u16) -> std::path::PathBuf {
    write_config(
        dir,
        &format!(
            "[http]\nlisten = \"127.0.0.1:{port}\"\ntoken = \"{TOKEN}\"\nallowed_hosts = [\"ocellus.example.com\"]\n\n\
             [[cameras]]\nid = \"door\"\nurl = \"rtsp://127.0.0.1:1/x\"\nframe_timeout = \"2s\"\nreconnect_max = \"1s\"\n"
        ),
    )
}

/// Every route, with a body where it takes one.
const ROUTES: [(&str, &str, &[u8]); 8] = [
    ("GET", "/healthz", b""),
    ("GET", "/metrics", b""),
    ("GET", "/api/cameras", b""),
    ("GET", "/api/cameras/door/snapshot.jpg", b""),
    ("GET", "/api/queries", b""),
    (
        "PUT",
        "/api/queries/door/parcel",
        br#"{"ask":"a parcel?","kind":"yes_no","model":"nope"}"#,
    ),
    ("DELETE", "/api/queries/door/parcel", b""),
    ("POST", "/api/reload", b""),
];

fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> HttpResponse {
    http_with(port, method, path, headers, body)
        .unwrap_or_else(|| panic!("{method} {path}: no answer"))
}

#[test]
fn foreign_hosts_and_origins_are_refused_and_tokens_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = guarded_config(dir.path(), port);
    let mut daemon = Daemon::start(&cfg, &[]);
    assert!(
        wait_until(WAIT, || http(port, "GET", "/healthz", Some(TOKEN), b"")
            .is_some()),
        "HTTP did not come up:\n{}",
        daemon.output()
    );
    let bearer = format!("Bearer {TOKEN}");
    let auth = ("Authorization", bearer.as_str());
    let reloads = |d: &Daemon| d.output().matches("reload: ").count();

    // DNS rebinding: a name that is not the daemon's, on every route, token or not.
    let before = reloads(&daemon);
    for foreign in [
        "attacker.example",
        &format!("attacker.example:{port}"),
        "127.0.0.1.nip.io",
    ] {
        for (method, path, body) in ROUTES {
            for headers in [vec![("Host", foreign), auth], vec![("Host", foreign)]] {
                let r = request(port, method, path, &headers, body);
                assert_eq!(
                    r.status,
                    421,
                    "{method} {path} Host {foreign}: {}",
                    r.text()
                );
                assert!(
                    r.json()["error"]
                        .as_str()
                        .unwrap()
                        .contains("[http] allowed_hosts"),
                    "{}",
                    r.text()
                );
            }
        }
    }
    assert_eq!(reloads(&daemon), before, "a refused reload must not run");

    // The daemon's own names pass (to the token check, then the route).
    let localhost = format!("localhost:{port}");
    let v6 = format!("[::1]:{port}");
    for host in [
        localhost.as_str(),
        v6.as_str(),
        "ocellus.example.com",
        "OCELLUS.example.com:443",
    ] {
        for (method, path, body) in ROUTES {
            let r = request(port, method, path, &[("Host", host), auth], body);
            assert!(
                ![401, 403, 421].contains(&r.status),
                "{method} {path} Host {host}: {} {}",
                r.status,
                r.text()
            );
            let r = request(port, method, path, &[("Host", host)], body);
            assert_eq!(r.status, 401, "{method} {path} Host {host} without token");
        }
    }
    assert!(reloads(&daemon) > before, "the allowed reloads ran");

    // Wrong or malformed tokens.
    for wrong in [
        "Bearer tok-S3cretHttX".to_string(),
        format!("Bearer {TOKEN}x"),
        format!("Basic {TOKEN}"),
        TOKEN.to_string(),
        "Bearer ".to_string(),
    ] {
        for (method, path, body) in ROUTES {
            let r = request(port, method, path, &[("Authorization", &wrong)], body);
            assert_eq!(r.status, 401, "{method} {path} with {wrong:?}");
            assert_eq!(r.header("www-authenticate"), Some("Bearer"));
        }
    }

    // A web page elsewhere cannot change anything, even knowing the token.
    let own = format!("http://127.0.0.1:{port}");
    for (method, path, body) in ROUTES.iter().filter(|(m, _, _)| *m != "GET") {
        for origin in ["http://attacker.example", "http://localhost:3000", "null"] {
            let r = request(port, method, path, &[auth, ("Origin", origin)], body);
            assert_eq!(
                r.status,
                403,
                "{method} {path} Origin {origin}: {}",
                r.text()
            );
        }
        for origin in [own.as_str(), "https://ocellus.example.com"] {
            let r = request(port, method, path, &[auth, ("Origin", origin)], body);
            assert!(
                ![401, 403, 421].contains(&r.status),
                "{method} {path} Origin {origin}: {}",
                r.text()
            );
        }
    }
    // Reading is not changing: the browser keeps a cross-origin read from the page.
    let r = request(
        port,
        "GET",
        "/api/queries",
        &[auth, ("Origin", "http://attacker.example")],
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());

    assert!(daemon.stop().success(), "{}", daemon.output());
    let out = daemon.output();
    assert_eq!(
        out.matches("http: refused: Host").count(),
        1,
        "the first refused Host is logged once, later ones at debug:\n{out}"
    );
    assert!(!out.contains(TOKEN), "{out}");
}

#[test]
fn check_refuses_empty_tokens_and_token_files() {
    let dir = tempfile::tempdir().unwrap();
    let cams = "[[cameras]]\nid = \"door\"\nurl = \"rtsp://127.0.0.1:1/x\"\n";
    let empty_file = dir.path().join("token");
    std::fs::write(&empty_file, "\n").unwrap();
    for (http, expect) in [
        ("token = \"\"", "http.token: is empty"),
        (
            "listen = \"0.0.0.0:9380\"\ntoken = \"  \"",
            "http.token: is empty",
        ),
        (
            "token = \"${OCELLUS_TEST_EMPTY_TOKEN}\"",
            "http.token: is empty",
        ),
        (
            &format!("token_file = {}", toml_path(&empty_file)) as &str,
            "http.token_file: ",
        ),
    ] {
        let cfg = write_config(dir.path(), &format!("[http]\n{http}\n\n{cams}"));
        let out = check(&cfg, &[("OCELLUS_TEST_EMPTY_TOKEN", "")]);
        assert_eq!(out.code, Some(1), "{http}: {}", out.show());
        assert!(
            out.stdout
                .lines()
                .any(|l| l.trim_start().starts_with(expect)
                    && (expect != "http.token_file: " || l.ends_with(": is empty"))),
            "{http}: {}",
            out.show()
        );
    }
    // The guard of a non-loopback listener is not satisfied by an empty token.
    let cfg = write_config(
        dir.path(),
        &format!(
            "[http]\nlisten = \"0.0.0.0:9380\"\ntoken = \"${{OCELLUS_TEST_EMPTY_TOKEN}}\"\n\n{cams}"
        ),
    );
    let out = run_ocellus(
        &["run", "-c", &cfg.to_string_lossy()],
        &[("OCELLUS_TEST_EMPTY_TOKEN", "")],
    );
    assert_eq!(out.code, Some(1), "{}", out.show());
    assert!(
        out.show().contains("http.token: is empty"),
        "{}",
        out.show()
    );
}
