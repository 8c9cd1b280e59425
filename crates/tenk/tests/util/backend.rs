//! A recording HTTP backend for the proxy tests: a std listener whose
//! connections each get a thread that records every byte received and
//! answers each request with a canned response (or stays silent). Its own
//! framing is deliberately naive (Content-Length or a chunked terminator):
//! it only has to delimit what a correct proxy sends it.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::Duration;

/// What the backend answers each request with.
#[derive(Clone, Debug)]
pub enum Reply {
    /// These bytes, per request.
    Canned(Vec<u8>),
    /// Nothing, ever (a hung backend).
    Silent,
    /// These bytes, then the connection is closed (without saying so in
    /// the response: as a backend whose keep-alive timeout ran out).
    CannedThenClose(Vec<u8>),
}

impl Reply {
    /// `200 OK` with `body` and a Content-Length.
    pub fn ok(body: &str) -> Reply {
        Reply::Canned(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        )
    }
}

#[derive(Default)]
struct Shared {
    accepts: AtomicUsize,
    requests: AtomicUsize,
    /// Replies written whole.
    answers: AtomicUsize,
    /// A gated backend: replies it may still write (`None`: ungated).
    permits: Mutex<Option<usize>>,
    permitted: Condvar,
    /// Every byte received, per connection in accept order.
    received: Mutex<Vec<Vec<u8>>>,
    stop: AtomicBool,
}

/// A running recording backend; stopped on drop.
pub struct Recorder {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl Recorder {
    pub fn start(reply: Reply) -> Recorder {
        Recorder::slow_to_read(reply, Duration::ZERO)
    }

    /// [`start`](Recorder::start), but each reply waits for a permit
    /// from [`Recorder::permit`]: the test decides when responses leave.
    pub fn gated(reply: Reply) -> Recorder {
        let shared = Shared {
            permits: Mutex::new(Some(0)),
            ..Shared::default()
        };
        Recorder::with(reply, Duration::ZERO, shared)
    }

    /// [`start`](Recorder::start), but each connection reads nothing for
    /// `delay` after it is accepted (a backend slow to take an upload).
    pub fn slow_to_read(reply: Reply, delay: Duration) -> Recorder {
        Recorder::with(reply, delay, Shared::default())
    }

    fn with(reply: Reply, delay: Duration, shared: Shared) -> Recorder {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind backend");
        let addr = listener.local_addr().expect("backend addr");
        let shared = Arc::new(shared);
        let state = shared.clone();
        thread::spawn(move || {
            for stream in listener.incoming() {
                if state.stop.load(Ordering::Acquire) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let slot = {
                    let mut received = state.received.lock().unwrap();
                    received.push(Vec::new());
                    received.len() - 1
                };
                state.accepts.fetch_add(1, Ordering::AcqRel);
                let (state, reply) = (state.clone(), reply.clone());
                thread::spawn(move || {
                    thread::sleep(delay);
                    serve(stream, &state, slot, &reply);
                });
            }
        });
        Recorder { addr, shared }
    }

    /// `HOST:PORT` for `--upstream`.
    pub fn upstream(&self) -> String {
        self.addr.to_string()
    }

    /// Connections accepted so far.
    pub fn accepts(&self) -> usize {
        self.shared.accepts.load(Ordering::Acquire)
    }

    /// Requests delimited so far.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::Acquire)
    }

    /// Replies written whole so far (on loopback: in the proxy's socket).
    pub fn answers(&self) -> usize {
        self.shared.answers.load(Ordering::Acquire)
    }

    /// Lets a gated backend write `n` more replies.
    pub fn permit(&self, n: usize) {
        let mut permits = self.shared.permits.lock().unwrap();
        *permits.as_mut().expect("a gated backend") += n;
        self.shared.permitted.notify_all();
    }

    /// Every byte received, connections in accept order.
    pub fn received_bytes(&self) -> Vec<u8> {
        self.shared.received.lock().unwrap().concat()
    }

    /// Every byte received, connections in accept order, as text.
    pub fn received(&self) -> String {
        let received = self.shared.received.lock().unwrap();
        String::from_utf8_lossy(&received.concat()).into_owned()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(permits) = self.shared.permits.lock().unwrap().as_mut() {
            *permits = usize::MAX / 2;
            self.shared.permitted.notify_all();
        }
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

impl Shared {
    fn wait_for_permit(&self) {
        let mut permits = self.permits.lock().unwrap();
        while let Some(0) = *permits {
            permits = self.permitted.wait(permits).unwrap();
        }
        if let Some(n) = permits.as_mut() {
            *n -= 1;
        }
    }
}

fn serve(mut stream: TcpStream, state: &Shared, slot: usize, reply: &Reply) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 64 * 1024];
    loop {
        if state.stop.load(Ordering::Acquire) {
            break;
        }
        let n = match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        state.received.lock().unwrap()[slot].extend_from_slice(&chunk[..n]);
        buf.extend_from_slice(&chunk[..n]);
        while let Some(len) = request_len(&buf) {
            buf.drain(..len);
            state.requests.fetch_add(1, Ordering::AcqRel);
            state.wait_for_permit();
            match reply {
                Reply::Canned(bytes) => {
                    if stream.write_all(bytes).is_err() {
                        return;
                    }
                    state.answers.fetch_add(1, Ordering::AcqRel);
                }
                Reply::CannedThenClose(bytes) => {
                    let _ = stream.write_all(bytes);
                    let _ = stream.shutdown(Shutdown::Both);
                    return;
                }
                Reply::Silent => {}
            }
        }
    }
    let _ = stream.shutdown(Shutdown::Both);
}

/// The length of the first whole request in `buf`, if there is one.
fn request_len(buf: &[u8]) -> Option<usize> {
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    if let Some(line) = head.lines().find(|l| l.starts_with("content-length:")) {
        let n: usize = line["content-length:".len()..].trim().parse().ok()?;
        return (buf.len() >= head_end + n).then_some(head_end + n);
    }
    if head.contains("transfer-encoding: chunked") {
        let end = buf[head_end..].windows(5).position(|w| w == b"0\r\n\r\n")?;
        return Some(head_end + end + 5);
    }
    Some(head_end)
}
