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
pub mod hub;
pub mod line;

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use reactor::{CloseReason, Handler, Io, TimerId, Token};

use crate::group::Group;
use crate::metrics::HistogramBoard;
use cluster::{Cluster, ClusterStats, Event, JOIN_WAIT, TIMER_JOIN_WAIT};
use command::Command;
use hub::{Address, Hub, Mail, Posted};
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

/// Bytes of messages from other workers delivered per pass: as much as a
/// local sender can say in one (the reactor's default read budget).
const MAIL_BUDGET: usize = 64 * 1024;

const HELP: &str = "* commands: /nick NAME, /join ROOM, /rooms, /who, /msg NICK text, /quit, /help; other lines go to the room\n";

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

    /// Sends `text`, from or about `nick`, to every member of `room`
    /// except `except`, encoded once and shared: this worker's members
    /// directly, the other workers' through their mailboxes, other nodes'
    /// through Redis.
    fn broadcast(
        &mut self,
        io: &mut Io,
        room: &str,
        except: Option<Token>,
        nick: &str,
        text: String,
    ) {
        let message: Arc<[u8]> = Arc::from(text.into_bytes());
        self.fan_out(io, room, except, &message);
        if let Some(cluster) = &mut self.cluster {
            cluster.publish(io, room, nick, &message);
        }
        let others = if self.hub.workers() > 1 {
            self.hub.directory().other_workers_in(room, self.worker)
        } else {
            Vec::new()
        };
        if !others.is_empty() {
            let room: Arc<str> = Arc::from(room);
            for worker in others {
                let mail = Mail::Room {
                    room: room.clone(),
                    message: message.clone(),
                    sent: io.now(),
                };
                self.post(worker, mail);
            }
        }
        self.record_fanout(io.now());
    }

    /// Queues `message` on this worker's members of `room`.
    fn fan_out(&mut self, io: &mut Io, room: &str, except: Option<Token>, message: &Arc<[u8]>) {
        let Some(members) = self.rooms.get(room) else {
            return;
        };
        for &member in members {
            if Some(member) != except {
                // A member cut by its output limit right here is not a
                // delivery.
                if io.send_shared(member, message) {
                    self.stats.deliveries += 1;
                }
            }
        }
    }

    /// Where `nick` lives (the directory's lock released before the
    /// answer is used).
    fn find(&self, nick: &str) -> Option<Address> {
        self.hub.directory().find(nick)
    }

    /// Hands `mail` to another worker, waking it if its mailbox was empty.
    fn post(&mut self, worker: usize, mail: Mail) {
        match self.hub.post(worker, mail) {
            Posted::First => {
                if let Some(group) = &self.group {
                    group.wake(worker);
                }
            }
            Posted::Queued => {}
            Posted::Dropped => self.stats.mail_dropped += 1,
        }
    }

    /// Delivers the mail other workers left for this one's clients, up to
    /// [`MAIL_BUDGET`] bytes of messages a pass; the rest waits for the
    /// next pass (this worker wakes itself), after the reactor has written
    /// what was queued. Without the budget a worker that fell behind would
    /// queue its whole backlog on every member at once and cut readers
    /// that keep up, by the output limit, for the sender's burst.
    fn deliver_mail(&mut self, io: &mut Io) {
        self.hub.take(self.worker, &mut self.taken);
        self.mails.extend(self.taken.drain(..));
        let mut budget = MAIL_BUDGET;
        while budget > 0 {
            let Some(mail) = self.mails.pop_front() else {
                return;
            };
            match mail {
                Mail::Room {
                    room,
                    message,
                    sent,
                } => {
                    budget = budget.saturating_sub(message.len());
                    self.fan_out(io, &room, None, &message);
                    self.record_fanout(sent);
                }
                Mail::Private { to, message } => {
                    budget = budget.saturating_sub(message.len());
                    // Gone or quitting since it was sent: dropped, as a
                    // message to a nick that just left.
                    if self.client(to).is_some_and(|c| !c.quitting) {
                        io.send_shared(to, &message);
                    }
                }
            }
        }
        if !self.mails.is_empty() {
            if let Some(group) = &self.group {
                group.wake(self.worker);
            }
        }
    }

    fn join(&mut self, io: &mut Io, conn: Token, room: &str) {
        let Some(client) = self.client(conn) else {
            return;
        };
        let nick = client.nick.clone();
        self.hub.directory().join(room, &nick, self.worker);
        self.rooms.entry(room.to_string()).or_default().push(conn);
        if let Some(client) = self.client_mut(conn) {
            client.room = room.to_string();
        }
        let mut wait = false;
        if let Some(cluster) = &mut self.cluster {
            if self.rooms.get(room).is_some_and(|m| m.len() == 1) {
                cluster.subscribe(io, room);
            }
            wait = cluster.pending(room);
        }
        if !wait {
            self.broadcast(io, room, None, &nick, format!("* {nick} joined #{room}\n"));
            return;
        }
        // Announced when the subscription is acknowledged (or given up
        // on); until then this user says nothing, so nothing they say
        // comes before their join.
        io.pause_reading(conn);
        if let Some(client) = self.client_mut(conn) {
            client.waiting = Some(io.now());
        }
        self.waiting.entry(room.to_string()).or_default().push(conn);
        if self.join_timer.is_none() {
            self.join_timer = Some(io.add_timer(JOIN_WAIT, TIMER_JOIN_WAIT));
        }
    }

    /// Announces the join of `conn`, if it still waits, and runs the input
    /// held meanwhile.
    fn confirm_join(&mut self, io: &mut Io, conn: Token) {
        let Some(client) = self.client_mut(conn) else {
            return;
        };
        if client.waiting.take().is_none() {
            return;
        }
        let (nick, room) = (client.nick.clone(), client.room.clone());
        self.broadcast(io, &room, None, &nick, format!("* {nick} joined #{room}\n"));
        io.resume_reading(conn);
        self.run_held(io, conn);
    }

    /// Confirms the joins waiting for `room` (every room: `None`).
    fn confirm_waiting(&mut self, io: &mut Io, room: Option<&str>) {
        let waiters: Vec<Token> = match room {
            Some(room) => self.waiting.remove(room).unwrap_or_default(),
            None => self.waiting.drain().flat_map(|(_, w)| w).collect(),
        };
        for conn in waiters {
            self.confirm_join(io, conn);
        }
    }

    /// The join-wait timer: joins waiting longer than [`JOIN_WAIT`] are
    /// confirmed anyway (Redis slow, or gone mid-connect).
    fn join_wait_expired(&mut self, io: &mut Io) {
        self.join_timer = None;
        let now = io.now();
        let mut due = Vec::new();
        let mut next: Option<Instant> = None;
        for waiters in self.waiting.values_mut() {
            waiters.retain(|&conn| {
                let since = self
                    .clients
                    .get(conn.index())
                    .and_then(Option::as_ref)
                    .filter(|c| c.token == conn)
                    .and_then(|c| c.waiting);
                match since {
                    Some(since) if now.duration_since(since) >= JOIN_WAIT => {
                        due.push(conn);
                        false
                    }
                    Some(since) => {
                        next = Some(next.map_or(since, |n| n.min(since)));
                        true
                    }
                    None => false,
                }
            });
        }
        self.waiting.retain(|_, w| !w.is_empty());
        if !due.is_empty() {
            tracing::warn!(
                "redis: {} joins confirmed without a subscription after {JOIN_WAIT:?}",
                due.len()
            );
        }
        for conn in due {
            self.confirm_join(io, conn);
        }
        if let Some(since) = next {
            let left = (since + JOIN_WAIT).saturating_duration_since(now);
            self.join_timer = Some(io.add_timer(left, TIMER_JOIN_WAIT));
        }
    }

    /// Acts on what the cluster reported.
    fn cluster_events(&mut self, io: &mut Io) {
        let mut events = std::mem::take(&mut self.events);
        for event in events.drain(..) {
            match event {
                Event::Message { room, line } => self.fan_out(io, &room, None, &line),
                Event::Subscribed(room) => self.confirm_waiting(io, Some(&room)),
                Event::SubscriberDown => self.confirm_waiting(io, None),
            }
        }
        self.events = events;
    }

    fn leave(&mut self, io: &mut Io, conn: Token, notice: String) {
        let Some(client) = self.client(conn) else {
            return;
        };
        let room = client.room.clone();
        let nick = client.nick.clone();
        self.hub.directory().leave(&room, &nick, self.worker);
        if let Some(members) = self.rooms.get_mut(&room) {
            members.retain(|&m| m != conn);
            if members.is_empty() {
                self.rooms.remove(&room);
                if let Some(cluster) = &mut self.cluster {
                    cluster.unsubscribe(io, &room);
                }
            }
        }
        self.broadcast(io, &room, None, &nick, notice);
    }

    fn handle_line(&mut self, io: &mut Io, conn: Token, line: &[u8]) {
        let text = line::sanitize(line);
        let Some(client) = self.client(conn) else {
            return;
        };
        let nick = client.nick.clone();
        let room = client.room.clone();
        match command::parse(&text) {
            Command::Say("") => {}
            Command::Say(said) => {
                self.stats.messages += 1;
                self.broadcast(io, &room, Some(conn), &nick, format!("<{nick}> {said}\n"));
            }
            Command::Nick(new) => {
                if new == nick {
                    return;
                }
                let renamed = self.hub.directory().rename(&nick, new, &room);
                if renamed.is_err() {
                    io.send(conn, format!("! nick {new} is taken\n").as_bytes());
                    return;
                }
                if let Some(client) = self.client_mut(conn) {
                    client.nick = new.to_string();
                }
                let notice = format!("* {nick} is now known as {new}\n");
                self.broadcast(io, &room, None, new, notice);
            }
            Command::Join(target) => {
                if target == room {
                    io.send(conn, format!("! already in #{room}\n").as_bytes());
                    return;
                }
                self.leave(io, conn, format!("* {nick} left #{room}\n"));
                self.join(io, conn, target);
            }
            Command::Rooms => {
                let rooms = self.hub.directory().rooms();
                let mut out = String::from("* rooms:");
                for (name, members) in rooms {
                    let _ = write!(out, " #{name} ({members})");
                }
                out.push('\n');
                io.send(conn, out.as_bytes());
            }
            Command::Who => {
                let nicks = self.hub.directory().who(&room);
                io.send(
                    conn,
                    format!("* in #{room}: {}\n", nicks.join(" ")).as_bytes(),
                );
            }
            Command::Msg { to, text } => match self.find(to) {
                Some(target) => {
                    let message = format!("*{nick}* {text}\n");
                    if target.worker == self.worker {
                        io.send(target.token, message.as_bytes());
                    } else {
                        let message = Arc::from(message.into_bytes());
                        let mail = Mail::Private {
                            to: target.token,
                            message,
                        };
                        self.post(target.worker, mail);
                    }
                    io.send(conn, format!("-> *{to}* {text}\n").as_bytes());
                    self.stats.private_messages += 1;
                }
                None => {
                    io.send(conn, format!("! no such nick: {to}\n").as_bytes());
                }
            },
            Command::Quit => {
                // Leave now, not when the connection is gone: until then
                // (a slow reader's backlog can take a while to flush)
                // nothing said in the room or to the nick may be queued
                // behind `* bye`.
                self.leave(io, conn, format!("* {nick} left #{room}\n"));
                self.hub.directory().release(&nick);
                if let Some(client) = self.client_mut(conn) {
                    client.quitting = true;
                }
                io.send(conn, b"* bye\n");
                io.close_when_flushed(conn);
            }
            Command::Help => {
                io.send(conn, HELP.as_bytes());
            }
            Command::Invalid(why) => {
                io.send(conn, format!("! {why}\n").as_bytes());
            }
        }
    }
}

impl Handler for Chat {
    fn on_accept(&mut self, io: &mut Io, _listener: Token, conn: Token) {
        let address = Address {
            worker: self.worker,
            token: conn,
        };
        let nick = self.hub.directory().claim_guest(address);
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
        });
        if let Some(cluster) = &mut self.cluster {
            cluster.start(io);
        }
        io.send(
            conn,
            format!("* welcome to tenk chat, {nick}; /help lists the commands\n").as_bytes(),
        );
        let room = self.config.default_room.clone();
        self.join(io, conn, &room);
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
        if client.waiting.is_some() || !client.held.is_empty() {
            client.held.extend_from_slice(data);
            if client.waiting.is_none() {
                self.run_held(io, conn);
            }
            return data.len();
        }
        let used = self.run_lines(io, conn, data);
        match self.client_mut(conn) {
            // A join that waits stopped the lines: keep the rest for when
            // it is confirmed.
            Some(client) if client.waiting.is_some() => {
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
            if client.waiting.is_some() {
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
        if client.quitting {
            // Left its room and gave up its nick at `/quit`.
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
        self.clients[conn.index()] = None;
    }
}
