//! The figures of one worker's Redis links, summed over workers with
//! [`ClusterStats::add`]. I/O free.

/// Latencies by power of two of microseconds: bucket `i` counts those
/// below 2^i µs (the last, everything above 2^30 µs, about 18 minutes).
pub const BUCKETS: usize = 32;

/// Counters of the Redis side of the chat.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClusterStats {
    /// Room messages (and notices) handed to the publisher connection.
    pub published: u64,
    /// Messages received from other nodes (each counted once per worker
    /// subscribed: see docs/chat-cluster.md).
    pub received: u64,
    /// Messages that could not be published: no connection to Redis, or
    /// its output over [`PUBLISH_BACKLOG`](super::PUBLISH_BACKLOG).
    pub lost: u64,
    /// Of `lost`, those dropped for the backlog.
    pub lost_backlog: u64,
    /// Messages other nodes published to this worker's rooms that never
    /// arrived, whatever lost them: gaps in their numbering (see
    /// `sequence.rs`), counted once per worker subscribed, as `received`.
    pub lost_from_peers: u64,
    /// Connections to Redis made again after one was lost.
    pub reconnects: u64,
    /// Connections given up for silence: a connect that did not complete,
    /// or no reply within the reply timeout (see `link.rs`).
    pub timeouts: u64,
    /// Whether both links are up now (a gauge: summed, how many workers).
    pub up: u64,
    latency: [u64; BUCKETS],
    /// The latencies recorded, summed (for a histogram's `_sum`).
    latency_sum_us: u64,
}

impl ClusterStats {
    /// Adds another worker's counters.
    pub fn add(&mut self, other: &ClusterStats) {
        self.published += other.published;
        self.received += other.received;
        self.lost += other.lost;
        self.lost_backlog += other.lost_backlog;
        self.lost_from_peers += other.lost_from_peers;
        self.reconnects += other.reconnects;
        self.timeouts += other.timeouts;
        self.up += other.up;
        for (mine, theirs) in self.latency.iter_mut().zip(other.latency.iter()) {
            *mine += theirs;
        }
        self.latency_sum_us = self.latency_sum_us.saturating_add(other.latency_sum_us);
    }

    /// Records a cross-node delivery latency.
    pub fn record_latency(&mut self, micros: u64) {
        let bucket = (u64::BITS - micros.leading_zeros()) as usize;
        self.latency[bucket.min(BUCKETS - 1)] += 1;
        self.latency_sum_us = self.latency_sum_us.saturating_add(micros);
    }

    /// The latency histogram: counts per bucket (not cumulative), bucket
    /// `i` of those up to 2^i µs but the last (everything above), and the
    /// sum of the latencies in µs.
    pub fn latency_histogram(&self) -> (&[u64; BUCKETS], u64) {
        (&self.latency, self.latency_sum_us)
    }

    /// The latency `q` (0 to 1) of the deliveries recorded, rounded up to
    /// its bucket's bound, in microseconds; `None` before any.
    pub fn latency_quantile(&self, q: f64) -> Option<u64> {
        let total: u64 = self.latency.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, n) in self.latency.iter().enumerate() {
            seen += n;
            if seen >= rank {
                return Some(1u64 << i);
            }
        }
        Some(1u64 << (BUCKETS - 1))
    }

    /// `published N, from peers N, lost from peers N, lost N (backlog N),
    /// reconnects N, timeouts N, latency p50 ≤X p99 ≤Y`: the summary's
    /// and the stats line's words.
    pub fn describe(&self) -> String {
        let latency = match (self.latency_quantile(0.5), self.latency_quantile(0.99)) {
            (Some(p50), Some(p99)) => format!("p50 <={} p99 <={}", micros(p50), micros(p99)),
            _ => "none yet".into(),
        };
        format!(
            "published {}, from peers {}, lost from peers {}, lost {} (backlog {}), reconnects {}, timeouts {}, cross-node latency {latency}",
            self.published, self.received, self.lost_from_peers, self.lost, self.lost_backlog, self.reconnects, self.timeouts
        )
    }
}

fn micros(us: u64) -> String {
    if us < 1000 {
        format!("{us}us")
    } else if us < 1_000_000 {
        format!("{}ms", us / 1000)
    } else {
        format!("{}s", us / 1_000_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_round_up_to_their_bucket() {
        let mut s = ClusterStats::default();
        assert_eq!(s.latency_quantile(0.99), None);
        for _ in 0..98 {
            s.record_latency(300); // below 512
        }
        s.record_latency(5_000); // below 8192
        s.record_latency(0);
        assert_eq!(s.latency_quantile(0.5), Some(512));
        assert_eq!(s.latency_quantile(0.99), Some(512));
        assert_eq!(s.latency_quantile(1.0), Some(8192));
        let mut sum = ClusterStats::default();
        sum.add(&s);
        sum.add(&s);
        assert_eq!(sum.latency_quantile(1.0), Some(8192));
        assert!(
            s.describe().contains("p50 <=512us p99 <=512us"),
            "{}",
            s.describe()
        );
        s.record_latency(u64::MAX);
        assert_eq!(s.latency_quantile(1.0), Some(1 << 31));
    }
}
