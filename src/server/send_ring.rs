//! The fan-out's writes, handed to the kernel together.
//!
//! Why it exists: a message to a room of 1,000 is 1,000 sends, and with
//! one `sendto(2)` each, every send pays the kernel's entry and exit, and
//! the return to user space between two sends costs the next one its warm
//! caches. On this project's machines (VMs where a bare system call costs
//! ~0.3 µs) that was a fifth of each send: a loop of 1,000 loopback sends
//! took 6.9–7.4 µs of CPU a frame with `sendto`, 5.6–6.2 µs queued into an
//! io_uring and handed over with one `io_uring_enter(2)` (issue 12, three
//! alternated runs). So a room's loop queues each member's send on a
//! [`Round`] ([`Round::send`]), and the round hands them to the kernel at
//! its end, or whenever the ring is full; the minimal server it is
//! measured against pays a system call per socket.
//!
//! Every send is marked `MSG_DONTWAIT`, so the kernel tries it at once,
//! inside the submit, and reports what happened: written, written in part,
//! or would block (the socket is full). Nothing is left waiting in the
//! kernel, and each sender learns its result ([`Settle::settle`]) before
//! the round ends; a member whose socket was full queues the rest for its
//! own writer, exactly as after a direct write that came up short.
//!
//! Where there is no io_uring (another OS, an old kernel, a sandbox whose
//! seccomp filter refuses it), a round makes each send a direct `sendto(2)`
//! and gives the result straight back ([`Sent::Done`]), so callers have
//! one path either way.
//!
//! This module imports nothing of Banter's: the room's loop (`chat`) and
//! the connections (`edge`) both use it.

use std::{
    io,
    os::fd::{AsRawFd, BorrowedFd},
};

use bytes::Bytes;
#[cfg(target_os = "linux")]
use tracing::{error, info};

/// Sends queued before the ring is handed to the kernel: a room of 1,000
/// is one submit, 5,000 are five. The ring's memory is a few pages for
/// each thread that fans out with one (the storage thread).
#[cfg(target_os = "linux")]
const RING_ENTRIES: u32 = 1024;

/// Consecutive submits that made no progress (the kernel short of memory)
/// before the ring is given up for direct writes.
#[cfg(target_os = "linux")]
const STALLED_SUBMITS: usize = 8;

/// A frame's bytes as one member gets them: the room's, shared by every
/// member that says the event the same way, or its own.
pub(crate) enum Payload<'a> {
    Shared(&'a Bytes),
    Own(Bytes),
}

impl Payload<'_> {
    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Payload::Shared(bytes) => bytes,
            Payload::Own(bytes) => bytes,
        }
    }

    /// The bytes to keep (a reference count touched for shared ones).
    pub(crate) fn into_owned(self) -> Bytes {
        match self {
            Payload::Shared(bytes) => bytes.clone(),
            Payload::Own(bytes) => bytes,
        }
    }
}

/// Whoever queued a send on a round: told what became of it.
pub(crate) trait Settle {
    /// `written`: the bytes of `payload` the socket took (all, or fewer
    /// when it filled up), or why it took none (`WouldBlock`: full).
    /// Returns how many chat frames that delivered (0 or 1).
    fn settle(&self, payload: Payload<'_>, written: io::Result<usize>) -> u64;
}

/// What [`Round::send`] did with a send.
pub(crate) enum Sent<'a> {
    /// On the ring: its result comes to [`Settle::settle`] before the
    /// round ends.
    Queued,
    /// Written directly (no ring): here is the result, and the bytes back.
    Done(Payload<'a>, io::Result<usize>),
}

/// One thread's ring, kept for its life. See the module docs.
pub(crate) struct SendRing {
    #[cfg(target_os = "linux")]
    ring: Option<io_uring::IoUring>,
}

impl SendRing {
    /// A ring if the kernel gives one, else direct writes (logged once).
    pub(crate) fn new() -> Self {
        #[cfg(target_os = "linux")]
        {
            let ring = io_uring::IoUring::builder()
                // Every queued send is taken even if one fails early
                // (5.18+), and no interrupt is sent to run completions
                // (5.19+): a send's result is ready when the submit returns.
                .setup_submit_all()
                .setup_coop_taskrun()
                .build(RING_ENTRIES)
                .or_else(|_| io_uring::IoUring::new(RING_ENTRIES));
            match ring {
                Ok(ring) => SendRing { ring: Some(ring) },
                Err(err) => {
                    info!(%err, "no io_uring: the fan-out writes with one sendto(2) per member");
                    SendRing { ring: None }
                }
            }
        }
        #[cfg(not(target_os = "linux"))]
        SendRing {}
    }

    /// Direct writes only: for fan-outs too small or too rare to be worth
    /// a ring of their own (typing, presence, a cluster's deliveries).
    pub(crate) fn direct() -> Self {
        SendRing {
            #[cfg(target_os = "linux")]
            ring: None,
        }
    }

    /// Whether sends go through io_uring.
    #[cfg(test)]
    pub(crate) fn is_ring(&self) -> bool {
        #[cfg(target_os = "linux")]
        return self.ring.is_some();
        #[cfg(not(target_os = "linux"))]
        false
    }

    /// A round of sends, handed to the kernel when it ends (or is dropped).
    pub(crate) fn round<'a>(&mut self) -> Round<'_, 'a> {
        Round {
            ring: self,
            queued: Vec::new(),
            delivered: 0,
        }
    }
}

/// Sends queued for one fan-out. `'a`: how long the senders, their bytes
/// and their sockets outlive the round.
pub(crate) struct Round<'r, 'a> {
    ring: &'r mut SendRing,
    /// What each queued send is for, by its place (the ring's user data);
    /// taken as its result comes back.
    queued: Vec<Option<(&'a dyn Settle, Payload<'a>)>>,
    /// Chat frames the settled sends delivered.
    delivered: u64,
}

impl<'a> Round<'_, 'a> {
    /// Writes `payload` to `socket`, on the ring if there is one (its
    /// result then goes to `owner` before the round ends), else at once.
    pub(crate) fn send(
        &mut self,
        socket: BorrowedFd<'a>,
        payload: Payload<'a>,
        owner: &'a dyn Settle,
    ) -> Sent<'a> {
        #[cfg(target_os = "linux")]
        if self.ring.ring.is_some() {
            return self.queue(socket, payload, owner);
        }
        let _ = owner;
        direct(socket, payload)
    }

    /// Hands everything queued to the kernel and settles it; returns the
    /// chat frames the round's queued sends delivered.
    pub(crate) fn finish(mut self) -> u64 {
        self.flush();
        self.delivered
    }

    #[cfg(target_os = "linux")]
    fn queue(
        &mut self,
        socket: BorrowedFd<'a>,
        payload: Payload<'a>,
        owner: &'a dyn Settle,
    ) -> Sent<'a> {
        let Ok(len) = u32::try_from(payload.as_slice().len()) else {
            return direct(socket, payload);
        };
        if self
            .ring
            .ring
            .as_mut()
            .is_some_and(|ring| ring.submission().is_full())
        {
            self.flush();
        }
        let Some(ring) = self.ring.ring.as_mut() else {
            // The flush gave the ring up.
            return direct(socket, payload);
        };
        let entry = io_uring::opcode::Send::new(
            io_uring::types::Fd(socket.as_raw_fd()),
            payload.as_slice().as_ptr(),
            len,
        )
        .flags(libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT)
        .build()
        .user_data(self.queued.len() as u64);
        // SAFETY: the entry points at `payload`'s bytes, which stay where
        // they are until its completion is taken: `Shared` bytes are
        // borrowed for `'a`, which outlives the round, and `Own` bytes are
        // on the heap, kept in `self.queued`; moving the `Bytes` handle
        // does not move them. The descriptor is open for `'a`. The round
        // takes every completion before it ends or is dropped (`flush`),
        // and a ring it cannot finish is closed with nothing left queued
        // in it.
        match unsafe { ring.submission().push(&entry) } {
            Ok(()) => {
                self.queued.push(Some((owner, payload)));
                Sent::Queued
            }
            // Cannot happen (there was room); write it directly.
            Err(_) => direct(socket, payload),
        }
    }

    /// Submits what is queued, waits for every result (each comes back
    /// within the submit: nothing is left to wait on the socket) and hands
    /// each to its sender.
    fn flush(&mut self) {
        #[cfg(target_os = "linux")]
        {
            let Some(ring) = self.ring.ring.as_mut() else {
                return;
            };
            let mut settled = 0;
            let mut stalled = 0;
            let mut failure = None;
            while settled < self.queued.len() {
                let before = settled;
                match ring.submit_and_wait(1) {
                    Ok(_) => {}
                    Err(err)
                        if matches!(
                            err.raw_os_error(),
                            Some(libc::EINTR | libc::EAGAIN | libc::EBUSY)
                        ) => {}
                    Err(err) => {
                        failure = Some(err);
                        break;
                    }
                }
                for completion in ring.completion() {
                    let Some(slot) = usize::try_from(completion.user_data())
                        .ok()
                        .and_then(|place| self.queued.get_mut(place))
                    else {
                        continue;
                    };
                    if let Some((owner, payload)) = slot.take() {
                        let result = completion.result();
                        let written = usize::try_from(result)
                            .map_err(|_| io::Error::from_raw_os_error(-result));
                        self.delivered += owner.settle(payload, written);
                        settled += 1;
                    }
                }
                stalled = if settled == before { stalled + 1 } else { 0 };
                if stalled >= STALLED_SUBMITS {
                    failure = Some(io::Error::other("io_uring made no progress"));
                    break;
                }
            }
            if let Some(err) = failure {
                self.give_up(&err);
            }
        }
        self.queued.clear();
    }

    /// The ring failed: it is closed (whatever is still queued in it is
    /// never sent), and every send without a result is settled as not
    /// written, so its sender queues it for its writer. One the kernel
    /// may have taken without answering is settled as a failed write: its
    /// connection is dropped, and its client resumes from what it has.
    #[cfg(target_os = "linux")]
    fn give_up(&mut self, err: &io::Error) {
        error!(%err, "io_uring failed; the fan-out writes directly from now on");
        let unsubmitted = self
            .ring
            .ring
            .as_mut()
            .map_or(0, |ring| ring.submission().len());
        self.ring.ring = None;
        let first_unsubmitted = self.queued.len().saturating_sub(unsubmitted);
        for (place, slot) in self.queued.iter_mut().enumerate() {
            if let Some((owner, payload)) = slot.take() {
                let written = if place >= first_unsubmitted {
                    Err(io::ErrorKind::WouldBlock.into())
                } else {
                    Err(io::Error::other("io_uring lost the send"))
                };
                self.delivered += owner.settle(payload, written);
            }
        }
    }
}

impl Drop for Round<'_, '_> {
    /// A round never leaves a send in the ring: its bytes and socket are
    /// only borrowed for the round.
    fn drop(&mut self) {
        self.flush();
    }
}

/// A send written at once, its result handed back with its bytes.
fn direct<'a>(socket: BorrowedFd<'a>, payload: Payload<'a>) -> Sent<'a> {
    let written = send_now(socket, payload.as_slice());
    Sent::Done(payload, written)
}

/// One frame straight into the socket, as a bare `sendto(2)` system call:
/// libc's `send` is a thread-cancellation point, and in a process with
/// more than one thread it switches the thread's cancel state on and off
/// around every call (perf at 1,000 listeners: `__pthread_disable_
/// asynccancel`, as much as the room's own loop, and absent from the
/// single-threaded minimal server). Banter never cancels a thread, so the
/// call is made without the wrapper.
#[cfg(target_os = "linux")]
pub(crate) fn send_now(socket: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: `socket` is open for the borrow, and `bytes` is readable for
    // `bytes.len()` bytes throughout the call; the kernel writes nothing
    // into this process's memory.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_sendto,
            socket.as_raw_fd(),
            bytes.as_ptr(),
            bytes.len(),
            libc::MSG_NOSIGNAL | libc::MSG_DONTWAIT,
            std::ptr::null::<libc::sockaddr>(),
            0,
        )
    };
    usize::try_from(sent).map_err(|_| io::Error::last_os_error())
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn send_now(socket: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<usize> {
    socket2::SockRef::from(&socket).send(bytes)
}

#[cfg(test)]
mod tests {
    use std::{
        io::{Read, Write},
        net::{TcpListener, TcpStream},
        os::fd::AsFd,
        sync::Mutex,
        time::{Duration, Instant},
    };

    use super::*;

    /// Keeps every result it is told.
    #[derive(Default)]
    struct Results(Mutex<Vec<io::Result<usize>>>);

    impl Settle for Results {
        fn settle(&self, payload: Payload<'_>, written: io::Result<usize>) -> u64 {
            let delivered = matches!(written, Ok(n) if n == payload.as_slice().len());
            self.0.lock().unwrap().push(written);
            u64::from(delivered)
        }
    }

    fn pair(listener: &TcpListener) -> (TcpStream, TcpStream) {
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nonblocking(true).unwrap();
        (server, client)
    }

    /// What `round` did with `payload` to each of `sockets`: results
    /// settled later, or at once without a ring.
    fn send_all(
        ring: &mut SendRing,
        sockets: &[TcpStream],
        payload: &Bytes,
        results: &Results,
    ) -> u64 {
        let mut round = ring.round();
        let mut delivered = 0;
        for socket in sockets {
            if let Sent::Done(payload, written) =
                round.send(socket.as_fd(), Payload::Shared(payload), results)
            {
                delivered += results.settle(payload, written);
            }
        }
        delivered + round.finish()
    }

    #[test]
    fn every_socket_of_a_round_gets_the_whole_frame_once() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        // More than one ring's worth, so the round submits twice.
        let pairs: Vec<_> = (0..RING_ENTRIES as usize + 200)
            .map(|_| pair(&listener))
            .collect();
        let (servers, clients): (Vec<_>, Vec<_>) = pairs.into_iter().unzip();
        let payload = Bytes::from_static(b"\x81\x05hello");
        for mut ring in [SendRing::new(), SendRing::direct()] {
            let results = Results::default();
            assert_eq!(
                send_all(&mut ring, &servers, &payload, &results),
                servers.len() as u64
            );
            assert_eq!(results.0.lock().unwrap().len(), servers.len());
            for mut client in &clients {
                let mut got = [0; 7];
                client.read_exact(&mut got).unwrap();
                assert_eq!(&got, b"\x81\x05hello");
            }
        }
    }

    #[test]
    fn a_full_socket_is_told_at_once_and_the_others_are_written() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (full, _full_client) = pair(&listener);
        let (open, mut open_client) = pair(&listener);
        // Fill `full` until the kernel takes nothing more; its client
        // never reads.
        let chunk = vec![0u8; 65536];
        let mut stuffed = &full;
        while stuffed.write(&chunk).is_ok() {}
        let payload = Bytes::from(vec![7u8; 1000]);
        let mut ring = SendRing::new();
        let results = Results::default();
        let started = Instant::now();
        let delivered = send_all(&mut ring, &[full, open], &payload, &results);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a full socket held the round up"
        );
        assert_eq!(delivered, 1);
        let results = results.0.into_inner().unwrap();
        match &results[0] {
            Err(err) => assert_eq!(err.kind(), io::ErrorKind::WouldBlock),
            Ok(written) => assert!(*written < payload.len(), "wrote {written}"),
        }
        assert_eq!(results[1].as_ref().ok(), Some(&payload.len()));
        let mut got = vec![0u8; payload.len()];
        open_client.read_exact(&mut got).unwrap();
        assert_eq!(got, payload);
    }

    #[test]
    fn a_closed_connection_is_an_error_for_its_sender_alone() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (gone, gone_client) = pair(&listener);
        let (open, mut open_client) = pair(&listener);
        // The client goes with unread data, so its end answers with RST.
        let mut stuffed = &gone;
        stuffed.write_all(b"x").unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(gone_client);
        std::thread::sleep(Duration::from_millis(50));
        let payload = Bytes::from_static(b"hi");
        let mut ring = SendRing::new();
        let mut saw_error = false;
        for _ in 0..3 {
            let results = Results::default();
            send_all(
                &mut ring,
                &[gone.try_clone().unwrap(), open.try_clone().unwrap()],
                &payload,
                &results,
            );
            let results = results.0.into_inner().unwrap();
            saw_error |= results[0].is_err();
            assert_eq!(results[1].as_ref().ok(), Some(&2));
            let mut got = [0; 2];
            open_client.read_exact(&mut got).unwrap();
        }
        assert!(saw_error, "a send to a reset connection kept succeeding");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_machine_has_a_ring() {
        // The benchmark's figures assume it; a sandbox without io_uring
        // still works, with direct writes.
        assert!(SendRing::new().is_ring());
    }
}
