//! The two connections' life: connecting, the HELLO and re-assertion
//! after a reconnect, keep-alives, reading replies and losing a link.

use std::collections::HashMap;

use reactor::{CloseReason, Io, Token};

use super::link::{Check, State};
use super::resp::{Reply, Value};
use super::{channel, registry, resp, room_of, Ask, Cluster, Event};

impl Cluster {
    pub fn on_connect(&mut self, io: &mut Io, conn: Token) {
        let now = io.now();
        if let Some(again) = self.publisher.connected(now, conn) {
            self.stats.reconnects += u64::from(again);
            self.hello(io, conn, true);
            self.reassert(io, conn);
            for (command, ask) in std::mem::take(&mut self.early) {
                io.send_shared(conn, &command);
                self.asks.push_back(ask);
            }
            self.start_subscriber(io);
        } else if let Some(again) = self.subscriber.connected(now, conn) {
            self.stats.reconnects += u64::from(again);
            self.hello(io, conn, false);
            self.sub_owed = usize::from(self.config.url.password.is_some());
            {
                let mut channels: Vec<Vec<u8>> = self.rooms.iter().map(|r| channel(r)).collect();
                channels.push(registry::private_channel(&self.owner));
                let mut args: Vec<&[u8]> = vec![b"SUBSCRIBE"];
                args.extend(channels.iter().map(Vec::as_slice));
                io.send_shared(conn, &resp::command(&args));
                self.sub_owed += channels.len();
                for room in &self.rooms {
                    *self.in_flight.entry(room.clone()).or_default() += 1;
                }
            }
        }
    }

    /// AUTH and (on the publisher) SELECT, pipelined before anything else.
    pub(super) fn hello(&mut self, io: &mut Io, conn: Token, select: bool) {
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
    pub(super) fn reassert(&mut self, io: &mut Io, conn: Token) {
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
    pub(super) fn keep_alive(&mut self, io: &mut Io, conn: Token) {
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
            let used = self.publisher_data(io, conn, data, events);
            let owing = !self.asks.is_empty();
            self.publisher.heard(io.now(), owing);
            return used;
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
            if matches!(
                reply,
                Reply::Fine | Reply::Pong | Reply::Subscribed(_) | Reply::Unsubscribed(_)
            ) {
                self.sub_owed = self.sub_owed.saturating_sub(1);
            }
            match reply {
                Reply::Fine | Reply::Other | Reply::Unsubscribed(_) | Reply::Pong => {}
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
        self.subscriber.heard(io.now(), self.sub_owed > 0);
        used
    }

    /// The links' liveness check, every [`HEALTH_TICK`](super::link::HEALTH_TICK):
    /// an idle link is sent a PING (on the subscriber RESP2 allows it in
    /// subscribed mode); a silent one is closed, and its `on_close` does
    /// what any loss does (reconnect, resubscribe, re-assert).
    pub(super) fn health(&mut self, io: &mut Io) {
        self.ticks += 1;
        self.gaps.tick(self.ticks);
        if self.ticks.is_multiple_of(60) {
            self.numbering.forget_idle(self.ticks);
        }
        let now = io.now();
        let ping = resp::command(&[b"PING"]);
        match self.publisher.check(io, now, !self.asks.is_empty()) {
            Check::Ping => {
                if let Some(conn) = self.publisher.up() {
                    if io.send_shared(conn, &ping) {
                        self.asks.push_back(Ask::Ignore);
                        self.publisher.asked(now);
                    }
                }
            }
            Check::Dead(_) => self.stats.timeouts += 1,
            Check::Fine => {}
        }
        match self.subscriber.check(io, now, self.sub_owed > 0) {
            Check::Ping => {
                if let Some(conn) = self.subscriber.up() {
                    if io.send_shared(conn, &ping) {
                        self.sub_owed += 1;
                        self.subscriber.asked(now);
                    }
                }
            }
            Check::Dead(_) => self.stats.timeouts += 1,
            Check::Fine => {}
        }
    }

    /// Replies on the publisher, each answering the oldest ask.
    pub(super) fn publisher_data(
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

    pub(super) fn refuse(&mut self, io: &mut Io, conn: Token, why: &str, events: &mut Vec<Event>) {
        if self.publisher.token() == Some(conn) {
            self.publisher.refused(io, why);
            self.publisher_down(events);
        } else {
            self.subscriber.refused(io, why);
            self.subscriber_down(events);
        }
    }

    /// Every question in flight on a publisher that is gone.
    pub(super) fn publisher_down(&mut self, events: &mut Vec<Event>) {
        let asks: Vec<Ask> = self.asks.drain(..).collect();
        for ask in asks {
            self.unanswered(ask, events);
        }
    }

    pub(super) fn subscriber_down(&mut self, events: &mut Vec<Event>) {
        self.in_flight.clear();
        self.sub_owed = 0;
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
}
