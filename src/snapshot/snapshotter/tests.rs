//! Snapshots of RGB and I420 frames: the labels of regions and boxes land where they
//! should, glyph by glyph, on the converted picture; siblings share one folder.

use std::time::{Duration, SystemTime};

use font8x8::legacy::BASIC_LEGACY;

use super::*;
use crate::kit::{I420Layout, YuvMatrix};
use crate::snapshot::draw::{BOX, BOX_TEXT, REGION, REGION_TEXT};

const W: usize = 160;
const H: usize = 120;

fn cfg(toml: &str) -> SnapshotConfig {
    toml::from_str(toml).unwrap()
}

fn rgb_frame() -> Frame {
    Frame::from_rgb(W as u32, H as u32, W * 3, vec![128; W * H * 3])
}

/// A mid-grey I420 frame in a GStreamer buffer, as the decoder hands it over.
fn i420_frame() -> Frame {
    gstreamer::init().unwrap();
    let (cw, ch) = (W / 2, H / 2);
    let mut data = vec![128u8; W * H + 2 * cw * ch];
    data[..W * H].fill(120);
    let layout = I420Layout {
        offsets: [0, W * H, W * H + cw * ch],
        strides: [W, cw, cw],
        matrix: YuvMatrix::bt709(false),
    };
    let buffer = gstreamer::Buffer::from_mut_slice(data)
        .into_mapped_buffer_readable()
        .unwrap();
    Frame::from_gst(
        0,
        Duration::ZERO,
        (W as u32, H as u32),
        W,
        PixelFormat::I420(layout),
        buffer,
    )
}

fn door() -> Region {
    Region {
        query: "door".into(),
        rect: [0.25, 0.5, 0.75, 1.0],
    }
}

fn person() -> Detection {
    Detection {
        class: 0,
        label: "person".into(),
        score: 0.87,
        bbox: [0.5, 0.1, 0.9, 0.4],
        model: None,
    }
}

fn at(rgb: &[u8], x: usize, y: usize) -> [u8; 3] {
    let i = (y * W + x) * 3;
    [rgb[i], rgb[i + 1], rgb[i + 2]]
}

/// The 8×8 cell at (x, y) shows `text`'s glyphs: glyph pixels in `fg`, the others `bg`.
fn assert_text(rgb: &[u8], (x, y): (usize, usize), text: &str, fg: [u8; 3], bg: [u8; 3]) {
    for (i, c) in text.bytes().enumerate() {
        let glyph = BASIC_LEGACY[usize::from(c)];
        for (gy, bits) in glyph.iter().enumerate() {
            for gx in 0..8 {
                let want = if bits & (1 << gx) != 0 { fg } else { bg };
                let (px, py) = (x + 8 * i + gx, y + gy);
                assert_eq!(at(rgb, px, py), want, "{text:?}[{i}] at ({px}, {py})");
            }
        }
    }
}

/// Snapshots `frame` with the door region and a person box, annotated or not; returns
/// the picture's pixels.
fn picture(frame: &Frame, annotate: bool) -> Vec<u8> {
    let mut shots = Snapshotter::new("cam", cfg(&format!("annotate = {annotate}")));
    let shot = shots
        .take_of(frame, &[door()], &[person()], SystemTime::now(), "door")
        .unwrap();
    assert_eq!(&shot.jpeg[..2], &[0xFF, 0xD8]);
    assert!(shot.file.is_none());
    shots.rgb
}

fn assert_labelled(frame: &Frame) {
    let plain = picture(frame, false);
    let rgb = picture(frame, true);
    // The region starts at (40, 60): its 10 px tall label sits above, from (40, 50),
    // its text one pixel in.
    assert_text(&rgb, (41, 51), "door", REGION_TEXT, REGION);
    assert_eq!(at(&rgb, 40, 50), REGION);
    assert_eq!(at(&rgb, 39, 50), at(&plain, 39, 50));
    // The box starts at (80, 12); "person 0.87" (90 px) is moved left to end at the
    // right edge: from (70, 2).
    assert_text(&rgb, (71, 3), "person 0.87", BOX_TEXT, BOX);
    assert_eq!(at(&rgb, 159, 2), BOX);
    assert_eq!(at(&rgb, 69, 5), at(&plain, 69, 5));
    // Away from the annotations the picture is the frame's.
    assert_eq!(at(&rgb, 10, 10), at(&plain, 10, 10));
    let grey = at(&plain, 10, 10);
    assert!(
        grey.iter()
            .all(|&v| v.abs_diff(grey[0]) <= 1 && v > 100 && v < 140),
        "{grey:?}"
    );
    // Without annotations nothing was drawn where the labels are.
    assert_eq!(at(&plain, 41, 51), grey);
    assert_eq!(at(&plain, 100, 5), grey);
}

#[test]
fn labels_are_drawn_on_snapshots_of_rgb_frames() {
    assert_labelled(&rgb_frame());
}

#[test]
fn labels_are_drawn_on_snapshots_of_i420_frames() {
    assert_labelled(&i420_frame());
}

#[test]
fn a_box_without_a_score_is_labelled_with_its_label_alone() {
    let mut shots = Snapshotter::new("cam", cfg(""));
    let mut found = person();
    found.score = f32::NAN;
    found.label = "cup".into();
    shots
        .take_of(&rgb_frame(), &[], &[found], SystemTime::now(), "things")
        .unwrap();
    // "cup" is 26 px wide: it stays at the box's corner, (80, 2).
    assert_text(&shots.rgb, (81, 3), "cup", BOX_TEXT, BOX);
    assert_eq!(at(&shots.rgb, 105, 5), BOX);
    assert_ne!(at(&shots.rgb, 106, 5), BOX);
}

#[test]
fn siblings_share_the_cameras_folder_and_its_retention() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("dir = {:?}\nkeep = 2", dir.path().display().to_string());
    let mut evaluator = Snapshotter::new("cam", cfg(&text));
    let mut worker = evaluator.sibling();
    let frame = rgb_frame();
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    evaluator.keep(&frame);
    let first = evaluator.take(&[], &[], t0, "person").unwrap();
    let second = worker
        .take_of(&frame, &[], &[], t0 + Duration::from_secs(1), "meter")
        .unwrap();
    let third = evaluator
        .take(&[], &[], t0 + Duration::from_secs(2), "person")
        .unwrap();
    let mut kept: Vec<String> = std::fs::read_dir(dir.path().join("cam"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    kept.sort();
    assert!(first.file.unwrap().ends_with("-person.jpg"));
    assert_eq!(kept, vec![second.file.unwrap(), third.file.unwrap()]);
    assert!(kept[0].ends_with("-meter.jpg"), "{kept:?}");
}
