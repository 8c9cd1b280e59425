//! The C10K point, measured: the cost of one wake-up with poll(2) and with
//! epoll when N connections are idle and one is active.
//!
//! ```text
//! c10k [--rounds N] [--csv PATH] [IDLE ...]      (default IDLE: 10 100 1000 10000)
//! ```
//!
//! For each N: N idle loopback TCP connections plus one active one. Each
//! wake-up: one byte is sent to the active connection (untimed), then the
//! process waits for readiness (timed) and reads the byte (untimed). The byte
//! is queued before the wait, so the wait never sleeps: what is timed is the
//! call itself plus, for poll, the user-space scan of the returned array to
//! find the ready entry — what a server has to do to learn which connection
//! woke it.
//!
//! - `poll (active last)`: the active descriptor at the end of the array.
//!   The kernel calls every descriptor's `->poll` and, until it finds one
//!   ready, also queues a wait entry on each one's wait queue (and removes
//!   them all afterwards): poll's worst case, and its average with a random
//!   position is about half-way between this and the next row.
//! - `poll (active first)`: the best case: once one descriptor is ready the
//!   kernel stops registering wait entries but still polls every descriptor.
//! - `epoll`: all N+1 registered once (level-triggered); `epoll_wait` looks
//!   only at the ready list.
//!
//! The idle connections are client sockets whose connection sits in a
//! listener's accept queue, never accepted: established TCP sockets with
//! nothing to read, one descriptor each, so 10,000 of them fit under this
//! machine's 20,000-descriptor limit.
//!
//! Times are the probe thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`, its
//! own cost subtracted), so time preempted by other processes on a shared
//! machine is not counted.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::process::ExitCode;

use probes::{
    check, clock_overhead_ns, listener, recv_exact, send, write_csv, Args, CpuInstant, Pair, Spread,
};

/// Connections left in one listener's accept queue (below somaxconn 4096).
const PER_LISTENER: usize = 4000;

const MECHANISMS: [&str; 3] = ["poll (active last)", "poll (active first)", "epoll"];

fn main() -> ExitCode {
    let args = match Args::parse(5) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("c10k: {e}\nusage: c10k [--rounds N] [--csv PATH] [IDLE ...]");
            return ExitCode::from(2);
        }
    };
    let idle: Result<Vec<usize>, _> = args.rest.iter().map(|s| s.parse::<usize>()).collect();
    let mut idle = match idle {
        Ok(v) => v,
        Err(e) => {
            eprintln!("c10k: idle counts must be numbers: {e}");
            return ExitCode::from(2);
        }
    };
    if idle.is_empty() {
        idle = vec![10, 100, 1000, 10_000];
    }
    match run(&args, &idle) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("c10k: {e}");
            ExitCode::from(1)
        }
    }
}

struct Setup {
    _listeners: Vec<TcpListener>,
    _own: TcpListener,
    idle: Vec<TcpStream>,
    active: Pair,
}

impl Setup {
    fn new(n: usize) -> io::Result<Setup> {
        let listeners: Vec<TcpListener> = (0..n.div_ceil(PER_LISTENER).max(1))
            .map(|_| listener())
            .collect::<io::Result<_>>()?;
        let mut idle = Vec::with_capacity(n);
        for i in 0..n {
            let l = &listeners[i / PER_LISTENER];
            idle.push(TcpStream::connect(l.local_addr()?)?);
        }
        // Its own listener: accept() on a shared one would hand back an idle
        // connection's server end, queued first.
        let own = listener()?;
        let active = Pair::new(&own)?;
        Ok(Setup {
            _listeners: listeners,
            _own: own,
            idle,
            active,
        })
    }
}

fn run(args: &Args, idle_counts: &[usize]) -> io::Result<()> {
    let overhead = clock_overhead_ns();
    let mut csv = Vec::new();
    let mut table = Vec::new();
    for &n in idle_counts {
        let setup = Setup::new(n)?;
        let mut spreads = Vec::new();
        for (m, name) in MECHANISMS.iter().enumerate() {
            let trial = || -> io::Result<f64> {
                let iterations = (2_000_000 / (n + 1)).clamp(50, 200_000);
                let ns = match m {
                    0 => time_poll(&setup, iterations, false)?,
                    1 => time_poll(&setup, iterations, true)?,
                    _ => time_epoll(&setup, iterations)?,
                };
                Ok((ns / iterations as f64 - overhead).max(0.0))
            };
            trial()?;
            let values: Vec<f64> = (0..args.rounds)
                .map(|_| trial())
                .collect::<io::Result<_>>()?;
            let s = Spread::of(&values);
            csv.push(format!(
                "{n},{name},{:.1},{:.1},{:.1}",
                s.median, s.min, s.max
            ));
            spreads.push(s);
        }
        table.push((n, spreads));
    }

    println!(
        "Cost of one wake-up, N idle connections + 1 active: ns, median of {} trials (min-max).",
        args.rounds
    );
    println!();
    println!(
        "| idle | {} | {} | {} | poll (active last) / epoll |",
        MECHANISMS[0], MECHANISMS[1], MECHANISMS[2]
    );
    println!("|---:|---:|---:|---:|---:|");
    let cell = |s: &Spread| format!("{:.0} ({:.0}-{:.0})", s.median, s.min, s.max);
    for (n, s) in &table {
        println!(
            "| {} | {} | {} | {} | {:.0}x |",
            n,
            cell(&s[0]),
            cell(&s[1]),
            cell(&s[2]),
            s[0].median / s[2].median.max(1.0)
        );
    }
    if let Some(path) = &args.csv {
        write_csv(path, "idle,mechanism,ns_median,ns_min,ns_max", &csv)?;
    }
    Ok(())
}

/// Total ns spent waiting and finding the ready entry over `iterations`.
fn time_poll(setup: &Setup, iterations: usize, active_first: bool) -> io::Result<f64> {
    let active = setup.active.b.as_raw_fd();
    let entry = |fd: RawFd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    let mut fds: Vec<libc::pollfd> = Vec::with_capacity(setup.idle.len() + 1);
    if active_first {
        fds.push(entry(active));
    }
    fds.extend(setup.idle.iter().map(|s| entry(s.as_raw_fd())));
    if !active_first {
        fds.push(entry(active));
    }
    let sender = setup.active.a.as_raw_fd();
    let mut byte = [0u8; 1];
    let mut total = 0u128;
    for _ in 0..iterations {
        send(sender, b"x")?;
        let start = CpuInstant::now();
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd entries.
        let ready = check(unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) })?;
        let found = fds.iter().position(|p| p.revents != 0);
        total += start.elapsed().as_nanos();
        match found {
            Some(i) if ready == 1 && fds[i].fd == active => {}
            _ => return Err(io::Error::other("poll woke for an idle connection")),
        }
        recv_exact(active, &mut byte)?;
    }
    Ok(total as f64)
}

fn time_epoll(setup: &Setup, iterations: usize) -> io::Result<f64> {
    // SAFETY: epoll_create1 takes a flag and returns a new descriptor.
    let ep = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
    let result = (|| {
        let active = setup.active.b.as_raw_fd();
        let fds = setup.idle.iter().map(|s| s.as_raw_fd()).chain([active]);
        for fd in fds {
            let mut event = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: fd as u64,
            };
            // SAFETY: `event` lives across the call; the kernel copies it.
            check(unsafe { libc::epoll_ctl(ep, libc::EPOLL_CTL_ADD, fd, &mut event) })?;
        }
        let sender = setup.active.a.as_raw_fd();
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
        let mut byte = [0u8; 1];
        let mut total = 0u128;
        for _ in 0..iterations {
            send(sender, b"x")?;
            let start = CpuInstant::now();
            // SAFETY: `events` has room for the 64 entries passed as max.
            let ready = check(unsafe { libc::epoll_wait(ep, events.as_mut_ptr(), 64, -1) })?;
            total += start.elapsed().as_nanos();
            if ready != 1 || events[0].u64 != active as u64 {
                return Err(io::Error::other("epoll woke for an idle connection"));
            }
            recv_exact(active, &mut byte)?;
        }
        Ok(total as f64)
    })();
    // SAFETY: `ep` is ours and closed once.
    unsafe { libc::close(ep) };
    result
}
