//! The help bot, as people meet it: the real binary with `--help-bot`,
//! talked to over real sockets (plain text and JSON).

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::{
    connect_async,
    tungstenite::{
        Message,
        protocol::{CloseFrame, frame::coding::CloseCode},
    },
};

use crate::support::{PATIENCE, Server, expect_event, next_text, say};

/// The repository's keyword table, which the tests' answers come from.
fn keywords() -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/help-bot.toml").to_owned()
}

/// A server with the bot, once the bot is in #help.
async fn with_bot() -> Server {
    let server = Server::start_with(&["--help-bot", "--help-bot-keywords", &keywords()]).await;
    let arrived = tokio::time::timeout(PATIENCE, async {
        loop {
            let (_, response) = server.http_get("/api/rooms").await;
            if response.contains(r#""name":"help","online":1"#) {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(arrived.is_ok(), "helpbot never came into #help");
    server
}

/// A plain-text client on /r/help that sends its next line only after each
/// line it receives gets the greeting, then an answer to each of `hello`
/// and `i need help`, and its own close comes back as a clean 1000.
#[tokio::test]
async fn a_plain_text_client_in_help_is_greeted_and_answered() {
    let server = with_bot().await;
    let (mut socket, _) = connect_async(format!("ws://{}/r/help", server.addr))
        .await
        .expect("connect");
    let mut to_send = vec!["i need help", "hello"];
    let mut from_bot = Vec::new();
    let mut me = String::new();
    while from_bot.len() < 3 {
        let line = next_text(&mut socket).await;
        if let Some(rest) = line.strip_prefix("* Welcome to #help, ") {
            me = rest.split('.').next().unwrap_or_default().to_owned();
            assert!(line.contains("helpbot"), "the bot is in the room: {line}");
        }
        if let Some(said) = line.strip_prefix("helpbot: ") {
            from_bot.push(said.to_owned());
        }
        if let Some(next) = to_send.pop() {
            socket.send(Message::text(next)).await.expect("send");
        }
    }
    assert!(me.starts_with("guest-"), "{me}");
    assert_eq!(
        from_bot,
        [
            format!("Welcome to #help, {me}! Say hello, or tell me what you need help with."),
            format!("Hello {me}, how can I help you today?"),
            format!(
                "Of course, {me}: please describe the problem, and what you expected to happen."
            ),
        ]
    );
    socket
        .send(Message::Close(Some(CloseFrame {
            code: CloseCode::Normal,
            reason: "".into(),
        })))
        .await
        .expect("close");
    let answer = tokio::time::timeout(PATIENCE, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                other => panic!("no close frame came back: {other:?}"),
            }
        }
    })
    .await
    .expect("close answered in time");
    assert_eq!(answer, Some(1000));
    server.stop().await;
}

/// Anything else gets the polite "don't understand" with the keywords.
#[tokio::test]
async fn an_unknown_message_gets_the_list_of_keywords() {
    let server = with_bot().await;
    let mut ann = server.connect("username=ann&room=help").await;
    expect_event(&mut ann, "send-message", |e| {
        e["username"] == "helpbot" && e["message"].as_str().is_some_and(|m| m.contains("Welcome"))
    })
    .await;
    say(&mut ann, "what is the weather").await;
    let answer = expect_event(&mut ann, "send-message", |e| e["username"] == "helpbot").await;
    assert_eq!(
        answer["message"],
        "Sorry ann, I don't understand. I know about: hi, hello, hey, help."
    );
    server.stop().await;
}

/// In another room the bot answers only a message that mentions it, once
/// it has joined the room (it joins rooms with people in them).
#[tokio::test]
async fn a_mention_in_another_room_is_answered() {
    let server = with_bot().await;
    let mut bob = server.connect("username=bob&room=ops&presence=delta").await;
    // The bot arrives within a few seconds of someone being here.
    tokio::time::timeout(PATIENCE, async {
        loop {
            let event = expect_event(&mut bob, "user-joined", |_| true).await;
            if event["usernames"]
                .as_array()
                .is_some_and(|n| n.iter().any(|n| n == "helpbot"))
            {
                return;
            }
        }
    })
    .await
    .expect("helpbot joined #ops");
    say(&mut bob, "hello everyone").await;
    say(&mut bob, "@helpbot hello").await;
    let answer = expect_event(&mut bob, "send-message", |e| e["username"] == "helpbot").await;
    assert_eq!(answer["message"], "Hello bob, how can I help you today?");
    // Only that one: "hello everyone" (no mention) was not answered.
    say(&mut bob, "done").await;
    let next = expect_event(&mut bob, "send-message", |e| e["message"] == "done").await;
    assert_eq!(next["username"], "bob");
    server.stop().await;
}

/// A keyword file that cannot be read as one stops the start, naming the
/// file and the line.
#[tokio::test]
async fn a_bad_keyword_file_stops_the_start_with_its_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("keywords.toml");
    std::fs::write(
        &file,
        "greeting = \"hi {name}\"\nunknown = \"?\"\n\n[[answers]]\nkeywords = \"hello\"\nreply = \"x\"\n",
    )
    .expect("write");
    let path = file.to_str().expect("utf-8 path");
    let refused =
        Server::try_start_in(dir.path(), &["--help-bot", "--help-bot-keywords", path]).await;
    let Err(stderr) = refused else {
        panic!("the server started with a bad keyword file");
    };
    assert!(
        stderr.contains(&format!("the help bot's keywords {path}, line 5:")),
        "{stderr}"
    );
}
