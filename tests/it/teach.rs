//! Teaching standing queries from labelled frames with the real MobileNetV2 int8
//! embedder (`<models>/mobilenetv2_int8_imagenet`), real clips of the shared photos,
//! the real daemon, mosquitto and the HTTP API: `ocellus teach` labels frames of a
//! clip and the next `ocellus ask` answers from them (on a clip it was not taught
//! from, frames of a photo it never saw included); examples survive the process,
//! can be forgotten, a corrupt one is named and skipped; bad labels are refused
//! with one line. In the daemon an untaught query offers its frame for review once
//! per scene, a person's label of it (MQTT) and of the current frame (HTTP) train
//! the query at once, and the examples are there after a restart.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;

const WAIT: Duration = Duration::from_secs(90);
const TOKEN: &str = "teach-token";

fn embedder_model() -> String {
    let dir = models_dir().join("mobilenetv2_int8_imagenet");
    assert!(dir.is_dir(), "MobileNetV2 not found at {}", dir.display());
    format!(
        "[models.look]\nfamily = \"embedder\"\ndir = {}\nproviders = [\"cpu\"]\nthreads = 1\n\n",
        toml_path(&dir)
    )
}

/// A file camera `desk` of `clip` with a yes_no query `cat` on the embedder, plus
/// the query lines in `extra`.
fn teach_config(dir: &Path, clip: &Path, extra: &str) -> PathBuf {
    write_config(
        dir,
        &format!(
            "{ENGINE_ONE_THREAD}[teach]\nmax_examples = 3\n\n{}[[cameras]]\nrealtime = false\nid = \"desk\"\nurl = {}\n\
             sample_fps = 10\n\n[[cameras.queries]]\nid = \"cat\"\nask = \"is the cat on the desk?\"\n\
             kind = \"yes_no\"\nmodel = \"look\"\n{extra}\n",
            embedder_model(),
            toml_path(clip),
        ),
    )
}

fn teach(cfg: &Path, args: &[&str]) -> Out {
    let mut all = vec!["teach", "-c"];
    let c = cfg.to_string_lossy().into_owned();
    all.push(&c);
    all.extend_from_slice(args);
    run_ocellus(&all, &[])
}

/// (pts, state) of query `cat` on each frame `ocellus ask` reports.
fn answers(clip: &Path, cfg: &Path) -> Vec<(f64, Option<String>)> {
    ask_json(clip, cfg, "10")
        .iter()
        .map(|line| {
            let q = &line["queries"][0];
            assert_eq!(q["id"], "cat", "{line}");
            (
                line["pts"].as_f64().unwrap(),
                q["state"].as_str().map(String::from),
            )
        })
        .collect()
}

/// The states of frames within [from, to) seconds, as a sorted, deduplicated list.
fn states_within(a: &[(f64, Option<String>)], from: f64, to: f64) -> Vec<Option<String>> {
    let mut s: Vec<_> = a
        .iter()
        .filter(|(pts, _)| *pts >= from && *pts < to)
        .map(|(_, s)| s.clone())
        .collect();
    s.sort();
    s.dedup();
    s
}

#[test]
fn taught_from_a_few_frames_the_query_answers_other_frames_and_keeps_its_examples() {
    let dir = tempfile::tempdir().unwrap();
    // Taught on one clip (640x360)...
    let lesson = media_clip(
        dir.path(),
        "lesson.mkv",
        &[
            ("chelsea.png", 1.0),
            ("coffee.png", 1.0),
            ("astronaut.png", 1.0),
        ],
    );
    // ...asked on another: other sizes (so other letterboxing and scaling), and a
    // photo it never saw (the rocket).
    let test = dir.path().join("test.mkv");
    let images: Vec<(PathBuf, f64)> = [
        ("coffee.png", 1.0),
        ("chelsea.png", 1.0),
        ("rocket.jpg", 1.0),
        ("chelsea.png", 1.0),
    ]
    .iter()
    .map(|(n, s)| (media(n), *s))
    .collect();
    let refs: Vec<(&Path, f64)> = images.iter().map(|(p, s)| (p.as_path(), *s)).collect();
    make_clip(&test, &refs, 480, 480, 10);
    let cfg = teach_config(dir.path(), &test, "");

    // Untaught, an embedder query has no answer: it knows nothing of the words.
    let before = answers(&test, &cfg);
    assert!(!before.is_empty());
    assert!(
        before.iter().all(|(_, s)| s.is_none()),
        "an untaught query answered: {before:?}"
    );

    let lesson_s = lesson.to_string_lossy().into_owned();
    let on = format!("{lesson_s}@0.5");
    let off = [format!("{lesson_s}@1.5"), format!("{lesson_s}@2.5")];
    let out = teach(&cfg, &["--query", "cat", "--state", "ON", &on]);
    assert_eq!(out.code, Some(0), "{}", out.show());
    assert!(
        out.stdout.contains("examples OFF 0, ON 1"),
        "{}",
        out.show()
    );
    let out = teach(&cfg, &["--query", "cat", "--state", "no", &off[0], &off[1]]);
    assert_eq!(out.code, Some(0), "{}", out.show());
    assert!(
        out.stdout.contains("examples OFF 2, ON 1"),
        "{}",
        out.show()
    );

    // A new process (nothing kept in memory) answers from the stored examples.
    let after = answers(&test, &cfg);
    assert_eq!(
        states_within(&after, 0.0, 0.95),
        [Some("OFF".to_string())],
        "{after:?}"
    );
    assert_eq!(
        states_within(&after, 1.05, 1.95),
        [Some("ON".to_string())],
        "{after:?}"
    );
    assert_eq!(
        states_within(&after, 2.05, 2.95),
        [Some("OFF".to_string())],
        "the rocket (never labelled) is not the cat: {after:?}"
    );
    assert_eq!(
        states_within(&after, 3.05, 4.0),
        [Some("ON".to_string())],
        "{after:?}"
    );

    // The list shows the three, with their media; one is forgotten by id.
    let out = teach(&cfg, &["--query", "cat", "--list"]);
    assert_eq!(out.code, Some(0), "{}", out.show());
    let rows: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .filter(|l| l.contains('\t'))
        .map(|l| l.split('\t').collect())
        .collect();
    assert_eq!(rows.len(), 3, "{}", out.show());
    assert_eq!(
        rows.iter().filter(|r| r[1] == "OFF").count(),
        2,
        "{}",
        out.show()
    );
    assert!(
        rows.iter()
            .all(|r| r[2] == "person" && r[4].contains("lesson.mkv@"))
    );
    // The configured bound: a fourth example is refused, one line, nothing added.
    let out = teach(&cfg, &["--query", "cat", "--state", "ON", &on]);
    assert_ne!(out.code, Some(0), "{}", out.show());
    assert!(
        out.stderr.contains(
            "camera desk: query cat: already 3 examples, the most [teach] max_examples allows"
        ),
        "{}",
        out.show()
    );
    let astronaut = rows
        .iter()
        .find(|r| r[4].ends_with("@2.5"))
        .expect("the astronaut example")[0]
        .to_string();
    let out = teach(&cfg, &["--query", "cat", "--forget", &astronaut]);
    assert_eq!(out.code, Some(0), "{}", out.show());
    assert!(
        out.stdout.contains("examples OFF 1, ON 1"),
        "{}",
        out.show()
    );

    // A corrupt example file is named, one line, and the others still count.
    let store = dir.path().join(".ocellus/examples/desk/cat");
    std::fs::write(store.join("broken.json"), b"{\"id\": 3").unwrap();
    let out = teach(&cfg, &["--query", "cat", "--list"]);
    assert_eq!(out.code, Some(0), "{}", out.show());
    assert!(
        out.stdout.contains("examples OFF 1, ON 1"),
        "{}",
        out.show()
    );
    let warned: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("broken.json"))
        .collect();
    assert_eq!(warned.len(), 1, "{}", out.show());

    // Bad labels: one line naming what and where, exit 1 (2 for usage), nothing added.
    let out = teach(&cfg, &["--query", "cat", "--state", "maybe", &on]);
    assert_ne!(out.code, Some(0), "{}", out.show());
    assert!(
        out.stderr.contains(
            "camera desk: query cat: \"maybe\" is not a state of the query (states: ON, OFF)"
        ),
        "{}",
        out.show()
    );
    let out = teach(&cfg, &["--query", "dog", "--state", "ON", &on]);
    assert_ne!(out.code, Some(0), "{}", out.show());
    assert!(out.stderr.contains("dog"), "{}", out.show());
    let missing = dir
        .path()
        .join("missing.mkv")
        .to_string_lossy()
        .into_owned();
    let out = teach(&cfg, &["--query", "cat", "--state", "ON", &missing]);
    assert_ne!(out.code, Some(0), "{}", out.show());
    assert!(out.stderr.contains("missing.mkv"), "{}", out.show());
    let out = teach(&cfg, &["--query", "cat", "--list"]);
    assert!(
        out.stdout.contains("examples OFF 1, ON 1"),
        "{}",
        out.show()
    );

    // An embedder file without the embedding output (the upstream classifier):
    // one line naming the model, the file and the outputs it has.
    let text = std::fs::read_to_string(&cfg).unwrap().replace(
        "threads = 1\n\n[[cameras]]",
        "threads = 1\nfile = \"mobilenetv2-12-int8.onnx\"\n\n[[cameras]]",
    );
    assert!(text.contains("mobilenetv2-12-int8.onnx"), "{text}");
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, text).unwrap();
    let out = run_ocellus(
        &["ask", &test.to_string_lossy(), "-c", &bad.to_string_lossy()],
        &[],
    );
    assert_eq!(out.code, Some(1), "{}", out.show());
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("no output \"embedding\""))
        .unwrap_or_else(|| panic!("{}", out.show()));
    assert!(
        line.contains("look") && line.contains("mobilenetv2-12-int8.onnx"),
        "{line}"
    );

    // The dataset export writes the crops, a folder per state.
    let data = dir.path().join("data");
    let c = cfg.to_string_lossy().into_owned();
    let d = data.to_string_lossy().into_owned();
    let out = run_ocellus(
        &["dataset", "export", "-c", &c, "--query", "cat", "--out", &d],
        &[],
    );
    assert_eq!(out.code, Some(0), "{}", out.show());
    for state in ["ON", "OFF"] {
        let n = std::fs::read_dir(data.join(state)).unwrap().count();
        assert_eq!(n, 1, "{state}: {}", out.show());
    }
}

#[test]
fn a_folder_of_examples_teaches_a_classify_query() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("shelf");
    for (label, photo) in [
        ("cat", "chelsea.png"),
        ("mug", "coffee.png"),
        ("person", "astronaut.png"),
    ] {
        std::fs::create_dir_all(folder.join(label)).unwrap();
        std::fs::copy(media(photo), folder.join(label).join(photo)).unwrap();
    }
    let clip = media_clip(
        dir.path(),
        "shelf.mkv",
        &[
            ("astronaut.png", 1.0),
            ("chelsea.png", 1.0),
            ("coffee.png", 1.0),
        ],
    );
    let cfg = write_config(
        dir.path(),
        &format!(
            "{ENGINE_ONE_THREAD}{}[[cameras]]\nrealtime = false\nid = \"desk\"\nurl = {}\nsample_fps = 10\n\n\
             [[cameras.queries]]\nid = \"cat\"\nask = \"what is on the shelf?\"\nkind = \"classify\"\n\
             model = \"look\"\nlabels = [\"cat\", \"mug\", \"person\"]\nexamples = \"shelf\"\n",
            embedder_model(),
            toml_path(&clip),
        ),
    );
    let a = answers(&clip, &cfg);
    assert_eq!(
        states_within(&a, 0.0, 0.95),
        [Some("person".to_string())],
        "{a:?}"
    );
    assert_eq!(
        states_within(&a, 1.05, 1.95),
        [Some("cat".to_string())],
        "{a:?}"
    );
    assert_eq!(
        states_within(&a, 2.05, 3.0),
        [Some("mug".to_string())],
        "{a:?}"
    );
    // Folder examples are the config's: listed, not stored, not forgettable.
    let out = teach(&cfg, &["--query", "cat", "--list"]);
    assert_eq!(out.code, Some(0), "{}", out.show());
    assert!(
        out.stdout.contains("examples cat 1, mug 1, person 1"),
        "{}",
        out.show()
    );
    let stored = dir.path().join(".ocellus/examples/desk/cat");
    let files = std::fs::read_dir(&stored).map(|d| d.count()).unwrap_or(0);
    assert_eq!(
        files,
        0,
        "folder examples were copied into {}",
        stored.display()
    );
    // A folder larger than [teach] max_examples: the bound holds, said in one line.
    let text = std::fs::read_to_string(&cfg).unwrap();
    let bounded = dir.path().join("bounded.toml");
    std::fs::write(&bounded, format!("[teach]\nmax_examples = 2\n\n{text}")).unwrap();
    let out = teach(&bounded, &["--query", "cat", "--list"]);
    assert_eq!(out.code, Some(0), "{}", out.show());
    assert!(
        out.stdout.contains("examples cat 1, mug 1, person 0"),
        "{}",
        out.show()
    );
    let warned: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("more images than [teach] max_examples = 2"))
        .collect();
    assert_eq!(warned.len(), 1, "{}", out.show());
}

fn daemon_config(dir: &Path, broker: &str, http: u16, clip: &Path) -> PathBuf {
    // OFF examples come with the config; ON is what a person teaches at runtime.
    let folder = dir.join("desk-examples/OFF");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(media("coffee.png"), folder.join("coffee.png")).unwrap();
    std::fs::copy(media("rocket.jpg"), folder.join("rocket.jpg")).unwrap();
    write_config(
        dir,
        &format!(
            "[mqtt]\nurl = {}\nclient_id = {}\nstate_dir = {}\n\n\
             [http]\nlisten = \"127.0.0.1:{http}\"\ntoken = \"{TOKEN}\"\n\n\
             [teach]\nreview_every = \"0s\"\n\n{ENGINE_ONE_THREAD}{}\
             [[cameras]]\nrealtime = false\nid = \"desk\"\nurl = {}\nsample_fps = 4\nrepeat = true\n\n\
             [[cameras.queries]]\nid = \"cat\"\nask = \"is the cat on the desk?\"\nkind = \"yes_no\"\n\
             model = \"look\"\nexamples = \"desk-examples\"\nreview_below = 0.9\n",
            toml_str(broker),
            toml_str(&client_id("teach")),
            toml_path(&dir.join("state")),
            embedder_model(),
            toml_path(clip),
        ),
    )
}

fn api(port: u16, method: &str, path: &str, body: &[u8]) -> HttpResponse {
    http(port, method, path, Some(TOKEN), body)
        .unwrap_or_else(|| panic!("{method} {path}: no answer"))
}

/// Waits for `want` on the query's state topic after `since`, published by the
/// daemon (not a retained copy from the broker).
fn wait_state(col: &MqttCollector, since: Instant, want: &str) {
    let topic = state_topic("desk", "cat");
    assert!(
        col.wait_for(
            |m| m
                .iter()
                .any(|m| m.at > since && !m.retain && m.topic == topic && m.text() == want),
            WAIT
        ),
        "no {want} on {topic}:\n{}",
        col.dump()
    );
}

#[test]
fn the_daemon_asks_for_review_once_per_scene_and_learns_from_mqtt_and_http_labels() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start();
    let url = broker.url();
    let port = free_port();
    let clip = media_clip(dir.path(), "cat.mkv", &[("chelsea.png", 1.0)]);
    let cfg = daemon_config(dir.path(), &url, port, &clip);
    let col = MqttCollector::new(&url);
    let mut daemon = Daemon::start(&cfg, &[]);

    // Untaught on ON, the query is unsure of every frame: one review item for the
    // one scene, its picture beside it (retained).
    let review = col
        .wait_for_topic("ocellus/desk/review", WAIT)
        .unwrap_or_else(|| panic!("no review item:\n{}\n{}", col.dump(), daemon.output()));
    let item = review.json();
    assert_eq!(
        (item["camera"].as_str(), item["query"].as_str()),
        (Some("desk"), Some("cat"))
    );
    assert_eq!(item["label"], "ocellus/desk/query/cat/label");
    assert!(item["answer"].is_null(), "{item}");
    let image = col
        .wait_for_topic("ocellus/desk/review/image", WAIT)
        .expect("the review item's picture");
    assert_eq!(&image.payload[..2], &[0xff, 0xd8], "not a JPEG");
    // The same scene keeps coming (the clip repeats) without a second item.
    std::thread::sleep(Duration::from_secs(3));
    let items = col.payloads("ocellus/desk/review");
    assert_eq!(items.len(), 1, "one scene, one review item: {items:?}");
    let listed = api(port, "GET", "/api/cameras/desk/review", b"").json();
    assert_eq!(
        listed["review"].as_array().map(Vec::len),
        Some(1),
        "{listed}"
    );
    let id = item["id"].as_str().unwrap().to_string();
    let r = api(
        port,
        "GET",
        &format!("/api/cameras/desk/review/{id}/image.jpg"),
        b"",
    );
    assert_eq!(
        (r.status, r.header("content-type")),
        (200, Some("image/jpeg"))
    );

    // Refused labels go to the query's error topic and change nothing.
    publish_once(&url, "ocellus/desk/query/cat/label", "maybe", false);
    let err = col
        .wait_for_topic("ocellus/desk/query/cat/error", WAIT)
        .expect("a refusal");
    assert!(
        err.json()["error"]
            .as_str()
            .unwrap()
            .contains("\"maybe\" is not a state of the query"),
        "{}",
        err.text()
    );
    let r = api(
        port,
        "POST",
        "/api/cameras/desk/queries/dog/examples",
        br#"{"state":"ON"}"#,
    );
    assert_eq!(r.status, 404, "{}", r.text());
    let r = api(
        port,
        "POST",
        "/api/cameras/desk/queries/cat/examples",
        br#"{"state":"ON","why":1}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let r = http(
        port,
        "POST",
        "/api/cameras/desk/queries/cat/examples",
        None,
        br#"{"state":"ON"}"#,
    )
    .unwrap();
    assert_eq!(r.status, 401, "labels need the token: {}", r.text());

    let since = Instant::now();
    let gone = r#"{"state":"ON","review":"r-gone"}"#;
    publish_once(&url, "ocellus/desk/query/cat/label", gone, false);
    assert!(
        col.wait_for(
            |m| m.iter().any(|m| m.at > since
                && m.topic == "ocellus/desk/query/cat/error"
                && m.text().contains("no review item \\\"r-gone\\\"")),
            WAIT
        ),
        "{}",
        col.dump()
    );

    // A person labels the review item ON (MQTT): the query answers ON at once.
    let since = Instant::now();
    let label = format!("{{\"state\": \"ON\", \"review\": \"{id}\"}}");
    publish_once(&url, "ocellus/desk/query/cat/label", label.as_str(), false);
    wait_state(&col, since, "ON");
    // A first state goes out before its attributes.
    let attributes = "ocellus/desk/query/cat/attributes";
    assert!(
        col.wait_for(
            |m| m.iter().any(|m| m.at > since && m.topic == attributes),
            WAIT
        ),
        "{}",
        col.dump()
    );
    let attrs = col.last(attributes).unwrap().json();
    assert_eq!(attrs["examples"]["ON"], 1, "{attrs}");
    assert_eq!(attrs["examples"]["OFF"], 2, "{attrs}");
    assert!(attrs["confidence"].as_f64().unwrap() > 0.5, "{attrs}");
    // The answered item is gone from the list.
    let listed = api(port, "GET", "/api/cameras/desk/review", b"").json();
    assert!(
        listed["review"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["id"] != id.as_str()),
        "{listed}"
    );

    // And the current frame over HTTP.
    let r = api(
        port,
        "POST",
        "/api/cameras/desk/queries/cat/examples",
        br#"{"state":"yes"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let body = r.json();
    assert_eq!(body["example"]["state"], "ON", "{body}");
    assert_eq!(body["example"]["source"], "http", "{body}");
    assert_eq!(body["summary"]["examples"]["ON"], 2, "{body}");
    let http_id = body["example"]["id"].as_str().unwrap().to_string();
    let list = api(port, "GET", "/api/cameras/desk/queries/cat/examples", b"").json();
    let examples = list["examples"].as_array().unwrap();
    assert_eq!(examples.len(), 4, "2 labelled + 2 from the folder: {list}");
    let sources: Vec<&str> = examples
        .iter()
        .filter_map(|e| e["source"].as_str())
        .collect();
    assert!(
        sources.contains(&"mqtt") && sources.contains(&"folder"),
        "{list}"
    );
    let r = api(
        port,
        "GET",
        &format!("/api/cameras/desk/queries/cat/examples/{http_id}/image.jpg"),
        b"",
    );
    assert_eq!((r.status, &r.body[..2]), (200, &[0xffu8, 0xd8][..]));
    // An uploaded picture (a frame of the camera from elsewhere), with its state.
    let jpeg = std::fs::read(dir.path().join("desk-examples/OFF/rocket.jpg")).unwrap();
    let bearer = format!("Bearer {TOKEN}");
    let headers = [
        ("Authorization", bearer.as_str()),
        ("Content-Type", "image/jpeg"),
    ];
    let path = "/api/cameras/desk/queries/cat/examples";
    let r = http_with(port, "POST", &format!("{path}?state=OFF"), &headers, &jpeg).unwrap();
    assert_eq!(r.status, 201, "{}", r.text());
    assert_eq!(r.json()["example"]["media"], "upload", "{}", r.text());
    assert_eq!(r.json()["summary"]["examples"]["OFF"], 3, "{}", r.text());
    let r = http_with(port, "POST", path, &headers, &jpeg).unwrap();
    assert_eq!(r.status, 400, "a picture needs its state: {}", r.text());
    let r = http_with(
        port,
        "POST",
        &format!("{path}?state=OFF"),
        &headers,
        b"not a picture",
    )
    .unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("the uploaded picture"), "{}", r.text());
    let list = api(port, "GET", path, b"").json();
    let upload = list["examples"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["media"] == "upload")
        .expect("the upload")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let r = api(port, "DELETE", &format!("{path}/{upload}"), b"");
    assert_eq!(r.status, 200, "{}", r.text());
    let r = api(
        port,
        "DELETE",
        &format!("/api/cameras/desk/queries/cat/examples/{http_id}"),
        b"",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["summary"]["examples"]["ON"], 1);
    let r = api(
        port,
        "DELETE",
        &format!("/api/cameras/desk/queries/cat/examples/{http_id}"),
        b"",
    );
    assert_eq!(r.status, 404, "{}", r.text());
    daemon.stop();

    // After a restart the stored label is there: ON from the first frames, and
    // no review item (the query is sure now).
    let col2 = MqttCollector::with_filter(&url, "ocellus/desk/query/cat/state");
    let since = Instant::now();
    let mut daemon = Daemon::start(&cfg, &[]);
    wait_state(&col2, since, "ON");
    let states: Vec<String> = col2
        .messages()
        .iter()
        .filter(|m| m.at > since && !m.retain)
        .map(|m| m.text())
        .collect();
    assert!(states.iter().all(|s| s == "ON"), "{states:?}");
    let list = api(port, "GET", "/api/cameras/desk/queries/cat/examples", b"").json();
    assert_eq!(list["summary"]["examples"]["ON"], 1, "{list}");
    let listed = api(port, "GET", "/api/cameras/desk/review", b"").json();
    assert_eq!(
        listed["review"].as_array().map(Vec::len),
        Some(0),
        "{listed}"
    );
    daemon.stop();
}

#[test]
fn a_clip_query_without_labels_answers_exactly_as_zero_shot_and_labels_move_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let clip = media_clip(
        dir.path(),
        "mugs.mkv",
        &[("coffee.png", 1.0), ("chelsea.png", 1.0)],
    );
    let cfg = write_config(
        dir.path(),
        &format!(
            "{ENGINE_ONE_THREAD}[models.tiny]\nfamily = \"clip\"\ndir = {}\ntokenizer = {}\nproviders = [\"cpu\"]\n\n\
             [[cameras]]\nrealtime = false\nid = \"desk\"\nurl = {}\nsample_fps = 10\n\n\
             [[cameras.queries]]\nid = \"cat\"\nask = \"is the cat on the desk?\"\nkind = \"yes_no\"\n\
             model = \"tiny\"\nyes = [\"a photo of a cat\"]\nno = [\"a photo of a cup of coffee\"]\n",
            toml_path(&root.join("tests/fixtures/clip_tiny")),
            toml_path(&models_dir().join("clip_vit_b32_tokenizer/tokenizer.json")),
            toml_path(&clip),
        ),
    );
    let scores = |cfg: &Path| -> Vec<(f64, f64)> {
        ask_json(&clip, cfg, "10")
            .iter()
            .map(|l| {
                (
                    l["pts"].as_f64().unwrap(),
                    l["queries"][0]["score"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    // The same config before the store exists and after every label is forgotten:
    // the same scores to the last bit.
    let zero_shot = scores(&cfg);
    let clip_s = clip.to_string_lossy().into_owned();
    let (cat, mug) = (format!("{clip_s}@1.5"), format!("{clip_s}@0.5"));
    for (state, at) in [("ON", &cat), ("OFF", &mug)] {
        let out = teach(&cfg, &["--query", "cat", "--state", state, at]);
        assert_eq!(out.code, Some(0), "{}", out.show());
    }
    let taught = scores(&cfg);
    assert_eq!(taught.len(), zero_shot.len());
    let moved = taught
        .iter()
        .zip(&zero_shot)
        .filter(|(t, z)| (t.1 - z.1).abs() > 1e-3)
        .count();
    assert_eq!(
        moved,
        taught.len(),
        "every frame moves with 2 labels: {taught:?} vs {zero_shot:?}"
    );
    // Taught towards the labels: the cat frames score higher than the mug frames
    // by more than before.
    let gap = |s: &[(f64, f64)]| {
        let mean = |a: f64, b: f64| {
            let v: Vec<f64> = s
                .iter()
                .filter(|(p, _)| *p >= a && *p < b)
                .map(|x| x.1)
                .collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        mean(1.05, 2.0) - mean(0.0, 0.95)
    };
    assert!(
        gap(&taught) > gap(&zero_shot),
        "{} vs {}",
        gap(&taught),
        gap(&zero_shot)
    );
    let out = teach(&cfg, &["--query", "cat", "--all"]);
    assert!(out.stdout.contains("forgot 2 examples"), "{}", out.show());
    assert_eq!(scores(&cfg), zero_shot);
}

#[test]
fn the_frame_behind_a_state_change_can_be_labelled_by_its_event_id() {
    use ocellus::cache::{EmbeddingCache, PromptCache};
    use ocellus::eval::{CameraWorker, WorkerContext};
    use ocellus::kit::metrics::CameraMetrics;
    use ocellus::kit::{Pixels, Sample};
    use ocellus::query::ReportPool;
    use ocellus::teach::{Label, Lessons, Source, TeachConfig, TeachError};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{ENGINE_ONE_THREAD}{}[[cameras]]\nrealtime = false\nid = \"desk\"\nurl = \"unused.mkv\"\n\n\
         [[cameras.queries]]\nid = \"cat\"\nask = \"is the cat there?\"\nkind = \"yes_no\"\nmodel = \"look\"\n",
        embedder_model()
    );
    let config = ocellus::app::config::parse(&text, &dir.path().join("t.toml")).unwrap();
    let env = ocellus::engine::environment(&config.engine).unwrap();
    let models = ocellus::model::Registry::load(
        &config.models,
        &config.engine,
        env,
        &Arc::new(PromptCache::default()),
    );
    let lessons = Arc::new(Lessons::new(TeachConfig {
        dir: Some(dir.path().join("examples")),
        ..TeachConfig::default()
    }));
    let ctx = WorkerContext {
        cache: Arc::new(EmbeddingCache::new(1 << 20)),
        metrics: Arc::new(CameraMetrics::default()),
        lessons: lessons.clone(),
    };
    let mut worker = CameraWorker::new(&config.cameras[0], &models, ctx);
    assert_eq!(worker.failed_queries(), 0);
    let still = |name: &str| ocellus::source::first_frame(&media(name), Pixels::Rgb).unwrap();
    let (cat, mug) = (still("chelsea.png"), still("coffee.png"));
    let lesson = lessons.find("desk", "cat").expect("the lesson");
    let look = models.get("look").unwrap();
    lesson
        .add_frame("ON", &cat, None, Source::Cli, None, look)
        .unwrap();
    lesson
        .add_frame("OFF", &mug, None, Source::Cli, None, look)
        .unwrap();

    // ON on the cat, then OFF on the mug: a change, whose frame is kept.
    let pool = ReportPool::new(worker.camera().clone(), 2);
    let mut r = pool.take();
    assert!(worker.evaluate(&Sample::Frame(cat), &mut r));
    assert_eq!(
        r.queries[0]
            .state
            .as_ref()
            .map(|s| s.to_string())
            .as_deref(),
        Some("ON")
    );
    let mut r = pool.take();
    let at = mug.captured;
    assert!(worker.evaluate(&Sample::Frame(mug), &mut r));
    let change = r.queries[0].change.as_ref().expect("ON -> OFF");
    assert_eq!(change.to.to_string(), "OFF");
    let id = ocellus::query::event_id("desk", "cat", at);

    // "That alert was wrong": the mug frame labelled ON by its event id.
    let label =
        Label::parse(format!("{{\"state\": \"ON\", \"event\": \"{id}\"}}").as_bytes()).unwrap();
    let ex = lessons.label("desk", "cat", &label, Source::Mqtt).unwrap();
    assert_eq!(
        (ex.state.as_str(), ex.media.as_deref()),
        ("ON", Some(&*format!("event {id}")))
    );
    assert_eq!(lesson.trained().summary.examples["ON"], 2);
    let gone = Label::parse(br#"{"state": "ON", "event": "desk/cat/1"}"#).unwrap();
    let err = lessons
        .label("desk", "cat", &gone, Source::Mqtt)
        .unwrap_err();
    assert!(matches!(err, TeachError::NoEvent { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "camera desk: no frame kept for event \"desk/cat/1\" (not a taught query's, or no longer kept)"
    );
}

#[test]
fn an_uncertain_answer_escalates_to_smolvlm_once_per_scene_and_its_answer_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let clip = media_clip(
        dir.path(),
        "desk.mkv",
        &[
            ("chelsea.png", 1.0),
            ("rocket.jpg", 1.0),
            ("coffee.png", 1.0),
        ],
    );
    let config = |escalate: &str| {
        let text = format!(
            "{ENGINE_ONE_THREAD}{}[models.vlm]\nfamily = \"smolvlm\"\ndir = {}\nproviders = [\"cpu\"]\n\n\
             [[cameras]]\nrealtime = false\nid = \"desk\"\nurl = {}\nsample_fps = 10\n\n\
             [[cameras.queries]]\nid = \"cat\"\nask = \"Is there a cat?\"\nkind = \"yes_no\"\n\
             model = \"look\"\nreview_below = 0.7\n{escalate}\n",
            embedder_model(),
            toml_path(&root.join("tests/fixtures/smolvlm_tiny")),
            toml_path(&clip),
        );
        let path = dir.path().join(if escalate.is_empty() {
            "plain.toml"
        } else {
            "esc.toml"
        });
        std::fs::write(&path, text).unwrap();
        path
    };
    let (plain, esc) = (config(""), config("escalate = \"vlm\""));
    // The cat and the mug are clear; the rocket is labelled both ways, so the
    // examples cannot tell (p near 0.5).
    let c = clip.to_string_lossy().into_owned();
    for (state, at) in [("ON", "0.5"), ("ON", "1.5"), ("OFF", "1.5"), ("OFF", "2.5")] {
        let out = teach(
            &plain,
            &["--query", "cat", "--state", state, &format!("{c}@{at}")],
        );
        assert_eq!(out.code, Some(0), "{}", out.show());
    }
    let frames = |cfg: &Path| -> Vec<(f64, f64, f64)> {
        ask_json(&clip, cfg, "10")
            .iter()
            .map(|l| {
                let q = &l["queries"][0];
                (
                    l["pts"].as_f64().unwrap(),
                    q["score"].as_f64().unwrap(),
                    q["confidence"].as_f64().unwrap(),
                )
            })
            .collect()
    };
    let within = |f: &[(f64, f64, f64)], a: f64, b: f64| -> Vec<(f64, f64, f64)> {
        f.iter().copied().filter(|x| x.0 >= a && x.0 < b).collect()
    };
    let before = frames(&plain);
    assert!(
        within(&before, 0.0, 0.95).iter().all(|x| x.2 >= 0.7),
        "the cat is clear: {before:?}"
    );
    assert!(
        within(&before, 2.05, 3.0).iter().all(|x| x.2 >= 0.7),
        "the mug is clear: {before:?}"
    );
    assert!(
        within(&before, 1.05, 1.95).iter().all(|x| x.2 < 0.7),
        "the rocket is not: {before:?}"
    );

    let after = frames(&esc);
    assert_eq!(after.len(), before.len());
    // Sure answers never escalate: the same scores to the last bit.
    for (a, b) in [(0.0, 0.95), (2.05, 3.0)] {
        assert_eq!(within(&after, a, b), within(&before, a, b));
    }
    // The rocket went to SmolVLM once: one candidate, by the model, not trained on.
    let out = teach(&esc, &["--query", "cat", "--list"]);
    let candidates: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains("\tmodel:vlm\t"))
        .collect();
    assert_eq!(candidates.len(), 1, "{}", out.show());
    assert!(
        out.stdout.contains("examples OFF 2, ON 2"),
        "{}",
        out.show()
    );
    assert!(
        out.stdout
            .contains("; 1 candidates by models (not trained on)"),
        "{}",
        out.show()
    );
    let p: f64 = candidates[0]
        .rsplit("p(yes) ")
        .next()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{}", candidates[0]));
    // ...and its answer is the rocket's on the frames after the one it saw (in a
    // running daemon it arrives a few frames later).
    let rocket = within(&after, 1.05, 1.95);
    assert!(!rocket.is_empty());
    for (pts, score, _) in &rocket {
        assert!(
            (score - p).abs() < 5e-4,
            "at {pts}: {score} vs SmolVLM's {p}: {after:?}"
        );
    }
}
