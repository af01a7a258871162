//! The simulated users: listeners that only read, senders that send
//! numbered, timestamped messages, and stalled listeners that never read.
//!
//! Everything runs on one thread (a `LocalSet`), so the statistics are a
//! plain `Rc<RefCell<…>>` that every task updates without locks.

use std::{
    cell::RefCell,
    rc::Rc,
    time::{Duration, Instant},
};

use hdrhistogram::Histogram;
use tokio::{sync::watch, time::Instant as TokioInstant};

use crate::{
    flood,
    wsclient::{self, Client, OP_CLOSE, OP_PING, OP_TEXT},
};

/// Every benchmark message starts with this, so presence and other events
/// are told apart from ours with one substring search.
const MARKER: &[u8] = b"\"message\":\"bench|";

/// What one run does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `host:port` of each server process; a client uses one, by name.
    pub addrs: Vec<String>,
    /// Path and query up to (not including) the username.
    pub path_prefix: String,
    pub senders: usize,
    pub messages_per_sender: u64,
    /// Total messages per second across all senders; `None` = as fast as
    /// the in-flight window allows.
    pub rate: Option<f64>,
    pub window: u64,
    /// Filler appended to each message to reach the requested size.
    pub padding: String,
    /// Time zero for the timestamps carried in messages.
    pub epoch: Instant,
}

impl Plan {
    /// The server `name` connects to: spread over the processes, the same
    /// one for a name every time (a reconnect goes back to it).
    pub fn addr_for(&self, name: &str) -> &str {
        let hash = name.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        &self.addrs[(hash % self.addrs.len().max(1) as u64) as usize]
    }

    pub fn expected_per_listener(&self) -> u64 {
        self.senders as u64 * self.messages_per_sender
    }
}

/// Counters shared by all tasks of a run.
pub struct Stats {
    /// Send → receive, microseconds, over every receipt by a listener.
    pub latency_us: Histogram<u64>,
    /// Benchmark messages received by listeners.
    pub received: u64,
    /// Connections that received their first frame (the join snapshot).
    pub joined: usize,
    /// Connections that failed to connect or upgrade.
    pub connect_errors: usize,
    /// Listeners the server closed, and the close codes it gave.
    pub dropped: Vec<Option<u16>>,
    /// Messages senders sent.
    pub sent: u64,
    /// Flooders' messages received by listeners: what the server accepted
    /// from them and broadcast.
    pub flood_received: u64,
    pub first_send: Option<Instant>,
    pub last_receipt: Option<Instant>,
    /// Time [`busy_poll`] found nothing to do.
    pub idle: Duration,
}

impl Stats {
    pub fn new() -> Rc<RefCell<Stats>> {
        Rc::new(RefCell::new(Stats {
            latency_us: Histogram::new_with_bounds(1, 120_000_000, 3).expect("static bounds"),
            received: 0,
            joined: 0,
            connect_errors: 0,
            dropped: Vec::new(),
            sent: 0,
            flood_received: 0,
            first_send: None,
            last_receipt: None,
            idle: Duration::ZERO,
        }))
    }
}

pub type Shared = Rc<RefCell<Stats>>;

/// A loop gap shorter than this means the runtime found nothing to do.
const IDLE_GAP: Duration = Duration::from_micros(20);

/// Keeps the runtime polling its sockets rather than sleeping in
/// `epoll_wait`, for as long as it runs.
///
/// Why: a sleeping generator must be woken by the server's kernel for
/// nearly every frame, and on loopback that wake-up (an inter-processor
/// interrupt, a VM exit on this machine) is charged to the server's CPU —
/// `perf` put it at a third of the server's time at 1,000 listeners.
/// Clients on other machines never cost the server that. `yield_now` defers
/// this task until the runtime has polled the I/O driver without blocking,
/// so each turn of this loop is one non-blocking poll.
///
/// The generator's CPU then reads 100%; what matters is how much of it was
/// work, so turns that came straight back (nothing else ran) count as idle.
pub async fn busy_poll(stats: Shared) {
    let mut last = Instant::now();
    loop {
        tokio::task::yield_now().await;
        let now = Instant::now();
        let gap = now - last;
        if gap < IDLE_GAP {
            stats.borrow_mut().idle += gap;
        }
        last = now;
    }
}

/// Connects as `name` and waits for the join snapshot.
pub async fn join(plan: &Plan, name: &str, stats: &Shared) -> Option<Client> {
    match open(plan, name).await {
        Ok(client) => {
            stats.borrow_mut().joined += 1;
            Some(client)
        }
        Err(_) => {
            stats.borrow_mut().connect_errors += 1;
            None
        }
    }
}

/// Why a connection did not get as far as its join snapshot.
#[derive(Debug)]
pub enum JoinFailure {
    /// TCP connect or the upgrade failed (see [`wsclient::UpgradeRefused`]).
    Connect(std::io::Error),
    /// The server upgraded, then closed instead of sending the snapshot.
    Closed(Option<u16>, String),
    /// The connection ended or failed before the first frame.
    Lost,
}

/// Connects as `name`, without counting it, and waits for the first frame
/// (the join snapshot).
pub async fn open(plan: &Plan, name: &str) -> Result<Client, JoinFailure> {
    let path = format!("{}{}", plan.path_prefix, name);
    let mut client = Client::connect(plan.addr_for(name), &path)
        .await
        .map_err(JoinFailure::Connect)?;
    loop {
        if let Some(frame) = client.next_frame() {
            if frame.opcode == OP_CLOSE {
                return Err(JoinFailure::Closed(
                    wsclient::close_code(frame.payload),
                    wsclient::close_reason(frame.payload),
                ));
            }
            return Ok(client);
        }
        match client.fill().await {
            Ok(true) => {}
            _ => return Err(JoinFailure::Lost),
        }
    }
}

/// Reads until every expected message arrived, the server closed the
/// socket, or `deadline`.
pub async fn listen(mut client: Client, plan: Rc<Plan>, stats: Shared, deadline: TokioInstant) {
    let expected = plan.expected_per_listener();
    let mut got = 0u64;
    while got < expected {
        while let Some(frame) = client.next_frame() {
            match frame.opcode {
                OP_TEXT => {
                    if let Some((_, _, sent_ns)) = parse(frame.payload) {
                        let now = plan.epoch.elapsed().as_nanos() as u64;
                        let micros = now.saturating_sub(sent_ns) / 1_000;
                        let mut s = stats.borrow_mut();
                        let _ = s.latency_us.record(micros.max(1));
                        s.received += 1;
                        s.last_receipt = Some(Instant::now());
                        got += 1;
                    } else if memchr::memmem::find(frame.payload, flood::MARKER).is_some() {
                        stats.borrow_mut().flood_received += 1;
                    }
                }
                OP_CLOSE => {
                    let code = wsclient::close_code(frame.payload);
                    stats.borrow_mut().dropped.push(code);
                    return;
                }
                OP_PING => {
                    let payload = frame.payload.to_vec();
                    let _ = client.send_pong(&payload).await;
                }
                _ => {}
            }
        }
        // Done as soon as the last message is in: waiting for one more
        // frame would hold the run open until something else arrives (the
        // presence update when a sender leaves, on servers that send one)
        // or until the deadline.
        if got >= expected {
            break;
        }
        match tokio::time::timeout_at(deadline, client.fill()).await {
            Ok(Ok(true)) => {}
            Ok(_) => {
                stats.borrow_mut().dropped.push(None);
                return;
            }
            Err(_) => return,
        }
    }
}

/// Sends `messages_per_sender` messages, paced by the rate or the window,
/// and reads everything the server sends back meanwhile.
pub async fn send(
    mut client: Client,
    id: usize,
    plan: Rc<Plan>,
    stats: Shared,
    mut go: watch::Receiver<bool>,
    deadline: TokioInstant,
) {
    if go.wait_for(|go| *go).await.is_err() {
        return;
    }
    let total = plan.messages_per_sender;
    let (mut sent, mut echoed) = (0u64, 0u64);
    let interval = plan
        .rate
        .map(|rate| Duration::from_secs_f64(plan.senders as f64 / rate));
    // Sender `id` starts `id / rate` seconds late, so the senders' ticks
    // interleave and the total really is a steady rate: started together,
    // S senders would send S messages at once every S / rate seconds, a
    // burst that measures queueing rather than steady-state latency.
    let mut ticks = interval.zip(plan.rate).map(|(every, rate)| {
        let offset = Duration::from_secs_f64(id as f64 / rate);
        let mut t = tokio::time::interval_at(TokioInstant::now() + offset, every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
        t
    });
    while echoed < total && TokioInstant::now() < deadline {
        // Window mode: top up to the window before waiting for echoes.
        if ticks.is_none() {
            while sent < total && sent - echoed < plan.window {
                if send_one(&mut client, id, sent, &plan, &stats)
                    .await
                    .is_err()
                {
                    return;
                }
                sent += 1;
            }
        }
        let ticking = ticks.is_some() && sent < total;
        tokio::select! {
            _ = async { ticks.as_mut().expect("ticking").tick().await }, if ticking => {
                if send_one(&mut client, id, sent, &plan, &stats).await.is_err() {
                    return;
                }
                sent += 1;
            }
            filled = tokio::time::timeout_at(deadline, client.fill()) => {
                match filled {
                    Ok(Ok(true)) => {}
                    _ => return,
                }
                while let Some(frame) = client.next_frame() {
                    match frame.opcode {
                        OP_TEXT => {
                            if let Some((sender, _, _)) = parse(frame.payload)
                                && sender == id as u64
                            {
                                echoed += 1;
                            }
                        }
                        OP_CLOSE => return,
                        // A sender that never answers is dropped by a
                        // server's keepalive (Banter's: after about 40 s),
                        // and every message it had left counts as lost.
                        OP_PING => {
                            let payload = frame.payload.to_vec();
                            if client.send_pong(&payload).await.is_err() {
                                return;
                            }
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

async fn send_one(
    client: &mut Client,
    id: usize,
    seq: u64,
    plan: &Plan,
    stats: &Shared,
) -> std::io::Result<()> {
    let now = plan.epoch.elapsed().as_nanos() as u64;
    let json = format!(
        "{{\"event\":\"send-message\",\"message\":\"bench|{id}|{seq}|{now}|{}\"}}",
        plan.padding
    );
    client.send_text(json.as_bytes()).await?;
    let mut s = stats.borrow_mut();
    s.sent += 1;
    s.first_send.get_or_insert_with(Instant::now);
    Ok(())
}

/// `(sender, seq, sent_ns)` from a `send-message` frame of ours.
fn parse(payload: &[u8]) -> Option<(u64, u64, u64)> {
    let start = memchr::memmem::find(payload, MARKER)? + MARKER.len();
    let mut fields = payload[start..].split(|b| *b == b'|');
    let mut number = || -> Option<u64> {
        let digits = fields.next()?;
        let mut value = 0u64;
        for d in digits {
            if !d.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u64::from(d - b'0');
        }
        Some(value)
    };
    Some((number()?, number()?, number()?))
}

/// After the run: what became of listeners that never read? Drains each
/// socket for a moment and returns the close codes found.
pub async fn inspect_stalled(clients: Vec<Client>) -> Vec<Option<u16>> {
    let mut codes = Vec::new();
    for mut client in clients {
        let mut code = None;
        let until = TokioInstant::now() + Duration::from_millis(500);
        'drain: loop {
            while let Some(frame) = client.next_frame() {
                if frame.opcode == OP_CLOSE {
                    code = wsclient::close_code(frame.payload);
                    break 'drain;
                }
            }
            match tokio::time::timeout_at(until, client.fill()).await {
                Ok(Ok(true)) => {}
                _ => break,
            }
        }
        codes.push(code);
    }
    codes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_banter_and_tutorial_frames() {
        let banter = br#"{"event":"send-message","username":"s0","message":"bench|3|42|1000|xx","id":9,"ts":"t"}"#;
        assert_eq!(parse(banter), Some((3, 42, 1000)));
        let other = br#"{"event":"update-users","usernames":["a"]}"#;
        assert_eq!(parse(other), None);
    }

    /// A listener is done when its last message arrives, even if the
    /// server then sends nothing more (no presence update when the sender
    /// leaves, as the minimal baseline does).
    #[test]
    fn a_listener_stops_at_its_last_message() {
        use tokio::{
            io::{AsyncReadExt, AsyncWriteExt},
            net::TcpListener,
            task::LocalSet,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        LocalSet::new().block_on(&runtime, async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            let server = tokio::task::spawn_local(async move {
                let (mut socket, _) = listener.accept().await.unwrap();
                let mut request = Vec::new();
                let mut chunk = [0u8; 4096];
                while memchr::memmem::find(&request, b"\r\n\r\n").is_none() {
                    let n = socket.read(&mut chunk).await.unwrap();
                    assert!(n > 0);
                    request.extend_from_slice(&chunk[..n]);
                }
                let mut out = b"HTTP/1.1 101 Switching Protocols\r\n\r\n".to_vec();
                for payload in [
                    &br#"{"event":"update-users","usernames":["l0"]}"#[..],
                    br#"{"event":"send-message","username":"s0","message":"bench|0|0|1|"}"#,
                ] {
                    out.extend([0x81, payload.len() as u8]);
                    out.extend_from_slice(payload);
                }
                socket.write_all(&out).await.unwrap();
                // Then silence, until the listener hangs up.
                while matches!(socket.read(&mut chunk).await, Ok(n) if n > 0) {}
            });
            let plan = Rc::new(Plan {
                addrs: vec![addr],
                path_prefix: "/start_web_socket?username=".to_string(),
                senders: 1,
                messages_per_sender: 1,
                rate: None,
                window: 1,
                padding: String::new(),
                epoch: Instant::now(),
            });
            let stats = Stats::new();
            let client = join(&plan, "l0", &stats).await.expect("joined");
            let started = Instant::now();
            let deadline = TokioInstant::now() + Duration::from_secs(10);
            listen(client, Rc::clone(&plan), Rc::clone(&stats), deadline).await;
            assert!(started.elapsed() < Duration::from_secs(5));
            assert_eq!(stats.borrow().received, 1);
            server.await.unwrap();
        });
    }
}
