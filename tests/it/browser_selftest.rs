//! Tests of the browser harness (`common::Browser`, `common::WebDriver`) against the
//! real Chromium and chromedriver, on pages from a tiny HTTP server here: that its
//! commands work and that its checks of a page can fail.
//!
//! Without chromium or chromedriver installed each test skips (`Browser::start`
//! returns `None`), unless `OCELLUS_REQUIRE_BROWSER` is set, as on CI.

use crate::common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use common::*;

const T: Duration = Duration::from_secs(10);

/// The head of every page: no `/favicon.ico` request, which would 404.
const HEAD: &str = r#"<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">"#;

const CLEAN: &str = r#"<title>Clean</title>
<button id="b" onclick="this.textContent = 'clicked'">click me</button>
<input id="i" value="old">
<p id="hidden" style="display: none">hidden</p>"#;

const BAD: &str = r#"<title>Bad</title>
<script>console.error("boom");</script>
<script>throw new Error("uncaught-selftest");</script>
<img src="/missing.png">"#;

const DRAG: &str = r#"<title>Drag</title>
<div id="pad" style="position: absolute; left: 50px; top: 50px; width: 400px; height: 300px;
     background: #ddd; touch-action: none"></div>
<pre id="out" style="position: absolute; top: 400px">{}</pre>
<script>
  const pad = document.getElementById('pad'), out = document.getElementById('out');
  let rec = {};
  const show = () => out.textContent = JSON.stringify(rec);
  pad.addEventListener('pointerdown', e => {
    rec = { down: [e.clientX, e.clientY], moves: 0 };
    pad.setPointerCapture(e.pointerId);
    show();
  });
  pad.addEventListener('pointermove', e => { if (rec.down && !rec.up) { rec.moves++; show(); } });
  pad.addEventListener('pointerup', e => { rec.up = [e.clientX, e.clientY]; show(); });
</script>"#;

#[test]
fn clean_page_commands_and_screenshot() {
    let Some(b) = Browser::start() else { return };
    let pages = Pages::serve(&[("/clean", CLEAN)]);
    b.goto(&pages.url("/clean"));
    assert_eq!(b.title(), "Clean");
    assert_eq!(b.current_url(), pages.url("/clean"));

    let button = b.wait_for("#b", T);
    assert_eq!(button.text(), "click me");
    button.click();
    b.wait_until(|_| button.text() == "clicked", T, "the button's new text");

    let input = b.find("#i");
    input.clear();
    input.send_keys("new");
    assert_eq!(input.property("value"), "new");
    assert_eq!(input.attribute("value").as_deref(), Some("old"));
    assert_eq!(input.attribute("placeholder"), None);
    assert!(button.is_displayed());
    assert!(!b.find("#hidden").is_displayed());
    assert!(button.rect().width > 0.0 && button.rect().height > 0.0);
    assert_eq!(b.find_all("button, input").len(), 2);
    assert!(b.try_find("#nothing").is_none());

    let got = b.execute(
        "return arguments[0].id + arguments[1]",
        vec![button.to_arg(), json!(2)],
    );
    assert_eq!(got, "b2");
    let got = b.execute_async(
        "const done = arguments[arguments.length - 1]; setTimeout(() => done(arguments[0] * 2), 10)",
        vec![json!(21)],
    );
    assert_eq!(got, 42);
    b.set_window_size(800, 600);
    assert_eq!(b.execute("return window.outerWidth", vec![]), 800);

    let path = b.screenshot("selftest-clean");
    let png = std::fs::read(&path).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "not a PNG: {}",
        path.display()
    );
    assert!(png.len() > 1000, "a PNG of only {} bytes", png.len());
    b.assert_no_problems("clean");
}

#[test]
fn problems_name_console_errors_exceptions_and_failed_requests() {
    let Some(b) = Browser::start() else { return };
    let pages = Pages::serve(&[("/bad", BAD)]);
    let load = |b: &Browser| {
        b.goto(&pages.url("/bad"));
        b.wait_until(
            |b| b.execute("return document.readyState", vec![]) == "complete",
            T,
            "the page loaded",
        );
    };

    // All three, from the browser's log (which may come a moment after the page).
    load(&b);
    let mut seen = Vec::new();
    let wanted = [
        "\"boom\"",
        "Uncaught Error: uncaught-selftest",
        "missing.png - Failed to load resource",
    ];
    b.wait_until(
        |b| {
            seen.extend(b.problems());
            wanted.iter().all(|w| seen.iter().any(|p| p.contains(w)))
        },
        T,
        "the three problems",
    );
    assert!(
        seen.iter()
            .any(|p| p.contains("missing.png") && p.contains("404")),
        "{seen:#?}"
    );
    // Drained: the next call sees nothing new.
    assert_eq!(b.problems(), Vec::<String>::new());

    // The page's own record of its requests names the 404 when the log does not.
    load(&b);
    b.wait_until(
        |b| {
            b.browser_log()
                .iter()
                .any(|e| e.message.contains("missing.png"))
        },
        T,
        "the 404 in the browser's log",
    );
    let problems = b.problems();
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("resource: ") && p.ends_with("/missing.png answered 404")),
        "{problems:#?}"
    );

    // And the assertion fails.
    load(&b);
    let failed = std::panic::catch_unwind(AssertUnwindSafe(|| b.assert_no_problems("bad")));
    let message = failed.expect_err("assert_no_problems passed on a page with a 404");
    let message = message
        .downcast_ref::<String>()
        .cloned()
        .unwrap_or_default();
    assert!(message.contains("missing.png"), "{message}");
}

#[test]
fn drag_moves_the_pointer_by_the_offset() {
    let Some(b) = Browser::start() else { return };
    let pages = Pages::serve(&[("/drag", DRAG)]);
    b.goto(&pages.url("/drag"));
    let pad = b.wait_for("#pad", T);
    let out = b.find("#out");
    let near = |got: &Value, want: f64| {
        let got = got.as_f64().unwrap_or(f64::NAN);
        (got - want).abs() <= 2.0
    };

    // The pad's centre is (250, 200).
    b.drag(&pad, 100, 40);
    let rec: Value = serde_json::from_str(&out.text()).unwrap();
    assert!(
        near(&rec["down"][0], 250.0) && near(&rec["down"][1], 200.0),
        "{rec}"
    );
    assert!(
        near(&rec["up"][0], 350.0) && near(&rec["up"][1], 240.0),
        "{rec}"
    );
    assert!(rec["moves"].as_u64().unwrap() >= 2, "{rec}");

    b.drag_by_offset(&pad, (-100, -50), -60, 30);
    let rec: Value = serde_json::from_str(&out.text()).unwrap();
    assert!(
        near(&rec["down"][0], 150.0) && near(&rec["down"][1], 150.0),
        "{rec}"
    );
    assert!(
        near(&rec["up"][0], 90.0) && near(&rec["up"][1], 180.0),
        "{rec}"
    );
    b.assert_no_problems("drag");
}

/// A tiny HTTP server of fixed HTML pages (`HEAD` then the body); any other path is
/// a 404. Stops on drop.
struct Pages {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Pages {
    fn serve(pages: &[(&'static str, &'static str)]) -> Pages {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let pages = pages.to_vec();
        let stopped = stop.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(conn) = conn else { continue };
                let pages = pages.clone();
                // A thread each: Chromium opens connections it may never use.
                std::thread::spawn(move || answer(conn, &pages));
            }
        });
        Pages { port, stop }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Pages {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn answer(mut conn: TcpStream, pages: &[(&str, &str)]) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head.split(' ').nth(1).unwrap_or_default();
    let (status, body) = match pages.iter().find(|(p, _)| *p == path) {
        Some((_, body)) => ("200 OK", format!("{HEAD}{body}")),
        None => ("404 Not Found", "not found".to_string()),
    };
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
