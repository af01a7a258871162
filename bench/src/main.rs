//! `banter-bench`: a load generator for chat servers that speak the Deno
//! WebSocket chat tutorial protocol (Banter, and the baselines it is
//! measured against).
//!
//! One run: connect C listeners and S senders (and optionally stalled
//! listeners that never read), then have the senders send M numbered,
//! timestamped messages each, at a fixed total rate or as fast as an
//! in-flight window allows. It reports the time to connect everyone,
//! delivered frames per second, send→receive latency percentiles over every
//! receipt, messages lost, the server's peak RSS and CPU, and its own CPU
//! (so a result bound by the generator shows as such). One JSON line per run
//! is appended to the results file; a readable line goes to stdout.
//!
//! With `--flooders N`, N more clients flood the server during the message
//! phase (see `flood.rs`) and what they achieved is reported apart from the
//! measured figures, which they never count toward.
//!
//! It runs on one thread by design: pin it to one CPU and the server to
//! another (`taskset`), as `bench/run.sh` does.

mod flood;
mod load;
mod procfs;
mod wsclient;

use std::{
    io::Write,
    path::PathBuf,
    rc::Rc,
    time::{Duration, Instant},
};

use clap::Parser;
use serde::Serialize;
use tokio::{sync::watch, task::LocalSet, time::Instant as TokioInstant};

use flood::FloodReport;
use load::{Plan, Stats};

#[derive(Debug, Parser)]
#[command(
    version,
    about = "Load generator for Deno-tutorial-protocol chat servers"
)]
struct Args {
    /// The server's WebSocket URL, without query. Repeat it for several
    /// processes of one cluster: clients are spread over them by name.
    #[arg(long, default_value = "ws://127.0.0.1:3000/start_web_socket")]
    url: Vec<String>,
    /// Extra query parameters (Banter's delta presence; others ignore it).
    #[arg(long, default_value = "presence=delta")]
    query: String,
    /// Name of the server under test, for the report.
    #[arg(long, default_value = "banter")]
    label: String,
    /// Listeners (C): connections that only read.
    #[arg(long, short = 'c', default_value_t = 1000)]
    listeners: usize,
    /// Senders (S): connections that send.
    #[arg(long, short = 's', default_value_t = 1)]
    senders: usize,
    /// Messages each sender sends (M).
    #[arg(long, short = 'm', default_value_t = 1000)]
    messages: u64,
    /// Total messages per second across senders; omit for as fast as the
    /// window allows.
    #[arg(long)]
    rate: Option<f64>,
    /// Messages a sender may have in flight (sent, not yet echoed back).
    #[arg(long, default_value_t = 64)]
    window: u64,
    /// Pad each message's text to this many bytes.
    #[arg(long, default_value_t = 0)]
    size: usize,
    /// Listeners that connect and then never read.
    #[arg(long, default_value_t = 0)]
    stalled: usize,
    /// Clients that send as fast as their sockets take frames during the
    /// message phase, reading what comes back and reconnecting whenever
    /// the server closes them. Not counted in the measured figures.
    #[arg(long, default_value_t = 0)]
    flooders: usize,
    /// A flooder stops writing on a connection after this many frames and
    /// only reads until the server closes it. For telling the server's cost
    /// of a flood from the generator's cost of writing frames the server
    /// never reads (it closes a flooder after 2 × burst + 1 frames).
    #[arg(long)]
    flood_frames: Option<u64>,
    /// The server's PID, for RSS and CPU figures; repeat it for several
    /// processes (the figures are their sums).
    #[arg(long)]
    server_pid: Vec<u32>,
    /// Handshakes in progress at once.
    #[arg(long, default_value_t = 256)]
    connect_concurrency: usize,
    /// Give up connecting after this many seconds.
    #[arg(long, default_value_t = 30.0)]
    connect_timeout: f64,
    /// Give up waiting for messages after this many seconds.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// Sleep in epoll_wait between events instead of busy-polling. Sleeping
    /// makes the server pay a cross-CPU wake-up of this process for nearly
    /// every frame it sends, a cost remote clients never put on it.
    #[arg(long)]
    no_busy_poll: bool,
    /// JSON lines are appended here.
    #[arg(long, default_value = "bench/out/results.jsonl")]
    results: PathBuf,
}

#[derive(Debug, Serialize)]
struct Report {
    label: String,
    listeners: usize,
    senders: usize,
    stalled: usize,
    flooders: usize,
    messages_per_sender: u64,
    mode: String,
    size: usize,
    /// Seconds until every connection had its join snapshot; null if not
    /// everyone joined within the connect timeout.
    connect_s: Option<f64>,
    joined: usize,
    connect_errors: usize,
    sent: u64,
    expected: u64,
    received: u64,
    lost: u64,
    dropped_listeners: usize,
    dropped_codes: Vec<Option<u16>>,
    stalled_close_codes: Vec<Option<u16>>,
    frames_per_s: Option<f64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    p999_ms: Option<f64>,
    max_ms: Option<f64>,
    server_rss_idle_kib: Option<u64>,
    server_rss_before_kib: Option<u64>,
    server_peak_rss_kib: Option<u64>,
    rss_per_client_kib: Option<f64>,
    server_cpu_pct: Option<f64>,
    generator_cpu_pct: Option<f64>,
    /// Share of the message phase the generator spent working rather than
    /// spinning idle; near 100 means the result may be bound by it.
    generator_busy_pct: Option<f64>,
    /// User CPU of everything else on the machine during the message
    /// phase, in % of one CPU: another process busy on the server's or the
    /// generator's CPU (a build, say) makes a run's figures doubtful.
    others_user_cpu_pct: Option<f64>,
    /// The host's steal time during the message phase, all CPUs, in % of
    /// one CPU (`/proc/stat`): when it is high the run measured the host's
    /// other tenants as much as the server, above all its p99.
    steal_pct: Option<f64>,
    message_phase_s: f64,
    /// What the flooders did; null without flooders.
    flood: Option<FloodReport>,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let nofile = procfs::raise_nofile_limit();
    let needed = (args.listeners + args.senders + args.stalled + args.flooders + 64) as u64;
    if nofile < needed {
        eprintln!("banter-bench: open-file limit {nofile} is below the {needed} this run needs");
        return std::process::ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("banter-bench: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let report = match LocalSet::new().block_on(&runtime, run(&args)) {
        Ok(report) => report,
        Err(err) => {
            eprintln!("banter-bench: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    print_line(&report);
    if let Err(err) = append(&args.results, &report) {
        eprintln!(
            "banter-bench: cannot write {}: {err}",
            args.results.display()
        );
        return std::process::ExitCode::FAILURE;
    }
    std::process::ExitCode::SUCCESS
}

async fn run(args: &Args) -> Result<Report, String> {
    let mut addrs = Vec::new();
    let mut path = String::new();
    for url in &args.url {
        let (addr, this_path) = split_url(url)?;
        if !path.is_empty() && path != this_path {
            return Err("every --url must have the same path".to_string());
        }
        path = this_path;
        addrs.push(addr);
    }
    let separator = if args.query.is_empty() { "" } else { "&" };
    let plan = Rc::new(Plan {
        addrs,
        path_prefix: format!("{path}?{}{separator}username=", args.query),
        senders: args.senders,
        messages_per_sender: args.messages,
        rate: args.rate,
        window: args.window.max(1),
        padding: "x".repeat(args.size.saturating_sub(40)),
        epoch: Instant::now(),
    });
    let stats = Stats::new();
    let server_memory = || procfs::sum(&args.server_pid, procfs::memory_kib);
    let rss_before = server_memory().map(|(rss, _)| rss);

    // --- connect everyone ---------------------------------------------------
    let started = Instant::now();
    let connect_deadline = TokioInstant::now() + Duration::from_secs_f64(args.connect_timeout);
    let permits = Rc::new(tokio::sync::Semaphore::new(args.connect_concurrency.max(1)));
    let connect = |name: String| {
        let (plan, stats, permits) = (Rc::clone(&plan), Rc::clone(&stats), Rc::clone(&permits));
        tokio::task::spawn_local(async move {
            let _permit = permits.acquire().await.ok()?;
            tokio::time::timeout_at(connect_deadline, load::join(&plan, &name, &stats))
                .await
                .ok()
                .flatten()
        })
    };
    let listeners: Vec<_> = (0..args.listeners)
        .map(|i| connect(format!("l{i}")))
        .collect();
    let senders: Vec<_> = (0..args.senders)
        .map(|i| connect(format!("s{i}")))
        .collect();
    let stalled: Vec<_> = (0..args.stalled)
        .map(|i| connect(format!("z{i}")))
        .collect();
    let listeners = collect(listeners).await;
    let senders = collect(senders).await;
    let stalled = collect(stalled).await;
    let total = args.listeners + args.senders + args.stalled;
    let everyone_joined = stats.borrow().joined == total;
    let connect_s = everyone_joined.then(|| started.elapsed().as_secs_f64());
    // Let the server settle after the burst before reading idle memory.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_idle = server_memory().map(|(rss, _)| rss);

    // --- the message phase ----------------------------------------------------
    let server_cpu_start = procfs::sum_time(&args.server_pid, procfs::cpu_time);
    let own_cpu_start = procfs::own_cpu_time();
    let user_cpu = || -> Option<Duration> {
        let ours = procfs::sum_time(&args.server_pid, procfs::user_time).unwrap_or(Duration::ZERO)
            + procfs::user_time(std::process::id())?;
        procfs::machine_user_time()?.checked_sub(ours)
    };
    let others_cpu_start = user_cpu();
    let steal_start = procfs::machine_steal_time();
    let phase_start = Instant::now();
    let mut stalled_codes = Vec::new();
    let flood_report = flood::SharedReport::default();
    if everyone_joined && args.messages > 0 {
        let deadline = TokioInstant::now() + Duration::from_secs_f64(args.timeout);
        let (go, go_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        for client in listeners.into_iter().flatten() {
            let (plan, stats) = (Rc::clone(&plan), Rc::clone(&stats));
            tasks.push(tokio::task::spawn_local(load::listen(
                client, plan, stats, deadline,
            )));
        }
        for (id, client) in senders.into_iter().enumerate() {
            let Some(client) = client else { continue };
            let (plan, stats, go_rx) = (Rc::clone(&plan), Rc::clone(&stats), go_rx.clone());
            tasks.push(tokio::task::spawn_local(load::send(
                client, id, plan, stats, go_rx, deadline,
            )));
        }
        let spinner = (!args.no_busy_poll)
            .then(|| tokio::task::spawn_local(load::busy_poll(Rc::clone(&stats))));
        let _ = go.send(true);
        // Flooders start with the measured senders and stop as soon as the
        // measured clients are done (each of those stops by `deadline`).
        let (stop_flood, stop_rx) = watch::channel(false);
        let flooders: Vec<_> = (0..args.flooders)
            .map(|id| {
                let (plan, report) = (Rc::clone(&plan), Rc::clone(&flood_report));
                tokio::task::spawn_local(flood::flood(
                    id,
                    plan,
                    args.flood_frames,
                    report,
                    stop_rx.clone(),
                ))
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
        let _ = stop_flood.send(true);
        for flooder in flooders {
            let _ = flooder.await;
        }
        if let Some(spinner) = spinner {
            spinner.abort();
        }
        stalled_codes = load::inspect_stalled(stalled.into_iter().flatten().collect()).await;
    }
    let phase = phase_start.elapsed();
    let ran = everyone_joined && args.messages > 0;
    let server_cpu = match (
        server_cpu_start,
        procfs::sum_time(&args.server_pid, procfs::cpu_time),
    ) {
        (Some(start), Some(end)) if ran => Some(pct(end.saturating_sub(start), phase)),
        _ => None,
    };
    let own_cpu = ran.then(|| pct(procfs::own_cpu_time().saturating_sub(own_cpu_start), phase));
    let others_cpu = match (others_cpu_start, user_cpu()) {
        (Some(start), Some(end)) if ran => Some(pct(end.saturating_sub(start), phase)),
        _ => None,
    };
    let steal = match (steal_start, procfs::machine_steal_time()) {
        (Some(start), Some(end)) if ran => Some(pct(end.saturating_sub(start), phase)),
        _ => None,
    };

    let s = stats.borrow();
    let expected = (args.listeners as u64) * plan.expected_per_listener();
    let measured = s.received > 0;
    let quantile = |q: f64| measured.then(|| s.latency_us.value_at_quantile(q) as f64 / 1000.0);
    let frames_per_s = match (s.first_send, s.last_receipt) {
        (Some(first), Some(last)) if last > first => {
            Some(s.received as f64 / (last - first).as_secs_f64())
        }
        _ => None,
    };
    let peak = server_memory().map(|(_, hwm)| hwm);
    let flood = (args.flooders > 0).then(|| {
        let mut report = flood_report.borrow().clone();
        report.reconnects = report.connections.saturating_sub(args.flooders as u64);
        report.delivered_per_listener = s.flood_received as f64 / args.listeners.max(1) as f64;
        report
    });
    Ok(Report {
        label: args.label.clone(),
        listeners: args.listeners,
        senders: args.senders,
        stalled: args.stalled,
        flooders: args.flooders,
        messages_per_sender: args.messages,
        mode: match args.rate {
            Some(rate) => format!("{rate} msg/s"),
            None => format!("max (window {})", plan.window),
        },
        size: args.size,
        connect_s,
        joined: s.joined,
        connect_errors: s.connect_errors,
        sent: s.sent,
        expected,
        received: s.received,
        lost: expected.saturating_sub(s.received),
        dropped_listeners: s.dropped.len(),
        dropped_codes: s.dropped.clone(),
        stalled_close_codes: stalled_codes,
        frames_per_s,
        p50_ms: quantile(0.5),
        p99_ms: quantile(0.99),
        p999_ms: quantile(0.999),
        max_ms: measured.then(|| s.latency_us.max() as f64 / 1000.0),
        server_rss_before_kib: rss_before,
        server_rss_idle_kib: rss_idle,
        server_peak_rss_kib: peak,
        rss_per_client_kib: match (rss_before, rss_idle) {
            (Some(before), Some(idle)) if total > 0 => {
                Some((idle.saturating_sub(before)) as f64 / total as f64)
            }
            _ => None,
        },
        server_cpu_pct: server_cpu,
        generator_cpu_pct: own_cpu,
        others_user_cpu_pct: others_cpu,
        steal_pct: steal,
        generator_busy_pct: (ran && !args.no_busy_poll)
            .then(|| 100.0 - pct(s.idle, phase))
            .or(own_cpu),
        message_phase_s: phase.as_secs_f64(),
        flood,
    })
}

/// Awaits every connect task; a task that panicked counts as not connected.
async fn collect<T>(handles: Vec<tokio::task::JoinHandle<Option<T>>>) -> Vec<Option<T>> {
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(handle.await.ok().flatten());
    }
    out
}

fn pct(cpu: Duration, wall: Duration) -> f64 {
    100.0 * cpu.as_secs_f64() / wall.as_secs_f64().max(1e-9)
}

/// `ws://host:port/path` → (`host:port`, `/path`).
fn split_url(url: &str) -> Result<(String, String), String> {
    let rest = url
        .strip_prefix("ws://")
        .ok_or_else(|| format!("only ws:// URLs are supported, got {url}"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Ok((host.to_string(), path.to_string()))
}

fn print_line(r: &Report) {
    let opt = |v: Option<f64>, digits: usize| match v {
        Some(v) => format!("{v:.digits$}"),
        None => "-".to_string(),
    };
    println!(
        "{:<7} C={:<6} S={:<3} {:<16} connect={}s frames/s={} p50={}ms p99={}ms p99.9={}ms max={}ms \
         lost={} dropped={} rss_peak={}MiB rss/client={}KiB server_cpu={}% gen_busy={}% others_cpu={}% \
         steal={}%",
        r.label,
        r.listeners,
        r.senders,
        r.mode,
        opt(r.connect_s, 2),
        opt(r.frames_per_s, 0),
        opt(r.p50_ms, 2),
        opt(r.p99_ms, 2),
        opt(r.p999_ms, 2),
        opt(r.max_ms, 1),
        r.lost,
        r.dropped_listeners,
        opt(r.server_peak_rss_kib.map(|k| k as f64 / 1024.0), 1),
        opt(r.rss_per_client_kib, 1),
        opt(r.server_cpu_pct, 0),
        opt(r.generator_busy_pct, 0),
        opt(r.others_user_cpu_pct, 0),
        opt(r.steal_pct, 1),
    );
    if let Some(f) = &r.flood {
        println!(
            "        flooders={} connections={} frames_written={} accepted={} delivered/listener={:.0} \
             refused={} ends={:?} join_failures={:?}",
            r.flooders,
            f.connections,
            f.frames_written,
            f.accepted,
            f.delivered_per_listener,
            f.refused,
            f.ends,
            f.join_failures,
        );
    }
}

fn append(path: &PathBuf, report: &Report) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let line = serde_json::to_string(report).map_err(std::io::Error::other)?;
    writeln!(file, "{line}")
}
