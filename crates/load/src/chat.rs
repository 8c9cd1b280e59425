//! The chat workload, one client at a time: which room it joins, what its
//! messages carry, and what it checks in every line it receives. I/O free.
//!
//! Client `i` of a run (numbered over all threads) joins room `i % rooms`;
//! clients `0..senders` also send. A message is the line
//! `m SENDER SEQ NANOS`: the sender's client number, its own sequence
//! number (from 0), and the send time in nanoseconds since the run's epoch
//! (one process, one clock), so every receiver measures the delivery
//! latency itself. The server delivers it to the other members of the room
//! as `<nick> m SENDER SEQ NANOS`.
//!
//! Every receiver tracks, per sender of its room, the next sequence number
//! due and how many arrived. A number below the next one due arrived after
//! a later one: reordered (or duplicated). At the end, what a sender sent
//! minus what arrived is lost: a gap that a later message exposed, or a
//! tail that never came. Sending starts only once every client has joined,
//! so every receiver is owed every message of every sender in its room.

use std::fmt::Write as _;

/// What a received line meant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Received {
    /// The client's own join notice (or the server saying it was already
    /// in the room): it is now a member.
    Joined,
    /// A message of the workload, sent at `sent_nanos`.
    Delivery { sent_nanos: u64 },
    /// Anything else: other users' notices and text, private messages.
    Other,
}

/// A line that should not have come.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatError {
    /// The server refused something the client said (`! ...`): a nick
    /// taken, a line too long.
    Refused(String),
    /// A workload message that does not parse.
    Malformed(String),
    /// A workload message from a client that is not a sender of this
    /// client's room, or from itself.
    Misrouted { sender: u64 },
}

/// Per sender of the room: the next sequence number due, and how many of
/// its messages arrived.
#[derive(Clone, Copy, Debug, Default)]
struct Track {
    next: u64,
    delivered: u64,
}

/// One chat client of the workload.
#[derive(Debug)]
pub struct ChatClient {
    id: u64,
    room: u64,
    rooms: u64,
    senders: u64,
    nick: String,
    joined: bool,
    /// Messages sent (the next sequence number).
    sent: u64,
    /// Indexed by `sender / rooms`: the senders of room `r` are
    /// `r, r + rooms, r + 2 * rooms, ...` below `senders`.
    tracks: Vec<Track>,
    reordered: u64,
}

impl ChatClient {
    /// Client `id` of a run with `rooms` rooms and `senders` senders; its
    /// nick is `{tag}-{id}` (the tag tells runs apart on a shared server).
    pub fn new(id: u64, rooms: u64, senders: u64, tag: &str) -> ChatClient {
        let rooms = rooms.max(1);
        let room = id % rooms;
        let in_room = senders.saturating_sub(room).div_ceil(rooms);
        ChatClient {
            id,
            room,
            rooms,
            senders,
            nick: format!("{tag}-{id}"),
            joined: false,
            sent: 0,
            tracks: vec![Track::default(); in_room as usize],
            reordered: 0,
        }
    }

    /// The client's number in the run.
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn nick(&self) -> &str {
        &self.nick
    }

    pub fn is_sender(&self) -> bool {
        self.id < self.senders
    }

    pub fn is_joined(&self) -> bool {
        self.joined
    }

    /// Appends what the client says on connecting: its nick and its room.
    pub fn hello(&self, out: &mut Vec<u8>) {
        let _ = write!(Bytes(out), "/nick {}\n/join room{}\n", self.nick, self.room);
    }

    /// Appends the next message, stamped `now_nanos`, and counts it sent.
    pub fn append_message(&mut self, out: &mut Vec<u8>, now_nanos: u64) {
        let _ = writeln!(Bytes(out), "m {} {} {now_nanos}", self.id, self.sent);
        self.sent += 1;
    }

    /// Messages sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// Checks one line (without its newline) and updates the counts.
    ///
    /// # Errors
    /// A refusal by the server, or a workload message that is malformed or
    /// did not belong to this client's room.
    pub fn receive(&mut self, line: &[u8]) -> Result<Received, ChatError> {
        if let Some(rest) = line.strip_prefix(b"<") {
            let Some(at) = rest.windows(2).position(|w| w == b"> ") else {
                return Ok(Received::Other);
            };
            return match rest[at + 2..].strip_prefix(b"m ") {
                Some(body) => self.message(body),
                None => Ok(Received::Other),
            };
        }
        if !self.joined {
            let joined = format!("* {} joined #room{}", self.nick, self.room);
            let already = format!("! already in #room{}", self.room);
            if line == joined.as_bytes() || line == already.as_bytes() {
                self.joined = true;
                return Ok(Received::Joined);
            }
        }
        if line.starts_with(b"! ") {
            return Err(ChatError::Refused(
                String::from_utf8_lossy(line).into_owned(),
            ));
        }
        Ok(Received::Other)
    }

    /// `SENDER SEQ NANOS` of a workload message.
    fn message(&mut self, body: &[u8]) -> Result<Received, ChatError> {
        let malformed = || ChatError::Malformed(String::from_utf8_lossy(body).into_owned());
        let text = std::str::from_utf8(body).map_err(|_| malformed())?;
        let mut fields = text.split(' ').map(str::parse::<u64>);
        let (Some(Ok(sender)), Some(Ok(seq)), Some(Ok(sent_nanos)), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(malformed());
        };
        if sender % self.rooms != self.room || sender >= self.senders || sender == self.id {
            return Err(ChatError::Misrouted { sender });
        }
        let track = &mut self.tracks[(sender / self.rooms) as usize];
        if seq < track.next {
            self.reordered += 1;
        } else {
            track.next = seq + 1;
        }
        track.delivered += 1;
        Ok(Received::Delivery { sent_nanos })
    }

    /// The senders of this client's room other than itself, with their
    /// index into `tracks`.
    fn room_senders(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        (self.room..self.senders)
            .step_by(self.rooms as usize)
            .enumerate()
            .filter(|&(_, s)| s != self.id)
    }

    /// Deliveries owed to this client, given what each sender sent
    /// (`sent[s]` for sender `s`).
    pub fn expected(&self, sent: &[u64]) -> u64 {
        self.room_senders()
            .map(|(_, s)| sent.get(s as usize).copied().unwrap_or(0))
            .sum()
    }

    /// Workload messages received.
    pub fn delivered(&self) -> u64 {
        self.tracks.iter().map(|t| t.delivered).sum()
    }

    /// Deliveries owed and not (yet) received.
    pub fn lost(&self, sent: &[u64]) -> u64 {
        self.lost_by_sender(sent).map(|(_, lost)| lost).sum()
    }

    /// Deliveries owed and not (yet) received, per sender of the room:
    /// `(sender, lost)`.
    pub fn lost_by_sender<'a>(&'a self, sent: &'a [u64]) -> impl Iterator<Item = (u64, u64)> + 'a {
        self.room_senders().map(|(k, s)| {
            let owed = sent.get(s as usize).copied().unwrap_or(0);
            (s, owed.saturating_sub(self.tracks[k].delivered))
        })
    }

    /// Messages that arrived after a later one of the same sender.
    pub fn reordered(&self) -> u64 {
        self.reordered
    }
}

/// A run's (or a thread's) chat counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChatTotals {
    /// Messages sent.
    pub sent: u64,
    /// Messages sent in the measured window.
    pub window_sent: u64,
    /// Workload messages received, over all receivers.
    pub delivered: u64,
    /// Deliveries owed: each message to every other member of its room.
    pub expected: u64,
    /// Deliveries owed and never received.
    pub lost: u64,
    /// Messages received after a later one of the same sender.
    pub reordered: u64,
}

impl ChatTotals {
    /// Adds what `client` received, given what every sender sent.
    pub fn receiver(&mut self, client: &ChatClient, sent: &[u64]) {
        self.delivered += client.delivered();
        self.expected += client.expected(sent);
        self.lost += client.lost(sent);
        self.reordered += client.reordered();
    }

    pub fn add(&mut self, other: &ChatTotals) {
        self.sent += other.sent;
        self.window_sent += other.window_sent;
        self.delivered += other.delivered;
        self.expected += other.expected;
        self.lost += other.lost;
        self.reordered += other.reordered;
    }
}

/// `fmt::Write` into a byte vector.
struct Bytes<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for Bytes<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// The complete lines at the start of `data` (each without its newline),
/// and how many bytes they take: the rest is an unfinished line.
pub fn complete_lines(data: &[u8]) -> (impl Iterator<Item = &[u8]>, usize) {
    let end = data.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let lines = data[..end]
        .split_inclusive(|&b| b == b'\n')
        .map(|line| &line[..line.len() - 1]);
    (lines, end)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The line `sender` sends, as a member of its room receives it.
    fn delivered(from: &mut ChatClient, nanos: u64) -> Vec<u8> {
        let mut out = b"<".to_vec();
        out.extend_from_slice(from.nick().as_bytes());
        out.extend_from_slice(b"> ");
        from.append_message(&mut out, nanos);
        out.pop(); // the newline
        out
    }

    #[test]
    fn rooms_senders_and_hello() {
        // 3 rooms, senders 0..4: room 0 holds clients 0, 3, 6, ... and its
        // senders are 0 and 3; room 1's sender is 1, room 2's is 2.
        let c = ChatClient::new(7, 3, 4, "t");
        assert_eq!(c.nick(), "t-7");
        assert!(!c.is_sender());
        let mut out = Vec::new();
        c.hello(&mut out);
        assert_eq!(out, b"/nick t-7\n/join room1\n");
        assert_eq!(c.expected(&[10, 20, 30, 40]), 20);
        let c = ChatClient::new(0, 3, 4, "t");
        assert!(c.is_sender());
        // Room 0's senders are 0 and 3; it owes itself nothing.
        assert_eq!(c.expected(&[10, 20, 30, 40]), 40);
        assert_eq!(
            ChatClient::new(5, 3, 4, "t").expected(&[10, 20, 30, 40]),
            30
        );
    }

    #[test]
    fn joins_on_its_own_notice_or_already_there() {
        let mut c = ChatClient::new(2, 2, 1, "t");
        for other in [
            &b"* welcome to tenk chat, guest3; /help lists the commands"[..],
            b"* guest3 joined #lobby",
            b"* guest3 is now known as t-2",
            b"* t-2 left #lobby",
            b"* t-20 joined #room0",
        ] {
            assert_eq!(c.receive(other), Ok(Received::Other));
        }
        assert!(!c.is_joined());
        assert_eq!(c.receive(b"* t-2 joined #room0"), Ok(Received::Joined));
        assert!(c.is_joined());
        let mut c = ChatClient::new(2, 2, 1, "t");
        assert_eq!(c.receive(b"! already in #room0"), Ok(Received::Joined));
    }

    #[test]
    fn refusals_are_errors() {
        let mut c = ChatClient::new(0, 1, 1, "t");
        assert_eq!(
            c.receive(b"! nick t-0 is taken"),
            Err(ChatError::Refused("! nick t-0 is taken".into()))
        );
    }

    #[test]
    fn in_order_messages_are_delivered_with_their_stamp() {
        let mut sender = ChatClient::new(0, 1, 2, "t");
        let mut receiver = ChatClient::new(5, 1, 2, "t");
        for nanos in [100, 200, 300] {
            let line = delivered(&mut sender, nanos);
            assert_eq!(
                receiver.receive(&line),
                Ok(Received::Delivery { sent_nanos: nanos })
            );
        }
        assert_eq!(sender.sent(), 3);
        assert_eq!(receiver.delivered(), 3);
        assert_eq!(receiver.lost(&[3, 0]), 0);
        assert_eq!(receiver.reordered(), 0);
        // Sender 1 sent two that never came: lost at the end.
        assert_eq!(receiver.expected(&[3, 2]), 5);
        assert_eq!(receiver.lost(&[3, 2]), 2);
        assert_eq!(
            receiver.lost_by_sender(&[3, 2]).collect::<Vec<_>>(),
            [(0, 0), (1, 2)],
            "the lost ones are sender 1's"
        );
    }

    #[test]
    fn gaps_are_lost_and_late_arrivals_reordered() {
        let mut receiver = ChatClient::new(9, 1, 1, "t");
        let line = |seq: u64| format!("<t-0> m 0 {seq} 1").into_bytes();
        for seq in [0, 1, 3, 4] {
            receiver.receive(&line(seq)).unwrap();
        }
        assert_eq!(receiver.lost(&[5]), 1, "2 is missing");
        receiver.receive(&line(2)).unwrap();
        assert_eq!(receiver.reordered(), 1, "2 came after 3");
        assert_eq!(receiver.lost(&[5]), 0, "but it came");
        assert_eq!(receiver.lost(&[7]), 2, "5 and 6 never came");
    }

    #[test]
    fn foreign_and_malformed_messages() {
        let mut c = ChatClient::new(1, 2, 4, "t");
        // Sender 0 is in room 0, not 1; sender 9 is no sender; 1 is itself.
        for sender in [0, 9, 1] {
            let line = format!("<x> m {sender} 0 1").into_bytes();
            assert_eq!(c.receive(&line), Err(ChatError::Misrouted { sender }));
        }
        for bad in [
            &b"<x> m 3 0"[..],
            b"<x> m 3 0 1 2",
            b"<x> m a b c",
            b"<x> m 3 0 \xff",
        ] {
            assert!(
                matches!(c.receive(bad), Err(ChatError::Malformed(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        // Other people's text in the room is not the workload's business.
        assert_eq!(c.receive(b"<human> hello"), Ok(Received::Other));
        assert_eq!(c.receive(b"<odd nick"), Ok(Received::Other));
        assert_eq!(c.receive(b"*human* psst"), Ok(Received::Other));
        assert_eq!(
            c.receive(b"<x> m 3 0 5"),
            Ok(Received::Delivery { sent_nanos: 5 })
        );
    }

    #[test]
    fn complete_lines_leave_the_unfinished_one() {
        let (lines, used) = complete_lines(b"a\nbc\n\npartial");
        assert_eq!(lines.collect::<Vec<_>>(), [&b"a"[..], b"bc", b""]);
        assert_eq!(used, 6);
        let (lines, used) = complete_lines(b"no newline");
        assert_eq!(lines.count(), 0);
        assert_eq!(used, 0);
    }
}
