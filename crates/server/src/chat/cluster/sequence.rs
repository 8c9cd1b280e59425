//! Counting what other nodes published and this worker never got, whatever
//! lost it: a Redis outage, Redis cutting this subscriber for falling
//! behind (`client-output-buffer-limit pubsub`), a message in flight on a
//! connection that died, a publisher dropping above its backlog.
//!
//! Each publisher numbers its messages per room ([`Numbering`]): a
//! *stream* is one worker's messages to one room in one run of its node,
//! numbered from 1 (per room, because a receiver hears only the rooms it
//! subscribes to). A receiver ([`Gaps`]) keeps the last number it saw of
//! each stream in each room it subscribes to, and a jump is a gap. A gap is
//! counted as lost only after [`GRACE_TICKS`]: messages a publisher wrote
//! on a connection it then gave up may still reach Redis, and be
//! delivered, after those it sent on the next one.
//!
//! What is not counted: messages lost at the end of a stream (nothing
//! later shows the gap), or before the first one a receiver saw; a room's
//! gaps are forgotten (counted) when this worker unsubscribes. Both tables
//! forget streams idle for [`FORGET_TICKS`], so they stay bounded. I/O free;
//! time is the caller's tick count (one a second).

use std::collections::{HashMap, VecDeque};

/// Ticks a gap waits for late messages before it counts as lost.
pub const GRACE_TICKS: u64 = 3;
/// Ticks after which an idle stream is forgotten (a receiver that hears
/// from it again starts afresh, counting nothing before).
pub const FORGET_TICKS: u64 = 300;
/// Gaps kept open per stream; beyond, the oldest is counted at once.
const OPEN_GAPS: usize = 32;

/// A publisher's numbering: the stream and next number for each room.
#[derive(Debug, Default)]
pub struct Numbering {
    rooms: HashMap<String, Counter>,
    /// Streams started so far: a room forgotten and published to again
    /// gets a new stream, so its numbers starting over is no gap.
    started: u64,
}

#[derive(Debug)]
struct Counter {
    stream: String,
    last: u64,
    tick: u64,
}

impl Numbering {
    /// The stream and number of the next message to `room`; `prefix`
    /// names this publisher's run (no spaces).
    pub fn next(&mut self, room: &str, prefix: &str, tick: u64) -> (&str, u64) {
        if !self.rooms.contains_key(room) {
            self.started += 1;
            let counter = Counter {
                stream: format!("{prefix}.{}", self.started),
                last: 0,
                tick,
            };
            self.rooms.insert(room.to_string(), counter);
        }
        let counter = self.rooms.get_mut(room).expect("inserted above");
        counter.last += 1;
        counter.tick = tick;
        (&counter.stream, counter.last)
    }

    /// Forgets the rooms not published to since `FORGET_TICKS` before `now`.
    pub fn forget_idle(&mut self, now: u64) {
        self.rooms
            .retain(|_, c| now.saturating_sub(c.tick) < FORGET_TICKS);
    }
}

/// A receiver's view of every stream it hears, per room.
#[derive(Debug, Default)]
pub struct Gaps {
    rooms: HashMap<String, HashMap<String, Stream>>,
    lost: u64,
}

#[derive(Debug)]
struct Stream {
    last: u64,
    /// Missing numbers not counted yet: `(from, to, tick seen)`, oldest first.
    open: VecDeque<(u64, u64, u64)>,
    tick: u64,
}

impl Stream {
    /// Counts the open gaps for which `done` holds.
    fn close(&mut self, lost: &mut u64, mut done: impl FnMut(u64) -> bool) {
        self.open.retain(|&(from, to, seen)| {
            let close = done(seen);
            if close {
                *lost += to - from + 1;
            }
            !close
        });
    }
}

impl Gaps {
    /// Messages counted lost so far.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Message `seq` of stream `origin` (`NODE STREAM`) arrived in `room`.
    pub fn seen(&mut self, room: &str, origin: &str, seq: u64, tick: u64) {
        if !self.rooms.contains_key(room) {
            self.rooms.insert(room.to_string(), HashMap::new());
        }
        let streams = self.rooms.get_mut(room).expect("inserted above");
        let Some(stream) = streams.get_mut(origin) else {
            let fresh = Stream {
                last: seq,
                open: VecDeque::new(),
                tick,
            };
            streams.insert(origin.to_string(), fresh);
            return;
        };
        stream.tick = tick;
        if seq > stream.last + 1 {
            stream.open.push_back((stream.last + 1, seq - 1, tick));
            if stream.open.len() > OPEN_GAPS {
                if let Some((from, to, _)) = stream.open.pop_front() {
                    self.lost += to - from + 1;
                }
            }
        }
        if seq > stream.last {
            stream.last = seq;
            return;
        }
        // Late: fill it in if it was missing.
        let Some(at) = stream
            .open
            .iter()
            .position(|&(from, to, _)| (from..=to).contains(&seq))
        else {
            return;
        };
        let (from, to, seen) = stream.open[at];
        match (seq == from, seq == to) {
            (true, true) => {
                stream.open.remove(at);
            }
            (true, false) => stream.open[at].0 = seq + 1,
            (false, true) => stream.open[at].1 = seq - 1,
            (false, false) => {
                stream.open[at].1 = seq - 1;
                stream.open.insert(at + 1, (seq + 1, to, seen));
            }
        }
    }

    /// This worker unsubscribed from `room`: what it misses from now on
    /// is not lost; its open gaps are.
    pub fn forget_room(&mut self, room: &str) {
        if let Some(streams) = self.rooms.remove(room) {
            for mut stream in streams.into_values() {
                stream.close(&mut self.lost, |_| true);
            }
        }
    }

    /// Once a tick: counts the gaps older than [`GRACE_TICKS`], and
    /// forgets the streams idle for [`FORGET_TICKS`].
    pub fn tick(&mut self, now: u64) {
        let lost = &mut self.lost;
        for streams in self.rooms.values_mut() {
            streams.retain(|_, stream| {
                stream.close(lost, |seen| now.saturating_sub(seen) >= GRACE_TICKS);
                if now.saturating_sub(stream.tick) >= FORGET_TICKS {
                    stream.close(lost, |_| true);
                    return false;
                }
                true
            });
        }
        self.rooms.retain(|_, streams| !streams.is_empty());
    }

    /// Counts every open gap (at exit: no late message will come).
    pub fn finish(&mut self) {
        let lost = &mut self.lost;
        for streams in self.rooms.values_mut() {
            for stream in streams.values_mut() {
                stream.close(lost, |_| true);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbering_is_per_room_and_restarts_in_a_new_stream() {
        let mut n = Numbering::default();
        assert_eq!(n.next("a", "9.0", 0), ("9.0.1", 1));
        assert_eq!(n.next("a", "9.0", 0), ("9.0.1", 2));
        assert_eq!(n.next("b", "9.0", 0), ("9.0.2", 1));
        n.forget_idle(FORGET_TICKS - 1);
        assert_eq!(n.next("b", "9.0", FORGET_TICKS), ("9.0.2", 2));
        n.forget_idle(FORGET_TICKS);
        // "a" was idle since tick 0: forgotten, numbered anew.
        assert_eq!(n.next("a", "9.0", FORGET_TICKS), ("9.0.3", 1));
    }

    #[test]
    fn a_gap_counts_once_its_grace_is_over() {
        let mut g = Gaps::default();
        g.seen("r", "A s", 5, 0); // first seen: nothing before counts
        g.seen("r", "A s", 6, 0);
        g.seen("r", "A s", 10, 1); // 7, 8, 9 missing
        g.tick(GRACE_TICKS);
        assert_eq!(g.lost(), 0);
        g.tick(1 + GRACE_TICKS);
        assert_eq!(g.lost(), 3);
        g.seen("r", "A s", 11, 5);
        g.tick(10);
        assert_eq!(g.lost(), 3);
    }

    #[test]
    fn late_messages_fill_their_gap() {
        let mut g = Gaps::default();
        g.seen("r", "A s", 1, 0);
        g.seen("r", "A s", 10, 0); // 2..=9 missing
        for late in [2, 9, 5] {
            g.seen("r", "A s", late, 0);
        }
        // 3, 4, 6, 7, 8 are still missing.
        g.finish();
        assert_eq!(g.lost(), 5);
    }

    #[test]
    fn streams_and_rooms_are_apart() {
        let mut g = Gaps::default();
        g.seen("r", "A s", 1, 0);
        g.seen("r", "B s", 7, 0);
        g.seen("q", "A s", 3, 0);
        g.seen("r", "A s", 2, 0);
        g.seen("r", "B s", 8, 0);
        g.finish();
        assert_eq!(g.lost(), 0);
        // Unsubscribed from "r" and back: a fresh start, not a gap.
        g.forget_room("r");
        g.seen("r", "A s", 40, 1);
        g.finish();
        assert_eq!(g.lost(), 0);
    }

    #[test]
    fn forgetting_counts_open_gaps_and_bounds_the_table() {
        let mut g = Gaps::default();
        g.seen("r", "A s", 1, 0);
        g.seen("r", "A s", 3, 0);
        g.forget_room("r");
        assert_eq!(g.lost(), 1);
        g.seen("q", "A s", 1, 0);
        g.tick(FORGET_TICKS);
        assert!(g.rooms.is_empty());
        for n in 0..=OPEN_GAPS as u64 + 1 {
            g.seen("q", "B s", 1 + 2 * n, 0);
        }
        // 33 gaps of one: the 33rd opened counts the oldest at once.
        assert_eq!(g.lost(), 2);
    }
}
