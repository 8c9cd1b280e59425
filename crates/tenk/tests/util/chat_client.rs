//! A chat user for the chat suites: a socket with the suite's timeouts
//! and a line reader over it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use super::{connect, PROMPTLY};

/// One chat user: a socket and a line reader over it. Every line read is
/// checked by the caller, so a test that reads a client to EOF has seen its
/// whole transcript.
pub struct Client {
    /// Who this is in failure messages.
    pub who: String,
    pub stream: TcpStream,
    pub reader: BufReader<TcpStream>,
}

impl Client {
    pub fn connect(addr: SocketAddr, who: &str) -> Client {
        Client::over(connect(addr), who)
    }

    pub fn over(stream: TcpStream, who: &str) -> Client {
        let reader = BufReader::new(stream.try_clone().expect("clone"));
        Client {
            who: who.to_string(),
            stream,
            reader,
        }
    }

    /// Sends `line` and its newline in one write.
    pub fn send(&self, line: &str) {
        self.send_raw(format!("{line}\n").as_bytes());
    }

    pub fn send_raw(&self, bytes: &[u8]) {
        (&self.stream)
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("{}: write failed: {e}", self.who));
    }

    /// The next line's bytes, without its newline.
    pub fn raw_line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        match self.reader.read_until(b'\n', &mut line) {
            Ok(_) if line.ends_with(b"\n") => {
                line.pop();
                line
            }
            Ok(_) => panic!(
                "{}: connection closed (after {:?} of a line)",
                self.who,
                String::from_utf8_lossy(&line)
            ),
            Err(e) => panic!(
                "{}: no complete line within {PROMPTLY:?} ({e}); partial {:?}",
                self.who,
                String::from_utf8_lossy(&line)
            ),
        }
    }

    /// The next line, which must be UTF-8.
    pub fn line(&mut self) -> String {
        let raw = self.raw_line();
        String::from_utf8(raw).unwrap_or_else(|e| panic!("{}: line is not UTF-8: {e}", self.who))
    }

    /// The next line must be exactly `want`.
    pub fn expect(&mut self, want: &str) {
        let got = self.line();
        assert_eq!(got, want, "{}: unexpected line", self.who);
    }

    /// Lines until one satisfies `done`, which is returned; the skipped
    /// ones are notices of no interest to the test (joins, renames).
    pub fn skip_until(&mut self, mut done: impl FnMut(&str) -> bool) -> String {
        loop {
            let line = self.line();
            if done(&line) {
                return line;
            }
        }
    }

    /// Nothing more, then EOF.
    pub fn expect_eof(&mut self) {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => assert!(
                rest.is_empty(),
                "{}: expected EOF, got {:?}",
                self.who,
                String::from_utf8_lossy(&rest)
            ),
            Err(e) => panic!("{}: no EOF within {PROMPTLY:?}: {e}", self.who),
        }
    }

    /// Reads the greeting and the join notice of a fresh connection in the
    /// default room; returns the guest nick given.
    pub fn greeted(&mut self) -> String {
        let welcome = self.line();
        let nick = welcome
            .strip_prefix("* welcome to tenk chat, ")
            .and_then(|rest| rest.strip_suffix("; /help lists the commands"))
            .unwrap_or_else(|| panic!("{}: greeting {welcome:?}", self.who))
            .to_string();
        self.expect(&format!("* {nick} joined #lobby"));
        nick
    }

    /// Connects, is greeted, and takes `nick`; returns once the server
    /// confirmed the rename (so every later action comes after the join).
    pub fn named(addr: SocketAddr, nick: &str) -> Client {
        let mut client = Client::connect(addr, nick);
        let guest = client.greeted();
        client.send(&format!("/nick {nick}"));
        let renamed = format!("* {guest} is now known as {nick}");
        client.skip_until(|line| line == renamed);
        client
    }
}
