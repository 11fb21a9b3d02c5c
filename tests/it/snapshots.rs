//! Snapshots through the binary (GStreamer, YOLOX-nano, PP-OCRv4, mosquitto): each
//! alert publishes the JPEG of its frame retained on `ocellus/<cam>/snapshot`, writes
//! it to the snapshot folder under the retention limit, and the event names it; the
//! JPEG decodes back to the camera's frame size; Home Assistant gets an `image`
//! entity. A slow query's alert (on the generative worker) does the same with the
//! frame it answered, its region outlined and labelled with the query's id.

use crate::common;

use std::time::Duration;

use common::*;
use ocellus::kit::{Frame, Pixels};
use ocellus::source::first_frame;
use serde_json::Value;

#[test]
fn each_alert_publishes_and_keeps_the_picture_of_its_frame() {
    let dir = tempfile::tempdir().unwrap();
    let clip = media_clip(
        dir.path(),
        "comings.mkv",
        &[
            ("astronaut.png", 2.0),
            ("coffee.png", 2.0),
            ("astronaut.png", 2.0),
            ("coffee.png", 2.0),
        ],
    );
    let snaps = dir.path().join("snaps");
    let cfg = write_config(
        dir.path(),
        &format!(
            "{}[snapshots]\ndir = {}\nkeep = 2\nquality = 85\n\n\
             [[cameras]]\nrealtime = false\nid = \"cam\"\nurl = {}\nsample_fps = 2\n\n{}",
            engine_and_yolox(),
            toml_path(&snaps),
            toml_path(&clip),
            person_query("region = [0.0, 0.0, 1.0, 1.0]"),
        ),
    );
    let broker = Mosquitto::start();
    let col = MqttCollector::new(&broker.url());
    run_to_end(&cfg, &broker.url());
    let events = |c: &MqttCollector| -> Vec<Value> {
        c.payloads(&events_topic("cam"))
            .iter()
            .map(|p| serde_json::from_str(p).unwrap())
            .collect()
    };
    assert!(
        col.wait_for(
            |m| m.iter().filter(|x| x.topic == events_topic("cam")).count() >= 3,
            Duration::from_secs(10)
        ),
        "{}",
        col.dump()
    );
    let events = events(&col);
    // OFF at 2 s, ON at 4 s, OFF at 6 s: three alerts, each with its picture.
    assert_eq!(events.len(), 3, "{events:#?}");
    let files: Vec<String> = events
        .iter()
        .map(|e| {
            assert_eq!(e["snapshot"]["topic"], "ocellus/cam/snapshot", "{e}");
            e["snapshot"]["file"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(
        files.iter().all(|f| f.ends_with("-person.jpg")),
        "{files:?}"
    );
    let shots: Vec<Msg> = col
        .messages()
        .into_iter()
        .filter(|m| m.topic == "ocellus/cam/snapshot")
        .collect();
    assert_eq!(shots.len(), 3);
    let jpeg = &shots[2].payload;
    assert_eq!(
        (&jpeg[..2], &jpeg[jpeg.len() - 2..]),
        (&[0xFF, 0xD8][..], &[0xFF, 0xD9][..])
    );
    // Retention: the folder keeps the two newest.
    let mut kept: Vec<String> = std::fs::read_dir(snaps.join("cam"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    kept.sort();
    assert_eq!(kept, files[1..].to_vec());
    // The last file is the retained picture, and it decodes to the frame's size.
    let last = snaps.join("cam").join(&files[2]);
    assert_eq!(&std::fs::read(&last).unwrap(), jpeg);
    let frame = ocellus::source::first_frame(&last, ocellus::kit::Pixels::Rgb).unwrap();
    assert_eq!((frame.width, frame.height), (640, 360));
    // A fresh subscriber (Home Assistant's image entity) gets the last one.
    let fresh = MqttCollector::new(&broker.url());
    let retained = fresh
        .wait_for_topic("ocellus/cam/snapshot", Duration::from_secs(10))
        .expect("retained snapshot");
    assert_eq!(&retained.payload, jpeg);
    let ha = fresh
        .wait_for_topic(
            "homeassistant/device/ocellus_cam/config",
            Duration::from_secs(10),
        )
        .expect("discovery")
        .json();
    let image = &ha["components"]["ocellus_cam_snapshot"];
    assert_eq!(image["platform"], "image");
    assert_eq!(image["image_topic"], "ocellus/cam/snapshot");
    assert_eq!(image["content_type"], "image/jpeg");
}

/// Luma of pixel (x, y) of an RGB frame.
fn luma(f: &Frame, x: usize, y: usize) -> f32 {
    let i = y * f.stride + 3 * x;
    let p = &f.data()[i..i + 3];
    0.299 * f32::from(p[0]) + 0.587 * f32::from(p[1]) + 0.114 * f32::from(p[2])
}

/// Mean of `[R, G, B]` over the pixels `x0..x1` x `y0..y1`.
fn mean_rgb(f: &Frame, (x0, x1): (usize, usize), (y0, y1): (usize, usize)) -> [f32; 3] {
    let mut sum = [0f32; 3];
    for y in y0..y1 {
        for x in x0..x1 {
            let i = y * f.stride + 3 * x;
            for (s, v) in sum.iter_mut().zip(&f.data()[i..i + 3]) {
                *s += f32::from(*v);
            }
        }
    }
    sum.map(|s| s / ((x1 - x0) * (y1 - y0)) as f32)
}

#[test]
fn a_slow_querys_alert_publishes_the_picture_of_the_frame_it_answered() {
    let dir = tempfile::tempdir().unwrap();
    // A page whose first word is "Region", then the machine display.
    let clip = media_clip(
        dir.path(),
        "panel.mkv",
        &[("page.png", 2.0), ("ocr_synthetic_machine3.png", 2.0)],
    );
    let snaps = dir.path().join("snaps");
    let cfg = write_config(
        dir.path(),
        &format!(
            "{ENGINE_ONE_THREAD}{}[snapshots]\ndir = {}\nquality = 95\n\n\
             [[cameras]]\nrealtime = false\nid = \"panel\"\nurl = {}\nsample_fps = 2\n\n\
             [[cameras.queries]]\nid = \"display\"\nask = \"what does it say?\"\nkind = \"read\"\n\
             model = \"ocr\"\npattern = '(Region|MACHINE)'\nregion = [0.0, 0.0, 1.0, 1.0]\n\
             every = \"1m\"\nmin_interval = \"1s\"\non_change = true\n",
            ppocr_model(),
            toml_path(&snaps),
            toml_path(&clip),
        ),
    );
    let broker = Mosquitto::start();
    let col = MqttCollector::new(&broker.url());
    run_to_end(&cfg, &broker.url()).assert_no_critical();
    assert!(
        col.wait_for(
            |m| m.iter().any(|x| x.topic == events_topic("panel")),
            Duration::from_secs(10)
        ),
        "{}",
        col.dump()
    );
    // Read on the first frame ("Region", the first state: no alert) and on the scene
    // change at 2 s ("MACHINE"): one alert, with its picture.
    let events: Vec<Value> = col
        .payloads(&events_topic("panel"))
        .iter()
        .map(|p| serde_json::from_str(p).unwrap())
        .collect();
    assert_eq!(events.len(), 1, "{events:#?}");
    let event = &events[0];
    assert_eq!(
        (&event["query"], &event["from"], &event["to"]),
        (
            &Value::from("display"),
            &Value::from("Region"),
            &Value::from("MACHINE")
        ),
        "{event}"
    );
    assert_eq!(
        event["snapshot"]["topic"], "ocellus/panel/snapshot",
        "{event}"
    );
    let file = event["snapshot"]["file"].as_str().unwrap_or_default();
    assert!(file.ends_with("-display.jpg"), "{event}");
    let path = snaps.join("panel").join(file);
    let jpeg = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let shots: Vec<Msg> = col
        .messages()
        .into_iter()
        .filter(|m| m.topic == "ocellus/panel/snapshot")
        .collect();
    assert_eq!(shots.len(), 1);
    assert_eq!(shots[0].payload, jpeg);
    let fresh = MqttCollector::new(&broker.url());
    let retained = fresh
        .wait_for_topic("ocellus/panel/snapshot", Duration::from_secs(10))
        .expect("retained snapshot");
    assert_eq!(retained.payload, jpeg);

    // The picture is the display's frame, annotated: the clip's own frame of the
    // display (the same encoder) shows what it looks like without.
    let shot = first_frame(&path, Pixels::Rgb).unwrap();
    assert_eq!((shot.width, shot.height), (640, 360));
    let display = media_clip(
        dir.path(),
        "display.mkv",
        &[("ocr_synthetic_machine3.png", 0.5)],
    );
    let plain = first_frame(&display, Pixels::Rgb).unwrap();
    // The display's text (rows 80..280, below the black letterbox bar) is there.
    let text = ((20, 540), (110, 150));
    let (a, b) = (
        mean_rgb(&shot, text.0, text.1),
        mean_rgb(&plain, text.0, text.1),
    );
    assert!(
        a.iter().zip(&b).all(|(a, b)| (a - b).abs() < 4.0),
        "{a:?} vs {b:?}"
    );
    // The region's yellow outline runs along the top edge, over the black bar ...
    let edge = mean_rgb(&shot, (100, 600), (0, 2));
    assert!(
        edge[0] > 200.0 && edge[1] > 160.0 && edge[2] < 80.0,
        "outline {edge:?}"
    );
    assert!(mean_rgb(&plain, (100, 600), (0, 2))[0] < 40.0);
    // ... and its label, "display" in black on yellow (8 px glyphs below 720 lines),
    // sits in the top-left corner, from (1, 1).
    let label = mean_rgb(&shot, (0, 58), (0, 10));
    assert!(label[0] > 150.0 && label[2] < 100.0, "label {label:?}");
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for (i, c) in "display".bytes().enumerate() {
        let glyph = font8x8::legacy::BASIC_LEGACY[usize::from(c)];
        for (gy, bits) in glyph.iter().enumerate() {
            for gx in 0..8 {
                let l = luma(&shot, 1 + 8 * i + gx, 1 + gy);
                if bits & (1 << gx) != 0 {
                    &mut on
                } else {
                    &mut off
                }
                .push(l);
            }
        }
    }
    let mean = |v: &[f32]| v.iter().sum::<f32>() / v.len() as f32;
    assert!(
        mean(&on) + 80.0 < mean(&off),
        "glyph pixels {} vs background {}",
        mean(&on),
        mean(&off)
    );
}
