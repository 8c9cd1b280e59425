//! One client type per protocol behind one trait: what a load thread (the
//! worker) asks of the protocol spoken on a connection. The worker owns the
//! sockets, the schedule, the timeouts and the measuring; a [`Client`]
//! says what to send and what the bytes that came back mean.
//!
//! - [`echo::EchoClient`]: messages cut from the connection's pattern,
//!   every returned byte checked.
//! - [`http::HttpClient`]: the same request again and again, every
//!   response framed by [`http::client`](::http::client).
//! - [`chat::ChatLoadClient`]: a member of a room; senders send stamped
//!   messages, every member checks and times what reaches it.
//!
//! A new workload is a new type here and one arm in [`crate::run()`].

use std::time::{Duration, Instant};

use crate::chat::ChatClient;
use crate::inflight::InFlight;
use crate::recorder::{Errors, Recorder};
use crate::spec::LoadSpec;
use crate::worker::Shared;

pub(crate) mod chat;
pub(crate) mod echo;
pub(crate) mod http;

/// The protocol side of one connection.
pub(crate) trait Client {
    /// A request is answered by a reply on its own connection, replies in
    /// the order of the requests (echo, HTTP): requests are kept in flight
    /// until answered, time out, and are unanswered if the run ends first.
    /// Otherwise (chat) a message is delivered to other clients: nothing is
    /// awaited on the sender's connection, a counted run measures from the
    /// first message, and the run ends with a drain until the receivers
    /// have what was sent. Such a client closed without an error is not
    /// replaced: one joining late is owed nothing sent before, and the
    /// accounting would not know.
    const REPLIES: bool;

    /// The `n`-th connection (from 0) that thread `thread` opened.
    fn new(shared: &Shared, thread: usize, n: u64) -> Self;

    /// The requests per second this thread carries, of the run's `rate`.
    fn thread_rate(spec: &LoadSpec, _thread: usize) -> f64 {
        spec.rate.map_or(0.0, |r| r / spec.threads as f64)
    }

    /// The connection is up: appends what the client says first to `out`,
    /// and returns whether it can take requests at once (chat: only once
    /// the server let it into its room, see [`Inbox::ready`]).
    fn on_connected(&mut self, _out: &mut Vec<u8>) -> bool {
        true
    }

    /// It can take requests (see [`Client::on_connected`]).
    fn is_ready(&self) -> bool {
        true
    }

    /// Once ready, it carries requests on the schedule (chat: only senders).
    fn sends(&self) -> bool {
        true
    }

    /// More requests may be sent (HTTP: not after a response announced
    /// that the server closes).
    fn takes_requests(&self) -> bool {
        true
    }

    /// Appends `count` requests to `out`, due at `intended`.
    fn append_requests(
        &mut self,
        out: &mut Vec<u8>,
        count: usize,
        intended: Instant,
        shared: &Shared,
    );

    /// Reads what came, reporting each reply or delivery to `inbox`, and
    /// returns the bytes consumed: the rest (an unfinished head or line)
    /// is offered again with the next bytes.
    ///
    /// # Errors
    /// What came is wrong; the connection is closed and the fault counted.
    fn on_bytes(&mut self, data: &[u8], inbox: &mut Inbox, shared: &Shared)
        -> Result<usize, Fault>;

    /// The server closed the connection: reports a response that ran until
    /// the close, and returns whether the close came early (an error).
    /// Echo and chat servers never close first.
    fn on_eof(&mut self, _inbox: &mut Inbox) -> bool {
        true
    }

    /// The chat receiver, for the drain's and the report's delivery counts.
    fn receiver(&self) -> Option<&ChatClient> {
        None
    }
}

/// Why what came on a connection is wrong.
#[derive(Debug)]
pub(crate) enum Fault {
    /// An echo reply that differs from what was sent; a chat message from
    /// a sender of another room.
    Mismatch(String),
    /// An HTTP response or chat message that does not parse or frame.
    Malformed(String),
    /// Chat: the server refused what the client said.
    Refused(String),
}

impl Fault {
    /// Counts it among `errors`.
    pub(crate) fn count(&self, errors: &mut Errors) {
        match self {
            Fault::Mismatch(_) => errors.mismatches += 1,
            Fault::Malformed(_) => errors.malformed += 1,
            Fault::Refused(_) => errors.refused += 1,
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::Mismatch(what) => write!(f, "mismatch: {what}"),
            Fault::Malformed(what) => write!(f, "malformed: {what}"),
            Fault::Refused(what) => write!(f, "refused: {what}"),
        }
    }
}

/// What a client reports while it reads: replies to requests in flight,
/// deliveries, being ready. Measured when the window is recording.
pub(crate) struct Inbox<'a> {
    in_flight: &'a mut InFlight,
    recorder: Option<&'a mut Recorder>,
    answered: u64,
    delivered: u64,
    ready: bool,
}

impl<'a> Inbox<'a> {
    /// Reports into `recorder` if there is one (the window is recording).
    pub(crate) fn new(in_flight: &'a mut InFlight, recorder: Option<&'a mut Recorder>) -> Self {
        Inbox {
            in_flight,
            recorder,
            answered: 0,
            delivered: 0,
            ready: false,
        }
    }

    /// The oldest request in flight is answered (`status`: HTTP's).
    pub(crate) fn reply(&mut self, status: Option<u16>) {
        let Some(sent) = self.in_flight.pop() else {
            return;
        };
        self.answered += 1;
        if let Some(recorder) = self.recorder.as_deref_mut() {
            let (corrected, uncorrected) = sent.ages(Instant::now());
            recorder.record(corrected, uncorrected);
            if let Some(status) = status {
                recorder.status(status);
            }
        }
    }

    /// A chat message arrived, `latency` after it was due.
    pub(crate) fn delivery(&mut self, latency: Duration) {
        self.delivered += 1;
        if let Some(recorder) = self.recorder.as_deref_mut() {
            recorder.record(latency, latency);
        }
    }

    /// The client became ready (see [`Client::on_connected`]).
    pub(crate) fn ready(&mut self) {
        self.ready = true;
    }

    /// Requests are in flight on the connection.
    pub(crate) fn awaits(&self) -> bool {
        !self.in_flight.is_empty()
    }

    /// Requests answered.
    pub(crate) fn answered(&self) -> u64 {
        self.answered
    }

    /// Replies and deliveries: what the progress line counts.
    pub(crate) fn received(&self) -> u64 {
        self.answered + self.delivered
    }

    /// Whether [`Inbox::ready`] was reported.
    pub(crate) fn became_ready(&self) -> bool {
        self.ready
    }
}
