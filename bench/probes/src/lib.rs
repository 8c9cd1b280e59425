//! What both probes share: loopback sockets, a timing loop, and the
//! median/min/max of repeated trials. Every raw call is checked where it
//! happens; a probe that cannot set up its sockets stops with the error.

use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

/// `-1` becomes the `errno` error, in one place.
pub fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Same, for calls that return `ssize_t`.
pub fn check_size(ret: libc::ssize_t) -> io::Result<usize> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret as usize)
    }
}

/// A connected loopback TCP pair, both ends with `TCP_NODELAY` (as tenk's).
pub struct Pair {
    pub a: TcpStream,
    pub b: TcpStream,
}

impl Pair {
    pub fn new(listener: &TcpListener) -> io::Result<Pair> {
        let a = TcpStream::connect(listener.local_addr()?)?;
        let (b, _) = listener.accept()?;
        a.set_nodelay(true)?;
        b.set_nodelay(true)?;
        Ok(Pair { a, b })
    }
}

/// A loopback listener on a free port with the largest backlog the kernel
/// allows (`net.core.somaxconn` caps it).
pub fn listener() -> io::Result<TcpListener> {
    // std's default backlog is 128; the c10k probe leaves thousands of
    // connections unaccepted in one queue, so ask for more.
    let listener = TcpListener::bind("127.0.0.1:0")?;
    // SAFETY: listen(2) on a socket we own, with a plain integer argument.
    check(unsafe { libc::listen(listener.as_raw_fd(), 65_535) })?;
    Ok(listener)
}

/// `send(2)` of all of `buf` in one call (loopback takes small writes whole).
pub fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for `buf.len()` bytes for the whole call.
    check_size(unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) })
}

/// `recv(2)` into `buf`.
pub fn recv(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid and writable for `buf.len()` bytes.
    check_size(unsafe { libc::recv(fd, buf.as_mut_ptr().cast(), buf.len(), 0) })
}

/// Receives exactly `buf.len()` bytes (blocking socket).
pub fn recv_exact(fd: RawFd, buf: &mut [u8]) -> io::Result<()> {
    let mut got = 0;
    while got < buf.len() {
        let n = recv(fd, &mut buf[got..])?;
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        got += n;
    }
    Ok(())
}

/// This thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`): what the probes
/// time with, so that time spent preempted by other processes on a shared
/// machine does not count as the cost of a call.
#[derive(Clone, Copy, Debug)]
pub struct CpuInstant(Duration);

impl CpuInstant {
    pub fn now() -> CpuInstant {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid timespec for the kernel to fill; the
        // thread CPU clock always exists, so the call cannot fail.
        unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        CpuInstant(Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
    }

    /// CPU time this thread used since `self`.
    pub fn elapsed(&self) -> Duration {
        CpuInstant::now().0.saturating_sub(self.0)
    }
}

/// The cost of one `CpuInstant::now()` pair, to subtract from timings that
/// bracket a single call.
pub fn clock_overhead_ns() -> f64 {
    let n = 100_000;
    let start = CpuInstant::now();
    for _ in 0..n {
        std::hint::black_box(CpuInstant::now());
    }
    start.elapsed().as_nanos() as f64 / n as f64
}

/// Median, minimum and maximum of repeated trials.
#[derive(Clone, Copy, Debug)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(values: &[f64]) -> Spread {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let median = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Spread {
            median,
            min: v[0],
            max: v[n - 1],
        }
    }
}

/// `--rounds N` and `--csv PATH`, and the rest of the arguments.
pub struct Args {
    pub rounds: usize,
    pub csv: Option<String>,
    pub rest: Vec<String>,
}

impl Args {
    pub fn parse(default_rounds: usize) -> Result<Args, String> {
        let mut out = Args {
            rounds: default_rounds,
            csv: None,
            rest: Vec::new(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--rounds" => {
                    out.rounds = args
                        .next()
                        .and_then(|v| v.parse().ok())
                        .filter(|&n: &usize| n > 0)
                        .ok_or("--rounds needs a positive number")?;
                }
                "--csv" => out.csv = Some(args.next().ok_or("--csv needs a path")?),
                _ => out.rest.push(arg),
            }
        }
        Ok(out)
    }
}

/// Writes `header` and `rows` as CSV to `path` (our fields never hold commas).
pub fn write_csv(path: &str, header: &str, rows: &[String]) -> io::Result<()> {
    let mut text = String::with_capacity(64 * (rows.len() + 1));
    text.push_str(header);
    text.push('\n');
    for row in rows {
        text.push_str(row);
        text.push('\n');
    }
    std::fs::write(path, text)
}
