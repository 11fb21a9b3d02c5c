//! Semantic checks across the whole config; every problem is reported, none stops
//! the others from being found.

use std::collections::HashSet;

use super::{Config, Problem};
use crate::app::control::limits::{
    MAX_ASK_CHARS, MAX_DURATION, MAX_LABEL_CHARS, MAX_NAME_CHARS, MAX_PATTERN_CHARS,
    MAX_PATTERN_COMPILED_BYTES, MAX_PROMPT_CHARS, MAX_PROMPTS, MAX_QUERIES_PER_CAMERA,
    MAX_QUERY_TOKENS, MAX_UNIT_CHARS, within,
};
use crate::model::ModelConfig;
use crate::query::{QueryConfig, QueryKind};

/// The smallest `max_pixels` a camera may set: QVGA, below any camera made today.
const MIN_MAX_PIXELS: u64 = 320 * 240;

pub fn check(config: &Config, problems: &mut Vec<Problem>) {
    if let Some(mqtt) = &config.mqtt {
        let at = "mqtt";
        if !(mqtt.url.starts_with("mqtt://") || mqtt.url.starts_with("mqtts://")) {
            problems.push(Problem::new(
                format!("{at}.url"),
                format!(
                    "{:?} must start with mqtt:// or mqtts://",
                    crate::source::redact(&mqtt.url)
                ),
            ));
        }
        if mqtt.password.is_some() && mqtt.password_file.is_some() {
            problems.push(Problem::new(
                format!("{at}.password_file"),
                "give either password or password_file, not both",
            ));
        }
        if mqtt.cert_file.is_some() != mqtt.key_file.is_some() {
            problems.push(Problem::new(
                format!("{at}.cert_file"),
                "cert_file and key_file go together",
            ));
        }
        if !topic_safe(&mqtt.prefix) {
            problems.push(Problem::new(
                format!("{at}.prefix"),
                "must be non-empty and free of '+', '#' and spaces",
            ));
        }
        if mqtt.outbox_capacity == 0 {
            problems.push(Problem::new(
                format!("{at}.outbox_capacity"),
                "must be at least 1",
            ));
        }
        for (field, why) in mqtt.limit_problems() {
            problems.push(Problem::new(format!("{at}.{field}"), why));
        }
    }
    if let Some(http) = &config.http {
        if http.token.is_some() && http.token_file.is_some() {
            problems.push(Problem::new(
                "http.token_file",
                "give either token or token_file, not both",
            ));
        }
        if !http.listen.ip().is_loopback() && !http.has_token() {
            problems.push(Problem::new(
                "http.listen",
                format!(
                    "{} is not a loopback address: set token_file (or token) so requests must carry it",
                    http.listen
                ),
            ));
        }
    }
    if config.engine.threads == Some(0) {
        problems.push(Problem::new("engine.threads", "must be at least 1"));
    }
    if config.engine.max_batch == 0 {
        problems.push(Problem::new("engine.max_batch", "must be at least 1"));
    }
    if let Some(s) = &config.snapshots {
        if !(1..=100).contains(&s.quality) {
            problems.push(Problem::new("snapshots.quality", "must be within 1..100"));
        }
        if s.keep == 0 {
            problems.push(Problem::new("snapshots.keep", "must be at least 1"));
        }
    }
    for (name, model) in &config.models {
        if model.providers().is_empty() {
            problems.push(Problem::new(
                format!("models.{name}.providers"),
                "must name at least one provider",
            ));
        }
        if model.threads() == Some(0) {
            problems.push(Problem::new(
                format!("models.{name}.threads"),
                "must be at least 1",
            ));
        }
    }
    if config.cameras.is_empty() {
        problems.push(Problem::new(
            "cameras",
            "at least one [[cameras]] is needed",
        ));
    }
    let mut ids = HashSet::new();
    for (i, cam) in config.cameras.iter().enumerate() {
        let at = format!("cameras[{i}]");
        if !id_ok(&cam.id) {
            problems.push(Problem::new(
                format!("{at}.id"),
                format!(
                    "{} must be 1-64 characters of A-Z a-z 0-9 _ -",
                    shown(&cam.id)
                ),
            ));
        } else if !ids.insert(cam.id.as_str()) {
            problems.push(Problem::new(
                format!("{at}.id"),
                format!("{:?} is used by another camera", cam.id),
            ));
        }
        if cam.kind().is_none() {
            problems.push(Problem::new(
                format!("{at}.url"),
                format!(
                    "{:?}: unsupported scheme (use rtsp, rtspt, http, https, file or a path)",
                    crate::source::redact(&cam.url)
                ),
            ));
        }
        if !(cam.sample_fps > 0.0 && cam.sample_fps.is_finite()) {
            problems.push(Problem::new(
                format!("{at}.sample_fps"),
                "must be greater than 0",
            ));
        }
        if cam.max_pixels < MIN_MAX_PIXELS {
            problems.push(Problem::new(
                format!("{at}.max_pixels"),
                format!(
                    "must be at least {MIN_MAX_PIXELS} (a 320x240 frame); it refuses larger frames"
                ),
            ));
        }
        if !(0.0..=1.0).contains(&cam.change_threshold) {
            problems.push(Problem::new(
                format!("{at}.change_threshold"),
                "must be between 0 and 1 (0 turns the change gate off)",
            ));
        }
        if cam.max_staleness.is_zero() {
            problems.push(Problem::new(
                format!("{at}.max_staleness"),
                "must be greater than 0",
            ));
        }
        if cam.queue == 0 {
            problems.push(Problem::new(format!("{at}.queue"), "must be at least 1"));
        }
        if let Some(name) = &cam.name
            && let Some(e) = text_problem(name, MAX_NAME_CHARS, false)
        {
            problems.push(Problem::new(format!("{at}.name"), e));
        }
        if cam.queries.len() > MAX_QUERIES_PER_CAMERA {
            problems.push(Problem::new(
                format!("{at}.queries"),
                format!(
                    "{} queries; a camera runs at most {MAX_QUERIES_PER_CAMERA}",
                    cam.queries.len()
                ),
            ));
        }
        let mut qids = HashSet::new();
        for (j, q) in cam.queries.iter().enumerate() {
            let qat = format!("{at}.queries[{j}]");
            if !id_ok(&q.id) {
                problems.push(Problem::new(
                    format!("{qat}.id"),
                    format!(
                        "{} must be 1-64 characters of A-Z a-z 0-9 _ -",
                        shown(&q.id)
                    ),
                ));
            } else if !qids.insert(q.id.as_str()) {
                problems.push(Problem::new(
                    format!("{qat}.id"),
                    format!("{:?} is used by another query of camera {:?}", q.id, cam.id),
                ));
            }
            check_query(q, &qat, config, problems);
        }
    }
}

/// Checks a query given at runtime (`ocellus/<cam>/query/<q>/set`) against the models
/// of `config`; problems are named by field alone.
pub fn check_runtime_query(q: &QueryConfig, config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    if !id_ok(&q.id) {
        problems.push(Problem::new(
            "id",
            format!(
                "{} must be 1-64 characters of A-Z a-z 0-9 _ -",
                shown(&q.id)
            ),
        ));
    }
    check_query(q, "", config, &mut problems);
    problems
}

fn check_query(q: &QueryConfig, at: &str, config: &Config, problems: &mut Vec<Problem>) {
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
    let Some(model) = config.models.get(&q.model) else {
        // A model that is defined but wrong has its own problem: no second one here.
        if model_has_problem {
            return;
        }
        let known: Vec<&str> = config.models.keys().map(String::as_str).collect();
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
    match (model, q.kind) {
        (ModelConfig::Yolox(_), QueryKind::YesNo | QueryKind::Count) => {
            if q.label.is_none() {
                bad(
                    "label",
                    format!(
                        "a yolox {} query needs the class to look for, e.g. label = \"person\"",
                        q.kind.name()
                    ),
                );
            }
        }
        (ModelConfig::Clip(_), QueryKind::YesNo) => {
            if q.no.is_empty() {
                bad("no", "a clip yes_no query needs at least one negative prompt, e.g. no = [\"an empty doorway\"]".into());
            }
        }
        (ModelConfig::Clip(_), QueryKind::Classify) => {
            if q.labels.len() < 2 {
                bad(
                    "labels",
                    "a classify query needs at least two labels".into(),
                );
            }
        }
        (ModelConfig::Florence2(_), QueryKind::Caption | QueryKind::Detect | QueryKind::Read) => {}
        (ModelConfig::Florence2(_), QueryKind::Ground) => {
            if q.ask.trim().is_empty() {
                bad(
                    "ask",
                    "a ground query needs the phrase to find in `ask`".into(),
                );
            }
        }
        (ModelConfig::Smolvlm(_), QueryKind::YesNo | QueryKind::Answer | QueryKind::Caption) => {
            if q.ask.trim().is_empty() {
                bad("ask", "a smolvlm query needs the question in `ask`".into());
            }
        }
        (ModelConfig::Ppocr(_), QueryKind::Read) => {}
        (m, kind) => bad(
            "kind",
            format!(
                "{} queries are not supported by model {:?} (family {})",
                kind.name(),
                q.model,
                m.family()
            ),
        ),
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

/// Why `text` does not fit: longer than `max` characters, or a control character
/// (a newline or tab allowed in a `multiline` one).
fn text_problem(text: &str, max: usize, multiline: bool) -> Option<String> {
    if !within(text, max) {
        return Some(format!("is longer than {max} characters"));
    }
    let allowed = |c: char| multiline && (c == '\n' || c == '\t');
    text.chars()
        .any(|c| c.is_control() && !allowed(c))
        .then(|| "must not contain control characters".to_string())
}

/// `s` quoted for a message, cut after 64 characters.
fn shown(s: &str) -> String {
    if within(s, 64) {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(64).collect();
        format!("{head:?}…")
    }
}

fn id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

fn topic_safe(s: &str) -> bool {
    !s.is_empty() && !s.contains(['+', '#', ' '])
}
