//! PaliGemma: the image prefix (preprocess, vision, prefill of its KV cache); the first
//! query (prefix + yes/no); the Nth yes/no on the same prefix; five standing questions
//! on one frame with the prefix shared (measured) and without (five first queries);
//! a greedy caption and a detect answer of at most 16 tokens each (the measurements
//! are in `vlm`).

use std::path::Path;
use std::time::Instant;

use ocellus::engine;
use ocellus::kit::Frame;
use ocellus::model::ModelError;
use ocellus::model::paligemma::{
    DecodeTimings, Generated, ImagePrefix, PaliGemma, PaliGemmaConfig, PaliGemmaSessions,
    PrefixTimings, Task, YesNo,
};
use serde_json::Value;

use crate::Row;
use crate::measure::{Bench, ms};
use crate::vlm::{ANSWER_TOKENS, Measure, Run, Vlm, measure};

impl Vlm for (PaliGemma, PaliGemmaSessions) {
    type Prefix = ImagePrefix;
    type Answer = Generated;
    fn prefix(&self, frame: &Frame) -> Result<ImagePrefix, ModelError> {
        self.0.prefix(&self.1, frame, None)
    }
    fn yes_no(&self, prefix: &ImagePrefix, question: &str) -> Result<YesNo, ModelError> {
        self.0.yes_no(&self.1, prefix, question)
    }
    fn answer(&self, prefix: &ImagePrefix) -> Result<Generated, ModelError> {
        self.0.run(&self.1, prefix, &Task::Caption, ANSWER_TOKENS)
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
    let mut cfg: PaliGemmaConfig = toml::from_str(&format!(
        "dir = {dir:?}\nproviders = [\"cpu\"]\nthreads = {}",
        b.threads
    ))
    .map_err(|e| e.to_string())?;
    cfg.resolve_paths(Path::new("/"));
    let env = engine::environment(&Default::default()).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let vlm = PaliGemma::load("paligemma", &cfg, env).map_err(|e| e.to_string())?;
    let load_ms = ms(t0.elapsed());
    let detect = Task::Detect(vec!["person".into(), "car".into()]);
    let found = |p: &ImagePrefix| {
        vlm.0.run(&vlm.1, p, &detect, ANSWER_TOKENS)?;
        Ok(())
    };
    let m = Measure {
        label,
        dir,
        load_ms,
        answer: "caption",
        extra: vec![("detect", Box::new(found) as Run<'_, ImagePrefix>)],
    };
    measure(b, &vlm, frame, m)
}
