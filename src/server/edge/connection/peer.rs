//! One connection's outgoing side, as its room hands it events.
//!
//! Why it exists: the kernel's floor for a chat message is one `write(2)`
//! per member. A ring with a writer task per member added, for every
//! member and every message, a task woken and scheduled, a receive from
//! the ring and the writer's own bookkeeping — a third of the server's CPU
//! at 1,000 listeners (issue 12). So the room writes each event straight
//! into the member's socket, in its own loop, whenever the member has
//! nothing queued: the framed bytes go to one send, and nothing else
//! happens. A storage delivery's send goes on the room's round
//! ([`send_ring`]: one `io_uring_enter(2)` for the whole room), the rest
//! (typing, presence, replies) is one `sendto(2)`. Only a member whose socket would block (a slow network, a
//! burst bigger than the socket buffer) queues the rest here, and its
//! writer task (`super::writer`), woken once, writes the queue out when
//! the socket is writable again. A member that stays a whole
//! [`EVENT_BUFFER`] behind is marked as fallen behind, and its writer
//! closes it with 1013.
//!
//! Order: everything this connection is sent passes through here under one
//! lock, so a direct write can never overtake what is queued, and a frame
//! is never split by another. A frame cut short by the kernel keeps its
//! place at the head of the queue with what is left of it. While a send
//! is on a round, the connection is `in_ring`: anything else for it is
//! queued, and the send's result (settled before the round ends) puts what
//! the socket did not take at the head of that queue.

use std::{
    collections::VecDeque,
    io::{self, IoSlice},
    os::fd::{AsRawFd, BorrowedFd, RawFd},
    sync::{Arc, Mutex},
};

use bytes::Bytes;
use tokio::{net::tcp::OwnedWriteHalf, sync::Notify};

use super::dialect::Speech;
use crate::server::{
    chat::{
        frame::{Frame, Outbound},
        lock,
        member::Recipient,
        room::EVENT_BUFFER,
    },
    edge::wire::encode::{self, TEXT},
    metrics,
    send_ring::{self, Payload, Round, Sent, Settle},
};

/// Most queued frames handed to one `writev`.
const WRITE_BATCH: usize = 64;

/// A connection's outgoing side. See the module docs.
pub(super) struct Peer {
    socket: OwnedWriteHalf,
    /// `socket`'s descriptor, kept beside the lock the room takes anyway:
    /// reading it through the write half is one more cache line per member
    /// (perf: `TcpStream::as_fd` was 8.5% of the server at 1,000
    /// listeners). Open for as long as this `Peer` holds `socket`.
    fd: RawFd,
    out: Mutex<Out>,
    /// Wakes the writer: something is queued, or the member fell behind.
    wake: Notify,
}

struct Out {
    /// Until the join snapshot is queued, events wait here unsaid: a
    /// plain-text client's words for them depend on the list the snapshot
    /// gives it, and a resumed client skips what the snapshot holds.
    held: Option<Vec<(u64, Frame)>>,
    speech: Speech,
    /// Messages up to this id were in the snapshot.
    seen_through: u64,
    queue: VecDeque<Pending>,
    /// Room events in `queue` (not the snapshot, replies or control
    /// frames): what falling behind is counted in. A resume's snapshot can
    /// be 10,000 frames on its own and is not a sign of a slow client.
    live: usize,
    /// Events dropped because the queue was full; non-zero: fallen behind.
    missed: u64,
    /// The server's close is queued: nothing more may follow it (§5.5.1).
    closing: bool,
    /// A write failed: the connection is gone, nothing more is written.
    broken: bool,
    /// A send to this socket is on the room's ring ([`send_ring`]), its
    /// result not yet back: nothing else may be written meanwhile, and
    /// whatever comes is queued behind it.
    in_ring: bool,
}

/// One frame waiting for the socket.
struct Pending {
    /// The whole frame, header and payload.
    bytes: Bytes,
    /// How much of it is already written.
    sent: usize,
    kind: Kind,
}

/// What a frame is, for counting.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Handed over by the room: a chat event, counted as delivered and in
    /// [`Out::live`].
    Live,
    /// A chat event for this client alone (the snapshot, a reply):
    /// counted as delivered.
    Reply,
    /// A control frame (ping, pong, close).
    Control,
}

impl Pending {
    fn rest(&self) -> &[u8] {
        &self.bytes[self.sent..]
    }
}

/// A text frame's bytes on the wire.
fn text_frame(frame: &Frame) -> Bytes {
    Bytes::from(encode::frame(TEXT, frame.as_bytes()))
}

/// How a drain went.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Drained {
    /// Everything queued is written.
    All,
    /// The socket took what it could; wait until it is writable.
    Blocked,
    /// A send is on the room's ring: wait to be woken, which its result
    /// does if anything is queued behind it.
    Ring,
}

impl Peer {
    pub(super) fn new(socket: OwnedWriteHalf, speech: Speech) -> Arc<Self> {
        Arc::new(Peer {
            fd: socket.as_ref().as_raw_fd(),
            socket,
            out: Mutex::new(Out {
                held: Some(Vec::new()),
                speech,
                seen_through: 0,
                queue: VecDeque::new(),
                live: 0,
                missed: 0,
                closing: false,
                broken: false,
                in_ring: false,
            }),
            wake: Notify::new(),
        })
    }

    pub(super) fn socket(&self) -> &OwnedWriteHalf {
        &self.socket
    }

    /// Resolves when the writer has something to do.
    pub(super) async fn woken(&self) {
        self.wake.notified().await;
    }

    /// Queues the join snapshot (said in the connection's dialect), then
    /// what the room handed over meanwhile that the snapshot does not
    /// hold, and from now on lets events through.
    pub(super) fn start(&self, snapshot: Vec<Frame>, seen_through: u64, me: &str, room: &str) {
        let mut out = lock(&self.out);
        let out = &mut *out;
        for frame in out.speech.snapshot(snapshot, me, room) {
            out.push(text_frame(&frame), 0, Kind::Reply);
        }
        out.seen_through = seen_through;
        for (id, frame) in out.held.take().unwrap_or_default() {
            if (id == 0 || id > seen_through)
                && let Some(frame) = out.speech.say(frame)
            {
                out.push(text_frame(&frame), 0, Kind::Reply);
            }
        }
    }

    /// A frame for this client alone (an error, a history page), said in
    /// its dialect.
    pub(super) fn reply(&self, frame: Frame) {
        let mut out = lock(&self.out);
        if out.closing {
            return;
        }
        if let Some(frame) = out.speech.say(frame) {
            let written = self.send(&mut out, Payload::Own(text_frame(&frame)), Kind::Reply);
            metrics::delivered(written);
        }
    }

    /// A control frame (ping, pong), after everything queued.
    pub(super) fn control(&self, frame: Vec<u8>) {
        let mut out = lock(&self.out);
        if !out.closing {
            self.send(&mut out, Payload::Own(Bytes::from(frame)), Kind::Control);
        }
    }

    /// The server's close frame, after everything queued; nothing is sent
    /// after it (RFC 6455 §5.5.1), whatever the room hands over meanwhile.
    pub(super) fn close(&self, frame: Vec<u8>) {
        let mut out = lock(&self.out);
        if !out.closing {
            self.send(&mut out, Payload::Own(Bytes::from(frame)), Kind::Control);
            out.closing = true;
        }
    }

    /// Events dropped for a full queue (non-zero: fallen behind).
    pub(super) fn missed(&self) -> u64 {
        lock(&self.out).missed
    }

    /// Writes what the socket takes now, without waiting (the writer's
    /// way: through tokio, so that a full socket clears tokio's readiness
    /// and the writer's wait for it is real).
    pub(super) fn drain(&self) -> io::Result<Drained> {
        let mut out = lock(&self.out);
        let mut delivered = 0;
        let drained = self.drain_locked(&mut out, Via::Tokio, &mut delivered);
        metrics::delivered(delivered);
        drained
    }

    /// Writes queued frames until the queue is empty or the socket full,
    /// adding the chat events that went out to `delivered`.
    fn drain_locked(&self, out: &mut Out, via: Via, delivered: &mut u64) -> io::Result<Drained> {
        if out.broken {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if out.in_ring {
            return Ok(Drained::Ring);
        }
        while !out.queue.is_empty() {
            let written = if out.queue.len() == 1 {
                let rest = out.queue.front().map_or(&[][..], Pending::rest);
                match via {
                    Via::Tokio => self.socket.try_write(rest),
                    Via::Socket => self.raw(|socket| socket.send(rest)),
                }
            } else {
                let slices: Vec<IoSlice<'_>> = out
                    .queue
                    .iter()
                    .take(WRITE_BATCH)
                    .map(|pending| IoSlice::new(pending.rest()))
                    .collect();
                match via {
                    Via::Tokio => self.socket.try_write_vectored(&slices),
                    Via::Socket => self.raw(|socket| socket.send_vectored(&slices)),
                }
            };
            match written {
                Ok(0) => {
                    out.broken = true;
                    return Err(io::ErrorKind::WriteZero.into());
                }
                Ok(written) => *delivered += out.written_out(written),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(Drained::Blocked),
                Err(err) => {
                    out.broken = true;
                    return Err(err);
                }
            }
        }
        // A burst grew it (a join snapshot, a backlog): an idle
        // connection keeps no queue.
        if out.queue.capacity() > 8 {
            out.queue = VecDeque::new();
        }
        Ok(Drained::All)
    }

    /// The socket for a plain `send(2)`. One contiguous frame skips the
    /// file layer a vectored `write` goes through (perf: vfs_writev,
    /// fdget_pos and sock_write_iter were 14% of the server at 1,000
    /// listeners), and going around tokio's readiness bookkeeping saves a
    /// cache miss or two per member (15%). If the socket is full, tokio
    /// learns it on the writer's first try.
    fn raw<T>(&self, write: impl FnOnce(socket2::SockRef<'_>) -> T) -> T {
        write(socket2::SockRef::from(&self.fd()))
    }

    /// The socket's descriptor, for as long as `self` is borrowed.
    fn fd(&self) -> BorrowedFd<'_> {
        // SAFETY: `self.fd` is the descriptor of `self.socket`, which this
        // `Peer` owns, so it stays open while `&self` is borrowed; it is
        // never closed through the borrow.
        unsafe { BorrowedFd::borrow_raw(self.fd) }
    }

    /// What `event` becomes for this client, if it is to be sent now:
    /// `None` if it waits for the snapshot, was in it, is not said in this
    /// dialect, or the client has fallen behind.
    fn accept<'e>(&self, out: &mut Out, event: &'e Outbound) -> Option<Payload<'e>> {
        if out.missed > 0 {
            out.missed += 1;
            return None;
        }
        if let Some(held) = &mut out.held {
            if held.len() >= EVENT_BUFFER {
                out.missed = 1;
                self.wake.notify_one();
            } else {
                held.push((event.id, event.frame.clone()));
            }
            return None;
        }
        if event.id != 0 && event.id <= out.seen_through {
            return None;
        }
        if out.closing {
            return None;
        }
        if out.live >= EVENT_BUFFER {
            out.missed = 1;
            self.wake.notify_one();
            return None;
        }
        Some(match &mut out.speech {
            // Every JSON member sends the same bytes: framed once.
            Speech::Json => Payload::Shared(event.wire.get_or_init(|| text_frame(&event.frame))),
            Speech::Text(_) => Payload::Own(text_frame(&out.speech.say(event.frame.clone())?)),
        })
    }

    /// Writes `payload` at once if nothing is ahead of it and the socket
    /// takes it, else queues it and wakes the writer. Returns the chat
    /// events that went out now (0 or 1).
    fn send(&self, out: &mut Out, payload: Payload<'_>, kind: Kind) -> u64 {
        if out.broken {
            return 0;
        }
        if out.writes_directly() {
            let written = send_ring::send_now(self.fd(), payload.as_slice());
            return self.wrote(out, payload, written, kind, End::Back);
        }
        out.push(payload.into_owned(), 0, kind);
        self.wake.notify_one();
        0
    }

    /// What a write of `payload` did: all of it went out (a chat event
    /// delivered), some or none of it (the rest queued at `end`, the
    /// writer woken), or the connection is gone (the writer woken to end
    /// it). Returns the chat events delivered (0 or 1).
    fn wrote(
        &self,
        out: &mut Out,
        payload: Payload<'_>,
        written: io::Result<usize>,
        kind: Kind,
        end: End,
    ) -> u64 {
        let sent = match written {
            Ok(sent) if sent == payload.as_slice().len() => {
                return u64::from(kind != Kind::Control);
            }
            Ok(sent) => sent,
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                0
            }
            Err(_) => {
                out.broken = true;
                self.wake.notify_one();
                return 0;
            }
        };
        out.queue_at(end, payload.into_owned(), sent, kind);
        self.wake.notify_one();
        0
    }
}

/// Where in the queue a frame the socket did not take goes.
#[derive(Clone, Copy)]
enum End {
    /// After what is queued: it was written as soon as it came.
    Back,
    /// Before it: it was on the ring while the rest queued up behind it.
    Front,
}

impl Recipient for Peer {
    fn offer(&self, event: &Outbound) -> u64 {
        let mut out = lock(&self.out);
        match self.accept(&mut out, event) {
            Some(wire) => self.send(&mut out, wire, Kind::Live),
            None => 0,
        }
    }

    /// One event as part of the room's round: with nothing queued, onto
    /// the ring, its result settled before the round ends (see
    /// [`send_ring`]).
    fn offer_in<'a>(&'a self, event: &'a Outbound, round: &mut Round<'_, 'a>) -> u64 {
        let mut out = lock(&self.out);
        let Some(payload) = self.accept(&mut out, event) else {
            return 0;
        };
        if out.broken || !out.writes_directly() {
            return self.send(&mut out, payload, Kind::Live);
        }
        match round.send(self.fd(), payload, self) {
            Sent::Queued => {
                out.in_ring = true;
                0
            }
            Sent::Done(payload, written) => {
                self.wrote(&mut out, payload, written, Kind::Live, End::Back)
            }
        }
    }

    /// A storage batch: queued together, and written together (one
    /// `sendmsg` for up to 64 of them) if nothing was waiting before.
    fn offer_all(&self, events: &[Outbound]) -> u64 {
        // A chat's pace: a batch of one, sent without touching the queue
        // (pushing it first was a cache line more per member).
        if let [event] = events {
            return self.offer(event);
        }
        let mut out = lock(&self.out);
        let direct = out.writes_directly() && !out.broken;
        for event in events {
            if let Some(wire) = self.accept(&mut out, event) {
                out.push(wire.into_owned(), 0, Kind::Live);
            }
        }
        if out.queue.is_empty() {
            return 0;
        }
        let mut delivered = 0;
        if direct
            && matches!(
                self.drain_locked(&mut out, Via::Socket, &mut delivered),
                Ok(Drained::All)
            )
        {
            return delivered;
        }
        self.wake.notify_one();
        delivered
    }

    /// Brings this connection's state (its lock, flags, queue and
    /// descriptor: the whole `Peer`, a few cache lines) towards the cache
    /// ahead of its offer.
    fn prefetch(&self) {
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            let start = std::ptr::from_ref(self).cast::<i8>();
            let size = size_of::<Self>();
            for offset in (0..size).step_by(64).chain([size - 1]) {
                // SAFETY: a prefetch is a hint: it never faults, and the
                // program observes nothing of it; the address is inside
                // `self` anyway.
                unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset)) };
            }
        }
    }
}

impl Settle for Peer {
    /// A send on the ring came back: what it did not write goes to the
    /// head of the queue, ahead of anything queued while it was out.
    fn settle(&self, payload: Payload<'_>, written: io::Result<usize>) -> u64 {
        let mut out = lock(&self.out);
        out.in_ring = false;
        let delivered = self.wrote(&mut out, payload, written, Kind::Live, End::Front);
        // Whatever queued behind it while it was out (`wrote` has already
        // woken the writer for a frame it did not finish).
        if delivered == 1 && !out.queue.is_empty() {
            self.wake.notify_one();
        }
        delivered
    }
}

/// Which way a drain writes.
#[derive(Clone, Copy)]
enum Via {
    /// The writer task's: tokio's own, so its readiness stays true.
    Tokio,
    /// The room's: a plain system call (see [`Peer::raw`]).
    Socket,
}

impl Out {
    /// Whether a frame may go straight into the socket: nothing is ahead
    /// of it, waiting or on the ring.
    fn writes_directly(&self) -> bool {
        self.held.is_none() && self.queue.is_empty() && !self.in_ring
    }

    /// Queues a frame of which `sent` bytes are already written.
    fn push(&mut self, bytes: Bytes, sent: usize, kind: Kind) {
        self.queue_at(End::Back, bytes, sent, kind);
    }

    /// Queues a frame at `end` of the queue.
    fn queue_at(&mut self, end: End, bytes: Bytes, sent: usize, kind: Kind) {
        self.live += usize::from(kind == Kind::Live);
        let pending = Pending { bytes, sent, kind };
        match end {
            End::Back => self.queue.push_back(pending),
            End::Front => self.queue.push_front(pending),
        }
    }

    /// Takes `written` bytes off the front of the queue: whole frames
    /// leave it, a frame cut short keeps its place. Returns the chat
    /// events that left.
    fn written_out(&mut self, mut written: usize) -> u64 {
        let mut delivered = 0;
        while let Some(front) = self.queue.front_mut() {
            let left = front.bytes.len() - front.sent;
            if written < left {
                front.sent += written;
                break;
            }
            written -= left;
            delivered += u64::from(front.kind != Kind::Control);
            self.live -= usize::from(front.kind == Kind::Live);
            self.queue.pop_front();
        }
        delivered
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::{
        io::AsyncReadExt,
        net::{TcpListener, TcpStream},
    };

    use super::*;
    use crate::{
        protocol::ServerEvent,
        server::{
            chat::frame::{Audience, encode},
            send_ring::SendRing,
        },
    };

    fn error(message: &str) -> Frame {
        encode(&ServerEvent::Error {
            message: message.to_string(),
        })
    }

    /// A connected peer (snapshot sent: events go straight through) and
    /// its client's end of the socket.
    async fn connected() -> (Arc<Peer>, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (_, write) = server.into_split();
        let peer = Peer::new(write, Speech::Json);
        peer.start(Vec::new(), 0, "alice", "lobby");
        (peer, client)
    }

    async fn read_frame(client: &mut TcpStream) -> Vec<u8> {
        let mut header = [0u8; 2];
        client.read_exact(&mut header).await.unwrap();
        assert_eq!(header[1] & 0x80, 0, "server frames are unmasked");
        let len = match header[1] & 0x7f {
            126 => usize::from(client.read_u16().await.unwrap()),
            len => usize::from(len),
        };
        let mut payload = vec![0; len];
        client.read_exact(&mut payload).await.unwrap();
        payload
    }

    #[tokio::test]
    async fn what_comes_while_a_send_is_on_the_ring_follows_it_in_order() {
        let (peer, mut client) = connected().await;
        let event = Outbound::new(Audience::Everyone, 1, error("first"));
        let mut ring = SendRing::new();
        let mut round = ring.round();
        assert_eq!(
            peer.offer_in(&event, &mut round),
            0,
            "on the ring, not yet sent"
        );
        // A reply from the connection's own task meanwhile: it must wait
        // behind the send on the ring, and the writer must not write it.
        peer.reply(error("second"));
        assert_eq!(peer.drain().unwrap(), Drained::Ring);
        assert_eq!(round.finish(), 1);
        // The result came back: the writer is woken for the reply.
        tokio::time::timeout(Duration::from_secs(1), peer.woken())
            .await
            .unwrap();
        assert_eq!(peer.drain().unwrap(), Drained::All);
        let first = read_frame(&mut client).await;
        let second = read_frame(&mut client).await;
        assert!(String::from_utf8_lossy(&first).contains("first"));
        assert!(String::from_utf8_lossy(&second).contains("second"));
    }

    #[tokio::test]
    async fn a_frame_the_full_socket_cut_short_is_finished_before_anything_else() {
        let (peer, mut client) = connected().await;
        // Bigger than the socket takes while the client reads nothing.
        let big = Outbound::new(Audience::Everyone, 1, error(&"x".repeat(60_000)));
        let mut ring = SendRing::new();
        let mut sent_at_once = 0;
        // Loopback buffers grow to several megabytes before they fill.
        for _ in 0..2000 {
            let mut round = ring.round();
            sent_at_once += peer.offer_in(&big, &mut round);
            sent_at_once += round.finish();
            if !lock(&peer.out).queue.is_empty() {
                break;
            }
        }
        assert!(!lock(&peer.out).queue.is_empty(), "the socket never filled");
        peer.reply(error("after"));
        // Read everything while the writer's way drains the queue.
        let reader = tokio::spawn(async move {
            let mut frames = Vec::new();
            loop {
                let frame = read_frame(&mut client).await;
                let done = String::from_utf8_lossy(&frame).contains("after");
                frames.push(frame);
                if done {
                    return frames;
                }
            }
        });
        while peer.drain().unwrap() != Drained::All {
            peer.socket().writable().await.unwrap();
        }
        let frames = tokio::time::timeout(Duration::from_secs(5), reader)
            .await
            .unwrap()
            .unwrap();
        let (last, bigs) = frames.split_last().unwrap();
        assert!(String::from_utf8_lossy(last).contains("after"));
        assert!(bigs.iter().all(|frame| frame.len() == big.frame.len()));
        assert!(u64::try_from(bigs.len()).unwrap() > sent_at_once);
    }
}
