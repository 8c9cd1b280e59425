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

pub mod link;
pub mod payload;
pub mod resp;
pub mod stats;
pub mod url;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reactor::{CloseReason, Io, Token};

use crate::serve::{Notice, Notify};
use link::{Link, State};
use resp::Reply;
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
const TIMER_STATS: u64 = 3;
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
            config,
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
        if self.config.stats && self.notify.is_some() {
            io.add_timer(Duration::from_secs(1), TIMER_STATS);
        }
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
            self.start_subscriber(io);
        } else if let Some(again) = self.subscriber.connected(conn) {
            self.stats.reconnects += u64::from(again);
            self.hello(io, conn, false);
            if !self.rooms.is_empty() {
                let channels: Vec<Vec<u8>> = self.rooms.iter().map(|r| channel(r)).collect();
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
        }
        if let (true, Some(db)) = (select, self.config.url.db) {
            io.send_shared(
                conn,
                &resp::command(&[b"SELECT", db.to_string().as_bytes()]),
            );
        }
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

    fn message(&mut self, channel: &[u8], payload: &[u8], events: &mut Vec<Event>) {
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
            TIMER_STATS => self.stats_line(io),
            _ => {}
        }
    }

    fn stats_line(&mut self, io: &mut Io) {
        let now = self.stats();
        if let Some(notify) = &self.notify {
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
