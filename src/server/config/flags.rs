//! Every setting as a flag, with its default, range and variable: the one
//! definition `banter --help`, the environment and the settings file all
//! go through (see the parent module).

use std::{
    net::{IpAddr, SocketAddr},
    path::PathBuf,
};

use clap::Parser;
use ipnet::IpNet;

use super::build;

/// Command line and environment: every setting, its default and its
/// variable. The settings file uses the same names in kebab-case.
#[derive(Debug, Parser)]
#[command(
    name = "banter",
    version,
    about = "Banter: a real-time chat server (Leptos + axum)",
    long_about = "Banter: a real-time chat server (Leptos + axum).\n\n\
        Settings come from the config file (Leptos.toml by default), then \
        BANTER_* environment variables, then flags; the later wins."
)]
pub(super) struct Cli {
    /// Settings file (TOML, kebab-case keys as the flags below). A missing
    /// default file is fine; a missing named file is an error.
    #[arg(long, env = "BANTER_CONFIG", value_name = "FILE")]
    pub(super) config: Option<PathBuf>,

    /// Address to listen on.
    #[arg(
        long,
        env = "BANTER_ADDR",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:3000"
    )]
    pub(super) addr: SocketAddr,

    /// Directory for Banter's data; created if missing.
    #[arg(
        long,
        env = "BANTER_DATA_DIR",
        value_name = "DIR",
        default_value = "data"
    )]
    pub(super) data_dir: PathBuf,

    /// Directory holding the built site (the WASM, JS, CSS and assets).
    /// Defaults to where cargo-leptos wrote it, relative to the repository.
    #[arg(long, env = "BANTER_SITE_ROOT", value_name = "DIR", default_value = build::BUILT_SITE_ROOT)]
    pub(super) site_root: PathBuf,

    /// Log filter, in tracing's EnvFilter syntax (e.g. `info,banter=debug`).
    #[arg(
        long,
        env = "BANTER_LOG",
        value_name = "FILTER",
        default_value = "info"
    )]
    pub(super) log: String,

    /// How often, at most, presence changes are sent (milliseconds).
    /// Coalescing joins and leaves keeps a join burst from costing O(N²).
    #[arg(
        long,
        env = "BANTER_PRESENCE_INTERVAL_MS",
        value_name = "MS",
        default_value_t = 100,
        value_parser = clap::value_parser!(u64).range(1..=60_000)
    )]
    pub(super) presence_interval_ms: u64,

    /// A client whose socket accepts nothing for this long (it stopped
    /// reading: a frozen tab, a dead network) is disconnected, so it holds
    /// no memory and can reconnect (milliseconds).
    #[arg(
        long,
        env = "BANTER_STALL_TIMEOUT_MS",
        value_name = "MS",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(1..=600_000)
    )]
    pub(super) stall_timeout_ms: u64,

    /// Where messages are kept: `sqlite` (a file in the data directory;
    /// history survives restarts) or `off` (nothing kept beyond the last
    /// page per room in memory; for measuring what storage costs).
    #[arg(
        long,
        env = "BANTER_STORAGE",
        value_name = "KIND",
        value_enum,
        default_value_t = StorageKind::Sqlite
    )]
    pub(super) storage: StorageKind,

    /// When a stored message counts as written: `full` (fsynced before its
    /// sender is told it was sent, so it survives power loss; the room is
    /// shown it once it is committed, before the fsync) or `normal`
    /// (written to the OS before anyone is shown it; survives a crash of
    /// Banter, and a power cut may lose the last moments; no fsync per
    /// message).
    #[arg(
        long,
        env = "BANTER_SQLITE_SYNC",
        value_name = "MODE",
        value_enum,
        default_value_t = SqliteSync::Full
    )]
    pub(super) sqlite_sync: SqliteSync,

    /// Shared secrets a client must present to open a socket (as
    /// `Authorization: Bearer T`, `X-WS-Auth-Key: T` or `?accessToken=T`).
    /// None: no authentication. Comma-separated; never logged.
    #[arg(
        long,
        env = "BANTER_AUTH_TOKENS",
        value_name = "TOKEN,…",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub(super) auth_tokens: Vec<String>,

    /// Origins, besides the server's own, whose pages may open sockets
    /// (e.g. `https://chat.example.com`); `*` allows any. Requests without
    /// an Origin header (non-browser clients) are always allowed.
    #[arg(
        long,
        env = "BANTER_ALLOWED_ORIGINS",
        value_name = "ORIGIN,…",
        value_delimiter = ','
    )]
    pub(super) allowed_origins: Vec<String>,

    /// Reverse proxies or load balancers (addresses or CIDR ranges, e.g.
    /// `127.0.0.1,10.0.0.0/8`) whose `X-Forwarded-For` (or, without it,
    /// `Forwarded`) header names the client. Per-address limits and logs
    /// then use that address. From any other peer the headers are ignored.
    #[arg(
        long,
        env = "BANTER_TRUSTED_PROXIES",
        value_name = "ADDR|CIDR,…",
        value_delimiter = ',',
        value_parser = parse_trusted
    )]
    pub(super) trusted_proxies: Vec<IpNet>,

    /// Cluster mode: the Redis that carries the live path (ids, fan-out,
    /// presence) for every Banter process, e.g. `redis://127.0.0.1:6379/`.
    /// Set with `database-url`; the embedded SQLite store is then unused.
    #[arg(
        long,
        env = "BANTER_REDIS_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub(super) redis_url: Option<String>,

    /// Cluster mode: the PostgreSQL database that keeps the history, e.g.
    /// `postgres://banter@127.0.0.1/banter`. Set with `redis-url`.
    #[arg(
        long,
        env = "BANTER_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    pub(super) database_url: Option<String>,

    /// Copy the embedded store's history (DATA-DIR/banter.sqlite3) into
    /// `database-url`, keeping every id, then exit. Safe to run twice. Run
    /// it before the first cluster start, which continues each room's ids
    /// above the imported ones.
    #[arg(long)]
    pub(super) import_sqlite: bool,

    /// Run the help bot: `helpbot` in room `help`, greeting newcomers and
    /// answering from `help-bot-keywords` (and mentions of @helpbot in
    /// other rooms). It connects as an ordinary client.
    #[arg(long, env = "BANTER_HELP_BOT")]
    pub(super) help_bot: bool,

    /// The help bot's keyword table (TOML). Without the file, the built-in
    /// table (the repository's help-bot.toml) is used; a file that cannot
    /// be read as one stops the server, naming the line.
    #[arg(
        long,
        env = "BANTER_HELP_BOT_KEYWORDS",
        value_name = "FILE",
        default_value = "help-bot.toml"
    )]
    pub(super) help_bot_keywords: PathBuf,

    /// The server the help bot talks to, as ws:// or wss://; by default
    /// this one (its own listening address).
    #[arg(long, env = "BANTER_HELP_BOT_SERVER", value_name = "URL")]
    pub(super) help_bot_server: Option<String>,

    /// Most sockets open at once; beyond it a handshake gets 503.
    #[arg(
        long,
        env = "BANTER_MAX_CONNECTIONS",
        value_name = "N",
        default_value_t = 20_000,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub(super) max_connections: u32,

    /// Most sockets open at once from one IP address; beyond it 429. One
    /// address can be a whole office or a carrier's NAT: 1,000 lets such a
    /// crowd in and still stops one abuser well short of the total.
    #[arg(
        long,
        env = "BANTER_MAX_CONNECTIONS_PER_IP",
        value_name = "N",
        default_value_t = 1_000,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub(super) max_connections_per_ip: u32,

    /// Socket handshakes accepted per second from one IP address, on
    /// average; beyond it 429 with Retry-After. With the burst, 300 people
    /// behind one address are all back within about 5 s of a restart.
    #[arg(
        long,
        env = "BANTER_HANDSHAKE_RATE",
        value_name = "PER_SECOND",
        default_value_t = 50,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub(super) handshake_rate: u32,

    /// Handshakes one IP address may make at once before the rate applies
    /// (a page reload, a reconnect after a server restart).
    #[arg(
        long,
        env = "BANTER_HANDSHAKE_BURST",
        value_name = "N",
        default_value_t = 100,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub(super) handshake_burst: u32,

    /// A connection that has not sent a complete request head within this
    /// long is dropped (milliseconds), so idle or trickling connections
    /// cannot pile up.
    #[arg(
        long,
        env = "BANTER_HANDSHAKE_TIMEOUT_MS",
        value_name = "MS",
        default_value_t = 5_000,
        value_parser = clap::value_parser!(u64).range(1..=600_000)
    )]
    pub(super) handshake_timeout_ms: u64,

    /// Client events accepted per second on one socket, on average; above
    /// it the client is told to slow down, and closed (1008) if it keeps on.
    #[arg(
        long,
        env = "BANTER_MESSAGE_RATE",
        value_name = "PER_SECOND",
        default_value_t = crate::protocol::DEFAULT_MESSAGE_RATE,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub(super) message_rate: u32,

    /// Client events one socket may send at once before the rate applies.
    #[arg(
        long,
        env = "BANTER_MESSAGE_BURST",
        value_name = "N",
        default_value_t = crate::protocol::DEFAULT_MESSAGE_BURST,
        value_parser = clap::value_parser!(u32).range(1..)
    )]
    pub(super) message_burst: u32,

    /// After a socket is closed for flooding, its name is refused from its
    /// IP address for this long (milliseconds; 0: not at all), and the
    /// address's other new sockets start without a burst meanwhile, so
    /// reconnecting does not buy a flooder a fresh burst. Everyone else at
    /// the address goes on connecting and chatting.
    #[arg(
        long,
        env = "BANTER_FLOOD_COOLDOWN_MS",
        value_name = "MS",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(0..=3_600_000)
    )]
    pub(super) flood_cooldown_ms: u64,

    /// How often the server pings each client (milliseconds).
    #[arg(
        long,
        env = "BANTER_PING_INTERVAL_MS",
        value_name = "MS",
        default_value_t = 30_000,
        value_parser = clap::value_parser!(u64).range(1..=3_600_000)
    )]
    pub(super) ping_interval_ms: u64,

    /// A client that has not answered a ping within this long is dropped
    /// and leaves the user list (milliseconds).
    #[arg(
        long,
        env = "BANTER_PING_TIMEOUT_MS",
        value_name = "MS",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u64).range(1..=3_600_000)
    )]
    pub(super) ping_timeout_ms: u64,
}

/// See the `--sqlite-sync` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SqliteSync {
    Full,
    Normal,
}

/// Where messages are kept. See the `--storage` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum StorageKind {
    Sqlite,
    Off,
}

/// A `trusted-proxies` entry: an address (`10.0.0.7`, `::1`) or a range
/// (`10.0.0.0/8`, `fd00::/8`).
pub(crate) fn parse_trusted(entry: &str) -> Result<IpNet, String> {
    let entry = entry.trim();
    if let Ok(net) = entry.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    entry
        .parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("{entry:?} is not an IP address or a CIDR range (like 10.0.0.0/8)"))
}
