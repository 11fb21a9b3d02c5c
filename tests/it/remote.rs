//! Served VLMs (`openai`, `ollama` families) through the real binary against a strict
//! local server of each dialect (`common::vlm_server`): every query kind from config to
//! its answer (yes/no from log-probabilities, and from a JSON answer where the server
//! gives none; classify from a JSON enum; captions; boxes in both conventions,
//! normalised, inside a region too); what a user relies on when the server misbehaves
//! (429 with `Retry-After`, 500, a malformed reply, a timeout, a refused connection);
//! and in the daemon over MQTT, the circuit breaker (the model goes `offline`, the
//! query's entity with it, no alert, back `online` after a probe), the hourly budget,
//! and a server that never answers while the per-frame detector keeps publishing.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::vlm_server::{Api, Brain, Fault, VlmServer, prompt_of};
use common::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

fn remote_model(name: &str, family: &str, server: &VlmServer, extra: &str) -> String {
    format!(
        "[models.{name}]\nfamily = {}\nurl = {}\nmodel = \"served-vlm\"\n{extra}\n\n",
        toml_str(family),
        toml_str(&server.url()),
    )
}

fn query(id: &str, kind: &str, model: &str, extra: &str) -> String {
    format!(
        "[[cameras.queries]]\nid = {}\nkind = {}\nmodel = {}\n{extra}\n\n",
        toml_str(id),
        toml_str(kind),
        toml_str(model)
    )
}

fn eval<'a>(lines: &'a [Value], id: &str) -> &'a Value {
    lines
        .iter()
        .filter_map(|l| l["queries"].as_array())
        .flatten()
        .find(|q| q["id"] == id)
        .unwrap_or_else(|| panic!("no evaluation of {id} in {lines:#?}"))
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-3
}

/// The four kinds a served model answers on a still photo, in one `ocellus ask`.
fn kinds_config(
    dir: &Path,
    family: &str,
    server: &VlmServer,
    key_file: &Path,
) -> std::path::PathBuf {
    write_config(
        dir,
        &format!(
            "{}[[cameras]]\nrealtime = false\nid = \"desk\"\nurl = \"unused.png\"\n\n{}{}{}{}{}",
            remote_model(
                "vlm",
                family,
                server,
                &format!("api_key_file = {}\nmax_side = 768", toml_path(key_file))
            ),
            query("cat", "yes_no", "vlm", "ask = \"Is there a cat?\""),
            query(
                "animal",
                "classify",
                "vlm",
                "ask = \"\"\nlabels = [\"dog\", \"cat\", \"bird\"]"
            ),
            query("scene", "caption", "vlm", "ask = \"\""),
            query("cats", "detect", "vlm", "ask = \"\"\nlabels = [\"cat\"]"),
            query(
                "ears",
                "ground",
                "vlm",
                "ask = \"the ears\"\nregion = [0.0, 0.0, 0.5, 0.5]"
            ),
        ),
    )
}

const BOXES: &str = r#"```json
[{"label": "cat", "bbox_2d": [45.1, 30, 225.5, 150]}, {"label": "ear", "box_2d": [0, 0, 500, 1000]}]
```"#;

#[test]
fn an_openai_compatible_server_answers_every_kind_with_logprobs_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "sk-test-123\n").unwrap();
    let server = VlmServer::start(Api::OpenAi, "served-vlm", Some("sk-test-123"));
    server.set_brain(Brain {
        p_yes: 0.9,
        logprobs: true,
        label: "Cat".into(),
        boxes: BOXES.into(),
        text: "A cat on a red blanket.".into(),
    });
    let cfg = kinds_config(dir.path(), "openai", &server, &key);
    let out = run_ocellus(
        &[
            "ask",
            &media("chelsea.png").to_string_lossy(),
            "-c",
            &cfg.to_string_lossy(),
        ],
        &[],
    );
    assert_eq!(out.code, Some(0), "{}", out.show());
    assert!(!out.show().contains("sk-test-123"), "the key was logged");
    assert_eq!(server.violations(), Vec::<String>::new());
    let lines = out.json_lines();

    let cat = eval(&lines, "cat");
    assert_eq!(cat["state"], "ON", "{cat}");
    assert!(close(cat["score"].as_f64().unwrap(), 0.9), "{cat}");
    assert_eq!(cat["score_from"], "logprobs");
    let animal = eval(&lines, "animal");
    assert_eq!(animal["state"], "cat", "the configured spelling: {animal}");
    assert!(
        close(animal["confidence"].as_f64().unwrap(), 0.75),
        "{animal}"
    );
    assert_eq!(eval(&lines, "scene")["state"], "A cat on a red blanket.");
    assert_eq!(eval(&lines, "cats")["state"], 1, "only the cat is a cat");
    assert_eq!(eval(&lines, "ears")["state"], 2);

    // Boxes: bbox_2d in the sent image's pixels (451x300, the photo's own size under
    // max_side) and box_2d on a 0–1000 grid, y first; the region's mapped to the frame.
    let boxes: Vec<(String, Vec<f64>)> = lines
        .iter()
        .filter_map(|l| l["detections"].as_array())
        .flatten()
        .map(|d| {
            let b = d["box"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect();
            (d["label"].as_str().unwrap().to_string(), b)
        })
        .collect();
    let near = |a: &[f64], b: [f64; 4]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 2e-3);
    assert!(
        boxes
            .iter()
            .any(|(l, b)| l == "cat" && near(b, [0.1, 0.1, 0.5, 0.5])),
        "{boxes:?}"
    );
    assert!(
        boxes
            .iter()
            .any(|(l, b)| l == "ear" && near(b, [0.0, 0.0, 0.5, 0.25])),
        "the ground query's region [0, 0, 0.5, 0.5] maps the whole-width box: {boxes:?}"
    );

    // What went over the wire: one image per (model, region) of the frame, shared by
    // the queries asking it; yes/no as one token with the top 20 log-probabilities;
    // classify constrained to the labels.
    let seen = server.seen();
    assert_eq!(seen.len(), 5, "{seen:#?}");
    assert!(
        seen.iter()
            .all(|s| s.header("authorization") == Some("Bearer sk-test-123"))
    );
    let whole: Vec<_> = seen
        .iter()
        .filter(|s| s.image == Some((451, 300)))
        .collect();
    assert_eq!(
        whole.len(),
        4,
        "{:?}",
        seen.iter().map(|s| s.image).collect::<Vec<_>>()
    );
    let yes_no = seen
        .iter()
        .find(|s| s.body.get("logprobs").is_some())
        .expect("a logprobs request");
    assert_eq!(yes_no.body["max_tokens"], 1);
    assert_eq!(yes_no.body["top_logprobs"], 20);
    assert!(prompt_of(Api::OpenAi, &yes_no.body).starts_with("Is there a cat?"));
    let classify = seen
        .iter()
        .find(|s| s.body.get("response_format").is_some())
        .expect("a schema request");
    assert_eq!(
        classify.body["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"],
        serde_json::json!(["dog", "cat", "bird"])
    );
}

#[test]
fn an_ollama_server_without_logprobs_is_asked_for_json_from_then_on() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    std::fs::write(&key, "ollama-key").unwrap();
    let server = VlmServer::start(Api::Ollama, "served-vlm", Some("ollama-key"));
    server.set_brain(Brain {
        p_yes: 0.2,
        logprobs: false,
        label: "bird".into(),
        boxes: "[]".into(),
        text: "  A cat.  ".into(),
    });
    let cfg = kinds_config(dir.path(), "ollama", &server, &key);
    let out = run_ocellus(
        &[
            "ask",
            &media("chelsea.png").to_string_lossy(),
            "-c",
            &cfg.to_string_lossy(),
        ],
        &[],
    );
    assert_eq!(out.code, Some(0), "{}", out.show());
    assert_eq!(server.violations(), Vec::<String>::new());
    let lines = out.json_lines();
    let cat = eval(&lines, "cat");
    assert_eq!(cat["state"], "OFF", "{cat}");
    assert!(
        close(cat["score"].as_f64().unwrap(), 0.2),
        "p(yes) = 1 - 0.8: {cat}"
    );
    assert_eq!(cat["score_from"], "json");
    assert_eq!(eval(&lines, "animal")["state"], "bird");
    assert_eq!(eval(&lines, "scene")["state"], "A cat.");
    assert_eq!(
        eval(&lines, "cats")["state"],
        0,
        "an empty list is an answer"
    );
    assert!(
        out.show()
            .contains("no token log-probabilities from the server"),
        "{}",
        out.show()
    );
    // The logprobs request, then the same question as a JSON schema in `format`.
    let seen = server.seen();
    let asks: Vec<_> = seen
        .iter()
        .filter(|s| prompt_of(Api::Ollama, &s.body).starts_with("Is there a cat?"))
        .collect();
    assert_eq!(asks.len(), 2, "{asks:#?}");
    assert_eq!(asks[0].body["logprobs"], true);
    assert_eq!(asks[0].body["options"]["num_predict"], 1);
    assert_eq!(
        asks[1].body["format"]["properties"]["answer"]["enum"],
        serde_json::json!(["yes", "no"])
    );
    assert!(asks[1].body.get("logprobs").is_none());
}

/// `ocellus ask` of one yes/no question on the photo; the report lines and the output.
fn ask_once(dir: &Path, url: &str, extra: &str) -> (Vec<Value>, Out) {
    let cfg = write_config(
        dir,
        &format!(
            "[models.vlm]\nfamily = \"openai\"\nurl = {}\nmodel = \"served-vlm\"\n{extra}\n\n\
             [[cameras]]\nrealtime = false\nid = \"desk\"\nurl = \"unused.png\"\n\n{}",
            toml_str(url),
            query("cat", "yes_no", "vlm", "ask = \"Is there a cat?\""),
        ),
    );
    let out = run_ocellus(
        &[
            "ask",
            &media("chelsea.png").to_string_lossy(),
            "-c",
            &cfg.to_string_lossy(),
        ],
        &[],
    );
    out.assert_no_panic();
    let lines = out.json_lines();
    (lines, out)
}

fn errors(lines: &[Value]) -> String {
    lines
        .iter()
        .filter_map(|l| l["errors"].as_array())
        .flatten()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn retries_honour_retry_after_and_failures_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = VlmServer::start(Api::OpenAi, "served-vlm", None);

    // 429 with Retry-After: 1 s, then an answer.
    server.push_fault(Fault::Status(429, Some(1)));
    let (lines, out) = ask_once(dir.path(), &server.url(), "retries = 2");
    assert_eq!(eval(&lines, "cat")["state"], "ON", "{}", out.show());
    let seen = server.seen();
    assert_eq!(seen.len(), 2);
    let waited = seen[1].at - seen[0].at;
    assert!(waited >= Duration::from_secs(1), "retried after {waited:?}");

    // 500 twice, then an answer: within retries = 2.
    let server = VlmServer::start(Api::OpenAi, "served-vlm", None);
    server.push_fault(Fault::Status(500, None));
    server.push_fault(Fault::Status(503, None));
    let (lines, _) = ask_once(dir.path(), &server.url(), "retries = 2");
    assert_eq!(eval(&lines, "cat")["state"], "ON");
    assert_eq!(server.seen().len(), 3);

    // A 400 is not retried; its message is kept.
    let server = VlmServer::start(Api::OpenAi, "served-vlm", None);
    server.push_fault(Fault::Status(400, None));
    let (lines, _) = ask_once(
        dir.path(),
        &server.url(),
        "retries = 2\nyes_no = \"logprobs\"",
    );
    let e = errors(&lines);
    assert!(e.contains("HTTP 400: injected 400"), "{e}");
    assert_eq!(server.seen().len(), 1, "a 400 is final");

    // A malformed reply: named, not retried, no state.
    let server = VlmServer::start(Api::OpenAi, "served-vlm", None);
    server.push_fault(Fault::Body("<html>502 Bad Gateway</html>".into()));
    let (lines, _) = ask_once(dir.path(), &server.url(), "");
    let e = errors(&lines);
    assert!(e.contains("malformed reply: not JSON"), "{e}");
    assert!(
        lines
            .iter()
            .all(|l| l["queries"].as_array().is_none_or(Vec::is_empty)),
        "{lines:#?}"
    );

    // A reply whose first token is neither yes nor no.
    let server = VlmServer::start(Api::OpenAi, "served-vlm", None);
    let body = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"The"},
        "logprobs":{"content":[{"token":"The","logprob":-0.1,"top_logprobs":[{"token":"The","logprob":-0.1}]}]}}]}"#;
    server.push_fault(Fault::Body(body.into()));
    let (lines, _) = ask_once(dir.path(), &server.url(), "yes_no = \"logprobs\"");
    assert!(
        errors(&lines).contains("neither yes nor no"),
        "{}",
        errors(&lines)
    );

    // A server that ignores max_tokens: the answer is cut to 4096 characters.
    let server = VlmServer::start(Api::OpenAi, "served-vlm", None);
    server.set_brain(Brain {
        text: "blah ".repeat(100_000),
        ..Brain::default()
    });
    let cfg = write_config(
        dir.path(),
        &format!(
            "{}[[cameras]]\nrealtime = false\nid = \"desk\"\nurl = \"unused.png\"\n\n{}",
            remote_model("vlm", "openai", &server, ""),
            query("scene", "caption", "vlm", "ask = \"\""),
        ),
    );
    let out = run_ocellus(
        &[
            "ask",
            &media("chelsea.png").to_string_lossy(),
            "-c",
            &cfg.to_string_lossy(),
        ],
        &[],
    );
    let lines = out.json_lines();
    let text = eval(&lines, "scene")["state"].as_str().unwrap().to_string();
    assert_eq!(text.chars().count(), 4096, "{}", out.show());

    // No answer within the timeout.
    let server = VlmServer::start(Api::OpenAi, "served-vlm", None);
    server.set_always(Some(Fault::Hang));
    let t0 = Instant::now();
    let (lines, _) = ask_once(dir.path(), &server.url(), "timeout = \"1s\"\nretries = 0");
    assert!(
        errors(&lines).contains("no answer within 1s"),
        "{}",
        errors(&lines)
    );
    assert!(t0.elapsed() < Duration::from_secs(30));
    drop(server);

    // Nothing listens.
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}/v1");
    let (lines, _) = ask_once(dir.path(), &url, "retries = 1");
    let e = errors(&lines);
    assert!(e.contains(&format!("{url}/chat/completions")), "{e}");
}

#[test]
fn bad_remote_configs_are_one_line_each() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "[models.a]\nfamily = \"openai\"\nurl = \"ftp://gpu/v1\"\nmodel = \"m\"\n\n\
             [models.b]\nfamily = \"ollama\"\nurl = \"http://gpu:11434\"\nmodel = \"m\"\napi_key_file = \"missing-key\"\n\n\
             [models.c]\nfamily = \"ollama\"\nurl = \"http://gpu:11434\"\nmodel = \"m\"\ndir = \"/m\"\n\n\
             [[cameras]]\nid = \"desk\"\nurl = \"rtsp://127.0.0.1/desk\"\n\n{}",
            query("people", "count", "b", "ask = \"how many?\""),
        ),
    );
    let out = run_ocellus(&["check", "-c", &cfg.to_string_lossy()], &[]);
    assert_ne!(out.code, Some(0));
    let text = out.show();
    for want in [
        "models.a.url: \"ftp://gpu/v1\" is not an http:// or https:// URL",
        "models.b.api_key_file:",
        "missing-key does not exist",
        "unknown field `dir`",
        "cameras[0].queries[0].kind: count queries are not supported by model \"b\" (family ollama)",
    ] {
        assert!(text.contains(want), "no {want:?} in:\n{text}");
    }
}

/// A daemon with a per-frame detector and a served yes/no query on a looping clip.
fn daemon_config(
    dir: &Path,
    broker: &str,
    http: u16,
    server: &VlmServer,
    extra: &str,
) -> std::path::PathBuf {
    // The scene changes every second (the change gate lets such frames through), so a
    // query due every second of stream time runs about six times a loop.
    let scenes = [("chelsea.png", 1.0), ("coffee.png", 1.0)].repeat(3);
    let clip = media_clip(dir, "desk.mkv", &scenes);
    write_config(
        dir,
        &format!(
            "[mqtt]\nurl = {}\nclient_id = {}\n\n[http]\nlisten = \"127.0.0.1:{http}\"\n\n{}{}\
             [[cameras]]\nrealtime = false\nid = \"desk\"\nurl = {}\nsample_fps = 4\nrepeat = true\n\n{}{}",
            toml_str(broker),
            toml_str(&client_id("remote")),
            engine_and_yolox(),
            remote_model(
                "vlm",
                "openai",
                server,
                &format!(
                    "breaker_failures = 2\nbreaker_cooldown = \"1s\"\nretries = 0\ntimeout = \"2s\"\n{extra}"
                )
            ),
            toml_path(&clip),
            person_query(""),
            query(
                "cat",
                "yes_no",
                "vlm",
                "ask = \"Is there a cat?\"\nevery = \"1s\""
            ),
        ),
    )
}

#[test]
fn an_outage_marks_the_model_unavailable_without_an_alert_and_a_probe_brings_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start();
    let url = broker.url();
    let port = free_port();
    let server = VlmServer::start(Api::OpenAi, "served-vlm", None);
    let cfg = daemon_config(dir.path(), &url, port, &server, "");
    let col = MqttCollector::new(&url);
    let mut daemon = Daemon::start(&cfg, &[]);
    let status = "ocellus/models/vlm/status";
    let state = state_topic("desk", "cat");

    assert!(
        col.wait_for(
            |m| m.iter().any(|m| m.topic == state && m.text() == "ON"),
            WAIT
        ),
        "no ON:\n{}\n{}",
        col.dump(),
        daemon.output()
    );
    assert_eq!(
        col.last(status).map(|m| m.text()).as_deref(),
        Some("online")
    );
    // A first state goes out before its attributes.
    let attrs = col
        .wait_for_topic("ocellus/desk/query/cat/attributes", WAIT)
        .unwrap_or_else(|| panic!("no attributes:\n{}", col.dump()))
        .json();
    assert_eq!(attrs["score_from"], "logprobs", "{attrs}");
    // Home Assistant: the query's entity follows the model's status too.
    let device = col
        .last("homeassistant/device/ocellus_desk/config")
        .expect("the device config")
        .json();
    let entity = &device["components"]["ocellus_desk_cat"];
    assert!(
        entity["availability"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["topic"] == status),
        "{entity}"
    );
    assert!(
        device["components"]["ocellus_desk_person"]
            .get("availability")
            .is_none()
    );

    // The server fails every call: after 2 in a row the model is offline; calls stop
    // reaching it but for a probe a second (doubling); no state change, no event.
    let outage = Instant::now();
    server.set_always(Some(Fault::Status(500, None)));
    assert!(
        col.wait_for(
            |m| m
                .iter()
                .any(|m| m.at > outage && m.topic == status && m.text() == "offline"),
            WAIT
        ),
        "never offline:\n{}",
        col.dump()
    );
    let health = http(port, "GET", "/healthz", None, b"").unwrap();
    assert_eq!(health.status, 503);
    assert_eq!(
        health.json()["models"]["vlm"]["available"],
        false,
        "{}",
        health.text()
    );
    let before = server.seen().len();
    std::thread::sleep(Duration::from_secs(4));
    let during = server.seen().len() - before;
    assert!(during <= 4, "{during} requests in 4 s while unavailable");
    let metrics = http(port, "GET", "/metrics", None, b"").unwrap().text();
    assert!(
        metrics.contains("ocellus_remote_available{model=\"vlm\"} 0"),
        "{metrics}"
    );
    let refused = metrics
        .lines()
        .find(|l| l.starts_with("ocellus_remote_refused_total{model=\"vlm\"}"))
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .unwrap();
    assert!(refused > 0.0, "{metrics}");
    let changes: Vec<Value> = col
        .payloads("ocellus/desk/events")
        .iter()
        .filter_map(|p| serde_json::from_str::<Value>(p).ok())
        .filter(|e| e["query"] == "cat")
        .collect();
    assert!(
        changes.iter().all(|e| e["to"] == "ON"),
        "no OFF from an outage: {changes:?}"
    );
    assert!(
        col.messages()
            .iter()
            .filter(|m| m.at > outage && m.topic == state)
            .all(|m| m.text() == "ON"),
        "the state stays as it was"
    );
    let warned = daemon.output().matches("model unavailable").count();
    assert_eq!(warned, 1, "one line for the outage:\n{}", daemon.output());

    // Back: the next probe succeeds, the model is online again and answers.
    let back = Instant::now();
    server.set_always(None);
    assert!(
        col.wait_for(
            |m| m
                .iter()
                .any(|m| m.at > back && m.topic == status && m.text() == "online"),
            WAIT
        ),
        "never back online:\n{}",
        col.dump()
    );
    assert!(daemon.output().contains("model available again"));

    // A server that never answers: calls time out (2 s) on the slow lane while the
    // per-frame detector keeps publishing.
    server.set_always(Some(Fault::Hang));
    let hang = Instant::now();
    assert!(
        wait_until(WAIT, || server.seen().iter().any(|s| s.at > hang)),
        "no call reached the hanging server"
    );
    let first_hang = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    let detections = col
        .messages()
        .iter()
        .filter(|m| m.at > first_hang && m.topic == detections_topic("desk"))
        .count();
    assert!(
        detections >= 3,
        "{detections} detection messages while a call hung"
    );
    assert_eq!(server.violations(), Vec::<String>::new());
    daemon.stop();
}

#[test]
fn the_hourly_budget_stops_calls_and_is_a_metric() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start();
    let url = broker.url();
    let port = free_port();
    let server = VlmServer::start(Api::OpenAi, "served-vlm", None);
    let cfg = daemon_config(dir.path(), &url, port, &server, "max_calls_per_hour = 3");
    let mut daemon = Daemon::start(&cfg, &[]);
    let over = |port| {
        http(port, "GET", "/metrics", None, b"")
            .map(|r| r.text())
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("ocellus_remote_over_budget_total{model=\"vlm\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(
        wait_until(WAIT, || over(port) >= 2.0),
        "{}",
        daemon.output()
    );
    assert_eq!(server.seen().len(), 3, "three calls in the hour, no more");
    let metrics = http(port, "GET", "/metrics", None, b"").unwrap().text();
    assert!(
        metrics.contains("ocellus_remote_budget_used{model=\"vlm\"} 3"),
        "{metrics}"
    );
    assert!(
        daemon
            .output()
            .contains("the budget of 3 calls an hour is spent")
    );
    daemon.stop();
}

#[test]
fn an_uncertain_taught_answer_escalates_to_a_served_model() {
    let dir = tempfile::tempdir().unwrap();
    let server = VlmServer::start(Api::OpenAi, "served-vlm", None);
    server.set_brain(Brain {
        p_yes: 0.9,
        ..Brain::default()
    });
    let clip = media_clip(
        dir.path(),
        "desk.mkv",
        &[
            ("chelsea.png", 1.0),
            ("rocket.jpg", 1.0),
            ("coffee.png", 1.0),
        ],
    );
    let embedder = models_dir().join("mobilenetv2_int8_imagenet");
    let cfg = write_config(
        dir.path(),
        &format!(
            "{ENGINE_ONE_THREAD}[models.look]\nfamily = \"embedder\"\ndir = {}\nproviders = [\"cpu\"]\nthreads = 1\n\n{}\
             [[cameras]]\nrealtime = false\nid = \"desk\"\nurl = {}\nsample_fps = 10\n\n\
             [[cameras.queries]]\nid = \"cat\"\nask = \"Is there a cat?\"\nkind = \"yes_no\"\n\
             model = \"look\"\nreview_below = 0.7\nescalate = \"vlm\"\n",
            toml_path(&embedder),
            remote_model("vlm", "openai", &server, ""),
            toml_path(&clip),
        ),
    );
    // The rocket is labelled both ways: the examples cannot tell it (p near 0.5).
    let c = clip.to_string_lossy().into_owned();
    for (state, at) in [("ON", "0.5"), ("ON", "1.5"), ("OFF", "1.5"), ("OFF", "2.5")] {
        let out = run_ocellus(
            &[
                "teach",
                "-c",
                &cfg.to_string_lossy(),
                "--query",
                "cat",
                "--state",
                state,
                &format!("{c}@{at}"),
            ],
            &[],
        );
        assert_eq!(out.code, Some(0), "{}", out.show());
    }
    let lines = ask_json(&clip, &cfg, "10");
    assert_eq!(server.violations(), Vec::<String>::new());
    assert_eq!(server.seen().len(), 1, "one uncertain scene, one call");
    let rocket: Vec<f64> = lines
        .iter()
        .filter(|l| (1.05..1.95).contains(&l["pts"].as_f64().unwrap()))
        .map(|l| l["queries"][0]["score"].as_f64().unwrap())
        .collect();
    assert!(!rocket.is_empty());
    assert!(
        rocket.iter().all(|s| (s - 0.9).abs() < 1e-3),
        "the served model's p(yes): {rocket:?}"
    );
    let out = run_ocellus(
        &[
            "teach",
            "-c",
            &cfg.to_string_lossy(),
            "--query",
            "cat",
            "--list",
        ],
        &[],
    );
    assert_eq!(
        out.stdout
            .lines()
            .filter(|l| l.contains("\tmodel:vlm\t"))
            .count(),
        1,
        "{}",
        out.show()
    );
}

#[test]
fn a_reload_that_removes_a_served_model_clears_its_status() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start();
    let url = broker.url();
    let port = free_port();
    let server = VlmServer::start(Api::OpenAi, "served-vlm", None);
    let cfg = daemon_config(dir.path(), &url, port, &server, "");
    let col = MqttCollector::new(&url);
    let mut daemon = Daemon::start(&cfg, &[]);
    let status = "ocellus/models/vlm/status";
    assert!(
        col.wait_for(
            |m| m.iter().any(|m| m.topic == status && m.text() == "online"),
            WAIT
        ),
        "{}",
        daemon.output()
    );
    // The same config without the served model and its query.
    let text = std::fs::read_to_string(&cfg).unwrap();
    let cut = text.find("[models.vlm]").unwrap();
    let models_end = text[cut..].find("[[cameras]]").unwrap() + cut;
    let query = text.find("[[cameras.queries]]\nid = \"cat\"").unwrap();
    let without = format!("{}{}", &text[..cut], &text[models_end..query]);
    std::fs::write(&cfg, without).unwrap();
    let r = http(port, "POST", "/api/reload", None, b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        col.wait_for(
            |m| m.iter().any(|m| m.topic == status && m.payload.is_empty()),
            WAIT
        ),
        "the retained status was not cleared:\n{}",
        col.dump()
    );
    daemon.stop();
}
