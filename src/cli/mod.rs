//! `banter-cli`: the chat from a terminal, and from scripts.
//!
//! ```text
//! banter-cli ws://host:port --name alice [--room general] [--token T] [--json]
//! ```
//!
//! Two modes, picked by what stdin is:
//! - **interactive** (a terminal): incoming messages are printed above the
//!   line being typed (reedline's external printer, so they never garble
//!   it), with `/users`, `/rooms`, `/join ROOM`, `/history` and `/quit`;
//! - **scripted** (a pipe or file): each input line is sent as a message,
//!   and the client exits 0 once the server has echoed every one of them.
//!
//! Either way the connection is `crate::native`'s, with the page's own
//! reconnect, resume and outbox (the shared supervisor). Everything shown is
//! `crate::transcript`'s reading of the events, as the server's plain-text
//! sockets send them; `--json` prints the events themselves instead.

mod exit;
mod interactive;
mod render;
mod script;

use std::{io::IsTerminal, process::ExitCode, time::Duration};

use clap::Parser;
use tokio::{sync::mpsc, task::JoinHandle};

use crate::{
    native::{self, Command, Failure, Patience, Target, Update},
    protocol::{DEFAULT_ROOM, ServerEvent, parse_room, parse_username},
};
use exit::{EXIT_CODES, Exit};

/// The chat from a terminal: talk to a Banter server, interactively or from
/// a script.
#[derive(Debug, Parser)]
#[command(name = "banter-cli", version, after_help = EXIT_CODES)]
struct Args {
    /// The server: ws://host:port or wss://host (http(s):// works too).
    server: String,
    /// Your name in the chat.
    #[arg(long, short = 'n')]
    name: String,
    /// The room to join.
    #[arg(long, short = 'r', default_value = DEFAULT_ROOM)]
    room: String,
    /// The server's access token, if it needs one (sent as a bearer
    /// header, never in the URL).
    #[arg(long, env = "BANTER_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Print every server event as one JSON line instead of text.
    #[arg(long)]
    json: bool,
    /// Scripted mode: how long to keep trying to reconnect, in seconds,
    /// before giving up with exit code 7. (Interactive mode keeps trying.)
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    retry_for: u64,
}

/// `banter-cli`'s `main`.
pub async fn main() -> ExitCode {
    let args = Args::parse();
    let checked = parse_username(&args.name)
        .map(str::to_owned)
        .map_err(|err| err.to_string())
        .and_then(|name| {
            parse_room(&args.room)
                .map(|room| (name, room))
                .map_err(|e| e.to_string())
        });
    let (name, room) = match checked {
        Ok(valid) => valid,
        Err(err) => {
            eprintln!("banter-cli: {err}");
            return Exit::Usage.code();
        }
    };
    let target = match Target::new(&args.server, name, room, args.token) {
        Ok(target) => target,
        Err(err) => {
            eprintln!("banter-cli: {err}");
            return Exit::Usage.code();
        }
    };
    let render = render::Render::new(target.name.clone(), std::io::stdout().is_terminal());
    let output = if args.json {
        Output::Json
    } else {
        Output::Text(render)
    };
    if std::io::stdin().is_terminal() {
        interactive::run(target, output).await
    } else {
        let patience = Patience {
            retry_for: Some(Duration::from_secs(args.retry_for)),
            first_must_connect: true,
        };
        script::run(target, output, patience).await
    }
}

/// How events are shown.
#[derive(Debug, Clone)]
enum Output {
    Text(render::Render),
    /// Every server event as one JSON line.
    Json,
}

impl Output {
    /// The JSON line for `event`, in JSON mode.
    fn json(&self, event: &ServerEvent) -> Option<String> {
        match self {
            Output::Json => serde_json::to_string(event).ok(),
            Output::Text(_) => None,
        }
    }
}

/// One room's connection, running in its own task.
struct Room {
    target: Target,
    commands: mpsc::UnboundedSender<Command>,
    updates: mpsc::UnboundedReceiver<Update>,
    task: JoinHandle<Result<(), Failure>>,
}

impl Room {
    fn open(target: Target, patience: Patience) -> Room {
        let (commands, mut command_queue) = mpsc::unbounded_channel();
        let (update_sink, updates) = mpsc::unbounded_channel();
        let task = {
            let target = target.clone();
            tokio::spawn(async move {
                native::run(&target, patience, &mut command_queue, &update_sink).await
            })
        };
        Room {
            target,
            commands,
            updates,
            task,
        }
    }

    fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    /// Closes with 1000 and waits for the task (bounded).
    async fn close(self) -> Result<(), Failure> {
        self.send(Command::Close);
        self.finish().await
    }

    /// The task's result, once its updates have all been read.
    async fn finish(self) -> Result<(), Failure> {
        match tokio::time::timeout(Duration::from_secs(5), self.task).await {
            Ok(Ok(result)) => result,
            _ => Ok(()),
        }
    }
}

/// A fresh client id: 128 random bits as hex.
fn new_client_id() -> String {
    format!("{:032x}", fastrand::u128(..))
}

/// One room's events as lines to print: in order, each message once (a
/// fresh page after a long absence repeats what was already shown), and
/// older pages only when asked for.
struct View {
    output: Output,
    room: String,
    transcript: crate::transcript::Transcript,
    /// The newest message shown, and the oldest (what `/history` asks
    /// before).
    newest: u64,
    oldest: Option<u64>,
    /// A `/history` page is on its way.
    asked_history: bool,
    /// Show the latest page on joining (interactive), or only what comes
    /// after (scripted: a script reads replies, not the past).
    join_page: bool,
}

impl View {
    fn new(output: Output, room: String, join_page: bool) -> Self {
        View {
            output,
            room,
            transcript: Default::default(),
            newest: 0,
            oldest: None,
            asked_history: false,
            join_page,
        }
    }

    fn render(&self) -> Option<&render::Render> {
        match &self.output {
            Output::Text(render) => Some(render),
            Output::Json => None,
        }
    }

    /// The lines `event` is shown as.
    fn event(&mut self, event: &ServerEvent) -> Vec<String> {
        if let Some(json) = self.output.json(event) {
            self.transcript.line(event);
            return vec![json];
        }
        let Output::Text(render) = &self.output else {
            return Vec::new();
        };
        let mut lines = Vec::new();
        if self.transcript.is_listing(event) {
            self.transcript.line(event);
            if !self.transcript.listing() {
                lines.push(render.users(&self.room, &self.transcript.online()));
            }
            return lines;
        }
        if self.transcript.listing() {
            // A list of exactly a chunk's length: it was whole after all.
            self.transcript.listed();
            lines.push(render.users(&self.room, &self.transcript.online()));
        }
        lines.extend(self.lines(event));
        lines
    }

    /// The lines for one event past the join's user list.
    fn lines(&mut self, event: &ServerEvent) -> Vec<String> {
        let Output::Text(render) = &self.output else {
            return Vec::new();
        };
        match event {
            ServerEvent::History { messages, more } => {
                let older = std::mem::take(&mut self.asked_history);
                let mut lines = Vec::new();
                if older {
                    if messages.is_empty() {
                        lines.push(render.note("no older messages"));
                    } else {
                        lines.push(render.note("older messages:"));
                    }
                }
                for message in messages {
                    let new = message.id > self.newest;
                    if older || (new && self.join_page) {
                        lines.push(render.message(message));
                    }
                    self.oldest = Some(self.oldest.map_or(message.id, |o| o.min(message.id)));
                    self.newest = self.newest.max(message.id);
                }
                if older && *more {
                    lines.push(render.note("(/history for more)"));
                }
                lines
            }
            ServerEvent::SendMessage(message) => {
                if message.id <= self.newest {
                    return Vec::new();
                }
                self.newest = message.id;
                self.oldest.get_or_insert(message.id);
                vec![render.message(message)]
            }
            _ => self
                .transcript
                .line(event)
                .map(|line| render.line(&line))
                .into_iter()
                .collect(),
        }
    }
}
