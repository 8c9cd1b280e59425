//! What the chat workers share: the [`Directory`] behind a lock, and one
//! mailbox per worker for messages to its clients from other workers.
//!
//! A message is encoded once, as an `Arc<[u8]>`, by the sender's worker; a
//! mailbox holds references to it, so crossing threads copies no message
//! bytes. Each mailbox is a FIFO filled by every other worker, so the
//! messages of one sender reach a worker, and so its clients, in the order
//! they were said. The sender wakes a worker only when its mailbox goes
//! from empty to non-empty: one eventfd write per burst.

use std::sync::{Arc, Mutex, MutexGuard};

use reactor::Token;

use super::directory::Directory;

/// Where a client lives: its worker and its token in that worker's reactor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Address {
    pub worker: usize,
    pub token: Token,
}

/// A message for a worker's clients.
#[derive(Debug)]
pub enum Mail {
    /// For every member of `room` on the receiving worker; `sent` is the
    /// start of the sender's pass that read it (fan-out duration).
    Room {
        room: Arc<str>,
        message: Arc<[u8]>,
        sent: std::time::Instant,
    },
    /// For one client of the receiving worker.
    Private { to: Token, message: Arc<[u8]> },
}

/// Most mails a worker's mailbox holds. A live worker empties its mailbox
/// on every wake-up, so only a worker stuck far longer than any client
/// would wait reaches this; then mails to it are dropped (and counted)
/// rather than let memory grow without bound.
pub const MAILBOX_LIMIT: usize = 1 << 16;

/// What [`Hub::post`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Posted {
    /// Queued into an empty mailbox: the caller wakes the worker.
    First,
    /// Queued behind others: the worker is awake already or will be.
    Queued,
    /// The mailbox is full: dropped.
    Dropped,
}

/// The chat state shared by all workers.
pub struct Hub {
    directory: Mutex<Directory<Address>>,
    mailboxes: Vec<Mutex<Vec<Mail>>>,
}

impl Hub {
    /// A hub for `workers` workers.
    pub fn new(workers: usize, default_room: &str) -> Hub {
        let workers = workers.max(1);
        Hub {
            directory: Mutex::new(Directory::new(workers, default_room)),
            mailboxes: (0..workers).map(|_| Mutex::new(Vec::new())).collect(),
        }
    }

    /// How many workers share this hub.
    pub fn workers(&self) -> usize {
        self.mailboxes.len()
    }

    /// The directory, locked. Hold it briefly: every worker needs it.
    pub fn directory(&self) -> MutexGuard<'_, Directory<Address>> {
        // A worker that panicked holding the lock left the directory
        // consistent (each method is a few map updates): go on.
        self.directory.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues `mail` for `worker`.
    pub fn post(&self, worker: usize, mail: Mail) -> Posted {
        let mut mailbox = self.mailboxes[worker]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if mailbox.len() >= MAILBOX_LIMIT {
            return Posted::Dropped;
        }
        mailbox.push(mail);
        if mailbox.len() == 1 {
            Posted::First
        } else {
            Posted::Queued
        }
    }

    /// Moves `worker`'s mails, oldest first, into `into` (empty on entry),
    /// leaving the mailbox empty.
    pub fn take(&self, worker: usize, into: &mut Vec<Mail>) {
        let mut mailbox = self.mailboxes[worker]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        std::mem::swap(&mut *mailbox, into);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mail(text: &str) -> Mail {
        Mail::Room {
            room: Arc::from("lobby"),
            message: Arc::from(text.as_bytes()),
            sent: std::time::Instant::now(),
        }
    }

    fn text(mail: &Mail) -> &[u8] {
        match mail {
            Mail::Room { message, .. } | Mail::Private { message, .. } => message,
        }
    }

    #[test]
    fn first_post_asks_for_a_wake_up_and_order_is_kept() {
        let hub = Hub::new(2, "lobby");
        assert_eq!(hub.post(1, mail("a")), Posted::First);
        assert_eq!(hub.post(1, mail("b")), Posted::Queued);
        let mut mails = Vec::new();
        hub.take(1, &mut mails);
        let texts: Vec<&[u8]> = mails.iter().map(text).collect();
        assert_eq!(texts, [b"a", b"b"]);
        let mut again = Vec::new();
        hub.take(1, &mut again);
        assert!(again.is_empty(), "taking empties the mailbox");
        assert_eq!(hub.post(1, mail("c")), Posted::First);
    }

    #[test]
    fn a_full_mailbox_drops_instead_of_growing() {
        let hub = Hub::new(2, "lobby");
        let message: Arc<[u8]> = Arc::from(&b"x"[..]);
        for _ in 0..MAILBOX_LIMIT {
            let posted = hub.post(
                0,
                Mail::Room {
                    room: Arc::from("lobby"),
                    message: message.clone(),
                    sent: std::time::Instant::now(),
                },
            );
            assert_ne!(posted, Posted::Dropped);
        }
        assert_eq!(hub.post(0, mail("over")), Posted::Dropped);
        assert_eq!(hub.post(1, mail("other")), Posted::First);
        // Shared, not copied: one allocation referenced by every mail.
        assert_eq!(Arc::strong_count(&message), MAILBOX_LIMIT + 1);
    }
}
