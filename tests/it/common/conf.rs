//! Config snippets (TOML) shared by the tests: strings, paths and the real
//! YOLOX-nano and PP-OCRv4 models.

use std::path::{Path, PathBuf};

use super::models_dir;

/// `[engine]` with one inference thread: the tests run side by side on 2 cores.
pub const ENGINE_ONE_THREAD: &str = "[engine]\nthreads = 1\n\n";

/// A TOML basic string.
pub fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A path as a TOML basic string.
pub fn toml_path(p: &Path) -> String {
    toml_str(&p.to_string_lossy())
}

/// The real YOLOX-nano COCO detector (`<models>/yolox_nano_coco`); panics when it
/// is missing.
pub fn yolox_dir() -> PathBuf {
    let dir = models_dir().join("yolox_nano_coco");
    assert!(
        dir.is_dir(),
        "YOLOX-nano not found at {} (set OCELLUS_MODELS)",
        dir.display()
    );
    dir
}

/// `[models.coco]`: a YOLOX model at `dir` on the CPU, score threshold 0.3, plus
/// the lines in `extra` (e.g. `threads = 1`, `file = "..."`).
pub fn yolox_model(dir: &Path, extra: &str) -> String {
    format!(
        "[models.coco]\nfamily = \"yolox\"\ndir = {}\nproviders = [\"cpu\"]\nscore_threshold = 0.3\n{extra}\n\n",
        toml_path(dir)
    )
}

/// `[engine]` with one thread and the real YOLOX-nano as model `coco`.
pub fn engine_and_yolox() -> String {
    format!("{ENGINE_ONE_THREAD}{}", yolox_model(&yolox_dir(), ""))
}

/// `[[cameras.queries]]` `person`: a yes/no on label `person` of model `coco`, plus
/// the lines in `extra` (e.g. `min_frames = 2`).
pub fn person_query(extra: &str) -> String {
    format!(
        "[[cameras.queries]]\nid = \"person\"\nask = \"is there a person in view?\"\nkind = \"yes_no\"\n\
         model = \"coco\"\nlabel = \"person\"\n{extra}\n\n"
    )
}

/// `[models.ocr]`: the real PP-OCRv4 (`<models>/ppocrv4_rapidocr`) on the CPU; panics
/// when it is missing.
pub fn ppocr_model() -> String {
    let dir = models_dir().join("ppocrv4_rapidocr");
    assert!(dir.is_dir(), "PP-OCRv4 not found at {}", dir.display());
    format!(
        "[models.ocr]\nfamily = \"ppocr\"\ndir = {}\nproviders = [\"cpu\"]\n\n",
        toml_path(&dir)
    )
}
