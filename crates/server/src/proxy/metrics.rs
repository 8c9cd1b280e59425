//! The proxy's figures in the Prometheus text format (version 0.0.4), for
//! a `/metrics` listener to serve (the proxy itself serves no local
//! route): every worker's [`ProxyStats`] summed, per upstream labelled
//! `upstream="HOST:PORT"`.

use std::fmt::Write as _;

use super::stats::{ProxyStats, LATENCY_BOUNDS_MS};

/// Appends the proxy's families to `out`.
pub fn render(stats: &ProxyStats, out: &mut String) {
    let totals = [
        ("responses", "Responses relayed to clients", stats.responses),
        (
            "refused",
            "Requests refused before reaching an upstream",
            stats.refused,
        ),
        ("bad_gateway", "502 answers", stats.bad_gateway),
        ("gateway_timeout", "504 answers", stats.gateway_timeout),
        (
            "aborted",
            "Client connections cut after the response head",
            stats.aborted,
        ),
        ("retries", "Requests retried", stats.retries),
        ("tunnels", "Tunnels opened (101 relayed)", stats.tunnels),
        (
            "tunnel_timeouts",
            "Tunnels closed idle past the upstream timeout",
            stats.tunnel_timeouts,
        ),
    ];
    for (name, help, value) in totals {
        let _ = writeln!(out, "# HELP tenk_proxy_{name}_total {help}.");
        let _ = writeln!(out, "# TYPE tenk_proxy_{name}_total counter");
        let _ = writeln!(out, "tenk_proxy_{name}_total {value}");
    }
    let _ = writeln!(out, "# HELP tenk_proxy_tunnels_open Tunnels open now.");
    let _ = writeln!(out, "# TYPE tenk_proxy_tunnels_open gauge");
    let _ = writeln!(out, "tenk_proxy_tunnels_open {}", stats.tunnels_open);
    let name = "tenk_proxy_tunnel_bytes_total";
    let _ = writeln!(out, "# HELP {name} Bytes tunnelled, by direction.");
    let _ = writeln!(out, "# TYPE {name} counter");
    let _ = writeln!(out, "{name}{{direction=\"up\"}} {}", stats.tunnel_bytes_up);
    let _ = writeln!(
        out,
        "{name}{{direction=\"down\"}} {}",
        stats.tunnel_bytes_down
    );
    type Get = fn(&super::stats::UpstreamStats) -> u64;
    let families: [(&str, &str, &str, Get); 7] = [
        ("requests_total", "counter", "Requests sent", |u| u.requests),
        ("failures_total", "counter", "Requests failed", |u| {
            u.failures
        }),
        ("connects_total", "counter", "Connections opened", |u| {
            u.connects
        }),
        (
            "reused_total",
            "counter",
            "Requests sent on a pooled connection",
            |u| u.reused,
        ),
        (
            "connections_busy",
            "gauge",
            "Connections carrying a request",
            |u| u.active,
        ),
        (
            "connections_idle",
            "gauge",
            "Idle pooled connections",
            |u| u.idle,
        ),
        (
            "up",
            "gauge",
            "1 if the upstream is in (on any worker)",
            |u| u.up,
        ),
    ];
    for (name, kind, help, get) in families {
        let _ = writeln!(out, "# HELP tenk_proxy_upstream_{name} {help}.");
        let _ = writeln!(out, "# TYPE tenk_proxy_upstream_{name} {kind}");
        for u in &stats.upstreams {
            let _ = writeln!(
                out,
                "tenk_proxy_upstream_{name}{{upstream=\"{}\"}} {}",
                u.name,
                get(u)
            );
        }
    }
    let name = "tenk_proxy_upstream_latency_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} From a request's head sent upstream to the response head received."
    );
    let _ = writeln!(out, "# TYPE {name} histogram");
    for u in &stats.upstreams {
        let mut cumulative = 0;
        for (i, n) in u.latency.buckets.iter().enumerate() {
            cumulative += n;
            let le = LATENCY_BOUNDS_MS.get(i).map_or_else(
                || "+Inf".to_string(),
                |ms| format!("{}", *ms as f64 / 1000.0),
            );
            let _ = writeln!(
                out,
                "{name}_bucket{{upstream=\"{}\",le=\"{le}\"}} {cumulative}",
                u.name
            );
        }
        let sum = u.latency.sum_us as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum{{upstream=\"{}\"}} {sum}", u.name);
        let _ = writeln!(
            out,
            "{name}_count{{upstream=\"{}\"}} {}",
            u.name, u.latency.count
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn parses_as_prometheus_text_with_a_series_per_upstream() {
        let mut stats = ProxyStats::new(&["10.0.0.1:80".to_string(), "10.0.0.2:80".to_string()]);
        stats.responses = 7;
        stats.upstreams[0].requests = 5;
        stats.upstreams[1].idle = 3;
        stats.upstreams[0].latency.record(Duration::from_millis(3));
        stats.upstreams[0].latency.record(Duration::from_secs(20));
        let mut text = String::new();
        render(&stats, &mut text);
        let lines = text.lines().map(|l| Ok(l.to_string()));
        let scrape = prometheus_parse::Scrape::parse(lines).expect("valid exposition text");
        let value = |name: &str, upstream: &str| {
            scrape
                .samples
                .iter()
                .find(|s| s.metric == name && s.labels.get("upstream") == Some(upstream))
                .map(|s| match s.value {
                    prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => v,
                    _ => -1.0,
                })
        };
        assert_eq!(
            value("tenk_proxy_upstream_requests_total", "10.0.0.1:80"),
            Some(5.0)
        );
        assert_eq!(
            value("tenk_proxy_upstream_connections_idle", "10.0.0.2:80"),
            Some(3.0)
        );
        assert!(text.contains("tenk_proxy_responses_total 7\n"), "{text}");
        assert!(
            text.contains("tenk_proxy_upstream_latency_seconds_bucket{upstream=\"10.0.0.1:80\",le=\"0.005\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("tenk_proxy_upstream_latency_seconds_bucket{upstream=\"10.0.0.1:80\",le=\"+Inf\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "tenk_proxy_upstream_latency_seconds_count{upstream=\"10.0.0.1:80\"} 2\n"
            ),
            "{text}"
        );
    }
}
