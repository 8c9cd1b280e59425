//! What the proxy counts, per worker and per upstream: requests,
//! failures, pooled connections, reuse, upstream latency. Each worker
//! keeps its own [`ProxyStats`] (no locks on the request path) and
//! publishes a copy to the shared [`ProxyBoard`] once a second, where the
//! stats line, the end summary and a `/metrics` listener read it.

use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Upper bounds of the upstream latency buckets, in milliseconds (the
/// last bucket, beyond them, is unbounded).
pub const LATENCY_BOUNDS_MS: [u64; 13] =
    [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

/// Upstream latency: from sending a request's head to receiving the
/// response head (nginx's `$upstream_header_time`), in buckets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Latency {
    /// Count per bucket of [`LATENCY_BOUNDS_MS`], and one beyond.
    pub buckets: [u64; LATENCY_BOUNDS_MS.len() + 1],
    pub count: u64,
    pub sum_us: u64,
}

impl Latency {
    pub fn record(&mut self, d: Duration) {
        let ms = d.as_millis();
        let at = LATENCY_BOUNDS_MS
            .iter()
            .position(|&b| ms <= u128::from(b))
            .unwrap_or(LATENCY_BOUNDS_MS.len());
        self.buckets[at] += 1;
        self.count += 1;
        self.sum_us += u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
    }

    fn add(&mut self, other: &Latency) {
        for (a, b) in self.buckets.iter_mut().zip(other.buckets) {
            *a += b;
        }
        self.count += other.count;
        self.sum_us += other.sum_us;
    }

    /// The bucket bound at or below which `q` (0..1) of the samples fall:
    /// an upper estimate, at the bucket's resolution. `None` without
    /// samples or beyond the last bound.
    pub fn quantile_ms(&self, q: f64) -> Option<u64> {
        if self.count == 0 {
            return None;
        }
        let want = (q * self.count as f64).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n;
            if seen >= want {
                return LATENCY_BOUNDS_MS.get(i).copied();
            }
        }
        None
    }
}

/// One upstream's figures in one worker (or summed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpstreamStats {
    /// As the command line named it.
    pub name: String,
    /// Requests sent to it (retries count again).
    pub requests: u64,
    /// Requests that failed on it: connect refused or timed out, reset or
    /// closed before the response ended, timed out, malformed response.
    pub failures: u64,
    /// Connections opened to it.
    pub connects: u64,
    /// Requests sent on a pooled connection.
    pub reused: u64,
    /// Connections busy with a request now (a gauge).
    pub active: u64,
    /// Idle pooled connections now (a gauge).
    pub idle: u64,
    /// Times passive or active health took it out.
    pub downs: u64,
    /// Whether it is up now (1) or out (0), for the gauge.
    pub up: u64,
    pub latency: Latency,
}

impl UpstreamStats {
    /// Share of requests sent on a reused connection, 0..1.
    pub fn reuse_ratio(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.reused as f64 / self.requests as f64
        }
    }

    fn add(&mut self, o: &UpstreamStats) {
        self.requests += o.requests;
        self.failures += o.failures;
        self.connects += o.connects;
        self.reused += o.reused;
        self.active += o.active;
        self.idle += o.idle;
        self.downs += o.downs;
        self.up = self.up.max(o.up);
        self.latency.add(&o.latency);
    }
}

/// A worker's proxy figures (or every worker's, summed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    pub upstreams: Vec<UpstreamStats>,
    /// Responses relayed to clients (interim 1xx not counted).
    pub responses: u64,
    /// Requests refused before reaching an upstream (malformed,
    /// ambiguous framing: the smuggling refusals).
    pub refused: u64,
    /// 502 answered: no upstream reachable, or a broken response.
    pub bad_gateway: u64,
    /// 504 answered: the upstream was silent past `--upstream-timeout`.
    pub gateway_timeout: u64,
    /// Client connections cut because the upstream failed after the
    /// response head was sent (no status could be sent any more).
    pub aborted: u64,
    /// Requests retried on another (or the same) upstream.
    pub retries: u64,
    /// Tunnels opened (a 101 relayed to an upgrade request).
    pub tunnels: u64,
    /// Tunnels open now (a gauge).
    pub tunnels_open: u64,
    /// Tunnels closed for being idle past `--upstream-timeout`.
    pub tunnel_timeouts: u64,
    /// Bytes tunnelled from clients to upstreams.
    pub tunnel_bytes_up: u64,
    /// Bytes tunnelled from upstreams to clients.
    pub tunnel_bytes_down: u64,
    /// Requests by duration: from the start of the loop pass that read
    /// the request's head to the pass that queued its response head (or
    /// the proxy's own answer) to the client.
    pub requests: reactor::Histogram,
}

impl ProxyStats {
    pub fn new(names: &[String]) -> ProxyStats {
        ProxyStats {
            upstreams: names
                .iter()
                .map(|name| UpstreamStats {
                    name: name.clone(),
                    up: 1,
                    ..UpstreamStats::default()
                })
                .collect(),
            ..ProxyStats::default()
        }
    }

    pub fn add(&mut self, o: &ProxyStats) {
        if self.upstreams.is_empty() {
            self.upstreams = o
                .upstreams
                .iter()
                .map(|u| UpstreamStats {
                    name: u.name.clone(),
                    ..UpstreamStats::default()
                })
                .collect();
        }
        for (a, b) in self.upstreams.iter_mut().zip(&o.upstreams) {
            a.add(b);
        }
        self.responses += o.responses;
        self.refused += o.refused;
        self.bad_gateway += o.bad_gateway;
        self.gateway_timeout += o.gateway_timeout;
        self.aborted += o.aborted;
        self.retries += o.retries;
        self.tunnels += o.tunnels;
        self.tunnels_open += o.tunnels_open;
        self.tunnel_timeouts += o.tunnel_timeouts;
        self.tunnel_bytes_up += o.tunnel_bytes_up;
        self.tunnel_bytes_down += o.tunnel_bytes_down;
        self.requests.add(&o.requests);
    }

    /// The compact form for the `--stats` line and the end summary:
    /// `proxy: 1200 responses, 0 refused, 502 0, 504 0, aborted 0,
    /// tunnels 0 open 3 total 2048 bytes, retries 0;
    /// 127.0.0.1:8081 up 600 req 0 fail 2 connects 10 idle 3 busy 99.7%
    /// reuse p50 1ms p99 5ms; …`.
    pub fn compact(&self) -> String {
        let mut line = format!(
            "proxy: {} responses, {} refused, 502 {}, 504 {}, aborted {}, \
             tunnels {} open {} total {} bytes, retries {}",
            self.responses,
            self.refused,
            self.bad_gateway,
            self.gateway_timeout,
            self.aborted,
            self.tunnels_open,
            self.tunnels,
            self.tunnel_bytes_up + self.tunnel_bytes_down,
            self.retries
        );
        for u in &self.upstreams {
            let ms = |q| {
                u.latency
                    .quantile_ms(q)
                    .map_or_else(|| "-".to_string(), |ms| format!("{ms}ms"))
            };
            let _ = write!(
                line,
                "; {} {} {} req {} fail {} connects {} idle {} busy {:.1}% reuse p50 {} p99 {}",
                u.name,
                if u.up > 0 { "up" } else { "down" },
                u.requests,
                u.failures,
                u.connects,
                u.idle,
                u.active,
                u.reuse_ratio() * 100.0,
                ms(0.5),
                ms(0.99),
            );
        }
        line
    }
}

/// Every worker's last published [`ProxyStats`], for readers on other
/// threads (the end summary, a `--metrics` listener). Written once a
/// second per worker and at its end: the lock is never on the request
/// path.
#[derive(Debug)]
pub struct ProxyBoard {
    workers: Mutex<Vec<ProxyStats>>,
}

impl ProxyBoard {
    pub fn new(workers: usize) -> Arc<ProxyBoard> {
        Arc::new(ProxyBoard {
            workers: Mutex::new(vec![ProxyStats::default(); workers.max(1)]),
        })
    }

    pub fn publish(&self, worker: usize, stats: &ProxyStats) {
        let mut workers = self.workers.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(slot) = workers.get_mut(worker) {
            slot.clone_from(stats);
        }
    }

    /// Each worker's figures as last published.
    pub fn workers(&self) -> Vec<ProxyStats> {
        self.workers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every worker's figures summed.
    pub fn total(&self) -> ProxyStats {
        let mut total = ProxyStats::default();
        for w in self.workers() {
            total.add(&w);
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_buckets_and_quantiles() {
        let mut l = Latency::default();
        assert_eq!(l.quantile_ms(0.5), None);
        for ms in [0, 1, 3, 3, 40, 40, 40, 40, 40, 20_000] {
            l.record(Duration::from_millis(ms));
        }
        assert_eq!(l.count, 10);
        assert_eq!(l.buckets[0], 2, "0 and 1 ms at or below 1 ms");
        assert_eq!(l.quantile_ms(0.2), Some(1));
        assert_eq!(l.quantile_ms(0.5), Some(50));
        assert_eq!(l.quantile_ms(0.99), None, "beyond the last bound");
    }

    #[test]
    fn workers_sum_and_the_compact_line_shows_each_upstream() {
        let names = ["a:1".to_string(), "b:2".to_string()];
        let mut w0 = ProxyStats::new(&names);
        w0.upstreams[0].requests = 10;
        w0.upstreams[0].reused = 9;
        w0.upstreams[0].latency.record(Duration::from_millis(2));
        w0.responses = 10;
        let mut w1 = ProxyStats::new(&names);
        w1.upstreams[1].requests = 5;
        w1.upstreams[1].failures = 1;
        w1.bad_gateway = 1;
        let board = ProxyBoard::new(2);
        board.publish(0, &w0);
        board.publish(1, &w1);
        let total = board.total();
        assert_eq!(total.upstreams[0].requests, 10);
        assert_eq!(total.upstreams[1].failures, 1);
        let line = total.compact();
        assert!(
            line.starts_with("proxy: 10 responses, 0 refused, 502 1"),
            "{line}"
        );
        assert!(
            line.contains("; a:1 up 10 req 0 fail 0 connects 0 idle 0 busy 90.0% reuse p50 2ms"),
            "{line}"
        );
        assert!(line.contains("; b:2 up 5 req 1 fail"), "{line}");
    }
}
