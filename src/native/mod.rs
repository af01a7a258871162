//! Banter's client outside the browser: the engine under `banter-cli` and
//! the server's help bot.
//!
//! [`run`] keeps one room's connection for as long as it is wanted. The
//! decisions are the shared [`Supervisor`]'s, exactly as in the page:
//! reconnect after a drop with a growing, jittered wait, resume from the
//! newest message seen, send the outbox again once (the server drops what
//! it already has by client id), treat a 1008 before joining as a refusal.
//! This module only carries them out over tokio-tungstenite: it opens the
//! sockets, paces what it sends under the server's flood limit, and keeps
//! the supervisor's one timer.
//!
//! Its caller talks to it through two channels: [`Command`]s in (send,
//! an older page, close), [`Update`]s out (the link, each event).
//! Unbounded on purpose: a chat's traffic is small, and neither side may
//! stall the other (a terminal that is slow to print must not stop the
//! socket from being read, and pongs from going out).

mod net;
mod target;

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::{sync::mpsc, time::Instant};
use tokio_tungstenite::{
    WebSocketStream,
    tungstenite::{
        self, Message,
        client::IntoClientRequest,
        http::header,
        protocol::{CloseFrame, WebSocketConfig, frame::coding::CloseCode},
    },
};

pub(crate) use net::{NetError, get};
pub(crate) use target::Target;

use crate::{
    protocol::{ClientEvent, ServerEvent, close_code},
    supervisor::{Due, Link, Pace, Supervisor},
};

/// What the browser reports, and this client assumes, when a socket drops
/// without a close frame.
const ABNORMAL_CLOSURE: u16 = 1006;
/// After sending a close, how long to wait for the server's answering one.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// The whole WebSocket handshake (TCP, TLS, the upgrade) may take this
/// long: a proxy that accepts and never answers must not hang a script.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(15);
/// With nothing at all from the server for this long, the connection is
/// taken as gone (a partition, a laptop asleep): the server pings every
/// 30 s by default, so a live one is never this quiet.
const SILENCE: Duration = Duration::from_secs(75);

/// What the caller asks of the connection.
#[derive(Debug)]
pub(crate) enum Command {
    /// A message typed: it waits in the outbox until the server echoes it.
    Send { client_id: String, text: String },
    /// The page of messages before this id.
    LoadHistory { before: u64 },
    /// Close with 1000 and end.
    Close,
}

/// What happened on the connection.
#[derive(Debug)]
pub(crate) enum Update {
    Link(Link),
    Event(ServerEvent),
}

/// Why the connection ended without being asked to.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    #[error(transparent)]
    Net(#[from] NetError),
    /// The server refused this user on joining (a taken name), in its words.
    #[error("{0}")]
    Refused(String),
    /// 401 or 403 to the handshake: no token, a wrong one, or a refused
    /// origin.
    #[error("{0}")]
    Unauthorized(String),
    /// Any other HTTP answer instead of a WebSocket.
    #[error("the server answered HTTP {0} instead of a WebSocket: {1}")]
    Rejected(u16, String),
    #[error("the server closed the connection ({0}) and did not come back within {1:?}")]
    Gone(String, Duration),
}

impl Failure {
    /// Whether trying again later may succeed (a drop, a busy server)
    /// rather than meet the same answer (TLS, tokens, a refused name).
    fn is_lasting(&self) -> bool {
        matches!(
            self,
            Failure::Net(NetError::Tls(..)) | Failure::Unauthorized(_) | Failure::Refused(_)
        )
    }

    /// The server is there but busy (429: too many from this address, 503:
    /// full): worth waiting for even on the first attempt.
    fn is_busy(&self) -> bool {
        matches!(self, Failure::Rejected(429 | 503, _))
    }
}

/// How long to keep trying.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Patience {
    /// Give up once the server has been away this long (`None`: never).
    pub(crate) retry_for: Option<Duration>,
    /// Fail at once if the very first attempt fails (a mistyped address
    /// should say so, not spin).
    pub(crate) first_must_connect: bool,
}

/// Keeps `target`'s connection until [`Command::Close`] (or the command
/// channel closing), or a [`Failure`].
pub(crate) async fn run(
    target: &Target,
    patience: Patience,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    updates: &mpsc::UnboundedSender<Update>,
) -> Result<(), Failure> {
    let clock = Clock(Instant::now());
    let mut supervisor = Supervisor::default();
    let mut joined_once = false;
    let mut down_since: Option<Instant> = None;
    loop {
        let since = supervisor.connecting();
        let _ = updates.send(Update::Link(Link::Connecting));
        let attempt = tokio::time::timeout(HANDSHAKE_TIMEOUT, connect(target, since)).await;
        let attempt = attempt.unwrap_or_else(|_| {
            let at = target
                .socket_url(None)
                .host_str()
                .unwrap_or_default()
                .to_owned();
            Err(NetError::Timeout(at).into())
        });
        let (code, reason) = match attempt {
            Ok(socket) => {
                let mut session = Session {
                    supervisor: &mut supervisor,
                    clock,
                    updates,
                    joined: false,
                };
                let end = session.run(socket, commands).await;
                if session.joined {
                    joined_once = true;
                    down_since = None;
                }
                match end {
                    None => return Ok(()),
                    Some(closed) => closed,
                }
            }
            Err(failure) if failure.is_lasting() => return Err(failure),
            Err(failure) if !joined_once && patience.first_must_connect && !failure.is_busy() => {
                return Err(failure);
            }
            Err(failure) => (ABNORMAL_CLOSURE, failure.to_string()),
        };
        supervisor.closed(code, reason.clone(), clock.now_ms(), fastrand::f64());
        let _ = updates.send(Update::Link(supervisor.link().clone()));
        match supervisor.link() {
            Link::Refused { reason } => return Err(Failure::Refused(reason.clone())),
            Link::Closed => return Ok(()),
            _ => {}
        }
        let down = *down_since.get_or_insert_with(Instant::now);
        let why = if reason.is_empty() {
            code.to_string()
        } else {
            format!("{code} {reason}")
        };
        // Until the next attempt: messages typed meanwhile join the outbox.
        loop {
            let give_up = patience.retry_for.map(|limit| (down + limit, limit));
            if let Some((at, limit)) = give_up
                && Instant::now() >= at
            {
                return Err(Failure::Gone(why, limit));
            }
            let next = clock.at(supervisor.deadline().unwrap_or(f64::INFINITY));
            let next = give_up.map_or(next, |(at, _)| next.min(at));
            tokio::select! {
                () = tokio::time::sleep_until(next) => {
                    if supervisor.poll(clock.now_ms()) == Due::Reconnect {
                        break;
                    }
                }
                command = commands.recv() => match command {
                    Some(Command::Send { client_id, text }) => {
                        supervisor.send(client_id, text);
                    }
                    Some(Command::LoadHistory { .. }) => {}
                    Some(Command::Close) | None => {
                        supervisor.close();
                        return Ok(());
                    }
                },
            }
        }
    }
}

/// Milliseconds since the client started, as the supervisor counts time.
#[derive(Debug, Clone, Copy)]
struct Clock(Instant);

impl Clock {
    fn now_ms(self) -> f64 {
        self.0.elapsed().as_secs_f64() * 1000.0
    }

    /// The instant `ms` stands for (a day ahead at most, for "never").
    fn at(self, ms: f64) -> Instant {
        let ahead = (ms - self.now_ms()).clamp(0.0, 86_400_000.0);
        Instant::now() + Duration::from_secs_f64(ahead / 1000.0)
    }
}

/// Opens the JSON socket as `target` says, resuming after `since`.
async fn connect(
    target: &Target,
    since: Option<u64>,
) -> Result<WebSocketStream<net::Stream>, Failure> {
    let url = target.socket_url(since);
    let stream = net::open(&url).await?;
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|err| NetError::Http(target.socket_url(None).to_string(), err.to_string()))?;
    if let Some(token) = &target.token
        && let Ok(value) = format!("Bearer {token}").parse()
    {
        request.headers_mut().insert(header::AUTHORIZATION, value);
    }
    let config = WebSocketConfig::default().max_message_size(Some(16 << 20));
    match tokio_tungstenite::client_async_with_config(request, stream, Some(config)).await {
        Ok((socket, _)) => Ok(socket),
        Err(tungstenite::Error::Http(response)) => {
            let status = response.status().as_u16();
            let body = response.body().as_deref().unwrap_or_default();
            let said = String::from_utf8_lossy(body)
                .lines()
                .next()
                .unwrap_or("")
                .to_owned();
            Err(match status {
                401 | 403 => Failure::Unauthorized(said),
                _ => Failure::Rejected(status, said),
            })
        }
        Err(err) => Err(NetError::Http(
            url.host_str().unwrap_or_default().to_owned(),
            err.to_string(),
        )
        .into()),
    }
}

/// One socket's life.
struct Session<'a> {
    supervisor: &'a mut Supervisor,
    clock: Clock,
    updates: &'a mpsc::UnboundedSender<Update>,
    /// The server answered: the user was in the room.
    joined: bool,
}

impl Session<'_> {
    /// Until the socket ends (its close code and reason) or the caller
    /// closes it (`None`).
    async fn run(
        &mut self,
        socket: WebSocketStream<net::Stream>,
        commands: &mut mpsc::UnboundedReceiver<Command>,
    ) -> Option<(u16, String)> {
        let (mut sink, mut stream) = socket.split();
        // The writer: paced under the server's default flood limit, so the
        // outbox after a reconnect (or a script's burst) is slowed rather
        // than refused.
        let (outgoing, mut queue) = mpsc::unbounded_channel::<Message>();
        let clock = self.clock;
        let writer = tokio::spawn(async move {
            let mut pace = Pace::new(clock.now_ms());
            while let Some(message) = queue.recv().await {
                let closing = matches!(message, Message::Close(_));
                if !closing {
                    let wait = pace.take(clock.now_ms());
                    if wait > 0.0 {
                        tokio::time::sleep(Duration::from_secs_f64(wait / 1000.0)).await;
                    }
                }
                if sink.send(message).await.is_err() || closing {
                    break;
                }
            }
        });
        let send = |event: &ClientEvent| {
            if let Ok(text) = serde_json::to_string(event) {
                let _ = outgoing.send(Message::text(text));
            }
        };
        let mut closed = (ABNORMAL_CLOSURE, String::new());
        let mut heard = Instant::now();
        loop {
            let deadline = self.supervisor.deadline().map(|at| self.clock.at(at));
            tokio::select! {
                () = tokio::time::sleep_until(heard + SILENCE) => {
                    closed = (ABNORMAL_CLOSURE, "no word from the server".to_owned());
                    break;
                }
                frame = stream.next() => match frame.inspect(|_| heard = Instant::now()) {
                    Some(Ok(Message::Text(text))) => match ServerEvent::from_json(&text) {
                        Ok(event) => {
                            let sends = self.supervisor.received(&event, self.clock.now_ms());
                            if !self.joined {
                                self.joined = true;
                                let _ = self.updates.send(Update::Link(Link::Connected));
                            }
                            let _ = self.updates.send(Update::Event(event));
                            sends.iter().for_each(send);
                        }
                        Err(err) => tracing::debug!(%err, "ignored a server frame"),
                    },
                    // tungstenite answers the close; the stream ends after.
                    Some(Ok(Message::Close(frame))) => {
                        closed = frame.map_or((1005, String::new()), |frame| {
                            (u16::from(frame.code), frame.reason.to_string())
                        });
                    }
                    // Pings (answered by tungstenite) and pongs.
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                },
                command = commands.recv() => match command {
                    Some(Command::Send { client_id, text }) => {
                        if let Some(event) = self.supervisor.send(client_id, text) {
                            send(&event);
                        }
                    }
                    Some(Command::LoadHistory { before }) => send(&ClientEvent::LoadHistory { before }),
                    Some(Command::Close) | None => {
                        self.supervisor.close();
                        let _ = outgoing.send(Message::Close(Some(CloseFrame {
                            code: CloseCode::Normal,
                            reason: "".into(),
                        })));
                        // The server's answering close, then the end.
                        let _ = tokio::time::timeout(CLOSE_WAIT, async {
                            while let Some(Ok(_)) = stream.next().await {}
                        })
                        .await;
                        let _ = tokio::time::timeout(CLOSE_WAIT, writer).await;
                        return None;
                    }
                },
                () = async {
                    match deadline {
                        Some(at) => tokio::time::sleep_until(at).await,
                        None => std::future::pending().await,
                    }
                } => {
                    if let Due::Resend(events) = self.supervisor.poll(self.clock.now_ms()) {
                        events.iter().for_each(send);
                    }
                }
            }
        }
        writer.abort();
        if closed.0 == close_code::POLICY && !self.joined {
            tracing::debug!(reason = %closed.1, "join refused");
        }
        Some(closed)
    }
}
