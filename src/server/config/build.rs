//! What the build baked in: the Leptos settings of `Cargo.toml`.
//!
//! Build settings are defined once, in `Cargo.toml`'s
//! `[package.metadata.leptos]`. cargo-leptos passes them to the compiler as
//! `LEPTOS_*` variables, and this module bakes them in with `option_env!`:
//! the release binary then knows its output name, pkg directory and whether
//! file names are hashed without any configuration, and `cargo leptos watch`
//! (which sets the same variables at run time) agrees with it.

use std::path::Path;

use leptos::config::LeptosOptions;

/// The site root cargo-leptos built into (`site-root`), relative to the
/// repository; the default of the `site-root` setting.
pub(crate) const BUILT_SITE_ROOT: &str = match option_env!("LEPTOS_SITE_ROOT") {
    Some(root) => root,
    None => "target/site",
};
pub(crate) const OUTPUT_NAME: &str = match option_env!("LEPTOS_OUTPUT_NAME") {
    Some(name) => name,
    None => "banter",
};
pub(crate) const PKG_DIR: &str = match option_env!("LEPTOS_SITE_PKG_DIR") {
    Some(dir) => dir,
    None => "pkg",
};
pub(crate) const HASH_FILE_NAME: &str = match option_env!("LEPTOS_HASH_FILE_NAME") {
    Some(name) => name,
    None => "hash.txt",
};
pub(crate) const HASH_FILES: bool = match option_env!("LEPTOS_HASH_FILES") {
    Some(value) => matches!(value.as_bytes(), [b't', b'r', b'u', b'e']),
    None => false,
};

/// Options for rendering the page, from the build plus the run-time site root.
pub(crate) fn leptos_options(site_root: &Path, addr: std::net::SocketAddr) -> LeptosOptions {
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
