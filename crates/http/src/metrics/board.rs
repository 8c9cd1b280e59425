//! The board the workers of one server share their HTTP counters on.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::server::HttpStats;

/// Each worker's HTTP counters, shared by the workers of one server so any
/// of them can answer `/metrics` for all. Each worker writes only its own
/// slot, with relaxed stores to a cache line of its own: no lock and no
/// shared line on the request path. A reader may see one slot's fields
/// from different moments; each field on its own only grows.
pub struct HttpBoard {
    slots: Vec<Slot>,
}

/// One worker's slot, aligned so neighbours never share a cache line
/// (128 bytes: adjacent-line prefetch pairs 64-byte lines).
#[repr(align(128))]
#[derive(Default)]
struct Slot {
    responses: [AtomicU64; 6],
    refused: AtomicU64,
    header_timeouts: AtomicU64,
}

impl HttpBoard {
    /// A board for `workers` workers, all zero.
    pub fn new(workers: usize) -> HttpBoard {
        HttpBoard {
            slots: (0..workers).map(|_| Slot::default()).collect(),
        }
    }

    /// Records worker `worker`'s counters. Only that worker's thread may
    /// call this (one writer per slot); out-of-range workers are ignored.
    pub fn record(&self, worker: usize, http: &HttpStats) {
        let Some(slot) = self.slots.get(worker) else {
            return;
        };
        for (mine, value) in slot.responses.iter().zip(http.responses) {
            mine.store(value, Ordering::Relaxed);
        }
        slot.refused.store(http.refused, Ordering::Relaxed);
        slot.header_timeouts
            .store(http.header_timeouts, Ordering::Relaxed);
    }

    /// Worker `worker`'s counters as last recorded.
    pub fn read(&self, worker: usize) -> HttpStats {
        let Some(slot) = self.slots.get(worker) else {
            return HttpStats::default();
        };
        let mut http = HttpStats::default();
        for (value, theirs) in http.responses.iter_mut().zip(&slot.responses) {
            *value = theirs.load(Ordering::Relaxed);
        }
        http.refused = slot.refused.load(Ordering::Relaxed);
        http.header_timeouts = slot.header_timeouts.load(Ordering::Relaxed);
        http
    }

    /// How many workers it has slots for.
    pub fn workers(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn board_slots_hold_each_workers_latest_figures() {
        let board = HttpBoard::new(2);
        let mut http = HttpStats::default();
        http.responses[2] = 7;
        http.refused = 1;
        board.record(1, &http);
        board.record(5, &http); // no such worker: ignored
        assert_eq!(board.read(1), http);
        assert_eq!(board.read(0), HttpStats::default());
        assert_eq!(board.workers(), 2);
        assert_eq!(std::mem::align_of::<Slot>(), 128);
    }
}
