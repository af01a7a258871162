//! The server half (`ssr` feature only).
//!
//! # Layout
//!
//! By concern, each folder importing only those listed before it:
//! - [`config`]: settings from `Leptos.toml`, `BANTER_*` variables and flags.
//! - [`chat`]: this process's rooms: members, presence batches, the latest
//!   page and the fan-out of each; frames and who they are for.
//! - [`storage`]: the SQLite file, and the embedded engine's storage thread
//!   that keeps each message before its room is given it.
//! - [`hub`]: the one seam between connections and the shared chat: join,
//!   publish, typing, history, over this process's rooms and the engine of
//!   the mode it runs in.
//! - [`edge`]: the network edge: accept loop, access, admission, refusals,
//!   the WebSocket handler, each socket's reader and writer, flood limits.
//! - [`site`]: the built bundle, `/api/rooms`, `/healthz`.
//! - [`bot`]: the optional help bot, a client of this server like any other.
//! - [`shutdown`]: the signal, and draining connections with 1001.
//!
//! This module wires them: [`AppState`], the [`router`], [`serve`] and the
//! binary's [`main`].

pub(crate) mod bot;
pub(crate) mod chat;
pub(crate) mod cluster;
pub(crate) mod config;
pub(crate) mod edge;
pub(crate) mod hub;
pub(crate) mod metrics;
pub(crate) mod send_ring;
pub(crate) mod shutdown;
pub(crate) mod site;
pub(crate) mod storage;

use std::{process::ExitCode, sync::Arc};

use axum::{Router, extract::FromRef, routing::get};
use leptos::config::LeptosOptions;
use leptos_axum::{LeptosRoutes, generate_route_list};
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use tower_http::compression::CompressionLayer;
use tracing::{error, info};

use crate::{
    app::{App, shell},
    protocol::WS_PATH,
};
use chat::presence;
use config::Config;
use edge::{accept, access, admission, ws};
use hub::Hub;
use site::{bundle, health, room_list};

/// Everything a request handler may need, cloned cheaply into each one.
#[derive(Clone)]
pub(crate) struct AppState {
    /// How to render the page and where the built bundle is.
    pub(crate) leptos_options: LeptosOptions,
    /// Who is connected, and where: the rooms and their members.
    pub(crate) hub: Arc<Hub>,
    /// Fired once, on shutdown: stop accepting, stop reading.
    pub(crate) shutdown: CancellationToken,
    /// Fired once everything accepted before shutdown is stored and in the
    /// rooms: writers send what is left and close with 1001.
    pub(crate) goodbye: CancellationToken,
    /// Every connection task, so shutdown can wait for their goodbyes.
    pub(crate) connections: TaskTracker,
    /// Who may connect: origins and tokens.
    pub(crate) access: Arc<access::Access>,
    /// How many may connect, and how fast.
    pub(crate) admission: Arc<admission::Admission>,
    /// What each socket is held to: stalls, floods, keepalive.
    pub(crate) socket: config::SocketSettings,
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

impl FromRef<AppState> for Arc<Hub> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.hub)
    }
}

impl FromRef<AppState> for Arc<access::Access> {
    fn from_ref(state: &AppState) -> Self {
        Arc::clone(&state.access)
    }
}

impl FromRef<AppState> for ws::Endpoint {
    fn from_ref(state: &AppState) -> Self {
        ws::Endpoint {
            hub: Arc::clone(&state.hub),
            access: Arc::clone(&state.access),
            admission: Arc::clone(&state.admission),
            signals: edge::connection::Signals {
                shutdown: state.shutdown.clone(),
                goodbye: state.goodbye.clone(),
            },
            connections: state.connections.clone(),
            settings: state.socket,
        }
    }
}

impl AppState {
    /// Opens storage (creating the database on first start); fails with a
    /// clear error if it cannot.
    pub(crate) async fn new(config: &Config) -> Result<Self, hub::StartError> {
        Ok(AppState {
            leptos_options: config::build::leptos_options(&config.site_root, config.addr),
            hub: Arc::new(Hub::open(config).await?),
            shutdown: CancellationToken::new(),
            goodbye: CancellationToken::new(),
            connections: TaskTracker::new(),
            access: Arc::new(access::Access::new(config.access.clone())),
            admission: admission::Admission::new(config.limits),
            socket: config.socket,
        })
    }
}

/// The whole HTTP surface. Separate from [`serve`] so tests can build the
/// same router.
pub(crate) fn router(state: AppState) -> Router {
    let site_root = std::path::PathBuf::from(&*state.leptos_options.site_root);
    let page = {
        let options = state.leptos_options.clone();
        move || shell(options.clone())
    };
    let pages = Router::new()
        .leptos_routes(&state, generate_route_list(App), page.clone())
        // Rooms are one pattern the app matches itself (it has no router
        // for leptos_axum to list); an invalid name renders the 404 page
        // with a 404 status.
        .route("/r/{room}", get(leptos_axum::render_app_to_stream(page)))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(CompressionLayer::new())
        // A WebSocket on a page address is a plain-text chat: taken before
        // compression and rendering see it.
        .layer(axum::middleware::from_fn_with_state(
            ws::Endpoint::from_ref(&state),
            ws::page_or_plain_text,
        ));
    // The socket route is registered plainly, before the Leptos routes and
    // their fallback (leptos#4030), and is not wrapped in compression.
    Router::new()
        .route(WS_PATH, get(ws::start_web_socket))
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(health::metrics))
        .route(room_list::PATH, get(room_list::rooms))
        .merge(bundle::pkg_router(&site_root))
        .merge(pages)
        .with_state(state)
}

/// Serves until `state.shutdown` fires; then stores what was accepted,
/// sends it, closes every socket with 1001 and returns within
/// [`shutdown::GRACE`].
pub(crate) async fn serve(
    listener: TcpListener,
    config: &Config,
    state: AppState,
) -> std::io::Result<()> {
    let presence = {
        let hub = Arc::clone(&state.hub);
        tokio::spawn(presence::every(
            config.presence_interval,
            state.shutdown.clone(),
            move || hub.flush_presence(),
        ))
    };
    let shutdown = state.shutdown.clone();
    let goodbye = state.goodbye.clone();
    let connections = state.connections.clone();
    let hub = Arc::clone(&state.hub);
    let http = accept::serve(
        listener,
        router(state),
        config.limits.handshake_timeout,
        Arc::new(edge::client_addr::TrustedProxies::new(
            config.trusted_proxies.clone(),
        )),
        shutdown.clone(),
    )
    .await;
    // After the signal everything shares one deadline, so neither a hung
    // keep-alive nor a client that stopped reading can hold the exit.
    let deadline = tokio::time::Instant::now() + shutdown::GRACE;
    // Readers have stopped; whatever they accepted is stored and handed to
    // the rooms before anyone is told goodbye, so it goes out first.
    if tokio::time::timeout_at(deadline, hub.close())
        .await
        .is_err()
    {
        tracing::warn!("storage did not finish before the shutdown deadline");
    }
    goodbye.cancel();
    let _ = tokio::time::timeout_at(deadline, http.wait()).await;
    shutdown::drain(&connections, deadline).await;
    presence.abort();
    Ok(())
}

/// The `banter` binary.
pub async fn main() -> ExitCode {
    let config = match Config::from_args() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("banter: {err}");
            return ExitCode::from(2);
        }
    };
    init_tracing(&config.log);
    metrics::install();
    if let Some(database_url) = &config.import_sqlite_into {
        return import_sqlite(&config.data_dir, database_url).await;
    }
    // Before anything listens: a keyword file that cannot be used stops
    // the start, naming its line.
    let keywords = match &config.help_bot {
        Some(settings) => match bot::Keywords::load(&settings.keywords) {
            Ok(keywords) => Some(keywords),
            Err(err) => {
                error!(%err, "cannot start the help bot");
                eprintln!("banter: {err}");
                return ExitCode::FAILURE;
            }
        },
        None => None,
    };
    if let Err(err) = std::fs::create_dir_all(&config.data_dir) {
        error!(dir = %config.data_dir.display(), %err, "cannot create the data directory");
        return ExitCode::FAILURE;
    }
    let listener = match TcpListener::bind(config.addr).await {
        Ok(listener) => listener,
        Err(err) => {
            error!(addr = %config.addr, %err, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().unwrap_or(config.addr);
    let state = match AppState::new(&config).await {
        Ok(state) => state,
        Err(err) => {
            error!(%err, "cannot start");
            eprintln!("banter: {err}");
            return ExitCode::FAILURE;
        }
    };
    if std::path::Path::new(&*state.leptos_options.site_root).is_dir() {
        let site_root = config.site_root.clone();
        // A plain thread, not spawn_blocking: the runtime would wait for it
        // at exit, and brotli at quality 11 must never delay a shutdown.
        let spawned = std::thread::Builder::new()
            .name("precompress".into())
            .spawn(move || match bundle::precompress(&site_root) {
                Ok(0) => {}
                Ok(n) => info!(files = n, "precompressed the bundle"),
                Err(err) => {
                    tracing::warn!(%err, "cannot precompress the bundle; compressing on the fly")
                }
            });
        if let Err(err) = spawned {
            tracing::warn!(%err, "cannot start precompression; compressing on the fly");
        }
    } else {
        tracing::warn!(
            site_root = %config.site_root.display(),
            "site root not found: pages will render without their WASM, JS and CSS \
             (build with `cargo leptos build --release`, or pass --site-root)"
        );
    }
    info!(%addr, data_dir = %config.data_dir.display(), "Banter is running at http://{addr}/");
    println!("Banter is running at http://{addr}/  (Ctrl-C to stop)");
    if let (Some(keywords), Some(settings)) = (keywords, &config.help_bot) {
        // Its own address, reached over loopback when it listens on all.
        let server = settings.server.clone().unwrap_or_else(|| {
            let mut own = addr;
            if own.ip().is_unspecified() {
                own.set_ip(if own.is_ipv4() {
                    std::net::Ipv4Addr::LOCALHOST.into()
                } else {
                    std::net::Ipv6Addr::LOCALHOST.into()
                });
            }
            format!("ws://{own}")
        });
        let token = config.access.tokens.first().cloned();
        tokio::spawn(bot::run(server, token, keywords, state.shutdown.clone()));
    }
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        shutdown::signal().await;
        shutdown.cancel();
    });
    match serve(listener, &config, state).await {
        Ok(()) => {
            info!("stopped");
            ExitCode::SUCCESS
        }
        Err(err) => {
            error!(%err, "server failed");
            ExitCode::FAILURE
        }
    }
}

/// `banter --import-sqlite`: the embedded history into PostgreSQL.
async fn import_sqlite(data_dir: &std::path::Path, database_url: &str) -> ExitCode {
    match storage::import::import(data_dir, database_url).await {
        Ok(done) => {
            println!(
                "imported {} messages into PostgreSQL ({} new, {} already there)",
                done.read,
                done.new,
                done.read - done.new
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("banter: {err}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).unwrap_or_else(|err| {
        eprintln!("banter: invalid log filter {filter:?} ({err}); using \"info\"");
        tracing_subscriber::EnvFilter::new("info")
    });
    tracing_subscriber::fmt().with_env_filter(filter).init();
}
