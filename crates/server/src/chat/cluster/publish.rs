//! The publish path: a room message onto the publisher's queue, bounded by
//! [`PUBLISH_BACKLOG`], and what is lost when it is not.

use std::sync::Arc;

use reactor::Io;

use super::payload::Header;
use super::{channel, now_micros, payload, resp, Ask, Cluster, PUBLISH_BACKLOG};

impl Cluster {
    /// Publishes `line`, from or about `nick`, to `room`'s other nodes.
    /// After [`Cluster::shutdown`], nothing (the chat published each of its
    /// users' leave just before).
    pub fn publish(&mut self, io: &mut Io, room: &str, nick: &str, line: &[u8]) {
        if self.shut {
            return;
        }
        let token = self.publisher.up();
        let over = token.is_some_and(|t| io.pending_output(t) > PUBLISH_BACKLOG);
        // Numbered even when dropped: receivers count the gap.
        let (stream, seq) = self.numbering.next(room, &self.stream_prefix, self.ticks);
        let Some(token) = token.filter(|_| !over) else {
            return self.lose(over);
        };
        let header = Header {
            node: &self.config.node,
            stream,
            seq,
            micros: now_micros(),
            nick,
        };
        let payload = payload::encode(&header, line);
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

    pub(super) fn lose(&mut self, backlog: bool) {
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

    /// A command whose reply nobody waits for; dropped without a
    /// publisher (what it sets is re-asserted on the next connect).
    pub(super) fn tell(&mut self, io: &mut Io, command: &Arc<[u8]>) {
        if self.shut {
            return;
        }
        if let Some(token) = self.publisher.up() {
            if io.send_shared(token, command) {
                self.asks.push_back(Ask::Ignore);
            }
        }
    }
}
