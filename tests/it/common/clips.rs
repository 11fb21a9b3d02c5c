//! Test clips made with `gst-launch-1.0` (`make_clip`, `media_clip`,
//! `make_test_pattern_clip`), killed and tried again when it hangs (`run_gst_launch`).

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{media, wait_or_kill};

/// How many times a `gst-launch-1.0` run that hangs is tried before giving up.
const GST_LAUNCH_TRIES: u32 = 3;

/// The longest one `gst-launch-1.0` run making a test clip of `seconds` may take.
/// A few seconds of 640x360 encode in about a second even on a loaded 2-core
/// machine, so this only catches a run that hangs.
pub fn clip_time_limit(seconds: f64) -> Duration {
    Duration::from_secs(30) + Duration::from_secs_f64(4.0 * seconds.max(0.0))
}

fn muxer_for(out: &Path) -> Vec<String> {
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    match ext.as_str() {
        "mkv" => vec!["matroskamux".into()],
        "mp4" | "m4v" | "mov" => vec!["mp4mux".into(), "faststart=true".into()],
        "ts" => vec!["mpegtsmux".into()],
        _ => panic!(
            "make_clip: unsupported container for {} (use .mkv, .mp4 or .ts)",
            out.display()
        ),
    }
}

/// `x264enc ... ! h264parse ! MUX ! filesink location=LOCATION`, with the muxer
/// chosen by the extension of `out`.
fn encoder_tail(out: &Path, location: &Path, fps: u32) -> Vec<String> {
    let mut t: Vec<String> = ["x264enc", "tune=zerolatency", "speed-preset=ultrafast"]
        .map(String::from)
        .to_vec();
    t.push(format!("key-int-max={}", fps.max(1) * 2));
    t.extend(["!", "h264parse", "!"].map(String::from));
    t.extend(muxer_for(out));
    t.extend(["!", "filesink"].map(String::from));
    t.push(format!("location={}", location.display()));
    t
}

/// `DIR/.NAME.PID.ATTEMPT.partial` beside `out`.
fn partial_path(out: &Path, attempt: u32) -> PathBuf {
    let mut name = OsString::from(".");
    name.push(out.file_name().expect("clip path has a file name"));
    name.push(format!(".{}.{attempt}.partial", std::process::id()));
    out.with_file_name(name)
}

/// Runs `gst-launch-1.0 -q ARGS`, where ARGS (from `pipeline`, given the file to
/// write) write to a temporary file that is renamed to `out` on success. A run that
/// fails panics with the pipeline and its output (stderr and stdout). A run still
/// going after `limit` is killed and tried again: under heavy load gst-launch-1.0
/// sometimes never finishes a concat/imagefreeze pipeline (every streaming thread
/// idle, EOS never posted). After `GST_LAUNCH_TRIES` such runs it panics with what
/// each of them wrote.
pub fn run_gst_launch(out: &Path, limit: Duration, pipeline: impl Fn(&Path) -> Vec<String>) {
    if let Some(parent) = out.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).expect("create clip directory");
    }
    let mut hung = Vec::new();
    let mut shown = String::new();
    for attempt in 1..=GST_LAUNCH_TRIES {
        let tmp = partial_path(out, attempt);
        let log_path = tmp.with_extension("log");
        let log = fs::File::create(&log_path).expect("create gst-launch-1.0 log");
        let args = pipeline(&tmp);
        shown = args.join(" ");
        let mut child = Command::new("gst-launch-1.0")
            .arg("-q")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("dup log fd"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run gst-launch-1.0 ({e}); run deploy/setup.sh"));
        let status = wait_or_kill(&mut child, limit);
        let output = fs::read_to_string(&log_path).unwrap_or_default();
        let _ = fs::remove_file(&log_path);
        match status {
            Some(s) if s.success() && fs::metadata(&tmp).is_ok_and(|m| m.len() > 0) => {
                fs::rename(&tmp, out).expect("rename finished clip into place");
                return;
            }
            Some(s) => {
                let _ = fs::remove_file(&tmp);
                panic!(
                    "gst-launch-1.0 failed ({s}) making {}\npipeline: {shown}\nstderr and stdout:\n{output}",
                    out.display(),
                );
            }
            None => {
                let _ = fs::remove_file(&tmp);
                eprintln!(
                    "gst-launch-1.0 did not finish making {} within {limit:?} (attempt {attempt} \
                     of {GST_LAUNCH_TRIES}); killed",
                    out.display()
                );
                hung.push(format!("attempt {attempt}:\n{output}"));
            }
        }
    }
    panic!(
        "gst-launch-1.0 hung {GST_LAUNCH_TRIES} times making {} (killed after {limit:?} each \
         time)\npipeline: {shown}\nstderr and stdout:\n{}",
        out.display(),
        hung.join("\n")
    );
}

/// The raw format a clip is encoded from: 4:2:0 needs even sizes, so odd ones
/// are encoded as 4:4:4.
fn raw_format(width: u32, height: u32) -> &'static str {
    if width.is_multiple_of(2) && height.is_multiple_of(2) {
        "I420"
    } else {
        "Y444"
    }
}

/// The `gst-launch-1.0` arguments `make_clip` runs (without `-q`): the muxer
/// follows the extension of `out`, the file written is `location`.
fn clip_pipeline(
    out: &Path,
    location: &Path,
    segments: &[(&Path, f64)],
    width: u32,
    height: u32,
    fps: u32,
) -> Vec<String> {
    assert!(!segments.is_empty(), "make_clip needs at least one segment");
    assert!(fps > 0 && width > 0 && height > 0);
    let format = raw_format(width, height);
    let mut a: Vec<String> = ["concat", "name=c", "!", "videoconvert", "!"]
        .map(String::from)
        .to_vec();
    a.extend(encoder_tail(out, location, fps));
    for (image, seconds) in segments {
        let frames = ((seconds * f64::from(fps)).round() as u64).max(1);
        a.extend([
            "filesrc".to_string(),
            format!("location={}", image.display()),
        ]);
        a.extend(
            [
                "!",
                "decodebin",
                "!",
                "videoconvert",
                "!",
                "videoscale",
                "add-borders=true",
                "!",
            ]
            .map(String::from),
        );
        a.push(format!(
            "video/x-raw,format={format},width={width},height={height},pixel-aspect-ratio=1/1"
        ));
        a.extend([
            "!".into(),
            "imagefreeze".into(),
            format!("num-buffers={frames}"),
        ]);
        a.extend(["!", "videorate", "!"].map(String::from));
        a.push(format!("video/x-raw,framerate={fps}/1"));
        a.extend(["!", "c."].map(String::from));
    }
    a
}

/// Makes an H.264 clip from still images shown one after the other, each
/// scaled and letterboxed to `width` x `height`, at `fps` frames per second.
/// The container follows the extension of `out`: .mkv, .mp4 (faststart) or .ts.
/// Odd sizes work (x264 then encodes 4:4:4). Never hangs: see `run_gst_launch`.
pub fn make_clip(out: &Path, segments: &[(&Path, f64)], width: u32, height: u32, fps: u32) {
    for (image, _) in segments {
        assert!(
            image.is_file(),
            "make_clip: no image at {}",
            image.display()
        );
    }
    let seconds = segments.iter().map(|(_, s)| s).sum();
    run_gst_launch(out, clip_time_limit(seconds), |tmp| {
        clip_pipeline(out, tmp, segments, width, height, fps)
    });
}

/// `make_clip` of shared media files (`media(NAME)`), at 640x360 and 10 fps, as
/// `DIR/NAME`; returns its path.
pub fn media_clip(dir: &Path, name: &str, segments: &[(&str, f64)]) -> PathBuf {
    let images: Vec<(PathBuf, f64)> = segments.iter().map(|(n, s)| (media(n), *s)).collect();
    let refs: Vec<(&Path, f64)> = images.iter().map(|(p, s)| (p.as_path(), *s)).collect();
    let out = dir.join(name);
    make_clip(&out, &refs, 640, 360, 10);
    out
}

/// A PNG of shared media file `name` letterboxed into `width` x `height` (square
/// pixels), as `DIR/NAME.WxH.png`; returns its path.
pub fn media_still(dir: &Path, name: &str, width: u32, height: u32) -> PathBuf {
    let out = dir.join(format!("{name}.{width}x{height}.png"));
    let src = media(name);
    run_gst_launch(&out, clip_time_limit(1.0), |tmp| {
        let mut a: Vec<String> = vec!["filesrc".into(), format!("location={}", src.display())];
        a.extend(
            [
                "!",
                "decodebin",
                "!",
                "videoconvert",
                "!",
                "videoscale",
                "add-borders=true",
                "!",
            ]
            .map(String::from),
        );
        a.push(format!(
            "video/x-raw,format=RGB,width={width},height={height},pixel-aspect-ratio=1/1"
        ));
        a.extend(["!", "pngenc", "snapshot=true", "!", "filesink"].map(String::from));
        a.push(format!("location={}", tmp.display()));
        a
    });
    out
}

/// Makes an H.264 clip of `videotestsrc pattern=PATTERN` (e.g. "smpte", "ball",
/// "snow"). Odd sizes work (x264 then encodes 4:4:4). Never hangs: see
/// `run_gst_launch`.
pub fn make_test_pattern_clip(
    out: &Path,
    width: u32,
    height: u32,
    fps: u32,
    seconds: f64,
    pattern: &str,
) {
    assert!(fps > 0 && width > 0 && height > 0);
    let frames = ((seconds * f64::from(fps)).round() as u64).max(1);
    run_gst_launch(out, clip_time_limit(seconds), |tmp| {
        let mut a = vec![
            "videotestsrc".to_string(),
            format!("pattern={pattern}"),
            format!("num-buffers={frames}"),
            "!".into(),
            format!("video/x-raw,width={width},height={height},framerate={fps}/1"),
            "!".into(),
            "videoconvert".into(),
            "!".into(),
        ];
        a.extend(encoder_tail(out, tmp, fps));
        a
    });
}
