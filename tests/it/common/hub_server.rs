//! A small Hugging-Face-like HTTP/1.1 file server on 127.0.0.1 for `ocellus models`
//! tests (`HubServer`): files under `/{repo}/resolve/{revision}/{path}` (revision
//! `main` or its commit), LFS files answered with a 302 to `/cdn/...` carrying
//! `X-Repo-Commit`, `X-Linked-Etag` and `X-Linked-Size` (as huggingface.co does), small
//! git files served directly with their git blob sha1 as `ETag`, direct URLs under
//! `/direct/...`; `Range: bytes=N-` honoured (206, 416). Per-file faults: cut the
//! connection after N bytes, ignore Range, serve corrupted bytes, state a wrong hash,
//! send no `Content-Length`.
//! Every request is recorded (method, path, headers).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use ocellus::hub::hash::{git_blob_sha1_of, hex, sha256_of};

/// The commit every repository of the server is at.
pub const HUB_COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// What can go wrong with one file, on the response that carries its bytes.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Send the headers for the whole answer, then only this many body bytes, then close
    /// (on the next `cut_times` answers).
    pub cut_after: Option<usize>,
    pub cut_times: usize,
    /// Answer 200 with the whole file even when asked for a range.
    pub ignore_range: bool,
    /// Serve the bytes with one of them changed (headers still state the right hash).
    pub corrupt: bool,
    /// State this sha256 in `X-Linked-Etag` instead of the real one.
    pub stated_sha256: Option<String>,
    /// Send the body without `Content-Length` (its end is the connection's close).
    pub no_length: bool,
}

/// One request as the server received it.
#[derive(Debug, Clone)]
pub struct HubRequest {
    pub method: String,
    pub path: String,
    /// Lowercased names.
    pub headers: Vec<(String, String)>,
}

impl HubRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

struct HubFile {
    bytes: Vec<u8>,
    lfs: bool,
}

#[derive(Default)]
struct State {
    /// Key: `repo/path` (repository files) or `direct/path`.
    files: HashMap<String, HubFile>,
    faults: HashMap<String, Faults>,
    requests: Vec<HubRequest>,
}

/// The server; stops accepting on drop.
pub struct HubServer {
    port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

fn lock(m: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl HubServer {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (Arc::clone(&state), Arc::clone(&stop));
        thread::Builder::new()
            .name("hub-server".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if sp.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let st = Arc::clone(&st);
                    thread::spawn(move || serve(conn, &st, port));
                }
            })
            .expect("spawn hub server");
        HubServer { port, state, stop }
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Adds a repository file (`lfs`: served through the CDN redirect).
    pub fn add(&self, repo: &str, path: &str, bytes: Vec<u8>, lfs: bool) {
        lock(&self.state)
            .files
            .insert(format!("{repo}/{path}"), HubFile { bytes, lfs });
    }

    /// Adds a file at `{endpoint}/direct/{path}`; returns its URL.
    pub fn add_direct(&self, path: &str, bytes: Vec<u8>) -> String {
        lock(&self.state)
            .files
            .insert(format!("direct/{path}"), HubFile { bytes, lfs: false });
        format!("{}/direct/{path}", self.endpoint())
    }

    /// Sets the faults of `key` (`repo/path` or `direct/path`).
    pub fn set_faults(&self, key: &str, f: Faults) {
        lock(&self.state).faults.insert(key.to_string(), f);
    }

    pub fn clear_faults(&self) {
        lock(&self.state).faults.clear();
    }

    pub fn requests(&self) -> Vec<HubRequest> {
        lock(&self.state).requests.clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.state).requests.clear();
    }
}

impl Drop for HubServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(mut conn: TcpStream, state: &Mutex<State>, port: u16) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
    let Some(req) = read_request(&conn) else {
        return;
    };
    lock(state).requests.push(req.clone());
    let path = req.path.split('?').next().unwrap_or("").to_string();
    let range = req
        .header("range")
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    if req.method != "GET" {
        respond(&mut conn, 405, "Method Not Allowed", &[], b"", None);
        return;
    }
    if let Some(rest) = path.strip_prefix("/cdn/") {
        serve_bytes(&mut conn, state, rest, range, &[]);
        return;
    }
    if let Some(rest) = path.strip_prefix("/direct/") {
        serve_bytes(&mut conn, state, &format!("direct/{rest}"), range, &[]);
        return;
    }
    // /{owner}/{name}/resolve/{revision}/{path...}
    let parts: Vec<&str> = path.trim_start_matches('/').splitn(5, '/').collect();
    let [owner, name, "resolve", revision, file] = parts.as_slice() else {
        respond(&mut conn, 404, "Not Found", &[], b"no such route", None);
        return;
    };
    let key = format!("{owner}/{name}/{file}");
    let (lfs, sha256, git, len, faults) = {
        let st = lock(state);
        let Some(f) = st.files.get(&key) else {
            drop(st);
            respond(&mut conn, 404, "Not Found", &[], b"Entry not found", None);
            return;
        };
        (
            f.lfs,
            hex(&sha256_of(&f.bytes)),
            git_blob_sha1_of(&f.bytes),
            f.bytes.len(),
            st.faults.get(&key).cloned().unwrap_or_default(),
        )
    };
    if *revision != "main" && *revision != HUB_COMMIT {
        respond(
            &mut conn,
            404,
            "Not Found",
            &[],
            b"Revision not found",
            None,
        );
        return;
    }
    let stated = faults.stated_sha256.clone().unwrap_or(sha256);
    let mut headers = vec![("X-Repo-Commit".to_string(), HUB_COMMIT.to_string())];
    if lfs {
        headers.extend([
            ("X-Linked-Etag".to_string(), format!("\"{stated}\"")),
            ("X-Linked-Size".to_string(), len.to_string()),
            ("ETag".to_string(), format!("\"{stated}\"")),
            (
                "Location".to_string(),
                format!("http://127.0.0.1:{port}/cdn/{key}"),
            ),
        ]);
        respond(&mut conn, 302, "Found", &headers, b"", None);
    } else {
        headers.push(("ETag".to_string(), format!("\"{git}\"")));
        serve_bytes(&mut conn, state, &key, range, &headers);
    }
}

fn serve_bytes(
    conn: &mut TcpStream,
    state: &Mutex<State>,
    key: &str,
    range: Option<usize>,
    extra: &[(String, String)],
) {
    let (mut bytes, cut, faults) = {
        let mut st = lock(state);
        let Some(f) = st.files.get(key) else {
            drop(st);
            respond(conn, 404, "Not Found", extra, b"not found", None);
            return;
        };
        let bytes = f.bytes.clone();
        let faults = st.faults.get(key).cloned().unwrap_or_default();
        let mut cut = None;
        if let Some(n) = faults.cut_after
            && faults.cut_times > 0
        {
            cut = Some(n);
            if let Some(f) = st.faults.get_mut(key) {
                f.cut_times -= 1;
            }
        }
        (bytes, cut, faults)
    };
    if faults.corrupt && !bytes.is_empty() {
        let i = bytes.len() / 2;
        bytes[i] ^= 0xff;
    }
    let len = bytes.len();
    let mut headers = extra.to_vec();
    match range {
        Some(start) if !faults.ignore_range && start >= len => {
            headers.push(("Content-Range".into(), format!("bytes */{len}")));
            respond(conn, 416, "Range Not Satisfiable", &headers, b"", None);
        }
        Some(start) if !faults.ignore_range => {
            headers.push((
                "Content-Range".into(),
                format!("bytes {start}-{}/{len}", len - 1),
            ));
            respond(conn, 206, "Partial Content", &headers, &bytes[start..], cut);
        }
        _ if faults.no_length => respond_unsized(conn, &headers, &bytes),
        _ => respond(conn, 200, "OK", &headers, &bytes, cut),
    }
}

/// 200 with `body` and no `Content-Length`: the close ends it.
fn respond_unsized(conn: &mut TcpStream, headers: &[(String, String)], body: &[u8]) {
    let mut head = "HTTP/1.1 200 OK\r\n".to_string();
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    let _ = conn
        .write_all(head.as_bytes())
        .and_then(|_| conn.write_all(body))
        .and_then(|_| conn.flush());
    let _ = conn.shutdown(Shutdown::Both);
}

fn respond(
    conn: &mut TcpStream,
    status: u16,
    reason: &str,
    headers: &[(String, String)],
    body: &[u8],
    cut_after: Option<usize>,
) {
    let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let send = cut_after.map_or(body.len(), |n| n.min(body.len()));
    let _ = conn
        .write_all(head.as_bytes())
        .and_then(|_| conn.write_all(&body[..send]))
        .and_then(|_| conn.flush());
    let _ = conn.shutdown(Shutdown::Both);
}

fn read_request(conn: &TcpStream) -> Option<HubRequest> {
    let mut r = BufReader::new(conn.try_clone().ok()?);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut it = line.split_whitespace();
    let method = it.next()?.to_string();
    let path = it.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 {
            break;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    Some(HubRequest {
        method,
        path,
        headers,
    })
}
