//! The web interface in a real browser (Debian's chromium over WebDriver, see
//! `common::browser`) against the real daemon, with the real YOLOX-nano and
//! MobileNetV2 models, on a camera served by a real RTSP server whose picture the
//! test switches between two photographs of `../shared/media` (a cat, an astronaut).
//! The daemon listens off loopback with a token, so every page goes through the
//! login form. A screenshot of each page is written under `target/web/`.

use crate::common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::*;

const WAIT: Duration = Duration::from_secs(60);
const TOKEN: &str = "web-ui-token";

/// Shows `png` on the camera from now on (the mount re-reads its file each frame).
fn show(live: &Path, png: &Path) {
    let tmp = live.with_extension("tmp");
    std::fs::copy(png, &tmp).unwrap();
    std::fs::rename(&tmp, live).unwrap();
}

/// A live RTSP camera at 5 fps of whatever picture `live` holds.
fn camera(live: &Path) -> RtspServer {
    let launch = format!(
        "( multifilesrc location={} loop=true caps=image/png,framerate=5/1 ! pngdec \
         ! videoconvert ! video/x-raw,format=I420 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=5 \
         ! rtph264pay name=pay0 pt=96 )",
        live.display()
    );
    let mount = RtspMount {
        path: "/desk".into(),
        launch,
        protocols: RTSPLowerTrans::TCP,
    };
    RtspServer::start_on_free_port(vec![mount]).unwrap_or_else(|e| panic!("{e}"))
}

fn config(dir: &Path, broker: &str, port: u16, rtsp: &str) -> PathBuf {
    // OFF examples of the taught query come with the config; ON is taught in the page.
    let folder = dir.join("desk-examples/OFF");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(media("coffee.png"), folder.join("coffee.png")).unwrap();
    std::fs::copy(media("rocket.jpg"), folder.join("rocket.jpg")).unwrap();
    let mnv2 = models_dir().join("mobilenetv2_int8_imagenet");
    write_config(
        dir,
        &format!(
            "[mqtt]\nurl = {}\nclient_id = {}\nstate_dir = {}\n\n\
             [http]\nlisten = \"0.0.0.0:{port}\"\ntoken = \"{TOKEN}\"\n\n\
             [snapshots]\ndir = {}\n\n\
             [teach]\nreview_every = \"0s\"\n\n{}\
             [models.look]\nfamily = \"embedder\"\ndir = {}\nproviders = [\"cpu\"]\nthreads = 1\n\n\
             [[cameras]]\nrealtime = false\nid = \"desk\"\nname = \"Desk\"\nurl = {}\nsample_fps = 2\n\n\
             [[cameras.queries]]\nid = \"person\"\nask = \"is there a person at the desk?\"\n\
             kind = \"yes_no\"\nmodel = \"coco\"\nlabel = \"person\"\nregion = [0.1, 0.1, 0.9, 0.9]\n\n\
             [[cameras.queries]]\nid = \"cat\"\nask = \"is the cat on the desk?\"\nkind = \"yes_no\"\n\
             model = \"look\"\nexamples = \"desk-examples\"\nreview_below = 0.9\n",
            toml_str(broker),
            toml_str(&client_id("web-ui")),
            toml_path(&dir.join("state")),
            toml_path(&dir.join("snaps")),
            engine_and_yolox(),
            toml_path(&mnv2),
            toml_str(rtsp),
        ),
    )
}

fn api(port: u16, method: &str, path: &str, body: &[u8]) -> HttpResponse {
    http(port, method, path, Some(TOKEN), body)
        .unwrap_or_else(|| panic!("{method} {path}: no answer"))
}

fn base(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}

/// The person query's region, as the daemon runs it.
fn region(port: u16) -> Value {
    let all = api(port, "GET", "/api/queries", b"").json();
    all["cameras"]["desk"]
        .as_array()
        .and_then(|qs| qs.iter().find(|q| q["id"] == "person"))
        .map(|q| q["region"].clone())
        .unwrap_or(Value::Null)
}

/// Whether `region` (JSON, f32 digits) is `want`.
fn near(region: &Value, want: &[f64; 4]) -> bool {
    region.as_array().is_some_and(|r| {
        r.len() == 4
            && r.iter()
                .zip(want)
                .all(|(a, b)| a.as_f64().is_some_and(|a| (a - b).abs() < 1e-4))
    })
}

/// Everything the page loaded came from the daemon itself (no CDN, nothing online).
fn assert_same_origin(b: &Browser) {
    let foreign = b.execute(
        "return performance.getEntriesByType('resource').map(e => e.name)
           .filter(n => !n.startsWith(location.origin + '/') && !n.startsWith('data:') && !n.startsWith('blob:'));",
        vec![],
    );
    assert_eq!(foreign, serde_json::json!([]), "requests to elsewhere");
}

/// The text of the first element matching `css`, "" when there is none.
fn text_of(b: &Browser, css: &str) -> String {
    b.try_find(css).map(|e| e.text()).unwrap_or_default()
}

/// Waits until the element `css` has loaded a real picture (natural size > 0).
fn wait_picture(b: &Browser, css: &str, what: &str) {
    b.wait_until(
        |b| {
            b.execute(
                "const i = document.querySelector(arguments[0]); return !!i && i.complete && i.naturalWidth > 0;",
                vec![Value::from(css)],
            ) == Value::Bool(true)
        },
        WAIT,
        what,
    );
}

/// Every page of the interface reads the daemon's state and says so without a
/// console error or a failed request; the tile shows the camera and flips with
/// it; a dragged region is the query's new region (over MQTT, and after a
/// restart); labels and review answers teach the query; another site cannot
/// change anything.
#[test]
fn the_web_interface_shows_edits_and_teaches_through_a_real_browser() {
    let Some(b) = Browser::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let (cat, person) = (
        media_still(dir.path(), "chelsea.png", 640, 360),
        media_still(dir.path(), "astronaut.png", 640, 360),
    );
    let live = dir.path().join("live.png");
    show(&live, &cat);
    let mut rtsp = camera(&live);
    let broker = Mosquitto::start();
    let url = broker.url();
    let port = free_port();
    let cfg = config(dir.path(), &url, port, &rtsp.url("rtspt", "/desk"));
    let col = MqttCollector::new(&url);
    let mut daemon = Daemon::start(&cfg, &[]);
    assert!(
        wait_until(WAIT, || http(port, "GET", "/login", None, b"").is_some()),
        "the daemon's HTTP never answered:\n{}",
        daemon.output()
    );

    // Off loopback: nothing answers without the token or a session.
    let page = http(port, "GET", "/", None, b"").unwrap();
    assert_eq!(page.status, 303, "{}", page.text());
    assert_eq!(page.header("location"), Some("/login?next=/"));
    for path in [
        "/api/cameras",
        "/api/live",
        "/api/system",
        "/ui/js/main.js",
        "/api/cameras/desk/live.jpg",
    ] {
        let r = http(port, "GET", path, None, b"").unwrap();
        assert!(
            r.status == 401 || (r.status == 303 && path.starts_with("/ui/")),
            "{path}: {} {}",
            r.status,
            r.text()
        );
    }
    let r = http(port, "POST", "/api/reload", None, b"").unwrap();
    assert_eq!(r.status, 401);

    // The login form, then the cameras page.
    b.goto(&format!("{}/", base(port)));
    b.wait_for("input[name=token]", WAIT);
    b.screenshot("login");
    b.assert_no_problems("login");
    b.find("input[name=token]").send_keys(TOKEN);
    b.find("button[type=submit]").click();
    let tile = "a.tile[data-camera=\"desk\"]";
    b.wait_for(tile, WAIT);
    wait_picture(&b, &format!("{tile} img.live"), "the tile's live picture");
    b.wait_for(
        &format!("{tile} svg.overlay rect.region[data-query=\"person\"]"),
        WAIT,
    );
    b.wait_until(
        |b| text_of(b, &format!("{tile} .status")).contains("online"),
        WAIT,
        "the tile says online",
    );
    // The cat: no person. Then the astronaut: the state flips on the page.
    let chip = format!("{tile} .chip[data-query=\"person\"] .state");
    b.wait_until(
        |b| text_of(b, &chip) == "OFF",
        WAIT,
        "person OFF on the cat",
    );
    show(&live, &person);
    b.wait_until(
        |b| text_of(b, &chip) == "ON",
        WAIT,
        "person ON on the astronaut",
    );
    // The tile's picture follows within a refresh or two (2 a second).
    std::thread::sleep(Duration::from_millis(1500));
    b.screenshot("cameras");
    assert_same_origin(&b);
    b.assert_no_problems("cameras");

    // The camera page: every query with its state and sparkline; the region dragged.
    b.goto(&format!("{}/#/camera/desk", base(port)));
    let section = "section.query[data-query=\"person\"]";
    b.wait_until(
        |b| text_of(b, &format!("{section} .state")) == "ON",
        WAIT,
        "ON on the camera page",
    );
    b.wait_for(&format!("{section} svg.sparkline"), WAIT);
    wait_picture(&b, "img.live", "the camera page's live picture");
    let start = [0.1, 0.1, 0.9, 0.9];
    assert!(near(&region(port), &start), "{}", region(port));
    let rect = b.wait_for(
        "svg.overlay rect.region.editable[data-query=\"person\"]",
        WAIT,
    );
    let shown = rect.rect();
    assert!(
        shown.width > 100.0,
        "the region is drawn at its size: {shown:?}"
    );
    let since = Instant::now();
    b.drag(&rect, -40, -30);
    let attributes = "ocellus/desk/query/person/attributes";
    assert!(
        col.wait_for(
            |m| m.iter().any(|m| m.at > since
                && m.topic == attributes
                && !m.json()["region"].is_null()
                && !near(&m.json()["region"], &start)),
            WAIT
        ),
        "no new region on {attributes}:\n{}",
        col.dump()
    );
    let after = region(port);
    let (x0, y0) = (after[0].as_f64().unwrap(), after[1].as_f64().unwrap());
    assert!(x0 < 0.1 && y0 < 0.1, "dragged up and left: {after}");
    let (w, h) = (
        after[2].as_f64().unwrap() - x0,
        after[3].as_f64().unwrap() - y0,
    );
    assert!(
        (w - 0.8).abs() < 0.01 && (h - 0.8).abs() < 0.01,
        "moved, not resized: {after}"
    );
    b.wait_for(&format!("{section} .saved"), WAIT);
    // From the keyboard: the focused region moves right by a step, Enter saves.
    let rect = b.find("svg.overlay rect.region.editable[data-query=\"person\"]");
    rect.send_keys("\u{E014}\u{E007}");
    let stepped =
        [0, 1, 2, 3].map(|i| after[i].as_f64().unwrap() + if i % 2 == 0 { 0.01 } else { 0.0 });
    assert!(
        wait_until(WAIT, || near(&region(port), &stepped)),
        "the arrow key and Enter did not move the region one step: {} (was {after})",
        region(port)
    );
    let after = region(port);
    assert_same_origin(&b);
    // A refused edit says why, on the page, and changes nothing.
    let form = b.find("form.edit[data-query=\"person\"]");
    let on = form.find("input[name=on]");
    on.clear();
    on.send_keys("0.2");
    form.find("button[type=submit]").click();
    b.wait_until(
        |b| !text_of(b, &format!("{section} .refusal")).is_empty(),
        WAIT,
        "the refusal",
    );
    let why = text_of(&b, &format!("{section} .refusal"));
    assert!(why.contains("on") && why.contains("off"), "{why}");
    let person_cfg = api(port, "GET", "/api/queries", b"").json()["cameras"]["desk"]
        .as_array()
        .and_then(|qs| qs.iter().find(|q| q["id"] == "person").cloned())
        .unwrap();
    assert!(
        (person_cfg["on"].as_f64().unwrap() - 0.6).abs() < 1e-6,
        "{person_cfg}"
    );
    let _ = b.problems(); // the browser logs the refused request (400), on purpose
    b.screenshot("camera");
    b.assert_no_problems("camera");

    // Teaching: two labels of the current frame (the cat) as ON, then a review item
    // answered.
    let since = Instant::now();
    show(&live, &cat);
    // The cat is back: the person query's OFF event (it carries the frame's seq).
    let off_event = |m: &Msg| {
        m.at > since
            && m.topic == "ocellus/desk/events"
            && m.json()["query"] == "person"
            && m.json()["to"] == "OFF"
    };
    assert!(
        col.wait_for(|m| m.iter().any(off_event), WAIT),
        "no person OFF event on the cat:\n{}",
        col.dump()
    );
    let off = col
        .messages()
        .into_iter()
        .find(off_event)
        .map(|m| m.json())
        .unwrap();
    // The live picture follows the scene: a frame at or after the one that turned
    // the query OFF.
    let flipped = off["seq"].as_u64().unwrap();
    let mut seen = 0;
    assert!(
        wait_until(Duration::from_secs(10), || {
            let r = api(port, "GET", "/api/cameras/desk/live.jpg", b"");
            seen = r
                .header("x-frame-seq")
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            r.status == 200 && seen >= flipped
        }),
        "the live picture is frame {seen}, the scene changed at frame {flipped}"
    );
    b.goto(&format!("{}/#/teach/desk/cat", base(port)));
    b.wait_for("button.label-now[data-state=\"ON\"]", WAIT);
    b.wait_until(
        |b| {
            b.try_find("img.live")
                .and_then(|i| i.attribute("data-seq"))
                .and_then(|s| s.parse::<u64>().ok())
                .is_some_and(|s| s >= flipped)
        },
        WAIT,
        "the teach page shows the cat",
    );
    b.wait_until(
        |b| text_of(b, ".accuracy").contains('—'),
        WAIT,
        "no accuracy before ON has examples",
    );
    let count = |b: &Browser| b.find_all(".examples .example").len();
    b.wait_until(|b| count(b) >= 2, WAIT, "the OFF examples from the folder");
    let start = count(&b);
    b.find("button.label-now[data-state=\"ON\"]").click();
    b.wait_until(|b| count(b) == start + 1, WAIT, "one more example");
    b.find("button.label-now[data-state=\"ON\"]").click();
    b.wait_until(|b| count(b) == start + 2, WAIT, "two more examples");
    b.wait_until(
        |b| {
            let t = text_of(b, ".accuracy");
            t.contains('%') && !t.contains('—')
        },
        WAIT,
        "an accuracy once both states have two examples",
    );
    let taught = api(port, "GET", "/api/cameras/desk/queries/cat/examples", b"").json();
    assert_eq!(taught["summary"]["examples"]["ON"], 2, "{taught}");
    b.wait_for(".review .review-item", WAIT);
    let item = b.find(".review .review-item");
    let id = item.attribute("data-id").expect("a review item id");
    let examples = count(&b);
    item.find("button.answer[data-state=\"OFF\"]").click();
    b.wait_until(
        |b| {
            b.try_find(&format!(".review .review-item[data-id=\"{id}\"]"))
                .is_none()
        },
        WAIT,
        "the answered item leaves the queue",
    );
    b.wait_until(
        |b| count(b) == examples + 1,
        WAIT,
        "the answer is an example",
    );
    // Deleting an example.
    let gone = b
        .find_all(".examples .example")
        .into_iter()
        .find(|e| e.try_find("button.delete").is_some())
        .expect("an example that can be deleted");
    let gone_id = gone.attribute("data-id").unwrap();
    let before_delete = count(&b);
    gone.find("button.delete").click();
    b.wait_until(
        |b| count(b) == before_delete - 1,
        WAIT,
        "the deleted example leaves the list",
    );
    let left = api(port, "GET", "/api/cameras/desk/queries/cat/examples", b"").json();
    assert!(
        !left["examples"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == gone_id.as_str()),
        "{left}"
    );
    let listed = api(port, "GET", "/api/cameras/desk/review", b"").json();
    assert!(
        !listed["review"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == id.as_str()),
        "{listed}"
    );
    b.screenshot("teach");
    b.assert_no_problems("teach");

    // Events: the flips, with their snapshots.
    b.goto(&format!("{}/#/events", base(port)));
    b.wait_for(".event[data-id] img.thumb", WAIT);
    wait_picture(&b, ".event[data-id] img.thumb", "an event's thumbnail");
    b.screenshot("events");
    b.assert_no_problems("events");

    // Ask: a one-shot question on the current frame (the astronaut again).
    let since = Instant::now();
    show(&live, &person);
    let on_event = |m: &Msg| {
        m.at > since
            && m.topic == "ocellus/desk/events"
            && m.json()["query"] == "person"
            && m.json()["to"] == "ON"
    };
    assert!(
        col.wait_for(|m| m.iter().any(on_event), WAIT),
        "no person ON event on the astronaut:\n{}",
        col.dump()
    );
    b.goto(&format!("{}/#/ask", base(port)));
    let form = b.wait_for("form.ask", WAIT);
    b.wait_for("select[name=model] option[value=\"coco\"]", WAIT);
    b.execute(
        "const f = document.querySelector('form.ask');
         f.querySelector('select[name=camera]').value = 'desk';
         f.querySelector('select[name=model]').value = 'coco';
         f.querySelector('select[name=kind]').value = 'yes_no';
         for (const s of f.querySelectorAll('select')) s.dispatchEvent(new Event('change', {bubbles: true}));",
        vec![],
    );
    let ask = form.find("input[name=ask]");
    ask.clear();
    ask.send_keys("is there a person?");
    if let Some(label) = form.try_find("input[name=label]") {
        label.clear();
        label.send_keys("person");
    }
    form.find("button[type=submit]").click();
    b.wait_until(
        |b| !text_of(b, ".answer .state").is_empty(),
        WAIT,
        "an answer",
    );
    b.wait_until(
        |b| text_of(b, ".answer .state") == "ON",
        WAIT,
        "the astronaut is a person",
    );
    assert!(
        text_of(&b, ".timings").contains("ms"),
        "{}",
        text_of(&b, ".timings")
    );
    b.screenshot("ask");
    b.assert_no_problems("ask");

    // System: models with their provider, cameras with their rates.
    b.goto(&format!("{}/#/system", base(port)));
    b.wait_for(".models .model[data-model=\"coco\"]", WAIT);
    b.wait_for(".cameras .camera[data-camera=\"desk\"]", WAIT);
    b.wait_until(
        |b| {
            text_of(b, ".models .model[data-model=\"coco\"]")
                .to_lowercase()
                .contains("cpu")
        },
        WAIT,
        "the provider",
    );
    b.screenshot("system");
    b.assert_no_problems("system");

    // On a phone.
    b.set_window_size(390, 844);
    b.goto(&format!("{}/", base(port)));
    wait_picture(&b, &format!("{tile} img.live"), "the tile on a phone");
    b.screenshot("cameras-phone");
    b.assert_no_problems("cameras on a phone");
    b.set_window_size(1280, 900);

    // The session's cookie alone does not change anything: a change needs its CSRF
    // token too (which the page sends, and another site cannot read).
    b.goto(&format!("{}/#/system", base(port)));
    b.wait_for(".models .model[data-model=\"coco\"]", WAIT);
    let refused = b.execute_async(
        "const done = arguments[arguments.length - 1];
         fetch('/api/cameras/desk/queries/cat/examples', {method: 'POST', body: '{\"state\":\"ON\"}',
               headers: {'Content-Type': 'application/json'}})
           .then(r => r.text().then(t => done([r.status, t])), e => done([0, String(e)]));",
        vec![],
    );
    assert_eq!(
        refused[0], 403,
        "a cookie without its CSRF token: {refused}"
    );
    assert!(
        refused[1].as_str().unwrap().contains("X-CSRF-Token"),
        "{refused}"
    );
    let _ = b.problems(); // the refused request is logged by the browser, on purpose

    // Another site's page, in the same browser (logged in here), cannot change
    // anything: a form posted across sites is refused, and the examples stay.
    let examples_now =
        api(port, "GET", "/api/cameras/desk/queries/cat/examples", b"").json()["examples"]
            .as_array()
            .map(Vec::len);
    let evil = Evil::serve(port);
    b.goto(&evil.url());
    b.wait_until(
        |b| evil.hits() >= 1 && b.current_url().contains(&port.to_string()),
        WAIT,
        "the forged form was posted",
    );
    let answered = b.execute(
        "return document.body ? document.body.innerText : ''",
        vec![],
    );
    assert!(
        answered
            .as_str()
            .is_some_and(|t| t.contains("Origin") || t.contains("session") || t.contains("X-CSRF")),
        "the forged post was not refused: {answered}"
    );
    let examples_then =
        api(port, "GET", "/api/cameras/desk/queries/cat/examples", b"").json()["examples"]
            .as_array()
            .map(Vec::len);
    assert_eq!(examples_now, examples_then, "a forged label was taken");
    drop(b);

    // After a restart, the dragged region is still the query's.
    daemon.stop();
    let mut daemon = Daemon::start(&cfg, &[]);
    assert!(
        wait_until(WAIT, || http(port, "GET", "/api/queries", Some(TOKEN), b"")
            .is_some_and(
                |r| r.status == 200 && !r.json()["cameras"]["desk"].is_null()
            )),
        "{}",
        daemon.output()
    );
    let again = region(port);
    let dragged = [0, 1, 2, 3].map(|i| after[i].as_f64().unwrap());
    assert!(
        near(&again, &dragged),
        "the region did not survive a restart: {again} (was {after}): {}\n{}",
        api(port, "GET", "/api/queries", b"").text(),
        daemon.output()
    );
    daemon.stop();
    rtsp.stop();
}

/// Another site (`localhost`, not `127.0.0.1`): a page whose form posts a label to
/// the daemon as soon as it loads (a `text/plain` body that reads as JSON).
struct Evil {
    port: u16,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Evil {
    fn serve(daemon: u16) -> Evil {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = hits.clone();
        let page = format!(
            "<!doctype html><meta charset=utf-8><link rel=icon href=\"data:,\"><title>evil</title>\
             <form id=f method=POST enctype=text/plain \
             action=\"http://127.0.0.1:{daemon}/api/cameras/desk/queries/cat/examples\">\
             <input name='{{\"state\":\"ON\",\"x\":\"' value='\"}}'></form>\
             <script>document.getElementById('f').submit()</script>"
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut buf = [0u8; 4096];
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let _ = conn.read(&mut buf);
                seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
                    page.len()
                );
            }
        });
        Evil { port, hits }
    }

    fn url(&self) -> String {
        format!("http://localhost:{}/", self.port)
    }

    fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}
