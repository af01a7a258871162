//! Property tests ("fuzzing" with a fixed budget) for everything that reads
//! untrusted text: the server's client-event decoder, the browser's
//! server-event decoder, and the username and room-name rules.
//!
//! Each property runs [`CASES`] generated cases (`PROPTEST_CASES=100000
//! cargo test --features ssr --test fuzz` for a longer hunt), so the file
//! takes a few seconds inside `cargo test` (10 properties × 1,000 cases:
//! about 3.5 s in a debug build on two cores). Inputs are built structurally
//! (JSON values, event-shaped objects, token soup, nesting far past
//! serde_json's limit) as well as from arbitrary strings, which alone would
//! rarely get past the first byte.

use std::sync::Arc;

use banter::protocol::{
    ChatMessage, ClientEvent, MAX_ROOM_CHARS, MAX_USERNAME_CHARS, RoomError, ServerEvent,
    UsernameError, parse_room, parse_username,
};
use proptest::{collection::vec, prelude::*, sample::select};
use serde_json::{Map, Value};

/// Cases per property unless `PROPTEST_CASES` says otherwise.
const CASES: u32 = 1_000;

fn config() -> ProptestConfig {
    // `ProptestConfig::default()` reads PROPTEST_CASES.
    let default = ProptestConfig::default();
    let cases = match std::env::var_os("PROPTEST_CASES") {
        Some(_) => default.cases,
        None => CASES,
    };
    ProptestConfig { cases, ..default }
}

// ---- generators ---------------------------------------------------------------

/// Short text, mostly printable, sometimes anything at all.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9 _-]{0,12}",
        1 => any::<String>(),
    ]
}

const EVENTS: &[&str] = &[
    "send-message",
    "load-history",
    "typing",
    "history",
    "update-users",
    "user-joined",
    "user-left",
    "error",
    "fly",
    "",
    "SEND-MESSAGE",
];

const FIELDS: &[&str] = &[
    "event",
    "message",
    "client_id",
    "before",
    "username",
    "usernames",
    "messages",
    "more",
    "id",
    "ts",
];

/// Any JSON value, a few levels deep.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // NaN and infinities become null
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            vec((text(), inner), 0..6).prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// A value of a shape some event field has, so decoding often succeeds.
fn plausible() -> impl Strategy<Value = Value> {
    let message = (
        text(),
        text(),
        any::<u64>(),
        text(),
        proptest::option::of(text()),
    )
        .prop_map(|(username, message, id, ts, client_id)| {
            serde_json::to_value(ChatMessage {
                username,
                message,
                id,
                ts,
                client_id,
            })
            .expect("a message serialises")
        });
    prop_oneof![
        text().prop_map(Value::String),
        any::<u64>().prop_map(Value::from),
        any::<bool>().prop_map(Value::Bool),
        vec(text(), 0..4).prop_map(Value::from),
        vec(message, 0..3).prop_map(Value::Array),
        Just(Value::Null),
    ]
}

/// An object with an `event` (usually a real one), some of the protocol's
/// fields with plausible or arbitrary values, and unknown fields.
fn event_like() -> impl Strategy<Value = Value> {
    let field = prop_oneof![3 => select(FIELDS).prop_map(String::from), 1 => text()];
    let value = prop_oneof![3 => plausible(), 1 => json()];
    (
        proptest::option::of(select(EVENTS)),
        vec((field, value), 0..7),
    )
        .prop_map(|(event, fields)| {
            let mut object: Map<String, Value> = fields.into_iter().collect();
            if let Some(event) = event {
                object.insert("event".into(), event.into());
            }
            Value::Object(object)
        })
}

/// A change to a real event's JSON.
#[derive(Debug, Clone)]
enum Edit {
    Add(String, Value),
    Remove(usize),
    Replace(usize, Value),
    Rename(&'static str),
}

/// A real event, as JSON, with up to two edits: mostly valid, or invalid
/// in one small way (a field missing, of the wrong type, an unknown one,
/// another event's name), which is where decoders differ.
fn near_miss() -> impl Strategy<Value = Value> {
    let base = prop_oneof![
        client_event().prop_map(|e| serde_json::to_value(e).expect("serialises")),
        server_event().prop_map(|e| serde_json::to_value(e).expect("serialises")),
    ];
    let field = || prop_oneof![3 => select(FIELDS).prop_map(String::from), 1 => text()];
    let value = || prop_oneof![3 => plausible(), 1 => json()];
    let edit = prop_oneof![
        (field(), value()).prop_map(|(k, v)| Edit::Add(k, v)),
        any::<usize>().prop_map(Edit::Remove),
        (any::<usize>(), value()).prop_map(|(i, v)| Edit::Replace(i, v)),
        select(EVENTS).prop_map(Edit::Rename),
    ];
    (base, vec(edit, 0..3)).prop_map(|(mut event, edits)| {
        if let Value::Object(object) = &mut event {
            for edit in edits {
                let nth = |i: usize| object.keys().nth(i % object.len().max(1)).cloned();
                match edit {
                    Edit::Add(k, v) => {
                        object.insert(k, v);
                    }
                    Edit::Remove(i) => {
                        if let Some(k) = nth(i) {
                            object.remove(&k);
                        }
                    }
                    Edit::Replace(i, v) => {
                        if let Some(k) = nth(i) {
                            object.insert(k, v);
                        }
                    }
                    Edit::Rename(name) => {
                        object.insert("event".into(), name.into());
                    }
                }
            }
        }
        event
    })
}

/// Text made of JSON tokens in any order: unbalanced brackets, duplicate
/// keys, lone surrogate escapes, huge exponents, trailing garbage.
fn token_soup() -> impl Strategy<Value = String> {
    const TOKENS: &[&str] = &[
        "{",
        "}",
        "[",
        "]",
        ",",
        ":",
        " ",
        "\"event\"",
        "\"send-message\"",
        "\"typing\"",
        "\"error\"",
        "\"history\"",
        "\"update-users\"",
        "\"message\"",
        "\"username\"",
        "\"usernames\"",
        "\"messages\"",
        "\"more\"",
        "\"before\"",
        "\"client_id\"",
        "\"id\"",
        "\"ts\"",
        "\"hi\"",
        "0",
        "-1",
        "18446744073709551616",
        "1e400",
        "1.5",
        "null",
        "true",
        "\"\\ud800\"",
        "\"\\u0000\"",
        "\"\\\"",
        "\"",
        "\u{202E}",
        "é",
    ];
    vec(select(TOKENS), 0..40).prop_map(|tokens| tokens.concat())
}

/// `depth` levels of nesting, cycling through array and object openers.
fn nest(depth: usize, shapes: &[u8]) -> String {
    let mut open = String::new();
    let mut close = Vec::new();
    for i in 0..depth {
        let (o, c) = match shapes[i % shapes.len()] % 3 {
            0 => ("[", "]"),
            1 => ("{\"k\":", "}"),
            _ => ("[1,", "]"),
        };
        open.push_str(o);
        close.push(c);
    }
    close.reverse();
    format!("{open}0{}", close.concat())
}

fn client_event() -> impl Strategy<Value = ClientEvent> {
    prop_oneof![
        (any::<String>(), proptest::option::of(any::<String>()))
            .prop_map(|(message, client_id)| ClientEvent::SendMessage { message, client_id }),
        any::<u64>().prop_map(|before| ClientEvent::LoadHistory { before }),
        Just(ClientEvent::Typing),
    ]
}

fn chat_message() -> impl Strategy<Value = ChatMessage> {
    (
        any::<String>(),
        any::<String>(),
        any::<u64>(),
        any::<String>(),
        proptest::option::of(any::<String>()),
    )
        .prop_map(|(username, message, id, ts, client_id)| ChatMessage {
            username,
            message,
            id,
            ts,
            client_id,
        })
}

fn server_event() -> impl Strategy<Value = ServerEvent> {
    let names = || vec(any::<String>().prop_map(Arc::<str>::from), 0..5);
    prop_oneof![
        chat_message().prop_map(ServerEvent::SendMessage),
        (vec(chat_message(), 0..4), any::<bool>())
            .prop_map(|(messages, more)| ServerEvent::History { messages, more }),
        any::<String>().prop_map(|u| ServerEvent::Typing { username: u.into() }),
        names().prop_map(|usernames| ServerEvent::UpdateUsers { usernames }),
        names().prop_map(|usernames| ServerEvent::UserJoined { usernames }),
        names().prop_map(|usernames| ServerEvent::UserLeft { usernames }),
        any::<String>().prop_map(|message| ServerEvent::Error { message }),
    ]
}

/// What the issue forbids in a name, restated here as the oracle: control
/// characters, the invisible and bidi ranges, private use, noncharacters.
fn forbidden(c: char) -> bool {
    let u = u32::from(c);
    c.is_control()
        || matches!(
            u,
            0xAD | 0x34F
                | 0x61C
                | 0x115F..=0x1160
                | 0x17B4..=0x17B5
                | 0x180B..=0x180F
                | 0x200B..=0x200F
                | 0x2028..=0x202E
                | 0x2060..=0x206F
                | 0x2800
                | 0x3164
                | 0xFE00..=0xFE0F
                | 0xFEFF
                | 0xFFA0
                | 0xFFF0..=0xFFFB
                | 0x1D173..=0x1D17A
                | 0xE0000..=0xE0FFF
                | 0xE000..=0xF8FF
                | 0xFDD0..=0xFDEF
                | 0xF0000..
        )
        || u & 0xFFFE == 0xFFFE
}

/// Name-like input: around the length limit, padded with whitespace, and
/// often holding one of the characters the rules are about.
fn name_input() -> impl Strategy<Value = String> {
    const RANGES: &[(u32, u32)] = &[
        (0x00, 0x1F),
        (0x7F, 0x9F),
        (0xAD, 0xAD),
        (0x200B, 0x200F),
        (0x2028, 0x202E),
        (0x2060, 0x206F),
        (0x3164, 0x3164),
        (0xFE00, 0xFE0F),
        (0xFEFF, 0xFEFF),
        (0xFFF0, 0xFFFF),
        (0xE000, 0xF8FF),
        (0xE0000, 0xE0FFF),
        (0x10FFFE, 0x10FFFF),
    ];
    let special = select(RANGES)
        .prop_flat_map(|(lo, hi)| (lo..=hi).prop_filter_map("a char", char::from_u32));
    let space = select(&[' ', '\t', '\n', '\u{A0}', '\u{3000}', '\u{2003}'][..]);
    let c = prop_oneof![
        6 => proptest::char::range('a', 'z'),
        2 => any::<char>(),
        1 => special,
        1 => space,
    ];
    vec(c, 0..40).prop_map(String::from_iter)
}

// ---- properties -----------------------------------------------------------------

/// The server's decoder: an error or an event, never a panic; and an event
/// it accepts writes back as JSON that reads as the same event.
fn check_client_decoder(text: &str) -> Result<(), TestCaseError> {
    if let Ok(event) = serde_json::from_str::<ClientEvent>(text) {
        let again = serde_json::to_string(&event).expect("client events serialise");
        prop_assert_eq!(
            serde_json::from_str::<ClientEvent>(&again).ok(),
            Some(event)
        );
    }
    Ok(())
}

/// The browser's flat decoder: never a panic, and never more lenient than
/// the derived one (within serde_json's depth limit): whatever it accepts,
/// the derive accepts as the same event.
fn check_server_decoder(text: &str) -> Result<(), TestCaseError> {
    if let Ok(event) = ServerEvent::from_json(text) {
        let derived = serde_json::from_str::<ServerEvent>(text);
        prop_assert_eq!(derived.ok(), Some(event), "{}", text);
    }
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn decoders_never_panic_on_arbitrary_strings(text in any::<String>()) {
        check_client_decoder(&text)?;
        check_server_decoder(&text)?;
    }

    #[test]
    fn decoders_never_panic_on_token_soup(text in token_soup()) {
        check_client_decoder(&text)?;
        check_server_decoder(&text)?;
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_json(value in json()) {
        let text = value.to_string();
        check_client_decoder(&text)?;
        check_server_decoder(&text)?;
    }

    #[test]
    fn decoders_never_panic_on_event_shaped_json(value in prop_oneof![event_like(), near_miss()]) {
        let text = value.to_string();
        check_client_decoder(&text)?;
        check_server_decoder(&text)?;
    }

    /// From the 128th level on both decoders refuse (127 nested values in
    /// an event's object make 128), at any depth up to what fits in a
    /// frame, as arrays or objects, bare or inside an event's field.
    #[test]
    fn nesting_past_the_limit_is_an_error_not_a_crash(
        depth in 127usize..8_000,
        shapes in vec(any::<u8>(), 1..4),
        wrap in 0u8..4,
    ) {
        let deep = nest(depth, &shapes);
        let text = match wrap {
            0 => deep,
            1 => format!(r#"{{"event":"send-message","message":{deep}}}"#),
            2 => format!(r#"{{"x":{deep},"event":"typing"}}"#),
            _ => format!(r#"{{"event":"update-users","usernames":{deep}}}"#),
        };
        prop_assert!(serde_json::from_str::<ClientEvent>(&text).is_err());
        prop_assert!(serde_json::from_str::<ServerEvent>(&text).is_err());
        // The flat decoder skips unknown fields without descending (no
        // stack, no limit); only a field it reads can be too deep for it.
        if wrap != 2 {
            prop_assert!(ServerEvent::from_json(&text).is_err());
        }
    }

    /// Up to 127 levels, an unknown field is simply ignored.
    #[test]
    fn nesting_within_the_limit_is_ignored_in_unknown_fields(
        depth in 0usize..127,
        shapes in vec(any::<u8>(), 1..4),
    ) {
        // The outer object is a level too.
        let deep = nest(depth, &shapes);
        let text = format!(r#"{{"x":{deep},"event":"typing"}}"#);
        prop_assert_eq!(serde_json::from_str::<ClientEvent>(&text).ok(), Some(ClientEvent::Typing));
    }

    #[test]
    fn client_events_round_trip(event in client_event()) {
        let text = serde_json::to_string(&event).expect("client events serialise");
        prop_assert_eq!(serde_json::from_str::<ClientEvent>(&text).ok(), Some(event));
    }

    #[test]
    fn server_events_round_trip_through_both_decoders(event in server_event()) {
        let text = serde_json::to_string(&event).expect("server events serialise");
        prop_assert_eq!(ServerEvent::from_json(&text).ok(), Some(event.clone()));
        prop_assert_eq!(serde_json::from_str::<ServerEvent>(&text).ok(), Some(event));
    }

    /// A name is accepted exactly when the rules allow it, as the trimmed
    /// input, and accepting it again changes nothing.
    #[test]
    fn usernames_follow_the_rules(raw in prop_oneof![name_input(), any::<String>()]) {
        let trimmed = raw.trim();
        let chars = trimmed.chars().count();
        match parse_username(&raw) {
            Ok(name) => {
                prop_assert_eq!(name, trimmed);
                prop_assert!((1..=MAX_USERNAME_CHARS).contains(&chars));
                prop_assert!(!name.chars().any(forbidden), "{:?}", name);
                prop_assert_eq!(parse_username(name), Ok(name));
            }
            Err(UsernameError::Empty) => prop_assert!(trimmed.is_empty()),
            Err(UsernameError::TooLong) => prop_assert!(chars > MAX_USERNAME_CHARS),
            Err(
                UsernameError::ControlCharacter(c)
                | UsernameError::Invisible(c)
                | UsernameError::PrivateUse(c)
            ) => {
                prop_assert!(forbidden(c), "U+{:04X}", u32::from(c));
                prop_assert!(trimmed.contains(c));
                prop_assert!((1..=MAX_USERNAME_CHARS).contains(&chars));
            }
        }
        if !trimmed.is_empty() && chars <= MAX_USERNAME_CHARS && !trimmed.chars().any(forbidden) {
            prop_assert!(parse_username(&raw).is_ok(), "{:?}", raw);
        }
        // Every refusal reads as a sentence a close frame can carry.
        if let Err(err) = parse_username(&raw) {
            prop_assert!(err.to_string().len() <= 123);
        }
    }

    /// A room name is accepted exactly when it is 1–40 ASCII letters,
    /// digits, `-` and `_`, as its lowercase; and that is a room name too.
    #[test]
    fn room_names_follow_the_rules(
        raw in prop_oneof!["[a-zA-Z0-9_-]{0,45}", "[a-zA-Z0-9_./ é-]{0,45}", any::<String>()]
    ) {
        let allowed = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        match parse_room(&raw) {
            Ok(room) => {
                prop_assert_eq!(&room, &raw.to_ascii_lowercase());
                prop_assert!((1..=MAX_ROOM_CHARS).contains(&room.len()));
                prop_assert!(room.chars().all(|c| allowed(c) && !c.is_ascii_uppercase()));
                prop_assert_eq!(parse_room(&room), Ok(room.clone()));
            }
            Err(RoomError::Empty) => prop_assert!(raw.is_empty()),
            Err(RoomError::TooLong) => prop_assert!(raw.len() > MAX_ROOM_CHARS),
            Err(RoomError::BadCharacter(c)) => {
                prop_assert!(!allowed(c));
                prop_assert!(raw.contains(c));
            }
        }
        if !raw.is_empty() && raw.len() <= MAX_ROOM_CHARS && raw.chars().all(allowed) {
            prop_assert!(parse_room(&raw).is_ok());
        }
    }
}
