//! The checks of one query's config: its fields' ranges and sizes (see
//! [`limits`](super::limits)), its model, and whether that model's family answers
//! its kind ([`support`]). The config file and runtime specs are checked alike.

use std::collections::BTreeMap;

use super::limits::{
    MAX_ASK_CHARS, MAX_DURATION, MAX_LABEL_CHARS, MAX_NAME_CHARS, MAX_PATTERN_CHARS,
    MAX_PATTERN_COMPILED_BYTES, MAX_PROMPT_CHARS, MAX_PROMPTS, MAX_QUERY_TOKENS, MAX_UNIT_CHARS,
};
use super::support;
use super::{QueryConfig, QueryKind};
use crate::kit::{Problem, shown, text_problem, within};
use crate::model::ModelConfig;

/// Every problem of query `q` at config path `at` (empty: a runtime spec, whose
/// problems are named by field alone), given the configured `models`.
pub fn check(
    q: &QueryConfig,
    at: &str,
    models: &BTreeMap<String, ModelConfig>,
    problems: &mut Vec<Problem>,
) {
    let at_model = format!("models.{}", q.model);
    let model_has_problem = problems
        .iter()
        .any(|p| p.path == at_model || p.path.starts_with(&format!("{at_model}.")));
    let mut bad = |field: &str, msg: String| {
        let path = if at.is_empty() {
            field.to_string()
        } else {
            format!("{at}.{field}")
        };
        problems.push(Problem::new(path, msg))
    };
    check_sizes(q, &mut bad);
    if !(0.0..=1.0).contains(&q.on) {
        bad("on", format!("{} must be within 0..1", q.on));
    }
    if !(0.0..=1.0).contains(&q.off) {
        bad("off", format!("{} must be within 0..1", q.off));
    }
    if q.on <= q.off {
        bad("on", format!("must be greater than off ({})", q.off));
    }
    if q.min_frames == 0 {
        bad("min_frames", "must be at least 1".into());
    }
    if let Some(s) = q.min_score
        && !(0.0..=1.0).contains(&s)
    {
        bad("min_score", format!("{s} must be within 0..1"));
    }
    if let Some([x0, y0, x1, y1]) = q.region {
        let inside = [x0, y0, x1, y1].iter().all(|v| (0.0..=1.0).contains(v));
        if !inside || x0 >= x1 || y0 >= y1 {
            bad(
                "region",
                format!(
                    "[{x0}, {y0}, {x1}, {y1}] must be normalised [x0, y0, x1, y1] with x0 < x1, y0 < y1"
                ),
            );
        }
    }
    if let Some(p) = &q.pattern {
        if q.kind != QueryKind::Read {
            bad("pattern", "only read queries take a pattern".into());
        } else if !within(p, MAX_PATTERN_CHARS) {
            // Said by check_sizes.
        } else if let Err(e) = regex::RegexBuilder::new(p)
            .size_limit(MAX_PATTERN_COMPILED_BYTES)
            .build()
        {
            let first = e.to_string();
            let first = first.lines().last().unwrap_or_default().trim().to_string();
            bad(
                "pattern",
                format!("{p:?} is not a valid regular expression: {first}"),
            );
        }
    }
    if let Some(r) = q.review_below
        && !(r > 0.0 && r <= 1.0)
    {
        bad("review_below", format!("{r} must be within (0, 1]"));
    }
    if at.is_empty() && q.examples.is_some() {
        // A folder on the daemon's disk is the config file's to name.
        bad(
            "examples",
            "only the config file may name an examples folder; label at runtime on .../label"
                .into(),
        );
    }
    if q.every.is_zero() {
        bad("every", "must be longer than 0s".into());
    }
    if q.expire_after.is_some_and(|e| e.as_secs() == 0) {
        bad("expire_after", "must be at least 1s".into());
    }
    if q.max_tokens == Some(0) {
        bad("max_tokens", "must be at least 1".into());
    }
    if q.max_tokens.is_some_and(|n| n > MAX_QUERY_TOKENS) {
        bad("max_tokens", format!("must be at most {MAX_QUERY_TOKENS}"));
    }
    let durations = [
        ("min_duration", Some(q.min_duration)),
        ("off_delay", Some(q.off_delay)),
        ("cooldown", Some(q.cooldown)),
        ("expire_after", q.expire_after),
        ("every", Some(q.every)),
        ("min_interval", Some(q.min_interval)),
    ];
    for (field, d) in durations {
        if d.is_some_and(|d| d > MAX_DURATION) {
            bad(
                field,
                format!(
                    "must be at most {}",
                    humantime::format_duration(MAX_DURATION)
                ),
            );
        }
    }
    let Some(model) = models.get(&q.model) else {
        // A model that is defined but wrong has its own problem: no second one here.
        if model_has_problem {
            return;
        }
        let known: Vec<&str> = models.keys().map(String::as_str).collect();
        bad(
            "model",
            format!(
                "{} is not defined under [models] (known: {})",
                shown(&q.model),
                known.join(", ")
            ),
        );
        return;
    };
    if support::lane(model.family(), q.kind).is_none() {
        bad(
            "kind",
            format!(
                "{} queries are not supported by model {:?} (family {})",
                q.kind.name(),
                q.model,
                model.family()
            ),
        );
        return;
    }
    match (model, q.kind) {
        (ModelConfig::Yolox(_), _) if q.label.is_none() => {
            bad(
                "label",
                format!(
                    "a yolox {} query needs the class to look for, e.g. label = \"person\"",
                    q.kind.name()
                ),
            );
        }
        (ModelConfig::Clip(_), QueryKind::YesNo) if q.no.is_empty() => {
            bad("no", "a clip yes_no query needs at least one negative prompt, e.g. no = [\"an empty doorway\"]".into());
        }
        (ModelConfig::Clip(_) | ModelConfig::Embedder(_), QueryKind::Classify)
            if q.labels.len() < 2 =>
        {
            bad(
                "labels",
                "a classify query needs at least two labels".into(),
            );
        }
        (ModelConfig::Florence2(_), QueryKind::Ground) if q.ask.trim().is_empty() => {
            bad(
                "ask",
                "a ground query needs the phrase to find in `ask`".into(),
            );
        }
        (ModelConfig::Smolvlm(_), _) if q.ask.trim().is_empty() => {
            bad("ask", "a smolvlm query needs the question in `ask`".into());
        }
        (ModelConfig::Openai(_) | ModelConfig::Ollama(_), kind) => match kind {
            QueryKind::YesNo | QueryKind::Answer | QueryKind::Ground if q.ask.trim().is_empty() => {
                bad(
                    "ask",
                    format!("a {} query on a served model needs `ask`", kind.name()),
                );
            }
            QueryKind::Classify if q.labels.len() < 2 => {
                bad(
                    "labels",
                    "a classify query needs at least two labels".into(),
                );
            }
            QueryKind::Detect if q.labels.is_empty() && q.ask.trim().is_empty() => {
                bad(
                    "labels",
                    "a detect query on a served model needs the objects to find in `labels` (or `ask`)".into(),
                );
            }
            _ => {}
        },
        (ModelConfig::Paligemma(_), QueryKind::YesNo | QueryKind::Answer | QueryKind::Ground)
            if q.ask.trim().is_empty() =>
        {
            bad(
                "ask",
                format!(
                    "a paligemma {} query needs the question or phrase in `ask`",
                    q.kind.name()
                ),
            );
        }
        (ModelConfig::Qwen2vl(_), QueryKind::YesNo | QueryKind::Answer | QueryKind::Ground)
            if q.ask.trim().is_empty() =>
        {
            bad(
                "ask",
                format!(
                    "a qwen2vl {} query needs the question (or, for ground, the phrase) in `ask`",
                    q.kind.name()
                ),
            );
        }
        (ModelConfig::Paligemma(_), QueryKind::Detect)
            if q.labels.is_empty() && q.ask.trim().is_empty() =>
        {
            bad(
                "labels",
                "a paligemma detect query needs the objects to find, e.g. labels = [\"person\", \"car\"]".into(),
            );
        }
        _ => {}
    }
    let teachable = matches!(model, ModelConfig::Clip(_) | ModelConfig::Embedder(_))
        && matches!(q.kind, QueryKind::YesNo | QueryKind::Classify);
    if let Some(to) = &q.escalate {
        match models.get(to) {
            None => bad(
                "escalate",
                format!("{} is not defined under [models]", shown(to)),
            ),
            Some(m) if support::lane(m.family(), q.kind) != Some(support::Lane::Slow) => bad(
                "escalate",
                format!(
                    "model {to:?} (family {}) cannot answer {} queries on the slow lane (smolvlm, openai and ollama answer yes_no)",
                    m.family(),
                    q.kind.name()
                ),
            ),
            Some(_) if !(teachable && q.kind == QueryKind::YesNo) => bad(
                "escalate",
                "only yes_no queries on clip or embedder models escalate".into(),
            ),
            Some(_) if q.review_below.is_none() => bad(
                "escalate",
                "needs review_below: the confidence under which an answer is uncertain".into(),
            ),
            Some(_) => {}
        }
    }
    for (field, set) in [
        ("examples", q.examples.is_some()),
        ("review_below", q.review_below.is_some()),
    ] {
        if set && !teachable {
            bad(
                field,
                format!(
                    "only yes_no and classify queries on clip or embedder models are taught (model {:?} is {}, the query {})",
                    q.model,
                    model.family(),
                    q.kind.name()
                ),
            );
        }
    }
}

/// The bounds on a query's strings and lists (see `control::limits`): checked for
/// runtime specs and config files alike, since both make the same Home Assistant
/// device config and the same prompt embeddings.
fn check_sizes(q: &QueryConfig, bad: &mut impl FnMut(&str, String)) {
    if let Some(e) = text_problem(&q.ask, MAX_ASK_CHARS, true) {
        bad("ask", e);
    }
    let texts = [
        ("name", q.name.as_deref(), MAX_NAME_CHARS),
        ("unit", q.unit.as_deref(), MAX_UNIT_CHARS),
        ("label", q.label.as_deref(), MAX_LABEL_CHARS),
    ];
    for (field, text, max) in texts {
        if let Some(e) = text.and_then(|t| text_problem(t, max, false)) {
            bad(field, e);
        }
    }
    if let Some(p) = &q.pattern
        && !within(p, MAX_PATTERN_CHARS)
    {
        bad(
            "pattern",
            format!("is longer than {MAX_PATTERN_CHARS} characters"),
        );
    }
    for (field, list) in [("labels", &q.labels), ("yes", &q.yes), ("no", &q.no)] {
        if list.len() > MAX_PROMPTS {
            bad(
                field,
                format!("{} prompts; at most {MAX_PROMPTS}", list.len()),
            );
            continue;
        }
        let mut wrong = list
            .iter()
            .enumerate()
            .filter_map(|(i, p)| Some((i, text_problem(p, MAX_PROMPT_CHARS, false)?)));
        if let Some((i, e)) = wrong.next() {
            let more = wrong.count();
            let more = if more > 0 {
                format!(" (and {more} more)")
            } else {
                String::new()
            };
            bad(&format!("{field}[{i}]"), format!("{e}{more}"));
        }
    }
}
