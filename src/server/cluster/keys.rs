//! Every key, channel and script Banter uses in Redis, in one place.
//!
//! All keys start with `banter:`. Room names are already canonical (ASCII
//! letters, digits, `-`, `_`), so they go into keys as they are.
//!
//! | key | type | what |
//! | --- | --- | --- |
//! | `banter:epoch` | string | set once the counters are seeded from PostgreSQL; missing = Redis came back empty |
//! | `banter:room:R:seq` | string | room R's last message id (`INCR`) |
//! | `banter:room:R:log` | stream | R's recent messages, entry id `ID-0`, field `f` = the frame; bounded |
//! | `banter:room:R:users` | hash | R's users everywhere: name key → `SEAT\nNAME` |
//! | `banter:room:R` | channel | R's live events for every process subscribed to it |
//! | `banter:archive` | stream | every accepted message, until an archiver has put it in PostgreSQL |
//! | `banter:cid:R:U:C` | string | the id given to user U's client id C in R: a resend is a no-op |
//! | `banter:procs` | sorted set | process id → last heartbeat (ms) |
//! | `banter:proc:P:seats` | set | `R\tKEY` of each user process P has in a room |
//!
//! Channel payloads start with one letter: `m` a message (`mID FRAME`),
//! `j`/`l` a user joined/left (`jPROC\tNAME`), `t` typing (`tNAME`). Each
//! process also has a channel of its own, `banter:probe:PROC`, for its
//! probes (`pPROC\tN`, see `subscriber`).

use redis::Script;

pub(crate) const EPOCH: &str = "banter:epoch";
pub(crate) const ARCHIVE: &str = "banter:archive";
pub(crate) const ARCHIVERS: &str = "archivers";
pub(crate) const PROCS: &str = "banter:procs";

/// Recent messages kept per room in Redis: joins and resumes read these;
/// older ones come from PostgreSQL. Approximate trimming (`~`).
pub(crate) const LOG_LEN: usize = 10_000;

/// The channel only process `proc_id` subscribes to: its probes go round
/// it, and while it has a subscriber there the process is alive.
pub(crate) fn probe(proc_id: &str) -> String {
    format!("banter:probe:{proc_id}")
}

pub(crate) fn channel(room: &str) -> String {
    format!("banter:room:{room}")
}

pub(crate) fn seq(room: &str) -> String {
    format!("banter:room:{room}:seq")
}

pub(crate) fn log(room: &str) -> String {
    format!("banter:room:{room}:log")
}

pub(crate) fn users(room: &str) -> String {
    format!("banter:room:{room}:users")
}

pub(crate) fn seats(proc_id: &str) -> String {
    format!("banter:proc:{proc_id}:seats")
}

/// The username's length goes first, so `a:b` + `c` and `a` + `b:c` are
/// different keys.
pub(crate) fn client_id(room: &str, username: &str, client_id: &str) -> String {
    format!(
        "banter:cid:{room}:{}:{username}:{client_id}",
        username.len()
    )
}

/// The room a channel is for, if it is a room channel.
pub(crate) fn room_of(channel: &str) -> Option<&str> {
    channel.strip_prefix("banter:room:")
}

/// Accepting a message, in one atomic step: refuse a resend, take the next
/// id, append it to the room's log and to the archive, and publish it.
/// Returns `{1, id}`, `{0, id}` for a resend (the first copy's id), or
/// `{-1, 0}` while the epoch is missing (the counters must be seeded first).
/// A client id is remembered for six hours (a page's outbox is resent when
/// it reconnects, within minutes), so Redis does not keep one key per
/// message for long. The counter is also kept above the log's newest entry,
/// so an `XADD` can never fail after the `INCR`; the client id is written
/// last, so a failed step cannot make a resend look accepted.
///
/// The id is above ARGV[10], the newest id the accepting process has
/// delivered in the room: after Redis lost its counters (and they were
/// seeded from PostgreSQL, which may lag), an id a client has already seen
/// is still never reused.
///
/// KEYS: epoch, seq, log, archive, client-id key (or "" for none).
/// ARGV: channel, frame head, frame tail, log length, room, username,
/// message, client id, ts ms, newest id seen.
pub(crate) fn publish() -> Script {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1, 0} end
if KEYS[5] ~= '' then
  local first = redis.call('GET', KEYS[5])
  if first then return {0, tonumber(first)} end
end
local floor = tonumber(ARGV[10])
local top = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)[1]
if top then
  local logged = tonumber(string.match(top[1], '^(%d+)'))
  if logged > floor then floor = logged end
end
if tonumber(redis.call('GET', KEYS[2]) or '0') < floor then redis.call('SET', KEYS[2], floor) end
local id = redis.call('INCR', KEYS[2])
local frame = ARGV[2] .. id .. ARGV[3]
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[4], id .. '-0', 'f', frame)
redis.call('XADD', KEYS[4], '*', 'r', ARGV[5], 'i', id, 'u', ARGV[6], 'm', ARGV[7],
  'c', ARGV[8], 't', ARGV[9])
redis.call('PUBLISH', ARGV[1], 'm' .. id .. ' ' .. frame)
if KEYS[5] ~= '' then redis.call('SET', KEYS[5], id, 'EX', 21600) end
return {1, id}
",
    )
}

/// How long a claim refused for a holder on another process waits before
/// asking once more. Redis drops a closed connection's subscriptions at
/// the end of its event-loop turn (`freeClientAsync`), not when it reads
/// the close: a claim that lands in the same turn as a killed process's
/// connection reset still counts that process as listening, and the page
/// coming back from it would be refused its own name. Measured here with
/// a subscriber that has pubsub traffic in flight when it dies (as every
/// chat process has): about 3 in 1,000 closes are still counted by a
/// command right after, none by the next one. 100 ms is many turns and
/// more than a LAN's round trip; a genuine "taken" is told that much
/// later, once.
pub(crate) const CLAIM_RECHECK: std::time::Duration = std::time::Duration::from_millis(100);

/// Taking a name in a room for one process, unless a live process holds
/// it. A holder whose process is gone no longer counts, and its seat is
/// taken over: one that stopped heartbeating (not in `procs`), or one with
/// nobody on its probe channel — a process that was killed drops its
/// connections at once, so a page that was on it can take its name back on
/// another process straight away instead of being refused for seconds.
/// A seat of this process that it has already released (ARGV[7]; the
/// release may still be on its way) is replaced too; any other seat of
/// this process is a user connected here, whatever the probe channel says
/// (it is empty while this process's subscription reconnects). A replaced
/// holder's leave is published first, so every list drops it (under
/// whatever spelling it had). The claimer's own join is not published
/// here but by [`announce`], once it has entered its room.
///
/// Returns 1; 0 if taken on this process; 2 if taken by a holder on
/// another process that still looks alive — which the caller asks again
/// about, see [`CLAIM_RECHECK`].
///
/// KEYS: users, seats of this process, procs.
/// ARGV: name key, seat (`PROC:N`), name, room, channel, proc, released
/// seat (or "").
pub(crate) fn claim() -> Script {
    Script::new(
        r"
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held then
  local seat, old = string.match(held, '^([^\n]*)\n(.*)$')
  local owner = string.match(held, '^([^:]*)')
  if seat ~= ARGV[7] then
    if owner == ARGV[6] then return 0 end
    if redis.call('ZSCORE', KEYS[3], owner) then
      local listening = redis.call('PUBSUB', 'NUMSUB', 'banter:probe:' .. owner)
      if listening[2] > 0 then return 2 end
    end
  end
  redis.call('PUBLISH', ARGV[5], 'l' .. owner .. '\t' .. old)
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. '\n' .. ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4] .. '\t' .. ARGV[1])
return 1
",
    )
}

/// Publishing a join once its user has entered, if the seat is still that
/// user's: a graceful shutdown's reap, or a takeover while this process's
/// probe channel was empty, may have freed it meanwhile, and a join
/// published then would be a ghost in every list that no leave clears.
/// Returns 1, or 0 if the seat is gone.
///
/// KEYS: users. ARGV: name key, seat, name, channel, proc.
pub(crate) fn announce() -> Script {
    Script::new(
        r"
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] .. '\n' .. ARGV[3] then return 0 end
redis.call('PUBLISH', ARGV[4], 'j' .. ARGV[5] .. '\t' .. ARGV[3])
return 1
",
    )
}

/// Giving a name back, if this seat still holds it (a later claim by
/// the same process under a new seat is left alone).
///
/// KEYS: users, seats of this process. ARGV: name key, seat, room,
/// channel, proc.
pub(crate) fn release() -> Script {
    Script::new(
        r"
local held = redis.call('HGET', KEYS[1], ARGV[1])
if not held then return 0 end
local seat, name = string.match(held, '^([^\n]*)\n(.*)$')
if seat ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[3] .. '\t' .. ARGV[1])
redis.call('PUBLISH', ARGV[4], 'l' .. ARGV[5] .. '\t' .. name)
return 1
",
    )
}

/// Every process that has not heartbeated since ARGV[1] (ms) — or the one
/// named in ARGV[2], shutting down — loses its users: each leaves its
/// room's list on every process, and its name is free again.
///
/// KEYS: procs. ARGV: cutoff ms, a process to remove now (or "").
pub(crate) fn reap() -> Script {
    Script::new(
        r"
local gone = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if ARGV[2] ~= '' then table.insert(gone, ARGV[2]) end
local left = 0
for _, proc in ipairs(gone) do
  local seats = 'banter:proc:' .. proc .. ':seats'
  for _, seat in ipairs(redis.call('SMEMBERS', seats)) do
    local room, key = string.match(seat, '^([^\t]*)\t(.*)$')
    local users = 'banter:room:' .. room .. ':users'
    local held = redis.call('HGET', users, key)
    if held then
      local owner, name = string.match(held, '^([^:]*):[^\n]*\n(.*)$')
      if owner == proc then
        redis.call('HDEL', users, key)
        redis.call('PUBLISH', 'banter:room:' .. room, 'l' .. proc .. '\t' .. name)
        left = left + 1
      end
    end
  end
  redis.call('DEL', seats)
  redis.call('ZREM', KEYS[1], proc)
end
return left
",
    )
}
