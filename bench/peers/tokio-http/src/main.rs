//! A tokio + httparse HTTP/1.1 server with a precomputed response: the
//! peer tenk's HTTP server is compared with.
//!
//! ```text
//! tokio-http [--bind ADDR] [--port N] [--runtime current|multi] [--workers N] [--server-name NAME]
//! ```
//!
//! Every request, whatever its method and path, gets
//!
//! ```text
//! HTTP/1.1 200 OK
//! Server: tokio
//! Date: <IMF-fixdate, refreshed once a second>
//! Content-Type: text/plain
//! Content-Length: 13
//!
//! Hello, World!
//! ```
//!
//! Pipelining: every complete request in the buffer is answered, and the
//! answers go out in one `write_all`. Keep-alive unless the request says
//! `Connection: close` (or is HTTP/1.0 without `keep-alive`). Request
//! bodies sized by `Content-Length` are skipped; chunked request bodies are
//! not supported (400 and close) — the comparisons send none.
//! The banner (`tokio-http listening on ADDR (...)`) goes to stdout once the
//! listener is bound; SIGINT or SIGTERM prints a summary and exits 0.

use std::cell::RefCell;
use std::io::{self, Write as _};
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::signal::unix::{signal, SignalKind};

const BACKLOG: u32 = 4096;
/// Initial read buffer; grows up to `MAX_BUFFER` for one large request.
const BUFFER: usize = 8192;
const MAX_BUFFER: usize = 64 * 1024;
const MAX_HEADERS: usize = 32;
const BODY: &[u8] = b"Hello, World!";
const BAD_REQUEST: &[u8] =
    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

struct Options {
    addr: SocketAddr,
    multi: bool,
    workers: Option<usize>,
    server_name: String,
}

/// The response around its Date value, built once.
struct Response {
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl Response {
    fn new(server_name: &str) -> Response {
        Response {
            head: format!("HTTP/1.1 200 OK\r\nServer: {server_name}\r\nDate: ").into_bytes(),
            tail: format!(
                "\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{}",
                BODY.len(),
                std::str::from_utf8(BODY).expect("ASCII body")
            )
            .into_bytes(),
        }
    }

    fn append(&self, date: &[u8; 29], out: &mut Vec<u8>) {
        out.extend_from_slice(&self.head);
        out.extend_from_slice(date);
        out.extend_from_slice(&self.tail);
    }
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: tokio-http [--bind ADDR] [--port N] [--runtime current|multi] [--workers N] [--server-name NAME]"
    );
    ExitCode::from(2)
}

fn parse_args() -> Result<Options, String> {
    let mut bind: IpAddr = "127.0.0.1".parse().expect("a valid address");
    let mut port: u16 = 0;
    let mut multi = false;
    let mut workers = None;
    let mut server_name = "tokio".to_string();
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
            "--server-name" => server_name = value()?,
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Options {
        addr: SocketAddr::new(bind, port),
        multi,
        workers,
        server_name,
    })
}

fn main() -> ExitCode {
    let options = match parse_args() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("tokio-http: {e}");
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
            eprintln!("tokio-http: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokio-http: {e}");
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
        "tokio-http listening on {} ({flavor})",
        listener.local_addr()?
    );
    io::stdout().flush()?;

    let response = Arc::new(Response::new(&options.server_name));
    let accepted = Arc::new(AtomicU64::new(0));
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        _ = accept_loop(listener, response, accepted.clone()) => {}
        _ = interrupt.recv() => {}
        _ = terminate.recv() => {}
    }
    println!(
        "tokio-http stopped after {:.1}s: {} accepted",
        started.elapsed().as_secs_f64(),
        accepted.load(Ordering::Relaxed)
    );
    io::stdout().flush()
}

async fn accept_loop(listener: TcpListener, response: Arc<Response>, accepted: Arc<AtomicU64>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                accepted.fetch_add(1, Ordering::Relaxed);
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve(stream, response.clone()));
            }
            Err(e) => {
                eprintln!("tokio-http: accept: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// What one parsed request asks of the connection.
struct Parsed {
    /// Head plus body bytes.
    len: usize,
    close: bool,
}

enum Parse {
    Complete(Parsed),
    Partial,
    Bad,
}

fn parse(data: &[u8]) -> Parse {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let head = match request.parse(data) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parse::Partial,
        Err(_) => return Parse::Bad,
    };
    let mut body = 0usize;
    let mut close = request.version == Some(0);
    for h in request.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            match std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
            {
                Some(n) => body = n,
                None => return Parse::Bad,
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            return Parse::Bad;
        } else if h.name.eq_ignore_ascii_case("connection") {
            if h.value.eq_ignore_ascii_case(b"close") {
                close = true;
            } else if h.value.eq_ignore_ascii_case(b"keep-alive") {
                close = false;
            }
        }
    }
    if data.len() - head < body {
        return Parse::Partial;
    }
    Parse::Complete(Parsed {
        len: head + body,
        close,
    })
}

async fn serve(mut stream: TcpStream, response: Arc<Response>) {
    let mut buf = vec![0u8; BUFFER];
    let (mut start, mut end) = (0usize, 0usize);
    let mut out = Vec::with_capacity(BUFFER);
    loop {
        if end == buf.len() {
            if start > 0 {
                buf.copy_within(start..end, 0);
                end -= start;
                start = 0;
            } else if buf.len() < MAX_BUFFER {
                buf.resize(buf.len() * 2, 0);
            } else {
                let _ = stream.write_all(BAD_REQUEST).await;
                return;
            }
        }
        let n = match stream.read(&mut buf[end..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        end += n;
        let mut close = false;
        let date = current_date();
        while start < end {
            match parse(&buf[start..end]) {
                Parse::Complete(request) => {
                    response.append(&date, &mut out);
                    start += request.len;
                    if request.close {
                        close = true;
                        break;
                    }
                }
                Parse::Partial => break,
                Parse::Bad => {
                    out.extend_from_slice(BAD_REQUEST);
                    close = true;
                    break;
                }
            }
        }
        if start == end {
            start = 0;
            end = 0;
        }
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if close {
            return;
        }
    }
}

thread_local! {
    /// The Date value and the second it is for, per worker thread: no lock
    /// on the request path, one `clock_gettime` (vDSO) per batch.
    static DATE: RefCell<(u64, [u8; 29])> = const { RefCell::new((u64::MAX, [0; 29])) };
}

fn current_date() -> [u8; 29] {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    DATE.with(|cell| {
        let mut cached = cell.borrow_mut();
        if cached.0 != now {
            *cached = (now, http_date(now));
        }
        cached.1
    })
}

/// IMF-fixdate (RFC 9110 §5.6.7): `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(unix: u64) -> [u8; 29] {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Howard Hinnant's civil_from_days, for days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let text = format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    let mut out = [0u8; 29];
    out.copy_from_slice(text.as_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_date_matches_the_rfc_example() {
        assert_eq!(&http_date(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(&http_date(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(&http_date(951_782_400), b"Tue, 29 Feb 2000 00:00:00 GMT");
    }

    #[test]
    fn parse_handles_pipelines_bodies_and_close() {
        let two = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n";
        match parse(two) {
            Parse::Complete(p) => assert_eq!((p.len, p.close), (27, false)),
            _ => panic!("complete expected"),
        }
        assert!(matches!(parse(b"GET / HTTP/1.1\r\nHost"), Parse::Partial));
        let body = b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nab";
        assert!(matches!(parse(body), Parse::Partial));
        match parse(b"GET / HTTP/1.0\r\n\r\n") {
            Parse::Complete(p) => assert!(p.close),
            _ => panic!("complete expected"),
        }
        assert!(matches!(parse(b"\x01\x02 nonsense\r\n\r\n"), Parse::Bad));
    }
}
