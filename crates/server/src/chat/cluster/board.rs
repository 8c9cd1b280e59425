//! Every worker's Redis figures, for a `--metrics` scrape on worker 0 to
//! read: each worker publishes a copy once a second (the lock is never
//! on the message path).

use std::sync::{Arc, Mutex};

use super::ClusterStats;

/// Each worker's last published [`ClusterStats`].
#[derive(Debug)]
pub struct ClusterBoard {
    workers: Mutex<Vec<ClusterStats>>,
}

impl ClusterBoard {
    /// A board for `workers` workers, all zero.
    pub fn new(workers: usize) -> Arc<ClusterBoard> {
        Arc::new(ClusterBoard {
            workers: Mutex::new(vec![ClusterStats::default(); workers.max(1)]),
        })
    }

    /// Stores `stats` as worker `worker`'s; an unknown worker is ignored.
    pub fn publish(&self, worker: usize, stats: &ClusterStats) {
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = workers.get_mut(worker) {
            *slot = *stats;
        }
    }

    /// Each worker's figures as last published.
    pub fn workers(&self) -> Vec<ClusterStats> {
        self.workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
