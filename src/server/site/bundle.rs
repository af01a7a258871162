//! The built site's static files (WASM, JS, CSS, assets) that cargo-leptos
//! wrote, served with cache headers and compression.

use std::path::Path;

use axum::{
    Router,
    http::{HeaderValue, header},
};
use tower_http::{
    compression::CompressionLayer, services::ServeDir, set_header::SetResponseHeaderLayer,
};

use crate::server::config::build::{HASH_FILES, PKG_DIR};

/// A year: hashed file names change whenever their content does, so a
/// browser may keep them as long as it likes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Unhashed files (a debug build) must be revalidated, or a rebuild would
/// leave browsers running stale WASM.
const REVALIDATE: &str = "no-cache";

/// Serves `<site_root>/<pkg>`, the WASM, JS and CSS bundles: compressed
/// (brotli or gzip, as the browser accepts) and with cache headers that match
/// whether their names are content-hashed. Files [`precompress`]ed at start
/// are sent as they are; anything else is compressed on the fly.
pub(crate) fn pkg_router<S>(site_root: &Path) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let cache_control = if HASH_FILES { IMMUTABLE } else { REVALIDATE };
    let route = format!("/{}", PKG_DIR.trim_matches('/'));
    Router::new()
        .nest_service(
            &route,
            ServeDir::new(site_root.join(PKG_DIR))
                .precompressed_br()
                .precompressed_gzip(),
        )
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        ))
        .layer(CompressionLayer::new())
}

/// Bundle files worth compressing.
const COMPRESSIBLE: [&str; 3] = ["wasm", "js", "css"];

/// Writes `.br` (quality 11) and `.gz` (level 9) next to each bundle file in
/// `<site_root>/<pkg>` that lacks an up-to-date one.
///
/// Why at start: cargo-leptos does not emit them, and on-the-fly compression
/// must use a fast level for every request (225 KB of brotli for the WASM
/// instead of 185 KB at quality 11). Runs once per build, in a blocking task;
/// until it finishes, or if the directory is read-only, requests fall back to
/// on-the-fly compression.
pub(crate) fn precompress(site_root: &Path) -> std::io::Result<usize> {
    let dir = site_root.join(PKG_DIR);
    let mut written = 0;
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let wanted = path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| COMPRESSIBLE.contains(&e));
        if !wanted {
            continue;
        }
        let modified = std::fs::metadata(&path)?.modified()?;
        for (suffix, compress) in [
            ("br", brotli_11 as fn(&[u8]) -> std::io::Result<Vec<u8>>),
            ("gz", gzip_9),
        ] {
            let target = path.with_extension(format!(
                "{}.{suffix}",
                path.extension()
                    .and_then(|e| e.to_str())
                    .unwrap_or_default()
            ));
            let fresh = std::fs::metadata(&target)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= modified);
            if fresh {
                continue;
            }
            let data = std::fs::read(&path)?;
            // Per process: two servers on one site must not share a temp file.
            let tmp = target.with_extension(format!("{suffix}.{}.tmp", std::process::id()));
            std::fs::write(&tmp, compress(&data)?)?;
            std::fs::rename(&tmp, &target)?;
            written += 1;
        }
    }
    Ok(written)
}

fn brotli_11(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(data.len() / 3);
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: 22,
        ..Default::default()
    };
    brotli::BrotliCompress(&mut &data[..], &mut out, &params)?;
    Ok(out)
}

fn gzip_9(data: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(data)?;
    encoder.finish()
}
