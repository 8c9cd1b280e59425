//! Who is where, for the whole server: nicks, rooms and their members, and
//! which workers have members in each room. One per server, shared by the
//! workers behind a lock (see [`Hub`](super::hub::Hub)); I/O free.
//!
//! A worker keeps its own members' tokens for fan-out; the directory only
//! answers the questions that span workers: is this nick taken, where is
//! it, who is in the room, and which other workers must be told of a
//! message.

use std::collections::{BTreeSet, HashMap};

#[derive(Default)]
struct Room {
    /// Sorted, for `/who`.
    nicks: BTreeSet<String>,
    /// Members per worker: messages are posted only to workers with some.
    per_worker: Vec<usize>,
}

/// Nicks and rooms of the whole server; `A` says where a nick's client
/// lives (its worker and token: [`Address`](super::hub::Address)).
pub struct Directory<A> {
    workers: usize,
    default_room: String,
    nicks: HashMap<String, A>,
    rooms: HashMap<String, Room>,
    next_guest: u64,
}

/// `/nick` asked for a name someone else has.
#[derive(Debug, PartialEq, Eq)]
pub struct NickTaken;

impl<A: Copy> Directory<A> {
    /// A directory for `workers` workers whose `default_room` always
    /// exists, even empty.
    pub fn new(workers: usize, default_room: &str) -> Directory<A> {
        Directory {
            workers: workers.max(1),
            default_room: default_room.to_string(),
            nicks: HashMap::new(),
            rooms: HashMap::new(),
            next_guest: 1,
        }
    }

    /// Gives a new client the first free `guestN` nick.
    pub fn claim_guest(&mut self, at: A) -> String {
        loop {
            let nick = format!("guest{}", self.next_guest);
            self.next_guest += 1;
            if !self.nicks.contains_key(&nick) {
                self.nicks.insert(nick.clone(), at);
                return nick;
            }
        }
    }

    /// Takes `nick` for `at`, unless someone has it.
    pub fn claim(&mut self, nick: &str, at: A) -> Result<(), NickTaken> {
        if self.nicks.contains_key(nick) {
            return Err(NickTaken);
        }
        self.nicks.insert(nick.to_string(), at);
        Ok(())
    }

    /// The first `guestN` nick free here, not taken yet.
    pub fn fresh_guest(&mut self) -> String {
        loop {
            let nick = format!("guest{}", self.next_guest);
            self.next_guest += 1;
            if !self.nicks.contains_key(&nick) {
                return nick;
            }
        }
    }

    /// Moves `old`'s room membership to `new`, which its client holds
    /// already (claimed while Redis answered), and frees `old`.
    pub fn rename_claimed(&mut self, old: &str, new: &str, room: &str) {
        self.nicks.remove(old);
        if let Some(room) = self.rooms.get_mut(room) {
            if room.nicks.remove(old) {
                room.nicks.insert(new.to_string());
            }
        }
    }

    /// Renames `old` (a member of `room`) to `new`, unless `new` is taken.
    pub fn rename(&mut self, old: &str, new: &str, room: &str) -> Result<(), NickTaken> {
        if self.nicks.contains_key(new) {
            return Err(NickTaken);
        }
        let Some(at) = self.nicks.remove(old) else {
            return Ok(());
        };
        self.nicks.insert(new.to_string(), at);
        if let Some(room) = self.rooms.get_mut(room) {
            if room.nicks.remove(old) {
                room.nicks.insert(new.to_string());
            }
        }
        Ok(())
    }

    /// Frees `nick` (its client quit or closed).
    pub fn release(&mut self, nick: &str) {
        self.nicks.remove(nick);
    }

    /// Where `nick` lives, if anyone has it.
    pub fn find(&self, nick: &str) -> Option<A> {
        self.nicks.get(nick).copied()
    }

    /// `nick`, on `worker`, enters `room` (created on first use).
    pub fn join(&mut self, room: &str, nick: &str, worker: usize) {
        let workers = self.workers;
        let room = self.rooms.entry(room.to_string()).or_insert_with(|| Room {
            nicks: BTreeSet::new(),
            per_worker: vec![0; workers],
        });
        room.nicks.insert(nick.to_string());
        room.per_worker[worker] += 1;
    }

    /// `nick`, on `worker`, leaves `room`; an empty room goes away, except
    /// the default one.
    pub fn leave(&mut self, room: &str, nick: &str, worker: usize) {
        let Some(entry) = self.rooms.get_mut(room) else {
            return;
        };
        if entry.nicks.remove(nick) {
            entry.per_worker[worker] = entry.per_worker[worker].saturating_sub(1);
        }
        if entry.nicks.is_empty() && room != self.default_room {
            self.rooms.remove(room);
        }
    }

    /// The workers other than `me` with members in `room`.
    pub fn other_workers_in(&self, room: &str, me: usize) -> Vec<usize> {
        self.rooms
            .get(room)
            .map(|r| {
                (0..self.workers)
                    .filter(|&w| w != me && r.per_worker[w] > 0)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every room with its member count, sorted by name.
    pub fn rooms(&self) -> Vec<(String, usize)> {
        let mut rooms: Vec<(String, usize)> = self
            .rooms
            .iter()
            .map(|(name, room)| (name.clone(), room.nicks.len()))
            .collect();
        rooms.sort();
        rooms
    }

    /// The nicks in `room`, sorted.
    pub fn who(&self, room: &str) -> Vec<String> {
        self.rooms
            .get(room)
            .map(|r| r.nicks.iter().cloned().collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (worker, connection) stands in for an address.
    fn at(worker: usize, conn: u32) -> (usize, u32) {
        (worker, conn)
    }

    #[test]
    fn guests_are_unique_across_workers() {
        let mut d = Directory::<(usize, u32)>::new(2, "lobby");
        let a = d.claim_guest(at(0, 1));
        let b = d.claim_guest(at(1, 1));
        assert_ne!(a, b);
        assert_eq!(d.find(&a), Some(at(0, 1)));
        assert_eq!(d.find(&b), Some(at(1, 1)));
        // A guest name taken by /nick is skipped.
        d.rename(&a, "guest3", "lobby").unwrap();
        let c = d.claim_guest(at(0, 2));
        assert_eq!(c, "guest4");
    }

    #[test]
    fn rename_refuses_a_taken_nick_and_follows_the_room() {
        let mut d = Directory::<(usize, u32)>::new(2, "lobby");
        let a = d.claim_guest(at(0, 1));
        let b = d.claim_guest(at(1, 1));
        d.join("lobby", &a, 0);
        d.join("lobby", &b, 1);
        assert_eq!(d.rename(&a, &b, "lobby"), Err(NickTaken));
        d.rename(&a, "alice", "lobby").unwrap();
        assert_eq!(d.who("lobby"), vec!["alice".to_string(), b.clone()]);
        assert_eq!(d.find("alice"), Some(at(0, 1)));
        assert_eq!(d.find(&a), None);
    }

    #[test]
    fn rooms_know_which_workers_to_tell() {
        let mut d = Directory::<(usize, u32)>::new(3, "lobby");
        d.join("rust", "a", 0);
        d.join("rust", "b", 2);
        d.join("rust", "c", 2);
        assert_eq!(d.other_workers_in("rust", 0), vec![2]);
        assert_eq!(d.other_workers_in("rust", 2), vec![0]);
        assert_eq!(d.other_workers_in("rust", 1), vec![0, 2]);
        d.leave("rust", "b", 2);
        assert_eq!(d.other_workers_in("rust", 0), vec![2]);
        d.leave("rust", "c", 2);
        assert!(d.other_workers_in("rust", 0).is_empty());
        assert_eq!(d.rooms(), vec![("rust".to_string(), 1)]);
        d.leave("rust", "a", 0);
        assert!(d.rooms().is_empty(), "an empty room goes away");
        d.join("lobby", "a", 0);
        d.leave("lobby", "a", 0);
        assert_eq!(
            d.rooms(),
            vec![("lobby".to_string(), 0)],
            "the default room stays"
        );
    }

    #[test]
    fn leaving_twice_does_not_underflow_the_counts() {
        let mut d = Directory::<(usize, u32)>::new(2, "lobby");
        d.join("lobby", "a", 1);
        d.join("lobby", "b", 1);
        d.leave("lobby", "a", 1);
        d.leave("lobby", "a", 1);
        assert_eq!(d.other_workers_in("lobby", 0), vec![1]);
    }
}
