//! The `banter` server binary: read the configuration, bind, serve until
//! Ctrl-C or SIGTERM. Everything else lives in `banter::server`.

#[cfg(feature = "ssr")]
#[tokio::main]
async fn main() -> std::process::ExitCode {
    banter::server::main().await
}

/// Without `ssr` the crate is only the WASM library; cargo still wants a
/// `main` for the bin target.
#[cfg(not(feature = "ssr"))]
fn main() {}
