//! The console's files, compiled into the binary: one `payhost` file is the whole
//! product, and what the browser runs is exactly what the repository holds (plain ES
//! modules and CSS, no build step, so nothing differs between two builds).

pub struct Asset {
    /// Path under `host/console/`, as the page asks for it under `/console/assets/`.
    pub path: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! asset {
    ($path:literal, $content_type:literal) => {
        Asset {
            path: $path,
            content_type: $content_type,
            bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/console/", $path)),
        }
    };
}

pub const INDEX: Asset = asset!("index.html", "text/html; charset=utf-8");

pub const ASSETS: &[Asset] = &[
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("js/api.js", "text/javascript; charset=utf-8"),
    asset!("js/charts.js", "text/javascript; charset=utf-8"),
    asset!("js/dom.js", "text/javascript; charset=utf-8"),
    asset!("js/main.js", "text/javascript; charset=utf-8"),
    asset!("js/prometheus.js", "text/javascript; charset=utf-8"),
    asset!("js/pages/accounts.js", "text/javascript; charset=utf-8"),
    asset!("js/pages/audit.js", "text/javascript; charset=utf-8"),
    asset!("js/pages/jobs.js", "text/javascript; charset=utf-8"),
    asset!("js/pages/plugins.js", "text/javascript; charset=utf-8"),
    asset!("js/pages/signin.js", "text/javascript; charset=utf-8"),
];

pub fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn files_under(dir: &Path, root: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files_under(&path, root, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }

    #[test]
    fn every_console_file_is_embedded_and_nothing_else() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
        let mut on_disk = Vec::new();
        files_under(&root, &root, &mut on_disk);
        on_disk.sort();
        let mut embedded: Vec<String> = ASSETS.iter().map(|a| a.path.to_string()).chain([INDEX.path.to_string()]).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded, "host/console and the embedded list must match");
    }

    #[test]
    fn every_module_import_names_an_embedded_file() {
        for asset in ASSETS.iter().filter(|a| a.path.ends_with(".js")) {
            let text = std::str::from_utf8(asset.bytes).unwrap();
            let dir = Path::new(asset.path).parent().unwrap();
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let target = line.rsplit(" from ").next().unwrap().trim().trim_end_matches(';').trim_matches(|c| c == '"' || c == '\'');
                let joined = dir.join(target);
                let mut parts: Vec<&str> = Vec::new();
                for c in joined.components() {
                    match c.as_os_str().to_str().unwrap() {
                        "." => {}
                        ".." => {
                            parts.pop();
                        }
                        p => parts.push(p),
                    }
                }
                let resolved = parts.join("/");
                assert!(find(&resolved).is_some(), "{} imports {target} ({resolved}), which is not embedded", asset.path);
            }
        }
    }
}
