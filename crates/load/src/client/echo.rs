//! The echo client: fixed-size messages cut from the connection's pattern,
//! every returned byte checked against what was sent at its position (see
//! [`crate::echo`]).

use std::time::Instant;

use super::{Client, Fault, Inbox};
use crate::echo::EchoStream;
use crate::spec::Workload;
use crate::worker::Shared;

pub(crate) struct EchoClient(EchoStream);

impl Client for EchoClient {
    const REPLIES: bool = true;

    fn new(shared: &Shared, thread: usize, n: u64) -> Self {
        let Workload::Echo { size } = shared.spec.workload else {
            unreachable!("an echo client runs the echo workload");
        };
        // Threads' seeds are far apart: no two connections of a run send
        // the same bytes, so crossed streams show as mismatches.
        let seed = ((thread as u64) << 40) + n + 1;
        EchoClient(EchoStream::new(seed, size))
    }

    fn append_requests(&mut self, out: &mut Vec<u8>, count: usize, _: Instant, _: &Shared) {
        for _ in 0..count {
            self.0.append_message(out);
        }
    }

    fn on_bytes(&mut self, data: &[u8], inbox: &mut Inbox, _: &Shared) -> Result<usize, Fault> {
        let done = self
            .0
            .receive(data)
            .map_err(|e| Fault::Mismatch(format!("{e:?}")))?;
        for _ in 0..done {
            inbox.reply(None);
        }
        Ok(data.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inflight::InFlight;
    use crate::spec::LoadSpec;

    #[test]
    fn replies_answer_whole_messages_and_a_wrong_byte_is_a_mismatch() {
        let shared = Shared::new(LoadSpec {
            workload: Workload::Echo { size: 4 },
            ..LoadSpec::example()
        });
        let now = Instant::now();
        let mut client = EchoClient::new(&shared, 1, 0);
        let mut wire = Vec::new();
        client.append_requests(&mut wire, 3, now, &shared);
        assert_eq!(wire.len(), 12);
        let mut in_flight = InFlight::new(now);
        for _ in 0..3 {
            in_flight.push(now, now);
        }
        let mut inbox = Inbox::new(&mut in_flight, None);
        assert_eq!(client.on_bytes(&wire[..6], &mut inbox, &shared).unwrap(), 6);
        assert_eq!(inbox.answered(), 1);
        wire[7] ^= 1;
        assert!(matches!(
            client.on_bytes(&wire[6..], &mut inbox, &shared),
            Err(Fault::Mismatch(_))
        ));
        // Another thread's connection sends other bytes.
        let mut other = Vec::new();
        EchoClient::new(&shared, 0, 0).append_requests(&mut other, 3, now, &shared);
        let mut mine = Vec::new();
        EchoClient::new(&shared, 1, 0).append_requests(&mut mine, 3, now, &shared);
        assert_ne!(other, mine);
    }
}
