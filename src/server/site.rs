//! The built site: the Leptos options the page is rendered with, and the
//! static files (WASM, JS, CSS, assets) that cargo-leptos wrote.
//!
//! Build settings are defined once, in `Cargo.toml`'s
//! `[package.metadata.leptos]`. cargo-leptos passes them to the compiler as
//! `LEPTOS_*` variables, and this module bakes them in with `option_env!`:
//! the release binary then knows its output name, pkg directory and whether
//! file names are hashed without any configuration, and `cargo leptos watch`
//! (which sets the same variables at run time) agrees with it.

use std::path::Path;

use axum::{
    Router,
    http::{HeaderValue, header},
};
use leptos::config::LeptosOptions;
use tower_http::{
    compression::CompressionLayer, services::ServeDir, set_header::SetResponseHeaderLayer,
};

/// The site root cargo-leptos built into (`site-root`), relative to the
/// repository; the default of the `site-root` setting.
pub const BUILT_SITE_ROOT: &str = match option_env!("LEPTOS_SITE_ROOT") {
    Some(root) => root,
    None => "target/site",
};
const OUTPUT_NAME: &str = match option_env!("LEPTOS_OUTPUT_NAME") {
    Some(name) => name,
    None => "banter",
};
const PKG_DIR: &str = match option_env!("LEPTOS_SITE_PKG_DIR") {
    Some(dir) => dir,
    None => "pkg",
};
const HASH_FILE_NAME: &str = match option_env!("LEPTOS_HASH_FILE_NAME") {
    Some(name) => name,
    None => "hash.txt",
};
const HASH_FILES: bool = match option_env!("LEPTOS_HASH_FILES") {
    Some(value) => matches!(value.as_bytes(), [b't', b'r', b'u', b'e']),
    None => false,
};

/// A year: hashed file names change whenever their content does, so a
/// browser may keep them as long as it likes.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Unhashed files (a debug build) must be revalidated, or a rebuild would
/// leave browsers running stale WASM.
const REVALIDATE: &str = "no-cache";

/// Options for rendering the page, from the build plus the run-time site root.
pub fn leptos_options(site_root: &Path, addr: std::net::SocketAddr) -> LeptosOptions {
    // cargo-leptos sets the reload port at run time under `watch`; otherwise
    // the auto-reload script is not rendered and the value does not matter.
    let reload_port = std::env::var("LEPTOS_RELOAD_PORT")
        .ok()
        .and_then(|port| port.parse().ok())
        .unwrap_or(3001);
    LeptosOptions::builder()
        .output_name(OUTPUT_NAME)
        .site_root(site_root.to_string_lossy().as_ref())
        .site_pkg_dir(PKG_DIR)
        .site_addr(addr)
        .reload_port(reload_port)
        .hash_files(HASH_FILES)
        .hash_file(std::sync::Arc::<str>::from(HASH_FILE_NAME))
        .build()
}

/// Serves `<site_root>/<pkg>`, the WASM, JS and CSS bundles: compressed
/// (brotli or gzip, as the browser accepts) and with cache headers that match
/// whether their names are content-hashed.
pub fn pkg_router<S>(site_root: &Path) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let cache_control = if HASH_FILES { IMMUTABLE } else { REVALIDATE };
    let route = format!("/{}", PKG_DIR.trim_matches('/'));
    Router::new()
        .nest_service(&route, ServeDir::new(site_root.join(PKG_DIR)))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache_control),
        ))
        .layer(CompressionLayer::new())
}
