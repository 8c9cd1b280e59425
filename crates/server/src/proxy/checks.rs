//! Active health checks (`--health-check PATH`): every
//! `--health-interval`, each worker sends `GET PATH` to each upstream on
//! a connection of its own (not pooled, `Connection: close`); a 2xx or
//! 3xx response head puts the upstream up, anything else (refused,
//! another status, no answer within the interval) takes it out at once.

use http::proxy;
use reactor::{Io, Token};

use super::handler::{Proxy, Timer};

/// A check in flight.
pub(super) struct Check {
    pub upstream: usize,
    /// The response so far (its head is all that is read).
    pub buf: Vec<u8>,
}

/// Response heads longer than this fail the check.
const MAX_CHECK_HEAD: usize = 16 * 1024;

impl Proxy {
    /// Time to check `upstream`: a check still in flight has failed (no
    /// answer within the interval); a new one starts.
    pub(super) fn check_due(&mut self, io: &mut Io, upstream: usize) {
        if io.is_draining() || io.is_leaving() {
            return;
        }
        if let Some(conn) = self.upstreams[upstream].check.take() {
            self.checks.remove(&conn);
            io.close(conn);
            self.check_failed(io, upstream);
        }
        let interval = self.config.health_interval;
        self.add_timer(io, interval, Timer::Check(upstream));
        let spec = &self.config.upstreams[upstream];
        match io.connect(spec.addr, None) {
            Ok(conn) => {
                let path = self.config.health_check.as_deref().unwrap_or("/");
                let request = format!(
                    "GET {path} HTTP/1.1\r\nHost: {}\r\nUser-Agent: tenk-health-check\r\nConnection: close\r\n\r\n",
                    spec.name
                );
                io.send(conn, request.as_bytes());
                self.checks.insert(
                    conn,
                    Check {
                        upstream,
                        buf: Vec::new(),
                    },
                );
                self.upstreams[upstream].check = Some(conn);
            }
            Err(_) => self.check_failed(io, upstream),
        }
    }

    pub(super) fn check_data(&mut self, io: &mut Io, conn: Token, data: &[u8]) -> usize {
        let Some(check) = self.checks.get_mut(&conn) else {
            return data.len();
        };
        check.buf.extend_from_slice(data);
        let upstream = check.upstream;
        let verdict = match proxy::parse_response(&check.buf, false) {
            Ok(None) if check.buf.len() < MAX_CHECK_HEAD => return data.len(),
            Ok(Some(head)) if head.interim => {
                check.buf.drain(..head.head_len);
                return data.len();
            }
            Ok(Some(head)) => (200..400).contains(&head.status),
            Ok(None) | Err(_) => false,
        };
        self.checks.remove(&conn);
        self.upstreams[upstream].check = None;
        io.close(conn);
        if verdict {
            self.upstreams[upstream].health.succeeded();
        } else {
            self.check_failed(io, upstream);
        }
        data.len()
    }

    /// A check connection closed before its verdict.
    pub(super) fn check_gone(&mut self, io: &mut Io, conn: Token) {
        if let Some(check) = self.checks.remove(&conn) {
            self.upstreams[check.upstream].check = None;
            self.check_failed(io, check.upstream);
        }
    }

    fn check_failed(&mut self, io: &mut Io, upstream: usize) {
        let policy = self.config.health;
        self.upstreams[upstream]
            .health
            .check_failed(&policy, io.now());
    }
}
