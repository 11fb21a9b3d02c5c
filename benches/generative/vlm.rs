//! The measurements the decoder-only VLM benches (smolvlm, paligemma, qwen2vl) share,
//! on a model already loaded: the image prefix (preprocess, vision, prefill of its KV
//! cache); the first query (prefix + yes/no); the Nth yes/no on the same prefix; five
//! standing questions on one frame with the prefix shared (measured) and without (five
//! first queries); a greedy answer of at most 16 tokens; then any further greedy
//! prompts of the family (PaliGemma's detect) on the same prefix.

use ocellus::kit::Frame;
use ocellus::model::ModelError;
use ocellus::model::smolvlm::{DecodeTimings, PrefixTimings, YesNo};
use serde_json::{Value, json};

use crate::measure::{Bench, ms, num};
use crate::{Row, cell};

const QUESTION: &str = "Is there a person in the picture?";
const QUESTIONS: [&str; 5] = [
    "Is there a person in the picture?",
    "Is it dark?",
    "Is there a vehicle?",
    "Is the door open?",
    "Is anyone wearing a helmet?",
];
pub const ANSWER_TOKENS: usize = 16;

/// A loaded VLM (model and sessions) as the bench drives it.
pub trait Vlm {
    type Prefix;
    type Answer;
    fn prefix(&self, frame: &Frame) -> Result<Self::Prefix, ModelError>;
    fn yes_no(&self, prefix: &Self::Prefix, question: &str) -> Result<YesNo, ModelError>;
    /// The greedy answer measured and reported under [`Measure::answer`].
    fn answer(&self, prefix: &Self::Prefix) -> Result<Self::Answer, ModelError>;
    fn prefix_len(prefix: &Self::Prefix) -> usize;
    fn prefix_timings(prefix: &Self::Prefix) -> PrefixTimings;
    /// Tokens and timings of an answer.
    fn answer_of(answer: &Self::Answer) -> (usize, DecodeTimings);
}

/// A further greedy prompt on the shared prefix.
pub type Run<'a, P> = Box<dyn Fn(&P) -> Result<(), ModelError> + 'a>;

/// What one family's bench names besides its model.
pub struct Measure<'a, P> {
    pub label: &'a str,
    pub dir: &'a std::path::Path,
    pub load_ms: f64,
    /// The key and word of the greedy answer ("answer", "caption").
    pub answer: &'static str,
    /// Further greedy prompts on the same prefix: key and run.
    pub extra: Vec<(&'static str, Run<'a, P>)>,
}

/// The report and table row of `vlm` on `frame`.
pub fn measure<V: Vlm>(
    b: &Bench,
    vlm: &V,
    frame: &Frame,
    m: Measure<'_, V::Prefix>,
) -> Result<(Value, Row), String> {
    let label = m.label;
    eprintln!("generative: {label}: loaded in {:.0} ms", m.load_ms);
    let parts = 5;
    let prefix = b.sample(parts, || vlm.prefix(frame))?;
    eprintln!("generative: {label}: prefix {:.1} ms", prefix.wall().median);
    let first = b.sample(parts, || {
        let p = vlm.prefix(frame)?;
        vlm.yes_no(&p, QUESTION)
    })?;
    let p = vlm.prefix(frame).map_err(|e| e.to_string())?;
    let nth = b.sample(parts, || vlm.yes_no(&p, QUESTION))?;
    eprintln!(
        "generative: {label}: first {:.1} ms, Nth {:.1} ms",
        first.wall().median,
        nth.wall().median
    );
    let five = b.sample(parts, || {
        let p = vlm.prefix(frame)?;
        QUESTIONS
            .iter()
            .map(|q| vlm.yes_no(&p, q))
            .collect::<Result<Vec<_>, _>>()
    })?;
    let answer = b.sample(parts, || vlm.answer(&p))?;
    eprintln!(
        "generative: {label}: {} {:.1} ms",
        m.answer,
        answer.wall().median
    );
    let mut extra = Vec::new();
    for (key, run) in &m.extra {
        let got = b.sample(parts, || run(&p))?;
        eprintln!("generative: {label}: {key} {:.1} ms", got.wall().median);
        extra.push((*key, got));
    }

    let (pw, fw, nw) = (prefix.wall().median, first.wall().median, nth.wall().median);
    let (pre, vis, fill) = (
        prefix.of(|p| ms(V::prefix_timings(p).preprocess)).median,
        prefix.of(|p| ms(V::prefix_timings(p).vision)).median,
        prefix.of(|p| ms(V::prefix_timings(p).prefill)).median,
    );
    let mut pj = prefix.json();
    pj["preprocess_median_ms"] = num(pre);
    pj["vision_median_ms"] = num(vis);
    pj["prefill_median_ms"] = num(fill);
    pj["tokens"] = json!(V::prefix_len(&p));
    let with_reuse = five.wall().median;
    let without = QUESTIONS.len() as f64 * fw;
    let tokens = V::answer_of(&answer.out[0]).0;
    let steps = answer.of(|g| ms(V::answer_of(g).1.steps)).median;
    let rate = answer
        .of(|g| {
            let (tokens, t) = V::answer_of(g);
            (tokens as f64 - 1.0) / t.steps.as_secs_f64()
        })
        .median;
    let mut aj = answer.json();
    aj["max_tokens"] = json!(ANSWER_TOKENS);
    aj["tokens"] = json!(tokens);
    aj["suffix_median_ms"] = num(answer.of(|g| ms(V::answer_of(g).1.suffix)).median);
    aj["steps_median_ms"] = num(steps);
    aj["tokens_per_s"] = num(rate);
    aj["step_ms_per_token"] = num(steps / (tokens as f64 - 1.0));
    let mut report = json!({
        "dir": m.dir,
        "load_ms": num(m.load_ms),
        "prefix": pj,
        "first_query": first.json(),
        "nth_yes_no": nth.json(),
        "nth_over_first_ratio": num(nw / fw),
        "five_questions": {
            "with_prefix_reuse": five.json(),
            "without_prefix_reuse_ms": num(without),
            "without_is": "5 x first_query median (prefix + question each time)",
            "reuse_over_without_ratio": num(with_reuse / without),
        },
    });
    report[m.answer] = aj;
    let mut notes = format!(
        "prefix = pre {} + vision {} + prefill {} ms ({} tokens); \
         5 questions {} ms sharing it vs {} ms not; {} {tokens} tokens {} ms",
        cell(Some(pre)),
        cell(Some(vis)),
        cell(Some(fill)),
        V::prefix_len(&p),
        cell(Some(with_reuse)),
        cell(Some(without)),
        m.answer,
        cell(Some(answer.wall().median))
    );
    for (key, got) in &extra {
        report[*key] = got.json();
        notes.push_str(&format!(", {key} {} ms", cell(Some(got.wall().median))));
    }
    let row = Row {
        model: label.into(),
        encode_ms: Some(pw),
        first_ms: Some(fw),
        nth_ms: Some(nw),
        tokens_per_s: Some(rate),
        notes,
    };
    Ok((report, row))
}
