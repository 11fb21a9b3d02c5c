//! Files played as cameras: a repeating clip's presentation time goes on across its
//! loops (it never restarts at 0, so the sample-rate cap and the change gate keep
//! holding), and a still image with `repeat` is a still camera, shown again once per
//! `max_staleness` rather than as fast as it can be decoded. The real daemon, the
//! real YOLOX-nano, without a broker (messages on stdout).

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// The `pts` of every detections message on stdout, in order.
fn detection_pts(output: &str) -> Vec<f64> {
    output
        .lines()
        .filter_map(|l| l.split_once("ocellus/cam/detections "))
        .filter_map(|(_, json)| serde_json::from_str::<serde_json::Value>(json).ok())
        .filter_map(|v| v["pts"].as_f64())
        .collect()
}

fn config(dir: &Path, url: &Path, extra: &str) -> std::path::PathBuf {
    write_config(
        dir,
        &format!(
            "{}[[cameras]]\nid = \"cam\"\nurl = {}\n{extra}\n{}",
            engine_and_yolox(),
            toml_path(url),
            person_query("")
        ),
    )
}

#[test]
fn a_file_plays_at_its_own_pace_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let clip = media_clip(
        dir.path(),
        "two.mkv",
        &[("astronaut.png", 1.0), ("coffee.png", 1.0)],
    );
    let cfg = config(
        dir.path(),
        &clip,
        "sample_fps = 10\nchange_threshold = 0.0\n",
    );
    let mut daemon = Daemon::start(&cfg, &[]);
    assert!(
        wait_until(Duration::from_secs(60), || !detection_pts(&daemon.output())
            .is_empty()),
        "no frame:\n{}",
        daemon.output()
    );
    let first = std::time::Instant::now();
    let status = daemon.expect_exit(Duration::from_secs(60));
    let played = first.elapsed().as_secs_f64();
    assert!(status.success(), "{status}:\n{}", daemon.output());
    let pts = detection_pts(&daemon.output());
    let span = pts.last().unwrap() - pts[0];
    assert!(span >= 1.5, "the clip is 2 s: {pts:?}");
    // Played as the camera would have sent it: no faster than its presentation time
    // (a lower bound only: a loaded machine may be slower, never faster).
    assert!(
        played >= 0.8 * span,
        "{span:.2} s of video played in {played:.2} s: faster than real time"
    );
}

#[test]
fn a_repeating_clip_goes_on_in_presentation_time() {
    let dir = tempfile::tempdir().unwrap();
    let clip = media_clip(dir.path(), "one.mkv", &[("astronaut.png", 1.0)]);
    // Every frame sampled, the gate off: each frame is evaluated and reported.
    let cfg = config(
        dir.path(),
        &clip,
        "repeat = true\nrealtime = false\nsample_fps = 10\nchange_threshold = 0.0\n",
    );
    let mut daemon = Daemon::start(&cfg, &[]);
    assert!(
        wait_until(Duration::from_secs(60), || detection_pts(&daemon.output())
            .last()
            .is_some_and(|p| *p > 2.5)),
        "the clip never reached its third loop:\n{}",
        daemon.output()
    );
    daemon.stop();
    let pts = detection_pts(&daemon.output());
    assert!(
        pts.windows(2).all(|w| w[1] > w[0]),
        "presentation time went back: {pts:?}"
    );
    // 10 frames a second of presentation time, loop after loop (the clip is 1 s).
    let seconds = pts.last().unwrap() - pts[0];
    let rate = (pts.len() - 1) as f64 / seconds;
    assert!(
        (8.0..=12.0).contains(&rate),
        "{rate} frames per second: {pts:?}"
    );
}

#[test]
fn a_still_image_with_repeat_is_shown_again_once_per_max_staleness() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &media("astronaut.png"),
        "repeat = true\nsample_fps = 2\nmax_staleness = \"1s\"\n",
    );
    let mut daemon = Daemon::start(&cfg, &[]);
    assert!(
        wait_until(Duration::from_secs(60), || detection_pts(&daemon.output())
            .len()
            >= 3),
        "the still was not shown three times:\n{}",
        daemon.output()
    );
    std::thread::sleep(Duration::from_secs(2));
    daemon.stop();
    let pts = detection_pts(&daemon.output());
    assert!(
        pts.windows(2).all(|w| w[1] - w[0] >= 0.9),
        "shown more often than once per max_staleness (1 s): {pts:?}"
    );
    assert!(
        pts.len() <= 12,
        "a still shown {} times: {pts:?}",
        pts.len()
    );
}
