//! The `banter` server binary: read the configuration, bind, serve until
//! Ctrl-C or SIGTERM. Everything else lives in `banter::server`.

/// jemalloc rather than the system's allocator, for where it puts things:
/// it keeps objects of one size class together in their own pages, where
/// glibc's malloc interleaves each connection's allocations. A room's
/// fan-out visits every member's connection state once per message, one
/// `send(2)` apart; scattered over a page per member (1,000 members: a few
/// thousand pages, more than the TLB holds) each visit was a TLB miss (perf,
/// issue 12: the prefetch of the next member's state was 1.5% of the
/// server, 0.2% with jemalloc). Idle memory also fell, 11.4 → 10.4 KiB per
/// client.
#[cfg(feature = "ssr")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[cfg(feature = "ssr")]
#[tokio::main]
async fn main() -> std::process::ExitCode {
    banter::server::main().await
}

/// Without `ssr` the crate is only the WASM library; cargo still wants a
/// `main` for the bin target.
#[cfg(not(feature = "ssr"))]
fn main() {}
