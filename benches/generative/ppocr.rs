//! PP-OCRv4 (real weights): milliseconds per frame of a whole read (detection,
//! crops, angle classifier, recognition) on each photo, split by model.

use std::path::Path;
use std::time::Instant;

use ocellus::engine;
use ocellus::kit::Frame;
use ocellus::model::ppocr::{Ppocr, PpocrConfig};
use serde_json::{Map, Value, json};

use crate::measure::{Bench, ms, num};
use crate::{Row, cell};

pub fn bench(b: &Bench, dir: &Path, frames: &[(&str, Frame)]) -> Result<(Value, Vec<Row>), String> {
    let mut cfg: PpocrConfig = toml::from_str(&format!(
        "dir = {dir:?}\nproviders = [\"cpu\"]\nthreads = {}",
        b.threads
    ))
    .map_err(|e| e.to_string())?;
    cfg.resolve_paths(Path::new("/"));
    let env = engine::environment(&Default::default()).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let (ocr, s) = Ppocr::load("ppocr", &cfg, env).map_err(|e| e.to_string())?;
    let load_ms = ms(t0.elapsed());
    let mut images = Map::new();
    let mut rows = Vec::new();
    for (name, frame) in frames {
        let read = b.sample(frames.len() as u32, || ocr.read(&s, frame, None))?;
        let r = &read.out[0];
        let split = [
            ("preprocess", read.of(|r| ms(r.stages.preprocess)).median),
            ("det", read.of(|r| ms(r.runs.det)).median),
            ("cls", read.of(|r| ms(r.runs.cls)).median),
            ("rec", read.of(|r| ms(r.runs.rec)).median),
            ("postprocess", read.of(|r| ms(r.stages.postprocess)).median),
        ];
        let mut j = read.json();
        for (k, v) in split {
            j[format!("{k}_median_ms")] = num(v);
        }
        j["size"] = json!([frame.width, frame.height]);
        j["lines"] = json!(r.lines.len());
        j["text"] = json!(r.text().chars().take(120).collect::<String>());
        let wall = read.wall().median;
        eprintln!("generative: ppocr {name}: {wall:.1} ms per frame");
        rows.push(Row {
            model: format!("ppocr v4 (real), {name} {}x{}", frame.width, frame.height),
            encode_ms: None,
            first_ms: Some(wall),
            nth_ms: None,
            tokens_per_s: None,
            notes: format!(
                "ms per frame = det {} + cls {} + rec {} (+ pre/post {}); {} lines",
                cell(Some(split[1].1)),
                cell(Some(split[2].1)),
                cell(Some(split[3].1)),
                cell(Some(split[0].1 + split[4].1)),
                r.lines.len()
            ),
        });
        images.insert((*name).into(), j);
    }
    let report = json!({"dir": dir, "load_ms": num(load_ms), "images": images});
    Ok((report, rows))
}

/// `frame` centred on a `w`×`h` grey RGB canvas (a camera-sized frame with little text).
pub fn on_canvas(frame: &Frame, w: u32, h: u32) -> Frame {
    let (cw, ch) = (w as usize, h as usize);
    let mut data = vec![128u8; cw * ch * 3];
    let (fw, fh) = (frame.width as usize, frame.height as usize);
    let (x0, y0) = ((cw - fw) / 2, (ch - fh) / 2);
    for y in 0..fh {
        let src = &frame.data()[y * frame.stride..y * frame.stride + fw * 3];
        let at = ((y0 + y) * cw + x0) * 3;
        data[at..at + fw * 3].copy_from_slice(src);
    }
    Frame::from_rgb(w, h, cw * 3, data)
}
