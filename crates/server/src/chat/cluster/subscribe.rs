//! Subscription bookkeeping: which rooms this worker subscribes to, which
//! are still waiting for their acknowledgement, and messages arriving on them.

use std::sync::Arc;

use reactor::Io;

use super::link::State;
use super::{channel, now_micros, payload, registry, resp, room_of, Cluster, Event};

impl Cluster {
    /// This worker has its first member in `room`: subscribe.
    pub fn subscribe(&mut self, io: &mut Io, room: &str) {
        if !self.rooms.insert(room.to_string()) {
            return;
        }
        if let Some(token) = self.subscriber.up() {
            io.send_shared(token, &resp::command(&[b"SUBSCRIBE", &channel(room)]));
            self.sub_owed += 1;
            *self.in_flight.entry(room.to_string()).or_default() += 1;
        }
    }

    /// This worker's last member left `room`: unsubscribe.
    pub fn unsubscribe(&mut self, io: &mut Io, room: &str) {
        if !self.rooms.remove(room) {
            return;
        }
        self.gaps.forget_room(room);
        if let Some(token) = self.subscriber.up() {
            io.send_shared(token, &resp::command(&[b"UNSUBSCRIBE", &channel(room)]));
            self.sub_owed += 1;
        }
    }

    pub(super) fn start_subscriber(&mut self, io: &mut Io) {
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

    pub(super) fn message(&mut self, channel: &[u8], payload: &[u8], events: &mut Vec<Event>) {
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
        if p.seq > 0 {
            self.gaps.seen(room, p.origin, p.seq, self.ticks);
        }
        self.stats.received += 1;
        self.stats
            .record_latency(now_micros().saturating_sub(p.micros));
        events.push(Event::Message {
            room: room.to_string(),
            line: Arc::from(p.line),
        });
    }
}
