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
//! `Cargo.toml` (see [`super::site`]); run-time settings live only here.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use clap::{CommandFactory, FromArgMatches, Parser, parser::ValueSource};
use serde::Deserialize;

use super::site;

/// Where the settings file is looked for when none is named.
const DEFAULT_CONFIG_FILE: &str = "Leptos.toml";

/// Command line and environment. Every field that the file may also set is
/// listed in [`FileSettings`] under the same (kebab-case) name.
#[derive(Debug, Parser)]
#[command(
    name = "banter",
    version,
    about = "Banter: a real-time chat server (Leptos + axum)",
    long_about = "Banter: a real-time chat server (Leptos + axum).\n\n\
        Settings come from the config file (Leptos.toml by default), then \
        BANTER_* environment variables, then flags; the later wins."
)]
struct Cli {
    /// Settings file (TOML, kebab-case keys as the flags below). A missing
    /// default file is fine; a missing named file is an error.
    #[arg(long, env = "BANTER_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Address to listen on.
    #[arg(
        long,
        env = "BANTER_ADDR",
        value_name = "HOST:PORT",
        default_value = "127.0.0.1:3000"
    )]
    addr: SocketAddr,

    /// Directory for Banter's data; created if missing.
    #[arg(
        long,
        env = "BANTER_DATA_DIR",
        value_name = "DIR",
        default_value = "data"
    )]
    data_dir: PathBuf,

    /// Directory holding the built site (the WASM, JS, CSS and assets).
    /// Defaults to where cargo-leptos wrote it, relative to the repository.
    #[arg(long, env = "BANTER_SITE_ROOT", value_name = "DIR", default_value = site::BUILT_SITE_ROOT)]
    site_root: PathBuf,

    /// Log filter, in tracing's EnvFilter syntax (e.g. `info,banter=debug`).
    #[arg(
        long,
        env = "BANTER_LOG",
        value_name = "FILTER",
        default_value = "info"
    )]
    log: String,

    /// How often, at most, presence changes are sent (milliseconds).
    /// Coalescing joins and leaves keeps a join burst from costing O(N²).
    #[arg(
        long,
        env = "BANTER_PRESENCE_INTERVAL_MS",
        value_name = "MS",
        default_value_t = 100,
        value_parser = clap::value_parser!(u64).range(1..=60_000)
    )]
    presence_interval_ms: u64,

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
    stall_timeout_ms: u64,

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
    storage: StorageKind,

    /// When a stored message counts as written: `full` (SQLite's
    /// synchronous=FULL: fsync before anyone is shown it; survives power
    /// loss) or `normal` (written to the OS before anyone is shown it;
    /// survives a crash of Banter, and a power cut may lose the last
    /// moments; no fsync on the message path, so lower latency).
    #[arg(
        long,
        env = "BANTER_SQLITE_SYNC",
        value_name = "MODE",
        value_enum,
        default_value_t = SqliteSync::Full
    )]
    sqlite_sync: SqliteSync,
}

/// See the `--sqlite-sync` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum SqliteSync {
    Full,
    Normal,
}

/// Where messages are kept. See the `--storage` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum StorageKind {
    Sqlite,
    Off,
}

/// The settings file. Unknown keys are refused so a typo is an error at
/// start rather than a setting silently ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct FileSettings {
    addr: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    site_root: Option<PathBuf>,
    log: Option<String>,
    presence_interval_ms: Option<u64>,
    stall_timeout_ms: Option<u64>,
    storage: Option<StorageKind>,
    sqlite_sync: Option<SqliteSync>,
}

/// The resolved configuration a server runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address the HTTP and WebSocket listener binds.
    pub addr: SocketAddr,
    /// Where Banter keeps its data.
    pub data_dir: PathBuf,
    /// Where the built site (pkg/, assets) is served from.
    pub site_root: PathBuf,
    /// tracing filter directive.
    pub log: String,
    /// Minimum spacing of presence broadcasts.
    pub presence_interval: Duration,
    /// How long a write to one client may block before it is dropped.
    pub stall_timeout: Duration,
    /// Where messages are kept.
    pub storage: StorageKind,
    /// When a message counts as stored.
    pub sqlite_sync: SqliteSync,
}

/// Why the configuration could not be loaded. Each message names the file
/// or setting at fault, because it is all a user sees before exit.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("presence-interval-ms in {path} must be between 1 and 60000, got {value}")]
    PresenceInterval { path: PathBuf, value: u64 },
}

impl Config {
    /// Reads flags from the process arguments. `--help` and `--version`
    /// print and exit here, as do malformed flags (with clap's message).
    pub fn from_args() -> Result<Self, ConfigError> {
        Self::from_matches(Cli::command().get_matches())
    }

    /// Like [`Config::from_args`] with explicit arguments, for tests.
    pub fn try_from_iter<I, T>(args: I) -> Result<Self, Box<dyn std::error::Error>>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Cli::command().try_get_matches_from(args)?;
        Ok(Self::from_matches(matches)?)
    }

    fn from_matches(matches: clap::ArgMatches) -> Result<Self, ConfigError> {
        let cli = match Cli::from_arg_matches(&matches) {
            Ok(cli) => cli,
            Err(err) => err.exit(),
        };
        let (path, required) = match &cli.config {
            Some(path) => (path.clone(), true),
            None => (PathBuf::from(DEFAULT_CONFIG_FILE), false),
        };
        let file = read_file(&path, required)?;
        // A value clap took from its default yields to the file.
        let defaulted = |id: &str| matches.value_source(id) == Some(ValueSource::DefaultValue);
        let presence_ms = pick(
            defaulted("presence_interval_ms"),
            file.presence_interval_ms,
            cli.presence_interval_ms,
        );
        if !(1..=60_000).contains(&presence_ms) {
            return Err(ConfigError::PresenceInterval {
                path,
                value: presence_ms,
            });
        }
        Ok(Config {
            addr: pick(defaulted("addr"), file.addr, cli.addr),
            data_dir: pick(defaulted("data_dir"), file.data_dir, cli.data_dir),
            site_root: pick(defaulted("site_root"), file.site_root, cli.site_root),
            log: pick(defaulted("log"), file.log, cli.log),
            presence_interval: Duration::from_millis(presence_ms),
            stall_timeout: Duration::from_millis(pick(
                defaulted("stall_timeout_ms"),
                file.stall_timeout_ms,
                cli.stall_timeout_ms,
            )),
            storage: pick(defaulted("storage"), file.storage, cli.storage),
            sqlite_sync: pick(defaulted("sqlite_sync"), file.sqlite_sync, cli.sqlite_sync),
        })
    }
}

/// The file's value where clap only had its default; otherwise clap's.
fn pick<T>(cli_defaulted: bool, from_file: Option<T>, from_cli: T) -> T {
    match from_file {
        Some(value) if cli_defaulted => value,
        _ => from_cli,
    }
}

fn read_file(path: &Path, required: bool) -> Result<FileSettings, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(FileSettings::default());
        }
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    toml::from_str(&text).map_err(|err| ConfigError::Parse {
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
        assert!(err.contains("unknown field `adr`"), "{err}");
        let err = Config::try_from_iter(["banter", "--config", "/nonexistent/banter.toml"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/banter.toml"), "{err}");
    }

    #[test]
    fn the_shipped_leptos_toml_is_valid() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/Leptos.toml");
        let config = load(&["--config", path]);
        assert_eq!(config.addr.port(), 3000);
    }
}
