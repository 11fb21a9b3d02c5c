//! What a served VLM costs the box: `cargo bench --bench remote`.
//!
//! * `encode_ms`: a 1280×720 frame (the astronaut photo, Pillow-resized) to the JPEG
//!   of at most 768 a side that a call sends (resize, JPEG, base64);
//! * `yes_no_call_ms` vs `raw_post_ms`: one `yes_no` call through the `openai` client
//!   (request body, HTTP POST, reply parse, log-probability softmax) against a local
//!   server that answers at once, and the same POST of the same bytes with a bare
//!   `ureq` agent, in the same run; `client_overhead_ms` = `yes_no_call_ms −
//!   raw_post_ms + encode_ms` is what ocellus adds per call over the transport itself,
//!   split into `body_ms` (the request body) and `client_call_ms` (breaker, budget,
//!   slot, sender thread, HTTP, parse on a ready body);
//! * `per_frame_ms_idle` vs `per_frame_ms_calls_in_flight`: the real YOLOX-nano on the
//!   same frame, frame after frame, alone and while 4 slow lanes keep calls in flight
//!   against a server that takes 50 ms to answer (each lane encoding its frame first,
//!   as the slow lane does); `added_per_frame` is their ratio − 1.
//!
//! YOLOX-nano is `<shared>/models/yolox_nano_coco`, the photo `<shared>/media`;
//! `<shared>` is `$OCELLUS_SHARED`, default `<crate>/../shared`. Prints JSON and
//! writes `target/ocellus-bench/remote.json`.

// A benchmark crate: its helpers are `pub` for its own modules, and a failed step
// ends the run with a panic that says which.
#![allow(
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ocellus::engine::{EngineConfig, Filter, PillowResize, Rect, RgbView, Window};
use ocellus::kit::{Frame, Pixels};
use ocellus::model::remote::{Dialect, Prompt};
use ocellus::model::{Cancel, Loaded, ModelConfig, Registry};
use serde_json::json;

const CALLS: usize = 300;
const FRAMES: usize = 60;
const LANES: usize = 4;

const REPLY: &str = r#"{"id":"b","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Yes"},"logprobs":{"content":[{"token":"Yes","logprob":-0.1,"bytes":[89],"top_logprobs":[{"token":"Yes","logprob":-0.1,"bytes":[89]},{"token":"No","logprob":-2.4,"bytes":[78]}]}]},"finish_reason":"stop"}]}"#;

/// A keep-alive HTTP/1.1 server answering every POST with `REPLY` after `delay`.
fn server(delay: Duration) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || serve(conn, delay));
        }
    });
    port
}

fn serve(conn: TcpStream, delay: Duration) {
    let _ = conn.set_nodelay(true);
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut conn = conn;
    loop {
        let mut len = 0usize;
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        std::thread::sleep(delay);
        // One write: headers and body in separate small writes would wait for the
        // client's delayed ACK (Nagle), 40 ms a reply.
        let reply = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{REPLY}",
            REPLY.len()
        );
        if conn.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The astronaut photo resized to 1280×720.
fn frame(shared: &std::path::Path) -> Frame {
    let photo = ocellus::source::first_frame(&shared.join("media/astronaut.png"), Pixels::Rgb)
        .expect("decode astronaut.png");
    let view = RgbView::new(photo.data(), photo.width, photo.height, photo.stride).unwrap();
    let whole = Rect {
        x: 0.0,
        y: 0.0,
        w: f64::from(photo.width),
        h: f64::from(photo.height),
    };
    let mut r = PillowResize::new(Filter::Bilinear);
    let (w, h) = (1280, 720);
    let rgb = r
        .run(&view, whole, w, h, Window { x: 0, y: 0, w, h })
        .unwrap()
        .to_vec();
    Frame::from_rgb(w, h, w as usize * 3, rgb)
}

fn models(shared: &std::path::Path, port: u16) -> Registry {
    let text = format!(
        "[coco]\nfamily = \"yolox\"\ndir = {:?}\nproviders = [\"cpu\"]\nthreads = 1\n\n\
         [vlm]\nfamily = \"openai\"\nurl = \"http://127.0.0.1:{port}/v1\"\nmodel = \"m\"\nmax_concurrency = {LANES}\n",
        shared.join("models/yolox_nano_coco")
    );
    let mut cfgs: BTreeMap<String, ModelConfig> = toml::from_str(&text).unwrap();
    for c in cfgs.values_mut() {
        c.resolve_paths(std::path::Path::new("/"));
    }
    let engine = EngineConfig::default();
    let env = ocellus::engine::environment(&engine).unwrap();
    let reg = Registry::load(&cfgs, &engine, env, &Arc::default());
    assert!(reg.failed().is_empty(), "{:?}", reg.failed());
    reg
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared =
        std::env::var_os("OCELLUS_SHARED").map_or_else(|| root.join("../shared"), PathBuf::from);
    gstreamer::init().unwrap();
    let frame = frame(&shared);

    // Client overhead against a server that answers at once.
    let fast = server(Duration::ZERO);
    let reg = models(&shared, fast);
    let Loaded::Remote { model: vlm } = reg.get("vlm").unwrap().as_ref() else {
        panic!("vlm is not a served model")
    };
    let image = vlm.image(&frame, None).unwrap();
    let (mut encode, mut call, mut raw) = (Vec::new(), Vec::new(), Vec::new());
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let body = json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": image.data_uri()}},
        {"type": "text", "text": "Is there a person?\nAnswer with one word: yes or no."}]}],
        "max_tokens": 1, "temperature": 0, "stream": false, "logprobs": true, "top_logprobs": 20})
    .to_string();
    for _ in 0..CALLS {
        let t0 = Instant::now();
        let img = vlm.image(&frame, None).unwrap();
        encode.push(t0.elapsed().as_secs_f64() * 1e3);
        let t0 = Instant::now();
        let p = vlm
            .yes_no(&img, "Is there a person?", Cancel::never())
            .unwrap();
        call.push(t0.elapsed().as_secs_f64() * 1e3);
        assert!((p.p_yes - 0.9).abs() < 0.01);
        let t0 = Instant::now();
        let mut r = agent
            .post(format!("http://127.0.0.1:{fast}/v1/chat/completions"))
            .header("Content-Type", "application/json")
            .send(body.as_bytes())
            .unwrap();
        let _ = r.body_mut().read_to_vec().unwrap();
        raw.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let (encode_ms, call_ms, raw_ms) = (median(encode), median(call), median(raw));
    // The parts of a call: the request body, and the client (breaker, budget, slot,
    // its sender thread, HTTP, reply parse) on a body made beforehand.
    let cfg: ocellus::model::remote::RemoteConfig = toml::from_str(&format!(
        "url = \"http://127.0.0.1:{fast}/v1\"\nmodel = \"m\""
    ))
    .unwrap();
    let client = ocellus::model::remote::Client::new("bench", Dialect::OpenAi, &cfg, None);
    let prompt = Prompt {
        text: "Is there a person?\nAnswer with one word: yes or no.",
        max_tokens: 1,
        logprobs: true,
        schema: None,
    };
    let value = Dialect::OpenAi.body("m", &prompt, &image);
    let (mut body_times, mut client_times) = (Vec::new(), Vec::new());
    for _ in 0..CALLS {
        let t0 = Instant::now();
        let b = Dialect::OpenAi.body("m", &prompt, &image);
        std::hint::black_box(b.to_string());
        body_times.push(t0.elapsed().as_secs_f64() * 1e3);
        let t0 = Instant::now();
        client.call(&value, Cancel::never()).unwrap();
        client_times.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let (body_ms, client_ms) = (median(body_times), median(client_times));
    // The same call back to back, without an encode before each.
    let mut alone = Vec::new();
    for _ in 0..CALLS {
        let t0 = Instant::now();
        vlm.yes_no(&image, "Is there a person?", Cancel::never())
            .unwrap();
        alone.push(t0.elapsed().as_secs_f64() * 1e3);
    }
    let alone_ms = median(alone);

    // The per-frame detector alone, then with calls in flight on 4 lanes.
    let slow = server(Duration::from_millis(50));
    let reg_slow = Arc::new(models(&shared, slow));
    let Loaded::Yolox {
        model: yolox,
        engine,
    } = reg_slow.get("coco").unwrap().as_ref()
    else {
        panic!("coco is not yolox")
    };
    let mut scratch = ocellus::model::yolox::YoloxScratch::default();
    let mut out = Vec::new();
    let mut client = engine.client();
    let mut per_frame = |n: usize| {
        let mut times = Vec::new();
        for _ in 0..n {
            let t0 = Instant::now();
            yolox
                .detect(&mut client, &frame, &mut scratch, &mut out)
                .unwrap();
            times.push(t0.elapsed().as_secs_f64() * 1e3);
        }
        median(times)
    };
    per_frame(10);
    let idle = per_frame(FRAMES);
    let stop = Arc::new(AtomicBool::new(false));
    let calls = Arc::new(AtomicU64::new(0));
    let lanes: Vec<_> = (0..LANES)
        .map(|_| {
            let (stop, calls, reg, frame) = (
                stop.clone(),
                calls.clone(),
                reg_slow.clone(),
                frame.copy_into(Vec::new()),
            );
            std::thread::spawn(move || {
                let Loaded::Remote { model } = reg.get("vlm").unwrap().as_ref() else {
                    return;
                };
                while !stop.load(Ordering::Relaxed) {
                    let img = model.image(&frame, None).unwrap();
                    model
                        .yes_no(&img, "Is there a person?", Cancel::never())
                        .unwrap();
                    calls.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let t0 = Instant::now();
    let c0 = calls.load(Ordering::Relaxed);
    let busy = per_frame(FRAMES);
    let calls_per_s = (calls.load(Ordering::Relaxed) - c0) as f64 / t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for l in lanes {
        l.join().unwrap();
    }

    let report = json!({
        "bench": "remote",
        "frame": "1280x720 (astronaut.png resized), sent at 768x432",
        "sent_jpeg_bytes": image.base64.len() * 3 / 4,
        "calls": CALLS,
        "encode_ms": encode_ms,
        "body_ms": body_ms,
        "client_call_ms": client_ms,
        "yes_no_call_ms": call_ms,
        "yes_no_call_ms_back_to_back": alone_ms,
        "raw_post_ms": raw_ms,
        "client_overhead_ms": call_ms - raw_ms + encode_ms,
        "per_frame_ms_idle": idle,
        "per_frame_ms_calls_in_flight": busy,
        "lanes": LANES,
        "server_delay_ms": 50,
        "calls_per_s_in_flight": calls_per_s,
        "added_per_frame": busy / idle - 1.0,
    });
    let text = serde_json::to_string_pretty(&report).unwrap();
    let dir = root.join("target/ocellus-bench");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("remote.json"), format!("{text}\n")).unwrap();
    println!("{text}");
}
