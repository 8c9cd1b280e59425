//! Delivering a room message: this worker's members directly, the other
//! workers' through their mailboxes (a FIFO each, woken on empty to
//! non-empty), other nodes' through the cluster.

use std::sync::Arc;

use reactor::{Io, Token};

use super::hub::{Address, Mail, Posted};
use super::Chat;

/// Bytes of messages from other workers delivered per pass: as much as a
/// local sender can say in one (the reactor's default read budget).
const MAIL_BUDGET: usize = 64 * 1024;

impl Chat {
    /// Sends `text`, from or about `nick`, to every member of `room`
    /// except `except`, encoded once and shared: this worker's members
    /// directly, the other workers' through their mailboxes, other nodes'
    /// through Redis.
    pub(super) fn broadcast(
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
    pub(super) fn fan_out(
        &mut self,
        io: &mut Io,
        room: &str,
        except: Option<Token>,
        message: &Arc<[u8]>,
    ) {
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
    pub(super) fn find(&self, nick: &str) -> Option<Address> {
        self.hub.directory().find(nick)
    }

    /// Hands `mail` to another worker, waking it if its mailbox was empty.
    pub(super) fn post(&mut self, worker: usize, mail: Mail) {
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
    pub(super) fn deliver_mail(&mut self, io: &mut Io) {
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
}
