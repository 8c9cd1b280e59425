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
            cluster.joined(io, room, &nick);
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
        // Acting on one may cause more (a fallback answered at once).
        loop {
            let mut events = std::mem::take(&mut self.events);
            if events.is_empty() {
                self.events = events;
                return;
            }
            for event in events.drain(..) {
                self.cluster_event(io, event);
            }
            if self.events.is_empty() {
                self.events = events;
            }
        }
    }

    fn cluster_event(&mut self, io: &mut Io, event: Event) {
        match event {
            Event::Message { room, line } => self.fan_out(io, &room, None, &line),
            Event::Subscribed(room) => self.confirm_waiting(io, Some(&room)),
            Event::SubscriberDown => self.confirm_waiting(io, None),
            Event::Guest {
                conn,
                nick,
                conflict,
            } => self.guest_answered(io, conn, nick, conflict),
            Event::Claimed { conn, nick, taken } => self.claim_answered(io, conn, nick, taken),
            Event::MsgSent {
                conn,
                to,
                text,
                delivered,
            } => {
                if self.client(conn).is_none() {
                    return;
                }
                if delivered == Some(true) {
                    io.send(conn, format!("-> *{to}* {text}\n").as_bytes());
                    self.stats.private_messages += 1;
                } else {
                    io.send(conn, format!("! no such nick: {to}\n").as_bytes());
                }
                self.answered(io, conn);
            }
            Event::Who { conn, room, nicks } => {
                if self.client(conn).is_none() {
                    return;
                }
                let nicks = nicks.unwrap_or_else(|| self.hub.directory().who(&room));
                let out = format!("* in #{room}: {}\n", nicks.join(" "));
                io.send(conn, out.as_bytes());
                self.answered(io, conn);
            }
            Event::Rooms { conn, rooms } => {
                if self.client(conn).is_none() {
                    return;
                }
                let rooms = rooms.unwrap_or_else(|| self.hub.directory().rooms());
                io.send(conn, rooms_line(&rooms).as_bytes());
                self.answered(io, conn);
            }
            Event::Private { to, line } => match self.find(&to) {
                Some(at)
                    if at.worker == self.worker
                        && self.client(at.token).is_some_and(|c| !c.quitting) =>
                {
                    io.send_shared(at.token, &line);
                }
                // Gone or quitting: dropped, as a local one would be.
                Some(at) if at.worker == self.worker => {}
                Some(at) => self.post(
                    at.worker,
                    Mail::Private {
                        to: at.token,
                        message: line,
                    },
                ),
                None => {}
            },
            Event::Lost { nick } => {
                if let Some(at) = self.find(&nick).filter(|at| at.worker == self.worker) {
                    self.ask_pause(io, at.token);
                    if let Some(cluster) = &mut self.cluster {
                        cluster.guest(io, at.token, Some(nick), &mut self.events);
                    }
                }
            }
        }
    }

    /// `conn` waits for an answer from Redis: its input is held.
    fn ask_pause(&mut self, io: &mut Io, conn: Token) {
        if let Some(client) = self.client_mut(conn) {
            client.asking = true;
            io.pause_reading(conn);
        }
    }

    /// Redis answered `conn`: its input runs again (unless a join waits).
    fn answered(&mut self, io: &mut Io, conn: Token) {
        let Some(client) = self.client_mut(conn) else {
            return;
        };
        client.asking = false;
        if client.waiting.is_none() {
            io.resume_reading(conn);
            self.run_held(io, conn);
        }
    }

    /// A guest nick for a new user (greeted and joined now), or for one
    /// whose nick `conflict` was lost to another node.
    fn guest_answered(
        &mut self,
        io: &mut Io,
        conn: Token,
        nick: Option<String>,
        conflict: Option<String>,
    ) {
        let at = Address {
            worker: self.worker,
            token: conn,
        };
        let current = self.client(conn).map(|c| c.nick.clone());
        let Some(cluster) = &mut self.cluster else {
            return;
        };
        if current.is_none() || (conflict.is_some() && current != conflict) {
            // Gone, or renamed away from the lost nick meanwhile.
            if let Some(nick) = nick {
                cluster.release(io, &nick);
            }
            if current.is_some() {
                self.answered(io, conn);
            }
            return;
        }
        let nick = match nick {
            Some(nick) => {
                if self.hub.directory().claim(&nick, at).is_err() {
                    // Claimed here while Redis was unreachable: another.
                    cluster.release(io, &nick);
                    cluster.guest(io, conn, conflict, &mut self.events);
                    return;
                }
                nick
            }
            None => {
                let nick = self.hub.directory().claim_guest(at);
                cluster.hold(&nick);
                nick
            }
        };
        let Some(client) = self.client_mut(conn) else {
            return;
        };
        let old = std::mem::replace(&mut client.nick, nick.clone());
        let room = client.room.clone();
        match conflict {
            None => self.welcome(io, conn),
            Some(_) => {
                self.hub.directory().rename_claimed(&old, &nick, &room);
                if let Some(cluster) = &mut self.cluster {
                    cluster.left(io, &room, &old);
                    cluster.joined(io, &room, &nick);
                }
                let why =
                    format!("! nick {old} was claimed on another node first; you are now {nick}\n");
                io.send(conn, why.as_bytes());
                let notice = format!("* {old} is now known as {nick}\n");
                self.broadcast(io, &room, None, &nick, notice);
            }
        }
        self.answered(io, conn);
    }

    /// Redis answered `/nick new` of `conn`.
    fn claim_answered(&mut self, io: &mut Io, conn: Token, new: String, taken: bool) {
        let Some(client) = self.client(conn) else {
            self.hub.directory().release(&new);
            if let (false, Some(cluster)) = (taken, &mut self.cluster) {
                cluster.release(io, &new);
            }
            return;
        };
        if taken {
            self.hub.directory().release(&new);
            io.send(conn, format!("! nick {new} is taken\n").as_bytes());
            return self.answered(io, conn);
        }
        let (old, room) = (client.nick.clone(), client.room.clone());
        self.hub.directory().rename_claimed(&old, &new, &room);
        if let Some(cluster) = &mut self.cluster {
            cluster.release(io, &old);
            cluster.left(io, &room, &old);
            cluster.joined(io, &room, &new);
        }
        if let Some(client) = self.client_mut(conn) {
            client.nick = new.clone();
        }
        let notice = format!("* {old} is now known as {new}\n");
        self.broadcast(io, &room, None, &new, notice);
        self.answered(io, conn);
    }

    /// Greets `conn` and joins it to the default room.
    fn welcome(&mut self, io: &mut Io, conn: Token) {
        let Some(client) = self.client(conn) else {
            return;
        };
        let greeting = format!(
            "* welcome to tenk chat, {}; /help lists the commands\n",
            client.nick
        );
        io.send(conn, greeting.as_bytes());
        let room = self.config.default_room.clone();
        self.join(io, conn, &room);
    }

    fn leave(&mut self, io: &mut Io, conn: Token, notice: String) {
        let Some(client) = self.client(conn) else {
            return;
        };
        let room = client.room.clone();
        let nick = client.nick.clone();
        self.hub.directory().leave(&room, &nick, self.worker);
        if let Some(cluster) = &mut self.cluster {
            cluster.left(io, &room, &nick);
        }
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
                if self.cluster.is_some() {
                    let at = Address {
                        worker: self.worker,
                        token: conn,
                    };
                    if self.hub.directory().claim(new, at).is_err() {
                        io.send(conn, format!("! nick {new} is taken\n").as_bytes());
                        return;
                    }
                    self.ask_pause(io, conn);
                    if let Some(cluster) = &mut self.cluster {
                        cluster.claim(io, conn, new, &mut self.events);
                    }
                    return self.cluster_events(io);
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
                if self.cluster.is_some() {
                    self.ask_pause(io, conn);
                    let default = self.config.default_room.clone();
                    if let Some(cluster) = &mut self.cluster {
                        cluster.rooms(io, conn, &default, &mut self.events);
                    }
                    return self.cluster_events(io);
                }
                let rooms = self.hub.directory().rooms();
                io.send(conn, rooms_line(&rooms).as_bytes());
            }
            Command::Who => {
                if let Some(cluster) = &mut self.cluster {
                    if let Some(client) = self.clients[conn.index()].as_mut() {
                        client.asking = true;
                        io.pause_reading(conn);
                    }
                    cluster.who(io, conn, &room, &mut self.events);
                    return self.cluster_events(io);
                }
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
                None if self.cluster.is_some() => {
                    // Not on this node: ask Redis to deliver it where the
                    // nick lives.
                    self.ask_pause(io, conn);
                    if let Some(cluster) = &mut self.cluster {
                        cluster.msg(io, conn, &nick, to, text, &mut self.events);
                    }
                    self.cluster_events(io);
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
                if let Some(cluster) = &mut self.cluster {
                    cluster.release(io, &nick);
                }
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
        if let Some(cluster) = &mut self.cluster {
            cluster.shutdown(io);
        }
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
