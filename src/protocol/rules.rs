//! The rules for what users may type: names, rooms and messages.
//!
//! Shared so the browser can check input before it is sent and show the
//! same words the server would answer with.

use super::{MAX_MESSAGE_CHARS, MAX_ROOM_CHARS, MAX_USERNAME_CHARS};

/// Why a username was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsernameError {
    Empty,
    TooLong,
    ControlCharacter,
}

impl std::fmt::Display for UsernameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => write!(f, "Username must not be empty"),
            Self::TooLong => write!(
                f,
                "Username must be at most {MAX_USERNAME_CHARS} characters"
            ),
            Self::ControlCharacter => write!(f, "Username must not contain control characters"),
        }
    }
}

impl std::error::Error for UsernameError {}

/// The username as Banter will use it (surrounding whitespace trimmed), or
/// why it cannot be used.
pub fn parse_username(raw: &str) -> Result<&str, UsernameError> {
    let name = raw.trim();
    if name.is_empty() {
        Err(UsernameError::Empty)
    } else if name.chars().count() > MAX_USERNAME_CHARS {
        Err(UsernameError::TooLong)
    } else if name.chars().any(char::is_control) {
        Err(UsernameError::ControlCharacter)
    } else {
        Ok(name)
    }
}

/// Why a chat message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageError {
    Blank,
    TooLong { chars: usize },
}

impl std::fmt::Display for MessageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Blank => write!(f, "Message must not be empty"),
            Self::TooLong { chars } => write!(
                f,
                "Message is {chars} characters long; the limit is {MAX_MESSAGE_CHARS}"
            ),
        }
    }
}

impl std::error::Error for MessageError {}

/// Checks a chat message before it is sent to everyone.
pub fn check_message(message: &str) -> Result<(), MessageError> {
    if message.trim().is_empty() {
        return Err(MessageError::Blank);
    }
    // Counting stops early: a huge message costs no more than the limit.
    let chars = message.chars().take(MAX_MESSAGE_CHARS + 1).count();
    if chars > MAX_MESSAGE_CHARS {
        return Err(MessageError::TooLong {
            chars: message.chars().count(),
        });
    }
    Ok(())
}

/// Why a room name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoomError {
    Empty,
    TooLong,
    BadCharacter(char),
}

impl std::fmt::Display for RoomError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Empty => write!(f, "Room name must not be empty"),
            Self::TooLong => write!(f, "Room name must be at most {MAX_ROOM_CHARS} characters"),
            Self::BadCharacter(c) => write!(
                f,
                "Room name may use only letters, digits, - and _ (not '{c}')"
            ),
        }
    }
}

impl std::error::Error for RoomError {}

/// The room's canonical name (lowercase), or why `raw` is not one.
///
/// Names are ASCII so they read the same in a URL (`/r/NAME`) as on screen,
/// and case-insensitive so `/r/Rust` and `/r/rust` are one conversation.
pub fn parse_room(raw: &str) -> Result<String, RoomError> {
    if raw.is_empty() {
        return Err(RoomError::Empty);
    }
    if let Some(bad) = raw
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(RoomError::BadCharacter(bad));
    }
    if raw.len() > MAX_ROOM_CHARS {
        return Err(RoomError::TooLong);
    }
    Ok(raw.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_trimmed_and_checked() {
        assert_eq!(parse_username("  alice "), Ok("alice"));
        assert_eq!(parse_username("   "), Err(UsernameError::Empty));
        assert_eq!(parse_username(&"x".repeat(33)), Err(UsernameError::TooLong));
        assert_eq!(parse_username(&"é".repeat(32)), Ok("é".repeat(32).as_str()));
        assert_eq!(
            parse_username("a\u{7}b"),
            Err(UsernameError::ControlCharacter)
        );
    }

    #[test]
    fn messages_are_checked() {
        assert_eq!(check_message("hi"), Ok(()));
        assert_eq!(check_message(" \n\t"), Err(MessageError::Blank));
        assert_eq!(check_message(&"é".repeat(4000)), Ok(()));
        assert_eq!(
            check_message(&"x".repeat(4001)),
            Err(MessageError::TooLong { chars: 4001 })
        );
    }

    #[test]
    fn room_names_are_checked_and_lowercased() {
        assert_eq!(parse_room("general"), Ok("general".to_string()));
        assert_eq!(parse_room("Rust-lang_2"), Ok("rust-lang_2".to_string()));
        assert_eq!(parse_room(&"r".repeat(40)).map(|r| r.len()), Ok(40));
        assert_eq!(parse_room(&"r".repeat(41)), Err(RoomError::TooLong));
        assert_eq!(parse_room(""), Err(RoomError::Empty));
        assert_eq!(parse_room("a b"), Err(RoomError::BadCharacter(' ')));
        assert_eq!(parse_room("café"), Err(RoomError::BadCharacter('é')));
        assert_eq!(parse_room("../x"), Err(RoomError::BadCharacter('.')));
    }
}
