//! Responses sent with `Io::send_file` that are larger than the high
//! watermark: reading pauses while they go out, and must resume without
//! costing a read when no input came meanwhile (the response was answered
//! to a request read whole), yet still read input that did come.

mod util;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use reactor::{CloseReason, Config, Handler, Io, Token};
use util::{any_port, reactor_with, run, TRIGGERS};

const HEAD: &[u8] = b"HEAD\r\n";
/// Above the default high watermark (256 KiB): every response pauses reads.
const FILE_LEN: usize = 512 * 1024;
const REQUESTS: usize = 3;

/// Answers every byte it reads with `HEAD` and the whole file.
struct FileServer {
    path: PathBuf,
}

impl Handler for FileServer {
    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        for _ in data {
            let file: OwnedFd = std::fs::File::open(&self.path).expect("open").into();
            io.send_file(conn, HEAD, file, 0, FILE_LEN as u64);
        }
        data.len()
    }

    fn on_close(&mut self, io: &mut Io, _conn: Token, _reason: CloseReason) {
        io.stop();
    }
}

fn pattern() -> Vec<u8> {
    (0..FILE_LEN).map(|i| (i % 251) as u8).collect()
}

/// A temporary file holding [`pattern`], removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(tag: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!(
            "tenk-send-file-{tag}-{}-{:?}",
            std::process::id(),
            thread::current().id()
        ));
        std::fs::write(&path, pattern()).expect("write temp file");
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Sends `requests` one at a time (each as soon as the previous answer is
/// read whole, or `burst` at once), checks every answer, then closes.
fn client(addr: std::net::SocketAddr, requests: usize, burst: bool) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let expected: Vec<u8> = HEAD.iter().copied().chain(pattern()).collect();
        if burst {
            stream.write_all(&vec![b'g'; requests]).unwrap();
        }
        for i in 0..requests {
            if !burst {
                stream.write_all(b"g").unwrap();
            }
            let mut answer = vec![0; expected.len()];
            stream.read_exact(&mut answer).expect("read answer");
            assert!(answer == expected, "answer {i} differs");
        }
    })
}

#[test]
fn a_paused_read_resumes_without_a_wasted_read() {
    for trigger in TRIGGERS {
        let file = TempFile::new(trigger.name());
        let config = Config {
            trigger,
            ..Config::default()
        };
        let mut r = reactor_with(
            config,
            FileServer {
                path: file.0.clone(),
            },
        );
        let listener = r.io().listen(any_port(), 16).expect("listen");
        let addr = r.io().local_addr(listener).unwrap();
        let peer = client(addr, REQUESTS, false);
        run(&mut r);
        peer.join().expect("client");
        let stats = r.io().stats();
        assert!(
            stats.backpressure_pauses >= REQUESTS as u64,
            "{trigger:?}: every answer pauses reading: {stats:?}"
        );
        // One read per request, one for the EOF: resuming after an answer
        // that was read whole must not cost a read that finds EAGAIN.
        assert_eq!(stats.reads, REQUESTS as u64 + 1, "{trigger:?}: {stats:?}");
    }
}

/// Requests that arrive while reading is paused are read when it resumes
/// (in edge mode their edge came during the pause and will not come again).
#[test]
fn input_that_came_during_a_pause_is_read_when_it_ends() {
    for trigger in TRIGGERS {
        let file = TempFile::new(&format!("burst-{}", trigger.name()));
        let config = Config {
            trigger,
            // One byte per read: the first request pauses reading with the
            // others still in the socket.
            scratch_size: 1,
            ..Config::default()
        };
        let mut r = reactor_with(
            config,
            FileServer {
                path: file.0.clone(),
            },
        );
        let listener = r.io().listen(any_port(), 16).expect("listen");
        let addr = r.io().local_addr(listener).unwrap();
        let peer = client(addr, REQUESTS, true);
        run(&mut r);
        peer.join().expect("client");
    }
}
