//! The HTTP side of a connection: the one request a client sends before it
//! is a WebSocket, and the answer to it. A `GET /start_web_socket` that asks
//! for an upgrade gets 101 with its `Sec-WebSocket-Accept`; any other path
//! gets 404 and a request to the chat path that is not an upgrade gets 426
//! (the statuses `bench/baselines/deno_chat.ts` answers with), both with
//! `connection: close`.
//!
//! Only what the chat needs is read: the request line's path and query (the
//! username), the `Upgrade` header and the key. Anything else a request
//! carries is ignored rather than validated; this is a floor to measure
//! against, not a general HTTP server.

use base64::Engine;
use sha1::{Digest, Sha1};

/// An upgrade request longer than this is refused (the connection dropped).
pub(crate) const MAX_REQUEST: usize = 8 * 1024;
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The upgrade response and the username, or the HTTP refusal to send.
pub(crate) fn upgrade(request: &str) -> Result<(String, String), &'static str> {
    const NOT_FOUND: &str =
        "HTTP/1.1 404 Not Found\r\ncontent-length: 10\r\nconnection: close\r\n\r\nnot found\n";
    const WEBSOCKET_ONLY: &str = "HTTP/1.1 426 Upgrade Required\r\ncontent-length: 15\r\n\
                                  connection: close\r\n\r\nWebSocket only\n";
    let mut lines = request.split("\r\n");
    let target = lines
        .next()
        .and_then(|line| line.strip_prefix("GET "))
        .and_then(|rest| rest.split(' ').next())
        .ok_or(NOT_FOUND)?;
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != "/start_web_socket" {
        return Err(NOT_FOUND);
    }
    let (mut key, mut websocket) = (None, false);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("sec-websocket-key") {
            key = Some(value);
        } else if name.eq_ignore_ascii_case("upgrade") {
            websocket = value.eq_ignore_ascii_case("websocket");
        }
    }
    let key = key.filter(|_| websocket).ok_or(WEBSOCKET_ONLY)?;
    let name = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("username="))
        .map(percent_decode)
        .unwrap_or_default();
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\
         sec-websocket-accept: {}\r\n\r\n",
        accept_key(key)
    );
    Ok((response, name))
}

fn accept_key(key: &str) -> String {
    let digest = Sha1::new()
        .chain_update(key.as_bytes())
        .chain_update(GUID.as_bytes())
        .finalize();
    base64::engine::general_purpose::STANDARD.encode(digest)
}

/// A query value as URLSearchParams reads it: `+` is a space, `%XX` a byte.
fn percent_decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_is_rfc_6455s_example() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn upgrades_only_the_chat_path_and_reads_the_name() {
        let request = "GET /start_web_socket?presence=delta&username=zo%C3%AB+b HTTP/1.1\r\n\
                       Host: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n";
        let (response, name) = upgrade(request).unwrap();
        assert!(response.starts_with("HTTP/1.1 101"));
        assert!(response.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
        assert_eq!(name, "zoë b");
        assert!(
            upgrade("GET /other HTTP/1.1\r\n")
                .unwrap_err()
                .contains("404")
        );
        assert!(
            upgrade("GET /start_web_socket HTTP/1.1\r\n")
                .unwrap_err()
                .contains("426")
        );
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%4"), "%4");
    }
}
