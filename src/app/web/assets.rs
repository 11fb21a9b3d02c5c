//! The web interface's files, embedded in the binary (plain ES modules, CSS and HTML:
//! no build step, nothing fetched from elsewhere). A file added under `assets/` is
//! served once it is listed here (a test checks that the two agree).

macro_rules! assets {
    ($($path:literal => $mime:ident),* $(,)?) => {
        /// Each file: its path under `/ui/`, its content type, its bytes.
        pub static ASSETS: &[(&str, &str, &[u8])] = &[
            $(($path, $mime, include_bytes!(concat!("assets/", $path)))),*
        ];
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

assets! {
    "index.html" => HTML,
    "login.html" => HTML,
    "app.css" => CSS,
    "js/api.js" => JS,
    "js/dom.js" => JS,
    "js/live.js" => JS,
    "js/login.js" => JS,
    "js/main.js" => JS,
    "js/overlay.js" => JS,
    "js/sparkline.js" => JS,
    "js/spec.js" => JS,
    "js/pages/ask.js" => JS,
    "js/pages/camera.js" => JS,
    "js/pages/cameras.js" => JS,
    "js/pages/events.js" => JS,
    "js/pages/system.js" => JS,
    "js/pages/teach.js" => JS,
}

#[cfg(test)]
mod tests {
    use super::ASSETS;

    fn files(dir: &std::path::Path, base: &std::path::Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                files(&p, base, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().to_string_lossy().into_owned());
            }
        }
    }

    #[test]
    fn every_file_under_assets_is_served_and_nothing_else() {
        let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/app/web/assets");
        let mut on_disk = Vec::new();
        files(&base, &base, &mut on_disk);
        on_disk.sort();
        let mut listed: Vec<String> = ASSETS.iter().map(|(p, _, _)| p.to_string()).collect();
        listed.sort();
        assert_eq!(on_disk, listed);
        for (path, mime, _) in ASSETS {
            let ext = path.rsplit('.').next().unwrap();
            let want = match ext {
                "html" => "text/html",
                "js" => "text/javascript",
                "css" => "text/css",
                "svg" => "image/svg+xml",
                _ => panic!("{path}: no content type for .{ext}"),
            };
            assert!(mime.starts_with(want), "{path}: {mime}");
        }
    }
}
