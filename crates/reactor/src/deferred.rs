//! Work a pass owes at its end: the ready-again list (reads owed with no
//! edge to come for them) and the unflushed list (connections given shared
//! messages, written once however many they got).

use std::mem;

use crate::conn::Entry;
use crate::conn_io::{finish, flush, read};
use crate::handler::Handler;
use crate::io::Io;
use crate::token::Token;

impl Io {
    /// Puts a connection on the ready-again list (edge mode) unless it is
    /// already there.
    pub(crate) fn push_ready(&mut self, token: Token) {
        if let Some(Entry::Conn(conn)) = self.entries.get_mut(token) {
            if conn.ready_pass == 0 {
                conn.ready_pass = self.pass;
                self.ready.push((token, self.pass));
            }
        }
    }

    /// Whether the end of this pass has work that must not wait for an
    /// event: the next `epoll_wait` must then not block.
    #[inline]
    pub(crate) fn has_deferred_work(&self) -> bool {
        !self.ready.is_empty() || !self.unflushed.is_empty()
    }
}

/// Serves, once, the connections queued on the ready-again list in an
/// earlier pass. One queued during this very pass (its event came in
/// this batch) keeps its place and is served on the next pass:
/// dropping it would lose its edge for good. An entry whose connection
/// was read since it was queued (an event came) is dropped: that read
/// did what the entry owed, and queued the connection anew if it
/// stopped at the budget again.
#[inline]
pub(crate) fn serve_ready_again<H: Handler>(io: &mut Io, handler: &mut H) {
    if !io.ready.is_empty() {
        serve_ready_list(io, handler);
    }
}

fn serve_ready_list<H: Handler>(io: &mut Io, handler: &mut H) {
    let mut ready = mem::take(&mut io.ready);
    let mut deferred = Vec::new();
    for &(token, queued) in &ready {
        let Some(Entry::Conn(conn)) = io.entries.get_mut(token) else {
            continue;
        };
        if conn.ready_pass != queued {
            continue;
        }
        if queued >= io.pass {
            deferred.push((token, queued));
            continue;
        }
        io.dispatching = Some(token);
        read(io, handler, token);
        finish(io, handler, token);
        if io.stopped() {
            break;
        }
    }
    // Connections re-queued while serving join the deferred ones; the
    // larger allocation is kept for the next pass.
    ready.clear();
    ready.extend(deferred);
    ready.append(&mut io.ready);
    io.ready = ready;
}

/// Writes the connections that were given shared messages this pass:
/// one gather write each, however many messages they got. Messages
/// queued by callbacks of these flushes wait for the next pass (which
/// then does not block). Whether there were any.
#[inline]
pub(crate) fn flush_unflushed<H: Handler>(io: &mut Io, handler: &mut H) -> bool {
    if io.unflushed.is_empty() {
        return false;
    }
    flush_unflushed_list(io, handler);
    true
}

fn flush_unflushed_list<H: Handler>(io: &mut Io, handler: &mut H) {
    let tokens = mem::take(&mut io.unflushed);
    for &token in &tokens {
        io.dispatching = Some(token);
        flush(io, handler, token);
        finish(io, handler, token);
        if io.stopped() {
            break;
        }
    }
    if io.unflushed.is_empty() {
        let mut tokens = tokens;
        tokens.clear();
        io.unflushed = tokens;
    }
}
