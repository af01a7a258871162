//! RFC 6455 to the letter, over raw TCP: the client side here is hand-built
//! bytes, not a WebSocket library, so it can send what no library would.
//!
//! What it shows: a client that closes cleanly is answered with a close
//! frame and then the connection ends (§5.5.1, §7.1.1); every protocol
//! error (reserved bits or opcodes, an unmasked frame, a continuation with
//! nothing to continue, a fragmented or oversized control frame, a close
//! code not allowed on the wire) is closed with 1002 and a reason (§5.2,
//! §5.4, §5.5, §7.4.1); a fragmented message over 64 KiB in all is closed
//! with 1009 and a close reason that is not UTF-8 with 1007 (§8.1); a
//! handshake whose `Sec-WebSocket-Key` is not the base64 of 16 bytes is
//! refused with 400, on both endpoints (§4.2.1). A connection dropped
//! without a close frame is what a client sees as 1006, so each of these
//! cases expects a close frame. Meanwhile the other users keep chatting.

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::support::*;

/// The key from RFC 6455 §1.3 and the accept value it must get.
const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const SAMPLE_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// The masking key of every masked client frame (the one in §5.7).
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The largest message the server reads.
const MESSAGE_LIMIT: usize = 64 * 1024;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;

/// A valid chat event, for frames that are wrong only in their header.
const TYPING: &[u8] = br#"{"event":"typing"}"#;

/// Sends a WebSocket upgrade for `path` (with its query) with `key` as the
/// `Sec-WebSocket-Key`, and reads the response head byte by byte, so that
/// any frame after it is left in the stream. Returns the status, the head
/// (up to, not including, its blank line) and the stream.
async fn raw_handshake(addr: &str, path: &str, key: &str) -> (u16, String, TcpStream) {
    let mut stream = tokio::time::timeout(PATIENCE, TcpStream::connect(addr))
        .await
        .expect("TCP connect timed out")
        .expect("TCP connect");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write the handshake");
    let mut head = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while !head.ends_with(b"\r\n\r\n") {
            let byte = stream.read_u8().await.expect("read the response head");
            head.push(byte);
        }
    })
    .await
    .expect("no response head in time");
    head.truncate(head.len() - 4);
    let head = String::from_utf8(head).expect("response head is UTF-8");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, head, stream)
}

/// The value of header `name` in a response head, if it has one.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.trim()
            .eq_ignore_ascii_case(name)
            .then_some(value.trim())
    })
}

/// One client frame: FIN, the three RSV bits (`rsv`, high bit RSV1), the
/// opcode, and the payload with a 7-, 16- or 64-bit length, masked with
/// [`MASK`] when `mask`.
fn client_frame(fin: bool, rsv: u8, opcode: u8, mask: bool, payload: &[u8]) -> Vec<u8> {
    assert!(rsv < 8 && opcode < 16, "rsv {rsv} opcode {opcode}");
    let mut frame = vec![(u8::from(fin) << 7) | (rsv << 4) | opcode];
    let mask_bit = u8::from(mask) << 7;
    match payload.len() {
        len @ 0..=125 => frame.push(mask_bit | len as u8),
        len @ 126..=0xffff => {
            frame.push(mask_bit | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
        len => {
            frame.push(mask_bit | 127);
            frame.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    if mask {
        frame.extend_from_slice(&MASK);
        frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ MASK[i % 4]));
    } else {
        frame.extend_from_slice(payload);
    }
    frame
}

/// A masked, final client frame with no RSV bits: the ordinary kind.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    client_frame(true, 0, opcode, true, payload)
}

/// A close frame's payload: the code, then the reason's bytes.
fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    payload
}

/// The next frame from the server: (FIN, opcode, payload), or `None` if
/// the connection ended (EOF or reset) first. Server frames must be
/// unmasked, with no RSV bits. Fails if nothing comes within [`PATIENCE`].
async fn read_server_frame(stream: &mut TcpStream) -> Option<(bool, u8, Vec<u8>)> {
    let read = tokio::time::timeout(PATIENCE, async {
        let mut first = [0u8; 2];
        stream.read_exact(&mut first).await?;
        let fin = first[0] & 0x80 != 0;
        let rsv = (first[0] >> 4) & 0x7;
        let opcode = first[0] & 0x0f;
        assert_eq!(rsv, 0, "the server set RSV bits: {:#04x}", first[0]);
        assert_eq!(first[1] & 0x80, 0, "the server masked a frame");
        let len = match first[1] & 0x7f {
            126 => u64::from(stream.read_u16().await?),
            127 => stream.read_u64().await?,
            len => u64::from(len),
        };
        assert!(len <= 1 << 20, "a {len}-byte frame from the server");
        let mut payload = vec![0u8; len as usize];
        stream.read_exact(&mut payload).await?;
        Ok::<_, std::io::Error>((fin, opcode, payload))
    })
    .await
    .expect("no frame from the server in time");
    match read {
        Ok(frame) => Some(frame),
        Err(error)
            if matches!(
                error.kind(),
                std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            ) =>
        {
            None
        }
        Err(error) => panic!("reading a frame: {error}"),
    }
}

/// Skips data and ping frames and returns the first close frame's code
/// and reason (1005 and "" for an empty one). Fails if the connection ends
/// without one.
async fn expect_close(stream: &mut TcpStream) -> (u16, String) {
    loop {
        let Some((fin, opcode, payload)) = read_server_frame(stream).await else {
            panic!("closed without a close frame: that is 1006 to the client");
        };
        if opcode != OP_CLOSE {
            continue;
        }
        assert!(fin, "the server fragmented a close frame");
        return match payload.len() {
            0 => (1005, String::new()),
            1 => panic!("the server sent a close frame with a 1-byte payload"),
            _ => (
                u16::from_be_bytes([payload[0], payload[1]]),
                String::from_utf8(payload[2..].to_vec()).expect("close reason is UTF-8"),
            ),
        };
    }
}

/// Joins the JSON endpoint as `name` over raw TCP: the handshake, then the
/// first `update-users` frame (so the server has let the client in).
async fn join_raw(addr: &str, name: &str) -> TcpStream {
    let path = format!("/start_web_socket?username={name}");
    let (status, head, mut stream) = raw_handshake(addr, &path, SAMPLE_KEY).await;
    assert_eq!(status, 101, "{name}'s handshake: {head}");
    loop {
        match read_server_frame(&mut stream).await {
            Some((_, OP_TEXT, text)) if text.starts_with(br#"{"event":"update-users""#) => {
                return stream;
            }
            Some((_, OP_CLOSE, payload)) => panic!("{name} was closed on joining: {payload:?}"),
            Some(_) => continue,
            None => panic!("{name}'s connection ended on joining"),
        }
    }
}

/// `bob` says `text` and hears it back: the room still works.
async fn room_goes_on(bob: &mut Socket, text: &str) {
    say(bob, text).await;
    expect_event(bob, "send-message", |e| e["message"] == text).await;
}

/// One misbehaving client: what it does, the bytes it sends once in, and
/// the close code it must get.
struct Case {
    what: &'static str,
    bytes: Vec<u8>,
    code: u16,
}

fn case(what: &'static str, frames: &[Vec<u8>], code: u16) -> Case {
    Case {
        what,
        bytes: frames.concat(),
        code,
    }
}

/// Each case in turn on one server: `mallory` joins over raw TCP, sends
/// the case's bytes and must get a close frame with its code and a short,
/// non-empty reason; then `bob`, joined all along, still chats. Every case
/// runs, and the test fails at the end naming each case that failed (its
/// own panic, above, says what happened instead).
async fn closes_with(cases: Vec<Case>) {
    let server = Server::start().await;
    let mut bob = server.join("bob").await;
    expect_users(&mut bob, &["bob"]).await;
    let mut failed = Vec::new();
    for (i, Case { what, bytes, code }) in cases.into_iter().enumerate() {
        server.wait_for_clients(1).await;
        let addr = server.addr.clone();
        // Its own task, so one case's failure is reported and the next
        // still runs; the stream is dropped either way.
        let outcome = tokio::spawn(async move {
            let mut mallory = join_raw(&addr, "mallory").await;
            mallory.write_all(&bytes).await.expect("send the frames");
            let (got, reason) = expect_close(&mut mallory).await;
            assert_eq!(got, code, "{what}: closed with {got} ({reason:?})");
            assert!(!reason.is_empty(), "{what}: {code} with no reason");
            assert!(reason.len() <= 123, "{what}: reason too long: {reason:?}");
            eprintln!("{what}: {got} {reason:?}");
        })
        .await;
        if outcome.is_err() {
            failed.push(what);
        }
        server.wait_for_clients(1).await;
        room_goes_on(&mut bob, &format!("bob after case {i}")).await;
    }
    assert!(failed.is_empty(), "cases that failed: {failed:?}");
}

#[tokio::test]
async fn a_client_that_closes_with_1000_gets_1000_back_and_the_connection_ends() {
    let server = Server::start().await;
    let mut bob = server.join("bob").await;
    expect_users(&mut bob, &["bob"]).await;
    let mut mallory = join_raw(&server.addr, "mallory").await;
    mallory
        .write_all(&frame(OP_CLOSE, &close_payload(1000, b"bye")))
        .await
        .expect("send the close frame");
    let (code, reason) = expect_close(&mut mallory).await;
    assert_eq!(code, 1000, "the server answered the close with {reason:?}");
    // §7.1.1: having answered, the server ends the TCP connection.
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(PATIENCE, mallory.read(&mut byte))
        .await
        .expect("the connection stayed open after the close handshake");
    assert_eq!(
        read.expect("read after the close"),
        0,
        "data after the close"
    );
    server.wait_for_clients(1).await;
    room_goes_on(&mut bob, "still here").await;
}

#[tokio::test]
async fn frames_with_bad_headers_are_closed_with_1002_and_the_others_keep_chatting() {
    closes_with(vec![
        case(
            "a text frame with RSV1 set",
            &[client_frame(true, 0b100, OP_TEXT, true, TYPING)],
            1002,
        ),
        case(
            "a text frame with RSV2 set",
            &[client_frame(true, 0b010, OP_TEXT, true, TYPING)],
            1002,
        ),
        case(
            "a text frame with RSV3 set",
            &[client_frame(true, 0b001, OP_TEXT, true, TYPING)],
            1002,
        ),
        case(
            "an unmasked text frame",
            &[client_frame(true, 0, OP_TEXT, false, TYPING)],
            1002,
        ),
        case("reserved data opcode 0x3", &[frame(0x3, TYPING)], 1002),
        case("reserved control opcode 0xB", &[frame(0xb, b"")], 1002),
    ])
    .await;
}

#[tokio::test]
async fn bad_fragments_and_control_frames_are_closed_with_1002_and_the_others_keep_chatting() {
    closes_with(vec![
        case(
            "a continuation with nothing to continue",
            &[frame(OP_CONTINUATION, TYPING)],
            1002,
        ),
        case(
            "a fragmented ping",
            &[client_frame(false, 0, OP_PING, true, b"hi")],
            1002,
        ),
        case(
            "a ping with 126 bytes",
            &[frame(OP_PING, &[b'p'; 126])],
            1002,
        ),
        case(
            "a new text frame while a fragmented one is in progress",
            &[
                client_frame(false, 0, OP_TEXT, true, br#"{"event":"#),
                client_frame(true, 0, OP_TEXT, true, br#""typing"}"#),
            ],
            1002,
        ),
    ])
    .await;
}

#[tokio::test]
async fn close_frames_with_codes_not_allowed_are_closed_with_1002_and_the_others_keep_chatting() {
    closes_with(vec![
        case(
            "a close with code 999",
            &[frame(OP_CLOSE, &close_payload(999, b""))],
            1002,
        ),
        case(
            "a close with a 1-byte payload",
            &[frame(OP_CLOSE, &[0x03])],
            1002,
        ),
        case(
            "a close with code 1004 (reserved)",
            &[frame(OP_CLOSE, &close_payload(1004, b""))],
            1002,
        ),
        case(
            "a close with code 1005 (never on the wire)",
            &[frame(OP_CLOSE, &close_payload(1005, b""))],
            1002,
        ),
        case(
            "a close with code 1006 (never on the wire)",
            &[frame(OP_CLOSE, &close_payload(1006, b""))],
            1002,
        ),
    ])
    .await;
}

#[tokio::test]
async fn a_fragmented_message_over_64_kib_in_all_closes_with_1009() {
    let fragment = vec![b'x'; 40 * 1024];
    assert!(fragment.len() < MESSAGE_LIMIT && 2 * fragment.len() > MESSAGE_LIMIT);
    closes_with(vec![case(
        "two 40 KiB fragments",
        &[
            client_frame(false, 0, OP_TEXT, true, &fragment),
            client_frame(true, 0, OP_CONTINUATION, true, &fragment),
        ],
        1009,
    )])
    .await;
}

#[tokio::test]
async fn a_close_reason_that_is_not_utf8_closes_with_1007() {
    closes_with(vec![case(
        "a close reason of 0xff 0xfe",
        &[frame(OP_CLOSE, &close_payload(1000, &[0xff, 0xfe]))],
        1007,
    )])
    .await;
}

#[tokio::test]
async fn handshake_keys_that_are_not_16_bytes_of_base64_get_400_on_both_endpoints() {
    let server = Server::start().await;
    let mut bob = server.join("bob").await;
    expect_users(&mut bob, &["bob"]).await;
    let bad_keys = [
        ("not base64", "not-base64!!"),
        ("empty", ""),
        ("3 bytes", "AAAA"),
        ("15 bytes", "dGhlIHNhbXBsZSBub25j"),
        ("17 bytes", "dGhlIHNhbXBsZSBub25jZSE="),
    ];
    let endpoints = [
        ("JSON", "/start_web_socket?username=mallory"),
        ("plain text", "/"),
    ];
    let mut wrong = Vec::new();
    for (endpoint, path) in endpoints {
        for (what, key) in bad_keys {
            let (status, head, _) = raw_handshake(&server.addr, path, key).await;
            eprintln!("{endpoint}, key {what} ({key:?}): {status}");
            if status != 400 {
                wrong.push(format!("{endpoint}, key {what} ({key:?}): {head}"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "not refused with 400:\n{}",
        wrong.join("\n")
    );
    server.wait_for_clients(1).await;
    room_goes_on(&mut bob, "still here").await;
}

#[tokio::test]
async fn a_good_handshake_key_gets_101_and_its_accept_value_on_both_endpoints() {
    let server = Server::start().await;
    let mut bob = server.join("bob").await;
    expect_users(&mut bob, &["bob"]).await;
    for path in ["/start_web_socket?username=mallory", "/?username=mallory"] {
        let (status, head, mallory) = raw_handshake(&server.addr, path, SAMPLE_KEY).await;
        assert_eq!(status, 101, "{path}: {head}");
        assert_eq!(
            header(&head, "Sec-WebSocket-Accept"),
            Some(SAMPLE_ACCEPT),
            "{path}: {head}"
        );
        drop(mallory);
        server.wait_for_clients(1).await;
    }
    room_goes_on(&mut bob, "still here").await;
}
