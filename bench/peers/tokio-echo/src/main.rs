//! The tokio echo server that `tenk serve echo` is compared with.
//!
//! ```text
//! tokio-echo [--bind ADDR] [--port N] [--runtime current|multi] [--workers N]
//! ```
//!
//! The plain tokio echo everyone writes: a task per connection, a 4 KiB
//! buffer, `read` then `write_all`. It matches what tenk does where that
//! changes the cost: `TCP_NODELAY` on accepted sockets and a 4096 backlog.
//! The banner line (`tokio-echo listening on ADDR (...)`) goes to stdout
//! as soon as the listener is bound, so a script that asked for port 0 can
//! read the port. SIGINT or SIGTERM prints a one-line summary and exits 0.

use std::io::{self, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::signal::unix::{signal, SignalKind};

/// Larger than any burst the comparisons send (16 × 64 bytes in flight).
const BUFFER: usize = 4096;
/// The same `listen(2)` backlog as `tenk serve`.
const BACKLOG: u32 = 4096;

struct Options {
    addr: SocketAddr,
    multi: bool,
    workers: Option<usize>,
}

fn usage() -> ExitCode {
    eprintln!("usage: tokio-echo [--bind ADDR] [--port N] [--runtime current|multi] [--workers N]");
    ExitCode::from(2)
}

fn parse_args() -> Result<Options, String> {
    let mut bind: IpAddr = "127.0.0.1".parse().expect("a valid address");
    let mut port: u16 = 0;
    let mut multi = false;
    let mut workers = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--bind" => bind = value()?.parse().map_err(|e| format!("--bind: {e}"))?,
            "--port" => port = value()?.parse().map_err(|e| format!("--port: {e}"))?,
            "--runtime" => {
                multi = match value()?.as_str() {
                    "current" | "current_thread" => false,
                    "multi" | "multi_thread" => true,
                    other => return Err(format!("--runtime: unknown runtime {other:?}")),
                }
            }
            "--workers" => workers = Some(value()?.parse().map_err(|e| format!("--workers: {e}"))?),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Options {
        addr: SocketAddr::new(bind, port),
        multi,
        workers,
    })
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("tokio-echo: {e}");
            return usage();
        }
    };
    let mut builder = if options.multi {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if let Some(n) = options.workers {
            b.worker_threads(n);
        }
        b
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tokio-echo: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokio-echo: {e}");
            ExitCode::from(1)
        }
    }
}

fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

async fn run(options: Options) -> io::Result<()> {
    let started = Instant::now();
    let listener = bind(options.addr)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {}: {e}", options.addr)))?;
    let flavor = if options.multi {
        "multi_thread"
    } else {
        "current_thread"
    };
    println!(
        "tokio-echo listening on {} ({flavor})",
        listener.local_addr()?
    );
    io::stdout().flush()?;

    let accepted = Arc::new(AtomicU64::new(0));
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = accept_loop(listener, accepted.clone()) => {}
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    println!(
        "tokio-echo stopped after {:.1}s: {} accepted",
        started.elapsed().as_secs_f64(),
        accepted.load(Ordering::Relaxed)
    );
    io::stdout().flush()
}

async fn accept_loop(listener: TcpListener, accepted: Arc<AtomicU64>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                accepted.fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nodelay(true);
                tokio::spawn(echo(stream));
            }
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                eprintln!("tokio-echo: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

async fn echo(mut stream: TcpStream) {
    let mut buf = vec![0u8; BUFFER];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
