//! The UI's files, embedded at compile time, each compressed once on first use.
//!
//! They are plain ES modules with no build step (ADR 0007), so the files in `assets/`
//! are exactly what the browser runs. Every file there must be listed in [`FILES`]; a
//! test fails on a file that is missing from the list.

use std::sync::OnceLock;

use flate2::write::GzEncoder;
use flate2::Compression;

pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset { name: $name, content_type: $type, bytes: include_bytes!(concat!("../assets/", $name)) }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

pub const FILES: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("format.js", JS),
    asset!("model.js", JS),
    asset!("analysis.js", JS),
    asset!("search.js", JS),
    asset!("scatter.js", JS),
    asset!("trace.js", JS),
    asset!("timeline.js", JS),
    asset!("minimap.js", JS),
    asset!("detail.js", JS),
    asset!("compare.js", JS),
    asset!("deps.js", JS),
    asset!("complete.js", JS),
    asset!("traceql.js", JS),
    asset!("metrics.js", JS),
];

pub fn find(name: &str) -> Option<&'static Asset> {
    FILES.iter().find(|a| a.name == name)
}

/// One short id for this set of files: it names the asset path, so a new binary's
/// files never mix with a browser's cached copies of the old ones.
pub fn build_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        // FNV-1a over names and contents: stable across builds of the same files.
        let mut hash = tracekeeper_model::hash::Fnv1a64::default();
        for asset in FILES {
            hash.update(asset.name.as_bytes());
            hash.update(&[0]);
            hash.update(asset.bytes);
        }
        format!("{:016x}", hash.value())
    })
}

/// The gzip form of each file, by its index in [`FILES`].
pub fn gzipped(index: usize) -> &'static [u8] {
    static GZ: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    &GZ.get_or_init(|| {
        FILES
            .iter()
            .map(|asset| {
                use std::io::Write;
                let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
                // Writing to a Vec cannot fail.
                let _ = encoder.write_all(asset.bytes);
                encoder.finish().unwrap_or_default()
            })
            .collect()
    })[index]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_in_the_assets_folder_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
        let mut on_disk: Vec<String> =
            std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        on_disk.sort();
        let mut listed: Vec<String> = FILES.iter().map(|a| a.name.to_string()).collect();
        listed.sort();
        assert_eq!(listed, on_disk, "ui/src/assets.rs FILES must list exactly the files in ui/assets");
    }

    #[test]
    fn gzip_round_trips_every_file() {
        use std::io::Read;
        for (i, asset) in FILES.iter().enumerate() {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(gzipped(i)).read_to_end(&mut out).unwrap();
            assert_eq!(out, asset.bytes, "{}", asset.name);
        }
    }
}
