//! The syscall floor: what the kernel charges for the calls an echo round
//! trip cannot avoid, on loopback TCP with 64-byte messages, in ns per call.
//!
//! ```text
//! floor [--rounds N] [--csv PATH] [--peer-cpu N]
//! ```
//!
//! - `getppid`: an empty syscall (entry, exit and the CPU's mitigations).
//! - `send+recv pair`: `send` 64 B on one end, `recv` 64 B on the other.
//!   On loopback the sender's `send` also runs the receiver's TCP input
//!   (softirq in the sender's context), so the pair is the whole kernel cost
//!   of moving one message — one server read plus one server write.
//!   Each `recv` here leaves a pure ACK to send (no reply carries it).
//! - `ping-pong round trip`: 64 B each way; the replies carry the ACKs, as
//!   in an echo exchange. Half of it is one side's recv + send.
//! - `send 64 B` / `recv 64 B (queued)`: the two halves, each timed over a
//!   batch of 64 with the other half untimed.
//! - `epoll_wait` with 0 (timeout 0), 1 and 64 ready level-triggered
//!   sockets (data queued and never read, so every call reports them).
//! - `epoll_ctl MOD`: the one-shot re-arm (`EPOLLIN | EPOLLONESHOT`) of an
//!   idle socket.
//! - With `--peer-cpu N`: `ping-pong across cores`: the same exchange with
//!   the other end in a thread on CPU N, both blocking: this side's CPU per
//!   round trip, which adds what the syscall floor leaves out: waking a
//!   peer that sleeps on another core, and sleeping and being woken itself
//!   (one event per wake-up, as a server with few busy connections sees).
//!   And `ping-pong across cores, nobody sleeps`: both ends spin on
//!   `epoll_wait` with timeout 0, and only this side's send and recv are
//!   timed: the two calls' price when the other end of the socket lives on
//!   another core, without sleep or wake-up.
//!
//! Derived: the floor per round trip for an echo server, `ping-pong/2 +
//! epoll_wait(64)/64` (best amortisation) and `ping-pong/2 + epoll_wait(1)`
//! (one event per wake-up), and the round trips per CPU-second they allow. What no probe here includes: the
//! cost of waking a peer blocked on the other core (a real client is), and
//! the server's own sleep and wake-up in `epoll_wait` when it runs dry.
//!
//! Times are the probe thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`), so
//! time preempted by other processes on a shared machine is not counted;
//! run it on one core (`taskset -c 0`). The table shows the median of
//! `--rounds` trials with min–max.

use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::process::ExitCode;

use probes::{
    check, clock_overhead_ns, listener, recv_exact, send, write_csv, Args, CpuInstant, Pair, Spread,
};

const MSG: usize = 64;
/// Messages queued at once for the send-only and recv-only timings: small
/// enough that the receive buffer never fills and `send` never blocks.
const BATCH: usize = 64;

struct Row {
    key: &'static str,
    label: &'static str,
    spread: Spread,
}

fn main() -> ExitCode {
    let args = match Args::parse(7) {
        Ok(args) => args,
        Err(e) => {
            eprintln!("floor: {e}\nusage: floor [--rounds N] [--csv PATH] [--peer-cpu N]");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("floor: {e}");
            ExitCode::from(1)
        }
    }
}

/// Runs `trial` `rounds` times after one warm-up; each returns ns per call.
fn measure(rounds: usize, mut trial: impl FnMut() -> io::Result<f64>) -> io::Result<Spread> {
    trial()?;
    let mut values = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        values.push(trial()?);
    }
    Ok(Spread::of(&values))
}

fn per_call(start: CpuInstant, calls: usize) -> f64 {
    start.elapsed().as_nanos() as f64 / calls as f64
}

fn run(args: &Args) -> io::Result<()> {
    let rounds = args.rounds;
    let overhead = clock_overhead_ns();
    let listener = listener()?;
    let msg = [0x5au8; MSG];
    let mut buf = [0u8; 64 * 1024];
    let mut rows = Vec::new();

    rows.push(Row {
        key: "getppid",
        label: "getppid (empty syscall)",
        spread: measure(rounds, || {
            let n = 1_000_000;
            let start = CpuInstant::now();
            for _ in 0..n {
                // SAFETY: getppid takes no arguments and cannot fail; the raw
                // syscall avoids any caching in libc.
                std::hint::black_box(unsafe { libc::syscall(libc::SYS_getppid) });
            }
            Ok(per_call(start, n))
        })?,
    });

    let pair = Pair::new(&listener)?;
    let (a, b) = (pair.a.as_raw_fd(), pair.b.as_raw_fd());
    rows.push(Row {
        key: "pair",
        label: "send+recv pair (64 B loopback)",
        spread: measure(rounds, || {
            let n = 200_000;
            let start = CpuInstant::now();
            for _ in 0..n {
                send(a, &msg)?;
                recv_exact(b, &mut buf[..MSG])?;
            }
            Ok(per_call(start, n))
        })?,
    });

    // The echo exchange itself: each side's reply carries its ACK, so no
    // pure ACK segments; half of it is what one side pays per round trip.
    rows.push(Row {
        key: "pingpong",
        label: "ping-pong round trip (64 B each way)",
        spread: measure(rounds, || {
            let n = 100_000;
            let start = CpuInstant::now();
            for _ in 0..n {
                send(a, &msg)?;
                recv_exact(b, &mut buf[..MSG])?;
                send(b, &msg)?;
                recv_exact(a, &mut buf[..MSG])?;
            }
            Ok(per_call(start, n))
        })?,
    });

    rows.push(Row {
        key: "send",
        label: "send 64 B",
        spread: measure(rounds, || {
            let batches = 3_000;
            let mut ns = 0f64;
            for _ in 0..batches {
                let start = CpuInstant::now();
                for _ in 0..BATCH {
                    send(a, &msg)?;
                }
                ns += start.elapsed().as_nanos() as f64 - overhead;
                recv_exact(b, &mut buf[..BATCH * MSG])?;
            }
            Ok(ns / (batches * BATCH) as f64)
        })?,
    });

    rows.push(Row {
        key: "recv",
        label: "recv 64 B (data queued)",
        spread: measure(rounds, || {
            let batches = 3_000;
            let mut ns = 0f64;
            for _ in 0..batches {
                for _ in 0..BATCH {
                    send(a, &msg)?;
                }
                let start = CpuInstant::now();
                for _ in 0..BATCH {
                    recv_exact(b, &mut buf[..MSG])?;
                }
                ns += start.elapsed().as_nanos() as f64 - overhead;
            }
            Ok(ns / (batches * BATCH) as f64)
        })?,
    });

    // epoll_wait with nothing ready and a zero timeout: the call itself.
    let idle = Pair::new(&listener)?;
    let ep = Epoll::new()?;
    ep.add(idle.b.as_raw_fd(), libc::EPOLLIN as u32)?;
    rows.push(Row {
        key: "wait0",
        label: "epoll_wait: 0 ready (timeout 0)",
        spread: measure(rounds, || ep.time_wait(1_000_000, 0))?,
    });

    // One ready socket: data queued on `ready.b`, never read.
    let ready = Pair::new(&listener)?;
    send(ready.a.as_raw_fd(), &msg)?;
    let ep1 = Epoll::new()?;
    ep1.add(ready.b.as_raw_fd(), libc::EPOLLIN as u32)?;
    ep1.add(idle.b.as_raw_fd(), libc::EPOLLIN as u32)?;
    rows.push(Row {
        key: "wait1",
        label: "epoll_wait: 1 ready (LT)",
        spread: measure(rounds, || ep1.time_wait(1_000_000, 1))?,
    });

    let many: Vec<Pair> = (0..64)
        .map(|_| Pair::new(&listener))
        .collect::<io::Result<_>>()?;
    let ep64 = Epoll::new()?;
    for p in &many {
        send(p.a.as_raw_fd(), &msg)?;
        ep64.add(p.b.as_raw_fd(), libc::EPOLLIN as u32)?;
    }
    let wait64 = measure(rounds, || ep64.time_wait(200_000, 64))?;
    rows.push(Row {
        key: "wait64",
        label: "epoll_wait: 64 ready (LT)",
        spread: wait64,
    });
    rows.push(Row {
        key: "wait64_per_event",
        label: "epoll_wait 64 ready: per event",
        spread: scale(wait64, 1.0 / 64.0),
    });

    let ctl = Epoll::new()?;
    let rearm = (libc::EPOLLIN | libc::EPOLLONESHOT) as u32;
    ctl.add(idle.a.as_raw_fd(), rearm)?;
    rows.push(Row {
        key: "ctl_mod",
        label: "epoll_ctl MOD (one-shot re-arm)",
        spread: measure(rounds, || {
            let n = 1_000_000;
            let start = CpuInstant::now();
            for _ in 0..n {
                ctl.modify(idle.a.as_raw_fd(), rearm)?;
            }
            Ok(per_call(start, n))
        })?,
    });

    let peer_cpu = match args.rest.as_slice() {
        [] => None,
        [flag, n] if flag == "--peer-cpu" => Some(
            n.parse::<usize>()
                .map_err(|e| io::Error::other(format!("--peer-cpu: {e}")))?,
        ),
        other => return Err(io::Error::other(format!("unexpected arguments {other:?}"))),
    };
    if let Some(cpu) = peer_cpu {
        rows.push(Row {
            key: "pingpong_cross",
            label: "ping-pong across cores: this side, blocking",
            spread: measure(rounds, || cross_core_pingpong(&listener, cpu))?,
        });
        let overhead = clock_overhead_ns();
        rows.push(Row {
            key: "pingpong_cross_awake",
            label: "ping-pong across cores, nobody sleeps: this side's send + recv",
            spread: measure(rounds, || {
                awake_cross_core_pingpong(&listener, cpu, overhead)
            })?,
        });
    }

    let get = |key: &str| rows.iter().find(|r| r.key == key).map(|r| r.spread);
    let (pp, w1, w64) = (
        get("pingpong").expect("measured"),
        get("wait1").expect("measured"),
        get("wait64").expect("measured"),
    );
    // One side of a round trip: half the ping-pong (one recv, one send),
    // plus its share of an epoll_wait.
    let side = |wait: Spread, per: f64| Spread {
        median: pp.median / 2.0 + wait.median / per,
        min: pp.min / 2.0 + wait.min / per,
        max: pp.max / 2.0 + wait.max / per,
    };
    let floor64 = side(w64, 64.0);
    let floor1 = side(w1, 1.0);
    rows.push(Row {
        key: "floor_rt_64",
        label: "floor per round trip: ping-pong/2 + wait(64)/64",
        spread: floor64,
    });
    rows.push(Row {
        key: "floor_rt_1",
        label: "floor per round trip: ping-pong/2 + wait(1)",
        spread: floor1,
    });

    println!(
        "Syscall floor, loopback TCP, {MSG}-byte messages: ns per call, median of {rounds} trials (min-max)."
    );
    println!();
    println!("| operation | ns | min-max |");
    println!("|---|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {:.0} | {:.0}-{:.0} |",
            r.label, r.spread.median, r.spread.min, r.spread.max
        );
    }
    println!();
    println!(
        "Round trips per CPU-second at the floor: {:.0} (64 events per wake-up), {:.0} (1 per wake-up).",
        1e9 / floor64.median,
        1e9 / floor1.median
    );
    if let Some(path) = &args.csv {
        let csv: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{},{},{:.1},{:.1},{:.1}",
                    r.key, r.label, r.spread.median, r.spread.min, r.spread.max
                )
            })
            .collect();
        write_csv(path, "key,operation,ns_median,ns_min,ns_max", &csv)?;
    }
    Ok(())
}

/// One side's CPU per round trip of a blocking ping-pong whose other end is
/// a thread on `cpu`: each `send` wakes the sleeping peer on the other
/// core, each `recv` sleeps until the reply comes.
fn cross_core_pingpong(listener: &std::net::TcpListener, cpu: usize) -> io::Result<f64> {
    let pair = Pair::new(listener)?;
    let (a, b) = (pair.a, pair.b);
    let n = 50_000;
    let peer = std::thread::spawn(move || -> io::Result<()> {
        pin_to(cpu)?;
        let fd = b.as_raw_fd();
        let mut buf = [0u8; MSG];
        for _ in 0..n {
            recv_exact(fd, &mut buf)?;
            send(fd, &buf)?;
        }
        Ok(())
    });
    let fd = a.as_raw_fd();
    let msg = [0x5au8; MSG];
    let mut buf = [0u8; MSG];
    let start = CpuInstant::now();
    for _ in 0..n {
        send(fd, &msg)?;
        recv_exact(fd, &mut buf)?;
    }
    let ns = per_call(start, n);
    peer.join()
        .map_err(|_| io::Error::other("the peer thread panicked"))??;
    Ok(ns)
}

/// One side's send + recv per round trip of a ping-pong whose other end
/// is a thread on `cpu`, with both ends polling their own epoll set
/// (`epoll_wait` with timeout 0, which takes no socket lock) so that
/// neither ever sleeps: the price of the same two calls when the socket's
/// other end lives on another core (its cache lines move, the input runs
/// against a socket last touched remotely), without any sleep or wake-up.
/// Only the send and the recv are timed (each bracketed by the thread CPU
/// clock, its own cost `overhead` taken off); the polls are not.
fn awake_cross_core_pingpong(
    listener: &std::net::TcpListener,
    cpu: usize,
    overhead: f64,
) -> io::Result<f64> {
    let pair = Pair::new(listener)?;
    let (a, b) = (pair.a, pair.b);
    let n = 50_000;
    let peer = std::thread::spawn(move || -> io::Result<()> {
        pin_to(cpu)?;
        let fd = b.as_raw_fd();
        let poll = Epoll::new()?;
        poll.add(fd, libc::EPOLLIN as u32)?;
        let mut buf = [0u8; MSG];
        for _ in 0..n {
            while !poll.ready()? {}
            recv_exact(fd, &mut buf)?;
            send(fd, &buf)?;
        }
        Ok(())
    });
    let fd = a.as_raw_fd();
    let poll = Epoll::new()?;
    poll.add(fd, libc::EPOLLIN as u32)?;
    let msg = [0x5au8; MSG];
    let mut buf = [0u8; MSG];
    let mut timed = 0.0;
    for _ in 0..n {
        let start = CpuInstant::now();
        send(fd, &msg)?;
        timed += start.elapsed().as_nanos() as f64 - overhead;
        while !poll.ready()? {}
        let start = CpuInstant::now();
        recv_exact(fd, &mut buf)?;
        timed += start.elapsed().as_nanos() as f64 - overhead;
    }
    peer.join()
        .map_err(|_| io::Error::other("the peer thread panicked"))??;
    Ok(timed / n as f64)
}

/// Moves the calling thread to `cpu`.
fn pin_to(cpu: usize) -> io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid cpu_set_t and `cpu` is checked by the kernel.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 is the calling thread; `set` lives across the call.
    check(unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) })?;
    Ok(())
}

fn scale(s: Spread, by: f64) -> Spread {
    Spread {
        median: s.median * by,
        min: s.min * by,
        max: s.max * by,
    }
}

/// An epoll instance, closed on drop.
struct Epoll {
    fd: RawFd,
}

impl Epoll {
    fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes a flag and returns a new descriptor.
        let fd = check(unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) })?;
        Ok(Epoll { fd })
    }

    fn ctl(&self, op: libc::c_int, fd: RawFd, events: u32) -> io::Result<()> {
        let mut event = libc::epoll_event {
            events,
            u64: fd as u64,
        };
        // SAFETY: `event` lives across the call; the kernel copies it.
        check(unsafe { libc::epoll_ctl(self.fd, op, fd, &mut event) })?;
        Ok(())
    }

    fn add(&self, fd: RawFd, events: u32) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_ADD, fd, events)
    }

    fn modify(&self, fd: RawFd, events: u32) -> io::Result<()> {
        self.ctl(libc::EPOLL_CTL_MOD, fd, events)
    }

    /// Whether anything registered is ready now (`epoll_wait`, timeout 0).
    fn ready(&self) -> io::Result<bool> {
        let mut event = [libc::epoll_event { events: 0, u64: 0 }; 1];
        // SAFETY: `event` holds the 1 entry passed as the max.
        let got = check(unsafe { libc::epoll_wait(self.fd, event.as_mut_ptr(), 1, 0) })?;
        Ok(got > 0)
    }

    /// ns per `epoll_wait(timeout 0)` over `n` calls, each expected to
    /// report `expect` events.
    fn time_wait(&self, n: usize, expect: usize) -> io::Result<f64> {
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
        let start = CpuInstant::now();
        for _ in 0..n {
            // SAFETY: `events` holds 64 entries, the max passed.
            let got = check(unsafe { libc::epoll_wait(self.fd, events.as_mut_ptr(), 64, 0) })?;
            if got as usize != expect {
                return Err(io::Error::other(format!(
                    "epoll_wait reported {got} events, expected {expect}"
                )));
            }
        }
        Ok(per_call(start, n))
    }
}

impl Drop for Epoll {
    fn drop(&mut self) {
        // SAFETY: we own the descriptor and close it once.
        unsafe { libc::close(self.fd) };
    }
}
