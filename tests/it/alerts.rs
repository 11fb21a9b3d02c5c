//! Alert semantics on a real clip through the binary (GStreamer, YOLOX-nano): a scene
//! flapping between a person and no person every half second produces an alert storm
//! with no rules, none under `min_duration` + `cooldown` nor under hysteresis +
//! `min_frames` + `cooldown`, and the real change that follows (the person leaves
//! for good) produces exactly one event.

use crate::common;

use std::path::Path;

use common::*;
use serde_json::Value;

/// The person query's changes over `clip`: (pts, from, to).
fn changes(dir: &Path, clip: &Path, rules: &str) -> Vec<(f64, Value, Value)> {
    let cfg = write_config(
        dir,
        &format!(
            "{}[[cameras]]\nrealtime = false\nid = \"cam\"\nurl = \"unused.mkv\"\n\n{}",
            engine_and_yolox(),
            person_query(rules)
        ),
    );
    let out = run_ocellus(
        &[
            "ask",
            &clip.to_string_lossy(),
            "-c",
            &cfg.to_string_lossy(),
            "--sample-fps",
            "4",
        ],
        &[],
    );
    assert_eq!(out.code, Some(0), "{}", out.show());
    out.json_lines()
        .iter()
        .filter_map(|l| {
            let q = l["queries"]
                .as_array()?
                .iter()
                .find(|q| q["id"] == "person")?;
            let c = q.get("change")?;
            Some((l["pts"].as_f64()?, c["from"].clone(), c["to"].clone()))
        })
        .collect()
}

#[test]
fn flapping_raises_no_alert_storm_and_a_real_change_raises_one_event() {
    let dir = tempfile::tempdir().unwrap();
    let mut segments = Vec::new();
    for _ in 0..6 {
        segments.push(("astronaut.png", 0.5));
        segments.push(("coffee.png", 0.5));
    }
    segments.push(("coffee.png", 4.0));
    let clip = media_clip(dir.path(), "flap.mkv", &segments);

    // No rules: every flap is a state change (the storm the rules must stop).
    let storm = changes(dir.path(), &clip, "");
    assert!(storm.len() >= 10, "{storm:?}");

    // Each answer must hold 1 s, and a state holds 2 s after a change.
    let calm = changes(
        dir.path(),
        &clip,
        "min_duration = \"1s\"\ncooldown = \"2s\"",
    );
    eprintln!("no rules: {} changes; with rules: {calm:?}", storm.len());
    let events: Vec<_> = calm.iter().filter(|(_, from, _)| !from.is_null()).collect();
    assert_eq!(
        calm[0].1,
        Value::Null,
        "the first state comes at once: {calm:?}"
    );
    assert_eq!(calm[0].2, "ON", "{calm:?}");
    assert_eq!(events.len(), 1, "exactly one alert: {calm:?}");
    let (pts, from, to) = events[0];
    assert_eq!((from.as_str(), to.as_str()), (Some("ON"), Some("OFF")));
    // The person left at 5.5 s (the end of the last astronaut half-second) and OFF
    // had to hold 1 s.
    assert!((6.5..=7.5).contains(pts), "{calm:?}");

    // Counted in frames instead: hysteresis, 3 agreeing samples (a flap lasts 2),
    // and the cooldown. The person stands 2 s first, so the first state is ON.
    let mut segments = vec![("astronaut.png", 2.0)];
    for _ in 0..6 {
        segments.push(("coffee.png", 0.5));
        segments.push(("astronaut.png", 0.5));
    }
    segments.push(("coffee.png", 4.0));
    let clip = media_clip(dir.path(), "flap2.mkv", &segments);
    let framed = changes(
        dir.path(),
        &clip,
        "on = 0.6\noff = 0.4\nmin_frames = 3\ncooldown = \"2s\"",
    );
    eprintln!("with on/off + min_frames + cooldown: {framed:?}");
    let events: Vec<_> = framed
        .iter()
        .filter(|(_, from, _)| !from.is_null())
        .collect();
    assert_eq!(events.len(), 1, "exactly one alert: {framed:?}");
    let (pts, from, to) = events[0];
    assert_eq!((from.as_str(), to.as_str()), (Some("ON"), Some("OFF")));
    assert_eq!(framed[0].2, "ON", "{framed:?}");
    // The third OFF sample after the person left for good at 8 s.
    assert!((8.4..=9.1).contains(pts), "{framed:?}");
}
