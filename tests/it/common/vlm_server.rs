//! A served VLM on 127.0.0.1 for the `openai` and `ollama` families' tests
//! (`VlmServer`), speaking one dialect as its server documents it and checking every
//! request strictly: the path and method, `Content-Type`, the bearer key when one is
//! expected, the model name, one user message carrying one image as a base64 JPEG
//! (a `data:image/jpeg;base64,` URI in OpenAI's `image_url`; a bare base64 string in
//! Ollama's `images`), `stream: false`, integer token caps, `logprobs: true` with
//! `top_logprobs` in 0..=20, a JSON schema as OpenAI's `response_format` or Ollama's
//! `format`, and no key either API lacks. A request that breaks the contract is
//! answered 400 with the dialect's error shape and recorded as a violation, which
//! the tests assert never happens.
//!
//! Answers follow the request: a schema with `answer` gets `{"answer", "confidence"}`
//! from `p_yes`; one with `label` gets the configured label; a `logprobs` request
//! gets "Yes"/"No" with the first token's top log-probabilities (or none, as a server
//! without them answers); anything else gets the configured text. Faults are queued
//! and each taken by one request: an HTTP status (429 with `Retry-After`, 500), a
//! malformed body, a reply that never comes (held until the server is dropped).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// Which API the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    OpenAi,
    Ollama,
}

/// One queued misbehaviour, taken by the next request.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer this status with the dialect's error body and, when given, `Retry-After`.
    Status(u16, Option<u64>),
    /// Answer 200 with this body.
    Body(String),
    /// Never answer (the connection is held open until the server is dropped).
    Hang,
}

/// How the server answers well-formed requests.
#[derive(Debug, Clone)]
pub struct Brain {
    /// p(yes) of yes/no questions (as log-probabilities or JSON confidence).
    pub p_yes: f32,
    /// Whether the server returns log-probabilities when asked.
    pub logprobs: bool,
    /// The label of classify answers.
    pub label: String,
    /// The text of answers to prompts asking for `bbox_2d` boxes.
    pub boxes: String,
    /// The text of every other answer (captions, answers, readings).
    pub text: String,
}

impl Default for Brain {
    fn default() -> Self {
        Self {
            p_yes: 0.9,
            logprobs: true,
            label: String::new(),
            boxes: "[]".into(),
            text: "A cat on a red blanket.".into(),
        }
    }
}

/// One request as received and judged.
#[derive(Debug, Clone)]
pub struct Seen {
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Value,
    /// The decoded JPEG's width and height (from its SOF marker).
    pub image: Option<(u32, u32)>,
    /// What broke the contract, if anything.
    pub violation: Option<String>,
    pub at: Instant,
    pub wall: std::time::SystemTime,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct State {
    brain: Brain,
    faults: VecDeque<Fault>,
    /// Every request answers this fault while set.
    always: Option<Fault>,
    seen: Vec<Seen>,
}

/// The server; stops accepting (and releases held requests) on drop.
pub struct VlmServer {
    api: Api,
    port: u16,
    model: String,
    key: Option<String>,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl VlmServer {
    /// A server of `api` serving `model`, expecting `Authorization: Bearer KEY` when
    /// `key` is given.
    pub fn start(api: Api, model: &str, key: Option<&str>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            brain: Brain::default(),
            faults: VecDeque::new(),
            always: None,
            seen: Vec::new(),
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let server = Self {
            api,
            port,
            model: model.into(),
            key: key.map(str::to_string),
            state,
            stop,
        };
        let (st, sp) = (server.state.clone(), server.stop.clone());
        let (model, key) = (server.model.clone(), server.key.clone());
        thread::Builder::new()
            .name("vlm-server".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if sp.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (st, sp, model, key) = (st.clone(), sp.clone(), model.clone(), key.clone());
                    thread::spawn(move || serve(conn, api, &model, key.as_deref(), &st, &sp));
                }
            })
            .expect("spawn the VLM server");
        server
    }

    /// The base URL a config gives: `http://127.0.0.1:PORT/v1` or `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        match self.api {
            Api::OpenAi => format!("http://127.0.0.1:{}/v1", self.port),
            Api::Ollama => format!("http://127.0.0.1:{}", self.port),
        }
    }

    pub fn set_brain(&self, brain: Brain) {
        lock(&self.state).brain = brain;
    }

    pub fn push_fault(&self, f: Fault) {
        lock(&self.state).faults.push_back(f);
    }

    /// Every request answers `f` until `None`.
    pub fn set_always(&self, f: Option<Fault>) {
        lock(&self.state).always = f;
    }

    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.state).seen.clone()
    }

    /// The requests that broke the contract.
    pub fn violations(&self) -> Vec<String> {
        self.seen()
            .into_iter()
            .filter_map(|s| s.violation)
            .collect()
    }
}

impl Drop for VlmServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(
    conn: TcpStream,
    api: Api,
    model: &str,
    key: Option<&str>,
    state: &Mutex<State>,
    stop: &AtomicBool,
) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or_default().to_string(),
            parts.next().unwrap_or_default().to_string(),
        );
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let mut seen = Seen {
            path: path.clone(),
            headers,
            body,
            image: None,
            violation: None,
            at: Instant::now(),
            wall: std::time::SystemTime::now(),
        };
        let judged = judge(api, model, key, &method, &mut seen);
        seen.violation = judged.clone().err();
        let (fault, brain) = {
            let mut st = lock(state);
            st.seen.push(seen.clone());
            let fault = st.always.clone().or_else(|| st.faults.pop_front());
            (fault, st.brain.clone())
        };
        let (status, retry_after, payload) = match (&judged, fault) {
            (Err(why), _) => (400, None, error_body(api, why)),
            (Ok(_), Some(Fault::Hang)) => {
                while !stop.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(20));
                }
                return;
            }
            (Ok(_), Some(Fault::Status(code, after))) => {
                (code, after, error_body(api, &format!("injected {code}")))
            }
            (Ok(_), Some(Fault::Body(b))) => (200, None, b),
            (Ok(_), None) => (200, None, answer(api, model, &seen.body, &brain)),
        };
        let mut head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            payload.len()
        );
        if let Some(s) = retry_after {
            head += &format!("Retry-After: {s}\r\n");
        }
        head += "\r\n";
        if conn.write_all(head.as_bytes()).is_err() || conn.write_all(payload.as_bytes()).is_err() {
            return;
        }
    }
}

fn error_body(api: Api, why: &str) -> String {
    match api {
        Api::OpenAi => {
            json!({"error": {"message": why, "type": "invalid_request_error", "code": null}})
        }
        Api::Ollama => json!({"error": why}),
    }
    .to_string()
}

/// Checks a request against the dialect; fills in the image's size.
fn judge(
    api: Api,
    model: &str,
    key: Option<&str>,
    method: &str,
    s: &mut Seen,
) -> Result<(), String> {
    let want_path = match api {
        Api::OpenAi => "/v1/chat/completions",
        Api::Ollama => "/api/chat",
    };
    if method != "POST" || s.path != want_path {
        return Err(format!("{method} {} (want POST {want_path})", s.path));
    }
    if s.header("content-type") != Some("application/json") {
        return Err(format!("content-type {:?}", s.header("content-type")));
    }
    if let Some(k) = key
        && s.header("authorization") != Some(&format!("Bearer {k}"))
    {
        return Err("missing or wrong bearer key".into());
    }
    let b = s.body.as_object().ok_or("the body is not a JSON object")?;
    let allowed: &[&str] = match api {
        Api::OpenAi => &[
            "model",
            "messages",
            "max_tokens",
            "temperature",
            "stream",
            "logprobs",
            "top_logprobs",
            "response_format",
        ],
        Api::Ollama => &[
            "model",
            "messages",
            "stream",
            "options",
            "format",
            "logprobs",
            "top_logprobs",
            "keep_alive",
        ],
    };
    if let Some(k) = b.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(format!("unknown key {k:?}"));
    }
    if b.get("model").and_then(Value::as_str) != Some(model) {
        return Err(format!("model {:?}, want {model:?}", b.get("model")));
    }
    if b.get("stream") != Some(&json!(false)) {
        return Err("stream must be false".into());
    }
    let messages = b
        .get("messages")
        .and_then(Value::as_array)
        .ok_or("no messages")?;
    let [m] = messages.as_slice() else {
        return Err(format!("{} messages, want one", messages.len()));
    };
    if m.get("role").and_then(Value::as_str) != Some("user") {
        return Err("the message is not the user's".into());
    }
    let image_b64 = match api {
        Api::OpenAi => {
            let content = m
                .get("content")
                .and_then(Value::as_array)
                .ok_or("content is not a list of parts")?;
            let mut image = None;
            let mut texts = 0;
            for part in content {
                match part.get("type").and_then(Value::as_str) {
                    Some("text") if part.get("text").and_then(Value::as_str).is_some() => {
                        texts += 1
                    }
                    Some("image_url") => {
                        let url = part
                            .pointer("/image_url/url")
                            .and_then(Value::as_str)
                            .ok_or("image_url without url")?;
                        let data = url
                            .strip_prefix("data:image/jpeg;base64,")
                            .ok_or("the image is not a JPEG data URI")?;
                        if image.replace(data.to_string()).is_some() {
                            return Err("more than one image".into());
                        }
                    }
                    other => return Err(format!("content part of type {other:?}")),
                }
            }
            if texts != 1 {
                return Err(format!("{texts} text parts"));
            }
            if let Some(n) = b.get("max_tokens")
                && n.as_u64().is_none_or(|n| n == 0)
            {
                return Err(format!("max_tokens {n}"));
            }
            if let Some(rf) = b.get("response_format") {
                let ok = rf.get("type") == Some(&json!("json_schema"))
                    && rf
                        .pointer("/json_schema/name")
                        .and_then(Value::as_str)
                        .is_some()
                    && rf.pointer("/json_schema/schema/type") == Some(&json!("object"));
                if !ok {
                    return Err(format!("response_format {rf}"));
                }
            }
            image.ok_or("no image")?
        }
        Api::Ollama => {
            if m.get("content").and_then(Value::as_str).is_none() {
                return Err("content is not a string".into());
            }
            let images = m
                .get("images")
                .and_then(Value::as_array)
                .ok_or("no images")?;
            let [img] = images.as_slice() else {
                return Err(format!("{} images, want one", images.len()));
            };
            let img = img.as_str().ok_or("an image is not a string")?;
            if img.starts_with("data:") {
                return Err("Ollama takes bare base64, not a data URI".into());
            }
            if let Some(o) = b.get("options") {
                let n = o.get("num_predict");
                if n.is_some_and(|n| n.as_u64().is_none_or(|n| n == 0)) {
                    return Err(format!("num_predict {n:?}"));
                }
            }
            if let Some(f) = b.get("format")
                && f != "json"
                && f.get("type") != Some(&json!("object"))
            {
                return Err(format!("format {f}"));
            }
            img.to_string()
        }
    };
    match (b.get("logprobs"), b.get("top_logprobs")) {
        (None, None) => {}
        (Some(l), t) if l == &json!(true) => {
            if let Some(t) = t
                && t.as_u64().is_none_or(|t| t > 20)
            {
                return Err(format!("top_logprobs {t}"));
            }
        }
        (l, t) => return Err(format!("logprobs {l:?} top_logprobs {t:?}")),
    }
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(&image_b64)
        .map_err(|e| format!("the image is not base64: {e}"))?;
    s.image = Some(jpeg_size(&jpeg).ok_or("the image is not a JPEG")?);
    Ok(())
}

/// Width and height from a JPEG's SOF0..SOF2 marker.
fn jpeg_size(j: &[u8]) -> Option<(u32, u32)> {
    if j.get(..2)? != [0xFF, 0xD8] {
        return None;
    }
    let mut i = 2;
    while i + 9 < j.len() {
        if j[i] != 0xFF {
            return None;
        }
        let marker = j[i + 1];
        let len = usize::from(u16::from_be_bytes([j[i + 2], j[i + 3]]));
        if (0xC0..=0xC2).contains(&marker) {
            let h = u32::from(u16::from_be_bytes([j[i + 5], j[i + 6]]));
            let w = u32::from(u16::from_be_bytes([j[i + 7], j[i + 8]]));
            return Some((w, h));
        }
        i += 2 + len;
    }
    None
}

/// The text of the request's user message.
pub fn prompt_of(api: Api, body: &Value) -> String {
    let m = &body["messages"][0]["content"];
    match api {
        Api::OpenAi => m
            .as_array()
            .and_then(|parts| parts.iter().find_map(|p| p["text"].as_str()))
            .unwrap_or_default()
            .to_string(),
        Api::Ollama => m.as_str().unwrap_or_default().to_string(),
    }
}

/// The documented success body for a well-formed request.
fn answer(api: Api, model: &str, body: &Value, brain: &Brain) -> String {
    let schema = body
        .pointer("/response_format/json_schema/schema")
        .or_else(|| body.get("format"));
    let wants_logprobs = body.get("logprobs") == Some(&json!(true));
    let mut top = None;
    let text = match schema.and_then(|s| s.get("properties")) {
        Some(p) if p.get("answer").is_some() => {
            let yes = brain.p_yes >= 0.5;
            let c = if yes { brain.p_yes } else { 1.0 - brain.p_yes };
            json!({"answer": if yes {"yes"} else {"no"}, "confidence": c}).to_string()
        }
        Some(p) if p.get("label").is_some() => {
            json!({"label": brain.label, "confidence": 0.75}).to_string()
        }
        _ if wants_logprobs => {
            let (y, n) = (
                brain.p_yes.max(1e-6).ln(),
                (1.0 - brain.p_yes).max(1e-6).ln(),
            );
            if brain.logprobs {
                top = Some(json!([
                    {"token": "Yes", "logprob": y, "bytes": [89, 101, 115]},
                    {"token": "No", "logprob": n, "bytes": [78, 111]},
                ]));
            }
            if brain.p_yes >= 0.5 { "Yes" } else { "No" }.to_string()
        }
        _ if prompt_of(api, body).contains("bbox_2d") => brain.boxes.clone(),
        _ => brain.text.clone(),
    };
    match api {
        Api::OpenAi => {
            let logprobs = match &top {
                Some(t) => json!({"content": [{"token": text, "logprob": -0.01, "bytes": [], "top_logprobs": t}]}),
                None => Value::Null,
            };
            json!({
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "created": 1764720000,
                "model": model,
                "choices": [{
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "logprobs": logprobs,
                    "finish_reason": "stop",
                }],
                "usage": {"prompt_tokens": 100, "completion_tokens": 1, "total_tokens": 101},
            })
        }
        Api::Ollama => {
            let mut v = json!({
                "model": model,
                "created_at": "2026-12-03T12:00:00Z",
                "message": {"role": "assistant", "content": text},
                "done": true,
                "done_reason": "stop",
                "total_duration": 1000,
                "prompt_eval_count": 100,
                "eval_count": 1,
            });
            if let Some(t) = top {
                v["logprobs"] = json!([{"token": text, "logprob": -0.01, "bytes": [], "top_logprobs": t}]);
            }
            v
        }
    }
    .to_string()
}
