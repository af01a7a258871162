//! The frame a message is published as, built before its id is known.

use crate::{
    protocol::{ChatMessage, ServerEvent},
    server::chat::frame::{Frame, encode},
};

/// The `send-message` frame around its id: everything before the id and
/// everything after, so the publish script can put the id it assigns in
/// between without anyone serialising the message again.
pub(super) fn message_template(
    username: &str,
    message: &str,
    ts: &str,
    client_id: &Option<String>,
) -> (String, String) {
    let frame: Frame = encode(&ServerEvent::SendMessage(ChatMessage {
        username: username.to_string(),
        message: message.to_string(),
        id: 0,
        ts: ts.to_string(),
        client_id: client_id.clone(),
    }));
    // Every `"` inside a JSON string is escaped, so this key sequence can
    // only be the structural one.
    const ID_AT: &str = "\"id\":0,";
    match frame.as_str().find(ID_AT) {
        Some(at) => {
            let head = &frame.as_str()[..at + "\"id\":".len()];
            let tail = &frame.as_str()[at + ID_AT.len() - 1..];
            (head.to_string(), tail.to_string())
        }
        None => {
            tracing::error!("a send-message frame without an id field");
            (frame.to_string(), String::new())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_around_the_id_is_the_frame_serde_writes() {
        for (message, client_id) in [
            ("hello", None),
            (r#"tricky "id":0, and \ quotes"#, Some("c-1".to_string())),
            ("ünïcödé 😀", Some(r#""id":0,"#.to_string())),
        ] {
            let (head, tail) =
                message_template("al\"ice", message, "2026-12-01T00:00:00.000Z", &client_id);
            let expected = encode(&ServerEvent::SendMessage(ChatMessage {
                username: "al\"ice".into(),
                message: message.into(),
                id: 4711,
                ts: "2026-12-01T00:00:00.000Z".into(),
                client_id,
            }));
            assert_eq!(format!("{head}4711{tail}"), expected.as_str());
        }
    }
}
