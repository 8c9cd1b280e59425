//! An echo load client that shares no code with `tenk load`: the second
//! opinion on every echo figure (bench/echo.sh runs both against each server).
//!
//! ```text
//! echo-client HOST:PORT [-c N] [--pipeline K] [--size BYTES] [-d SECS] [--warmup SECS]
//! ```
//!
//! One thread, one level-triggered epoll set (raw libc), N connections, each
//! a closed loop with K messages in flight: a reply completed is a message
//! sent. Message `seq` of connection `id` is a pure function of the two
//! (`byte` below): its first 8 bytes are `seq`, the rest depend on `id`,
//! `seq` and the position, so a lost, repeated, reordered or crossed message
//! fails the check. Every byte received is compared with the byte expected
//! at that point of the stream; the first difference ends the run (exit 1).
//! A connection the server closes or resets counts as an error and is
//! dropped.
//!
//! Level-triggered and one `recv` per readiness on purpose: nothing to get
//! wrong about draining (epoll(7)'s edge-triggered pitfalls), at the cost of
//! a `recv` that could have been saved when more data arrives later.
//!
//! Prints one JSON object on stdout, over the measured window only (after
//! `--warmup`): requests (replies verified), requests_per_s, the client's own
//! CPU (getrusage, utime + stime), its wake-ups and events per wake-up (its
//! pacing), its recv/send calls, errors, and the connections that completed
//! nothing in the window (stalled).

use std::io;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use probes::{check, check_size};

const USAGE: &str =
    "usage: echo-client HOST:PORT [-c N] [--pipeline K] [--size BYTES] [-d SECS] [--warmup SECS]";

struct Options {
    target: String,
    connections: usize,
    pipeline: usize,
    size: usize,
    duration: Duration,
    warmup: Duration,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        target: String::new(),
        connections: 100,
        pipeline: 1,
        size: 64,
        duration: Duration::from_secs(10),
        warmup: Duration::from_secs(1),
    };
    let mut args = std::env::args().skip(1);
    let positive = |v: Option<String>, name: &str| -> Result<usize, String> {
        v.and_then(|v| v.parse().ok())
            .filter(|&n: &usize| n > 0)
            .ok_or(format!("{name} needs a positive number"))
    };
    let secs = |v: Option<String>, name: &str| -> Result<Duration, String> {
        let v = v.ok_or(format!("{name} needs seconds"))?;
        let v = v.strip_suffix('s').unwrap_or(&v);
        v.parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(Duration::from_secs_f64)
            .ok_or(format!("{name} needs seconds, e.g. 3 or 2.5s"))
    };
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-c" => o.connections = positive(args.next(), "-c")?,
            "--pipeline" => o.pipeline = positive(args.next(), "--pipeline")?,
            "--size" => o.size = positive(args.next(), "--size")?,
            "-d" => o.duration = secs(args.next(), "-d")?,
            "--warmup" => o.warmup = secs(args.next(), "--warmup")?,
            _ if arg.starts_with('-') => return Err(format!("unknown option {arg}")),
            _ if o.target.is_empty() => o.target = arg,
            _ => return Err(format!("unexpected argument {arg}")),
        }
    }
    if o.target.is_empty() {
        return Err("HOST:PORT is required".into());
    }
    if o.duration.is_zero() {
        return Err("-d must be more than 0".into());
    }
    Ok(o)
}

fn main() -> ExitCode {
    let options = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("echo-client: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("echo-client: {e}");
            ExitCode::from(1)
        }
    }
}

/// Byte `j` of message `seq` on connection `id`.
fn byte(id: u32, seq: u64, j: usize) -> u8 {
    if j < 8 {
        (seq >> (8 * j)) as u8
    } else {
        (id as usize).wrapping_mul(131).wrapping_add(j * 7) as u8 ^ seq as u8
    }
}

struct Conn {
    stream: TcpStream,
    id: u32,
    /// Messages queued for sending so far (the next one's seq).
    sent: u64,
    /// Messages echoed whole and verified (the one being received's seq).
    received: u64,
    /// Bytes of message `received` verified so far.
    offset: usize,
    /// Bytes not yet taken by send(2).
    tx: Vec<u8>,
    /// EPOLLOUT is in the interest set (only while `tx` waits for room).
    want_out: bool,
}

impl Conn {
    fn queue(&mut self, size: usize) {
        for j in 0..size {
            self.tx.push(byte(self.id, self.sent, j));
        }
        self.sent += 1;
    }
}

#[derive(Default, Clone, Copy)]
struct Counters {
    replies: u64,
    wakeups: u64,
    events: u64,
    recvs: u64,
    sends: u64,
    errors: u64,
}

fn cpu_seconds() -> f64 {
    // SAFETY: an all-zero rusage is a valid value for the kernel to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid rusage to fill; RUSAGE_SELF always exists.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// 10,000 connections need more descriptors than the usual soft limit.
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for the kernel to fill, then to read.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn epoll_ctl(ep: RawFd, op: libc::c_int, fd: RawFd, events: u32, key: usize) -> io::Result<()> {
    let mut event = libc::epoll_event {
        events,
        u64: key as u64,
    };
    // SAFETY: `event` lives across the call; the kernel copies it.
    check(unsafe { libc::epoll_ctl(ep, op, fd, &mut event) }).map(drop)
}

/// What one readiness event did to a connection.
enum Outcome {
    Open,
    /// Closed or reset by the server: counted as an error, dropped.
    Lost,
}

fn run(o: &Options) -> io::Result<()> {
    raise_fd_limit();
    let addr = o
        .target
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::other(format!("{} resolves to nothing", o.target)))?;
    // SAFETY: epoll_create1 takes a flag and returns a new descriptor.
    let ep = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    let mut conns: Vec<Option<Conn>> = Vec::with_capacity(o.connections);
    for i in 0..o.connections {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_nonblocking(true)?;
        epoll_ctl(
            ep,
            libc::EPOLL_CTL_ADD,
            stream.as_raw_fd(),
            libc::EPOLLIN as u32,
            i,
        )?;
        conns.push(Some(Conn {
            stream,
            id: i as u32,
            sent: 0,
            received: 0,
            offset: 0,
            tx: Vec::with_capacity(o.size * o.pipeline),
            want_out: false,
        }));
    }
    let established = conns.len();

    let mut c = Counters::default();
    for (i, slot) in conns.iter_mut().enumerate() {
        let conn = slot.as_mut().expect("every connection is open here");
        for _ in 0..o.pipeline {
            conn.queue(o.size);
        }
        if let Outcome::Lost = flush(ep, i, conn, &mut c)? {
            *slot = None;
            c.errors += 1;
        }
    }

    let mut rx = vec![0u8; 64 * 1024];
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let start = Instant::now();
    let window_start = start + o.warmup;
    let end = window_start + o.duration;
    let mut at_window: Option<(Counters, f64, Instant, Vec<u64>)> = None;
    loop {
        let now = Instant::now();
        if at_window.is_none() && now >= window_start {
            let progress = conns
                .iter()
                .map(|c| c.as_ref().map_or(0, |c| c.received))
                .collect();
            at_window = Some((c, cpu_seconds(), now, progress));
        }
        if now >= end {
            break;
        }
        // A bounded wait, so that the end comes on time even if every
        // connection stalls.
        let timeout = (end - now).min(Duration::from_millis(100)).as_millis() as libc::c_int;
        // SAFETY: `events` has room for the `events.len()` entries passed as max.
        let ready = unsafe {
            libc::epoll_wait(
                ep,
                events.as_mut_ptr(),
                events.len() as libc::c_int,
                timeout.max(1),
            )
        };
        if ready == -1 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        c.wakeups += 1;
        c.events += ready as u64;
        for ev in &events[..ready as usize] {
            let (flags, i) = (ev.events, ev.u64 as usize);
            let Some(conn) = conns[i].as_mut() else {
                continue;
            };
            let mut outcome = Outcome::Open;
            if flags & (libc::EPOLLIN | libc::EPOLLERR | libc::EPOLLHUP) as u32 != 0 {
                outcome = receive(conn, &mut rx, o.size, &mut c)?;
            }
            if let Outcome::Open = outcome {
                outcome = flush(ep, i, conn, &mut c)?;
            }
            if let Outcome::Lost = outcome {
                conns[i] = None;
                c.errors += 1;
            }
        }
    }
    let cpu_end = cpu_seconds();
    let t_end = Instant::now();
    let (c0, cpu0, t0, progress) = at_window.expect("the window starts before it ends");
    let stalled = conns
        .iter()
        .zip(&progress)
        .filter(|(c, &before)| c.as_ref().is_some_and(|c| c.received == before))
        .count();
    let secs = t_end.duration_since(t0).as_secs_f64();
    let requests = c.replies - c0.replies;
    let cpu = cpu_end - cpu0;
    let wakeups = c.wakeups - c0.wakeups;
    let per_req = |v: f64| {
        if requests > 0 {
            v / requests as f64
        } else {
            0.0
        }
    };
    println!(
        "{{\"client\": \"echo-client\", \"connections\": {}, \"connections_established\": {}, \
         \"pipeline\": {}, \"size\": {}, \"duration_s\": {:.4}, \"requests\": {}, \
         \"requests_per_s\": {:.1}, \"errors_total\": {}, \"stalled_connections\": {}, \
         \"cpu_s\": {:.4}, \"cpu_us_per_request\": {:.3}, \"wakeups\": {}, \
         \"events_per_wakeup\": {:.2}, \"recv_per_request\": {:.3}, \"send_per_request\": {:.3}}}",
        o.connections,
        established,
        o.pipeline,
        o.size,
        secs,
        requests,
        requests as f64 / secs,
        c.errors,
        stalled,
        cpu,
        per_req(cpu * 1e6),
        wakeups,
        if wakeups > 0 {
            (c.events - c0.events) as f64 / wakeups as f64
        } else {
            0.0
        },
        per_req((c.recvs - c0.recvs) as f64),
        per_req((c.sends - c0.sends) as f64),
    );
    // SAFETY: `ep` is ours and closed once; the connections close on drop.
    unsafe { libc::close(ep) };
    Ok(())
}

/// One recv(2); every byte checked; a message per reply completed.
fn receive(conn: &mut Conn, rx: &mut [u8], size: usize, c: &mut Counters) -> io::Result<Outcome> {
    let fd = conn.stream.as_raw_fd();
    c.recvs += 1;
    // SAFETY: `rx` is valid and writable for `rx.len()` bytes.
    let n = match check_size(unsafe { libc::recv(fd, rx.as_mut_ptr().cast(), rx.len(), 0) }) {
        Ok(0) => return Ok(Outcome::Lost),
        Ok(n) => n,
        Err(e)
            if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted =>
        {
            return Ok(Outcome::Open)
        }
        Err(_) => return Ok(Outcome::Lost),
    };
    for &got in &rx[..n] {
        if conn.received >= conn.sent {
            return Err(io::Error::other(format!(
                "connection {}: a byte beyond the {} messages sent",
                conn.id, conn.sent
            )));
        }
        let want = byte(conn.id, conn.received, conn.offset);
        if got != want {
            return Err(io::Error::other(format!(
                "connection {}: message {} byte {}: expected {want:#04x}, got {got:#04x}",
                conn.id, conn.received, conn.offset
            )));
        }
        conn.offset += 1;
        if conn.offset == size {
            conn.offset = 0;
            conn.received += 1;
            c.replies += 1;
            conn.queue(size);
        }
    }
    Ok(Outcome::Open)
}

/// Sends what is queued; asks for EPOLLOUT only while something is left.
fn flush(ep: RawFd, key: usize, conn: &mut Conn, c: &mut Counters) -> io::Result<Outcome> {
    let fd = conn.stream.as_raw_fd();
    while !conn.tx.is_empty() {
        c.sends += 1;
        // SAFETY: `conn.tx` is valid for `conn.tx.len()` bytes for the whole call.
        let sent = check_size(unsafe {
            libc::send(
                fd,
                conn.tx.as_ptr().cast(),
                conn.tx.len(),
                libc::MSG_NOSIGNAL,
            )
        });
        match sent {
            Ok(n) => drop(conn.tx.drain(..n)),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(_) => return Ok(Outcome::Lost),
        }
    }
    let want_out = !conn.tx.is_empty();
    if want_out != conn.want_out {
        let events = libc::EPOLLIN as u32 | if want_out { libc::EPOLLOUT as u32 } else { 0 };
        epoll_ctl(ep, libc::EPOLL_CTL_MOD, fd, events, key)?;
        conn.want_out = want_out;
    }
    Ok(Outcome::Open)
}

#[cfg(test)]
mod tests {
    use super::byte;

    /// A message lost, repeated or crossed with another connection's must
    /// not look like the one expected.
    #[test]
    fn messages_differ_by_seq_and_by_connection() {
        let msg = |id, seq| (0..64).map(|j| byte(id, seq, j)).collect::<Vec<u8>>();
        assert_ne!(msg(0, 0), msg(0, 1));
        assert_ne!(msg(0, 5), msg(1, 5));
        assert_ne!(msg(3, 256), msg(3, 0), "seq is not taken modulo 256");
    }
}
