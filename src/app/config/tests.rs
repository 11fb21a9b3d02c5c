// Edition 2024 makes `std::env::set_var` unsafe: these tests each set a variable of
// their own (distinct names), which no other thread reads while they run.
#![allow(unsafe_code)]

use std::path::Path;

use super::{ConfigError, parse};

fn problems(text: &str) -> Vec<String> {
    match parse(text, Path::new("/etc/ocellus/test.toml")) {
        Ok(_) => vec![],
        Err(ConfigError::Invalid { problems, .. }) => {
            problems.iter().map(|p| p.to_string()).collect()
        }
        Err(e) => vec![e.to_string()],
    }
}

const GOOD: &str = r#"
[mqtt]
url = "mqtt://127.0.0.1:1883"

[models.coco]
family = "yolox"
dir = "models/yolox"

[models.scene]
family = "clip"
dir = "/var/lib/ocellus/clip"

[[cameras]]
id = "door"
url = "rtsp://cam/stream"
"#;

#[test]
fn a_good_config_loads_with_paths_resolved() {
    let c = parse(GOOD, Path::new("/etc/ocellus/test.toml")).unwrap();
    assert_eq!(
        c.models["coco"].dir(),
        Some(Path::new("/etc/ocellus/models/yolox"))
    );
    assert_eq!(
        c.models["scene"].dir(),
        Some(Path::new("/var/lib/ocellus/clip"))
    );
    assert!(c.cameras[0].is_live());
    let mqtt = c.mqtt.unwrap();
    assert_eq!(mqtt.prefix, "ocellus");
    assert_eq!(mqtt.outbox_capacity, 20_000);
}

#[test]
fn every_problem_is_reported_with_its_path() {
    let text = r#"
[models.coco]
family = "yolox"
dir = "m"

[models.scene]
family = "clip"
dir = "c"
logit_scael = 10

[[cameras]]
id = "door"
url = "rtsp://cam/1"
sample_fps = 0

[[cameras.queries]]
id = "person"
ask = "is there a person?"
kind = "yes_no"
model = "coco"
on = 0.4
off = 0.5

[[cameras.queries]]
id = "person"
ask = "how many?"
kind = "count"
model = "nope"

[[cameras]]
id = "door"
url = "ftp://x"

[[cameras.queries]]
id = "light"
ask = "is the light red?"
kind = "yes_no"
model = "coco"
label = "person"
region = [0.5, 0.1, 0.4, 0.9]

[[cameras]]
id = "bad"
url = "x.mkv"
queue = "many"
"#;
    let p = problems(&format!(
        "[mqtt]\nurl = \"mqtt://b\"\noutbox_capacity = 0\n{text}"
    ));
    let expect = [
        "mqtt.outbox_capacity: must be at least 1",
        "models.scene: unknown field `logit_scael`",
        "cameras[2].queue: invalid type: string \"many\"",
        "cameras[0].sample_fps: must be greater than 0",
        "cameras[0].queries[0].on: must be greater than off (0.5)",
        "cameras[0].queries[0].label: a yolox yes_no query needs the class",
        "cameras[0].queries[1].id: \"person\" is used by another query",
        "cameras[0].queries[1].model: \"nope\" is not defined under [models]",
        "cameras[1].id: \"door\" is used by another camera",
        "cameras[1].url: \"ftp://x\": unsupported scheme",
        "cameras[1].queries[0].region: [0.5, 0.1, 0.4, 0.9] must be normalised",
    ];
    for e in expect {
        assert!(
            p.iter().any(|x| x.starts_with(e)),
            "missing {e:?} in {p:#?}"
        );
    }
    assert_eq!(p.len(), expect.len(), "unexpected extra problems: {p:#?}");
}

#[test]
fn unknown_sections_and_bad_toml_are_reported() {
    let p = problems("[mqt]\nurl = 1\n[[cameras]]\nid = \"a\"\nurl = \"a.mkv\"\n");
    assert_eq!(
        p,
        vec![
            "mqt: unknown section, expected one of engine, decode, teach, cache, mqtt, http, snapshots, models, cameras"
        ]
    );
    let p = problems("[[cameras]\nid = 1");
    assert_eq!(p.len(), 1);
    assert!(p[0].contains("line 1"), "{p:?}");
}

#[test]
fn environment_variables_expand_with_defaults_and_missing_ones_are_named() {
    // SAFETY: tests in this module do not read this variable concurrently.
    unsafe { std::env::set_var("OCELLUS_TEST_BROKER", "mqtt://10.1.2.3:1884") };
    let text = r#"
[mqtt]
url = "${OCELLUS_TEST_BROKER}"
password = "${OCELLUS_TEST_UNSET_PASSWORD}"
username = "${OCELLUS_TEST_UNSET_USER:-ocellus}"
[[cameras]]
id = "a"
url = "a.mkv"
"#;
    let p = problems(text);
    assert_eq!(
        p,
        vec!["mqtt.password: environment variable OCELLUS_TEST_UNSET_PASSWORD is not set"]
    );
    let ok = text.replace("${OCELLUS_TEST_UNSET_PASSWORD}", "s3cret");
    let c = parse(&ok, Path::new("x.toml")).unwrap();
    let m = c.mqtt.unwrap();
    assert_eq!(m.url, "mqtt://10.1.2.3:1884");
    assert_eq!(m.username.as_deref(), Some("ocellus"));
    assert!(
        !format!("{m:?}").contains("s3cret"),
        "password must not appear in Debug output"
    );
}

#[test]
fn clip_queries_need_negative_prompts_and_labels() {
    let text = r#"
[models.scene]
family = "clip"
dir = "c"
[[cameras]]
id = "a"
url = "a.mkv"
[[cameras.queries]]
id = "q"
ask = "is the door open?"
kind = "yes_no"
model = "scene"
[[cameras.queries]]
id = "k"
ask = "what colour is the light?"
kind = "classify"
model = "scene"
labels = ["red"]
[[cameras.queries]]
id = "c"
ask = "how many?"
kind = "count"
model = "scene"
"#;
    let p = problems(text);
    assert_eq!(p.len(), 3, "{p:#?}");
    assert!(p[0].starts_with(
        "cameras[0].queries[0].no: a clip yes_no query needs at least one negative prompt"
    ));
    assert!(
        p[1].starts_with(
            "cameras[0].queries[1].labels: a classify query needs at least two labels"
        )
    );
    assert!(p[2].starts_with("cameras[0].queries[2].kind: count queries are not supported by model \"scene\" (family clip)"));
}

#[test]
fn gate_batching_and_cache_settings_are_checked() {
    let p = problems(
        "[engine]\nmax_batch = 0\n[cache]\nembeddings_mb = 8\n[[cameras]]\nid = \"a\"\nurl = \"a.mkv\"\nchange_threshold = 1.5\nmax_staleness = \"0s\"\nmax_pixels = 0\n",
    );
    assert_eq!(
        p,
        vec![
            "engine.max_batch: must be at least 1",
            "cameras[0].max_pixels: must be at least 76800 (a 320x240 frame); it refuses larger frames",
            "cameras[0].change_threshold: must be between 0 and 1 (0 turns the change gate off)",
            "cameras[0].max_staleness: must be greater than 0",
        ]
    );
    // The typo is named, and the rest of the file is still checked.
    let p = problems("[cache]\nembedings_mb = 8\n");
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(
        p[0].starts_with("cache.embedings_mb: unknown field"),
        "{p:?}"
    );
    assert_eq!(p[1], "cameras: at least one [[cameras]] is needed", "{p:?}");
}

#[test]
fn decoders_default_from_decode_and_unknown_ones_are_named() {
    use crate::source::DecoderChoice;
    let cams = "[[cameras]]\nid = \"a\"\nurl = \"a.mkv\"\n\
                [[cameras]]\nid = \"b\"\nurl = \"b.mkv\"\ndecoder = \"software\"\n";
    let c = parse(cams, Path::new("/etc/ocellus/test.toml")).unwrap();
    assert_eq!(c.decode.decoder, DecoderChoice::Auto);
    assert_eq!(c.cameras[0].decoder, Some(DecoderChoice::Auto));
    assert_eq!(c.cameras[1].decoder, Some(DecoderChoice::Software));
    let text = format!("[decode]\ndecoder = \"vaapi\"\n{cams}");
    let c = parse(&text, Path::new("/etc/ocellus/test.toml")).unwrap();
    assert_eq!(c.cameras[0].decoder, Some(DecoderChoice::Vaapi));
    assert_eq!(c.cameras[1].decoder, Some(DecoderChoice::Software));
    // Every unknown value is named with its path; the rest is still checked.
    let p = problems(
        "[decode]\ndecoder = \"gpu\"\n[[cameras]]\nid = \"a\"\nurl = \"a.mkv\"\n\
         decoder = \"cuda\"\nsample_fps = 0\n[[cameras]]\nid = \"b\"\nurl = \"b.mkv\"\ndecoder = 1\n",
    );
    assert_eq!(p.len(), 4, "{p:#?}");
    let expect = [
        "decode.decoder: unknown variant `gpu`, expected one of `auto`, `software`, `nvidia`, `vaapi`, `v4l2`",
        "cameras[0].decoder: unknown variant `cuda`, expected one of `auto`, `software`, `nvidia`, `vaapi`, `v4l2`",
        "cameras[1].decoder: invalid type",
        "cameras[0].sample_fps: must be greater than 0",
    ];
    for e in expect {
        assert!(
            p.iter().any(|x| x.starts_with(e)),
            "missing {e:?} in {p:#?}"
        );
    }
    let p = problems("[decode]\ndecoders = \"nvidia\"\n[[cameras]]\nid = \"a\"\nurl = \"a.mkv\"\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("decode.decoders: unknown field"), "{p:?}");
}

const SLOW_MODELS: &str = r#"
[models.vlm]
family = "florence2"
dir = "models/florence2"

[models.chat]
family = "smolvlm"
dir = "models/smolvlm"

[models.ocr]
family = "ppocr"
dir = "models/ppocr"

[[cameras]]
id = "line"
url = "rtsp://cam/1"
"#;

#[test]
fn slow_queries_load_with_their_cadence() {
    let text = format!(
        "{SLOW_MODELS}
[[cameras.queries]]
id = \"scene\"
ask = \"describe\"
kind = \"caption\"
model = \"vlm\"
detail = \"detailed\"
every = \"1m\"
[[cameras.queries]]
id = \"meter\"
ask = \"meter reading\"
kind = \"read\"
model = \"ocr\"
pattern = '(\\d+\\.\\d)'
region = [0.1, 0.1, 0.5, 0.3]
[[cameras.queries]]
id = \"door\"
ask = \"Is the door open?\"
kind = \"yes_no\"
model = \"chat\"
"
    );
    let c = parse(&text, Path::new("/etc/ocellus/test.toml")).unwrap();
    let q = &c.cameras[0].queries;
    assert_eq!(q[0].every, std::time::Duration::from_secs(60));
    assert_eq!(q[0].detail, crate::query::Detail::Detailed);
    assert_eq!(q[1].every, std::time::Duration::from_secs(30), "default");
    assert!(q[1].on_change);
    assert_eq!(q[1].pattern.as_deref(), Some("(\\d+\\.\\d)"));
    assert!(c.models.values().all(|m| m.is_slow()));
    assert_eq!(
        c.models["ocr"].dir(),
        Some(Path::new("/etc/ocellus/models/ppocr"))
    );
}

#[test]
fn slow_query_problems_are_reported_with_their_path() {
    let text = format!(
        "{SLOW_MODELS}
[[cameras.queries]]
id = \"a\"
ask = \"x\"
kind = \"read\"
model = \"ocr\"
pattern = '(\\d+'
[[cameras.queries]]
id = \"b\"
ask = \"x\"
kind = \"classify\"
model = \"vlm\"
[[cameras.queries]]
id = \"c\"
ask = \"x\"
kind = \"caption\"
model = \"ocr\"
every = \"0s\"
[[cameras.queries]]
id = \"d\"
ask = \"x\"
kind = \"caption\"
model = \"vlm\"
pattern = 'x'
"
    );
    let p = problems(&text);
    let has = |at: &str, what: &str| {
        assert!(
            p.iter().any(|l| l.contains(at) && l.contains(what)),
            "no {at} / {what} in {p:#?}"
        )
    };
    has(
        "cameras[0].queries[0].pattern",
        "not a valid regular expression",
    );
    has(
        "cameras[0].queries[1].kind",
        "classify queries are not supported by model \"vlm\" (family florence2)",
    );
    has(
        "cameras[0].queries[2].kind",
        "caption queries are not supported by model \"ocr\" (family ppocr)",
    );
    has("cameras[0].queries[2].every", "must be longer than 0s");
    has(
        "cameras[0].queries[3].pattern",
        "only read queries take a pattern",
    );
    assert_eq!(p.len(), 5, "{p:#?}");
}

#[test]
fn http_off_loopback_needs_a_token() {
    let cams = "[[cameras]]\nid = \"a\"\nurl = \"a.mkv\"\n";
    let p = problems(&format!("[http]\nlisten = \"0.0.0.0:9380\"\n{cams}"));
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("http.listen: 0.0.0.0:9380 is not a loopback address"),
        "{p:?}"
    );
    assert!(
        problems(&format!(
            "[http]\nlisten = \"0.0.0.0:9380\"\ntoken = \"s3cret\"\n{cams}"
        ))
        .is_empty()
    );
    assert!(problems(&format!("[http]\n{cams}")).is_empty());
    let p = problems(&format!("[http]\nlisten = \"nowhere\"\n{cams}"));
    assert!(p[0].starts_with("http.listen"), "{p:?}");
}

/// A value from the environment is substituted after parsing: quotes, backslashes,
/// newlines and would-be TOML keys arrive as they are, and change nothing else.
#[test]
fn environment_values_cannot_change_the_structure_and_arrive_intact() {
    let secrets = [
        ("OCELLUS_TEST_PW_QUOTE", "pa\"ss"),
        ("OCELLUS_TEST_PW_BACKSLASH", "a\\b\\nc"),
        ("OCELLUS_TEST_PW_NEWLINE", "line1\nline2"),
        ("OCELLUS_TEST_PW_INJECT", "x\"\nbogus = 1\n[evil]\nk = \""),
    ];
    for (var, secret) in secrets {
        // SAFETY: each variable is read by this test only.
        unsafe { std::env::set_var(var, secret) };
        let text = format!(
            "[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\nusername = \"u\"\npassword = \"${{{var}}}\"\n\
             [http]\ntoken = \"${{{var}}}-tail\"\n[[cameras]]\nid = \"a\"\nurl = \"a.mkv\"\n"
        );
        let p = problems(&text);
        if secret.contains('\n') || secret.contains('"') || secret.contains('\\') {
            // The token must be sendable in a header; the password may hold anything.
            assert!(
                p.iter()
                    .all(|l| l.starts_with("http.token: must be visible ASCII")),
                "{var}: {p:?}"
            );
            assert!(p.iter().all(|l| !l.contains(secret)), "{var}: {p:?}");
            let text = text.replace(&format!("${{{var}}}-tail"), "tok");
            let c = parse(&text, Path::new("x.toml")).unwrap_or_else(|e| panic!("{var}: {e}"));
            assert_eq!(c.mqtt.unwrap().password.as_deref(), Some(secret), "{var}");
            assert_eq!(c.cameras.len(), 1);
        }
    }
    // A value that is no string where a number is expected is named, not quoted.
    // SAFETY: read by this test only.
    unsafe { std::env::set_var("OCELLUS_TEST_CAPACITY", "S3cret\"Cap") };
    let p = problems(
        "[mqtt]\nurl = \"mqtt://b\"\noutbox_capacity = \"${OCELLUS_TEST_CAPACITY}\"\nkeep_alive = \"${OCELLUS_TEST_CAPACITY}\"\n[[cameras]]\nid = \"a\"\nurl = \"a.mkv\"\n",
    );
    // Both are named: a structural problem no longer hides the next one.
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(
        p.iter().any(|l| l.starts_with(
            "mqtt.keep_alive: invalid duration (the value from the environment, not shown)"
        )),
        "{p:?}"
    );
    assert!(
        p.iter().any(|l| l.starts_with(
            "mqtt.outbox_capacity: invalid type (the value from the environment, not shown), expected"
        )),
        "{p:?}"
    );
    assert!(p.iter().all(|l| !l.contains("S3cret")), "{p:?}");
}

#[test]
fn a_syntax_error_names_line_and_column_without_quoting_the_line() {
    let p = problems("[mqtt]\nurl = \"mqtt://b\"\npassword = \"S3cret\"PW\"\n");
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].starts_with("TOML syntax error at line 3, column "),
        "{p:?}"
    );
    assert!(!p[0].contains("S3cret"), "{p:?}");
    // `${` that is no reference is kept; a bad name is named.
    let p = problems(
        "[mqtt]\nurl = \"mqtt://b\"\nusername = \"${not closed\"\npassword = \"${BAD-NAME}\"\n[[cameras]]\nid = \"a\"\nurl = \"a.mkv\"\n",
    );
    assert_eq!(
        p,
        vec!["mqtt.password: ${BAD-NAME} is not a variable name (letters, digits and _)"]
    );
}

#[test]
fn credentials_in_the_broker_url_are_refused_without_being_echoed() {
    let cams = "[[cameras]]\nid = \"a\"\nurl = \"a.mkv\"\n";
    for url in [
        "mqtt://alice:S3cretPW@127.0.0.1:1883",
        "mqtts://alice:S3cretPW@broker",
        "mqtt://alice:S3c/retPW@broker",
        "alice:S3cretPW@broker:1883",
    ] {
        let p = problems(&format!("[mqtt]\nurl = \"{url}\"\n{cams}"));
        assert!(
            p.iter().any(|l| l.starts_with(
                "mqtt.url: holds a user name or password (user:password@host): put them in mqtt.username and mqtt.password_file"
            )),
            "{url}: {p:?}"
        );
        assert!(p.iter().all(|l| !l.contains("S3c")), "{url}: {p:?}");
    }
    let p = problems(&format!(
        "[mqtt]\nurl = \"mqtt://b:1883/x?password=S3cret\"\n{cams}"
    ));
    assert_eq!(
        p,
        vec![
            "mqtt.url: must be mqtt://host[:port] or mqtts://host[:port], without a path or query"
        ]
    );
    assert!(problems(&format!("[mqtt]\nurl = \"mqtt://b:1883/\"\n{cams}")).is_empty());
    // A camera URL with an unsupported scheme is quoted redacted.
    let p = problems("[[cameras]]\nid = \"a\"\nurl = \"ftp://bob:S3cret@cam/x?pwd=S3cret2\"\n");
    assert_eq!(
        p,
        vec![
            "cameras[0].url: \"ftp://bob:***@cam/x?pwd=***\": unsupported scheme (use rtsp, rtspt, http, https, file or a path)"
        ]
    );
}

#[test]
fn an_empty_token_is_refused_even_off_loopback() {
    let cams = "[[cameras]]\nid = \"a\"\nurl = \"a.mkv\"\n";
    // SAFETY: read by this test only.
    unsafe { std::env::set_var("OCELLUS_TEST_EMPTY_TOKEN", "") };
    for token in ["\"\"", "\"   \"", "\"${OCELLUS_TEST_EMPTY_TOKEN}\""] {
        for listen in ["127.0.0.1:9380", "0.0.0.0:9380"] {
            let p = problems(&format!(
                "[http]\nlisten = \"{listen}\"\ntoken = {token}\n{cams}"
            ));
            assert_eq!(p.len(), 1, "{token} {listen}: {p:?}");
            assert!(p[0].starts_with("http.token: is empty"), "{p:?}");
        }
    }
    let p = problems(&format!(
        "[http]\nallowed_hosts = [\"ocellus.example.com\", \"https://x\", \"x:80\"]\n{cams}"
    ));
    assert_eq!(p.len(), 2, "{p:?}");
    assert!(p[0].starts_with("http.allowed_hosts[1]: \"https://x\" must be a host name"));
    assert!(p[1].starts_with("http.allowed_hosts[2]"));
}

#[test]
fn preflight_reports_an_empty_token_file() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("token");
    std::fs::write(&f, "\n").unwrap();
    let text = format!(
        "[http]\ntoken_file = {:?}\n[[cameras]]\nid = \"a\"\nurl = \"rtsp://cam/1\"\n",
        f.display().to_string()
    );
    let c = parse(&text, &dir.path().join("c.toml")).unwrap();
    let p: Vec<String> = super::preflight(&c).iter().map(|p| p.to_string()).collect();
    assert_eq!(
        p,
        vec![format!("http.token_file: {}: is empty", f.display())]
    );
    std::fs::write(&f, "tok\n").unwrap();
    assert!(super::preflight(&c).is_empty());
}

/// The example config in deploy/ is valid; on a machine without its files, only
/// those files are reported.
#[test]
fn the_deploy_example_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/ocellus.example.toml");
    let config = super::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.cameras[0].queries.len(), 2);
    for p in super::preflight(&config) {
        assert!(
            p.message.contains("does not exist") || p.message.contains("not found"),
            "{p}"
        );
    }
}

/// Config text made of odd pieces (references, quotes, newlines, sections) never makes
/// `parse` panic, and no problem ever quotes the value of a variable.
#[test]
fn odd_config_text_never_panics_nor_quotes_an_environment_value() {
    const SECRET: &str = "Zq7\"Sec\\ret\nx = 1";
    // SAFETY: read by this test only.
    unsafe { std::env::set_var("OCELLUS_TEST_ODD_SECRET", SECRET) };
    let parts = [
        "[mqtt]\n",
        "[http]\n",
        "[[cameras]]\n",
        "url = ",
        "token = ",
        "password = ",
        "keep_alive = ",
        "queue = ",
        "id = ",
        "\"${OCELLUS_TEST_ODD_SECRET}\"",
        "\"${OCELLUS_TEST_ODD_SECRET:-d}\"",
        "\"${\"",
        "\"}\"",
        "\"mqtt://b\"",
        "\"a.mkv\"",
        "[\"${OCELLUS_TEST_ODD_SECRET}\"]",
        "1",
        "\"",
        "\n",
        "é",
    ];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..3_000 {
        let mut text = String::new();
        for _ in 0..(seed % 16) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            text.push_str(parts[(seed % parts.len() as u64) as usize]);
        }
        for p in problems(&text) {
            for piece in ["Zq7", "Sec\\ret", "Sec\\\\ret"] {
                assert!(!p.contains(piece), "{p:?} from {text:?}");
            }
        }
    }
}

#[test]
fn a_structural_problem_hides_nothing_else() {
    // An unknown key and a wrong type in one section, a typo in a camera and a
    // required key of the wrong type: each is named, and what could be read is still
    // checked (the camera's sample_fps, the query's on/off).
    let p = problems(
        "[mqtt]\nurl = \"mqtt://127.0.0.1:1883\"\nbogus = 1\nkeep_alive = 5\n\
         [[cameras]]\nid = \"a\"\nurl = \"rtsp://cam/1\"\nsample_fps = -3\ncolour = \"x\"\n\
         [[cameras.queries]]\nid = \"q\"\nask = \"a person?\"\nkind = \"yes_no\"\nmodel = \"nope\"\non = 0.3\noff = 0.6\n\
         [[cameras]]\nid = 5\nurl = \"rtsp://cam/2\"\n",
    );
    let paths: Vec<&str> = p
        .iter()
        .map(|l| l.split(": ").next().unwrap_or_default())
        .collect();
    for want in [
        "mqtt.bogus",
        "mqtt.keep_alive",
        "cameras[0].colour",
        "cameras[0].sample_fps",
        "cameras[0].queries[0].model",
        "cameras[0].queries[0].on",
        "cameras[1].id",
    ] {
        assert!(paths.contains(&want), "{want} missing from {p:#?}");
    }
    // The required `id` of the wrong type is one problem, not also "missing field".
    assert!(!p.iter().any(|l| l.contains("missing field")), "{p:#?}");
}

#[test]
fn teach_section_and_taught_queries_are_checked() {
    let text = r#"
[mqtt]
url = "mqtt://127.0.0.1:1883"
state_dir = "/var/lib/ocellus"

[teach]
max_examples = 0
review_evry = "5s"

[models.look]
family = "embedder"
dir = "models/mobilenet"

[models.coco]
family = "yolox"
dir = "models/yolox"

[[cameras]]
id = "desk"
url = "rtsp://cam/stream"

[[cameras.queries]]
id = "cat"
ask = "is the cat there?"
kind = "yes_no"
model = "look"
review_below = 1.5

[[cameras.queries]]
id = "shelf"
ask = "what is on the shelf?"
kind = "classify"
model = "look"
labels = ["mug"]

[[cameras.queries]]
id = "person"
ask = "a person?"
kind = "yes_no"
model = "coco"
label = "person"
examples = "people"

[[cameras.queries]]
id = "door"
ask = "is the door open?"
kind = "yes_no"
model = "look"
escalate = "coco"
review_below = 0.8

[[cameras.queries]]
id = "gate"
ask = "is the gate open?"
kind = "yes_no"
model = "look"
escalate = "vlm"

[models.vlm]
family = "smolvlm"
dir = "models/smol"
"#;
    let p = problems(text).join("\n");
    assert!(
        p.contains("teach.review_evry: unknown field `review_evry`"),
        "{p}"
    );
    assert!(
        p.contains("teach.max_examples: must be between 1 and 2000"),
        "{p}"
    );
    assert!(
        p.contains("cameras[0].queries[0].review_below: 1.5 must be within (0, 1]"),
        "{p}"
    );
    assert!(
        p.contains("cameras[0].queries[1].labels: a classify query needs at least two labels"),
        "{p}"
    );
    assert!(p.contains("cameras[0].queries[2].examples: only yes_no and classify queries on clip or embedder models are taught"), "{p}");
    assert!(p.contains("cameras[0].queries[3].escalate: model \"coco\" (family yolox) cannot answer yes_no queries on the slow lane"), "{p}");
    assert!(
        p.contains("cameras[0].queries[4].escalate: needs review_below"),
        "{p}"
    );

    // A good one: the examples go under the state_dir, paths resolve beside the file.
    let good = text
        .replace(
            "max_examples = 0\nreview_evry = \"5s\"",
            "review_every = \"30s\"",
        )
        .replace(
            "review_below = 1.5",
            "review_below = 0.7\nexamples = \"desk/cat\"",
        )
        .replace("labels = [\"mug\"]", "labels = [\"mug\", \"empty\"]")
        .replace("examples = \"people\"\n", "")
        .replace("escalate = \"coco\"\n", "")
        .replace(
            "escalate = \"vlm\"\n",
            "escalate = \"vlm\"\nreview_below = 0.6\n",
        );
    let c = parse(&good, Path::new("/etc/ocellus/test.toml")).unwrap();
    assert_eq!(
        c.teach.dir.as_deref(),
        Some(Path::new("/var/lib/ocellus/examples"))
    );
    assert_eq!(c.teach.review_every, std::time::Duration::from_secs(30));
    assert_eq!(
        c.cameras[0].queries[0].examples.as_deref(),
        Some(Path::new("/etc/ocellus/desk/cat"))
    );
    assert_eq!(c.models["look"].family(), "embedder");
    let gate = &c.cameras[0].queries[4];
    assert_eq!(gate.escalation().map(|q| q.model), Some("vlm".to_string()));
}

#[test]
fn paligemma_queries_need_their_objects_and_questions() {
    let text = r#"
[models.pali]
family = "paligemma"
dir = "models/paligemma2-3b-pt-224"
lang = "e n"

[[cameras]]
id = "yard"
url = "rtsp://cam/1"

[[cameras.queries]]
id = "cars"
ask = ""
kind = "detect"
model = "pali"

[[cameras.queries]]
id = "door"
ask = " "
kind = "yes_no"
model = "pali"

[[cameras.queries]]
id = "kinds"
ask = "x"
kind = "classify"
labels = ["a", "b"]
model = "pali"

[[cameras.queries]]
id = "scene"
ask = ""
kind = "caption"
model = "pali"
"#;
    let p = problems(text);
    let has = |at: &str, what: &str| {
        assert!(
            p.iter().any(|l| l.contains(at) && l.contains(what)),
            "no {at} / {what} in {p:#?}"
        )
    };
    has("models.pali.lang", "one short language code");
    has(
        "cameras[0].queries[0].labels",
        "a paligemma detect query needs the objects to find",
    );
    has(
        "cameras[0].queries[1].ask",
        "a paligemma yes_no query needs the question",
    );
    has(
        "cameras[0].queries[2].kind",
        "classify queries are not supported by model \"pali\" (family paligemma)",
    );
    assert_eq!(p.len(), 4, "the caption query is fine: {p:#?}");
}
