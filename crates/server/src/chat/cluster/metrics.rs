//! The Redis side of the chat in the Prometheus text format (version
//! 0.0.4): each worker's [`ClusterStats`], labelled `worker="N"`.

use std::fmt::Write as _;

use super::ClusterStats;

/// Appends the `tenk_chat_redis_*` families of `workers` (worker `i`'s
/// figures at `i`) to `out`.
pub fn render(workers: &[ClusterStats], out: &mut String) {
    type Get = fn(&ClusterStats) -> u64;
    let families: [(&str, &str, &str, Get); 6] = [
        (
            "published_total",
            "counter",
            "Room messages (and notices) handed to the publisher connection",
            |s| s.published,
        ),
        (
            "received_total",
            "counter",
            "Messages received from other nodes (once per worker subscribed to their room)",
            |s| s.received,
        ),
        (
            "lost_from_peers_total",
            "counter",
            "Messages other nodes published to this worker's rooms that never arrived (gaps in their numbering)",
            |s| s.lost_from_peers,
        ),
        (
            "reconnects_total",
            "counter",
            "Connections to Redis made again after one was lost",
            |s| s.reconnects,
        ),
        (
            "timeouts_total",
            "counter",
            "Connections to Redis given up for silence (connect or reply timeout)",
            |s| s.timeouts,
        ),
        (
            "links_up",
            "gauge",
            "1 while both the publisher and the subscriber connection are up and answered by Redis",
            |s| s.up,
        ),
    ];
    for (name, kind, help, get) in families {
        family(out, &format!("tenk_chat_redis_{name}"), kind, help);
        for (id, s) in workers.iter().enumerate() {
            let _ = writeln!(out, "tenk_chat_redis_{name}{{worker=\"{id}\"}} {}", get(s));
        }
    }
    let name = "tenk_chat_redis_lost_total";
    family(
        out,
        name,
        "counter",
        "Messages not published: no connection to Redis (no_link), or its output over the backlog limit (backlog)",
    );
    for (id, s) in workers.iter().enumerate() {
        let no_link = s.lost - s.lost_backlog;
        let _ = writeln!(
            out,
            "{name}{{worker=\"{id}\",reason=\"no_link\"}} {no_link}"
        );
        let backlog = s.lost_backlog;
        let _ = writeln!(
            out,
            "{name}{{worker=\"{id}\",reason=\"backlog\"}} {backlog}"
        );
    }
    let name = "tenk_chat_redis_delivery_latency_seconds";
    family(
        out,
        name,
        "histogram",
        "From a message published on its node (its wall clock) to its receipt from Redis here",
    );
    for (id, s) in workers.iter().enumerate() {
        let (buckets, sum_us) = s.latency_histogram();
        let mut below = 0;
        for (i, n) in buckets.iter().enumerate() {
            below += n;
            // Bucket i holds latencies up to 2^i µs; the last, the rest.
            let le = if i + 1 < buckets.len() {
                format!("{}", (1u64 << i) as f64 / 1e6)
            } else {
                "+Inf".to_string()
            };
            let _ = writeln!(out, "{name}_bucket{{worker=\"{id}\",le=\"{le}\"}} {below}");
        }
        let sum = sum_us as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{worker=\"{id}\"}} {sum}");
        let _ = writeln!(out, "{name}_count{{worker=\"{id}\"}} {below}");
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}.");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_as_prometheus_text_with_a_series_per_worker() {
        let mut w1 = ClusterStats::default();
        w1.published = 4;
        w1.received = 3;
        w1.lost = 5;
        w1.lost_backlog = 2;
        w1.lost_from_peers = 6;
        w1.up = 1;
        w1.record_latency(300); // up to 512 µs
        w1.record_latency(3_000_000); // up to 2^22 µs
        let mut text = String::new();
        render(&[ClusterStats::default(), w1], &mut text);
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition text");
        let value = |name: &str, labels: &[(&str, &str)]| {
            scrape
                .samples
                .iter()
                .find(|s| {
                    s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
                })
                .map(|s| s.value.clone())
                .unwrap_or_else(|| panic!("no {name} {labels:?} in\n{text}"))
        };
        use prometheus_parse::Value::{Counter, Gauge, Histogram};
        assert_eq!(
            value("tenk_chat_redis_published_total", &[("worker", "1")]),
            Counter(4.0)
        );
        assert_eq!(
            value("tenk_chat_redis_received_total", &[("worker", "0")]),
            Counter(0.0)
        );
        assert_eq!(
            value("tenk_chat_redis_links_up", &[("worker", "1")]),
            Gauge(1.0)
        );
        assert_eq!(
            value("tenk_chat_redis_lost_from_peers_total", &[("worker", "1")]),
            Counter(6.0)
        );
        let lost = |reason| {
            value(
                "tenk_chat_redis_lost_total",
                &[("worker", "1"), ("reason", reason)],
            )
        };
        assert_eq!(lost("no_link"), Counter(3.0));
        assert_eq!(lost("backlog"), Counter(2.0));
        let Histogram(h) = value(
            "tenk_chat_redis_delivery_latency_seconds",
            &[("worker", "1")],
        ) else {
            panic!("not a histogram:\n{text}");
        };
        let at = |le: f64| h.iter().find(|b| b.less_than == le).map(|b| b.count);
        assert_eq!(at(0.000256), Some(0.0));
        assert_eq!(at(0.000512), Some(1.0));
        assert_eq!(at(f64::INFINITY), Some(2.0));
        assert!(
            text.contains("tenk_chat_redis_delivery_latency_seconds_sum{worker=\"1\"} 3.0003\n"),
            "{text}"
        );
        assert!(
            text.contains("tenk_chat_redis_delivery_latency_seconds_count{worker=\"1\"} 2\n"),
            "{text}"
        );
    }
}
