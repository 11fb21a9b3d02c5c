//! `ocellus teach` and `ocellus dataset export`: label frames of images and clips as
//! a query's states, list and forget its examples, and write them out for
//! fine-tuning elsewhere. The next `ocellus run` or `ocellus ask` with the same
//! config answers with them.
//!
//! ```text
//! ocellus teach -c site.toml --camera door --query open --state ON door-open.jpg clip.mkv@12.5
//! ocellus teach -c site.toml --camera door --query open --list
//! ocellus teach -c site.toml --camera door --query open --forget 20261202T101500.123Z-0
//! ocellus dataset export -c site.toml --camera door --query open --out data --format jsonl
//! ```

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::ask::pick_camera;
use super::run::DaemonError;
use crate::app::config::Config;
use crate::cache::PromptCache;
use crate::engine;
use crate::kit::Pixels;
use crate::model::{Loaded, Registry};
use crate::query::{QueryConfig, QueryKind, lesson_spec};
use crate::source::CameraConfig;
use crate::teach::{Lesson, Lessons, Source, Summary, TeachError};

/// What `ocellus teach` does.
#[derive(Debug, Clone, Default)]
pub struct TeachOptions {
    /// The camera (needed when the config has several).
    pub camera: Option<String>,
    /// The query's id.
    pub query: String,
    /// The state the media show (with media).
    pub state: Option<String>,
    /// `PATH` (an image, or a clip's first frame) or `PATH@SECONDS` (a clip's frame
    /// nearest that presentation time).
    pub media: Vec<String>,
    /// Print the examples.
    pub list: bool,
    /// Remove this example.
    pub forget: Option<String>,
    /// Remove every example.
    pub all: bool,
}

/// How `ocellus dataset export` writes the examples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// A folder per state of crops (image classifiers; also an `examples` folder).
    Folders,
    /// `data.jsonl`: image, prompt, answer per line (VLM fine-tuning).
    Jsonl,
}

/// Runs `ocellus teach`; returns the exit code.
pub fn teach(config: Config, opts: TeachOptions) -> Result<i32, DaemonError> {
    let (cam, q) = query_of(&config, opts.camera.as_deref(), &opts.query)?;
    let (models, lessons) = open(&config, &q)?;
    let loaded = loaded(&models, &q)?;
    let lesson = lessons.lesson(spec(&cam, &q)?, &loaded)?;
    let mut out = std::io::stdout().lock();
    if opts.list {
        for ex in lesson.examples() {
            let _ = writeln!(
                out,
                "{}\t{}\t{}\t{}\t{}",
                ex.id,
                ex.state,
                ex.by,
                ex.time,
                ex.media.as_deref().unwrap_or("")
            );
        }
    }
    if let Some(id) = &opts.forget {
        lesson.forget(id)?;
        let _ = writeln!(out, "forgot {id}");
    }
    if opts.all {
        let n = lesson.forget_all()?;
        let _ = writeln!(out, "forgot {n} examples");
    }
    if !opts.media.is_empty() {
        let Some(state) = &opts.state else {
            return Err(DaemonError::Usage(
                "--state is needed to label media".into(),
            ));
        };
        for media in &opts.media {
            let (path, seconds) = split_media(media);
            let path = std::env::current_dir().unwrap_or_default().join(path);
            let frame =
                crate::source::frame_at(&path, seconds, Pixels::Rgb).map_err(TeachError::from)?;
            let ex = lesson.add_frame(
                state,
                &frame,
                q.region,
                Source::Cli,
                Some(media.clone()),
                &loaded,
            )?;
            let _ = writeln!(
                out,
                "added {} ({}) from {media} at {:.3} s",
                ex.id,
                ex.state,
                frame.pts.as_secs_f64()
            );
        }
    }
    let _ = writeln!(
        out,
        "{}",
        describe(&cam.id, &q.id, &lesson.trained().summary)
    );
    Ok(0)
}

/// Runs `ocellus dataset export`; returns the exit code.
pub fn export(
    config: Config,
    camera: Option<&str>,
    query: &str,
    dir: &Path,
    format: ExportFormat,
) -> Result<i32, DaemonError> {
    let (cam, q) = query_of(&config, camera, query)?;
    let (models, lessons) = open(&config, &q)?;
    let loaded = loaded(&models, &q)?;
    let lesson = lessons.lesson(spec(&cam, &q)?, &loaded)?;
    let n = write_dataset(&lesson, &q, dir, format)?;
    println!(
        "wrote {n} examples of {}/{} to {}",
        cam.id,
        q.id,
        dir.display()
    );
    Ok(0)
}

/// Writes `lesson`'s stored examples with crops to `dir`; returns how many.
pub fn write_dataset(
    lesson: &Lesson,
    q: &QueryConfig,
    dir: &Path,
    format: ExportFormat,
) -> Result<usize, TeachError> {
    let mk = |d: &Path| std::fs::create_dir_all(d).map_err(|e| TeachError::io(d, e));
    mk(dir)?;
    let mut lines = String::new();
    let mut n = 0;
    for ex in lesson.examples() {
        let Some(jpeg) = lesson.jpeg(&ex.id).or_else(|| {
            ex.media
                .as_ref()
                .filter(|_| ex.source == Source::Folder)
                .and_then(|m| std::fs::read(m).ok())
        }) else {
            continue;
        };
        let name = format!("{}.jpg", ex.id.replace(['/', ':'], "_"));
        let rel: PathBuf = match format {
            ExportFormat::Folders => PathBuf::from(&ex.state).join(&name),
            ExportFormat::Jsonl => PathBuf::from("images").join(&name),
        };
        let path = dir.join(&rel);
        if let Some(parent) = path.parent() {
            mk(parent)?;
        }
        std::fs::write(&path, &jpeg).map_err(|e| TeachError::io(&path, e))?;
        if format == ExportFormat::Jsonl {
            let answer = match (q.kind, ex.state.as_str()) {
                (QueryKind::YesNo, "ON") => "yes",
                (QueryKind::YesNo, _) => "no",
                _ => ex.state.as_str(),
            };
            let line = serde_json::json!({
                "image": rel.to_string_lossy(),
                "prompt": q.ask,
                "answer": answer,
                "state": ex.state,
                "labels": if q.kind == QueryKind::Classify { q.labels.clone() } else { vec!["yes".into(), "no".into()] },
                "by": ex.by,
                "time": ex.time,
                "region": ex.region,
            });
            lines.push_str(&line.to_string());
            lines.push('\n');
        }
        n += 1;
    }
    if format == ExportFormat::Jsonl {
        let path = dir.join("data.jsonl");
        std::fs::write(&path, lines).map_err(|e| TeachError::io(&path, e))?;
    }
    Ok(n)
}

/// One line: the examples per state and the accuracy.
pub fn describe(camera: &str, query: &str, s: &Summary) -> String {
    let counts: Vec<String> = s.examples.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let n: usize = s.examples.values().sum();
    let accuracy = match s.accuracy {
        Some(a) => format!(
            "accuracy {:.1}% ({} over {n})",
            a * 100.0,
            if n <= 40 { "leave-one-out" } else { "5-fold" }
        ),
        None => "accuracy: needs 2 examples of each state".into(),
    };
    let candidates = match s.candidates {
        0 => String::new(),
        n => format!("; {n} candidates by models (not trained on)"),
    };
    format!(
        "{camera}/{query}: examples {}; {accuracy}{candidates}",
        counts.join(", ")
    )
}

/// `PATH@SECONDS` → (PATH, SECONDS); a path without a number after its last `@` is
/// all path.
fn split_media(media: &str) -> (&str, Option<f64>) {
    match media.rsplit_once('@') {
        Some((path, secs)) if !path.is_empty() => match secs.parse::<f64>() {
            Ok(s) if s.is_finite() && s >= 0.0 => (path, Some(s)),
            _ => (media, None),
        },
        _ => (media, None),
    }
}

fn query_of(
    config: &Config,
    camera: Option<&str>,
    query: &str,
) -> Result<(CameraConfig, QueryConfig), DaemonError> {
    let cam = pick_camera(config, camera)?;
    let q = cam
        .queries
        .iter()
        .find(|q| q.id == query)
        .cloned()
        .ok_or_else(|| {
            let ids: Vec<&str> = cam.queries.iter().map(|q| q.id.as_str()).collect();
            DaemonError::Usage(format!(
                "camera {}: no query {query:?} (queries: {})",
                cam.id,
                ids.join(", ")
            ))
        })?;
    Ok((cam, q))
}

fn spec(cam: &CameraConfig, q: &QueryConfig) -> Result<crate::teach::LessonSpec, DaemonError> {
    lesson_spec(&cam.id, q).ok_or_else(|| {
        TeachError::NotTeachable {
            camera: cam.id.clone(),
            query: q.id.clone(),
            kind: q.kind.name(),
            model: q.model.clone(),
        }
        .into()
    })
}

/// Loads the query's model alone, and the lessons of the config.
fn open(config: &Config, q: &QueryConfig) -> Result<(Registry, Lessons), DaemonError> {
    gstreamer::init().map_err(|e| DaemonError::Gstreamer(e.to_string()))?;
    let mut needed = config.models.clone();
    needed.retain(|name, _| *name == q.model);
    let env = engine::environment(&config.engine)?;
    let models = Registry::load(
        &needed,
        &config.engine,
        env,
        &Arc::new(PromptCache::default()),
    );
    Ok((models, Lessons::new(config.teach.clone())))
}

fn loaded(models: &Registry, q: &QueryConfig) -> Result<Arc<Loaded>, DaemonError> {
    models.get(&q.model).cloned().ok_or_else(|| {
        let why = models
            .failed()
            .get(&q.model)
            .cloned()
            .unwrap_or_else(|| format!("model {} is not configured", q.model));
        DaemonError::Usage(why)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_may_name_a_time() {
        assert_eq!(split_media("a.mkv@12.5"), ("a.mkv", Some(12.5)));
        assert_eq!(split_media("a.png"), ("a.png", None));
        assert_eq!(split_media("me@home.png"), ("me@home.png", None));
        assert_eq!(split_media("@3"), ("@3", None));
    }
}
