//! What an application answers through: the [`App`] trait and the
//! [`Reply`] it writes its response to.

use std::borrow::Cow;
use std::os::fd::OwnedFd;
use std::time::Instant;

use reactor::Io;

use super::HttpStats;
use crate::date::DateCache;
use crate::parse::Request;
use crate::response::{CachedResponse, Response};

/// What an application does with a request.
pub trait App {
    /// Answers `request` through `reply`. Every request must be answered
    /// exactly once; an unanswered one gets a 500.
    fn handle(&mut self, request: &Request<'_, '_>, reply: &mut Reply<'_>);
}

/// Where a handler writes its response.
pub struct Reply<'a> {
    pub(super) out: &'a mut Vec<u8>,
    pub(super) date: &'a DateCache,
    pub(super) io: &'a Io,
    pub(super) stats: &'a HttpStats,
    pub(super) head: bool,
    pub(super) keep_alive: bool,
    pub(super) version: u8,
    /// Status and body length of what was written, for stats and logs.
    pub(super) written: Option<(u16, usize)>,
    /// A file range to send after the head (`send_file`).
    pub(super) file: Option<(OwnedFd, u64, u64)>,
    /// While a router's middleware runs ([`Reply::capture`]): answers are
    /// kept as a `Response` for the chain, not encoded.
    pub(super) capturing: bool,
    pub(super) captured: Option<Response>,
}

impl Reply<'_> {
    /// The reactor's counters (for a metrics endpoint).
    pub fn reactor_stats(&self) -> reactor::Stats {
        self.io.stats()
    }

    /// The handshake counters of the reactor's transport (TLS), if it has
    /// one that keeps any (for a metrics endpoint).
    pub fn transport_counts(&self) -> Option<reactor::TransportCounts> {
        self.io.transport_counts()
    }

    /// The preamble counters of the reactor's transport (PROXY protocol
    /// headers), if it has one (for a metrics endpoint).
    pub fn preamble_counts(&self) -> Option<reactor::PreambleCounts> {
        self.io.preamble_counts()
    }

    /// The HTTP layer's counters so far.
    pub fn http_stats(&self) -> HttpStats {
        *self.stats
    }

    /// Answers with `response`.
    pub fn send(&mut self, response: &Response) {
        if self.written.is_some() {
            return;
        }
        if self.capturing {
            self.captured.get_or_insert_with(|| response.clone());
            return;
        }
        if response.close {
            self.keep_alive = false;
        }
        response.encode(
            self.out,
            self.date,
            self.head,
            self.keep_alive,
            self.version,
        );
        self.written = Some((response.status, response.body.len()));
    }

    /// Answers with `head` (its `body` is ignored) followed by `len` bytes
    /// of `file` from `offset`, sent with `sendfile`: the bytes never pass
    /// through user space, and a large file goes out as the peer reads it,
    /// without growing memory. For HEAD only the head is sent.
    pub fn send_file(&mut self, head: &Response, file: OwnedFd, offset: u64, len: u64) {
        if self.written.is_some() {
            return;
        }
        let mut head = head.clone();
        head.body = Cow::Borrowed(&[]);
        head.body_len = Some(len);
        if self.capturing {
            if self.captured.is_none() {
                if !self.head {
                    self.file = Some((file, offset, len));
                }
                self.captured = Some(head);
            }
            return;
        }
        if head.close {
            self.keep_alive = false;
        }
        head.encode(
            self.out,
            self.date,
            self.head,
            self.keep_alive,
            self.version,
        );
        if !self.head {
            self.file = Some((file, offset, len));
        }
        self.written = Some((head.status, len as usize));
    }

    /// Answers with a response encoded once per second.
    pub fn send_cached(&mut self, response: &mut CachedResponse) {
        if self.written.is_some() {
            return;
        }
        if self.capturing {
            self.capture_cached(response);
            return;
        }
        if response.closes() {
            self.keep_alive = false;
        }
        response.encode(
            self.out,
            self.date,
            self.head,
            self.keep_alive,
            self.version,
        );
        self.written = Some((response.status(), response.body_len()));
    }

    // Out of line and cold: inlined, the clone of a `Response` made
    // `send_cached` save four more registers on every cached answer (9
    // instructions a request in bench/instructions.sh), for a path only
    // capturing middleware takes.
    #[cold]
    #[inline(never)]
    fn capture_cached(&mut self, response: &CachedResponse) {
        self.captured
            .get_or_insert_with(|| response.response().clone());
    }
}

impl<'a> Reply<'a> {
    /// The status answered so far; an unanswered request's is the 500 the
    /// server will send.
    #[inline(always)]
    pub(crate) fn status(&self) -> u16 {
        self.written.map_or(500, |(status, _)| status)
    }

    /// When the loop pass answering began ([`Io::now`]).
    pub(crate) fn pass(&self) -> Instant {
        self.io.now()
    }

    /// Runs `answer` with this reply capturing what it sends, and gives
    /// that as a `Response` (500 if nothing): for a router's middleware,
    /// which works on `Response`s. A file sent stays aside for
    /// [`Reply::send_captured`].
    pub(crate) fn capture(&mut self, answer: impl FnOnce(&mut Reply<'a>)) -> Response {
        self.capturing = true;
        answer(self);
        self.capturing = false;
        self.captured
            .take()
            .unwrap_or_else(|| Response::text(500, &b"no response\n"[..]))
    }

    /// Sends what the middleware made of a captured answer: with the file
    /// captured, if it still announces the file's length.
    // Inlined into the router's middleware path, its one caller, as it
    // was before `Reply` left server.rs: out of line it is a call per
    // request answered through middleware.
    #[inline]
    pub(crate) fn send_captured(&mut self, response: &Response) {
        match self.file.take() {
            Some((file, offset, len)) if response.body_len == Some(len) => {
                self.send_file(response, file, offset, len);
            }
            _ => self.send(response),
        }
    }
}
