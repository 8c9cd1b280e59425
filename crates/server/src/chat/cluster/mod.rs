//! Rooms across nodes through Redis pub/sub (`tenk serve chat --redis`;
//! the design and its choices are in docs/chat-cluster.md).
//!
//! Each worker keeps two connections to Redis on its own reactor: a
//! publisher, which carries this worker's room messages in the order
//! they were said (so per-sender order holds end to end: a sender lives
//! on one worker), and a subscriber, subscribed to the rooms this worker
//! has members in. A message from another node reaches every worker with
//! members in its room once, and each fans it out to its own members; a
//! node's own messages come back to its other workers and are dropped
//! there by origin (the hub's mailboxes delivered them already).

pub mod board;
pub mod link;
pub mod metrics;
pub mod payload;
pub mod registry;
pub mod resp;
pub mod stats;
pub mod url;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reactor::{CloseReason, Io, Token};

use crate::serve::{Notice, Notify};
pub use board::ClusterBoard;
use link::{Link, State};
use resp::{Reply, Value};
pub use stats::ClusterStats;
pub use url::RedisUrl;

/// Pending output of the publisher beyond which messages are dropped
/// (and counted as lost) rather than queued: Redis is not keeping up, and
/// a backlog only makes what is delivered later more stale. Below the
/// reactor's own output limits, so the connection is not cut for it.
pub const PUBLISH_BACKLOG: usize = 4 * 1024 * 1024;

/// Longest a join waits for its room's SUBSCRIBE to be acknowledged
/// before it is confirmed anyway (Redis slow or unreachable mid-connect).
pub const JOIN_WAIT: Duration = Duration::from_secs(2);

/// Bytes a message frame from Redis adds to the longest chat line:
/// payload header, channel, RESP framing. (The reactor's input limit must
/// hold a whole frame.)
pub const FRAME_OVERHEAD: usize = 1024;

const CHANNEL_PREFIX: &str = "tenk:room:";

const TIMER_PUBLISHER: u64 = 1;
const TIMER_SUBSCRIBER: u64 = 2;
/// Once a second: the `--stats` line, the figures on the board.
const TIMER_STATS: u64 = 3;
const TIMER_REFRESH: u64 = 5;
/// The chat's own join-wait timer (see [`Cluster::on_timer`]).
pub const TIMER_JOIN_WAIT: u64 = 4;

/// What every worker of a node shares.
#[derive(Debug)]
pub struct ClusterConfig {
    pub url: RedisUrl,
    /// `url`'s host, resolved once at start.
    pub addr: SocketAddr,
    /// This node's id in every payload (no spaces).
    pub node: String,
    /// This run of the node (`NODE/START_MICROS`), in its Redis entries.
    pub instance: String,
    /// Lifetime of nick claims and of the liveness key, refreshed every
    /// third of it.
    pub ttl: Duration,
    /// Print a line of Redis figures every second (`--stats`).
    pub stats: bool,
}

/// What the chat must do after a Redis event.
#[derive(Debug)]
pub enum Event {
    /// A message from another node for this worker's members of `room`.
    Message { room: String, line: Arc<[u8]> },
    /// Every SUBSCRIBE of `room` was acknowledged: its joiners may be
    /// confirmed.
    Subscribed(String),
    /// The subscriber is gone: confirm every waiting joiner locally.
    SubscriberDown,
    /// A guest nick for `conn` (`None`: Redis could not give one, take a
    /// local one); `conflict` is the nick it replaces, lost to another
    /// node.
    Guest {
        conn: Token,
        nick: Option<String>,
        conflict: Option<String>,
    },
    /// `/nick` of `conn` answered: `taken` on another node, or not (then
    /// claimed in Redis, or locally while Redis is unreachable).
    Claimed {
        conn: Token,
        nick: String,
        taken: bool,
    },
    /// `/msg` of `conn` answered: `Some(true)` delivered to the nick's
    /// worker, `Some(false)` no such nick, `None` Redis unreachable.
    MsgSent {
        conn: Token,
        to: String,
        text: String,
        delivered: Option<bool>,
    },
    /// `/who` of `conn` answered (`None`: Redis unreachable, answer
    /// locally).
    Who {
        conn: Token,
        room: String,
        nicks: Option<Vec<String>>,
    },
    /// `/rooms` of `conn` answered (`None`: as above).
    Rooms {
        conn: Token,
        rooms: Option<Vec<(String, usize)>>,
    },
    /// A private message from another node for this worker's `to`.
    Private { to: String, line: Arc<[u8]> },
    /// `nick`, claimed here while Redis was unreachable, was claimed in
    /// Redis by another node first: it is theirs.
    Lost { nick: String },
}

/// What a reply on the publisher answers; replies come in the order the
/// commands were sent.
#[derive(Debug)]
enum Ask {
    /// A reply nobody waits for (PUBLISH, AUTH, memberships, releases).
    Ignore,
    Guest {
        conn: Token,
        conflict: Option<String>,
    },
    Claim {
        conn: Token,
        nick: String,
    },
    Msg {
        conn: Token,
        to: String,
        text: String,
    },
    Who {
        conn: Token,
        room: String,
    },
    Rooms {
        conn: Token,
        default: String,
    },
    Refresh,
}

/// One worker's side of Redis.
pub struct Cluster {
    config: Arc<ClusterConfig>,
    worker: usize,
    notify: Option<Notify>,
    publisher: Link,
    subscriber: Link,
    /// Rooms this worker has members in: its subscriptions.
    rooms: HashSet<String>,
    /// SUBSCRIBEs sent and not yet acknowledged, per room.
    in_flight: HashMap<String, usize>,
    started: bool,
    /// The subscriber's first connect was started: it waits for the
    /// publisher's first (see [`Cluster::start`]).
    subscriber_started: bool,
    /// Losses were logged since the last message published.
    loss_logged: bool,
    lost_at_log: u64,
    stats: ClusterStats,
    last_line: ClusterStats,
    /// Where the figures go once a second (`--metrics`).
    board: Option<Arc<ClusterBoard>>,
    /// This worker's nick claims (`INSTANCE/WORKER`), the value of its
    /// nick keys and the name of its private channel.
    owner: String,
    /// Nicks this worker's users hold, claimed in Redis or (Redis
    /// unreachable) locally: refreshed, and re-claimed after an outage.
    owned: HashSet<String>,
    /// The room of each of this worker's users, re-asserted after an
    /// outage.
    memberships: HashMap<String, String>,
    /// What each reply on the publisher answers, oldest first.
    asks: VecDeque<Ask>,
    /// Commands asked while the publisher connects, sent once it is up.
    early: Vec<(Arc<[u8]>, Ask)>,
    /// A graceful shutdown freed this worker's nicks: ask nothing more.
    shut: bool,
}

/// Microseconds since the Unix epoch.
fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

fn channel(room: &str) -> Vec<u8> {
    format!("{CHANNEL_PREFIX}{room}").into_bytes()
}

impl Cluster {
    pub fn new(config: Arc<ClusterConfig>, worker: usize, notify: Option<Notify>) -> Cluster {
        let addr = config.addr;
        Cluster {
            worker,
            notify,
            publisher: Link::new("publisher", addr, TIMER_PUBLISHER),
            subscriber: Link::new("subscriber", addr, TIMER_SUBSCRIBER),
            rooms: HashSet::new(),
            in_flight: HashMap::new(),
            started: false,
            subscriber_started: false,
            loss_logged: false,
            lost_at_log: 0,
            stats: ClusterStats::default(),
            last_line: ClusterStats::default(),
            board: None,
            owner: format!("{}/{worker}", config.instance),
            owned: HashSet::new(),
            memberships: HashMap::new(),
            asks: VecDeque::new(),
            early: Vec::new(),
            shut: false,
            config,
        }
    }

    /// Connects the links, once (on the first callback on the reactor
    /// thread: the handler is built before its reactor runs). The
    /// subscriber starts when the publisher's first connect has ended,
    /// either way, and joins wait until then: so a join confirmed by
    /// Redis also means this worker's messages reach Redis.
    pub fn start(&mut self, io: &mut Io) {
        if self.started {
            return;
        }
        self.started = true;
        self.publisher.connect(io);
        if self.publisher.token().is_none() {
            self.start_subscriber(io);
        }
        if self.printing() || self.board.is_some() {
            io.add_timer(Duration::from_secs(1), TIMER_STATS);
        }
        io.add_timer(self.config.ttl / 3, TIMER_REFRESH);
    }

    /// Publishes this worker's figures on `board` once a second.
    pub fn with_board(mut self, board: Option<Arc<ClusterBoard>>) -> Cluster {
        self.board = board;
        self
    }

    fn printing(&self) -> bool {
        self.config.stats && self.notify.is_some()
    }

    /// The figures so far.
    pub fn stats(&self) -> ClusterStats {
        let up = self.publisher.up().is_some() && self.subscriber.up().is_some();
        let mut stats = self.stats;
        stats.up = u64::from(up);
        stats
    }

    /// Whether `conn` is one of the Redis connections.
    pub fn owns(&self, conn: Token) -> bool {
        self.publisher.token() == Some(conn) || self.subscriber.token() == Some(conn)
    }

    /// Publishes `line`, from or about `nick`, to `room`'s other nodes.
    pub fn publish(&mut self, io: &mut Io, room: &str, nick: &str, line: &[u8]) {
        let Some(token) = self.publisher.up() else {
            return self.lose(false);
        };
        if io.pending_output(token) > PUBLISH_BACKLOG {
            return self.lose(true);
        }
        let payload = payload::encode(&self.config.node, now_micros(), nick, line);
        let command = resp::command(&[b"PUBLISH", &channel(room), &payload]);
        // Shared sends go out at the end of the pass, every PUBLISH of the
        // pass in one write: pipelined.
        if io.send_shared(token, &command) {
            self.asks.push_back(Ask::Ignore);
            self.stats.published += 1;
            if self.loss_logged {
                self.loss_logged = false;
                tracing::info!(
                    "redis: publishing again (worker {}); {} messages lost meanwhile",
                    self.worker,
                    self.stats.lost - self.lost_at_log
                );
            }
        } else {
            self.lose(false);
        }
    }

    fn lose(&mut self, backlog: bool) {
        self.stats.lost += 1;
        if backlog {
            self.stats.lost_backlog += 1;
        }
        if !self.loss_logged {
            self.loss_logged = true;
            self.lost_at_log = self.stats.lost - 1;
            let why = if backlog {
                "Redis is not taking what is published (backlog over 4 MiB)"
            } else {
                "no connection to Redis"
            };
            tracing::warn!(
                "redis: room messages are not reaching other nodes ({why}); counting them as lost (worker {})",
                self.worker
            );
        }
    }

    /// This worker has its first member in `room`: subscribe.
    pub fn subscribe(&mut self, io: &mut Io, room: &str) {
        if !self.rooms.insert(room.to_string()) {
            return;
        }
        if let Some(token) = self.subscriber.up() {
            io.send_shared(token, &resp::command(&[b"SUBSCRIBE", &channel(room)]));
            *self.in_flight.entry(room.to_string()).or_default() += 1;
        }
    }

    /// This worker's last member left `room`: unsubscribe.
    pub fn unsubscribe(&mut self, io: &mut Io, room: &str) {
        if !self.rooms.remove(room) {
            return;
        }
        if let Some(token) = self.subscriber.up() {
            io.send_shared(token, &resp::command(&[b"UNSUBSCRIBE", &channel(room)]));
        }
    }

    fn start_subscriber(&mut self, io: &mut Io) {
        if !self.subscriber_started {
            self.subscriber_started = true;
            self.subscriber.connect(io);
        }
    }

    /// Whether a join to `room` must wait: its SUBSCRIBE is in flight, or
    /// the subscriber is connecting (or yet to) and will send it when up.
    pub fn pending(&self, room: &str) -> bool {
        let connecting = matches!(self.subscriber.state, State::Connecting(_))
            || (self.started && !self.subscriber_started);
        self.in_flight.get(room).is_some_and(|&n| n > 0)
            || (connecting && self.rooms.contains(room))
    }

    pub fn on_connect(&mut self, io: &mut Io, conn: Token) {
        if let Some(again) = self.publisher.connected(conn) {
            self.stats.reconnects += u64::from(again);
            self.hello(io, conn, true);
            self.reassert(io, conn);
            for (command, ask) in std::mem::take(&mut self.early) {
                io.send_shared(conn, &command);
                self.asks.push_back(ask);
            }
            self.start_subscriber(io);
        } else if let Some(again) = self.subscriber.connected(conn) {
            self.stats.reconnects += u64::from(again);
            self.hello(io, conn, false);
            {
                let mut channels: Vec<Vec<u8>> = self.rooms.iter().map(|r| channel(r)).collect();
                channels.push(registry::private_channel(&self.owner));
                let mut args: Vec<&[u8]> = vec![b"SUBSCRIBE"];
                args.extend(channels.iter().map(Vec::as_slice));
                io.send_shared(conn, &resp::command(&args));
                for room in &self.rooms {
                    *self.in_flight.entry(room.clone()).or_default() += 1;
                }
            }
        }
    }

    /// AUTH and (on the publisher) SELECT, pipelined before anything else.
    fn hello(&mut self, io: &mut Io, conn: Token, select: bool) {
        if let Some(password) = &self.config.url.password {
            io.send_shared(conn, &resp::command(&[b"AUTH", password.as_bytes()]));
            if select {
                self.asks.push_back(Ask::Ignore);
            }
        }
        if let (true, Some(db)) = (select, self.config.url.db) {
            io.send_shared(
                conn,
                &resp::command(&[b"SELECT", db.to_string().as_bytes()]),
            );
            self.asks.push_back(Ask::Ignore);
        }
    }

    /// After a (re)connect of the publisher: this node is alive, its
    /// users' nicks are claimed again (a Redis restarted empty forgot
    /// them; one another node took meanwhile is lost, see [`Event::Lost`],
    /// reported by the reply) and their memberships restored.
    fn reassert(&mut self, io: &mut Io, conn: Token) {
        self.keep_alive(io, conn);
        let mut rooms: HashMap<&str, Vec<Vec<u8>>> = HashMap::new();
        for (nick, room) in &self.memberships {
            rooms
                .entry(room)
                .or_default()
                .push(registry::member(&self.config.instance, nick));
        }
        for (room, members) in rooms {
            let key = registry::members_key(room);
            let mut args: Vec<&[u8]> = vec![b"SADD", &key];
            args.extend(members.iter().map(Vec::as_slice));
            io.send_shared(conn, &resp::command(&args));
            io.send_shared(
                conn,
                &resp::command(&[b"SADD", registry::ROOMS_KEY, room.as_bytes()]),
            );
            self.asks.push_back(Ask::Ignore);
            self.asks.push_back(Ask::Ignore);
        }
    }

    /// The liveness key, and a refresh of every claim of this worker,
    /// pipelined in one write.
    fn keep_alive(&mut self, io: &mut Io, conn: Token) {
        let ttl = self.config.ttl.as_millis().to_string();
        let alive = registry::alive_key(&self.config.instance);
        io.send_shared(
            conn,
            &resp::command(&[b"SET", &alive, b"1", b"PX", ttl.as_bytes()]),
        );
        self.asks.push_back(Ask::Ignore);
        if self.owned.is_empty() {
            return;
        }
        let keys: Vec<Vec<u8>> = self.owned.iter().map(|n| registry::nick_key(n)).collect();
        let count = keys.len().to_string();
        let mut args: Vec<&[u8]> = vec![b"EVAL", registry::REFRESH, count.as_bytes()];
        args.extend(keys.iter().map(Vec::as_slice));
        args.push(self.owner.as_bytes());
        args.push(ttl.as_bytes());
        io.send_shared(conn, &resp::command(&args));
        self.asks.push_back(Ask::Refresh);
    }

    /// Sends `command` on the publisher, its reply to answer `ask`; queued
    /// while the publisher connects. Without a publisher (or after the
    /// shutdown freed everything), `ask` is answered at once as Redis
    /// unreachable.
    fn ask(&mut self, io: &mut Io, command: Arc<[u8]>, ask: Ask, events: &mut Vec<Event>) {
        if self.shut {
            return self.unanswered(ask, events);
        }
        match self.publisher.state {
            State::Up(token) if io.send_shared(token, &command) => self.asks.push_back(ask),
            State::Connecting(_) => self.early.push((command, ask)),
            _ if !self.started => self.early.push((command, ask)),
            _ => self.unanswered(ask, events),
        }
    }

    /// A command whose reply nobody waits for; dropped without a
    /// publisher (what it sets is re-asserted on the next connect).
    fn tell(&mut self, io: &mut Io, command: &Arc<[u8]>) {
        if self.shut {
            return;
        }
        if let Some(token) = self.publisher.up() {
            if io.send_shared(token, command) {
                self.asks.push_back(Ask::Ignore);
            }
        }
    }

    /// `ask` gets no reply from Redis: its fallback.
    fn unanswered(&mut self, ask: Ask, events: &mut Vec<Event>) {
        events.push(match ask {
            Ask::Ignore | Ask::Refresh => return,
            Ask::Guest { conn, conflict } => Event::Guest {
                conn,
                nick: None,
                conflict,
            },
            Ask::Claim { conn, nick } => {
                // Claimed locally; the next connect claims it in Redis.
                self.owned.insert(nick.clone());
                Event::Claimed {
                    conn,
                    nick,
                    taken: false,
                }
            }
            Ask::Msg { conn, to, text } => Event::MsgSent {
                conn,
                to,
                text,
                delivered: None,
            },
            Ask::Who { conn, room } => Event::Who {
                conn,
                room,
                nicks: None,
            },
            Ask::Rooms { conn, .. } => Event::Rooms { conn, rooms: None },
        });
    }

    /// Every question in flight on a publisher that is gone.
    fn publisher_down(&mut self, events: &mut Vec<Event>) {
        let asks: Vec<Ask> = self.asks.drain(..).collect();
        for ask in asks {
            self.unanswered(ask, events);
        }
    }

    /// A guest nick for `conn` (replacing `conflict`, lost to another
    /// node), answered by [`Event::Guest`].
    pub fn guest(
        &mut self,
        io: &mut Io,
        conn: Token,
        conflict: Option<String>,
        events: &mut Vec<Event>,
    ) {
        let ttl = self.config.ttl.as_millis().to_string();
        let command = resp::command(&[
            b"EVAL",
            registry::GUEST,
            b"0",
            self.owner.as_bytes(),
            ttl.as_bytes(),
        ]);
        self.ask(io, command, Ask::Guest { conn, conflict }, events);
    }

    /// Claims `nick` for `conn` (`SET NX`), answered by [`Event::Claimed`].
    pub fn claim(&mut self, io: &mut Io, conn: Token, nick: &str, events: &mut Vec<Event>) {
        let ttl = self.config.ttl.as_millis().to_string();
        let key = registry::nick_key(nick);
        let command = resp::command(&[
            b"SET",
            &key,
            self.owner.as_bytes(),
            b"NX",
            b"PX",
            ttl.as_bytes(),
        ]);
        let ask = Ask::Claim {
            conn,
            nick: nick.to_string(),
        };
        self.ask(io, command, ask, events);
    }

    /// A nick this worker holds (claimed locally, or answered by Redis).
    pub fn hold(&mut self, nick: &str) {
        self.owned.insert(nick.to_string());
    }

    /// Frees `nick` in Redis if the claim is still this worker's.
    pub fn release(&mut self, io: &mut Io, nick: &str) {
        if !self.owned.remove(nick) {
            return;
        }
        let key = registry::nick_key(nick);
        self.tell(
            io,
            &resp::command(&[
                b"EVAL",
                registry::RELEASE,
                b"1",
                &key,
                self.owner.as_bytes(),
            ]),
        );
    }

    /// `nick` entered `room`: a member for the whole cluster.
    pub fn joined(&mut self, io: &mut Io, room: &str, nick: &str) {
        self.memberships.insert(nick.to_string(), room.to_string());
        let key = registry::members_key(room);
        let entry = registry::member(&self.config.instance, nick);
        self.tell(io, &resp::command(&[b"SADD", &key, &entry]));
        self.tell(
            io,
            &resp::command(&[b"SADD", registry::ROOMS_KEY, room.as_bytes()]),
        );
    }

    /// `nick` left `room`.
    pub fn left(&mut self, io: &mut Io, room: &str, nick: &str) {
        if self.memberships.get(nick).is_some_and(|r| r == room) {
            self.memberships.remove(nick);
        }
        let key = registry::members_key(room);
        let entry = registry::member(&self.config.instance, nick);
        self.tell(io, &resp::command(&[b"SREM", &key, &entry]));
    }

    /// Sends `/msg` text to `to` on whichever node holds the nick,
    /// answered by [`Event::MsgSent`].
    pub fn msg(
        &mut self,
        io: &mut Io,
        conn: Token,
        from: &str,
        to: &str,
        text: &str,
        events: &mut Vec<Event>,
    ) {
        let line = format!("*{from}* {text}\n");
        let payload = payload::encode(&self.config.node, now_micros(), to, line.as_bytes());
        let key = registry::nick_key(to);
        let command = resp::command(&[b"EVAL", registry::MSG, b"1", &key, &payload]);
        let ask = Ask::Msg {
            conn,
            to: to.to_string(),
            text: text.to_string(),
        };
        self.ask(io, command, ask, events);
    }

    /// `/who` for `room` across the cluster, answered by [`Event::Who`].
    pub fn who(&mut self, io: &mut Io, conn: Token, room: &str, events: &mut Vec<Event>) {
        let key = registry::members_key(room);
        let command = resp::command(&[b"EVAL", &registry::who_script(), b"1", &key]);
        let ask = Ask::Who {
            conn,
            room: room.to_string(),
        };
        self.ask(io, command, ask, events);
    }

    /// `/rooms` across the cluster, answered by [`Event::Rooms`].
    pub fn rooms(&mut self, io: &mut Io, conn: Token, default: &str, events: &mut Vec<Event>) {
        let command =
            resp::command(&[b"EVAL", &registry::rooms_script(), b"0", default.as_bytes()]);
        let ask = Ask::Rooms {
            conn,
            default: default.to_string(),
        };
        self.ask(io, command, ask, events);
    }

    /// A graceful shutdown starts: this worker's nicks are freed at once
    /// (compare-and-delete), its members leave their rooms and the node
    /// is no longer alive; the drain flushes it before the link closes.
    pub fn shutdown(&mut self, io: &mut Io) {
        if self.shut {
            return;
        }
        if let Some(conn) = self.publisher.up() {
            if !self.owned.is_empty() {
                let keys: Vec<Vec<u8>> = self.owned.iter().map(|n| registry::nick_key(n)).collect();
                let count = keys.len().to_string();
                let mut args: Vec<&[u8]> = vec![b"EVAL", registry::RELEASE, count.as_bytes()];
                args.extend(keys.iter().map(Vec::as_slice));
                args.push(self.owner.as_bytes());
                io.send_shared(conn, &resp::command(&args));
            }
            for (nick, room) in &self.memberships {
                let key = registry::members_key(room);
                let entry = registry::member(&self.config.instance, nick);
                io.send_shared(conn, &resp::command(&[b"SREM", &key, &entry]));
            }
            let alive = registry::alive_key(&self.config.instance);
            io.send_shared(conn, &resp::command(&[b"DEL", &alive]));
        }
        self.owned.clear();
        self.memberships.clear();
        self.shut = true;
    }

    /// Replies from Redis; returns the bytes consumed.
    pub fn on_data(
        &mut self,
        io: &mut Io,
        conn: Token,
        data: &[u8],
        events: &mut Vec<Event>,
    ) -> usize {
        let subscriber = self.subscriber.token() == Some(conn);
        if !subscriber {
            return self.publisher_data(io, conn, data, events);
        }
        let mut used = 0;
        while used < data.len() {
            let (reply, n) = match resp::next_reply(&data[used..]) {
                Ok(Some(found)) => found,
                Ok(None) => break,
                Err(e) => {
                    self.refuse(io, conn, &format!("not RESP: {e}"), events);
                    return data.len();
                }
            };
            used += n;
            match reply {
                Reply::Fine | Reply::Other | Reply::Unsubscribed(_) => {}
                Reply::Error(e) => {
                    let why = format!("Redis said {e:?}");
                    self.refuse(io, conn, &why, events);
                    return data.len();
                }
                Reply::Subscribed(channel) if subscriber => {
                    let Some(room) = room_of(channel) else {
                        continue;
                    };
                    if let Some(n) = self.in_flight.get_mut(room) {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            self.in_flight.remove(room);
                            events.push(Event::Subscribed(room.to_string()));
                        }
                    }
                }
                Reply::Message { channel, payload } if subscriber => {
                    self.message(channel, payload, events);
                }
                Reply::Subscribed(_) | Reply::Message { .. } => {}
            }
        }
        used
    }

    /// Replies on the publisher, each answering the oldest ask.
    fn publisher_data(
        &mut self,
        io: &mut Io,
        conn: Token,
        data: &[u8],
        events: &mut Vec<Event>,
    ) -> usize {
        let mut used = 0;
        while used < data.len() {
            let (value, n) = match resp::next_value(&data[used..]) {
                Ok(Some(found)) => found,
                Ok(None) => break,
                Err(e) => {
                    self.refuse(io, conn, &format!("not RESP: {e}"), events);
                    return data.len();
                }
            };
            used += n;
            if let Value::Error(e) = value {
                let why = format!("Redis said {e:?}");
                self.refuse(io, conn, &why, events);
                return data.len();
            }
            let Some(ask) = self.asks.pop_front() else {
                continue;
            };
            self.answer(ask, value, events);
        }
        used
    }

    fn answer(&mut self, ask: Ask, value: Value<'_>, events: &mut Vec<Event>) {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        events.push(match ask {
            Ask::Ignore => return,
            Ask::Refresh => {
                if let Value::Strings(lost) = value {
                    for key in lost {
                        if let Some(nick) = registry::nick_of(key) {
                            if self.owned.remove(nick) {
                                tracing::warn!(
                                    "redis: nick {nick} was claimed on another node while Redis was unreachable; the earlier claim in Redis wins"
                                );
                                events.push(Event::Lost {
                                    nick: nick.to_string(),
                                });
                            }
                        }
                    }
                }
                return;
            }
            Ask::Guest { conn, conflict } => {
                let nick = match value {
                    Value::Bulk(nick) => Some(text(nick)),
                    _ => None,
                };
                if let Some(nick) = &nick {
                    self.owned.insert(nick.clone());
                }
                Event::Guest {
                    conn,
                    nick,
                    conflict,
                }
            }
            Ask::Claim { conn, nick } => {
                let taken = value == Value::Nil;
                if !taken {
                    self.owned.insert(nick.clone());
                }
                Event::Claimed { conn, nick, taken }
            }
            Ask::Msg { conn, to, text } => Event::MsgSent {
                conn,
                to,
                text,
                delivered: Some(matches!(value, Value::Int(n) if n > 0)),
            },
            Ask::Who { conn, room } => {
                let nicks = match value {
                    Value::Strings(nicks) => {
                        let mut nicks: Vec<String> = nicks.into_iter().map(text).collect();
                        nicks.sort();
                        nicks.dedup();
                        nicks
                    }
                    _ => Vec::new(),
                };
                Event::Who {
                    conn,
                    room,
                    nicks: Some(nicks),
                }
            }
            Ask::Rooms { conn, default } => {
                let flat = match &value {
                    Value::Strings(flat) => flat.as_slice(),
                    _ => &[],
                };
                Event::Rooms {
                    conn,
                    rooms: Some(registry::parse_rooms(flat, &default)),
                }
            }
        });
    }

    fn message(&mut self, channel: &[u8], payload: &[u8], events: &mut Vec<Event>) {
        if channel == registry::private_channel(&self.owner).as_slice() {
            if let Some(p) = payload::decode(payload) {
                self.stats.received += 1;
                self.stats
                    .record_latency(now_micros().saturating_sub(p.micros));
                events.push(Event::Private {
                    to: p.nick.to_string(),
                    line: Arc::from(p.line),
                });
            }
            return;
        }
        let (Some(room), Some(p)) = (room_of(channel), payload::decode(payload)) else {
            return;
        };
        // Our own, back from Redis: the hub delivered it on this node.
        if p.node == self.config.node || !self.rooms.contains(room) {
            return;
        }
        self.stats.received += 1;
        self.stats
            .record_latency(now_micros().saturating_sub(p.micros));
        events.push(Event::Message {
            room: room.to_string(),
            line: Arc::from(p.line),
        });
    }

    fn refuse(&mut self, io: &mut Io, conn: Token, why: &str, events: &mut Vec<Event>) {
        if self.publisher.token() == Some(conn) {
            self.publisher.refused(io, why);
            self.publisher_down(events);
        } else {
            self.subscriber.refused(io, why);
            self.subscriber_down(events);
        }
    }

    fn subscriber_down(&mut self, events: &mut Vec<Event>) {
        self.in_flight.clear();
        events.push(Event::SubscriberDown);
    }

    /// A connection closed; `true` if it was a Redis one.
    pub fn on_close(
        &mut self,
        io: &mut Io,
        conn: Token,
        reason: CloseReason,
        events: &mut Vec<Event>,
    ) -> bool {
        if self.publisher.token() == Some(conn) {
            self.publisher.lost(io, reason);
            self.publisher_down(events);
            if !matches!(self.publisher.state, State::Connecting(_)) {
                for (_, ask) in std::mem::take(&mut self.early) {
                    self.unanswered(ask, events);
                }
            }
            if !self.subscriber_started {
                self.start_subscriber(io);
                // Joins waiting for the subscriber's start are confirmed if
                // it could not even begin.
                if self.subscriber.token().is_none() {
                    self.subscriber_down(events);
                }
            }
            true
        } else if self.subscriber.token() == Some(conn) {
            self.subscriber.lost(io, reason);
            self.subscriber_down(events);
            true
        } else {
            false
        }
    }

    /// One of the cluster's timers fired (every chat timer but
    /// [`TIMER_JOIN_WAIT`], which the chat keeps).
    pub fn on_timer(&mut self, io: &mut Io, data: u64) {
        match data {
            TIMER_PUBLISHER => self.publisher.connect(io),
            TIMER_SUBSCRIBER => self.subscriber.connect(io),
            TIMER_STATS => self.every_second(io),
            TIMER_REFRESH => {
                if let Some(conn) = self.publisher.up() {
                    if !self.shut {
                        self.keep_alive(io, conn);
                    }
                }
                if !io.is_draining() {
                    io.add_timer(self.config.ttl / 3, TIMER_REFRESH);
                }
            }
            _ => {}
        }
    }

    fn every_second(&mut self, io: &mut Io) {
        let now = self.stats();
        if let Some(board) = &self.board {
            board.publish(self.worker, &now);
        }
        if let Some(notify) = self.notify.as_ref().filter(|_| self.config.stats) {
            let line = format!(
                "tenk chat redis worker {}: {} published/s, {} from peers/s, {} lost/s | {}{}",
                self.worker,
                now.published - self.last_line.published,
                now.received - self.last_line.received,
                now.lost - self.last_line.lost,
                now.describe(),
                if now.up > 0 { "" } else { " | redis down" }
            );
            notify(Notice::Stats(&line));
        }
        self.last_line = now;
        if !io.is_draining() {
            io.add_timer(Duration::from_secs(1), TIMER_STATS);
        }
    }
}

fn room_of(channel: &[u8]) -> Option<&str> {
    std::str::from_utf8(channel)
        .ok()?
        .strip_prefix(CHANNEL_PREFIX)
}
