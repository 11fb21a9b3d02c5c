//! Snapshots through the binary (GStreamer, YOLOX-nano, mosquitto): each alert
//! publishes the JPEG of its frame retained on `ocellus/<cam>/snapshot`, writes it to
//! the snapshot folder under the retention limit, and the event names it; the JPEG
//! decodes back to the camera's frame size; Home Assistant gets an `image` entity.

mod common;

use std::time::Duration;

use common::*;
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
             [[cameras]]\nid = \"cam\"\nurl = {}\nsample_fps = 2\n\n{}",
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
    let frame = ocellus::source::first_frame(&last, ocellus::source::Pixels::Rgb).unwrap();
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
