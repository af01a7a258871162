//! The chat as lines of text: what the server's plain-text sockets send and
//! what `banter-cli` prints, decided once.
//!
//! A [`Transcript`] follows one room's events and says what each one reads
//! as, if anything: a message, a join, a leave, a refusal. It keeps who is
//! online, because presence deltas may repeat what a joiner's snapshot
//! already held (see the server's `chat::presence`): applied to a set they
//! are idempotent, so a line names only real changes and the count is
//! exact. Typing and history pages are not lines here; a reader that wants
//! them (the CLI's `/history`) takes them from the event itself.
//!
//! Server and terminal only: the page renders events as components.

use std::{borrow::Cow, collections::HashSet, sync::Arc};

use crate::protocol::{ChatMessage, ServerEvent, USER_LIST_CHUNK};

/// Names spelled out in one join or leave line; the rest are counted.
const NAMES_SHOWN: usize = 10;

/// What one event reads as.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    Message(&'a ChatMessage),
    /// These joined; `online` counts everyone now.
    Joined {
        names: Vec<&'a str>,
        online: usize,
    },
    Left {
        names: Vec<&'a str>,
        online: usize,
    },
    /// The server refused what this client did, in its words.
    Refused(&'a str),
}

/// One room's presence, as a reader of its events knows it.
#[derive(Debug, Default)]
pub(crate) struct Transcript {
    online: HashSet<Arc<str>>,
    /// Taking in a join's user list, which may go on in `user-joined`
    /// chunks (see [`USER_LIST_CHUNK`]).
    listing: bool,
}

impl Transcript {
    /// Who is online, sorted regardless of case.
    pub(crate) fn online(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.online.iter().map(|n| &**n).collect();
        names.sort_by_cached_key(|n| n.to_lowercase());
        names
    }

    /// Takes in the user list a joiner is sent (an `update-users`, and for
    /// a long list `user-joined` chunks after it), without a line.
    pub(crate) fn seed(&mut self, event: &ServerEvent) {
        match event {
            ServerEvent::UpdateUsers { usernames } => {
                self.online = usernames.iter().cloned().collect();
            }
            ServerEvent::UserJoined { usernames } => self.online.extend(usernames.iter().cloned()),
            _ => {}
        }
    }

    /// Whether `event` is (part of) a join's user list rather than news:
    /// an `update-users`, or a `user-joined` after a full chunk of one.
    pub(crate) fn is_listing(&self, event: &ServerEvent) -> bool {
        match event {
            ServerEvent::UpdateUsers { .. } => true,
            ServerEvent::UserJoined { .. } => self.listing,
            _ => false,
        }
    }

    /// Whether the join's user list may still go on.
    pub(crate) fn listing(&self) -> bool {
        self.listing
    }

    /// The join's user list is whole (another kind of event came).
    pub(crate) fn listed(&mut self) {
        self.listing = false;
    }

    /// What `event` reads as, if anything; presence is taken in either way.
    pub(crate) fn line<'a>(&mut self, event: &'a ServerEvent) -> Option<Line<'a>> {
        if self.is_listing(event) {
            self.seed(event);
            self.listing = matches!(
                event,
                ServerEvent::UpdateUsers { usernames } | ServerEvent::UserJoined { usernames }
                    if usernames.len() == USER_LIST_CHUNK
            );
            return None;
        }
        self.listing = false;
        match event {
            ServerEvent::SendMessage(message) => Some(Line::Message(message)),
            ServerEvent::Error { message } => Some(Line::Refused(message)),
            ServerEvent::UserJoined { usernames } => {
                let names: Vec<&str> = usernames
                    .iter()
                    .filter(|name| self.online.insert(Arc::clone(name)))
                    .map(|name| &**name)
                    .collect();
                let online = self.online.len();
                (!names.is_empty()).then_some(Line::Joined { names, online })
            }
            ServerEvent::UserLeft { usernames } => {
                let names: Vec<&str> = usernames
                    .iter()
                    .filter(|name| self.online.remove(*name))
                    .map(|name| &**name)
                    .collect();
                let online = self.online.len();
                (!names.is_empty()).then_some(Line::Left { names, online })
            }
            ServerEvent::UpdateUsers { .. }
            | ServerEvent::History { .. }
            | ServerEvent::Typing { .. } => None,
        }
    }
}

/// Message text made safe for a terminal and for line-reading scripts: a
/// line break continues the line indented (so no message can start a line
/// that reads as someone else's `bob: …`), a tab stays, and every other
/// control character (escape sequences that move the cursor, retitle the
/// window or write the clipboard) shows as U+FFFD.
pub(crate) fn shown(text: &str) -> Cow<'_, str> {
    if !text.chars().any(|c| c.is_control() && c != '\t') {
        return Cow::Borrowed(text);
    }
    let mut safe = String::with_capacity(text.len() + 8);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' | '\r' => safe.push_str("\n  "),
            '\t' => safe.push('\t'),
            c if c.is_control() => safe.push('\u{FFFD}'),
            c => safe.push(c),
        }
    }
    Cow::Owned(safe)
}

/// `a, b, c`, or `a, b, … and 12 more` past [`NAMES_SHOWN`].
pub(crate) fn list(names: &[&str]) -> String {
    let mut text = names[..names.len().min(NAMES_SHOWN)].join(", ");
    if names.len() > NAMES_SHOWN {
        text.push_str(&format!(" and {} more", names.len() - NAMES_SHOWN));
    }
    text
}

impl std::fmt::Display for Line<'_> {
    /// The plain form: `alice: hi`, `* bob joined (3 online)`, or the
    /// server's sentence.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Line::Message(m) => write!(f, "{}: {}", m.username, shown(&m.message)),
            Line::Joined { names, online } => {
                write!(f, "* {} joined ({online} online)", list(names))
            }
            Line::Left { names, online } => write!(f, "* {} left ({online} online)", list(names)),
            Line::Refused(sentence) => f.write_str(&shown(sentence)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<Arc<str>> {
        list.iter().map(|n| Arc::from(*n)).collect()
    }

    fn read(t: &mut Transcript, event: ServerEvent) -> Option<String> {
        t.line(&event).map(|line| line.to_string())
    }

    #[test]
    fn presence_lines_name_real_changes_and_count_exactly() {
        let mut t = Transcript::default();
        t.seed(&ServerEvent::UpdateUsers {
            usernames: names(&["bob", "me"]),
        });
        assert_eq!(t.online(), ["bob", "me"]);
        let joined = |list: &[&str]| ServerEvent::UserJoined {
            usernames: names(list),
        };
        // A repeat of the joiner's own arrival is not news.
        assert_eq!(read(&mut t, joined(&["me"])), None);
        assert_eq!(
            read(&mut t, joined(&["me", "carol"])).as_deref(),
            Some("* carol joined (3 online)")
        );
        let left = ServerEvent::UserLeft {
            usernames: names(&["bob", "zed"]),
        };
        assert_eq!(read(&mut t, left).as_deref(), Some("* bob left (2 online)"));
        let message = ServerEvent::SendMessage(ChatMessage {
            username: "carol".into(),
            message: "hi".into(),
            id: 1,
            ts: "t".into(),
            client_id: None,
        });
        assert_eq!(read(&mut t, message).as_deref(), Some("carol: hi"));
        let typing = ServerEvent::Typing {
            username: "carol".into(),
        };
        assert_eq!(read(&mut t, typing), None);
        let error = ServerEvent::Error {
            message: "Slow down".into(),
        };
        assert_eq!(read(&mut t, error).as_deref(), Some("Slow down"));
    }

    #[test]
    fn control_characters_cannot_forge_lines_or_drive_the_terminal() {
        assert_eq!(shown("plain\ttext"), "plain\ttext");
        assert_eq!(shown("one\r\nbob: fake"), "one\n  bob: fake");
        assert_eq!(
            shown("\u{1b}]52;c;aGk=\u{7}x"),
            "\u{FFFD}]52;c;aGk=\u{FFFD}x"
        );
    }

    #[test]
    fn a_long_join_list_in_chunks_is_not_news() {
        let chunk = |from: usize, n: usize| -> Vec<Arc<str>> {
            (from..from + n)
                .map(|i| Arc::from(format!("u{i:03}")))
                .collect()
        };
        let mut t = Transcript::default();
        let first = ServerEvent::UpdateUsers {
            usernames: chunk(0, USER_LIST_CHUNK),
        };
        assert_eq!(t.line(&first), None);
        let rest = ServerEvent::UserJoined {
            usernames: chunk(USER_LIST_CHUNK, 5),
        };
        assert!(t.is_listing(&rest));
        assert_eq!(t.line(&rest), None);
        assert!(!t.listing());
        assert_eq!(t.online().len(), USER_LIST_CHUNK + 5);
        // After a short chunk, a join is news again.
        let news = ServerEvent::UserJoined {
            usernames: chunk(900, 1),
        };
        assert_eq!(
            read(&mut t, news).as_deref(),
            Some("* u900 joined (134 online)")
        );
    }

    #[test]
    fn long_lists_are_counted_not_spelled_out() {
        let many: Vec<String> = (0..25).map(|i| format!("u{i:02}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        assert_eq!(
            list(&many),
            "u00, u01, u02, u03, u04, u05, u06, u07, u08, u09 and 15 more"
        );
    }
}
