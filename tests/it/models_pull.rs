//! `ocellus models` end to end: the real binary and its real HTTP client against a
//! Hugging-Face-like server on 127.0.0.1 (`common::hub_server`) with fixture files made
//! here: pull (redirects, stated hashes, token, manifest, snippet), resume after a cut
//! connection (Range) and a server that ignores Range, hash mismatches (pinned and
//! server-stated), import of hand-copied folders, verify after a file changed, list,
//! and the one-line errors (unknown name, 404, closed port, unverifiable file).

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};

use common::hub_server::{Faults, HUB_COMMIT, HubServer};
use common::*;
use ocellus::hub::hash::{hex, sha256_of};
use serde_json::Value;

const REPO: &str = "test/tiny-clip";
const TOKEN: &str = "hf_test-secret-7f3a9c";
const VISION: &str = "onnx/vision_model.onnx";
const TEXT: &str = "onnx/text_model.onnx";

/// Deterministic pseudo-random bytes.
fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

fn sha(b: &[u8]) -> String {
    hex(&sha256_of(b))
}

struct Fixture {
    server: HubServer,
    tmp: tempfile::TempDir,
    catalog: PathBuf,
    models: PathBuf,
    vision: Vec<u8>,
    text: Vec<u8>,
    tokenizer: Vec<u8>,
    pre: Vec<u8>,
    det: Vec<u8>,
}

impl Fixture {
    fn new() -> Self {
        let server = HubServer::start();
        let vision = bytes(3_000_000, 1);
        let text = bytes(1_500_000, 2);
        let tokenizer = br#"{"model":{"type":"BPE"},"added_tokens":[]}"#.repeat(50);
        let pre = b"{\"crop_size\": 224}\n".to_vec();
        let det = bytes(200_000, 3);
        server.add(REPO, VISION, vision.clone(), true);
        server.add(REPO, TEXT, text.clone(), true);
        server.add(REPO, "tokenizer.json", tokenizer.clone(), false);
        server.add(REPO, "preprocessor_config.json", pre.clone(), false);
        let det_url = server.add_direct("yolox/tiny.onnx", det.clone());
        let loose_url = server.add_direct("yolox/loose.onnx", bytes(1000, 4));
        let labels = "person\ncar\n";
        let tmp = tempfile::tempdir().unwrap();
        let catalog = tmp.path().join("catalog.toml");
        fs::write(
            &catalog,
            format!(
                r#"
[[model]]
name = "tiny-clip"
family = "clip"
title = "tiny test CLIP"
licence = "MIT"
repo = "{REPO}"
revision = "main"
[[model.file]]
path = "{VISION}"
[[model.file]]
path = "{TEXT}"
sha256 = "{text_sha}"
size = {text_len}
[[model.file]]
path = "tokenizer.json"
[[model.file]]
path = "preprocessor_config.json"
sha256 = "{pre_sha}"

[[model]]
name = "tiny-yolox"
family = "yolox"
title = "tiny test detector"
licence = "Apache-2.0"
source = "the test server"
revision = "fixture"
[[model.file]]
path = "tiny.onnx"
url = "{det_url}"
sha256 = "{det_sha}"
size = {det_len}
[[model.file]]
path = "labels.txt"
inline = "{labels_esc}"
sha256 = "{labels_sha}"
size = {labels_len}

[[model]]
name = "tiny-loose"
family = "yolox"
title = "a detector nobody hashed"
licence = "Apache-2.0"
source = "the test server"
[[model.file]]
path = "loose.onnx"
url = "{loose_url}"
[[model.file]]
path = "labels.txt"
inline = "{labels_esc}"

[[model]]
name = "tiny-gone"
family = "clip"
title = "a repository the server does not have"
licence = "MIT"
repo = "test/gone"
[[model.file]]
path = "{VISION}"
[[model.file]]
path = "{TEXT}"
[[model.file]]
path = "tokenizer.json"
[[model.file]]
path = "preprocessor_config.json"
"#,
                text_sha = sha(&text),
                text_len = text.len(),
                pre_sha = sha(&pre),
                det_sha = sha(&det),
                det_len = det.len(),
                labels_esc = labels.replace('\n', "\\n"),
                labels_sha = sha(labels.as_bytes()),
                labels_len = labels.len(),
            ),
        )
        .unwrap();
        let models = tmp.path().join("models");
        Fixture {
            server,
            tmp,
            catalog,
            models,
            vision,
            text,
            tokenizer,
            pre,
            det,
        }
    }

    /// `ocellus models VERB ARGS... --dir MODELS --catalog CATALOG` (no proxy, no
    /// ambient token or endpoint).
    fn run(&self, verb: &str, args: &[&str], env: &[(&str, &str)]) -> Out {
        let dir = self.models.to_string_lossy().into_owned();
        let catalog = self.catalog.to_string_lossy().into_owned();
        let mut all = vec!["models", verb];
        all.extend_from_slice(args);
        if verb != "import" {
            all.extend(["--dir", &dir]);
        }
        all.extend(["--catalog", &catalog]);
        let mut envs = vec![
            ("NO_PROXY", "127.0.0.1,localhost"),
            ("HF_TOKEN", ""),
            ("HF_ENDPOINT", ""),
            ("OCELLUS_MODELS_CATALOG", ""),
        ];
        envs.extend_from_slice(env);
        let out = run_ocellus(&all, &envs);
        out.assert_no_panic();
        out
    }

    fn pull(&self, name: &str, env: &[(&str, &str)]) -> Out {
        let endpoint = self.server.endpoint();
        self.run("pull", &[name, "--endpoint", &endpoint], env)
    }

    fn model_dir(&self, name: &str) -> PathBuf {
        self.models.join(name)
    }

    fn manifest(&self, name: &str) -> Value {
        let text = fs::read_to_string(self.model_dir(name).join("ocellus-model.json"))
            .expect("manifest written");
        serde_json::from_str(&text).unwrap()
    }

    fn clip_files(&self) -> [(&'static str, &[u8]); 4] {
        [
            (VISION, &self.vision),
            (TEXT, &self.text),
            ("tokenizer.json", &self.tokenizer),
            ("preprocessor_config.json", &self.pre),
        ]
    }
}

fn error_lines(out: &Out) -> Vec<&str> {
    out.log("ERROR")
}

fn parts_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.filter_map(Result::ok) {
            let p = e.path();
            if p.is_dir() {
                found.extend(parts_under(&p));
            } else if p.extension().is_some_and(|x| x == "part") {
                found.push(p);
            }
        }
    }
    found
}

#[test]
fn pull_installs_checks_records_and_prints_the_snippet_then_verify_is_ok() {
    let fx = Fixture::new();
    let out = fx.pull("tiny-clip", &[("HF_TOKEN", TOKEN)]);
    assert_eq!(out.code, Some(0), "{}", out.show());
    let dir = fx.model_dir("tiny-clip");
    for (path, want) in fx.clip_files() {
        assert_eq!(fs::read(dir.join(path)).unwrap(), want, "{path}");
    }
    assert!(parts_under(&dir).is_empty(), "{:?}", parts_under(&dir));

    // Manifest: the commit the server reported, each file's size, sha256 and check.
    let m = fx.manifest("tiny-clip");
    assert_eq!(m["name"], "tiny-clip");
    assert_eq!(m["family"], "clip");
    assert_eq!(m["revision"], "main");
    assert_eq!(m["commit"], HUB_COMMIT);
    assert_eq!(m["installed_by"], "pull");
    let files = m["files"].as_array().unwrap();
    assert_eq!(files.len(), 4);
    for (f, (path, want)) in files.iter().zip(fx.clip_files()) {
        assert_eq!(f["path"], path);
        assert_eq!(f["size"], want.len());
        assert_eq!(f["sha256"], sha(want));
    }
    let checks: Vec<&str> = files.iter().map(|f| f["check"].as_str().unwrap()).collect();
    assert_eq!(
        checks,
        ["server-sha256", "pinned", "server-git-sha1", "pinned"]
    );

    // The snippet for the config, pointing at the folder.
    let dir_s = dir.canonicalize().unwrap_or(dir.clone());
    assert!(
        out.stdout
            .contains("[models.tiny-clip]\nfamily = \"clip\"\n"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!("dir = \"{}\"", dir.display()))
            || out
                .stdout
                .contains(&format!("dir = \"{}\"", dir_s.display())),
        "{}",
        out.stdout
    );

    // One log line per file (stderr is not a terminal: no progress bar).
    for (path, _) in fx.clip_files() {
        assert!(
            out.stderr
                .lines()
                .any(|l| l.contains(&format!("model tiny-clip: {path}: "))),
            "no line for {path}:\n{}",
            out.stderr
        );
    }

    // Redirects were followed; after the first file the reported commit was used; the
    // token went to the endpoint and never into the output.
    let reqs = fx.server.requests();
    assert!(reqs.iter().any(|r| r.path.starts_with("/cdn/")), "{reqs:?}");
    assert!(
        reqs.iter()
            .any(|r| r.path.contains(&format!("/resolve/{HUB_COMMIT}/"))),
        "{reqs:?}"
    );
    let resolve: Vec<_> = reqs
        .iter()
        .filter(|r| r.path.contains("/resolve/"))
        .collect();
    assert_eq!(resolve.len(), 4, "{reqs:?}");
    for r in &resolve {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str()),
            "{r:?}"
        );
    }
    assert!(!out.stdout.contains(TOKEN) && !out.raw_stderr.contains(TOKEN));

    let v = fx.run("verify", &[], &[]);
    assert_eq!(v.code, Some(0), "{}", v.show());
    assert!(v.stdout.contains("tiny-clip: ok (4 files"), "{}", v.stdout);

    let l = fx.run("list", &[], &[]);
    assert!(
        l.stdout
            .contains(&format!("installed, verified, commit {HUB_COMMIT}")),
        "{}",
        l.stdout
    );

    // Pulling again finds everything in place and downloads nothing.
    fx.server.clear_requests();
    let again = fx.pull("tiny-clip", &[]);
    assert_eq!(again.code, Some(0), "{}", again.show());
    assert!(
        again.stderr.contains("already in place"),
        "{}",
        again.stderr
    );
    assert!(
        !fx.server
            .requests()
            .iter()
            .any(|r| r.path.starts_with("/cdn/")),
        "{:?}",
        fx.server.requests()
    );
}

#[test]
fn an_interrupted_pull_resumes_with_range_and_a_server_ignoring_range_starts_over() {
    let fx = Fixture::new();
    let cut = 1_000_000;
    let key = format!("{REPO}/{VISION}");
    fx.server.set_faults(
        &key,
        Faults {
            cut_after: Some(cut),
            cut_times: 1,
            ..Default::default()
        },
    );
    let first = fx.pull("tiny-clip", &[]);
    assert_eq!(first.code, Some(1), "{}", first.show());
    let errors = error_lines(&first);
    assert_eq!(errors.len(), 1, "{}", first.show());
    assert!(
        errors[0].contains("model tiny-clip: onnx/vision_model.onnx: ")
            && errors[0].contains("interrupted after")
            && errors[0].contains(".part"),
        "{}",
        errors[0]
    );
    let part = fx
        .model_dir("tiny-clip")
        .join("onnx/vision_model.onnx.part");
    let kept = fs::metadata(&part).expect(".part kept").len();
    assert!(kept > 0 && kept <= cut as u64, "{kept}");
    assert!(!fx.model_dir("tiny-clip").join(VISION).exists());

    fx.server.clear_requests();
    let second = fx.pull("tiny-clip", &[]);
    assert_eq!(second.code, Some(0), "{}", second.show());
    let ranged: Vec<_> = fx
        .server
        .requests()
        .into_iter()
        .filter(|r| r.path == format!("/cdn/{key}"))
        .collect();
    assert_eq!(ranged.len(), 1, "{ranged:?}");
    assert_eq!(
        ranged[0].header("range"),
        Some(format!("bytes={kept}-").as_str())
    );
    assert_eq!(
        fs::read(fx.model_dir("tiny-clip").join(VISION)).unwrap(),
        fx.vision
    );
    assert!(!part.exists());
    assert!(second.stderr.contains("resumed at"), "{}", second.stderr);

    // A server that ignores Range: the part is thrown away and the file still right.
    let fx = Fixture::new();
    fx.server.set_faults(
        &key,
        Faults {
            cut_after: Some(cut),
            cut_times: 1,
            ignore_range: true,
            ..Default::default()
        },
    );
    assert_eq!(fx.pull("tiny-clip", &[]).code, Some(1));
    let again = fx.pull("tiny-clip", &[]);
    assert_eq!(again.code, Some(0), "{}", again.show());
    assert!(again.stderr.contains("starting over"), "{}", again.stderr);
    let last = fx
        .server
        .requests()
        .into_iter()
        .rfind(|r| r.path == format!("/cdn/{key}"))
        .unwrap();
    assert!(last.header("range").is_some(), "{last:?}");
    assert_eq!(
        fs::read(fx.model_dir("tiny-clip").join(VISION)).unwrap(),
        fx.vision
    );
    let v = fx.run("verify", &["tiny-clip"], &[]);
    assert_eq!(v.code, Some(0), "{}", v.show());
}

#[test]
fn a_hash_mismatch_is_one_line_and_leaves_nothing_behind() {
    // Pinned file served corrupted (the server even states the right hash).
    let fx = Fixture::new();
    fx.server.set_faults(
        &format!("{REPO}/{TEXT}"),
        Faults {
            corrupt: true,
            ..Default::default()
        },
    );
    let out = fx.pull("tiny-clip", &[]);
    assert_eq!(out.code, Some(1), "{}", out.show());
    let errors = error_lines(&out);
    assert_eq!(errors.len(), 1, "{}", out.show());
    let mut bad = fx.text.clone();
    let i = bad.len() / 2;
    bad[i] ^= 0xff;
    let want = format!(
        "model tiny-clip: onnx/text_model.onnx: sha256 mismatch (expected {}, got {})",
        sha(&fx.text),
        sha(&bad)
    );
    assert!(errors[0].contains(&want), "{}\nwanted {want}", errors[0]);
    let dir = fx.model_dir("tiny-clip");
    assert!(!dir.join(TEXT).exists());
    assert!(parts_under(&dir).is_empty(), "{:?}", parts_under(&dir));
    assert!(!dir.join("ocellus-model.json").exists());

    // Unpinned file whose bytes do not match the sha256 the server states.
    let fx = Fixture::new();
    let stated = "ab".repeat(32);
    fx.server.set_faults(
        &format!("{REPO}/{VISION}"),
        Faults {
            stated_sha256: Some(stated.clone()),
            ..Default::default()
        },
    );
    let out = fx.pull("tiny-clip", &[]);
    assert_eq!(out.code, Some(1), "{}", out.show());
    let errors = error_lines(&out);
    assert_eq!(errors.len(), 1, "{}", out.show());
    let want = format!(
        "model tiny-clip: onnx/vision_model.onnx: sha256 mismatch (expected {stated}, got {})",
        sha(&fx.vision)
    );
    assert!(errors[0].contains(&want), "{}\nwanted {want}", errors[0]);
    let dir = fx.model_dir("tiny-clip");
    assert!(!dir.join(VISION).exists());
    assert!(parts_under(&dir).is_empty(), "{:?}", parts_under(&dir));
}

fn hand_copy(fx: &Fixture, into: &Path) {
    for (path, bytes) in fx.clip_files() {
        let p = into.join(path);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, bytes).unwrap();
    }
}

#[test]
fn import_registers_a_hand_copied_folder_and_verify_notices_later_changes() {
    let fx = Fixture::new();
    let usb = fx.tmp.path().join("usb/tiny");
    hand_copy(&fx, &usb);
    // Its layout is that of every clip entry; the pinned hashes say which one it is.
    let usb_s = usb.to_string_lossy().into_owned();
    let out = fx.run("import", &[&usb_s], &[]);
    assert_eq!(out.code, Some(0), "{}", out.show());
    assert!(out.stdout.contains("[models.tiny-clip]"), "{}", out.stdout);
    let canon = usb.canonicalize().unwrap();
    assert!(
        out.stdout
            .contains(&format!("dir = \"{}\"", canon.display())),
        "{}",
        out.stdout
    );
    let m: Value =
        serde_json::from_str(&fs::read_to_string(usb.join("ocellus-model.json")).unwrap()).unwrap();
    assert_eq!(m["installed_by"], "import");
    assert_eq!(m["files"].as_array().unwrap().len(), 4);

    let v = fx.run("verify", &[&usb_s], &[]);
    assert_eq!(v.code, Some(0), "{}", v.show());
    assert!(v.stdout.contains("tiny-clip: ok (4 files"), "{}", v.stdout);

    // Same size, one byte changed: a sha256 mismatch naming the file.
    let tok = usb.join("tokenizer.json");
    let mut changed = fx.tokenizer.clone();
    changed[3] ^= 1;
    fs::write(&tok, &changed).unwrap();
    let v = fx.run("verify", &[&usb_s], &[]);
    assert_eq!(v.code, Some(1), "{}", v.show());
    assert!(
        v.stdout.contains(&format!(
            "tiny-clip: tokenizer.json: sha256 mismatch (expected {}, got {})",
            sha(&fx.tokenizer),
            sha(&changed)
        )),
        "{}",
        v.stdout
    );
    // Grown, and a file gone.
    fs::write(&tok, [fx.tokenizer.as_slice(), b" "].concat()).unwrap();
    fs::remove_file(usb.join(VISION)).unwrap();
    let v = fx.run("verify", &[&usb_s], &[]);
    assert_eq!(v.code, Some(1), "{}", v.show());
    assert!(
        v.stdout.contains("tiny-clip: tokenizer.json: size"),
        "{}",
        v.stdout
    );
    assert!(
        v.stdout
            .contains("tiny-clip: onnx/vision_model.onnx: missing"),
        "{}",
        v.stdout
    );
}

#[test]
fn import_refuses_a_folder_without_a_file_its_family_needs_or_with_a_wrong_pin() {
    let fx = Fixture::new();
    let usb = fx.tmp.path().join("usb/partial");
    hand_copy(&fx, &usb);
    fs::remove_file(usb.join("tokenizer.json")).unwrap();
    let usb_s = usb.to_string_lossy().into_owned();
    let out = fx.run("import", &[&usb_s, "--name", "tiny-clip"], &[]);
    assert_eq!(out.code, Some(1), "{}", out.show());
    let errors = error_lines(&out);
    assert_eq!(errors.len(), 1, "{}", out.show());
    assert!(
        errors[0].contains("model tiny-clip: ")
            && errors[0].contains("missing tokenizer.json (needed by family clip)"),
        "{}",
        errors[0]
    );
    assert!(!usb.join("ocellus-model.json").exists());

    // Without --name a folder that matches nothing says so.
    let out = fx.run("import", &[&usb_s], &[]);
    assert_eq!(out.code, Some(1), "{}", out.show());
    assert!(
        error_lines(&out)[0].contains("matches no catalogue entry"),
        "{}",
        out.show()
    );

    // A pinned file with other bytes.
    fs::write(usb.join("tokenizer.json"), &fx.tokenizer).unwrap();
    fs::write(usb.join("preprocessor_config.json"), b"{}\n").unwrap();
    let out = fx.run("import", &[&usb_s, "--name", "tiny-clip"], &[]);
    assert_eq!(out.code, Some(1), "{}", out.show());
    assert!(
        error_lines(&out)[0].contains(&format!(
            "model tiny-clip: preprocessor_config.json: sha256 mismatch (expected {}, got {})",
            sha(&fx.pre),
            sha(b"{}\n")
        )),
        "{}",
        out.show()
    );
    assert!(!usb.join("ocellus-model.json").exists());
}

#[test]
fn list_shows_the_builtin_catalogue_and_what_is_installed() {
    let fx = Fixture::new();
    let out = fx.pull("tiny-yolox", &[]);
    assert_eq!(out.code, Some(0), "{}", out.show());
    assert_eq!(
        fs::read(fx.model_dir("tiny-yolox").join("tiny.onnx")).unwrap(),
        fx.det
    );
    assert_eq!(
        fs::read_to_string(fx.model_dir("tiny-yolox").join("labels.txt")).unwrap(),
        "person\ncar\n"
    );
    let l = fx.run("list", &[], &[]);
    assert_eq!(l.code, Some(0), "{}", l.show());
    for (name, family, licence) in [
        ("clip-vit-b32", "clip", "MIT"),
        ("siglip-base-p16-224", "clip", "Apache-2.0"),
        ("mobileclip-s0", "clip", "apple-amlr"),
        ("mobileclip-s2", "clip", "apple-amlr"),
        ("florence2-base", "florence2", "MIT"),
        ("florence2-base-ft", "florence2", "MIT"),
        ("smolvlm-256m-instruct", "smolvlm", "Apache-2.0"),
        ("smolvlm-500m-instruct", "smolvlm", "Apache-2.0"),
        ("paligemma2-3b-pt-224", "paligemma", "Gemma Terms of Use"),
        ("yolox-nano", "yolox", "Apache-2.0"),
        ("yolox-s", "yolox", "Apache-2.0"),
        ("ppocr-v4", "ppocr", "Apache-2.0"),
    ] {
        let line = l
            .stdout
            .lines()
            .find(|x| x.starts_with(&format!("{name}  [{family}]  ")))
            .unwrap_or_else(|| panic!("no {name} [{family}] line:\n{}", l.stdout));
        assert!(line.contains(&format!("licence {licence}")), "{line}");
        let size = line
            .split("]  ")
            .nth(1)
            .and_then(|r| r.split("  licence").next())
            .unwrap_or_default();
        assert!(size.contains('B') || size == "size unknown", "{line}");
    }
    assert!(l.stdout.contains("yolox_nano.onnx  3.7 MB  sha256 695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14"), "{}", l.stdout);
    assert!(
        l.stdout.contains("revision: main (not pinned)"),
        "{}",
        l.stdout
    );
    assert!(l.stdout.contains("state:    not installed"), "{}", l.stdout);
    let tiny = l.stdout.split("\ntiny-yolox  [yolox]").nth(1).unwrap();
    let state = tiny.lines().find(|x| x.contains("state:")).unwrap();
    assert!(state.contains("installed, verified"), "{state}");
}

#[test]
fn errors_are_one_line_naming_what_and_where() {
    let fx = Fixture::new();
    let out = fx.pull("no-such-model", &[]);
    assert_eq!(out.code, Some(1), "{}", out.show());
    let errors = error_lines(&out);
    assert_eq!(errors.len(), 1, "{}", out.show());
    assert!(
        errors[0].contains("unknown model \"no-such-model\"")
            && errors[0].contains("ocellus models list"),
        "{}",
        errors[0]
    );

    let out = fx.pull("tiny-gone", &[]);
    assert_eq!(out.code, Some(1), "{}", out.show());
    let errors = error_lines(&out);
    assert_eq!(errors.len(), 1, "{}", out.show());
    let url = format!(
        "{}/test/gone/resolve/main/onnx/vision_model.onnx",
        fx.server.endpoint()
    );
    assert!(
        errors[0].contains(&format!(
            "model tiny-gone: onnx/vision_model.onnx: {url}: HTTP 404"
        )),
        "{}",
        errors[0]
    );

    // A closed port: unreachable, naming the URL, within the timeout.
    let closed = free_port();
    let endpoint = format!("http://127.0.0.1:{closed}");
    let out = fx.run(
        "pull",
        &["tiny-clip", "--endpoint", &endpoint, "--timeout", "5"],
        &[("HF_TOKEN", TOKEN)],
    );
    assert_eq!(out.code, Some(1), "{}", out.show());
    let errors = error_lines(&out);
    assert_eq!(errors.len(), 1, "{}", out.show());
    assert!(
        errors[0].contains(&format!(
            "model tiny-clip: onnx/vision_model.onnx: {endpoint}/{REPO}/resolve/main/onnx/vision_model.onnx: unreachable"
        )),
        "{}",
        errors[0]
    );
    assert!(!out.raw_stderr.contains(TOKEN));

    // A file nobody states a hash for is refused, unless the user accepts it.
    let out = fx.pull("tiny-loose", &[]);
    assert_eq!(out.code, Some(1), "{}", out.show());
    assert!(
        error_lines(&out)[0].contains("model tiny-loose: loose.onnx: ")
            && error_lines(&out)[0].contains("--allow-unverified"),
        "{}",
        out.show()
    );
    assert!(!fx.model_dir("tiny-loose").join("loose.onnx").exists());
    let endpoint = fx.server.endpoint();
    let out = fx.run(
        "pull",
        &["tiny-loose", "--endpoint", &endpoint, "--allow-unverified"],
        &[],
    );
    assert_eq!(out.code, Some(0), "{}", out.show());
    assert_eq!(fx.manifest("tiny-loose")["files"][0]["check"], "none");
    let l = fx.run("list", &[], &[]);
    assert!(
        l.stdout.contains("1 file(s) without a pin or server hash"),
        "{}",
        l.stdout
    );
}
