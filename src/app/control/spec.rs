//! A query spec given at runtime: the JSON form of a `[[cameras.queries]]` table,
//! checked as strictly as the config file, then bound to its model once (which
//! embeds a dual encoder's prompts into the prompt cache, so the camera that takes
//! the query over does not embed them again).

use serde_json::Value;

use super::error::SpecError;
use crate::app::config::{Config, check_runtime_query};
use crate::model::Registry;
use crate::query::{BindError, QueryConfig, SlowQuery, StandingQuery};

/// Parses and checks the spec of query `id`; the error is one line with every
/// problem found.
pub(super) fn parse(
    id: &str,
    payload: &[u8],
    config: &Config,
) -> Result<(QueryConfig, Value), SpecError> {
    let mut spec: Value = serde_json::from_slice(payload).map_err(SpecError::NotJson)?;
    let Some(fields) = spec.as_object_mut() else {
        return Err(SpecError::NotObject);
    };
    match fields.get("id") {
        None => {
            fields.insert("id".into(), Value::String(id.to_string()));
        }
        Some(Value::String(given)) if given == id => {}
        Some(given) => {
            return Err(SpecError::IdDiffers {
                given: given.to_string(),
                id: id.to_string(),
            });
        }
    }
    let query: QueryConfig = serde_json::from_value(spec.clone()).map_err(SpecError::Invalid)?;
    let problems = check_runtime_query(&query, config);
    if !problems.is_empty() {
        return Err(SpecError::Problems { problems });
    }
    Ok((query, spec))
}

/// Binds `query` to its loaded model as a camera would (clip prompts are embedded
/// here, into the shared prompt cache); the error says why it cannot run.
pub(super) fn prepare(query: &QueryConfig, models: &Registry) -> Result<(), BindError> {
    match SlowQuery::prepare(query, models) {
        Some(result) => result.map(drop),
        None => StandingQuery::prepare(query.clone(), models).map(drop),
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A config with YOLOX `coco` and camera `door` (no model files needed).
    pub(in crate::app::control) fn config() -> Config {
        crate::app::config::parse(
            r#"
[models.coco]
family = "yolox"
dir = "/nowhere/yolox_nano_coco"

[[cameras]]
id = "door"
url = "rtsp://127.0.0.1/door"
"#,
            std::path::Path::new("/etc/ocellus.toml"),
        )
        .unwrap()
    }

    #[test]
    fn a_valid_spec_takes_the_topic_id() {
        let spec = br#"{"ask": "people?", "kind": "count", "model": "coco", "label": "person",
                        "min_duration": "2s"}"#;
        let (q, stored) = parse("people", spec, &config()).unwrap();
        assert_eq!(q.id, "people");
        assert_eq!(q.min_duration, std::time::Duration::from_secs(2));
        assert_eq!(stored["id"], "people");
    }

    #[test]
    fn every_problem_is_named_in_one_line() {
        let e = parse(
            "people",
            br#"{"ask": "?", "kind": "count", "model": "coco", "on": 0.1, "off": 0.5}"#,
            &config(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("on: must be greater than off"), "{e}");
        assert!(
            e.contains("label: a yolox count query needs the class"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn bad_specs_say_why() {
        let cfg = config();
        let cases: [(&[u8], &str); 5] = [
            (b"{not json", "not JSON"),
            (b"[1, 2]", "JSON object"),
            (
                br#"{"id": "other", "ask": "?"}"#,
                "differs from the query id",
            ),
            (br#"{"ask": "?", "kind": "count"}"#, "missing field `model`"),
            (
                br#"{"ask": "?", "kind": "count", "model": "coco", "colour": 1}"#,
                "unknown field `colour`",
            ),
        ];
        for (spec, want) in cases {
            let e = parse("q", spec, &cfg).unwrap_err().to_string();
            assert!(e.contains(want), "{e} (wanted {want})");
        }
        let e = parse(
            "q",
            br#"{"ask": "?", "kind": "count", "model": "nope", "label": "person"}"#,
            &cfg,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("model: \"nope\" is not defined under [models]"),
            "{e}"
        );
        let e = parse(
            "bad id",
            br#"{"ask": "?", "kind": "count", "model": "coco", "label": "person"}"#,
            &cfg,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("bad id"), "{e}");
    }

    #[test]
    fn every_string_and_list_is_bounded() {
        use crate::query::limits::*;
        let cfg = config();
        let base =
            || serde_json::json!({"ask": "?", "kind": "count", "model": "coco", "label": "person"});
        let long = |n: usize| "x".repeat(n + 1);
        let many = |n: usize| vec!["a"; n + 1];
        let cases = [
            (
                "ask",
                serde_json::json!(long(MAX_ASK_CHARS)),
                "ask: is longer than 1000",
            ),
            (
                "name",
                serde_json::json!(long(MAX_NAME_CHARS)),
                "name: is longer than 100",
            ),
            (
                "unit",
                serde_json::json!(long(MAX_UNIT_CHARS)),
                "unit: is longer than 32",
            ),
            (
                "label",
                serde_json::json!(long(MAX_LABEL_CHARS)),
                "label: is longer than 100",
            ),
            (
                "pattern",
                serde_json::json!(long(MAX_PATTERN_CHARS)),
                "pattern: is longer than 256",
            ),
            (
                "labels",
                serde_json::json!(many(MAX_PROMPTS)),
                "labels: 33 prompts; at most 32",
            ),
            (
                "yes",
                serde_json::json!(many(MAX_PROMPTS)),
                "yes: 33 prompts",
            ),
            (
                "no",
                serde_json::json!(["ok", long(MAX_PROMPT_CHARS), long(MAX_PROMPT_CHARS)]),
                "no[1]: is longer than 200 characters (and 1 more)",
            ),
            (
                "name",
                serde_json::json!("a\u{7}b"),
                "name: must not contain control characters",
            ),
            (
                "max_tokens",
                serde_json::json!(MAX_QUERY_TOKENS + 1),
                "max_tokens: must be at most 1024",
            ),
            (
                "cooldown",
                serde_json::json!("8days"),
                "cooldown: must be at most 7days",
            ),
            (
                "region",
                serde_json::json!([0.0, 0.0, 1.5, 0.5]),
                "region: [0, 0, 1.5, 0.5] must be normalised",
            ),
        ];
        for (field, value, want) in cases {
            let mut spec = base();
            spec[field] = value;
            let e = parse("q", spec.to_string().as_bytes(), &cfg)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{field}: {e} (wanted {want})");
            assert!(e.len() < 400, "{field}: {e}");
        }
        // A multi-line question is fine; the largest allowed strings pass.
        let mut spec = base();
        spec["ask"] = serde_json::json!(format!("is it\n{}", "é".repeat(MAX_ASK_CHARS - 6)));
        spec["name"] = serde_json::json!("n".repeat(MAX_NAME_CHARS));
        parse("q", spec.to_string().as_bytes(), &cfg).unwrap();
    }
}
