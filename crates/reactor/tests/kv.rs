//! The `kv` example's protocol end to end, in every trigger mode.
//!
//! The example's own handler is compiled into this test (its `main` goes
//! unused), so what is tested is exactly what a reader of the example
//! learns from. Its reactor runs on a thread; the test drives it with
//! blocking loopback clients whose reads time out, and ends the run with
//! `Waker::stop`.

mod util;

#[path = "../examples/kv.rs"]
#[allow(dead_code)] // `main` and `run`, not called here
mod kv;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use reactor::{Exit, Trigger, Waker};
use util::{any_port, TRIGGERS, WATCHDOG_AFTER};

/// A kv server on its own thread.
struct Server {
    addr: SocketAddr,
    waker: Waker,
    thread: JoinHandle<Exit>,
}

impl Server {
    fn start(trigger: Trigger) -> Server {
        let (tx, rx) = mpsc::channel();
        let thread = thread::spawn(move || {
            // Stats would only add noise: one line an hour.
            let kv = kv::Kv::new(Duration::from_secs(3600));
            let mut r = util::reactor(trigger, kv);
            let listener = r.io().listen(any_port(), 128).unwrap();
            let addr = r.io().local_addr(listener).unwrap();
            tx.send((addr, r.io().waker())).unwrap();
            util::run(&mut r)
        });
        let (addr, waker) = rx.recv().expect("server started");
        Server {
            addr,
            waker,
            thread,
        }
    }

    fn client(&self) -> Client {
        let stream = TcpStream::connect(self.addr).unwrap();
        stream.set_read_timeout(Some(WATCHDOG_AFTER)).unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            reader: BufReader::new(stream.try_clone().unwrap()),
            stream,
        }
    }

    fn stop(self) {
        self.waker.stop().unwrap();
        assert_eq!(self.thread.join().expect("server thread"), Exit::Stopped);
    }
}

struct Client {
    stream: TcpStream,
    reader: BufReader<TcpStream>,
}

impl Client {
    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// One reply line, without its newline; "" at EOF.
    fn reply(&mut self) -> String {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("reply in time");
        line.trim_end_matches('\n').to_owned()
    }

    /// Sends one command line and reads its reply.
    fn call(&mut self, command: &str) -> String {
        self.send(format!("{command}\n").as_bytes());
        self.reply()
    }

    /// The server has closed: EOF after any replies already read.
    fn assert_closed(&mut self) {
        let mut rest = Vec::new();
        self.reader.read_to_end(&mut rest).expect("EOF in time");
        assert!(rest.is_empty(), "unexpected bytes: {rest:?}");
    }
}

#[test]
fn commands_and_replies() {
    for trigger in TRIGGERS {
        let server = Server::start(trigger);
        let mut c = server.client();
        assert_eq!(c.call("SET a 1"), "+OK");
        assert_eq!(c.call("GET a"), "$1");
        assert_eq!(c.call("SET a hello  world"), "+OK", "overwrite");
        assert_eq!(c.call("GET a"), "$hello  world", "values keep spaces");
        assert_eq!(c.call("get a"), "$hello  world", "commands ignore case");
        assert_eq!(c.call("GET missing"), "-ERR not found");
        assert_eq!(c.call("DEL a"), "+OK");
        assert_eq!(c.call("DEL a"), "-ERR not found");
        assert_eq!(c.call("GET a"), "-ERR not found");
        assert_eq!(c.call("SET"), "-ERR usage: SET key value");
        assert_eq!(
            c.call("SETEX k soon v"),
            "-ERR usage: SETEX key seconds value"
        );
        assert_eq!(
            c.call("SETEX k -1 v"),
            "-ERR usage: SETEX key seconds value"
        );
        assert_eq!(c.call("FLY me"), "-ERR unknown command");
        assert_eq!(c.call(""), "-ERR empty command");
        assert_eq!(c.call("SET crlf ok\r"), "+OK", "telnet's CRLF");
        assert_eq!(c.call("GET crlf"), "$ok");

        // A second client sees the same store.
        let mut other = server.client();
        assert_eq!(other.call("GET crlf"), "$ok");

        // QUIT answers, then closes; a command after it is ignored.
        c.send(b"QUIT\nGET crlf\n");
        assert_eq!(c.reply(), "+OK");
        c.assert_closed();
        assert_eq!(other.call("GET crlf"), "$ok", "{trigger:?}");
        server.stop();
    }
}

#[test]
fn pipelined_commands_are_answered_in_order() {
    for trigger in TRIGGERS {
        let server = Server::start(trigger);
        let mut c = server.client();
        c.send(b"SET a 1\nSET b 2\nGET a\nDEL a\nGET a\nGET b\n");
        let replies: Vec<String> = (0..6).map(|_| c.reply()).collect();
        assert_eq!(
            replies,
            ["+OK", "+OK", "$1", "+OK", "-ERR not found", "$2"],
            "{trigger:?}"
        );
        server.stop();
    }
}

#[test]
fn partial_lines_wait_for_the_rest() {
    for trigger in TRIGGERS {
        let server = Server::start(trigger);
        let mut c = server.client();
        // One byte per write (with TCP_NODELAY, one segment each): the
        // handler sees the command grow over many reads, consuming
        // nothing until the newline.
        for byte in b"SET slow 42\n" {
            c.send(&[*byte]);
        }
        assert_eq!(c.reply(), "+OK", "{trigger:?}");
        // A line split across writes after a complete one: the first is
        // answered while the fragment waits.
        c.send(b"GET slow\nGE");
        assert_eq!(c.reply(), "$42", "{trigger:?}");
        c.send(b"T slow\n");
        assert_eq!(c.reply(), "$42", "{trigger:?}");
        server.stop();
    }
}

#[test]
fn over_long_lines_are_refused_and_closed() {
    for trigger in TRIGGERS {
        let server = Server::start(trigger);

        // The longest line allowed, with CRLF.
        let mut c = server.client();
        let value = "v".repeat(kv::MAX_LINE - "SET k ".len());
        assert_eq!(c.call(&format!("SET k {value}\r")), "+OK", "{trigger:?}");
        assert_eq!(c.call("GET k").len(), 1 + value.len());

        // One byte more, complete.
        let mut c = server.client();
        c.send(format!("SET k {value}v\n").as_bytes());
        assert_eq!(c.reply(), "-ERR line too long", "{trigger:?}");
        c.assert_closed();

        // A line that never ends: refused once it outgrows the limit,
        // without waiting for a newline.
        let mut c = server.client();
        c.send(&vec![b'x'; kv::MAX_LINE + 2]);
        assert_eq!(c.reply(), "-ERR line too long", "{trigger:?}");
        c.assert_closed();
        server.stop();
    }
}

#[test]
fn keys_with_a_ttl_expire_and_overwrites_cancel_the_expiry() {
    for trigger in TRIGGERS {
        let server = Server::start(trigger);
        let mut c = server.client();
        assert_eq!(c.call("SETEX kept 0.02 v"), "+OK");
        assert_eq!(c.call("SET kept w"), "+OK", "cancels kept's expiry");
        assert_eq!(c.call("SETEX long 3600 v"), "+OK");
        assert_eq!(c.call("GET long"), "$v");
        assert_eq!(c.call("SETEX gone 0.05 x"), "+OK");

        // Timers fire in deadline order, so once `gone` has expired,
        // `kept`'s (earlier, cancelled) timer would have fired too. Polling
        // is bounded and waits on replies, not on sleeps.
        let deadline = Instant::now() + WATCHDOG_AFTER;
        while c.call("GET gone") == "$x" {
            assert!(Instant::now() < deadline, "{trigger:?}: never expired");
        }
        assert_eq!(c.call("GET gone"), "-ERR not found", "{trigger:?}");
        assert_eq!(c.call("GET kept"), "$w", "{trigger:?}");
        assert_eq!(c.call("GET long"), "$v", "{trigger:?}");
        server.stop();
    }
}

#[test]
fn replies_survive_the_client_shutting_down_its_side() {
    for trigger in TRIGGERS {
        let server = Server::start(trigger);
        let mut c = server.client();
        // Like `printf ... | nc -N`: commands, then FIN at once.
        c.send(b"SET a 1\nGET a\nGET");
        c.stream.shutdown(std::net::Shutdown::Write).unwrap();
        assert_eq!(c.reply(), "+OK", "{trigger:?}");
        assert_eq!(c.reply(), "$1", "{trigger:?}");
        c.assert_closed(); // the partial "GET" is dropped
        server.stop();
    }
}
