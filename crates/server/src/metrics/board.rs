//! Latency histograms the workers of one server share, for a scrape on
//! worker 0 to read: each worker writes only its own slot.

use std::sync::atomic::{AtomicU64, Ordering};

use reactor::Histogram;

/// One [`Histogram`] per worker, in atomics: a record is a load and a
/// store on the worker's own cache lines (no locked instruction, no
/// line shared with another writer), a read sees each count old or new.
pub struct HistogramBoard {
    slots: Vec<Slot>,
}

#[repr(align(128))]
#[derive(Default)]
struct Slot {
    buckets: [AtomicU64; Histogram::BOUNDS_NS.len() + 1],
    sum_ns: AtomicU64,
}

/// Adds to a counter only one thread writes.
#[inline(always)]
fn bump(counter: &AtomicU64, by: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

impl HistogramBoard {
    /// A board for `workers` workers, all empty.
    pub fn new(workers: usize) -> HistogramBoard {
        HistogramBoard {
            slots: (0..workers.max(1)).map(|_| Slot::default()).collect(),
        }
    }

    /// Records a duration of `ns` as worker `worker`'s. Only that
    /// worker's thread may call this; an unknown worker is ignored.
    #[inline]
    pub fn record(&self, worker: usize, ns: u64) {
        let Some(slot) = self.slots.get(worker) else {
            return;
        };
        bump(&slot.buckets[Histogram::bucket_of(ns)], 1);
        bump(&slot.sum_ns, ns);
    }

    /// Worker `worker`'s histogram so far.
    pub fn read(&self, worker: usize) -> Histogram {
        let mut h = Histogram::default();
        if let Some(slot) = self.slots.get(worker) {
            for (mine, theirs) in h.buckets.iter_mut().zip(&slot.buckets) {
                *mine = theirs.load(Ordering::Relaxed);
            }
            h.sum_ns = slot.sum_ns.load(Ordering::Relaxed);
        }
        h
    }

    /// Every worker's histogram labelled `worker="N"`, for
    /// [`http::metrics::render_histograms`].
    pub fn series(&self) -> Vec<(String, Histogram)> {
        (0..self.slots.len())
            .map(|id| (format!("worker=\"{id}\""), self.read(id)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_worker_reads_back_what_it_recorded() {
        let board = HistogramBoard::new(2);
        board.record(1, 5_000);
        board.record(1, 2_000_000_000);
        board.record(7, 1); // no such worker: ignored
        let mut want = Histogram::default();
        want.record(5_000);
        want.record(2_000_000_000);
        assert_eq!(board.read(1), want);
        assert_eq!(board.read(0), Histogram::default());
        assert_eq!(board.series()[1], ("worker=\"1\"".to_string(), want));
    }
}
