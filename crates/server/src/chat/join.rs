//! Joining a room, and the cluster glue around it: a join waits for the
//! room's SUBSCRIBE acknowledgement (its user's input held), and the
//! cluster's events (remote messages, answers, expiries) are acted on here.

use std::time::Instant;

use reactor::{Io, Token};

use super::cluster::{Event, JOIN_WAIT, TIMER_JOIN_WAIT};
use super::hub::Mail;
use super::{rooms_line, Chat};

impl Chat {
    pub(super) fn join(&mut self, io: &mut Io, conn: Token, room: &str) {
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
    pub(super) fn confirm_join(&mut self, io: &mut Io, conn: Token) {
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
    pub(super) fn confirm_waiting(&mut self, io: &mut Io, room: Option<&str>) {
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
    pub(super) fn join_wait_expired(&mut self, io: &mut Io) {
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
    pub(super) fn cluster_events(&mut self, io: &mut Io) {
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

    pub(super) fn cluster_event(&mut self, io: &mut Io, event: Event) {
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
}
