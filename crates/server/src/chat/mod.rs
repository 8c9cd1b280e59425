//! `tenk serve chat`: a line-based chat server usable with `nc`/`telnet`.
//!
//! Every connection gets a guest nick and joins the default room. A line
//! is either a command (`/nick`, `/join`, `/rooms`, `/who`, `/msg`,
//! `/quit`, `/help`) or text for the room, delivered as `<nick> text`.
//!
//! Fan-out without copies: a room message is encoded once into an
//! `Arc<[u8]>` and queued by reference on every member's connection
//! ([`Io::send_shared`]); the reactor writes each member's queue with one
//! gather write per pass. A member that stops reading is cut by the
//! reactor's output limits and write timeout, and the room is told, while
//! everyone else keeps their pace: nobody's queue depends on another's.
//! A member who only reads sends nothing while the room is quiet, so
//! `tenk serve chat` runs without an idle timeout and finds dead peers by
//! TCP keepalive ([`reactor::Config::keepalive`]) instead.
//!
//! Across threads (`--threads N`): each worker keeps its own clients and
//! its members of each room; nicks and rooms live in one shared
//! [`hub::Hub`] (a [`directory::Directory`] behind a lock taken briefly for
//! joins, renames, `/who` and to learn which workers a message must reach).
//! A message for clients on other workers is posted, still as the same
//! `Arc<[u8]>`, to each such worker's mailbox, a FIFO per worker, so one
//! sender's messages arrive in the order they were said; the receiving
//! worker is woken through its eventfd only when its mailbox goes from
//! empty to non-empty.
//!
//! Across nodes (`--redis`): each worker also publishes its room messages
//! to Redis and subscribes to the rooms it has members in
//! ([`cluster`], docs/chat-cluster.md). A join waits, its user's input
//! held, until the room's SUBSCRIBE is acknowledged, so nothing said on
//! another node right after the confirmation is missed.

pub mod cluster;
pub mod command;
pub mod directory;
mod dispatch;
pub mod hub;
mod join;
pub mod line;
mod relay;

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use reactor::{CloseReason, Handler, Io, TimerId, Token};

use crate::group::Group;
use crate::metrics::HistogramBoard;
use cluster::{Cluster, ClusterStats, Event, TIMER_JOIN_WAIT};
use hub::{Address, Hub, Mail};
use line::{Frame, LineFramer};

/// Settings of the chat server.
#[derive(Clone, Debug)]
pub struct ChatConfig {
    /// Longest line accepted; longer ones are refused and dropped.
    pub max_line: usize,
    /// The room every connection joins first.
    pub default_room: String,
}

impl ChatConfig {
    /// The reactor input limit ([`Config::max_input`](reactor::Config::max_input))
    /// these settings need: the framer keeps up to `max_line + 1` bytes of
    /// an unfinished line (a line of the limit and its `\r`), and a smaller
    /// reactor limit would cut the connection instead of refusing the line.
    pub fn reactor_max_input(&self) -> usize {
        self.max_line + 1
    }
}

impl Default for ChatConfig {
    fn default() -> ChatConfig {
        ChatConfig {
            max_line: 4096,
            default_room: "lobby".into(),
        }
    }
}

/// Counters of the chat server (of one worker, or summed with
/// [`ChatStats::add`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChatStats {
    /// Room messages sent by users.
    pub messages: u64,
    /// Copies of room messages (and notices) queued to recipients.
    pub deliveries: u64,
    /// Private messages delivered.
    pub private_messages: u64,
    /// Lines refused for being too long.
    pub lines_too_long: u64,
    /// Clients cut because they stopped reading (output limit or write
    /// timeout).
    pub slow_disconnects: u64,
    /// Messages for another worker dropped because its mailbox was full
    /// (that worker was stuck; see [`hub::MAILBOX_LIMIT`]).
    pub mail_dropped: u64,
    /// The Redis side (`--redis`), zero without.
    pub redis: ClusterStats,
}

impl ChatStats {
    /// Adds another worker's counters.
    pub fn add(&mut self, other: &ChatStats) {
        self.messages += other.messages;
        self.deliveries += other.deliveries;
        self.private_messages += other.private_messages;
        self.lines_too_long += other.lines_too_long;
        self.slow_disconnects += other.slow_disconnects;
        self.mail_dropped += other.mail_dropped;
        self.redis.add(&other.redis);
    }
}

struct Client {
    token: Token,
    nick: String,
    room: String,
    framer: LineFramer,
    /// Said `/quit`: already out of its room and the nick table, waiting
    /// for `* bye` to flush. Lines after it (in the same read) are not run,
    /// as Redis stops processing a client it is about to close.
    quitting: bool,
    /// Joined a room whose subscription is not acknowledged yet (since
    /// then): reading is paused and the join not yet announced.
    waiting: Option<Instant>,
    /// Input that came with or after a join that waits, run once it is
    /// confirmed (the reactor offers kept input again only with new
    /// bytes, so it cannot be left there).
    held: Vec<u8>,
    /// Asked Redis something for this user (a nick, `/msg`, `/who`,
    /// `/rooms`) and waits for the answer: reading is paused and input
    /// held, as for a join, so the answer comes before what follows.
    asking: bool,
}

impl Client {
    /// Input waits: a join or a question to Redis is not answered yet.
    fn blocked(&self) -> bool {
        self.waiting.is_some() || self.asking
    }
}

/// The chat server for one reactor: its own clients and their local room
/// memberships, plus the [`Hub`] it shares with the other workers (nicks,
/// rooms, mailboxes).
pub struct Chat {
    config: ChatConfig,
    worker: usize,
    hub: Arc<Hub>,
    /// Wakes the other workers when their mailbox gets mail; `None` alone.
    group: Option<Arc<Group>>,
    clients: Vec<Option<Client>>,
    /// This worker's members of each room, for fan-out.
    rooms: HashMap<String, Vec<Token>>,
    /// Mails taken from the mailbox and not yet delivered, oldest first.
    mails: VecDeque<Mail>,
    /// The mailbox's contents as taken (kept to reuse the allocation).
    taken: Vec<Mail>,
    stats: ChatStats,
    /// Where fan-out durations go (`--metrics`), as this worker's.
    fanout: Option<Arc<HistogramBoard>>,
    /// Rooms across nodes (`--redis`).
    cluster: Option<Cluster>,
    /// Joiners waiting for their room's subscription, by room.
    waiting: HashMap<String, Vec<Token>>,
    /// The join-wait timer, when armed.
    join_timer: Option<TimerId>,
    /// Reused for the cluster's events.
    events: Vec<Event>,
}

impl Chat {
    /// A chat server on one reactor.
    pub fn new(config: ChatConfig) -> Chat {
        let hub = Arc::new(Hub::new(1, &config.default_room));
        Chat::worker(config, 0, hub, None)
    }

    /// Worker `worker` of a chat server spread over the reactors of
    /// `group`, sharing `hub` (made for `group`'s worker count).
    pub fn worker(
        config: ChatConfig,
        worker: usize,
        hub: Arc<Hub>,
        group: Option<Arc<Group>>,
    ) -> Chat {
        Chat {
            config,
            worker,
            hub,
            group,
            clients: Vec::new(),
            rooms: HashMap::new(),
            mails: VecDeque::new(),
            taken: Vec::new(),
            stats: ChatStats::default(),
            fanout: None,
            cluster: None,
            waiting: HashMap::new(),
            join_timer: None,
            events: Vec::new(),
        }
    }

    /// Records each fan-out's duration on `board` as this worker's: from
    /// the start of the pass that read the message (the sender's pass,
    /// for one from another worker) to its copies queued on this worker's
    /// members (and, for a local sender, posted to the other workers).
    /// One clock read per room message or notice.
    pub fn with_fanout_board(mut self, board: Option<Arc<HistogramBoard>>) -> Chat {
        self.fanout = board;
        self
    }

    fn record_fanout(&self, since: Instant) {
        if let Some(board) = &self.fanout {
            let ns = Instant::now().saturating_duration_since(since).as_nanos();
            board.record(self.worker, u64::try_from(ns).unwrap_or(u64::MAX));
        }
    }

    /// This worker spreads its rooms over other nodes through `cluster`.
    pub fn with_cluster(mut self, cluster: Cluster) -> Chat {
        self.cluster = Some(cluster);
        self
    }

    /// Worker `id` of `group`, sharing `hub` (made for `group`'s worker
    /// count); alone in its group, it has no one to wake.
    pub fn in_group(config: ChatConfig, id: usize, hub: Arc<Hub>, group: &Arc<Group>) -> Chat {
        let others = (group.workers() > 1).then(|| group.clone());
        Chat::worker(config, id, hub, others)
    }

    /// The counters so far.
    pub fn stats(&self) -> ChatStats {
        ChatStats {
            redis: self
                .cluster
                .as_ref()
                .map(Cluster::stats)
                .unwrap_or_default(),
            ..self.stats
        }
    }

    fn client(&self, conn: Token) -> Option<&Client> {
        self.clients
            .get(conn.index())
            .and_then(Option::as_ref)
            .filter(|c| c.token == conn)
    }

    fn client_mut(&mut self, conn: Token) -> Option<&mut Client> {
        self.clients
            .get_mut(conn.index())
            .and_then(Option::as_mut)
            .filter(|c| c.token == conn)
    }
}

impl Handler for Chat {
    fn on_accept(&mut self, io: &mut Io, _listener: Token, conn: Token) {
        let address = Address {
            worker: self.worker,
            token: conn,
        };
        if let Some(cluster) = &mut self.cluster {
            cluster.start(io);
        }
        // With Redis, the guest nick is claimed there first (unique
        // across nodes); the greeting waits for it.
        let nick = match self.cluster {
            Some(_) => String::new(),
            None => self.hub.directory().claim_guest(address),
        };
        let index = conn.index();
        if self.clients.len() <= index {
            self.clients.resize_with(index + 1, || None);
        }
        self.clients[index] = Some(Client {
            token: conn,
            nick: nick.clone(),
            room: String::new(),
            framer: LineFramer::new(self.config.max_line),
            quitting: false,
            waiting: None,
            held: Vec::new(),
            asking: false,
        });
        if self.cluster.is_some() {
            self.ask_pause(io, conn);
            if let Some(cluster) = &mut self.cluster {
                cluster.guest(io, conn, None, &mut self.events);
            }
            return self.cluster_events(io);
        }
        self.welcome(io, conn);
    }

    fn on_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        if let Some(cluster) = &mut self.cluster {
            if cluster.owns(conn) {
                let used = cluster.on_data(io, conn, data, &mut self.events);
                self.cluster_events(io);
                return used;
            }
        }
        let Some(client) = self.client_mut(conn) else {
            return data.len();
        };
        if client.blocked() || !client.held.is_empty() {
            client.held.extend_from_slice(data);
            if !client.blocked() {
                self.run_held(io, conn);
            }
            return data.len();
        }
        let used = self.run_lines(io, conn, data);
        match self.client_mut(conn) {
            // A join that waits stopped the lines: keep the rest for when
            // it is confirmed.
            Some(client) if client.blocked() => {
                client.held.extend_from_slice(&data[used..]);
                data.len()
            }
            _ => used,
        }
    }

    fn on_connect(&mut self, io: &mut Io, conn: Token) {
        if let Some(cluster) = &mut self.cluster {
            cluster.on_connect(io, conn);
        }
    }

    fn on_timer(&mut self, io: &mut Io, _timer: TimerId, data: u64) {
        if data == TIMER_JOIN_WAIT {
            self.join_wait_expired(io);
        } else if let Some(cluster) = &mut self.cluster {
            cluster.on_timer(io, data);
        }
    }

    fn on_close(&mut self, io: &mut Io, conn: Token, reason: CloseReason) {
        if let Some(cluster) = &mut self.cluster {
            if cluster.on_close(io, conn, reason, &mut self.events) {
                self.cluster_events(io);
                return;
            }
        }
        self.client_closed(io, conn, reason);
    }

    fn on_shutdown(&mut self, io: &mut Io) {
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        // Other nodes' members see each user leave, as after a local
        // leave, now: the drain closes users only once their output is
        // flushed (or at its timeout), when the publisher may be gone.
        // The shutdown then stops publishing, so those closes are not
        // published again.
        for client in self.clients.iter().flatten() {
            let announced = client.waiting.is_none() && !client.room.is_empty();
            if announced && !client.quitting && !client.nick.is_empty() {
                let line = format!("* {} left #{}\n", client.nick, client.room);
                cluster.publish(io, &client.room, &client.nick, line.as_bytes());
            }
        }
        cluster.shutdown(io);
    }

    fn on_wake(&mut self, io: &mut Io) {
        if let Some(cluster) = &mut self.cluster {
            cluster.start(io);
        }
        self.deliver_mail(io);
    }
}

impl Chat {
    /// Runs the complete lines at the start of `data` for `conn`; stops
    /// early when the client quits or a join must wait. Returns the bytes
    /// consumed.
    fn run_lines(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        let mut consumed = 0;
        loop {
            let Some(client) = self.client_mut(conn) else {
                return data.len();
            };
            if client.quitting {
                return data.len();
            }
            if client.blocked() {
                return consumed;
            }
            match client.framer.next(&data[consumed..]) {
                Frame::Line(line, n) => {
                    consumed += n;
                    self.handle_line(io, conn, line);
                }
                Frame::TooLong { consumed: n } => {
                    consumed += n;
                    self.stats.lines_too_long += 1;
                    let message = format!(
                        "! line too long (max {} bytes), dropped\n",
                        self.config.max_line
                    );
                    io.send(conn, message.as_bytes());
                }
                Frame::Skipped { consumed: n } => consumed += n,
                Frame::Incomplete => return consumed,
            }
        }
    }

    /// Runs the input held while a join waited; what is left (an
    /// unfinished line, or lines after another join that waits) stays.
    fn run_held(&mut self, io: &mut Io, conn: Token) {
        let Some(client) = self.client_mut(conn) else {
            return;
        };
        let mut held = std::mem::take(&mut client.held);
        let used = self.run_lines(io, conn, &held);
        if let Some(client) = self.client_mut(conn) {
            held.drain(..used.min(held.len()));
            client.held = held;
        }
    }

    fn client_closed(&mut self, io: &mut Io, conn: Token, reason: CloseReason) {
        let Some(client) = self.client(conn) else {
            return;
        };
        if client.quitting || client.nick.is_empty() {
            // Left its room and gave up its nick at `/quit`, or never had
            // one (gone before Redis gave it a guest nick).
            self.clients[conn.index()] = None;
            return;
        }
        let nick = client.nick.clone();
        let room = client.room.clone();
        let notice = match reason {
            CloseReason::OutputLimit | CloseReason::WriteTimeout => {
                self.stats.slow_disconnects += 1;
                format!("* {nick} was disconnected (not reading)\n")
            }
            _ => format!("* {nick} left #{room}\n"),
        };
        self.leave(io, conn, notice);
        self.hub.directory().release(&nick);
        if let Some(cluster) = &mut self.cluster {
            cluster.release(io, &nick);
        }
        self.clients[conn.index()] = None;
    }
}

/// The answer to `/rooms`.
fn rooms_line(rooms: &[(String, usize)]) -> String {
    let mut out = String::from("* rooms:");
    for (name, members) in rooms {
        let _ = write!(out, " #{name} ({members})");
    }
    out.push('\n');
    out
}
