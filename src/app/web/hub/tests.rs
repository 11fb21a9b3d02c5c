//! The hub on its own: what it keeps and what it forwards, fed as the publisher
//! feeds it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::*;
use crate::query::{Answer, Evaluation, QueryKind};

fn eval(id: &str, score: f32) -> Evaluation {
    Evaluation {
        id: Arc::from(id),
        kind: QueryKind::YesNo,
        model: Arc::from("coco"),
        region: None,
        score,
        state: Some(Answer::YesNo(score > 0.5)),
        confidence: Some(score),
        score_from: None,
        taught: None,
        change: None,
        since: None,
        expire_after: None,
    }
}

fn report(cam: &str, time: SystemTime, scores: &[(&str, f32)]) -> FrameReport {
    let mut r = FrameReport::new(Arc::from(cam));
    r.time = time;
    r.queries = scores.iter().map(|(q, s)| eval(q, *s)).collect();
    r
}

fn pooled(r: FrameReport) -> crate::query::Pooled {
    let pool = crate::query::ReportPool::new(r.camera.clone(), 1);
    let mut p = pool.take();
    *p = r;
    p
}

fn msg(topic: &str, payload: &str, retain: bool) -> Message {
    Message {
        topic: topic.into(),
        payload: payload.as_bytes().to_vec(),
        retain,
        reliable: true,
    }
}

fn hub() -> Hub {
    let cfg = WebConfig {
        events: 3,
        history: Duration::from_secs(10),
        ..WebConfig::default()
    };
    Hub::new("site/ocellus", &cfg)
}

#[test]
fn topics_are_told_apart_by_camera_query_and_kind() {
    let h = hub();
    assert_eq!(
        h.classify("site/ocellus/status"),
        Some((None, None, "daemon_status"))
    );
    assert_eq!(
        h.classify("site/ocellus/models/vlm/status"),
        Some((None, None, "model_status"))
    );
    assert_eq!(
        h.classify("site/ocellus/door/query/open/attributes"),
        Some((Some("door"), Some("open"), "attributes"))
    );
    assert_eq!(
        h.classify("site/ocellus/door/review/image"),
        Some((Some("door"), None, "review_image"))
    );
    assert_eq!(h.classify("other/door/status"), None);
    assert_eq!(h.classify("site/ocellus/door/query/open/set"), None);
}

#[test]
fn retained_messages_are_kept_until_cleared_and_others_only_forwarded() {
    let h = hub();
    let mut rx = h.subscribe();
    h.message(&msg("site/ocellus/door/query/open/state", "ON", true));
    h.message(&msg("site/ocellus/door/query/open/state", "OFF", true));
    h.message(&msg("site/ocellus/door/status", "online", true));
    h.message(&msg("site/ocellus/door/detections", "{}", false));
    let kept = h.retained();
    assert_eq!(kept.len(), 2);
    assert!(
        kept.iter().any(|e| e.data.contains("\"payload\":\"OFF\"")),
        "{kept:?}"
    );
    let sent: Vec<String> = std::iter::from_fn(|| rx.try_recv().ok())
        .map(|e| e.data.clone())
        .collect();
    assert_eq!(
        sent.len(),
        3,
        "detections reach pages in frame reports: {sent:?}"
    );
    h.message(&msg("site/ocellus/door/query/open/state", "", true));
    assert_eq!(
        h.retained().len(),
        1,
        "an empty retained message clears the topic"
    );
}

#[test]
fn scores_are_kept_twice_a_second_for_the_history_span() {
    let h = hub();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
    for i in 0..100u64 {
        let t = t0 + Duration::from_millis(100 * i);
        h.outgoing(&Outgoing::Frame(pooled(report(
            "door",
            t,
            &[("open", i as f32 / 100.0)],
        ))));
    }
    let points = h.history("door", "open");
    assert_eq!(points.len(), 20, "10 s at 2 a second");
    assert!(points.windows(2).all(|w| w[1].0 - w[0].0 >= 500));
    assert_eq!(points.last().map(|p| p.1), Some(0.95));
    assert!(h.history("door", "nope").is_empty());
}

#[test]
fn events_are_bounded_and_take_their_frames_snapshot() {
    let h = hub();
    let mut r = report("door", SystemTime::now(), &[("open", 0.9)]);
    r.snapshot = Some(crate::snapshot::Snapshot {
        jpeg: Arc::from(&b"jpeg"[..]),
        file: None,
    });
    h.outgoing(&Outgoing::Frame(pooled(r)));
    for i in 0..5 {
        let payload = format!(
            r#"{{"id":"door/open/{i}","camera":"door","query":"open","from":"OFF","to":"ON"}}"#
        );
        h.message(&msg("site/ocellus/door/events", &payload, false));
    }
    let all = h.events(None, None, 100);
    assert_eq!(all.len(), 3, "the newest 3 are kept");
    assert_eq!(&*all[0].id, "door/open/4", "newest first");
    assert_eq!(all[0].jpeg.as_deref(), Some(&b"jpeg"[..]));
    assert!(h.events(Some("yard"), None, 100).is_empty());
    assert_eq!(h.events(Some("door"), Some("open"), 1).len(), 1);
    assert!(h.event("door/open/0").is_none(), "gone beyond the bound");
}
