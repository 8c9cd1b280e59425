//! Chat's delivery counts on one thread: what its receivers are still owed
//! (the drain waits for it), and at the end what they were owed, got, got
//! out of order and lost, with the lost ones' waits in the latency.
//!
//! What every sender sent is run-wide ([`ChatShared::sent`]); a receiver
//! knows what it got. Echo and HTTP clients have no receiver, and count
//! nothing here.
//!
//! [`ChatShared::sent`]: super::ChatShared::sent

use std::time::Instant;

use super::{timeouts, Worker};
use crate::chat::ChatTotals;
use crate::client::Client;

impl<C: Client> Worker<C> {
    /// Deliveries owed to this thread's open clients and not received yet.
    pub(super) fn chat_missing(&self) -> u64 {
        let sent = self.shared.chat.sent();
        self.conns
            .iter()
            .flatten()
            .filter_map(|c| c.client.receiver())
            .map(|receiver| receiver.lost(&sent))
            .sum()
    }

    /// A client closed before the end: its close was counted as an error;
    /// what it received counts, what it can no longer receive is not lost.
    pub(super) fn tally_closed(&mut self, client: &C) {
        let Some(receiver) = client.receiver() else {
            return;
        };
        let sent = self.shared.chat.sent();
        let mut totals = ChatTotals::default();
        totals.receiver(receiver, &sent);
        totals.expected = totals.delivered;
        totals.lost = 0;
        self.chat_closed.add(&totals);
    }

    /// The thread's chat counts at the end: its open clients' (closed ones
    /// were counted as they closed) and its senders' messages.
    pub(super) fn tally_chat(&mut self) {
        let sent = self.shared.chat.sent();
        let now = self.shared.chat.nanos(Instant::now());
        let mut totals = self.chat_closed;
        let receivers = self.conns.iter().flatten().chain(&self.closing);
        for receiver in receivers.filter_map(|c| c.client.receiver()) {
            totals.receiver(receiver, &sent);
            if self.window.is_recording() {
                timeouts::record_lost_deliveries(
                    &mut self.result.recorder,
                    &self.shared.chat,
                    receiver,
                    &sent,
                    now,
                );
            }
        }
        let threads = self.spec().threads;
        totals.sent = sent.iter().skip(self.id).step_by(threads).sum();
        totals.window_sent = self.window_sent;
        self.result.chat = totals;
    }
}
