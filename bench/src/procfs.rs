//! Reading a process's memory and CPU time from /proc, and raising our own
//! open-file limit.

use std::time::Duration;

/// `VmRSS` and `VmHWM` (peak RSS) of `pid`, in KiB.
pub fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        line.split_whitespace().nth(1)?.parse().ok()
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// User + system CPU time consumed by `pid` so far.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let (user, system) = user_system_ticks(pid)?;
    Some(ticks(user + system))
}

/// User CPU time consumed by `pid` so far.
pub fn user_time(pid: u32) -> Option<Duration> {
    Some(ticks(user_system_ticks(pid)?.0))
}

/// User CPU time (`user` + `nice`) of the whole machine so far, all CPUs.
pub fn machine_user_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let mut fields = line.split_whitespace().skip(1);
    let user: u64 = fields.next()?.parse().ok()?;
    let nice: u64 = fields.next()?.parse().ok()?;
    Some(ticks(user + nice))
}

/// Steal time of the whole machine so far, all CPUs: time the hypervisor
/// ran something else while this machine's CPUs wanted to run. A run
/// with much of it measured the host as much as the server.
pub fn machine_steal_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    // user nice system idle iowait irq softirq steal
    let steal: u64 = line.split_whitespace().nth(8)?.parse().ok()?;
    Some(ticks(steal))
}

/// `utime` and `stime` of `pid`, in clock ticks.
fn user_system_ticks(pid: u32) -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some((fields.get(11)?.parse().ok()?, fields.get(12)?.parse().ok()?))
}

fn ticks(n: u64) -> Duration {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    Duration::from_millis(n * 1000 / hz)
}

/// This process's CPU time.
pub fn own_cpu_time() -> Duration {
    cpu_time(std::process::id()).unwrap_or_default()
}

/// Raises the soft open-file limit to the hard limit: one descriptor per
/// simulated user.
pub fn raise_nofile_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain syscalls on a valid, owned struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
    limit.rlim_cur
}

/// `read` summed over several processes: `None` if there are none, or any
/// of them cannot be read.
pub fn sum(pids: &[u32], read: impl Fn(u32) -> Option<(u64, u64)>) -> Option<(u64, u64)> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().try_fold((0, 0), |(a, b), &pid| {
        read(pid).map(|(x, y)| (a + x, b + y))
    })
}

/// A time summed over several processes, as [`sum`].
pub fn sum_time(pids: &[u32], read: impl Fn(u32) -> Option<Duration>) -> Option<Duration> {
    if pids.is_empty() {
        return None;
    }
    pids.iter()
        .try_fold(Duration::ZERO, |total, &pid| read(pid).map(|t| total + t))
}
