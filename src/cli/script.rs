//! Scripted mode: stdin is not a terminal. Each input line is a message;
//! the client exits 0 once the server has echoed every one of them, so
//! `echo "deploy done" | banter-cli …` returns only when everyone can see
//! it.

use std::{
    collections::HashSet,
    io::{BufRead, Write},
    process::ExitCode,
};

use tokio::sync::mpsc;

use super::{Exit, Output, Room, View, exit::fail, new_client_id};
use crate::{
    native::{Command, Patience, Target, Update},
    protocol::{ChatMessage, ServerEvent, check_message},
};

pub(super) async fn run(target: Target, output: Output, patience: Patience) -> ExitCode {
    let mut view = View::new(output, target.room.clone(), false);
    let mut room = Room::open(target, patience);
    let mut input = stdin_lines();
    let mut input_open = true;
    // Client ids sent and not yet echoed.
    let mut waiting: HashSet<String> = HashSet::new();
    let (mut line_number, mut not_sent) = (0usize, 0usize);
    let mut stdout = std::io::stdout().lock();
    loop {
        if !input_open && waiting.is_empty() {
            return match room.close().await {
                Ok(()) if not_sent > 0 => Exit::NotAllSent.code(),
                Ok(()) => Exit::Done.code(),
                Err(failure) => fail(&failure),
            };
        }
        tokio::select! {
            line = input.recv(), if input_open => match line {
                Some(Ok(line)) => {
                    line_number += 1;
                    if line.trim().is_empty() {
                        continue;
                    }
                    // The server's own rules, checked first: a message it
                    // refuses would never be echoed.
                    if let Err(err) = check_message(&line) {
                        eprintln!("banter-cli: line {line_number} not sent: {err}");
                        not_sent += 1;
                        continue;
                    }
                    let client_id = new_client_id();
                    waiting.insert(client_id.clone());
                    room.send(Command::Send { client_id, text: line });
                }
                None => input_open = false,
                // The rest of the input is lost: not a clean finish.
                Some(Err(err)) => {
                    eprintln!("banter-cli: cannot read stdin past line {line_number}: {err}");
                    not_sent += 1;
                    input_open = false;
                }
            },
            update = room.updates.recv() => match update {
                Some(Update::Event(event)) => {
                    // An echo, live or (after a long absence) in a page.
                    let echoed: &[ChatMessage] = match &event {
                        ServerEvent::SendMessage(message) => std::slice::from_ref(message),
                        ServerEvent::History { messages, .. } => messages,
                        _ => &[],
                    };
                    for message in echoed {
                        if let Some(id) = &message.client_id {
                            waiting.remove(id);
                        }
                    }
                    for line in view.event(&event) {
                        let _ = writeln!(stdout, "{line}");
                    }
                    let _ = stdout.flush();
                }
                Some(Update::Link(link)) => {
                    if let Some(line) = view.render().and_then(|r| r.link(&view.room, &link)) {
                        eprintln!("{line}");
                    }
                }
                // The connection ended by itself: a failure.
                None => {
                    return match room.finish().await {
                        Ok(()) => Exit::Done.code(),
                        Err(failure) => fail(&failure),
                    };
                }
            },
        }
    }
}

/// Stdin's lines, read on a plain thread of its own. Not tokio's stdin: its
/// blocking read cannot be cancelled, and the runtime waits for it at exit,
/// so a client that gave up (exit 7, say) would hang until the producer
/// (`tail -f log | banter-cli …`) closed the pipe. A plain thread does not
/// hold the process.
fn stdin_lines() -> mpsc::UnboundedReceiver<std::io::Result<String>> {
    let (lines, input) = mpsc::unbounded_channel();
    let spawned = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            for line in std::io::stdin().lock().lines() {
                let failed = line.is_err();
                if lines.send(line).is_err() || failed {
                    return;
                }
            }
        });
    if let Err(err) = spawned {
        eprintln!("banter-cli: cannot read stdin: {err}");
    }
    input
}
