//! A real headless Chromium driven over WebDriver (`Browser`), for the web UI's
//! tests: Debian's `chromium` and `chromium-driver` (`deploy/setup.sh` installs them).
//!
//! `Browser::start()` returns `None` (and says so on stderr) when `chromium` or
//! `chromedriver` is not installed, so that a test can skip; with the environment
//! variable `OCELLUS_REQUIRE_BROWSER` set (CI sets it) a missing browser fails the
//! test instead. A `Browser` is a `WebDriver` (it derefs to one) plus waiting,
//! screenshots and the page's problems (`problems`, `assert_no_problems`).

use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use super::net::{free_port, port_accepts};
use super::process::KillOnDrop;
use super::webdriver::{Element, WebDriver};

/// How often `wait_for` and `wait_until` look again.
const POLL: Duration = Duration::from_millis(25);

/// Reports, and clears, the page's resources that answered 4xx or 5xx.
const FAILED_RESOURCES: &str = "
    const failed = performance.getEntriesByType('resource')
        .filter(e => e.responseStatus >= 400)
        .map(e => e.name + ' answered ' + e.responseStatus);
    performance.clearResourceTimings();
    return failed;";

/// A headless Chromium with a fresh profile, closed (and its chromedriver killed)
/// on drop.
pub struct Browser {
    // Dropped in this order: the session (which closes Chromium), the driver, then
    // the profile.
    driver: WebDriver,
    _chromedriver: KillOnDrop,
    _profile: tempfile::TempDir,
}

impl Deref for Browser {
    type Target = WebDriver;

    fn deref(&self) -> &WebDriver {
        &self.driver
    }
}

impl Browser {
    /// Starts chromedriver and a Chromium session (about 1 s); `None` when either
    /// is not installed and `OCELLUS_REQUIRE_BROWSER` is not set.
    pub fn start() -> Option<Browser> {
        let (Some(chromium), Some(chromedriver)) = (on_path("chromium"), on_path("chromedriver"))
        else {
            let required =
                std::env::var_os("OCELLUS_REQUIRE_BROWSER").is_some_and(|v| !v.is_empty());
            assert!(
                !required,
                "OCELLUS_REQUIRE_BROWSER is set but chromium or chromedriver is not installed \
                 (run deploy/setup.sh)"
            );
            eprintln!("skipped: chromium or chromedriver is not installed (run deploy/setup.sh)");
            return None;
        };
        let (port, chromedriver) = spawn_chromedriver(&chromedriver);
        let profile = tempfile::Builder::new()
            .prefix("ocellus-chromium-")
            .tempdir()
            .expect("a temporary profile folder");
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--window-size=1280,900",
        ]
        .map(String::from)
        .into_iter()
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let capabilities = json!({
            "browserName": "chrome",
            // The pages hold never-ending MJPEG images: do not wait for `load`.
            "pageLoadStrategy": "eager",
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": { "binary": chromium, "args": args },
        });
        let driver = WebDriver::new_session(&format!("http://127.0.0.1:{port}"), capabilities);
        Some(Browser {
            driver,
            _chromedriver: chromedriver,
            _profile: profile,
        })
    }

    /// Waits up to `timeout` for an element matching `css` to be in the page.
    pub fn wait_for(&self, css: &str, timeout: Duration) -> Element {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.try_find(css) {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "no element matches `{css}` after {timeout:?} on {}",
                self.current_url()
            );
            thread::sleep(POLL);
        }
    }

    /// Waits up to `timeout` for `cond`; panics saying it waited for `what`.
    pub fn wait_until(
        &self,
        mut cond: impl FnMut(&Browser) -> bool,
        timeout: Duration,
        what: &str,
    ) {
        let deadline = Instant::now() + timeout;
        while !cond(self) {
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what} on {}",
                self.current_url()
            );
            thread::sleep(POLL);
        }
    }

    /// Saves the viewport as `<target>/web/<name>.png` (`<target>`:
    /// `$CARGO_TARGET_DIR` or the crate's `target/`) and returns the path.
    pub fn screenshot(&self, name: &str) -> PathBuf {
        let dir = target_dir().join("web");
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, self.screenshot_png())
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// What went wrong in the page since the last call: every SEVERE entry of the
    /// browser's log (`console.error`, an uncaught exception, a request that failed:
    /// Chromium's "Failed to load resource" for a 4xx, a 5xx or a network error), then
    /// each resource of the page that answered 4xx or 5xx and is not already named
    /// (from the page's resource timing). Both are drained: the next call sees only
    /// what came after. An error that comes late (a page's `/favicon.ico`, asked for
    /// after the page, so a page must declare an icon) lands in the next call.
    pub fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .browser_log()
            .into_iter()
            .filter(|e| e.level == "SEVERE")
            .map(|e| format!("{}: {}", e.source, e.message))
            .collect();
        let failed = self.execute(FAILED_RESOURCES, vec![]);
        for f in failed
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str())
        {
            let url = f.split(' ').next().unwrap_or_default();
            if !problems.iter().any(|p| p.contains(url)) {
                problems.push(format!("resource: {f}"));
            }
        }
        problems
    }

    /// Panics listing the `problems` of the page `page` (a name for the message), if any.
    pub fn assert_no_problems(&self, page: &str) {
        let problems = self.problems();
        assert!(
            problems.is_empty(),
            "the page {page} ({}) has problems:\n  {}",
            self.current_url(),
            problems.join("\n  ")
        );
    }
}

/// Starts chromedriver on a free port and waits until it accepts; tries another
/// port when the one it was given was taken in the meantime.
fn spawn_chromedriver(program: &Path) -> (u16, KillOnDrop) {
    for _ in 0..3 {
        let port = free_port();
        let child = Command::new(program)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        let mut child = KillOnDrop(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if port_accepts(port) {
                return (port, child);
            }
            if child.0.try_wait().ok().flatten().is_some() {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("chromedriver did not start (3 tries)");
}

/// `name` on `PATH`, if it is there.
fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// `$CARGO_TARGET_DIR`, or the crate's `target/`.
fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("target"),
    }
}
