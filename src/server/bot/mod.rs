//! The help bot (setting `help-bot`): `helpbot` in room `help`, greeting
//! each newcomer and answering every message there, and any message
//! elsewhere that mentions `@helpbot`, from the keyword table.
//!
//! It is an ordinary client of the public protocol, not a hook inside the
//! hub: it connects over WebSocket like anyone (through `crate::native`,
//! the engine under `banter-cli`), to this server's own address unless
//! told another, under the same rules and limits as everyone. So it would
//! work unchanged against a multi-process deployment, and what it does is
//! what any bot written against Banter could do.
//!
//! To hear mentions it has to be in the room: every few seconds it reads
//! `/api/rooms` and joins the rooms that have people in them (and leaves
//! those where it is alone). When another process already runs a
//! `helpbot` (a cluster with the setting on everywhere), its joins are
//! refused as taken and it tries again later: one of them answers, and
//! another takes over when that one goes.

mod keywords;

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::{sync::mpsc, task::JoinHandle};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

pub(crate) use keywords::Keywords;

use crate::{
    native::{self, Command, Failure, Patience, Target, Update},
    protocol::{MAX_MESSAGE_CHARS, ROOMS_API_PATH, RoomSummary, ServerEvent},
    transcript::{Line, Transcript},
};

/// The bot's name in every user list.
pub(crate) const BOT_NAME: &str = "helpbot";
/// The room it lives in and answers everything in.
pub(crate) const HELP_ROOM: &str = "help";
/// How it is called on elsewhere.
const MENTION: &str = "@helpbot";
/// How often the room list is read.
const WATCH_EVERY: Duration = Duration::from_secs(2);
/// Most rooms it sits in at once (each is a socket from this address).
const MAX_ROOMS: usize = 50;
/// After its name was refused (another helpbot is in), when to try again.
const TAKEN_RETRY: Duration = Duration::from_secs(30);

/// One room the bot is in.
struct Seat {
    stop: CancellationToken,
    joined: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

/// Runs the bot against `server` (`ws://…`) until `shutdown`.
pub(crate) async fn run(
    server: String,
    token: Option<String>,
    keywords: Keywords,
    shutdown: CancellationToken,
) {
    let target = match Target::new(&server, BOT_NAME.into(), HELP_ROOM.into(), token) {
        Ok(target) => target,
        Err(err) => {
            warn!(%err, "the help bot cannot start");
            return;
        }
    };
    let keywords = Arc::new(keywords);
    info!(%server, "help bot starting in #{HELP_ROOM}");
    let mut seats: HashMap<String, Seat> = HashMap::new();
    let sit = |room: &str| {
        let stop = shutdown.child_token();
        let joined = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(in_room(
            target.in_room(room.to_owned()),
            Arc::clone(&keywords),
            stop.clone(),
            Arc::clone(&joined),
        ));
        Seat { stop, joined, task }
    };
    seats.insert(HELP_ROOM.to_owned(), sit(HELP_ROOM));
    let rooms_url = target.http_url(ROOMS_API_PATH);
    let mut ticks = tokio::time::interval(WATCH_EVERY);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            _ = ticks.tick() => {}
        }
        seats.retain(|_, seat| !seat.task.is_finished());
        let rooms = match native::get(&rooms_url, target.token.as_deref()).await {
            Ok((200, body)) => serde_json::from_str::<Vec<RoomSummary>>(&body).unwrap_or_default(),
            Ok((status, _)) => {
                warn!(status, "the help bot cannot read the room list");
                continue;
            }
            Err(err) => {
                tracing::debug!(%err, "the help bot cannot read the room list");
                continue;
            }
        };
        for room in rooms {
            match seats.get(&room.name) {
                None if room.online > 0 && seats.len() < MAX_ROOMS => {
                    seats.insert(room.name.clone(), sit(&room.name));
                }
                // Alone there (or only another bot's name): leave.
                Some(seat)
                    if room.name != HELP_ROOM
                        && room.online <= 1
                        && seat.joined.load(Ordering::Relaxed) =>
                {
                    seat.stop.cancel();
                }
                _ => {}
            }
        }
    }
    for seat in seats.into_values() {
        seat.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(2), seat.task).await;
    }
}

/// The bot in one room, until `stop`.
async fn in_room(
    target: Target,
    keywords: Arc<Keywords>,
    stop: CancellationToken,
    joined: Arc<AtomicBool>,
) {
    let patience = Patience {
        retry_for: None,
        first_must_connect: false,
    };
    loop {
        let (commands, mut command_queue) = mpsc::unbounded_channel();
        let (update_sink, mut updates) = mpsc::unbounded_channel();
        let connection = native::run(&target, patience, &mut command_queue, &update_sink);
        tokio::pin!(connection);
        let mut room = RoomView::default();
        let mut stopping = false;
        let ended = loop {
            tokio::select! {
                ended = &mut connection => break ended,
                Some(update) = updates.recv() => {
                    if let Update::Link(link) = &update {
                        joined.store(*link == crate::supervisor::Link::Connected, Ordering::Relaxed);
                    }
                    for mut reply in room.replies(&target.room, &keywords, update) {
                        // A long name or keyword list must not make a reply
                        // the server refuses (and the outbox keeps).
                        if let Some((cut, _)) = reply.char_indices().nth(MAX_MESSAGE_CHARS) {
                            reply.truncate(cut);
                        }
                        let _ = commands.send(Command::Send {
                            client_id: format!("{:032x}", fastrand::u128(..)),
                            text: reply,
                        });
                    }
                }
                () = stop.cancelled(), if !stopping => {
                    stopping = true;
                    let _ = commands.send(Command::Close);
                }
            }
        };
        joined.store(false, Ordering::Relaxed);
        let wait = match ended {
            Ok(()) => return,
            Err(Failure::Refused(reason)) => {
                info!(room = %target.room, %reason, "the help bot is already here; trying later");
                TAKEN_RETRY
            }
            Err(Failure::Unauthorized(reason)) => {
                warn!(room = %target.room, %reason, "the help bot was refused access");
                return;
            }
            Err(err) => {
                warn!(room = %target.room, %err, "the help bot lost its connection");
                Duration::from_secs(5)
            }
        };
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// What the bot knows of one room: who is there, and whom it has greeted.
#[derive(Default)]
struct RoomView {
    transcript: Transcript,
    /// Greeted in #help since they came in. Someone who speaks before the
    /// join is announced (presence comes in batches; a script may send at
    /// once) is greeted first, then answered, so the greeting always comes
    /// before the answer.
    greeted: HashSet<String>,
}

impl RoomView {
    /// What the bot says in `room` after `update`.
    fn replies(&mut self, room: &str, keywords: &Keywords, update: Update) -> Vec<String> {
        let Update::Event(event) = update else {
            return Vec::new();
        };
        let in_help = room == HELP_ROOM;
        if self.transcript.is_listing(&event) {
            // On (re)joining: those already here are not newcomers.
            let fresh = matches!(event, ServerEvent::UpdateUsers { .. });
            self.transcript.line(&event);
            if fresh {
                self.greeted.clear();
            }
            let online = self.transcript.online();
            self.greeted.extend(online.iter().map(|n| n.to_string()));
            return Vec::new();
        }
        let mut said = Vec::new();
        match self.transcript.line(&event) {
            Some(Line::Message(message)) if message.username != BOT_NAME => {
                let author = &message.username;
                // ASCII lowering keeps byte offsets, so `at` is one in the
                // message.
                let lower = message.message.to_ascii_lowercase();
                if in_help {
                    if self.greeted.insert(author.clone()) {
                        said.push(keywords.greeting(author));
                    }
                    said.push(keywords.answer(author, &message.message));
                } else if let Some(at) = lower.find(MENTION) {
                    // The rest of the message, without the mention.
                    let mut asked = message.message.clone();
                    asked.replace_range(at..at + MENTION.len(), " ");
                    said.push(keywords.answer(author, &asked));
                }
            }
            Some(Line::Joined { names, .. }) if in_help => {
                for name in names {
                    if name != BOT_NAME && self.greeted.insert(name.to_owned()) {
                        said.push(keywords.greeting(name));
                    }
                }
            }
            Some(Line::Left { names, .. }) => {
                for name in names {
                    self.greeted.remove(name);
                }
            }
            _ => {}
        }
        said
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::protocol::ChatMessage;

    fn keywords() -> Keywords {
        Keywords::load(std::path::Path::new("help-bot.toml")).unwrap()
    }

    fn said(author: &str, text: &str) -> Update {
        Update::Event(ServerEvent::SendMessage(ChatMessage {
            username: author.into(),
            message: text.into(),
            id: 1,
            ts: "t".into(),
            client_id: None,
        }))
    }

    fn users(names: &[&str]) -> Update {
        Update::Event(ServerEvent::UpdateUsers {
            usernames: names.iter().map(|n| Arc::from(*n)).collect(),
        })
    }

    #[test]
    fn in_help_a_newcomer_is_greeted_once_and_every_message_answered() {
        let (table, mut view) = (keywords(), RoomView::default());
        assert!(
            view.replies(HELP_ROOM, &table, users(&["helpbot", "old"]))
                .is_empty()
        );
        let joined = Update::Event(ServerEvent::UserJoined {
            usernames: vec![Arc::from("ann")],
        });
        let greeting = view.replies(HELP_ROOM, &table, joined);
        assert_eq!(greeting, [table.greeting("ann")]);
        assert_eq!(
            view.replies(HELP_ROOM, &table, said("ann", "hello")),
            [table.answer("ann", "hello")]
        );
        // Someone already here when the bot came is answered, not greeted.
        assert_eq!(view.replies(HELP_ROOM, &table, said("old", "xyz")).len(), 1);
        // The bot does not answer itself.
        assert!(
            view.replies(HELP_ROOM, &table, said(BOT_NAME, "hello"))
                .is_empty()
        );
    }

    #[test]
    fn who_speaks_before_their_join_is_announced_is_greeted_first() {
        let (table, mut view) = (keywords(), RoomView::default());
        view.replies(HELP_ROOM, &table, users(&["helpbot"]));
        assert_eq!(
            view.replies(HELP_ROOM, &table, said("ann", "i need help")),
            [table.greeting("ann"), table.answer("ann", "i need help")]
        );
        let joined = Update::Event(ServerEvent::UserJoined {
            usernames: vec![Arc::from("ann")],
        });
        assert!(view.replies(HELP_ROOM, &table, joined).is_empty());
    }

    #[test]
    fn elsewhere_only_mentions_are_answered() {
        let (table, mut view) = (keywords(), RoomView::default());
        view.replies("ops", &table, users(&["helpbot", "bob"]));
        assert!(
            view.replies("ops", &table, said("bob", "hello all"))
                .is_empty()
        );
        assert_eq!(
            view.replies("ops", &table, said("bob", "@HelpBot hello")),
            [table.answer("bob", "hello")]
        );
        let joined = Update::Event(ServerEvent::UserJoined {
            usernames: vec![Arc::from("cat")],
        });
        assert!(
            view.replies("ops", &table, joined).is_empty(),
            "no greetings outside #help"
        );
    }
}
