//! The slow lane's bounds through the real binary (RTSP camera, tiny random-weight
//! SmolVLM, mosquitto): a camera whose every frame keeps the generative worker busy
//! for seconds (32 answers, a camera's most queries, of up to 256 tokens: about 8 s
//! here) takes a runtime query change promptly (closing the lane abandons the answer
//! in progress at its next token), and SIGTERM in the middle of those answers exits 0
//! promptly with `offline` published. Before the lane could cancel, both waited for
//! the rest of the frame's answers.

use crate::common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;

const CAM: &str = "door";

fn config(dir: &std::path::Path, rtsp: &str) -> PathBuf {
    let smol = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smolvlm_tiny");
    let mut toml = format!(
        "[mqtt]\nurl = \"mqtt://127.0.0.1:1\"\nclient_id = {}\n\n\
         [models.smol]\nfamily = \"smolvlm\"\ndir = {}\nproviders = [\"cpu\"]\nmax_tokens = 256\n\n\
         [[cameras]]\nrealtime = false\nid = \"{CAM}\"\nurl = {}\n\n",
        toml_str(&client_id("slow")),
        toml_path(&smol),
        toml_str(rtsp),
    );
    for i in 0..32 {
        toml += &format!(
            "[[cameras.queries]]\nid = \"q{i}\"\nask = \"What is in the picture?\"\n\
             kind = \"answer\"\nmodel = \"smol\"\nevery = \"1s\"\n\n"
        );
    }
    write_config(dir, &toml)
}

#[test]
fn a_query_change_and_sigterm_cut_a_long_answer_short() {
    let dir = tempfile::tempdir().unwrap();
    let mount = RtspMount {
        path: "/live".into(),
        launch: photo_launch_line(&media("astronaut.png")),
        protocols: RTSPLowerTrans::TCP,
    };
    let server = RtspServer::start_on_free_port(vec![mount]).unwrap();
    let cfg = config(dir.path(), &server.url("rtspt", "/live"));
    let broker = Mosquitto::start();
    let col = MqttCollector::new(&broker.url());
    assert!(col.wait_subscribed(Duration::from_secs(10)));
    let mut daemon = Daemon::start(&cfg, &["--mqtt-url", &broker.url()]);
    let wait = Duration::from_secs(60);
    assert!(
        col.wait_for_topic(&state_topic(CAM, "q0"), wait).is_some(),
        "no answer; got:\n{}\noutput:\n{}",
        col.dump(),
        daemon.output()
    );

    // The first frame's report is out and the worker has taken the next frame at
    // once (it was due and waiting): a moment later it is in the middle of its 32
    // answers. q0 becomes a yes_no question; the camera takes the change between two
    // of its own frames, which closes the lane in the middle of those answers.
    std::thread::sleep(Duration::from_millis(1500));
    let spec = r#"{"ask": "Is there a person?", "kind": "yes_no", "model": "smol", "every": "1s"}"#;
    let t0 = std::time::Instant::now();
    publish_once(
        &broker.url(),
        &format!("ocellus/{CAM}/query/q0/set"),
        spec,
        false,
    );
    // The camera publishes its new Home Assistant device (q0 now a binary_sensor)
    // once it has taken the change: that is, once the old lane has closed.
    let taken = |m: &[Msg]| {
        m.iter().any(|x| {
            x.topic == format!("homeassistant/device/ocellus_{CAM}/config")
                && x.json()["components"][format!("ocellus_{CAM}_q0")]["platform"]
                    == "binary_sensor"
        })
    };
    assert!(
        col.wait_for(taken, Duration::from_secs(3)),
        "the camera did not take the change promptly; got:\n{}\noutput:\n{}",
        col.dump(),
        daemon.output()
    );
    eprintln!("the change was taken after {:?}", t0.elapsed());

    // SIGTERM while the new lane generates the 32 answers of its first frame.
    let t0 = std::time::Instant::now();
    let status = daemon.stop_within(Duration::from_secs(5));
    eprintln!("SIGTERM: exited after {:?}", t0.elapsed());
    assert!(
        status.success(),
        "SIGTERM should exit 0, got {status}; output:\n{}",
        daemon.output()
    );
    assert!(
        col.wait_for(
            |m| {
                let last = |t: &str| m.iter().rev().find(|x| x.topic == t).map(|x| x.text());
                last(&status_topic()).as_deref() == Some("offline")
                    && last(&cam_status(CAM)).as_deref() == Some("offline")
            },
            Duration::from_secs(10)
        ),
        "after SIGTERM both statuses should be offline; got:\n{}",
        col.dump()
    );
    let out = daemon.output();
    assert!(!out.contains("panicked"), "{out}");
    assert!(
        !out.contains("cannot answer") && !out.contains("cancelled"),
        "a cancelled answer must not be reported as an error:\n{out}"
    );
}
