//! `banter-minimal`: the kernel's floor for Banter's benchmark. The Deno
//! tutorial's chat protocol with nothing a kernel does not have to do: one
//! thread, one epoll loop, and for every client message the broadcast is
//! framed once and `write(2)`n, the same bytes, to every connected socket in
//! one loop. No storage, no history, no rate limits, no rooms.
//!
//! A floor per message, not per frame delivered: one write per socket per
//! message is a syscall per delivery, so when messages come as fast as they
//! can, a server that puts several frames in one write delivers more.
//!
//! What it keeps of the protocol, and why:
//! - the handshake, and `Username X is already taken` (close 1008) as the
//!   tutorial server does;
//! - a joiner's first frame is `update-users` with everyone connected:
//!   banter-bench (and any tutorial client) takes the first frame after the
//!   upgrade as the join snapshot. Joiners in one turn of the loop share one
//!   encoded list. Nobody else is sent presence: the tutorial's whole list to
//!   everyone on every join costs O(N²) bytes per burst of N joins, the very
//!   cost that keeps the Deno and Node baselines from connecting 5,000
//!   clients, and it is not what this baseline measures;
//! - every message goes to everyone, its sender included (banter-bench's
//!   senders count their own messages coming back);
//! - pings are answered, a close is echoed and the socket closed.
//!
//! A socket the kernel will not take a frame for keeps the rest in its own
//! overflow buffer, flushed when it becomes writable; past `MAX_BACKLOG` it
//! is dropped. Benchmark clients read everything, so none of their frames
//! is lost.
//!
//! The modules, one idea each:
//! - `server`: the loop, the connection slots, and what each event does to
//!   the chat (joins, broadcasts, snapshots, closes);
//! - `conn`: one connection's state, its unread input and its overflow
//!   buffer;
//! - `roster`: the names taken and the list a joiner's snapshot shows;
//! - `handshake`: the upgrade request and the 101, 404 and 426 answers;
//! - `frame`: WebSocket frames, parsed from clients and encoded for them;
//! - `event`: the chat's JSON events and the broadcast framed from one.
//!
//!   banter-minimal 127.0.0.1:3000

mod conn;
mod event;
mod frame;
mod handshake;
mod roster;
mod server;

use std::{io, net::SocketAddr};

use server::Server;

fn main() -> io::Result<()> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3000".to_string())
        .parse()
        .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
    let mut server = Server::bind(addr)?;
    println!("minimal chat on {addr}");
    server.run()
}
