//! `/metrics` in the Prometheus text exposition format (version 0.0.4):
//! the reactor's counters and the HTTP layer's, named and typed after
//! Prometheus conventions (`_total` counters, base units, labels for
//! kinds of the same thing).

use std::fmt::Write as _;

use reactor::Stats;

use crate::server::HttpStats;

/// The Content-Type of the exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &str, value: u64) {
    if labels.is_empty() {
        let _ = writeln!(out, "{name} {value}");
    } else {
        let _ = writeln!(out, "{name}{{{labels}}} {value}");
    }
}

fn single(out: &mut String, name: &str, kind: &str, help: &str, value: u64) {
    family(out, name, kind, help);
    sample(out, name, "", value);
}

/// Renders the reactor's and the HTTP layer's counters.
pub fn render(reactor: &Stats, http: &HttpStats) -> String {
    let mut out = String::with_capacity(4096);
    single(
        &mut out,
        "tenk_connections_accepted_total",
        "counter",
        "Inbound connections accepted.",
        reactor.accepted,
    );
    single(
        &mut out,
        "tenk_connections_active",
        "gauge",
        "Connections open now.",
        reactor.active,
    );
    single(
        &mut out,
        "tenk_connections_rejected_total",
        "counter",
        "Connections accepted and closed at once because max-conns was reached.",
        reactor.rejected,
    );
    family(
        &mut out,
        "tenk_connections_closed_total",
        "counter",
        "Connections closed, by cause.",
    );
    let c = &reactor.closes;
    for (cause, value) in [
        ("client", c.client),
        ("idle_timeout", c.idle_timeout),
        ("write_timeout", c.write_timeout),
        ("buffer_limit", c.buffer_limit),
        ("error", c.error),
        ("local", c.local),
    ] {
        sample(
            &mut out,
            "tenk_connections_closed_total",
            &format!("cause=\"{cause}\""),
            value,
        );
    }
    single(
        &mut out,
        "tenk_accept_pauses_total",
        "counter",
        "Times accepting paused because descriptors or memory ran out.",
        reactor.accept_pauses,
    );
    single(
        &mut out,
        "tenk_received_bytes_total",
        "counter",
        "Bytes read from connections.",
        reactor.bytes_in,
    );
    single(
        &mut out,
        "tenk_sent_bytes_total",
        "counter",
        "Bytes written to connections.",
        reactor.bytes_out,
    );
    family(
        &mut out,
        "tenk_syscalls_total",
        "counter",
        "System calls made by the reactor, by call.",
    );
    for (call, value) in [
        ("read", reactor.reads),
        ("write", reactor.writes),
        ("epoll_wait", reactor.epoll_waits),
        ("epoll_ctl", reactor.epoll_ctls),
        ("timerfd_settime", reactor.timer_arms),
    ] {
        sample(
            &mut out,
            "tenk_syscalls_total",
            &format!("call=\"{call}\""),
            value,
        );
    }
    single(
        &mut out,
        "tenk_events_total",
        "counter",
        "Events returned by epoll_wait.",
        reactor.events,
    );
    family(
        &mut out,
        "tenk_http_responses_total",
        "counter",
        "HTTP responses, by status class.",
    );
    for (i, class) in ["other", "1xx", "2xx", "3xx", "4xx", "5xx"]
        .iter()
        .enumerate()
    {
        sample(
            &mut out,
            "tenk_http_responses_total",
            &format!("class=\"{class}\""),
            http.responses[i],
        );
    }
    single(
        &mut out,
        "tenk_http_requests_refused_total",
        "counter",
        "Requests refused as malformed or hostile.",
        http.refused,
    );
    single(
        &mut out,
        "tenk_http_header_timeouts_total",
        "counter",
        "Request heads cut by the header timeout (408).",
        http.header_timeouts,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_has_help_and_type_and_parses() {
        let mut reactor = Stats {
            accepted: 3,
            active: 2,
            ..Stats::default()
        };
        reactor.closes.idle_timeout = 1;
        let mut http = HttpStats::default();
        http.responses[2] = 10;
        let text = render(&reactor, &http);
        let mut typed = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(["counter", "gauge"].contains(&kind), "{line}");
                if kind == "counter" {
                    assert!(name.ends_with("_total"), "counters end in _total: {name}");
                }
                typed.insert(name.to_string());
            } else if !line.starts_with('#') {
                let (series, value) = line.rsplit_once(' ').unwrap();
                let name = series.split('{').next().unwrap();
                assert!(typed.contains(name), "{name} has no TYPE before it");
                value.parse::<u64>().unwrap();
            }
        }
        assert!(text.contains("tenk_connections_accepted_total 3\n"));
        assert!(text.contains("tenk_connections_closed_total{cause=\"idle_timeout\"} 1\n"));
        assert!(text.contains("tenk_http_responses_total{class=\"2xx\"} 10\n"));
    }
}
