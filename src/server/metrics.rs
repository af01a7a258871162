//! What Banter counts, for `GET /metrics` (Prometheus text format).
//!
//! The `metrics` facade with the Prometheus recorder, installed once at
//! start. Hot-path counters and histograms are resolved to handles once
//! (a counter's increment is one atomic add; resolving a metric by name
//! hashes its key and searches the registry, which perf showed on every
//! commit and every fan-out), so counting costs nothing measurable per
//! message; a frame written straight into a socket counts itself, and a
//! writer's batch counts once for all its frames.
//!
//! | metric | type | what |
//! | --- | --- | --- |
//! | `banter_connected_clients` | gauge | users connected to this process |
//! | `banter_messages_accepted_total` | counter | messages given an id and kept |
//! | `banter_frames_delivered_total` | counter | frames written to sockets (messages, presence, history…) |
//! | `banter_refusals_total{reason}` | counter | handshakes refused (by reason), floods slowed or closed, bad input closed |
//! | `banter_storage_commit_seconds` | histogram | one SQLite group commit, written to the WAL (embedded default) |
//! | `banter_storage_sync_seconds` | histogram | the fsync that puts a commit on the disk (`sqlite-sync = full`) |
//! | `banter_fan_out_seconds` | histogram | one delivery of stored messages to everyone in a room on this process |
//! | `banter_redis_publish_seconds` | histogram | the publish script's round trip (cluster) |
//! | `banter_subscription_probe_seconds` | gauge | the last probe's trip through Redis pub/sub and back (cluster) |
//! | `banter_archive_backlog` | gauge | messages in Redis not yet in PostgreSQL (cluster) |

use std::{
    sync::{LazyLock, OnceLock},
    time::Duration,
};

use metrics::{Counter, Histogram, counter, gauge, histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

static ACCEPTED: LazyLock<Counter> = LazyLock::new(|| counter!("banter_messages_accepted_total"));
static DELIVERED: LazyLock<Counter> = LazyLock::new(|| counter!("banter_frames_delivered_total"));
static FAN_OUT: LazyLock<Histogram> = LazyLock::new(|| histogram!("banter_fan_out_seconds"));
static COMMIT: LazyLock<Histogram> = LazyLock::new(|| histogram!("banter_storage_commit_seconds"));
static SYNC: LazyLock<Histogram> = LazyLock::new(|| histogram!("banter_storage_sync_seconds"));
static REDIS_PUBLISH: LazyLock<Histogram> =
    LazyLock::new(|| histogram!("banter_redis_publish_seconds"));

/// Installs the recorder (once per process; later calls do nothing).
pub(crate) fn install() {
    if HANDLE.get().is_some() {
        return;
    }
    match PrometheusBuilder::new().install_recorder() {
        Ok(handle) => {
            let _ = HANDLE.set(handle);
        }
        Err(err) => tracing::warn!(%err, "metrics are off"),
    }
}

/// Everything counted so far, in Prometheus text format.
pub(crate) fn render(connected: usize) -> String {
    gauge!("banter_connected_clients").set(connected as f64);
    HANDLE
        .get()
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}

pub(crate) fn accepted() {
    ACCEPTED.increment(1);
}

pub(crate) fn delivered(frames: u64) {
    if frames > 0 {
        DELIVERED.increment(frames);
    }
}

/// A refusal, labelled with a short reason (`origin`, `token`, `rate`,
/// `full`, `slow-down`, `flooding`, `too-big`, …).
pub(crate) fn refused(reason: &'static str) {
    counter!("banter_refusals_total", "reason" => reason).increment(1);
}

pub(crate) fn fan_out(took: Duration) {
    FAN_OUT.record(took.as_secs_f64());
}

pub(crate) fn commit(took: Duration) {
    COMMIT.record(took.as_secs_f64());
}

pub(crate) fn sync(took: Duration) {
    SYNC.record(took.as_secs_f64());
}

pub(crate) fn redis_publish(took: Duration) {
    REDIS_PUBLISH.record(took.as_secs_f64());
}

pub(crate) fn probe(took: Duration) {
    gauge!("banter_subscription_probe_seconds").set(took.as_secs_f64());
}

pub(crate) fn archive_backlog(entries: u64) {
    gauge!("banter_archive_backlog").set(entries as f64);
}
