//! `kv`: a line-based, in-memory key-value server on the reactor.
//!
//! It is small on purpose: the reference for writing a protocol on
//! `reactor`. It shows framing (consume complete lines only, keep the rest,
//! refuse over-long lines), replies written straight from the handler,
//! timers (keys that expire, and a stats line that costs no wake-up while
//! the server is idle) and a graceful shutdown on Ctrl-C.
//!
//! ```text
//! cargo run -p tenk-reactor --example kv -- 127.0.0.1:7000   # port 0: any
//! ```
//!
//! One command per line, ended by `\n` (or `\r\n`, for telnet):
//!
//! ```text
//! SET key value          +OK
//! SETEX key secs value   +OK               the key expires after secs (0.5 works)
//! GET key                $value            or -ERR not found
//! DEL key                +OK               or -ERR not found
//! QUIT                   +OK               then the server closes the connection
//! ```
//!
//! Keys are one word; a value is the rest of the line and may hold spaces.
//! Anything else gets `-ERR ...`; a line longer than [`MAX_LINE`] bytes gets
//! `-ERR line too long` and the connection is closed. Try it with
//! `nc 127.0.0.1 7000`, or `printf 'SET a 1\nGET a\n' | nc -N 127.0.0.1 7000`.
//!
//! Exit codes: 0 after a graceful shutdown (first SIGINT/SIGTERM), 1 on an
//! error or a forced shutdown (second signal while draining), 2 on bad
//! arguments.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use reactor::signal::{self, SIGINT, SIGTERM};
use reactor::{CloseReason, Config, Exit, Handler, Io, Reactor, TimerId, Token};

/// The longest command line accepted, `\n` or `\r\n` excluded. Without a limit a
/// client that never sends `\n` would make the server buffer without end.
pub const MAX_LINE: usize = 1024;

/// Timer data says what a timer is for; its [`TimerId`] says which one it
/// is. Two kinds here: one key's expiry, and the periodic stats line.
const TIMER_EXPIRE: u64 = 0;
const TIMER_STATS: u64 = 1;

/// A stored value, and the timer that expires it (`SETEX`), if any.
struct Value {
    bytes: Vec<u8>,
    expiry: Option<TimerId>,
}

/// The protocol. One `Kv` serves every connection of its reactor: the
/// reactor is single-threaded, so the store needs no lock.
pub struct Kv {
    store: HashMap<Vec<u8>, Value>,
    /// Pending expiries, by timer: `on_timer` learns the timer, not the key.
    expiries: HashMap<TimerId, Vec<u8>>,
    /// Replies of one `on_data` call, sent with one `Io::send`: a client
    /// that pipelines ten commands gets one write, not ten.
    replies: Vec<u8>,
    stats_every: Duration,
    /// Set while a stats line is scheduled.
    stats_timer: Option<TimerId>,
    /// Commands and expiries since the last stats line.
    commands: u64,
    expired: u64,
}

/// What the connection does after a command.
#[derive(PartialEq)]
enum Next {
    Continue,
    Close,
}

impl Kv {
    /// An empty store that logs activity at most once per `stats_every`.
    pub fn new(stats_every: Duration) -> Kv {
        Kv {
            store: HashMap::new(),
            expiries: HashMap::new(),
            replies: Vec::new(),
            stats_every,
            stats_timer: None,
            commands: 0,
            expired: 0,
        }
    }

    /// Runs one command line (newline stripped), appending its reply.
    fn execute(&mut self, io: &mut Io, line: &[u8]) -> Next {
        self.commands += 1;
        let (command, args) = split_word(line);
        match command.to_ascii_uppercase().as_slice() {
            b"SET" => match split_word(args) {
                (b"", _) => self.reply(b"-ERR usage: SET key value"),
                (key, value) => {
                    self.set(io, key, value, None);
                    self.reply(b"+OK");
                }
            },
            b"SETEX" => {
                let (key, rest) = split_word(args);
                let (secs, value) = split_word(rest);
                match (key, parse_seconds(secs)) {
                    (b"", _) | (_, None) => self.reply(b"-ERR usage: SETEX key seconds value"),
                    (key, Some(ttl)) => {
                        self.set(io, key, value, Some(ttl));
                        self.reply(b"+OK");
                    }
                }
            }
            b"GET" => match self.store.get(split_word(args).0) {
                Some(value) => {
                    self.replies.push(b'$');
                    self.replies.extend_from_slice(&value.bytes);
                    self.replies.push(b'\n');
                }
                None => self.reply(b"-ERR not found"),
            },
            b"DEL" => match self.store.remove(split_word(args).0) {
                Some(value) => {
                    self.forget_expiry(io, value.expiry);
                    self.reply(b"+OK");
                }
                None => self.reply(b"-ERR not found"),
            },
            b"QUIT" => {
                self.reply(b"+OK");
                return Next::Close;
            }
            b"" => self.reply(b"-ERR empty command"),
            _ => self.reply(b"-ERR unknown command"),
        }
        Next::Continue
    }

    fn set(&mut self, io: &mut Io, key: &[u8], value: &[u8], ttl: Option<Duration>) {
        // A timer is just a deadline and a u64; the reactor arms its one
        // timerfd for the earliest deadline only, so a million keys with a
        // TTL cost no more syscalls than one.
        let expiry = ttl.map(|ttl| {
            let timer = io.add_timer(ttl, TIMER_EXPIRE);
            self.expiries.insert(timer, key.to_vec());
            timer
        });
        let value = Value {
            bytes: value.to_vec(),
            expiry,
        };
        if let Some(old) = self.store.insert(key.to_vec(), value) {
            // Overwriting a key that had a TTL: its old timer must not
            // expire the new value.
            self.forget_expiry(io, old.expiry);
        }
    }

    fn forget_expiry(&mut self, io: &mut Io, expiry: Option<TimerId>) {
        if let Some(timer) = expiry {
            io.cancel_timer(timer);
            self.expiries.remove(&timer);
        }
    }

    fn reply(&mut self, line: &[u8]) {
        self.replies.extend_from_slice(line);
        self.replies.push(b'\n');
    }
}

impl Handler for Kv {
    /// The heart of a protocol. `data` is every byte of this connection not
    /// consumed yet: what an earlier call left over, then what just arrived.
    /// Returning `n` consumes `data[..n]`; the reactor keeps the rest (in a
    /// pooled buffer) and offers it again, with more, on the next call. So a
    /// line split across reads is simply left unconsumed until it completes,
    /// and the handler keeps no per-connection buffer of its own.
    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        let mut consumed = 0;
        let mut next = Next::Continue;
        while let Some(len) = data[consumed..].iter().position(|&b| b == b'\n') {
            let line = &data[consumed..consumed + len];
            consumed += len + 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.len() > MAX_LINE {
                next = Next::Close;
                self.reply(b"-ERR line too long");
                break;
            }
            next = self.execute(io, line);
            if next == Next::Close {
                break;
            }
        }
        // No newline yet in what is left: a partial line, kept for the next
        // call, unless it is already too long to ever be valid (`+ 1`: its
        // `\r` may be here already). The reactor's own `Config::max_input`
        // is the backstop for protocols that forget this check; it closes
        // without a word.
        if next == Next::Continue && data.len() - consumed > MAX_LINE + 1 {
            next = Next::Close;
            self.reply(b"-ERR line too long");
        }

        if !self.replies.is_empty() {
            // Written to the socket at once; only what the kernel does not
            // take is buffered. `false` would mean the connection is gone
            // (a write error): `on_close` follows, nothing to do here.
            io.send(conn, &self.replies);
            self.replies.clear();
        }
        if self.commands > 0 && self.stats_timer.is_none() {
            // Scheduled on activity only: an idle server has no timer and
            // makes no wake-ups at all.
            self.stats_timer = Some(io.add_timer(self.stats_every, TIMER_STATS));
        }

        if next == Next::Close {
            // Not `io.close`: that would discard the reply still pending.
            // Reading stops now; the close follows the flush.
            io.close_when_flushed(conn);
            // Whatever followed QUIT (or the long line) is dropped.
            return data.len();
        }
        consumed
    }

    // `on_eof` keeps its default: a client that sends its commands and
    // shuts down its side (`nc -N`) still gets every reply, because the
    // default closes only once pending output is flushed. A partial last
    // line is dropped with the connection.

    /// A timer set with `Io::add_timer` is due. `timer` is the id
    /// `add_timer` returned; `data` is what was passed with it.
    fn on_timer(&mut self, io: &mut Io, timer: TimerId, data: u64) {
        match data {
            TIMER_EXPIRE => {
                // Cancelled timers never fire, so a key overwritten or
                // deleted since is not here.
                if let Some(key) = self.expiries.remove(&timer) {
                    self.store.remove(&key);
                    self.expired += 1;
                }
            }
            TIMER_STATS => {
                self.stats_timer = None;
                eprintln!(
                    "kv: {} commands, {} keys expired in the last {:?}; {} keys, {} connections",
                    self.commands,
                    self.expired,
                    self.stats_every,
                    self.store.len(),
                    io.connection_count(),
                );
                self.commands = 0;
                self.expired = 0;
            }
            _ => unreachable!("kv sets no other timers"),
        }
    }

    /// The token is stale from here on: a protocol that keeps state per
    /// connection (in a `Vec` indexed by `Token::index`, say) drops it now.
    fn on_close(&mut self, _io: &mut Io, conn: Token, reason: CloseReason) {
        match reason {
            CloseReason::PeerClosed | CloseReason::Local | CloseReason::Shutdown => {}
            other => eprintln!("kv: connection {} closed: {other:?}", conn.index()),
        }
    }

    /// SIGINT or SIGTERM, read from the signalfd `main` set up. The first
    /// starts a graceful shutdown: the listener closes, connections stop
    /// being read and close once their replies are flushed. A second one
    /// while draining stops at once.
    fn on_signal(&mut self, io: &mut Io, signal: i32) {
        if io.is_draining() {
            eprintln!("kv: signal {signal} again, stopping now");
        } else {
            eprintln!(
                "kv: signal {signal}, draining {} connections",
                io.connection_count()
            );
        }
        io.shutdown();
    }
}

/// Splits off the first space-separated word. The rest keeps its inner
/// spaces: a value is everything after the key.
fn split_word(line: &[u8]) -> (&[u8], &[u8]) {
    let line = line.trim_ascii_start();
    match line.iter().position(|&b| b == b' ') {
        Some(end) => (&line[..end], line[end + 1..].trim_ascii_start()),
        None => (line, &[]),
    }
}

/// `1`, `0.25`: a TTL in seconds; `None` for anything negative or absurd.
fn parse_seconds(word: &[u8]) -> Option<Duration> {
    let secs: f64 = std::str::from_utf8(word).ok()?.parse().ok()?;
    // A year is plenty, and keeps `Instant + ttl` far from overflowing.
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|ttl| ttl.as_secs() < 365 * 24 * 3600)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let addr = match (args.next(), args.next()) {
        (None, _) => SocketAddr::from(([127, 0, 0, 1], 7000)),
        (Some(arg), None) => match arg.parse() {
            Ok(addr) => addr,
            Err(e) => {
                eprintln!("kv: {arg:?}: {e}\nusage: kv [ADDRESS:PORT]");
                return ExitCode::from(2);
            }
        },
        (Some(_), Some(_)) => {
            eprintln!("usage: kv [ADDRESS:PORT]");
            return ExitCode::from(2);
        }
    };
    match run(addr) {
        Ok(Exit::Graceful) => ExitCode::SUCCESS,
        Ok(exit) => {
            eprintln!("kv: {exit:?}: connections were cut");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("kv: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(addr: SocketAddr) -> io::Result<Exit> {
    // Block the shutdown signals before any thread exists (threads inherit
    // the mask): the kernel then queues them for the reactor's signalfd
    // instead of killing the process or running a handler.
    let signals = signal::block(&[SIGINT, SIGTERM])?;

    // Config::default() is edge-triggered; `Trigger::Level` and
    // `Trigger::OneShot` behave the same to a protocol.
    let mut reactor = Reactor::new(Config::default(), Kv::new(Duration::from_secs(10)))?;
    let io = reactor.io();
    io.watch_signals(&signals)?;
    let listener = io.listen(addr, 1024)?;
    // With port 0 the kernel picks one; tell the user which.
    println!("kv listening on {}", io.local_addr(listener)?);

    // Runs until the drain after a signal completes (or is forced).
    let exit = reactor.run()?;
    eprintln!(
        "kv: {exit:?}, {} keys dropped",
        reactor.handler().store.len()
    );
    Ok(exit)
}
