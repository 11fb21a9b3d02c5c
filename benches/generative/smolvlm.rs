//! SmolVLM: the image prefix (preprocess, vision, prefill of its KV cache); the first
//! query (prefix + yes/no); the Nth yes/no on the same prefix; five standing questions
//! on one frame with the prefix shared (measured) and without (five first queries);
//! a greedy answer of at most 16 tokens (the measurements are in `vlm`).

use std::path::Path;
use std::time::Instant;

use ocellus::engine;
use ocellus::kit::Frame;
use ocellus::model::ModelError;
use ocellus::model::smolvlm::{
    DecodeTimings, Generated, ImagePrefix, PrefixTimings, SmolVlm, SmolVlmConfig, SmolVlmSessions,
    YesNo,
};
use serde_json::Value;

use crate::Row;
use crate::measure::{Bench, ms};
use crate::vlm::{ANSWER_TOKENS, Measure, Vlm, measure};

const ASK: &str = "What is in the picture?";

impl Vlm for (SmolVlm, SmolVlmSessions) {
    type Prefix = ImagePrefix;
    type Answer = Generated;
    fn prefix(&self, frame: &Frame) -> Result<ImagePrefix, ModelError> {
        self.0.prefix(&self.1, frame, None)
    }
    fn yes_no(&self, prefix: &ImagePrefix, question: &str) -> Result<YesNo, ModelError> {
        self.0.yes_no(&self.1, prefix, question)
    }
    fn answer(&self, prefix: &ImagePrefix) -> Result<Generated, ModelError> {
        self.0.answer(&self.1, prefix, ASK, ANSWER_TOKENS)
    }
    fn prefix_len(prefix: &ImagePrefix) -> usize {
        prefix.len()
    }
    fn prefix_timings(prefix: &ImagePrefix) -> PrefixTimings {
        prefix.timings
    }
    fn answer_of(answer: &Generated) -> (usize, DecodeTimings) {
        (answer.tokens, answer.timings)
    }
}

pub fn bench(b: &Bench, label: &str, dir: &Path, frame: &Frame) -> Result<(Value, Row), String> {
    let mut cfg: SmolVlmConfig = toml::from_str(&format!(
        "dir = {dir:?}\nproviders = [\"cpu\"]\nthreads = {}",
        b.threads
    ))
    .map_err(|e| e.to_string())?;
    cfg.resolve_paths(Path::new("/"));
    let env = engine::environment(&Default::default()).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let vlm = SmolVlm::load("smolvlm", &cfg, env).map_err(|e| e.to_string())?;
    let load_ms = ms(t0.elapsed());
    let m = Measure {
        label,
        dir,
        load_ms,
        answer: "answer",
        extra: Vec::new(),
    };
    measure(b, &vlm, frame, m)
}
