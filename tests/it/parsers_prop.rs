//! Property tests (proptest, a bounded number of cases, each well under a second) on
//! every parser fed from outside the daemon: none panics, and every refusal is an
//! `Err` whose message is one line.
//!
//! * config TOML (`ocellus::app::config::parse`): arbitrary text, TOML-ish text, and a
//!   valid config with every section mutated line by line;
//! * query specs (MQTT `.../query/<q>/set` payloads and HTTP `PUT /api/queries/...`
//!   bodies both go through `Control::check`): arbitrary bytes, and valid specs of
//!   every kind with fields replaced by arbitrary JSON, removed or added; arbitrary
//!   camera and query ids from the topic or the URL;
//! * the OCR `pattern` of a `read` query (compiled by the daemon with the `regex`
//!   crate's default size limit): arbitrary and regex-like patterns, and patterns
//!   whose compiled form is too big, which must be refused, not compiled;
//! * the CLIP and SigLIP tokenizers (the real CLIP BPE tokenizer from
//!   `<shared>/models/clip_vit_b32_tokenizer`, SigLIP's from its fixture): arbitrary
//!   Unicode of any length gives ids of the model's length, start and end tokens kept;
//! * model catalogue files (`--catalog FILE`, `ocellus::hub::catalog::parse`):
//!   arbitrary text and the built-in catalogue mutated line by line;
//! * HTTP bodies through the real router: `PUT /api/queries/<cam>/<q>` on a running
//!   `ocellus run` with arbitrary and mutated bodies, every answer a JSON object with
//!   a one-line `error` (or the accepted query), the daemon still serving after.

use crate::common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ocellus::app::config::{ConfigError, parse};
use ocellus::app::control::{Control, QueryEdit};
use ocellus::engine::{self, EngineConfig};
use ocellus::kit::QueryCommand;
use ocellus::model::clip::Clip;
use ocellus::model::{ClipConfig, ModelConfig};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{Map, Value, json};

use common::*;

/// Cases per property: enough to reach the odd corners of each parser, few enough
/// that each property runs in well under a second on a loaded 2-core machine.
const CASES: u32 = 256;

fn cases(n: u32) -> ProptestConfig {
    ProptestConfig {
        cases: n,
        // No regression files written next to the tests (CI runs in a fresh clone);
        // a failure prints its minimal input, which then becomes a plain test.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A refusal's message: present, on one line.
fn assert_one_line(what: &str, msg: &str) {
    assert!(!msg.trim().is_empty(), "{what}: an empty message");
    assert!(
        !msg.contains('\n') && !msg.contains('\r'),
        "{what}: the message is not one line: {msg:?}"
    );
}

// ------------------------------------------------------------ mutations

/// A change to a text, line by line.
#[derive(Clone, Debug)]
enum Edit {
    /// Drop a line.
    Delete(Index),
    /// Repeat a line after itself.
    Duplicate(Index),
    /// Replace the value of a `key = value` line (or the whole line).
    SetValue(Index, String),
    /// Put a line of anything before a line.
    Insert(Index, String),
    /// Cut the text at a character.
    Truncate(Index),
    /// Swap two lines.
    Swap(Index, Index),
}

fn toml_float(f: f64) -> String {
    if f.is_nan() {
        "nan".into()
    } else if f.is_infinite() {
        if f > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{f:?}")
    }
}

/// A TOML value of any type, mostly well formed, sometimes not.
fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        (0i64..1000).prop_map(|v| v.to_string()),
        any::<f64>().prop_map(toml_float),
        (-2.0f64..2.0).prop_map(toml_float),
        any::<bool>().prop_map(|b| b.to_string()),
        "\\PC{0,40}".prop_map(|s| toml_str(&s)),
        "[0-9]{1,22}(ns|us|ms|s|m|h|d|w|y|)".prop_map(|s| toml_str(&s)),
        "(rtsp|rtspt|http|file|mqtt|mqtts|ftp)://[a-z0-9@:./%?=&]{0,30}".prop_map(|s| toml_str(&s)),
        "\\$\\{[A-Z_]{0,8}(:-[a-z]{0,5})?\\}".prop_map(|s| toml_str(&s)),
        prop::collection::vec(any::<f32>(), 0..6).prop_map(|v| {
            let items: Vec<String> = v.into_iter().map(|f| toml_float(f64::from(f))).collect();
            format!("[{}]", items.join(", "))
        }),
        prop::collection::vec("\\PC{0,12}", 0..5).prop_map(|v| {
            let items: Vec<String> = v.iter().map(|s| toml_str(s)).collect();
            format!("[{}]", items.join(", "))
        }),
        Just("{}".to_string()),
        Just("[]".to_string()),
        "[\\[\\]{}\"'=,.#a-z0-9 ]{0,20}",
    ]
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        1 => any::<Index>().prop_map(Edit::Delete),
        1 => any::<Index>().prop_map(Edit::Duplicate),
        4 => (any::<Index>(), toml_value()).prop_map(|(i, v)| Edit::SetValue(i, v)),
        1 => (any::<Index>(), "\\PC{0,30}").prop_map(|(i, s)| Edit::Insert(i, s)),
        1 => any::<Index>().prop_map(Edit::Truncate),
        1 => (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::Swap(a, b)),
    ]
}

fn apply_edits(text: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    for e in edits {
        if lines.is_empty() {
            break;
        }
        match e {
            Edit::Delete(i) => {
                lines.remove(i.index(lines.len()));
            }
            Edit::Duplicate(i) => {
                let at = i.index(lines.len());
                lines.insert(at, lines[at].clone());
            }
            Edit::SetValue(i, v) => {
                let at = i.index(lines.len());
                lines[at] = match lines[at].split_once('=') {
                    Some((key, _)) => format!("{key}= {v}"),
                    None => v.clone(),
                };
            }
            Edit::Insert(i, s) => {
                let at = i.index(lines.len());
                lines.insert(at, s.clone());
            }
            Edit::Truncate(i) => {
                let joined = lines.join("\n");
                let chars: Vec<char> = joined.chars().collect();
                let cut: String = chars[..i.index(chars.len() + 1)].iter().collect();
                lines = cut.lines().map(str::to_string).collect();
            }
            Edit::Swap(a, b) => {
                let (a, b) = (a.index(lines.len()), b.index(lines.len()));
                lines.swap(a, b);
            }
        }
    }
    lines.join("\n")
}

// ---------------------------------------------------------------- config

/// Every section and every model family, cameras of each kind, queries of each kind
/// with their rules.
const VALID_CONFIG: &str = r#"
[engine]
threads = 1
max_batch = 4
max_wait = "5ms"

[cache]
embeddings_mb = 64

[mqtt]
url = "mqtt://127.0.0.1:1883"
prefix = "ocellus"
keep_alive = "5s"
outbox_capacity = 1000
discovery = true

[http]
listen = "127.0.0.1:9380"

[snapshots]
dir = "snaps"
keep = 10
quality = 80

[models.coco]
family = "yolox"
dir = "models/yolox"
score_threshold = 0.3

[models.scene]
family = "clip"
dir = "/var/lib/ocellus/clip"

[models.ocr]
family = "ppocr"
dir = "ocr"

[models.f2]
family = "florence2"
dir = "f2"

[models.vlm]
family = "smolvlm"
dir = "vlm"

[[cameras]]
id = "door"
url = "rtsp://user:pw@cam/stream"
transport = "tcp"
sample_fps = 2
frame_timeout = "10s"
reconnect_max = "30s"
latency = "200ms"

[[cameras.queries]]
id = "person"
ask = "is there a person?"
kind = "yes_no"
model = "coco"
label = "person"
on = 0.6
off = 0.4
min_frames = 2
min_duration = "1s"
cooldown = "5s"
region = [0.0, 0.0, 0.5, 1.0]

[[cameras.queries]]
id = "parcel"
ask = "a parcel on the step?"
kind = "yes_no"
model = "scene"
no = ["an empty step"]

[[cameras.queries]]
id = "gauge"
ask = "what does the gauge read?"
kind = "read"
model = "ocr"
pattern = '(\d+\.\d)\s*bar'
every = "4s"
unit = "bar"

[[cameras.queries]]
id = "what"
ask = "what is happening?"
kind = "caption"
model = "f2"
every = "30s"

[[cameras.queries]]
id = "dog"
ask = "is the dog on the sofa?"
kind = "yes_no"
model = "vlm"
max_tokens = 8

[[cameras]]
realtime = false
id = "yard"
url = "/srv/clips/yard.mkv"
repeat = true

[[cameras.queries]]
id = "cars"
ask = "how many cars?"
kind = "count"
model = "coco"
label = "car"
expire_after = "60s"
"#;

const CONFIG_PATH: &str = "/etc/ocellus/prop.toml";

/// Parses `text` as the daemon would; a refusal must name each problem on its own
/// line; an accepted config must survive what the daemon does next with it.
fn check_config(text: &str) {
    match parse(text, Path::new(CONFIG_PATH)) {
        Ok(config) => {
            let _ = ocellus::app::config::preflight(&config);
            let control = Control::new(&config, None);
            assert_eq!(control.cameras().len(), config.cameras.len());
        }
        Err(e) => {
            assert_one_line("config", &e.one_line());
            match &e {
                ConfigError::Invalid { problems, .. } => {
                    assert!(!problems.is_empty(), "a refusal without a problem");
                    for p in problems {
                        assert_one_line("config problem", &p.to_string());
                    }
                }
                ConfigError::Read { .. } => panic!("parse read a file: {e}"),
            }
        }
    }
}

/// Found by the properties: the TOML error quoted the offending line and only its
/// `\n` were replaced, so a carriage return reached the message (and the log line).
#[test]
fn config_error_quoting_a_carriage_return_is_one_line() {
    check_config("\"\r\"\n");
}

/// Found by the properties: a `${` with no `}` on its line took everything up to the
/// next `}` in the file, newlines included, as the variable's name.
#[test]
fn config_unclosed_variable_is_one_line() {
    check_config("a = \"${\"\nb = {}\n");
}

#[test]
fn the_valid_config_parses() {
    let config =
        parse(VALID_CONFIG, Path::new(CONFIG_PATH)).unwrap_or_else(|e| panic!("{}", e.one_line()));
    assert_eq!(config.cameras.len(), 2);
    assert_eq!(config.models.len(), 5);
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn config_from_any_text(text in "\\PC{0,300}") {
        check_config(&text);
    }

    #[test]
    fn config_from_toml_like_text(
        text in "([\\[\\]]{0,2}[a-z_.]{0,12}[\\]]{0,2} ?=? ?(\"[^\"\n\r]{0,12}\"|'[^'\n\r]{0,8}'|[0-9.e+-]{0,8}|\\[[0-9., ]{0,12}\\]|true|inf|nan)?\n){0,12}"
    ) {
        check_config(&text);
    }

    #[test]
    fn config_mutated_from_a_valid_one(edits in prop::collection::vec(edit(), 1..5)) {
        let text = apply_edits(VALID_CONFIG, &edits);
        check_config(&text);
    }
}

// ----------------------------------------------------------- query specs

/// A config with a camera `door` and one model of each family (no files needed:
/// `Control::check` binds no model).
fn control() -> &'static Control {
    static CONTROL: OnceLock<Control> = OnceLock::new();
    CONTROL.get_or_init(|| {
        let config = parse(
            r#"
[models.coco]
family = "yolox"
dir = "/nowhere/yolox"
[models.scene]
family = "clip"
dir = "/nowhere/clip"
[models.ocr]
family = "ppocr"
dir = "/nowhere/ocr"
[models.f2]
family = "florence2"
dir = "/nowhere/f2"
[models.vlm]
family = "smolvlm"
dir = "/nowhere/vlm"

[[cameras]]
id = "door"
url = "rtsp://127.0.0.1/door"

[[cameras.queries]]
id = "person"
ask = "a person?"
kind = "yes_no"
model = "coco"
label = "person"
"#,
            Path::new(CONFIG_PATH),
        )
        .unwrap_or_else(|e| panic!("{}", e.one_line()));
        Control::new(&config, None)
    })
}

/// A valid spec of each kind for each family.
fn valid_specs() -> Vec<Value> {
    vec![
        json!({"ask": "a person?", "kind": "yes_no", "model": "coco", "label": "person",
               "on": 0.6, "off": 0.4, "min_frames": 2, "min_duration": "1s", "cooldown": "5s"}),
        json!({"ask": "how many cups?", "kind": "count", "model": "coco", "label": "cup",
               "min_score": 0.4, "region": [0.0, 0.0, 0.5, 1.0], "unit": "cups"}),
        json!({"ask": "a parcel?", "kind": "yes_no", "model": "scene",
               "yes": ["a parcel on the step"], "no": ["an empty step"], "off_delay": "3s"}),
        json!({"ask": "which room?", "kind": "classify", "model": "scene",
               "labels": ["kitchen", "garage", "garden"]}),
        json!({"ask": "the gauge?", "kind": "read", "model": "ocr",
               "pattern": "(\\d+\\.\\d)\\s*bar", "every": "4s", "unit": "bar"}),
        json!({"ask": "what is happening?", "kind": "caption", "model": "f2",
               "detail": "detailed", "every": "30s", "on_change": true, "min_interval": "5s"}),
        json!({"ask": "a red car", "kind": "ground", "model": "f2", "every": "10s"}),
        json!({"ask": "what is on the table?", "kind": "answer", "model": "vlm",
               "max_tokens": 16, "expire_after": "60s", "name": "Table"}),
    ]
}

/// The fields a spec may have, and a few it may not.
const KEYS: &[&str] = &[
    "id",
    "ask",
    "kind",
    "model",
    "label",
    "labels",
    "yes",
    "no",
    "region",
    "on",
    "off",
    "min_frames",
    "min_duration",
    "off_delay",
    "cooldown",
    "expire_after",
    "min_score",
    "every",
    "on_change",
    "min_interval",
    "pattern",
    "max_tokens",
    "detail",
    "name",
    "unit",
    "colour",
    "",
];

/// Any JSON value, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-2.0f64..2.0).prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        "\\PC{0,30}".prop_map(Value::String),
        "[0-9]{1,22}(ns|ms|s|m|h|d|y|)".prop_map(Value::String),
        prop::sample::select(vec![
            "yes_no",
            "count",
            "classify",
            "caption",
            "detect",
            "read",
            "ground",
            "answer",
            "coco",
            "scene",
            "ocr",
            "f2",
            "vlm",
            "brief",
            "detailed",
            "more_detailed",
        ])
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(any::<f32>().prop_map(|f| json!(f)), 4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{0,12}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

#[derive(Clone, Debug)]
enum SpecEdit {
    Set(&'static str, Value),
    Remove(&'static str),
}

fn spec_edit() -> impl Strategy<Value = SpecEdit> {
    prop_oneof![
        3 => (prop::sample::select(KEYS), json_value()).prop_map(|(k, v)| SpecEdit::Set(k, v)),
        1 => prop::sample::select(KEYS).prop_map(SpecEdit::Remove),
    ]
}

fn mutated_spec(base: Index, edits: &[SpecEdit]) -> Value {
    let specs = valid_specs();
    let mut spec = specs[base.index(specs.len())].clone();
    if let Some(fields) = spec.as_object_mut() {
        for e in edits {
            match e {
                SpecEdit::Set(k, v) => {
                    fields.insert((*k).to_string(), v.clone());
                }
                SpecEdit::Remove(k) => {
                    fields.remove(*k);
                }
            }
        }
    }
    spec
}

/// `Control::check` as the MQTT and HTTP paths call it: no panic, an accepted spec
/// is the query of the topic, a refusal is one line.
fn check_spec(camera: &str, query: &str, payload: &[u8]) -> Result<QueryEdit, String> {
    let cmd = QueryCommand {
        camera: camera.into(),
        query: query.into(),
        payload: payload.to_vec(),
    };
    let result = control().check(&cmd).map_err(|e| e.to_string());
    match &result {
        Ok(QueryEdit::Set(q, spec)) => {
            assert_eq!(q.id, query);
            assert_eq!(spec["id"], query);
        }
        Ok(QueryEdit::Delete) => assert!(payload.trim_ascii().is_empty()),
        Err(e) => assert_one_line("spec", e),
    }
    result
}

#[test]
fn the_valid_specs_are_accepted() {
    for spec in valid_specs() {
        let payload = serde_json::to_vec(&spec).unwrap();
        if let Err(e) = check_spec("door", "q", &payload) {
            panic!("{spec}: {e}");
        }
    }
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn spec_from_any_bytes(payload in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = check_spec("door", "q", &payload);
    }

    #[test]
    fn spec_from_any_json(value in json_value()) {
        let _ = check_spec("door", "q", &serde_json::to_vec(&value).unwrap());
    }

    #[test]
    fn spec_mutated_from_a_valid_one(
        base in any::<Index>(),
        edits in prop::collection::vec(spec_edit(), 1..4),
    ) {
        let spec = mutated_spec(base, &edits);
        let _ = check_spec("door", "q", &serde_json::to_vec(&spec).unwrap());
    }

    #[test]
    fn spec_for_any_camera_and_query_id(
        camera in "\\PC{0,20}",
        query in "\\PC{0,20}",
        base in any::<Index>(),
        delete in any::<bool>(),
    ) {
        let specs = valid_specs();
        let payload = if delete {
            Vec::new()
        } else {
            serde_json::to_vec(&specs[base.index(specs.len())]).unwrap()
        };
        let _ = check_spec(&camera, &query, &payload);
    }
}

// ------------------------------------------------------------ OCR pattern

fn read_spec(pattern: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"ask": "?", "kind": "read", "model": "ocr", "pattern": pattern}))
        .unwrap()
}

/// A pattern whose compiled form is large: `(atom{n}){m}`.
fn pattern_bomb() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["a", "\\w", "\\d", "[a-z]", "(?:ab|cd)", "\\pL", "."]),
        1u32..=1000,
        1u32..=1000,
    )
        .prop_map(|(atom, n, m)| format!("(?:{atom}{{{n}}}){{{m}}}"))
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn pattern_from_any_text(pattern in "\\PC{0,40}") {
        let r = check_spec("door", "gauge", &read_spec(&pattern));
        if let Err(e) = r {
            prop_assert!(e.contains("pattern"), "{e}");
        }
    }

    #[test]
    fn pattern_from_regex_like_text(pattern in "[()\\[\\]{}*+?|\\\\.a-z0-9^$,:<>=!dDwWsSpPL-]{0,40}") {
        let r = check_spec("door", "gauge", &read_spec(&pattern));
        if let Err(e) = r {
            prop_assert!(e.contains("pattern"), "{e}");
        }
    }
}

proptest! {
    // Each case compiles (or refuses) a pattern of up to the size limit: ~0.1-0.3 s.
    #![proptest_config(cases(6))]

    #[test]
    fn pattern_whose_compiled_form_is_large(pattern in pattern_bomb()) {
        let r = check_spec("door", "gauge", &read_spec(&pattern));
        if let Err(e) = r {
            prop_assert!(e.contains("pattern"), "{e}");
        }
    }
}

#[test]
fn patterns_too_big_to_compile_are_refused() {
    // Compiled, each is far over the regex crate's default size limit (10 MiB), which
    // `Regex::new` applies: refused with a reason, not compiled.
    for pattern in [
        "(?:\\w{1000}){1000}",
        "((a{100}){100}){100}",
        "\\pL{100000}",
    ] {
        let t = std::time::Instant::now();
        let e = match check_spec("door", "gauge", &read_spec(pattern)) {
            Err(e) => e,
            Ok(_) => panic!("{pattern:?} was accepted"),
        };
        eprintln!("{pattern:?}: refused in {:.0?}", t.elapsed());
        assert!(
            e.contains("pattern") && e.contains("size limit"),
            "{pattern}: {e}"
        );
    }
}

// ------------------------------------------------------------- tokenizers

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn clip_config(toml_text: &str) -> ClipConfig {
    let cfg: ClipConfig = toml::from_str(toml_text).unwrap();
    let mut model = ModelConfig::Clip(cfg);
    model.resolve_paths(Path::new("/"));
    match model {
        ModelConfig::Clip(c) => c,
        _ => unreachable!(),
    }
}

/// The tiny CLIP with the real CLIP ViT-B/32 tokenizer, and the tiny SigLIP.
fn tokenizers() -> &'static [(&'static str, Clip)] {
    static MODELS: OnceLock<Vec<(&'static str, Clip)>> = OnceLock::new();
    MODELS.get_or_init(|| {
        let env = engine::environment(&EngineConfig::default()).unwrap();
        let clip = clip_config(&format!(
            "dir = {:?}\ntokenizer = {:?}\nproviders = [\"cpu\"]\nthreads = 1",
            fixture("clip_tiny"),
            shared_dir().join("models/clip_vit_b32_tokenizer/tokenizer.json"),
        ));
        let siglip = clip_config(&format!(
            "dir = {:?}\nproviders = [\"cpu\"]\nthreads = 1",
            fixture("siglip_tiny")
        ));
        let (clip, _) = Clip::load("tiny-clip", &clip, env).unwrap();
        let (siglip, _) = Clip::load("tiny-siglip", &siglip, env).unwrap();
        vec![("clip", clip), ("siglip", siglip)]
    })
}

/// The ids of `text` keep the shape of the empty prompt's: the same start token,
/// the end token last among the real ids, and the model's length (SigLIP pads to a
/// fixed length; CLIP's tiny text model takes any length up to 77).
fn check_tokens(text: &str) {
    for (name, model) in tokenizers() {
        let empty = model.tokenize("").unwrap();
        let ids = model
            .tokenize(text)
            .unwrap_or_else(|e| panic!("{name}: tokenizing {} chars: {e}", text.chars().count()));
        match *name {
            "clip" => {
                assert!(ids.len() <= 77, "{name}: {} ids", ids.len());
                assert_eq!(ids.first(), empty.first(), "{name}: start token");
                assert_eq!(ids.last(), empty.last(), "{name}: end token");
            }
            _ => assert_eq!(ids.len(), empty.len(), "{name}: not the fixed length"),
        }
    }
}

proptest! {
    // Each case tokenizes with both models.
    #![proptest_config(cases(128))]

    #[test]
    fn tokenizer_any_unicode(text in "\\PC{0,300}") {
        check_tokens(&text);
    }

    #[test]
    fn tokenizer_any_chars_including_controls(text in any::<String>()) {
        check_tokens(&text);
    }

    #[test]
    fn tokenizer_long_repeats(
        unit in prop::sample::select(vec![
            "a", " ", "ab ", "\u{0301}", "\u{1F600}", "\u{200D}", "\u{FFFD}", "\0", "日本",
            "\u{202E}", "<|endoftext|>", "</s>", "\t\n",
        ]),
        n in 1usize..1000,
    ) {
        check_tokens(&unit.repeat(n));
    }
}

#[test]
fn tokenizer_takes_a_16_kib_prompt() {
    for text in [
        "the quick brown fox ".repeat(16 * 1024 / 20),
        "\u{1F600}".repeat(4 * 1024),
    ] {
        check_tokens(&text);
        for (name, model) in tokenizers() {
            let t = std::time::Instant::now();
            let _ = model.tokenize(&text);
            eprintln!(
                "{name}: {} bytes tokenized in {:.0?}",
                text.len(),
                t.elapsed()
            );
        }
    }
}

// ------------------------------------------------------------- catalogue

const BUILTIN_CATALOG: &str = include_str!("../../src/hub/catalog.toml");

/// What `models list` and `models pull` do with a parsed catalogue, short of the
/// network.
fn check_catalog(text: &str) {
    match ocellus::hub::catalog::parse(text, "prop.toml") {
        Ok(entries) => {
            for e in &entries {
                let _ = e.source_label();
                let _ = e.revision_pinned();
                for f in &e.files {
                    let _ = e.url_for(f, "https://hub.invalid", &e.revision);
                }
            }
        }
        Err(e) => assert_one_line("catalogue", &e.to_string()),
    }
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn catalog_from_any_text(text in "\\PC{0,300}") {
        check_catalog(&text);
    }

    #[test]
    fn catalog_mutated_from_the_builtin(edits in prop::collection::vec(edit(), 1..5)) {
        check_catalog(&apply_edits(BUILTIN_CATALOG, &edits));
    }
}

/// Found by the properties: `one_line` split on `\n` only, so a carriage return
/// quoted from the file stayed in the message.
#[test]
fn catalog_error_quoting_a_carriage_return_is_one_line() {
    check_catalog("\"\r\"\n");
}

#[test]
fn a_catalog_file_is_read_and_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("site.toml");
    std::fs::write(
        &path,
        "[[model]]\nname = \"x\"\nfamily = \"yolox\"\n\"broken",
    )
    .unwrap();
    let e = ocellus::hub::catalog::Catalog::load(Some(&path)).unwrap_err();
    assert_one_line("catalogue", &e.to_string());
    assert!(e.to_string().contains("site.toml"), "{e}");
}

/// `models list` adds up the known sizes of an entry's files; three files of the
/// largest size TOML allows overflow the `u64` sum (a panic in a debug build, a
/// wrong total in release) unless the sum saturates.
#[test]
fn catalog_sizes_that_overflow_their_sum() {
    let file = |path: &str| {
        format!(
            "[[model.file]]\npath = \"{path}\"\nurl = \"https://x.invalid/{path}\"\nsize = {}\n",
            i64::MAX
        )
    };
    let text = format!(
        "[[model]]\nname = \"big\"\nfamily = \"yolox\"\ntitle = \"t\"\nlicence = \"l\"\nsource = \"s\"\n{}{}{}",
        file("a.onnx"),
        file("b.onnx"),
        file("c.onnx")
    );
    let entries = ocellus::hub::catalog::parse(&text, "big.toml").unwrap();
    let (known, unknown) = entries[0].known_size();
    assert_eq!(unknown, 0);
    assert!(known >= i64::MAX as u64, "{known}");
}

// ------------------------------------------------------- HTTP, end to end

/// `ocellus run` with the HTTP API on a free port and one camera, `door`, on a port
/// nothing listens on (it reconnects, cheaply, all along); waits for the API.
fn http_daemon(dir: &Path) -> (Daemon, u16) {
    let port = free_port();
    let cfg = write_config(
        dir,
        &format!(
            "{}[http]\nlisten = \"127.0.0.1:{port}\"\n\n[[cameras]]\nid = \"door\"\n\
             url = \"rtsp://127.0.0.1:{}/none\"\n\n{}",
            engine_and_yolox(),
            free_port(),
            person_query("")
        ),
    );
    let daemon = Daemon::start(&cfg, &[]);
    let up = wait_until(std::time::Duration::from_secs(60), || {
        http(port, "GET", "/api/cameras", None, b"")
            .is_some_and(|r| r.status == 200 && r.text().contains("door"))
    });
    assert!(up, "the HTTP API did not come up\n{}", daemon.output());
    (daemon, port)
}

/// PUT bodies through the real router of a running daemon: every answer is JSON
/// with a one-line `error`, or the accepted query; the daemon serves on after. The
/// query ids in the URL take percent escapes of ASCII only (see the finding below).
#[test]
fn http_query_bodies_through_the_running_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let (mut daemon, port) = http_daemon(dir.path());

    let mut runner = proptest::test_runner::TestRunner::new(cases(48));
    let bodies = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..300),
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        (any::<Index>(), prop::collection::vec(spec_edit(), 1..3))
            .prop_map(|(b, e)| serde_json::to_vec(&mutated_spec(b, &e)).unwrap()),
    ];
    let query = "([a-z0-9_.~-]|%[0-7][0-9a-fA-F]){1,16}";
    let result = runner.run(&(bodies, query), |(body, query)| {
        let path = format!("/api/queries/door/{query}");
        let r = http(port, "PUT", &path, None, &body)
            .ok_or_else(|| TestCaseError::fail(format!("no answer to PUT {path}")))?;
        prop_assert!(r.status < 500, "PUT {path}: {} {}", r.status, r.text());
        let answer: Value = serde_json::from_slice(&r.body)
            .map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {}", r.text())))?;
        if r.status >= 400 {
            let e = answer["error"].as_str().unwrap_or_default();
            prop_assert!(!e.is_empty() && !e.contains('\n'), "{}", r.text());
        } else {
            prop_assert!(answer["query"].is_string(), "{}", r.text());
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}\n{}", daemon.output());
    }
    assert!(
        http(port, "GET", "/healthz", None, b"").is_some() && daemon.is_running(),
        "the daemon stopped serving\n{}",
        daemon.output()
    );
    assert_no_panic("daemon", &daemon.output());
    let status = daemon.stop();
    assert!(status.success(), "exit {status}\n{}", daemon.output());
}

/// Found by the properties: a query id whose percent escapes are not UTF-8 was
/// refused by axum's path extractor as `text/plain` (`Invalid URL: Invalid UTF-8 in
/// \`query\``), not as the API's JSON `{"error": ...}`.
#[test]
fn http_query_id_that_is_not_utf8_is_refused_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let (mut daemon, port) = http_daemon(dir.path());
    let r = http(port, "PUT", "/api/queries/door/%d8", None, b"{}").expect("an answer");
    assert_eq!(r.status, 400, "{}", r.text());
    let answer: Value =
        serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", r.text()));
    assert_one_line("http", answer["error"].as_str().unwrap_or_default());
    assert!(daemon.stop().success());
}
