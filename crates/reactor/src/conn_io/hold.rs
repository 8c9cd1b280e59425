//! Reading held by the protocol: flow control between connections. A
//! proxy holds its upstream while the client is slow to take what it
//! forwards, and the client while the upstream is (the reactor's own
//! backpressure only looks at a connection's own output).

use crate::config::Trigger;
use crate::conn::Entry;
use crate::io::Io;
use crate::token::Token;

impl Io {
    /// Stops reading `token` until [`resume_reading`](Io::resume_reading):
    /// its bytes wait in the kernel (whose window then slows the peer).
    /// Costs an `epoll_ctl` in level and one-shot modes, none in edge mode.
    pub fn pause_reading(&mut self, token: Token) {
        let Some(Entry::Conn(conn)) = self.entries.get_mut(token) else {
            return;
        };
        if conn.held {
            return;
        }
        conn.held = true;
        if self.dispatching != Some(token) {
            self.sync_interest(token);
        }
    }

    /// Reads `token` again after [`pause_reading`](Io::pause_reading). In
    /// edge mode it is read on the next pass: bytes that arrived while it
    /// was held raised their edge then, and no new one will come for them.
    pub fn resume_reading(&mut self, token: Token) {
        let Some(Entry::Conn(conn)) = self.entries.get_mut(token) else {
            return;
        };
        if !conn.held {
            return;
        }
        conn.held = false;
        if self.config.trigger == Trigger::Edge {
            if conn.wants_read() {
                self.push_ready(token);
            }
        } else if self.dispatching != Some(token) {
            self.sync_interest(token);
        }
    }

    /// Whether reading `token` is held by [`pause_reading`](Io::pause_reading).
    pub fn is_reading_paused(&self, token: Token) -> bool {
        matches!(self.entries.get(token), Some(Entry::Conn(conn)) if conn.held)
    }
}
