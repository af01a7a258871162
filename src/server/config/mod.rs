//! How a running Banter is configured.
//!
//! Each setting has one definition here, with its default, and is read from
//! three layers, the later winning:
//!
//! 1. `Leptos.toml` (or the file named by `--config` / `BANTER_CONFIG`),
//! 2. an environment variable `BANTER_*`,
//! 3. a command-line flag `--*`.
//!
//! clap owns layers 2 and 3 and the defaults, so `banter --help` documents
//! every setting with its default and variable; the file only fills in what
//! clap would otherwise have taken from a default.
//!
//! Why Banter reads `Leptos.toml` itself rather than through
//! `leptos_config::get_configuration`: that function only accepts a file with
//! a `[package.metadata.leptos]` header and requires build settings
//! (`output-name`) in it, which would then be written twice — once for
//! cargo-leptos in `Cargo.toml`, once here. Build settings stay in
//! `Cargo.toml` (see [`build`]); run-time settings live only here.

pub(crate) mod build;
mod flags;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use clap::{CommandFactory, FromArgMatches};

use flags::Cli;
#[cfg(test)]
pub(crate) use flags::parse_trusted;
pub(crate) use flags::{SqliteSync, StorageKind};

/// Where the settings file is looked for when none is named.
const DEFAULT_CONFIG_FILE: &str = "Leptos.toml";

/// The resolved configuration a server runs with.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Address the HTTP and WebSocket listener binds.
    pub(crate) addr: SocketAddr,
    /// Where Banter keeps its data.
    pub(crate) data_dir: PathBuf,
    /// Where the built site (pkg/, assets) is served from.
    pub(crate) site_root: PathBuf,
    /// tracing filter directive.
    pub(crate) log: String,
    /// Minimum spacing of presence broadcasts.
    pub(crate) presence_interval: Duration,
    /// Where messages are kept.
    pub(crate) storage: StorageKind,
    /// When a message counts as stored.
    pub(crate) sqlite_sync: SqliteSync,
    /// Who may open a socket: tokens and origins.
    pub(crate) access: AccessSettings,
    /// How many sockets, how fast, and how long a handshake may take.
    pub(crate) limits: Limits,
    /// The per-socket flood limit and keepalive.
    pub(crate) socket: SocketSettings,
    /// Proxies whose forwarding headers name the client.
    pub(crate) trusted_proxies: Vec<ipnet::IpNet>,
    /// Set: cluster mode, through these.
    pub(crate) cluster: Option<ClusterSettings>,
    /// Not serving: copy the SQLite history into this PostgreSQL, then exit.
    pub(crate) import_sqlite_into: Option<String>,
    /// Set: run the help bot.
    pub(crate) help_bot: Option<HelpBotSettings>,
}

/// See `--help-bot`.
#[derive(Debug, Clone)]
pub(crate) struct HelpBotSettings {
    pub(crate) keywords: PathBuf,
    /// `None`: this server's own address.
    pub(crate) server: Option<String>,
}

/// Where a cluster keeps its shared state. No `Debug` of the URLs: they
/// may hold passwords.
#[derive(Clone)]
pub(crate) struct ClusterSettings {
    pub(crate) redis_url: String,
    pub(crate) database_url: String,
}

impl std::fmt::Debug for ClusterSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterSettings { .. }")
    }
}

/// Who may open a socket. See `--auth-tokens` and `--allowed-origins`.
#[derive(Clone, Default)]
pub(crate) struct AccessSettings {
    /// Empty: no token needed.
    pub(crate) tokens: Vec<String>,
    /// Origins allowed besides the server's own; `*` allows any.
    pub(crate) allowed_origins: Vec<String>,
}

/// Tokens are secrets: a `Debug` print of the configuration (a log line, a
/// panic message) must never show them.
impl std::fmt::Debug for AccessSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessSettings")
            .field("tokens", &format_args!("[{} hidden]", self.tokens.len()))
            .field("allowed_origins", &self.allowed_origins)
            .finish()
    }
}

/// Connection limits. See the `--max-connections*` and `--handshake-*` flags.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_connections: u32,
    pub(crate) max_connections_per_ip: u32,
    pub(crate) handshake_rate: u32,
    pub(crate) handshake_burst: u32,
    pub(crate) handshake_timeout: Duration,
    /// How long a name is refused from an address after its socket there
    /// was closed for flooding (zero: not at all).
    pub(crate) flood_cooldown: Duration,
    /// Messages per second all the sockets of one address may send
    /// together, on average and at once: [`PEOPLE_PER_ADDRESS`] times one
    /// socket's limit.
    pub(crate) address_message_rate: u32,
    pub(crate) address_message_burst: u32,
}

/// How many people flat out at the per-socket message limit one address's
/// budget allows at once. Chat from a crowd behind one NAT is far below
/// it; what it stops is many sockets each flooding just under their own
/// limit.
pub(crate) const PEOPLE_PER_ADDRESS: u32 = 20;

/// What each socket is held to. See `--message-*` and `--ping-*`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SocketSettings {
    /// How long a write may block before the client is dropped.
    pub(crate) stall_timeout: Duration,
    pub(crate) message_rate: u32,
    pub(crate) message_burst: u32,
    pub(crate) ping_interval: Duration,
    pub(crate) ping_timeout: Duration,
}

/// Why the configuration could not be loaded. Each message names the file
/// or setting at fault, because it is all a user sees before exit.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("config file {path}: unknown setting `{key}` (see `banter --help`)")]
    UnknownKey { path: PathBuf, key: String },
    #[error("command line: {0}")]
    Args(#[from] clap::Error),
    #[error(
        "cluster mode needs both redis-url and database-url (or neither, for the embedded default)"
    )]
    Cluster,
    #[error("--import-sqlite needs database-url: the PostgreSQL database to copy the history into")]
    ImportWhere,
}

impl Config {
    /// Reads flags from the process arguments. `--help` and `--version`
    /// print and exit here, as do malformed flags (with clap's message).
    pub(crate) fn from_args() -> Result<Self, ConfigError> {
        match Self::try_from_iter(std::env::args_os()) {
            Err(ConfigError::Args(err)) => err.exit(),
            other => other,
        }
    }

    /// Like [`Config::from_args`] with explicit arguments, for tests.
    ///
    /// The file is applied as new *defaults* for clap: each key must name a
    /// flag, its value is parsed and range-checked exactly as the flag's
    /// would be, and a variable or flag still wins over it. One definition
    /// per setting, whichever layer it comes from.
    pub(crate) fn try_from_iter<I, T>(args: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        let first = Cli::from_arg_matches(&Cli::command().try_get_matches_from(&args)?)?;
        let (path, required) = match &first.config {
            Some(path) => (path.clone(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
        };
        let mut command = Cli::command();
        for (key, value) in read_file(&path, required)? {
            let id = key.replace('-', "_");
            if id == "config"
                || !command
                    .get_arguments()
                    .any(|arg| arg.get_id() == id.as_str())
            {
                return Err(ConfigError::UnknownKey { path, key });
            }
            let text = file_value(&value).ok_or_else(|| ConfigError::Parse {
                path: path.clone(),
                message: format!("`{key}` must be a string, number or list, got {value}"),
            })?;
            command = command.mut_arg(id, |arg| arg.default_value(text));
        }
        let matches = command
            .try_get_matches_from(&args)
            .map_err(|err| ConfigError::Parse {
                path: path.clone(),
                // clap's first line names the setting and the bad value.
                message: err
                    .to_string()
                    .lines()
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches("error: ")
                    .to_string(),
            })?;
        let cli = Cli::from_arg_matches(&matches)?;
        match (&cli.redis_url, &cli.database_url, cli.import_sqlite) {
            (_, None, true) => return Err(ConfigError::ImportWhere),
            (_, _, true) => {}
            (Some(_), None, _) | (None, Some(_), _) => return Err(ConfigError::Cluster),
            _ => {}
        }
        Ok(cli.into())
    }
}

impl From<Cli> for Config {
    fn from(cli: Cli) -> Self {
        let stall_timeout = Duration::from_millis(cli.stall_timeout_ms);
        Config {
            addr: cli.addr,
            data_dir: cli.data_dir,
            site_root: cli.site_root,
            log: cli.log,
            presence_interval: Duration::from_millis(cli.presence_interval_ms),
            storage: cli.storage,
            sqlite_sync: cli.sqlite_sync,
            access: AccessSettings {
                tokens: trimmed(&cli.auth_tokens),
                allowed_origins: trimmed(&cli.allowed_origins),
            },
            limits: Limits {
                max_connections: cli.max_connections,
                max_connections_per_ip: cli.max_connections_per_ip,
                handshake_rate: cli.handshake_rate,
                handshake_burst: cli.handshake_burst,
                handshake_timeout: Duration::from_millis(cli.handshake_timeout_ms),
                flood_cooldown: Duration::from_millis(cli.flood_cooldown_ms),
                address_message_rate: cli.message_rate.saturating_mul(PEOPLE_PER_ADDRESS),
                address_message_burst: cli.message_burst.saturating_mul(PEOPLE_PER_ADDRESS),
            },
            socket: SocketSettings {
                stall_timeout,
                message_rate: cli.message_rate,
                message_burst: cli.message_burst,
                ping_interval: Duration::from_millis(cli.ping_interval_ms),
                ping_timeout: Duration::from_millis(cli.ping_timeout_ms),
            },
            trusted_proxies: cli.trusted_proxies,
            import_sqlite_into: cli
                .import_sqlite
                .then(|| cli.database_url.clone())
                .flatten(),
            help_bot: cli.help_bot.then(|| HelpBotSettings {
                keywords: cli.help_bot_keywords.clone(),
                server: cli.help_bot_server.clone(),
            }),
            cluster: match (cli.redis_url, cli.database_url) {
                (Some(redis_url), Some(database_url)) => Some(ClusterSettings {
                    redis_url,
                    database_url,
                }),
                _ => None,
            },
        }
    }
}

/// A comma-separated list as given ("a, b,,c"): each item trimmed, empty
/// ones dropped, so a space after a comma cannot make a token unusable.
fn trimmed(items: &[String]) -> Vec<String> {
    items
        .iter()
        .map(|item| item.trim().to_string())
        .filter(|item| !item.is_empty())
        .collect()
}

/// A file value as clap would read it from a flag: lists become the
/// comma-separated form the list flags take.
fn file_value(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(text) => Some(text.clone()),
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Array(items) => items
            .iter()
            .map(file_value)
            .collect::<Option<Vec<_>>>()
            .map(|items| items.join(",")),
        _ => None,
    }
}

fn read_file(path: &Path, required: bool) -> Result<toml::Table, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(toml::Table::new());
        }
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    text.parse::<toml::Table>()
        .map_err(|err| ConfigError::Parse {
            path: path.to_owned(),
            message: err.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file(contents: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(contents.as_bytes()).unwrap();
        f
    }

    fn load(args: &[&str]) -> Config {
        let mut all = vec!["banter"];
        all.extend_from_slice(args);
        Config::try_from_iter(all).unwrap()
    }

    #[test]
    fn file_overrides_defaults_and_flags_override_file() {
        let f = file("addr = \"127.0.0.1:4000\"\ndata-dir = \"/tmp/x\"\n");
        let path = f.path().to_str().unwrap();
        let from_file = load(&["--config", path]);
        assert_eq!(from_file.addr.port(), 4000);
        assert_eq!(from_file.data_dir, PathBuf::from("/tmp/x"));
        let from_flag = load(&["--config", path, "--addr", "127.0.0.1:5000"]);
        assert_eq!(from_flag.addr.port(), 5000);
        assert_eq!(from_flag.data_dir, PathBuf::from("/tmp/x"));
        assert_eq!(from_flag.storage, StorageKind::Sqlite);
        let f = file("storage = \"off\"\nsqlite-sync = \"normal\"\n");
        let off = load(&["--config", f.path().to_str().unwrap()]);
        assert_eq!(off.storage, StorageKind::Off);
        assert_eq!(off.sqlite_sync, SqliteSync::Normal);
        assert_eq!(from_flag.sqlite_sync, SqliteSync::Full);
    }

    #[test]
    fn unknown_keys_and_missing_named_files_are_errors() {
        let f = file("adr = \"127.0.0.1:4000\"\n");
        let err = Config::try_from_iter(["banter", "--config", f.path().to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown setting `adr`"), "{err}");
        let err = Config::try_from_iter(["banter", "--config", "/nonexistent/banter.toml"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/banter.toml"), "{err}");
    }

    #[test]
    fn file_values_are_checked_like_flags_and_lists_are_read() {
        let f = file("auth-tokens = [\"s3cret\", \"other\"]\nmessage-rate = 50\n");
        let config = load(&["--config", f.path().to_str().unwrap()]);
        assert_eq!(config.access.tokens, ["s3cret", "other"]);
        assert_eq!(config.socket.message_rate, 50);
        assert_eq!(config.limits.max_connections_per_ip, 1_000);
        // Secrets stay out of Debug output (and so out of logs).
        assert!(!format!("{config:?}").contains("s3cret"));
        let flag = load(&[
            "--config",
            f.path().to_str().unwrap(),
            "--auth-tokens",
            "a, b,,c",
        ]);
        assert_eq!(flag.access.tokens, ["a", "b", "c"]);

        let f = file("presence-interval-ms = 0\n");
        let err = Config::try_from_iter(["banter", "--config", f.path().to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("presence-interval-ms") && err.contains("0"),
            "{err}"
        );
        let f = file("storage = \"tape\"\n");
        let err = Config::try_from_iter(["banter", "--config", f.path().to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("tape"), "{err}");

        let f = file("trusted-proxies = [\"127.0.0.1\", \"10.0.0.0/8\"]\n");
        let config = load(&["--config", f.path().to_str().unwrap()]);
        let proxies: Vec<String> = config
            .trusted_proxies
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(proxies, ["127.0.0.1/32", "10.0.0.0/8"]);
        let f = file("trusted-proxies = [\"proxy.local\"]\n");
        let err = Config::try_from_iter(["banter", "--config", f.path().to_str().unwrap()])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("trusted-proxies") && err.contains("proxy.local"),
            "{err}"
        );
    }

    #[test]
    fn the_shipped_leptos_toml_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/Leptos.toml");
        let config = load(&["--config", path]);
        assert_eq!(config.addr.port(), 3000);
    }
}
