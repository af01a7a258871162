//! Flooders: hostile clients that send `send-message` frames as fast as
//! their socket takes them, for the whole message phase, while other
//! clients are measured.
//!
//! A flooder joins like a sender, then writes a pre-encoded batch of
//! identical frames whenever its socket is writable, and meanwhile reads
//! whatever the server sends — its own messages broadcast back (accepted),
//! `error` events ("slow down": refused), the close frame — counts it and
//! throws it away: hostile, but reading, so what stops it is the server's
//! flood limit and not TCP backpressure. When the server closes it, or the
//! connection fails, it reconnects at once under the same name. It stops
//! when `main` says so, as soon as the measured clients are done.
//!
//! Its messages read `flood|…`, not `bench|…`, so listeners and senders do
//! not count them, and its connections are not counted as joined: only
//! [`FloodReport`] says what it did.

use std::{cell::RefCell, collections::BTreeMap, io, rc::Rc, time::Duration};

use memchr::memmem;
use serde::Serialize;
use tokio::{sync::watch, time::Instant as TokioInstant};

use crate::{
    load::{self, JoinFailure, Plan},
    wsclient::{self, Client, OP_CLOSE, OP_TEXT, UpgradeRefused},
};

/// Every flooder message starts with this (then `<id>|`).
pub const MARKER: &[u8] = b"\"message\":\"flood|";

/// Frames per write: a few KB, so one syscall carries many frames.
const BATCH_FRAMES: usize = 64;
/// After a write fails (the server has closed), how long to go on reading
/// for the close frame that may still be on its way.
const DRAIN: Duration = Duration::from_millis(500);

/// What the flooders did, summed over all of them and all their
/// connections.
#[derive(Debug, Default, Clone, Serialize)]
pub struct FloodReport {
    /// Connections that got their join snapshot, first ones included.
    pub connections: u64,
    /// `connections` less one per flooder.
    pub reconnects: u64,
    /// Flooder messages each listener received, on average: what the
    /// server accepted from the flooders and broadcast. The flooders' own
    /// count (`accepted`) misses the echoes that were still on their way
    /// when the server closed them.
    pub delivered_per_listener: f64,
    /// Attempts that got no snapshot, by cause: `http 429`, `close 1008
    /// <reason>`, `connect <error kind>`, `lost`.
    pub join_failures: BTreeMap<String, u64>,
    /// Whole frames the kernel took. Those written after the server's last
    /// read of a socket are never seen by it, so this is an upper bound on
    /// what reached the server.
    pub frames_written: u64,
    /// The flooders' own messages broadcast back to them before they were
    /// closed: frames accepted (a lower bound; see `delivered_per_listener`).
    pub accepted: u64,
    /// "Slow down" error events: frames refused.
    pub refused: u64,
    /// Any other error event.
    pub other_errors: u64,
    /// How joined connections ended: by close code (`1008`), else how the
    /// socket failed without one (`eof`, `reset`, `write failed`).
    pub ends: BTreeMap<String, u64>,
    /// `<code> <reason>` of every close frame received.
    pub close_reasons: BTreeMap<String, u64>,
}

pub type SharedReport = Rc<RefCell<FloodReport>>;

/// Floods as `flood{id}` until `stop` turns true (or its sender is gone).
/// `frames_per_connection`: stop writing on a connection after that many
/// frames (reading on until the server closes it); `None` for no limit.
pub async fn flood(
    id: usize,
    plan: Rc<Plan>,
    frames_per_connection: Option<u64>,
    report: SharedReport,
    mut stop: watch::Receiver<bool>,
) {
    let name = format!("flood{id}");
    let batch = Batch::new(id);
    loop {
        let joined = tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => return,
            joined = load::open(&plan, &name) => joined,
        };
        let mut client = match joined {
            Ok(client) => client,
            Err(failure) => {
                count(
                    &mut report.borrow_mut().join_failures,
                    failure_key(&failure),
                );
                // Straight back, but let the measured clients have a turn.
                tokio::task::yield_now().await;
                continue;
            }
        };
        report.borrow_mut().connections += 1;
        let end = tokio::select! {
            biased;
            _ = stop.wait_for(|stop| *stop) => return,
            end = flood_connection(&mut client, &batch, frames_per_connection, &report) => end,
        };
        count(&mut report.borrow_mut().ends, end);
    }
}

/// Floods one joined connection until it ends; returns how it ended.
async fn flood_connection(
    client: &mut Client,
    batch: &Batch,
    frames: Option<u64>,
    report: &SharedReport,
) -> String {
    let budget = frames.map_or(u64::MAX, |frames| frames.saturating_mul(batch.frame_len));
    let mut offset = 0usize;
    let mut written = 0u64;
    let mut drain_until: Option<TokioInstant> = None;
    loop {
        let draining = drain_until.is_some();
        let writing = !draining && written < budget;
        tokio::select! {
            ready = client.stream.readable() => {
                if let Err(err) = ready {
                    return io_key(&err);
                }
                match client.try_fill() {
                    Ok(true) => {}
                    Ok(false) => return "eof".to_string(),
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(err) => return io_key(&err),
                }
                let mut report = report.borrow_mut();
                while let Some(frame) = client.next_frame() {
                    match frame.opcode {
                        OP_TEXT => batch.tally(frame.payload, &mut report),
                        OP_CLOSE => {
                            let code = wsclient::close_code(frame.payload);
                            let code = code.map_or("close without code".to_string(), |c| c.to_string());
                            let reason = wsclient::close_reason(frame.payload);
                            count(&mut report.close_reasons, format!("{code} {reason}"));
                            return code;
                        }
                        _ => {}
                    }
                }
            }
            ready = client.stream.writable(), if writing => {
                let end = batch.bytes.len().min(offset.saturating_add((budget - written) as usize));
                let wrote = ready.and_then(|()| client.stream.try_write(&batch.bytes[offset..end]));
                match wrote {
                    Ok(n) => {
                        let frames_before = written / batch.frame_len;
                        written += n as u64;
                        report.borrow_mut().frames_written += written / batch.frame_len - frames_before;
                        offset = (offset + n) % batch.bytes.len();
                    }
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => drain_until = Some(TokioInstant::now() + DRAIN),
                }
            }
            _ = tokio::time::sleep_until(drain_until.unwrap_or_else(TokioInstant::now)), if draining => {
                return "write failed".to_string();
            }
        }
    }
}

/// One flooder's frames, ready to write, and how to recognise what comes
/// back.
struct Batch {
    /// `BATCH_FRAMES` identical masked frames.
    bytes: Vec<u8>,
    frame_len: u64,
    /// `"message":"flood|<id>|`: our own message broadcast back.
    own: Vec<u8>,
}

impl Batch {
    fn new(id: usize) -> Batch {
        let mut own = MARKER.to_vec();
        own.extend_from_slice(format!("{id}|").as_bytes());
        let json = [&b"{\"event\":\"send-message\","[..], &own, b"\"}"].concat();
        let frame = wsclient::encode(OP_TEXT, &json);
        Batch {
            bytes: frame.repeat(BATCH_FRAMES),
            frame_len: frame.len() as u64,
            own,
        }
    }

    /// Counts a text frame from the server.
    fn tally(&self, payload: &[u8], report: &mut FloodReport) {
        if memmem::find(payload, b"\"event\":\"error\"").is_some() {
            if memmem::find(payload, b"Slow down").is_some() {
                report.refused += 1;
            } else {
                report.other_errors += 1;
            }
        } else if memmem::find(payload, &self.own).is_some() {
            report.accepted += 1;
        }
    }
}

fn count(map: &mut BTreeMap<String, u64>, key: String) {
    *map.entry(key).or_default() += 1;
}

fn failure_key(failure: &JoinFailure) -> String {
    match failure {
        JoinFailure::Connect(err) => match UpgradeRefused::of(err) {
            Some(refused) => format!("http {}", refused.status),
            None => format!("connect {}", io_key(err)),
        },
        JoinFailure::Closed(code, reason) => match code {
            Some(code) => format!("close {code} {reason}"),
            None => "close without code".to_string(),
        },
        JoinFailure::Lost => "lost".to_string(),
    }
}

fn io_key(err: &io::Error) -> String {
    match err.kind() {
        io::ErrorKind::ConnectionReset => "reset".to_string(),
        io::ErrorKind::BrokenPipe => "broken pipe".to_string(),
        io::ErrorKind::UnexpectedEof => "eof".to_string(),
        kind => format!("{kind:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;
    use tokio::{
        io::{AsyncReadExt, AsyncWriteExt},
        net::TcpListener,
        task::LocalSet,
    };

    #[test]
    fn the_batch_is_whole_frames_and_tells_replies_apart() {
        let batch = Batch::new(7);
        assert_eq!(
            batch.bytes.len() as u64,
            batch.frame_len * BATCH_FRAMES as u64
        );
        let frame = &batch.bytes[..batch.frame_len as usize];
        assert_eq!(frame[0], 0x81);
        assert!(memmem::find(frame, b"\"message\":\"flood|7|\"").is_some());

        let mut report = FloodReport::default();
        let replies: [&[u8]; 5] = [
            br#"{"event":"send-message","username":"flood7","message":"flood|7|","id":1}"#,
            br#"{"event":"send-message","username":"flood17","message":"flood|17|","id":2}"#,
            br#"{"event":"error","message":"Slow down: at most 10 messages a second"}"#,
            br#"{"event":"error","message":"Something else"}"#,
            br#"{"event":"user-joined","username":"flood7"}"#,
        ];
        for reply in replies {
            batch.tally(reply, &mut report);
        }
        assert_eq!(
            (report.accepted, report.refused, report.other_errors),
            (1, 1, 1)
        );
    }

    /// A server frame (unmasked).
    fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        assert!(payload.len() < 126);
        let mut frame = vec![0x80 | opcode, payload.len() as u8];
        frame.extend_from_slice(payload);
        frame
    }

    /// Floods a toy server that lets two frames through and then closes
    /// every connection with 1008, until the flooder has connected 4 times.
    fn flood_a_toy_server(frames_per_connection: Option<u64>) -> FloodReport {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        LocalSet::new().block_on(&runtime, async {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap().to_string();
            tokio::task::spawn_local(async move {
                loop {
                    let (mut socket, _) = listener.accept().await.unwrap();
                    let mut request = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while memmem::find(&request, b"\r\n\r\n").is_none() {
                        let n = socket.read(&mut chunk).await.unwrap();
                        assert!(n > 0);
                        request.extend_from_slice(&chunk[..n]);
                    }
                    let mut out = b"HTTP/1.1 101 Switching Protocols\r\n\r\n".to_vec();
                    out.extend(server_frame(OP_TEXT, br#"{"event":"update-users","usernames":[]}"#));
                    socket.write_all(&out).await.unwrap();
                    // Wait for the flood to start, then answer it.
                    let _ = socket.read(&mut chunk).await;
                    let mut out = Vec::new();
                    for reply in [
                        &br#"{"event":"send-message","username":"flood0","message":"flood|0|"}"#[..],
                        br#"{"event":"send-message","username":"flood0","message":"flood|0|"}"#,
                        br#"{"event":"error","message":"Slow down: at most 10 messages a second"}"#,
                    ] {
                        out.extend(server_frame(OP_TEXT, reply));
                    }
                    let mut close = 1008u16.to_be_bytes().to_vec();
                    close.extend_from_slice(b"Sending too fast: slow down");
                    out.extend(server_frame(OP_CLOSE, &close));
                    let _ = socket.write_all(&out).await;
                    let _ = socket.shutdown().await;
                    // Drain until the flooder hangs up, as a server that
                    // closes cleanly would.
                    while matches!(socket.read(&mut chunk).await, Ok(n) if n > 0) {}
                }
            });
            let plan = Rc::new(Plan {
                addrs: vec![addr],
                path_prefix: "/start_web_socket?username=".to_string(),
                senders: 0,
                messages_per_sender: 0,
                rate: None,
                window: 1,
                padding: String::new(),
                epoch: Instant::now(),
            });
            let report = SharedReport::default();
            let (stop, stop_rx) = watch::channel(false);
            let flooder = tokio::task::spawn_local(flood(
                0,
                plan,
                frames_per_connection,
                Rc::clone(&report),
                stop_rx,
            ));
            let deadline = Instant::now() + Duration::from_secs(10);
            while report.borrow().connections < 4 && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            stop.send(true).unwrap();
            flooder.await.unwrap();
            report.borrow().clone()
        })
    }

    /// The flooder keeps reconnecting and counts what it was told.
    #[test]
    fn reconnects_after_each_close_and_counts_the_replies() {
        let report = flood_a_toy_server(None);
        assert!(report.connections >= 4, "{report:?}");
        let closes = report.ends.get("1008").copied().unwrap_or(0);
        assert!(closes >= 3, "{report:?}");
        assert_eq!(
            report.close_reasons.get("1008 Sending too fast: slow down"),
            Some(&closes)
        );
        // The connection open when the flooder was stopped may have had
        // its replies but not yet its close.
        assert!(
            (2 * closes..=2 * closes + 2).contains(&report.accepted),
            "{report:?}"
        );
        assert!(
            (closes..=closes + 1).contains(&report.refused),
            "{report:?}"
        );
        assert!(report.frames_written >= closes, "{report:?}");
        assert!(report.join_failures.is_empty(), "{report:?}");
    }

    /// With a cap, each connection gets exactly that many frames.
    #[test]
    fn writes_at_most_the_frames_asked_for_per_connection() {
        let report = flood_a_toy_server(Some(3));
        assert!(report.connections >= 4, "{report:?}");
        // The last connection may still have been writing when stopped.
        let full = report.connections - 1;
        assert!(
            (3 * full..=3 * report.connections).contains(&report.frames_written),
            "{report:?}"
        );
    }
}
