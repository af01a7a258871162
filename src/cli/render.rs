//! How `banter-cli` shows the chat: one line per event, with the time and
//! the author, the user's own messages marked, in colour on a terminal.

use anstyle::{AnsiColor, Style};

use crate::{
    protocol::{ChatMessage, RoomSummary},
    supervisor::Link,
    transcript::{Line, list, shown},
};

/// Colours for other people's names, picked by name so each keeps one.
const NAME_COLOURS: [AnsiColor; 5] = [
    AnsiColor::Cyan,
    AnsiColor::Magenta,
    AnsiColor::Blue,
    AnsiColor::Yellow,
    AnsiColor::BrightCyan,
];

/// The user's name and whether to colour.
#[derive(Debug, Clone)]
pub(super) struct Render {
    pub(super) me: String,
    pub(super) colour: bool,
}

impl Render {
    /// Colour when stdout is a terminal and `NO_COLOR` is unset or empty
    /// (<https://no-color.org>).
    pub(super) fn new(me: String, stdout_is_terminal: bool) -> Self {
        let no_colour = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Render {
            me,
            colour: stdout_is_terminal && !no_colour,
        }
    }

    fn paint(&self, style: Style, text: &str) -> String {
        if self.colour {
            format!("{style}{text}{style:#}")
        } else {
            text.to_owned()
        }
    }

    /// `19:30 alice: hello`; the user's own as `19:30 alice (you): hello`.
    pub(super) fn message(&self, message: &ChatMessage) -> String {
        // RFC 3339 from the server: the hour and minute, UTC.
        let time = message.ts.get(11..16).unwrap_or("--:--");
        let own = message.username == self.me;
        let author = if own {
            self.paint(
                Style::new().bold().fg_color(Some(AnsiColor::Green.into())),
                &format!("{} (you)", message.username),
            )
        } else {
            let pick =
                message.username.bytes().map(usize::from).sum::<usize>() % NAME_COLOURS.len();
            self.paint(
                Style::new()
                    .bold()
                    .fg_color(Some(NAME_COLOURS[pick].into())),
                &message.username,
            )
        };
        format!(
            "{} {author}: {}",
            self.paint(Style::new().dimmed(), time),
            message.message
        )
    }

    pub(super) fn line(&self, line: &Line<'_>) -> String {
        match line {
            Line::Message(message) => self.message(message),
            Line::Refused(sentence) => self.paint(
                Style::new().fg_color(Some(AnsiColor::Red.into())),
                &format!("! {}", shown(sentence)),
            ),
            other => self.note(&other.to_string()),
        }
    }

    /// A line about the chat rather than in it (`* …`), dimmed.
    pub(super) fn note(&self, text: &str) -> String {
        let text = if text.starts_with("* ") {
            text.to_owned()
        } else {
            format!("* {text}")
        };
        self.paint(Style::new().dimmed(), &text)
    }

    pub(super) fn users(&self, room: &str, names: &[&str]) -> String {
        self.note(&format!("#{room}: {} online: {}", names.len(), list(names)))
    }

    pub(super) fn rooms(&self, rooms: &[RoomSummary]) -> String {
        if rooms.is_empty() {
            return self.note("no rooms yet");
        }
        let listed: Vec<String> = rooms
            .iter()
            .map(|room| format!("#{} ({} online)", room.name, room.online))
            .collect();
        self.note(&format!("rooms: {}", listed.join(", ")))
    }

    /// The connection's state, when it changes; `None` for the states not
    /// worth a line (connecting).
    pub(super) fn link(&self, room: &str, link: &Link) -> Option<String> {
        let text = match link {
            Link::Connecting => return None,
            Link::Connected => format!("connected to #{room}"),
            Link::Retrying { reason, .. } if reason.is_empty() => {
                "disconnected; reconnecting…".to_owned()
            }
            Link::Retrying { reason, .. } => format!("disconnected ({reason}); reconnecting…"),
            Link::Refused { reason } => format!("refused: {reason}"),
            Link::Closed => return None,
        };
        Some(self.note(&text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(author: &str) -> ChatMessage {
        ChatMessage {
            username: author.into(),
            message: "hello".into(),
            id: 1,
            ts: "2026-12-01T19:30:05.000Z".into(),
            client_id: None,
        }
    }

    #[test]
    fn plain_lines_carry_time_author_and_the_own_mark() {
        let render = Render {
            me: "alice".into(),
            colour: false,
        };
        assert_eq!(render.message(&message("bob")), "19:30 bob: hello");
        assert_eq!(
            render.message(&message("alice")),
            "19:30 alice (you): hello"
        );
        assert_eq!(render.users("ops", &["a", "b"]), "* #ops: 2 online: a, b");
    }

    #[test]
    fn colour_is_ansi_and_only_when_asked() {
        let render = Render {
            me: "alice".into(),
            colour: true,
        };
        let line = render.message(&message("alice"));
        assert!(line.contains("\u{1b}["), "{line:?}");
        assert!(line.contains("alice (you)"));
    }
}
