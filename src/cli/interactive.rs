//! Interactive mode: a person at a terminal.
//!
//! The line being typed belongs to reedline, on a thread of its own (its
//! `read_line` blocks). Everything the chat prints goes through reedline's
//! external printer, which puts it above the prompt and redraws the
//! half-typed line under it: an incoming message never garbles what the
//! user is typing. The editor thread ends itself on `exit`, `/quit`,
//! Ctrl-C and Ctrl-D, so the terminal is always given back in its normal
//! mode before the process exits.

use std::process::ExitCode;

use std::{
    borrow::Cow,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
        mpsc::SyncSender,
    },
};

use reedline::{ExternalPrinter, Prompt, PromptEditMode, PromptHistorySearch, Reedline, Signal};
use tokio::sync::mpsc;

use super::{Exit, Output, Room, View, exit::fail, new_client_id};
use crate::{
    native::{self, Command, Patience, Target, Update},
    protocol::{ROOMS_API_PATH, RoomSummary, check_message, parse_room},
    supervisor::Link,
};

const HELP: &str = "\
commands: /users (who is here)  /rooms (rooms with people or messages)
          /join ROOM  /history (older messages)  /quit (or exit, Ctrl-D)";

/// What the editor thread hands over.
enum Input {
    Line(String),
    /// `exit`, `/quit`, Ctrl-C or Ctrl-D: the editor has stopped.
    Quit,
}

pub(super) async fn run(target: Target, output: Output) -> ExitCode {
    let patience = Patience {
        retry_for: None,
        first_must_connect: true,
    };
    let mut view = View::new(output, target.room.clone(), true);
    let mut room = Room::open(target.clone(), patience);
    // The join first, before the editor takes the terminal: a taken name
    // or an unreachable server ends here, with a plain error.
    let mut early = Vec::new();
    loop {
        match room.updates.recv().await {
            Some(Update::Link(Link::Connected)) => break,
            Some(Update::Event(event)) => early.extend(view.event(&event)),
            Some(Update::Link(_)) => {}
            None => {
                return match room.finish().await {
                    Ok(()) => Exit::Done.code(),
                    Err(failure) => fail(&failure),
                };
            }
        }
    }
    let stop = Arc::new(AtomicBool::new(false));
    let (printer, mut inputs) = match editor(Arc::clone(&stop)) {
        Ok(editor) => editor,
        Err(err) => {
            eprintln!("banter-cli: cannot use the terminal: {err}");
            let _ = room.close().await;
            return Exit::Usage.code();
        }
    };
    let mut print = move |line: String| {
        let _ = printer.send(line);
    };
    let note = |view: &View, text: &str| {
        view.render()
            .map_or_else(|| format!("* {text}"), |render| render.note(text))
    };
    print(note(
        &view,
        &format!(
            "connected to #{} as {} (/help for commands)",
            target.room, target.name
        ),
    ));
    early.into_iter().for_each(&mut print);
    loop {
        tokio::select! {
            update = room.updates.recv() => match update {
                Some(Update::Event(event)) => view.event(&event).into_iter().for_each(&mut print),
                Some(Update::Link(link)) => {
                    if let Some(line) = view.render().and_then(|r| r.link(&view.room, &link)) {
                        print(line);
                    }
                }
                None => {
                    let result = room.finish().await;
                    let why = match &result {
                        Ok(()) => "the connection ended".to_owned(),
                        Err(failure) => failure.to_string(),
                    };
                    print(note(&view, &format!("{why} — press Enter to exit")));
                    // The editor stops after this line, giving the terminal
                    // back in its normal mode before the process exits.
                    stop.store(true, Ordering::Relaxed);
                    while let Some(Input::Line(_)) = inputs.recv().await {}
                    return match result {
                        Ok(()) => Exit::Done.code(),
                        Err(failure) => fail(&failure),
                    };
                }
            },
            input = inputs.recv() => {
                let Some(Input::Line(line)) = input else {
                    let _ = room.close().await;
                    return Exit::Done.code();
                };
                let line = line.trim_end();
                let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
                match word {
                    "" => {}
                    "/help" => print(note(&view, HELP)),
                    "/users" => {
                        let online = view.transcript.online();
                        print(note(&view, &format!("#{}: {} online: {}", view.room, online.len(), crate::transcript::list(&online))));
                    }
                    "/rooms" => print(rooms(&room.target, &view).await),
                    "/history" => match view.oldest {
                        Some(before) => {
                            view.asked_history = true;
                            room.send(Command::LoadHistory { before });
                        }
                        None => print(note(&view, "no older messages")),
                    },
                    "/join" => match parse_room(rest.trim()) {
                        Ok(name) => {
                            let next = room.target.in_room(name.clone());
                            let _ = room.close().await;
                            room = Room::open(next, patience);
                            view = View::new(view.output.clone(), name.clone(), true);
                            print(note(&view, &format!("joining #{name}")));
                        }
                        Err(err) => print(note(&view, &err.to_string())),
                    },
                    command if command.starts_with('/') && command.len() > 1 => {
                        print(note(&view, &format!("unknown command {command}; {HELP}")));
                    }
                    _ => match check_message(line) {
                        Ok(()) => room.send(Command::Send {
                            client_id: new_client_id(),
                            text: line.to_owned(),
                        }),
                        Err(err) => print(note(&view, &err.to_string())),
                    },
                }
            }
        }
    }
}

/// `/rooms`: the server's room list, as a line.
async fn rooms(target: &Target, view: &View) -> String {
    let url = target.http_url(ROOMS_API_PATH);
    let answer = native::get(&url, target.token.as_deref()).await;
    let listed = match answer {
        Ok((200, body)) => serde_json::from_str::<Vec<RoomSummary>>(&body)
            .map_err(|err| format!("the room list could not be read: {err}")),
        Ok((status, body)) => Err(format!(
            "the room list was refused ({status}): {}",
            body.trim()
        )),
        Err(err) => Err(err.to_string()),
    };
    match (listed, view.render()) {
        (Ok(rooms), Some(render)) => render.rooms(&rooms),
        (Ok(rooms), None) => serde_json::to_string(&rooms).unwrap_or_default(),
        (Err(err), _) => format!("* {err}"),
    }
}

/// How many printed lines may wait for the editor to show them (it looks
/// every 100 ms); beyond, printing waits.
const PRINT_QUEUE: usize = 4096;

/// Starts the line editor on its own thread: the printer to print through,
/// and what the user types.
fn editor(
    stop: Arc<AtomicBool>,
) -> std::io::Result<(SyncSender<String>, mpsc::UnboundedReceiver<Input>)> {
    let shown = ExternalPrinter::new(PRINT_QUEUE);
    let printer = shown.sender();
    let (lines, inputs) = mpsc::unbounded_channel();
    std::thread::Builder::new()
        .name("line-editor".into())
        .spawn(move || {
            let mut editor = Reedline::create().with_external_printer(shown);
            while !stop.load(Ordering::Relaxed) {
                match editor.read_line(&Plain) {
                    Ok(Signal::Success(line)) if matches!(line.trim(), "exit" | "/quit") => break,
                    Ok(Signal::Success(line)) => {
                        if lines.send(Input::Line(line)).is_err() {
                            return;
                        }
                    }
                    // Ctrl-C, Ctrl-D, or the terminal gone.
                    Ok(Signal::CtrlC | Signal::CtrlD) | Err(_) => break,
                    Ok(_) => {}
                }
            }
            let _ = lines.send(Input::Quit);
        })?;
    Ok((printer, inputs))
}

/// The prompt: `> `, nothing else.
struct Plain;

impl Prompt for Plain {
    fn render_prompt_left(&self) -> Cow<'_, str> {
        Cow::Borrowed("")
    }

    fn render_prompt_right(&self) -> Cow<'_, str> {
        Cow::Borrowed("")
    }

    fn render_prompt_indicator(&self, _mode: PromptEditMode) -> Cow<'_, str> {
        Cow::Borrowed("> ")
    }

    fn render_prompt_multiline_indicator(&self) -> Cow<'_, str> {
        Cow::Borrowed("  ")
    }

    fn render_prompt_history_search_indicator(&self, search: PromptHistorySearch) -> Cow<'_, str> {
        Cow::Owned(format!("(search: {}) ", search.term))
    }
}
