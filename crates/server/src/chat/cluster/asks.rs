//! Questions to Redis and their answers: guest nicks, nick claims, joins and
//! leaves, `/msg`, `/who` and `/rooms` across nodes.

use std::sync::Arc;

use reactor::{Io, Token};

use super::link::State;
use super::resp::Value;
use super::{now_micros, payload, registry, resp, Ask, Cluster, Event};

impl Cluster {
    /// Sends `command` on the publisher, its reply to answer `ask`; queued
    /// while the publisher connects. Without a publisher (or after the
    /// shutdown freed everything), `ask` is answered at once as Redis
    /// unreachable.
    pub(super) fn ask(
        &mut self,
        io: &mut Io,
        command: Arc<[u8]>,
        ask: Ask,
        events: &mut Vec<Event>,
    ) {
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

    /// `ask` gets no reply from Redis: its fallback.
    pub(super) fn unanswered(&mut self, ask: Ask, events: &mut Vec<Event>) {
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

    pub(super) fn answer(&mut self, ask: Ask, value: Value<'_>, events: &mut Vec<Event>) {
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
        let header = payload::Header {
            node: &self.config.node,
            stream: payload::UNNUMBERED,
            seq: 0,
            micros: now_micros(),
            nick: to,
        };
        let payload = payload::encode(&header, line.as_bytes());
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
}
