//! Scripted mode: stdin is not a terminal. Each input line is a message;
//! the client exits 0 once the server has echoed every one of them, so
//! `echo "deploy done" | banter-cli …` returns only when everyone can see
//! it.

use std::{collections::HashSet, io::Write, process::ExitCode};

use tokio::io::{AsyncBufReadExt, BufReader};

use super::{Exit, Output, Room, View, exit::fail, new_client_id};
use crate::{
    native::{Command, Patience, Target, Update},
    protocol::{ServerEvent, check_message},
};

pub(super) async fn run(target: Target, output: Output, patience: Patience) -> ExitCode {
    let mut view = View::new(output, target.room.clone(), false);
    let mut room = Room::open(target, patience);
    let mut input = BufReader::new(tokio::io::stdin()).lines();
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
            line = input.next_line(), if input_open => match line {
                Ok(Some(line)) => {
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
                Ok(None) => input_open = false,
                Err(err) => {
                    eprintln!("banter-cli: cannot read stdin: {err}");
                    input_open = false;
                }
            },
            update = room.updates.recv() => match update {
                Some(Update::Event(event)) => {
                    if let ServerEvent::SendMessage(message) = &event
                        && let Some(id) = &message.client_id
                    {
                        waiting.remove(id);
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
