//! `banter-cli`, the terminal client, as a script and as a person use it:
//! scripted (stdin a pipe), its exit codes, reconnecting across a server
//! restart, and interactive under a pseudo-terminal.

use std::{
    process::Stdio,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader},
    process::{Child, ChildStdin, Command},
    task::JoinHandle,
    time::Instant,
};

use crate::support::*;

const CLI: &str = env!("CARGO_BIN_EXE_banter-cli");
const TOKEN: &str = "correct-horse-battery-staple";

fn url(server: &Server) -> String {
    format!("ws://{}", server.addr)
}

/// `banter-cli` with pipes for stdin, stdout and stderr, and nothing from
/// the caller's environment that would change what it does.
fn cli(args: &[&str]) -> Command {
    let mut command = Command::new(CLI);
    command
        .args(args)
        .env_remove("BANTER_TOKEN")
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// A running `banter-cli` whose stdin the test holds and whose output is
/// collected as it comes.
struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

/// How a `banter-cli` run ended.
#[derive(Debug)]
struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn collect(
    stream: impl AsyncRead + Unpin + Send + 'static,
    into: Arc<Mutex<String>>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(mut text) = into.lock() {
                text.push_str(&line);
                text.push('\n');
            }
        }
    })
}

impl Running {
    fn spawn(args: &[&str]) -> Running {
        let mut child = cli(args).spawn().expect("start banter-cli");
        let stdin = child.stdin.take();
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().expect("stdout"), Arc::clone(&stdout)),
            collect(child.stderr.take().expect("stderr"), Arc::clone(&stderr)),
        ];
        Running {
            child,
            stdin,
            stdout,
            stderr,
            readers,
        }
    }

    async fn write(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(text.as_bytes()).await.expect("write stdin");
        stdin.flush().await.expect("flush stdin");
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    fn stdout(&self) -> String {
        self.stdout.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits until a stdout line satisfies `accept`.
    async fn wait_for_stdout(&self, what: &str, accept: impl Fn(&str) -> bool) {
        let found = eventually(|| self.stdout().lines().any(&accept)).await;
        assert!(
            found,
            "banter-cli never printed {what}\nstdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
    }

    /// Waits (bounded) for the process to exit and its output to end.
    /// Stdin stays as it is: closed, or held open by the caller.
    async fn finish(mut self, within: Duration) -> Finished {
        let status = match tokio::time::timeout(within, self.child.wait()).await {
            Ok(status) => status.expect("wait for banter-cli"),
            Err(_) => {
                let _ = self.child.start_kill();
                panic!(
                    "banter-cli did not exit within {within:?}\nstdout:\n{}\nstderr:\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
        };
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(PATIENCE, reader).await;
        }
        Finished {
            code: status.code(),
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }
}

/// Runs `banter-cli` with `input` on stdin (then closed) to the end.
async fn run(args: &[&str], input: &str) -> Finished {
    let mut running = Running::spawn(args);
    // A process that exits at once may not read its stdin: that is fine.
    if let Some(stdin) = running.stdin.as_mut() {
        let _ = stdin.write_all(input.as_bytes()).await;
    }
    running.close_stdin();
    running.finish(PATIENCE).await
}

/// `HH:MM rest` → `rest`: a message line without its time.
fn untimed(line: &str) -> Option<&str> {
    let b = line.as_bytes();
    let timed = b.len() > 6
        && b[0..2].iter().all(u8::is_ascii_digit)
        && b[2] == b':'
        && b[3..5].iter().all(u8::is_ascii_digit)
        && b[5] == b' ';
    timed.then(|| &line[6..])
}

/// The stdout lines that are messages, without their times.
fn messages(stdout: &str) -> Vec<&str> {
    stdout.lines().filter_map(untimed).collect()
}

/// The one line a failure is reported with.
fn failure_line(finished: &Finished) -> &str {
    let lines: Vec<&str> = finished
        .stderr
        .lines()
        .filter(|l| l.starts_with("banter-cli: "))
        .collect();
    assert_eq!(lines.len(), 1, "one failure line on stderr: {finished:#?}");
    lines[0]
}

/// Waits until the server has logged `user`'s socket ending with 1000.
async fn expect_closed_with_1000(server: &Server, user: &str, room: &str) {
    let wanted = |log: &str| {
        log.lines().any(|line| {
            let line = strip_ansi(line);
            line.contains("disconnected")
                && line.contains(&format!("user={user}"))
                && line.contains(&format!("room={room}"))
                && line.contains("client closed (1000)")
        })
    };
    let found = eventually(|| wanted(&server.log())).await;
    assert!(
        found,
        "no `client closed (1000)` for {user} in #{room}:\n{}",
        server.log()
    );
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The messages a JSON client joining `room` now is given as history.
async fn history_in(server: &Server, name: &str, room: &str) -> Vec<(String, String)> {
    let mut socket = server
        .connect(&format!("username={name}&room={room}"))
        .await;
    history(&mut socket).await["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| {
            (
                m["username"].as_str().expect("username").to_string(),
                m["message"].as_str().expect("message").to_string(),
            )
        })
        .collect()
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

/// A port nothing listens on: bound, then let go.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

// ---------------------------------------------------------------------------
// Scripted mode

/// Piped lines are each sent as a message (blank ones skipped); the client
/// exits 0 once the server has echoed every one, having closed with 1000.
/// Its own messages print as `HH:MM alice (you): text`, with no colour on a
/// pipe; the connection's state goes to stderr.
#[tokio::test]
async fn piped_lines_are_sent_and_it_exits_0_once_all_are_echoed() {
    let server = Server::start().await;
    let mut bob = server.join("bob").await;
    expect_users(&mut bob, &["bob"]).await;
    let finished = run(
        &[&url(&server), "--name", "alice"],
        "deploy started\n\n   \ndeploy done\n",
    )
    .await;
    assert_eq!(finished.code, Some(0), "{finished:#?}");
    assert_eq!(
        messages(&finished.stdout),
        ["alice (you): deploy started", "alice (you): deploy done"],
        "{finished:#?}"
    );
    assert!(
        !finished.stdout.contains('\u{1b}'),
        "no colour on a pipe: {finished:#?}"
    );
    assert!(
        finished.stderr.contains("connected to #general"),
        "{finished:#?}"
    );
    // Everyone could see them by the time it exited.
    for text in ["deploy started", "deploy done"] {
        let event = expect_event(&mut bob, "send-message", |_| true).await;
        assert_eq!(event["username"], "alice");
        assert_eq!(event["message"], text);
    }
    assert_eq!(
        history_in(&server, "carol", "general").await,
        pairs(&[("alice", "deploy started"), ("alice", "deploy done")])
    );
    expect_closed_with_1000(&server, "alice", "general").await;
}

/// While a script runs, what others say prints as `HH:MM bob: text`, and
/// joins and leaves as `* …` lines.
#[tokio::test]
async fn a_script_prints_others_messages_and_presence() {
    let server = Server::start().await;
    let mut bob = server.join("bob").await;
    expect_users(&mut bob, &["bob"]).await;
    let mut alice = Running::spawn(&[&url(&server), "--name", "alice", "--room", "general"]);
    expect_users(&mut bob, &["alice", "bob"]).await;

    say(&mut bob, "hi alice").await;
    alice
        .wait_for_stdout("bob's message", |l| untimed(l) == Some("bob: hi alice"))
        .await;
    let carol = server.join("carol").await;
    alice
        .wait_for_stdout("carol's join", |l| l == "* carol joined (3 online)")
        .await;
    drop(carol);
    alice
        .wait_for_stdout("carol's leave", |l| l == "* carol left (2 online)")
        .await;
    alice.write("hi bob\n").await;
    let event = expect_event(&mut bob, "send-message", |e| e["username"] == "alice").await;
    assert_eq!(event["message"], "hi bob");
    alice.close_stdin();
    let finished = alice.finish(PATIENCE).await;
    assert_eq!(finished.code, Some(0), "{finished:#?}");
    assert_eq!(
        messages(&finished.stdout),
        ["bob: hi alice", "alice (you): hi bob"],
        "{finished:#?}"
    );
    assert!(!finished.stdout.contains('\u{1b}'), "{finished:#?}");
}

/// `--json`: stdout is the server's events, one JSON object a line.
#[tokio::test]
async fn json_mode_prints_one_event_per_line() {
    let server = Server::start().await;
    let finished = run(&[&url(&server), "--name", "alice", "--json"], "hi\n").await;
    assert_eq!(finished.code, Some(0), "{finished:#?}");
    let events: Vec<Value> = finished
        .stdout
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{line:?} is not JSON: {e}"))
        })
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().expect("an event name"))
        .collect();
    assert!(kinds.contains(&"update-users"), "{kinds:?}");
    assert!(kinds.contains(&"history"), "{kinds:?}");
    let sent: Vec<&Value> = events
        .iter()
        .filter(|e| e["event"] == "send-message")
        .collect();
    assert_eq!(sent.len(), 1, "{events:?}");
    assert_eq!(sent[0]["username"], "alice");
    assert_eq!(sent[0]["message"], "hi");
}

// ---------------------------------------------------------------------------
// Exit codes

/// Exit 1: a line over 4,000 characters is not sent (and said so on
/// stderr, with its line number); the others are.
#[tokio::test]
async fn exit_1_when_a_line_is_too_long_to_send() {
    let server = Server::start().await;
    let input = format!("first\n{}\nthird\n", "x".repeat(4001));
    let finished = run(&[&url(&server), "--name", "alice"], &input).await;
    assert_eq!(finished.code, Some(1), "{finished:#?}");
    assert_eq!(
        failure_line(&finished),
        "banter-cli: line 2 not sent: Message is 4001 characters long; the limit is 4000"
    );
    assert_eq!(
        history_in(&server, "bob", "general").await,
        pairs(&[("alice", "first"), ("alice", "third")])
    );
}

/// Exit 2: bad arguments, or a name or room the protocol's rules refuse,
/// before anything is sent.
#[tokio::test]
async fn exit_2_for_bad_arguments_names_and_rooms() {
    let server = Server::start().await;
    let url = url(&server);
    let finished = run(&[&url, "--name", "alice", "--room", "bad room"], "hi\n").await;
    assert_eq!(finished.code, Some(2), "{finished:#?}");
    assert_eq!(
        failure_line(&finished),
        "banter-cli: Room name may use only letters, digits, - and _ (not ' ')"
    );
    let finished = run(&[&url, "--name", "   "], "hi\n").await;
    assert_eq!(finished.code, Some(2), "{finished:#?}");
    assert_eq!(
        failure_line(&finished),
        "banter-cli: Username must not be empty"
    );
    let finished = run(&["ftp://example.com", "--name", "alice"], "hi\n").await;
    assert_eq!(finished.code, Some(2), "{finished:#?}");
    assert!(failure_line(&finished).contains("ws://"), "{finished:#?}");
    // clap's own: a missing argument.
    let finished = run(&[&url], "hi\n").await;
    assert_eq!(finished.code, Some(2), "{finished:#?}");
    assert!(finished.stderr.contains("--name"), "{finished:#?}");
    assert_eq!(history_in(&server, "bob", "general").await, vec![]);
}

/// Exit 3: nothing listens at the address.
#[tokio::test]
async fn exit_3_when_nothing_listens() {
    let port = closed_port();
    let finished = run(
        &[&format!("ws://127.0.0.1:{port}"), "--name", "alice"],
        "hi\n",
    )
    .await;
    assert_eq!(finished.code, Some(3), "{finished:#?}");
    let line = failure_line(&finished);
    assert!(
        line.starts_with(&format!("banter-cli: cannot reach 127.0.0.1:{port}")),
        "{line}"
    );
}

/// Exit 4: someone already has the name.
#[tokio::test]
async fn exit_4_when_the_name_is_taken() {
    let server = Server::start().await;
    let mut alice = server.join("alice").await;
    expect_users(&mut alice, &["alice"]).await;
    let finished = run(&[&url(&server), "--name", "alice"], "hi\n").await;
    assert_eq!(finished.code, Some(4), "{finished:#?}");
    let line = failure_line(&finished);
    assert!(
        line.starts_with("banter-cli: Username alice is already taken"),
        "{line}"
    );
    say(&mut alice, "still mine").await;
    expect_event(&mut alice, "send-message", |e| e["message"] == "still mine").await;
}

/// Exit 5: the server needs a token and none, or a wrong one, was given;
/// with the right one the script goes through.
#[tokio::test]
async fn exit_5_without_the_right_token() {
    let server = Server::start_with(&["--auth-tokens", TOKEN]).await;
    let url = url(&server);
    let finished = run(&[&url, "--name", "alice"], "hi\n").await;
    assert_eq!(finished.code, Some(5), "{finished:#?}");
    let line = failure_line(&finished);
    assert!(line.contains("This server needs an access token"), "{line}");
    let finished = run(&[&url, "--name", "alice", "--token", "guess"], "hi\n").await;
    assert_eq!(finished.code, Some(5), "{finished:#?}");
    let line = failure_line(&finished);
    assert!(line.contains("The access token was refused"), "{line}");
    assert!(!finished.stderr.contains("guess"), "{finished:#?}");

    let finished = run(&[&url, "--name", "alice", "--token", TOKEN], "hi\n").await;
    assert_eq!(finished.code, Some(0), "{finished:#?}");
    assert_eq!(messages(&finished.stdout), ["alice (you): hi"]);
}

/// Exit 6: `wss://` to a server that does not speak TLS.
#[tokio::test]
async fn exit_6_when_the_tls_handshake_fails() {
    let server = Server::start().await;
    let finished = run(
        &[&format!("wss://{}", server.addr), "--name", "alice"],
        "hi\n",
    )
    .await;
    assert_eq!(finished.code, Some(6), "{finished:#?}");
    let line = failure_line(&finished);
    assert!(
        line.starts_with("banter-cli: TLS with 127.0.0.1:"),
        "{line}"
    );
}

/// Exit 7: the server went away and did not come back within
/// `--retry-for` seconds.
#[tokio::test]
async fn exit_7_when_the_server_does_not_come_back_in_time() {
    let server = Server::start().await;
    let mut alice = Running::spawn(&[&url(&server), "--name", "alice", "--retry-for", "1"]);
    alice.write("before\n").await;
    alice
        .wait_for_stdout("its echo", |l| untimed(l) == Some("alice (you): before"))
        .await;
    let gone = Instant::now();
    server.stop().await;
    let finished = alice.finish(PATIENCE).await;
    assert_eq!(finished.code, Some(7), "{finished:#?}");
    let line = failure_line(&finished);
    assert!(line.contains("did not come back within 1s"), "{line}");
    assert!(
        gone.elapsed() >= Duration::from_millis(900),
        "gave up after {:?}",
        gone.elapsed()
    );
    assert!(finished.stderr.contains("reconnecting"), "{finished:#?}");
}

/// Exit 7 too when a line given while the server is away cannot be
/// delivered before `--retry-for` runs out (stdin ended meanwhile).
#[tokio::test]
async fn exit_7_when_a_line_cannot_be_delivered_in_time() {
    let server = Server::start().await;
    let mut alice = Running::spawn(&[&url(&server), "--name", "alice", "--retry-for", "1"]);
    alice.write("before\n").await;
    alice
        .wait_for_stdout("its echo", |l| untimed(l) == Some("alice (you): before"))
        .await;
    server.stop().await;
    alice.write("into the void\n").await;
    alice.close_stdin();
    let finished = alice.finish(PATIENCE).await;
    assert_eq!(finished.code, Some(7), "{finished:#?}");
    let line = failure_line(&finished);
    assert!(line.contains("did not come back within 1s"), "{line}");
}

// ---------------------------------------------------------------------------
// Reconnecting

/// The server restarts (gracefully, 1001) on the same address while a
/// script runs: the client reconnects, resumes, delivers what it was given
/// after, and exits 0; everything is stored exactly once.
#[tokio::test]
async fn a_script_reconnects_across_a_restart_and_delivers_everything_once() {
    let root = tempfile::tempdir().expect("temp dir");
    let first = Server::start_in(root.path(), &[]).await;
    let addr = first.addr.clone();
    let mut alice = Running::spawn(&[&url(&first), "--name", "alice", "--retry-for", "20"]);
    alice.write("before restart\n").await;
    alice
        .wait_for_stdout("the first echo", |l| {
            untimed(l) == Some("alice (you): before restart")
        })
        .await;
    first.stop().await;
    let second = Server::start_at(root.path(), &addr, &[]).await;
    assert_eq!(second.addr, addr);
    alice.write("after restart\n").await;
    alice.close_stdin();
    let finished = alice.finish(PATIENCE * 2).await;
    assert_eq!(finished.code, Some(0), "{finished:#?}");
    assert_eq!(
        messages(&finished.stdout),
        ["alice (you): before restart", "alice (you): after restart"],
        "{finished:#?}"
    );
    assert!(finished.stderr.contains("reconnecting"), "{finished:#?}");
    assert_eq!(
        history_in(&second, "bob", "general").await,
        pairs(&[("alice", "before restart"), ("alice", "after restart")])
    );
}

// ---------------------------------------------------------------------------
// Interactive, under a pseudo-terminal

mod interactive {
    use super::*;
    use rexpect::{
        ReadUntil,
        process::wait::WaitStatus,
        session::{Options, PtySession, spawn_with_options},
    };

    /// The line editor asks the terminal where its cursor is (DSR, `ESC [
    /// 6n`) before drawing a prompt, and waits up to 2 s for the answer. A
    /// terminal answers at once; so does this one.
    const CURSOR_QUERY: &str = "\x1b[6n";
    const CURSOR_AT: &str = "\x1b[1;1R";

    /// A person's pause before typing (after a prompt appears, after a
    /// line is sent), and between two keys.
    const PAUSE: Duration = Duration::from_millis(250);
    const BETWEEN_KEYS: Duration = Duration::from_millis(15);

    /// A pseudo-terminal session, driven from a blocking thread step by
    /// step while the test's own sockets run on the runtime.
    pub(super) struct Pty(Option<PtySession>);

    impl Pty {
        pub(super) async fn spawn(args: Vec<String>) -> Pty {
            let session = tokio::task::spawn_blocking(move || {
                let mut command = std::process::Command::new(CLI);
                command
                    .args(&args)
                    .env("NO_COLOR", "1")
                    .env("TERM", "xterm")
                    .env_remove("BANTER_TOKEN");
                let timeout = PATIENCE.as_millis() as u64;
                spawn_with_options(command, Options::new().timeout_ms(Some(timeout)))
                    .expect("start banter-cli on a pty")
            })
            .await
            .expect("spawn task");
            Pty(Some(session))
        }

        async fn step<R: Send + 'static>(
            &mut self,
            f: impl FnOnce(&mut PtySession) -> R + Send + 'static,
        ) -> R {
            let mut session = self.0.take().expect("session");
            let (session, result) = tokio::task::spawn_blocking(move || {
                let result = f(&mut session);
                (session, result)
            })
            .await
            .expect("pty task");
            self.0 = Some(session);
            result
        }

        /// Waits for `text` on the terminal, answering the editor's cursor
        /// queries meanwhile, as a terminal does.
        pub(super) async fn expect(&mut self, text: &str) {
            let text = text.to_string();
            let seen = self
                .step(move |s| {
                    let until = std::time::Instant::now() + PATIENCE;
                    loop {
                        let needles = vec![
                            ReadUntil::String(text.clone()),
                            ReadUntil::String(CURSOR_QUERY.to_owned()),
                        ];
                        match s.exp_any(needles) {
                            Ok((_, found)) if found == CURSOR_QUERY => {
                                s.send(CURSOR_AT).expect("answer the cursor query");
                                s.flush().expect("flush");
                            }
                            Ok(_) => return Ok(()),
                            Err(e) => return Err(format!("{text:?}: {e}")),
                        }
                        if std::time::Instant::now() > until {
                            return Err(format!("{text:?}: not within {PATIENCE:?}"));
                        }
                    }
                })
                .await;
            if let Err(err) = seen {
                panic!("the terminal never showed {err}");
            }
        }

        /// Types `keys` one at a time, as a person does (no Enter).
        pub(super) async fn type_keys(&mut self, keys: &str) {
            tokio::time::sleep(PAUSE).await;
            let keys = keys.to_string();
            self.step(move |s| {
                let mut key = [0u8; 4];
                for c in keys.chars() {
                    s.send(c.encode_utf8(&mut key)).expect("type");
                    s.flush().expect("flush");
                    std::thread::sleep(BETWEEN_KEYS);
                }
            })
            .await;
        }

        /// Writes `keys` to the terminal at once: keys that arrive together
        /// (typed ahead, or coalesced by ssh or a slow link).
        pub(super) async fn type_at_once(&mut self, keys: &str) {
            tokio::time::sleep(PAUSE).await;
            let keys = keys.to_string();
            self.step(move |s| {
                s.send(&keys).expect("type");
                s.flush().expect("flush");
            })
            .await;
        }

        /// Types `line` and Enter.
        pub(super) async fn type_line(&mut self, line: &str) {
            self.type_keys(&format!("{line}\r")).await;
        }

        pub(super) async fn control(&mut self, c: char) {
            tokio::time::sleep(PAUSE).await;
            self.step(move |s| s.send_control(c).expect("control key"))
                .await;
        }

        /// The exit code, once the process has ended (bounded).
        pub(super) async fn exit_code(mut self) -> i32 {
            let status = self
                .step(|s| {
                    let until = std::time::Instant::now() + PATIENCE;
                    loop {
                        match s.process.status() {
                            Some(WaitStatus::StillAlive) | None
                                if std::time::Instant::now() < until =>
                            {
                                std::thread::sleep(Duration::from_millis(20));
                            }
                            other => return other,
                        }
                    }
                })
                .await;
            match status {
                Some(WaitStatus::Exited(_, code)) => code,
                other => panic!("banter-cli did not exit by itself: {other:?}"),
            }
        }
    }

    /// A person's session: connected to #general, a typed line is sent and
    /// shown as their own, `/users` lists who is here, a message arriving
    /// while a line is half typed is shown and the line is still sent
    /// whole, `/join ops` moves to #ops, and `exit` closes with 1000 and
    /// exits 0.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_interactive_session_chats_joins_another_room_and_exits() {
        let server = Server::start().await;
        let mut bob = server.join("bob").await;
        expect_users(&mut bob, &["bob"]).await;
        let mut carol = server.connect("username=carol&room=ops").await;
        expect_users(&mut carol, &["carol"]).await;

        let mut pty = Pty::spawn(vec![url(&server), "--name".into(), "alice".into()]).await;
        pty.expect("connected to #general as alice").await;
        expect_users(&mut bob, &["alice", "bob"]).await;

        pty.type_line("hello").await;
        let event = expect_event(&mut bob, "send-message", |_| true).await;
        assert_eq!(event["username"], "alice");
        assert_eq!(event["message"], "hello");
        pty.expect("alice (you): hello").await;

        pty.type_line("/users").await;
        pty.expect("#general: 2 online: alice, bob").await;

        // Half a line typed, then bob speaks.
        pty.type_keys("half ").await;
        tokio::time::sleep(PAUSE).await;
        say(&mut bob, "interrupting").await;
        pty.expect("bob: interrupting").await;
        pty.type_line("typed").await;
        let event = expect_event(&mut bob, "send-message", |e| e["username"] == "alice").await;
        assert_eq!(event["message"], "half typed");
        pty.expect("alice (you): half typed").await;

        pty.type_line("/join ops").await;
        pty.expect("joining #ops").await;
        expect_users(&mut carol, &["alice", "carol"]).await;
        expect_users(&mut bob, &["bob"]).await;
        expect_closed_with_1000(&server, "alice", "general").await;
        pty.type_line("in ops now").await;
        let event = expect_event(&mut carol, "send-message", |_| true).await;
        assert_eq!(event["username"], "alice");
        assert_eq!(event["message"], "in ops now");
        pty.expect("alice (you): in ops now").await;

        pty.type_line("exit").await;
        assert_eq!(pty.exit_code().await, 0);
        expect_closed_with_1000(&server, "alice", "ops").await;
        expect_users(&mut carol, &["carol"]).await;
        // bob, in #general, heard nothing said in #ops.
        say(&mut bob, "marker").await;
        let next = expect_event(&mut bob, "send-message", |_| true).await;
        assert_eq!(next["message"], "marker");
    }

    /// On joining, the latest page is shown; `/history` shows the page
    /// before it, and says so when there is nothing older.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn history_shows_older_pages_on_request() {
        let server = Server::start_with(UNTHROTTLED).await;
        let mut bob = server.join("bob").await;
        expect_users(&mut bob, &["bob"]).await;
        for i in 1..=55 {
            say(&mut bob, &format!("note {i}")).await;
        }
        expect_event(&mut bob, "send-message", |e| e["message"] == "note 55").await;
        let mut pty = Pty::spawn(vec![url(&server), "--name".into(), "alice".into()]).await;
        pty.expect("connected to #general as alice").await;
        pty.expect("bob: note 55").await;
        pty.type_line("/history").await;
        pty.expect("older messages:").await;
        pty.expect("bob: note 5").await;
        pty.type_line("/history").await;
        pty.expect("no older messages").await;
        pty.type_line("/quit").await;
        assert_eq!(pty.exit_code().await, 0);
    }

    /// bob in #general, and alice's terminal connected beside him.
    async fn alice_beside_bob() -> (Server, Socket, Pty) {
        let server = Server::start().await;
        let mut bob = server.join("bob").await;
        expect_users(&mut bob, &["bob"]).await;
        let mut pty = Pty::spawn(vec![url(&server), "--name".into(), "alice".into()]).await;
        pty.expect("connected to #general as alice").await;
        expect_users(&mut bob, &["alice", "bob"]).await;
        (server, bob, pty)
    }

    /// Ctrl-C at the prompt ends the session like `exit`: 1000, exit 0.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ctrl_c_closes_with_1000_and_exits_0() {
        let (server, mut bob, mut pty) = alice_beside_bob().await;
        pty.control('c').await;
        assert_eq!(pty.exit_code().await, 0);
        expect_closed_with_1000(&server, "alice", "general").await;
        expect_users(&mut bob, &["bob"]).await;
    }

    /// Keys that reach the terminal together (typed ahead while the client
    /// was busy, or coalesced by ssh) are all read: the whole line is sent.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn keys_arriving_together_are_all_read() {
        let (_server, mut bob, mut pty) = alice_beside_bob().await;
        pty.type_at_once("all at once\r").await;
        pty.expect("alice (you): all at once").await;
        let event = expect_event(&mut bob, "send-message", |_| true).await;
        assert_eq!(event["username"], "alice");
        assert_eq!(event["message"], "all at once");
        pty.type_keys("exit\r").await;
        assert_eq!(pty.exit_code().await, 0);
    }
}
