//! The rules for what users may type: names, rooms and messages.
//!
//! Shared so the browser can check input before it is sent and show the
//! same words the server would answer with.

use super::{MAX_MESSAGE_CHARS, MAX_ROOM_CHARS, MAX_USERNAME_CHARS};

/// Why a username was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsernameError {
    /// Nothing is left once surrounding whitespace is trimmed: the name was
    /// empty or all whitespace.
    Empty,
    TooLong,
    /// A control character (`char::is_control`: C0, DEL, C1).
    ControlCharacter(char),
    /// A character in [`INVISIBLE`] (or in the two ranges beyond the BMP):
    /// it shows as nothing or turns the text around it, so a name holding
    /// one can pass for another.
    Invisible(char),
    /// A private-use character or a noncharacter: no meaning and no agreed
    /// glyph, so every screen may show it differently (or not at all).
    PrivateUse(char),
}

impl std::fmt::Display for UsernameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (what, c) = match self {
            Self::Empty => return write!(f, "Username must not be empty"),
            Self::TooLong => {
                return write!(
                    f,
                    "Username must be at most {MAX_USERNAME_CHARS} characters"
                );
            }
            Self::ControlCharacter(c) => ("control characters", c),
            Self::Invisible(c) => ("invisible or direction-changing characters", c),
            Self::PrivateUse(c) => ("private-use characters", c),
        };
        // The code point, since the character itself may not show.
        write!(
            f,
            "Username must not contain {what} (U+{:04X})",
            u32::from(*c)
        )
    }
}

impl std::error::Error for UsernameError {}

/// Characters that are not `char::is_control` yet may not be in a name:
/// format characters, fillers and blanks that show as nothing (zero-width
/// spaces and joiners, soft hyphen, variation selectors, tags, Hangul
/// fillers, the blank Braille pattern), and the bidirectional marks,
/// embeddings, overrides and isolates that reorder the text after them.
/// Two names that differ only by one of these look the same, and
/// `U+202E ecila` shows as `alice`.
///
/// A hand-made table rather than a Unicode crate: this file is in the WASM,
/// where a general-category table would cost kilobytes (and this one is
/// `u16`, with the two ranges beyond the BMP in [`is_invisible`], for the
/// same reason). Inclusive ranges, ascending.
const INVISIBLE: [(u16, u16); 15] = [
    (0x00AD, 0x00AD), // soft hyphen
    (0x034F, 0x034F), // combining grapheme joiner
    (0x061C, 0x061C), // Arabic letter mark
    (0x115F, 0x1160), // Hangul choseong and jungseong fillers
    (0x17B4, 0x17B5), // Khmer inherent vowels
    (0x180B, 0x180F), // Mongolian variation selectors, vowel separator
    (0x200B, 0x200F), // zero-width space, non-joiner, joiner; LRM, RLM
    (0x2028, 0x202E), // line and paragraph separators; embeddings, overrides
    (0x2060, 0x206F), // word joiner, invisible operators, isolates, deprecated
    (0x2800, 0x2800), // Braille pattern blank
    (0x3164, 0x3164), // Hangul filler
    (0xFE00, 0xFE0F), // variation selectors
    (0xFEFF, 0xFEFF), // zero-width no-break space (byte order mark)
    (0xFFA0, 0xFFA0), // halfwidth Hangul filler
    (0xFFF0, 0xFFFB), // unassigned specials, interlinear annotation
];

fn is_invisible(c: u32) -> bool {
    INVISIBLE
        .iter()
        .any(|&(lo, hi)| u32::from(lo) <= c && c <= u32::from(hi))
        // Musical symbol format characters; tags and variation selectors
        // supplement.
        || matches!(c, 0x1D173..=0x1D17A | 0xE0000..=0xE0FFF)
}

/// Private use (the BMP's area and all of planes 15 and 16) and the
/// noncharacters (U+FDD0–U+FDEF and the last two of every plane).
fn is_private_use(c: u32) -> bool {
    matches!(c, 0xE000..=0xF8FF | 0xFDD0..=0xFDEF | 0xF0000..) || c & 0xFFFE == 0xFFFE
}

/// The username as Banter will use it (surrounding whitespace trimmed), or
/// why it cannot be used.
///
/// Names that differ only in case or width (`Alice`, `alice`, `Ａlice`) all
/// pass here; the server refuses the second one in a room as taken.
pub fn parse_username(raw: &str) -> Result<&str, UsernameError> {
    let name = raw.trim();
    if name.is_empty() {
        return Err(UsernameError::Empty);
    }
    if name.chars().count() > MAX_USERNAME_CHARS {
        return Err(UsernameError::TooLong);
    }
    for c in name.chars() {
        let code = u32::from(c);
        if c.is_control() {
            return Err(UsernameError::ControlCharacter(c));
        }
        if is_invisible(code) {
            return Err(UsernameError::Invisible(c));
        }
        if is_private_use(code) {
            return Err(UsernameError::PrivateUse(c));
        }
    }
    Ok(name)
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
    fn usernames_are_trimmed() {
        assert_eq!(parse_username("  alice "), Ok("alice"));
        assert_eq!(parse_username("\u{3000}Zoë & co\n"), Ok("Zoë & co"));
        assert_eq!(parse_username("a  b"), Ok("a  b"), "inner spaces stay");
    }

    #[test]
    fn empty_and_all_whitespace_names_are_refused() {
        for raw in ["", " ", "\t\n", "\u{3000}\u{00A0}\u{2003}"] {
            assert_eq!(parse_username(raw), Err(UsernameError::Empty), "{raw:?}");
        }
        assert_eq!(
            UsernameError::Empty.to_string(),
            "Username must not be empty"
        );
    }

    #[test]
    fn names_are_at_most_32_characters_counted_after_trimming() {
        assert_eq!(parse_username(&"x".repeat(33)), Err(UsernameError::TooLong));
        let padded = format!("  {}  ", "x".repeat(32));
        assert_eq!(parse_username(&padded), Ok("x".repeat(32).as_str()));
        // Characters, not bytes: 32 four-byte emoji are fine.
        assert_eq!(parse_username(&"é".repeat(32)), Ok("é".repeat(32).as_str()));
        assert_eq!(parse_username(&"😀".repeat(32)).map(str::len), Ok(128));
        assert_eq!(
            UsernameError::TooLong.to_string(),
            "Username must be at most 32 characters"
        );
    }

    #[test]
    fn control_characters_are_refused_with_their_code_point() {
        for c in ['\0', '\u{7}', '\u{1B}', '\u{7F}', '\u{85}', '\u{9F}'] {
            let name = format!("a{c}b");
            assert_eq!(
                parse_username(&name),
                Err(UsernameError::ControlCharacter(c))
            );
        }
        assert_eq!(
            UsernameError::ControlCharacter('\u{7}').to_string(),
            "Username must not contain control characters (U+0007)"
        );
    }

    #[test]
    fn invisible_and_direction_changing_characters_are_refused() {
        let astral = [(0x1D173, 0x1D17A), (0xE0000, 0xE0FFF)];
        let bmp = INVISIBLE.map(|(lo, hi)| (u32::from(lo), u32::from(hi)));
        for (lo, hi) in bmp.into_iter().chain(astral) {
            for code in [lo, hi] {
                let c = char::from_u32(code).expect("the table holds characters");
                assert_eq!(
                    parse_username(&format!("al{c}ice")),
                    Err(UsernameError::Invisible(c)),
                    "U+{code:04X}"
                );
            }
        }
        // Trimming does not see them: a name of only a filler is refused too.
        assert_eq!(
            parse_username(" \u{3164} "),
            Err(UsernameError::Invisible('\u{3164}'))
        );
        assert_eq!(
            UsernameError::Invisible('\u{202E}').to_string(),
            "Username must not contain invisible or direction-changing characters (U+202E)"
        );
        assert_eq!(
            UsernameError::Invisible('\u{E0041}').to_string(),
            "Username must not contain invisible or direction-changing characters (U+E0041)"
        );
    }

    #[test]
    fn the_invisible_table_is_sorted_and_its_neighbours_are_allowed() {
        assert!(INVISIBLE.iter().all(|(lo, hi)| lo <= hi));
        for pair in INVISIBLE.windows(2) {
            assert!(pair[0].1 + 1 < pair[1].0, "{pair:?}");
        }
        // Just outside a few ranges: ordinary visible characters.
        for ok in [
            "\u{AC}", "\u{AE}", "\u{2010}", "\u{2027}", "\u{2030}", "\u{FFFC}", "\u{FFFD}",
        ] {
            assert_eq!(parse_username(ok), Ok(ok), "{ok:?}");
        }
    }

    #[test]
    fn private_use_and_noncharacters_are_refused() {
        for code in [
            0xE000, 0xF8FF, 0xFDD0, 0xFDEF, 0xFFFE, 0xFFFF, 0x1FFFE, 0xEFFFF, 0xF0000, 0x10FFFD,
            0x10FFFF,
        ] {
            let c = char::from_u32(code).expect("a character");
            assert_eq!(
                parse_username(&format!("x{c}")),
                Err(UsernameError::PrivateUse(c)),
                "U+{code:04X}"
            );
        }
        for ok in [
            "\u{D7FF}",
            "\u{F900}",
            "\u{FDCF}",
            "\u{FDF0}",
            "\u{1FFFD}",
            "𝒜",
        ] {
            assert_eq!(parse_username(ok), Ok(ok), "{ok:?}");
        }
        assert_eq!(
            UsernameError::PrivateUse('\u{E000}').to_string(),
            "Username must not contain private-use characters (U+E000)"
        );
    }

    #[test]
    fn ordinary_names_in_any_script_are_accepted() {
        for name in [
            "alice",
            "Zoë & co",
            "Ａlice",
            "王小明",
            "Ελένη",
            "محمد",
            "😀 party",
            "O'Brien-2",
        ] {
            assert_eq!(parse_username(name), Ok(name));
        }
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
