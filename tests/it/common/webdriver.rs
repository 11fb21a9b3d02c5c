//! A small synchronous W3C WebDriver client for chromedriver, over `ureq`
//! (`WebDriver`, `Element`, `Rect`, `LogEntry`).
//!
//! Hand-written rather than fantoccini or thirtyfour: those are async and bring about
//! 20 more crates to build on the 2-core CI, and chromedriver's browser log
//! (`POST /session/{id}/se/log`) is not in their API.
//!
//! A command that WebDriver answers with an error (`{"value":{"error","message"}}`)
//! panics with the command and the message.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use ureq::Agent;

/// The key of an element reference in WebDriver's JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// The longest any one command may take (a page load, an async script).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A WebDriver error answer.
#[derive(Debug)]
struct WdError {
    error: String,
    message: String,
}

/// The HTTP side of one session: the agent and `http://HOST:PORT/session/ID`.
#[derive(Clone)]
struct Conn {
    agent: Agent,
    base: String,
}

impl Conn {
    fn agent() -> Agent {
        Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(COMMAND_TIMEOUT))
            .build()
            .into()
    }

    /// `method base/path` with `body` (JSON, POST only); the answer's `value`.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, WdError> {
        send(&self.agent, method, &format!("{}{path}", self.base), body)
    }

    /// `call`, panicking on an error with the command and the message.
    fn cmd(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        self.call(method, path, body).unwrap_or_else(|e| {
            panic!(
                "WebDriver {method} {path} failed: {}: {}",
                e.error, e.message
            )
        })
    }
}

/// One request; a transport failure is an error too (`error` "transport").
fn send(agent: &Agent, method: &str, url: &str, body: Option<&Value>) -> Result<Value, WdError> {
    let transport = |e: ureq::Error| WdError {
        error: "transport".into(),
        message: format!("{url}: {e}"),
    };
    let response = match method {
        "GET" => agent.get(url).call(),
        "DELETE" => agent.delete(url).call(),
        "POST" => agent
            .post(url)
            .header("Content-Type", "application/json")
            .send(body.unwrap_or(&json!({})).to_string().as_bytes()),
        _ => panic!("unsupported WebDriver method {method}"),
    };
    let bytes = response
        .map_err(transport)?
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_vec()
        .map_err(transport)?;
    let answer: Value = serde_json::from_slice(&bytes).map_err(|e| WdError {
        error: "not JSON".into(),
        message: format!("{e}: {}", String::from_utf8_lossy(&bytes)),
    })?;
    let value = answer.get("value").cloned().unwrap_or(Value::Null);
    match value.get("error").and_then(Value::as_str) {
        Some(error) => Err(WdError {
            error: error.to_string(),
            message: value["message"].as_str().unwrap_or_default().to_string(),
        }),
        None => Ok(value),
    }
}

/// An element's position and size in CSS pixels, relative to the document.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

/// One entry of the browser's log.
#[derive(Debug, Clone)]
pub struct LogEntry {
    /// `SEVERE`, `WARNING`, `INFO`, ...
    pub level: String,
    /// Where from: `console-api`, `javascript`, `network`, ...
    pub source: String,
    pub message: String,
}

/// A WebDriver session; deleted (the browser closed) on drop.
pub struct WebDriver {
    conn: Conn,
    id: String,
}

impl WebDriver {
    /// Opens a session on the driver at `driver_url` (`http://127.0.0.1:PORT`) with
    /// `capabilities` (the `alwaysMatch` object).
    pub fn new_session(driver_url: &str, capabilities: Value) -> Self {
        let agent = Conn::agent();
        let body = json!({ "capabilities": { "alwaysMatch": capabilities } });
        let url = format!("{driver_url}/session");
        let value = send(&agent, "POST", &url, Some(&body))
            .unwrap_or_else(|e| panic!("WebDriver new session: {}: {}", e.error, e.message));
        let id = value["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {value}"))
            .to_string();
        let base = format!("{url}/{id}");
        Self {
            conn: Conn { agent, base },
            id,
        }
    }

    pub fn session_id(&self) -> &str {
        &self.id
    }

    /// Navigates to `url` (and waits as the session's page load strategy says).
    pub fn goto(&self, url: &str) {
        self.conn.cmd("POST", "/url", Some(&json!({ "url": url })));
    }

    pub fn current_url(&self) -> String {
        as_string(self.conn.cmd("GET", "/url", None))
    }

    pub fn title(&self) -> String {
        as_string(self.conn.cmd("GET", "/title", None))
    }

    /// The first element matching the CSS selector `css`; panics if there is none.
    pub fn find(&self, css: &str) -> Element {
        self.try_find(css)
            .unwrap_or_else(|| panic!("no element matches `{css}` on {}", self.current_url()))
    }

    /// The first element matching `css`, if any.
    pub fn try_find(&self, css: &str) -> Option<Element> {
        find_in(&self.conn, "", css)
    }

    /// Every element matching `css`, in document order.
    pub fn find_all(&self, css: &str) -> Vec<Element> {
        find_all_in(&self.conn, "", css)
    }

    /// Runs `script` (a function body: `return` its result) with `arguments` set to
    /// `args` (an `Element::to_arg` becomes the element); its result as JSON.
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Value {
        let body = json!({ "script": script, "args": args });
        self.conn.cmd("POST", "/execute/sync", Some(&body))
    }

    /// Runs `script` with a callback as its last argument
    /// (`arguments[arguments.length - 1]`); the value it is called with (the
    /// session's script timeout, 30 s by default, applies).
    pub fn execute_async(&self, script: &str, args: Vec<Value>) -> Value {
        let body = json!({ "script": script, "args": args });
        self.conn.cmd("POST", "/execute/async", Some(&body))
    }

    /// The viewport as a PNG.
    pub fn screenshot_png(&self) -> Vec<u8> {
        decode_png(self.conn.cmd("GET", "/screenshot", None))
    }

    /// Sets the window's outer size.
    pub fn set_window_size(&self, width: u32, height: u32) {
        let body = json!({ "width": width, "height": height });
        self.conn.cmd("POST", "/window/rect", Some(&body));
    }

    /// Presses the mouse at `element`'s centre, moves it by (`dx`, `dy`) in steps and
    /// releases it.
    pub fn drag(&self, element: &Element, dx: i64, dy: i64) {
        self.drag_by_offset(element, (0, 0), dx, dy);
    }

    /// Presses the mouse at `offset` from `element`'s centre, moves it by (`dx`,
    /// `dy`) in several short steps (the page sees pointermove events) and releases
    /// it; then releases the input state.
    pub fn drag_by_offset(&self, element: &Element, offset: (i64, i64), dx: i64, dy: i64) {
        const STEPS: i64 = 8;
        let mut actions = vec![
            json!({ "type": "pointerMove", "duration": 0, "origin": element.to_arg(),
                    "x": offset.0, "y": offset.1 }),
            json!({ "type": "pointerDown", "button": 0 }),
        ];
        // Steps relative to the pointer, rounded so that they add up to (dx, dy).
        let at = |i: i64, d: i64| (d as f64 * i as f64 / STEPS as f64).round() as i64;
        for i in 1..=STEPS {
            let (x, y) = (at(i, dx) - at(i - 1, dx), at(i, dy) - at(i - 1, dy));
            actions.push(
                json!({ "type": "pointerMove", "duration": 10, "origin": "pointer",
                        "x": x, "y": y }),
            );
        }
        actions.push(json!({ "type": "pointerUp", "button": 0 }));
        let body = json!({ "actions": [{
            "type": "pointer", "id": "mouse", "parameters": { "pointerType": "mouse" },
            "actions": actions,
        }]});
        self.conn.cmd("POST", "/actions", Some(&body));
        self.release_actions();
    }

    /// Releases every key and button the actions left pressed.
    pub fn release_actions(&self) {
        self.conn.cmd("DELETE", "/actions", None);
    }

    /// The browser's log entries since the last call (chromedriver's
    /// `POST /session/{id}/se/log`, which drains them); needs the capability
    /// `goog:loggingPrefs: {"browser": "ALL"}`.
    pub fn browser_log(&self) -> Vec<LogEntry> {
        let value = self
            .conn
            .cmd("POST", "/se/log", Some(&json!({ "type": "browser" })));
        let field = |e: &Value, k: &str| e[k].as_str().unwrap_or_default().to_string();
        value
            .as_array()
            .unwrap_or_else(|| panic!("browser log is not a list: {value}"))
            .iter()
            .map(|e| LogEntry {
                level: field(e, "level"),
                source: field(e, "source"),
                message: field(e, "message"),
            })
            .collect()
    }
}

impl Drop for WebDriver {
    fn drop(&mut self) {
        // No panic here (a drop while unwinding would abort) and no long wait.
        let agent: Agent = Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into();
        let _ = send(&agent, "DELETE", &self.conn.base, None);
    }
}

/// An element of the page (a WebDriver element reference).
#[derive(Clone)]
pub struct Element {
    conn: Conn,
    id: String,
}

impl std::fmt::Debug for Element {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Element({})", self.id)
    }
}

impl Element {
    /// The element as an argument of `WebDriver::execute` (or an action's origin).
    pub fn to_arg(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }

    /// The first element under this one matching `css`; panics if there is none.
    pub fn find(&self, css: &str) -> Element {
        self.try_find(css)
            .unwrap_or_else(|| panic!("no element matches `{css}` under {self:?}"))
    }

    /// The first element under this one matching `css`, if any.
    pub fn try_find(&self, css: &str) -> Option<Element> {
        find_in(&self.conn, &format!("/element/{}", self.id), css)
    }

    /// Every element under this one matching `css`.
    pub fn find_all(&self, css: &str) -> Vec<Element> {
        find_all_in(&self.conn, &format!("/element/{}", self.id), css)
    }

    pub fn click(&self) {
        self.post("/click", json!({}));
    }

    /// Types `text` into the element.
    pub fn send_keys(&self, text: &str) {
        self.post("/value", json!({ "text": text }));
    }

    /// Empties an input or a textarea.
    pub fn clear(&self) {
        self.post("/clear", json!({}));
    }

    /// The rendered text.
    pub fn text(&self) -> String {
        as_string(self.get("/text"))
    }

    /// The attribute `name` (as in the HTML), if the element has it.
    pub fn attribute(&self, name: &str) -> Option<String> {
        self.get(&format!("/attribute/{name}"))
            .as_str()
            .map(str::to_string)
    }

    /// The DOM property `name` (`value`, `checked`, ...) as JSON.
    pub fn property(&self, name: &str) -> Value {
        self.get(&format!("/property/{name}"))
    }

    pub fn is_displayed(&self) -> bool {
        self.get("/displayed").as_bool().unwrap_or(false)
    }

    pub fn rect(&self) -> Rect {
        let v = self.get("/rect");
        let n = |k: &str| {
            v[k].as_f64()
                .unwrap_or_else(|| panic!("no {k} in rect {v}"))
        };
        Rect {
            x: n("x"),
            y: n("y"),
            width: n("width"),
            height: n("height"),
        }
    }

    /// The element alone as a PNG.
    pub fn screenshot_png(&self) -> Vec<u8> {
        decode_png(self.get("/screenshot"))
    }

    fn get(&self, what: &str) -> Value {
        self.conn
            .cmd("GET", &format!("/element/{}{what}", self.id), None)
    }

    fn post(&self, what: &str, body: Value) {
        self.conn
            .cmd("POST", &format!("/element/{}{what}", self.id), Some(&body));
    }
}

fn find_in(conn: &Conn, under: &str, css: &str) -> Option<Element> {
    let body = json!({ "using": "css selector", "value": css });
    match conn.call("POST", &format!("{under}/element"), Some(&body)) {
        Ok(v) => Some(element(conn, &v)),
        Err(e) if e.error == "no such element" => None,
        Err(e) => panic!("WebDriver find `{css}` failed: {}: {}", e.error, e.message),
    }
}

fn find_all_in(conn: &Conn, under: &str, css: &str) -> Vec<Element> {
    let body = json!({ "using": "css selector", "value": css });
    let v = conn.cmd("POST", &format!("{under}/elements"), Some(&body));
    v.as_array()
        .unwrap_or_else(|| panic!("find all `{css}`: not a list: {v}"))
        .iter()
        .map(|e| element(conn, e))
        .collect()
}

fn element(conn: &Conn, v: &Value) -> Element {
    let id = v[ELEMENT_KEY]
        .as_str()
        .unwrap_or_else(|| panic!("not an element reference: {v}"));
    Element {
        conn: conn.clone(),
        id: id.to_string(),
    }
}

fn as_string(v: Value) -> String {
    match v {
        Value::String(s) => s,
        other => panic!("expected a string from WebDriver, got {other}"),
    }
}

fn decode_png(v: Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(as_string(v))
        .expect("screenshot is base64")
}
