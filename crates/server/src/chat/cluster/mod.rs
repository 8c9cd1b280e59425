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

mod asks;
pub mod board;
pub mod link;
mod link_io;
pub mod liveness;
pub mod metrics;
pub mod payload;
mod publish;
pub mod registry;
pub mod resp;
pub mod sequence;
pub mod stats;
mod subscribe;
pub mod url;

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reactor::{Io, Token};

use crate::serve::{Notice, Notify};
pub use board::ClusterBoard;
use link::Link;
use sequence::{Gaps, Numbering};
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
/// Every [`link::HEALTH_TICK`]: connect and reply timeouts, idle PINGs.
const TIMER_HEALTH: u64 = 6;
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
    /// Replies the subscriber owes (acknowledgements, PONGs), for its
    /// reply timeout; messages are not counted.
    sub_owed: usize,
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
    /// Health ticks so far: the clock of the two tables below.
    ticks: u64,
    /// This worker's streams (`START_MICROS.WORKER`, then a number per
    /// room): the numbering of what it publishes.
    stream_prefix: String,
    numbering: Numbering,
    /// What other nodes published and this worker never got.
    gaps: Gaps,
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
            sub_owed: 0,
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
            ticks: 0,
            stream_prefix: format!(
                "{}.{worker}",
                config.instance.rsplit('/').next().unwrap_or("0")
            ),
            numbering: Numbering::default(),
            gaps: Gaps::default(),
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
        io.add_timer(link::HEALTH_TICK, TIMER_HEALTH);
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
        let up = self.publisher.live().is_some() && self.subscriber.live().is_some();
        let mut stats = self.stats;
        stats.up = u64::from(up);
        stats.lost_from_peers = self.gaps.lost();
        stats
    }

    /// Whether `conn` is one of the Redis connections.
    pub fn owns(&self, conn: Token) -> bool {
        self.publisher.token() == Some(conn) || self.subscriber.token() == Some(conn)
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
        // No message will fill the gaps now.
        self.gaps.finish();
    }

    /// One of the cluster's timers fired (every chat timer but
    /// [`TIMER_JOIN_WAIT`], which the chat keeps).
    pub fn on_timer(&mut self, io: &mut Io, data: u64) {
        match data {
            TIMER_PUBLISHER => self.publisher.connect(io),
            TIMER_SUBSCRIBER => self.subscriber.connect(io),
            TIMER_STATS => self.every_second(io),
            TIMER_HEALTH => {
                self.health(io);
                if !io.is_draining() {
                    io.add_timer(link::HEALTH_TICK, TIMER_HEALTH);
                }
            }
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
