//! The chat client: a member of a room, let in by its nick and join on
//! connect; senders send numbered messages stamped with the time they were
//! due, and every member checks and times what reaches it (see
//! [`crate::chat`]). What is owed and lost is counted by the worker's
//! drain, from [`Client::receiver`].

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Client, Fault, Inbox};
use crate::chat::{complete_lines, ChatClient, ChatError, Received};
use crate::spec::{LoadSpec, Workload};
use crate::worker::Shared;

pub(crate) struct ChatLoadClient(ChatClient);

impl Client for ChatLoadClient {
    const REPLIES: bool = false;

    /// This thread's `n`-th client is client `n * threads + thread` of the
    /// run.
    fn new(shared: &Shared, thread: usize, n: u64) -> Self {
        let Workload::Chat { rooms, senders } = shared.spec.workload else {
            unreachable!("a chat client runs the chat workload");
        };
        let id = n * shared.spec.threads as u64 + thread as u64;
        ChatLoadClient(ChatClient::new(
            id,
            rooms as u64,
            senders as u64,
            &shared.chat.tag,
        ))
    }

    /// The schedule is carried by this thread's senders: clients
    /// `thread, thread + threads, ...` below `senders`.
    fn thread_rate(spec: &LoadSpec, thread: usize) -> f64 {
        let Workload::Chat { senders, .. } = spec.workload else {
            unreachable!("a chat client runs the chat workload");
        };
        let threads = spec.threads;
        let mine = senders / threads + usize::from(thread < senders % threads);
        spec.rate.map_or(0.0, |r| r * mine as f64 / senders as f64)
    }

    /// Nick and room at once: the server reads them after its greeting.
    /// The client joins the schedule when it is in.
    fn on_connected(&mut self, out: &mut Vec<u8>) -> bool {
        self.0.hello(out);
        false
    }

    fn is_ready(&self) -> bool {
        self.0.is_joined()
    }

    fn sends(&self) -> bool {
        self.0.is_sender()
    }

    /// Stamped with the time it was due: lateness of the sender counts as
    /// latency, as in every open-loop measurement here.
    fn append_requests(
        &mut self,
        out: &mut Vec<u8>,
        count: usize,
        intended: Instant,
        shared: &Shared,
    ) {
        let due = shared.chat.nanos(intended);
        for _ in 0..count {
            self.0.append_message(out, due);
        }
        let id = self.0.id() as usize;
        shared.chat.last_due[id].store(due, Ordering::Relaxed);
        shared.chat.sent[id].store(self.0.sent(), Ordering::Release);
    }

    /// Checks every complete line; a delivery's latency is taken with one
    /// clock reading per read.
    fn on_bytes(
        &mut self,
        data: &[u8],
        inbox: &mut Inbox,
        shared: &Shared,
    ) -> Result<usize, Fault> {
        let now = shared.chat.nanos(Instant::now());
        let (lines, consumed) = complete_lines(data);
        for line in lines {
            match self.0.receive(line) {
                Ok(Received::Delivery { sent_nanos }) => {
                    inbox.delivery(Duration::from_nanos(now.saturating_sub(sent_nanos)));
                }
                Ok(Received::Joined) => inbox.ready(),
                Ok(Received::Other) => {}
                Err(e) => {
                    let detail = format!("{e:?}");
                    return Err(match e {
                        ChatError::Refused(_) => Fault::Refused(detail),
                        ChatError::Malformed(_) => Fault::Malformed(detail),
                        ChatError::Misrouted { .. } => Fault::Mismatch(detail),
                    });
                }
            }
        }
        Ok(consumed)
    }

    fn receiver(&self) -> Option<&ChatClient> {
        Some(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inflight::InFlight;
    use crate::recorder::{Errors, Recorder};

    fn shared(threads: usize) -> Shared {
        Shared::new(LoadSpec {
            workload: Workload::Chat {
                rooms: 1,
                senders: 3,
            },
            connections: 4,
            threads,
            rate: Some(300.0),
            ..LoadSpec::example()
        })
    }

    #[test]
    fn clients_are_numbered_over_threads_and_senders_carry_the_rate() {
        let shared = shared(2);
        let client = ChatLoadClient::new(&shared, 1, 2);
        assert_eq!(client.0.id(), 5, "the 3rd client of thread 1 of 2");
        assert!(!client.sends());
        assert!(ChatLoadClient::new(&shared, 1, 0).sends());
        // Senders 0 and 2 are on thread 0, sender 1 on thread 1.
        assert_eq!(ChatLoadClient::thread_rate(&shared.spec, 0), 200.0);
        assert_eq!(ChatLoadClient::thread_rate(&shared.spec, 1), 100.0);
    }

    #[test]
    fn a_member_is_ready_once_in_its_room_and_times_deliveries() {
        let shared = shared(1);
        let mut client = ChatLoadClient::new(&shared, 0, 1);
        let mut hello = Vec::new();
        assert!(!client.on_connected(&mut hello), "not before joining");
        assert!(hello.starts_with(b"/nick "));
        let mut in_flight = InFlight::new(Instant::now());
        let mut recorder = Recorder::new();
        let mut inbox = Inbox::new(&mut in_flight, Some(&mut recorder));
        let joined = format!(
            "* {} joined #room0\n<x> m 0 0 0\n<x> m 2 0",
            client.0.nick()
        );
        let consumed = client
            .on_bytes(joined.as_bytes(), &mut inbox, &shared)
            .unwrap();
        assert_eq!(
            consumed,
            joined.len() - "<x> m 2 0".len(),
            "a line unfinished"
        );
        assert!(inbox.became_ready() && client.is_ready());
        assert_eq!((inbox.answered(), inbox.received()), (0, 1));
        assert_eq!(recorder.requests, 1);
    }

    #[test]
    fn faults_are_counted_by_kind() {
        let shared = shared(1);
        let mut client = ChatLoadClient::new(&shared, 0, 1);
        let mut in_flight = InFlight::new(Instant::now());
        let mut inbox = Inbox::new(&mut in_flight, None);
        let mut errors = Errors::default();
        for line in [
            &b"! nick taken\n"[..],
            b"<x> m 0 zero 1\n",
            b"<x> m 7 0 1\n",
        ] {
            let fault = client.on_bytes(line, &mut inbox, &shared).unwrap_err();
            fault.count(&mut errors);
        }
        let counted = (errors.refused, errors.malformed, errors.mismatches);
        assert_eq!(counted, (1, 1, 1), "{errors:?}");
    }
}
