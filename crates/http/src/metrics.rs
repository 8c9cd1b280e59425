//! `/metrics` in the Prometheus text exposition format (version 0.0.4):
//! the reactor's counters and the HTTP layer's, named and typed after
//! Prometheus conventions (`_total` counters, base units, labels for
//! kinds of the same thing).
//!
//! Process totals keep their plain names (`tenk_connections_active`); each
//! reactor thread's figures are separate `tenk_worker_*` families labelled
//! `worker="0"`, `worker="1"`, … (`worker="acceptor"` for a dispatching
//! acceptor thread). Separate families, not a label on the totals, so that
//! `sum(tenk_worker_connections_active)` equals `tenk_connections_active`
//! instead of counting everything twice.
//!
//! With a transport (TLS) that counts its handshakes, its families follow
//! the reactor's, named after its protocol (`tenk_tls_…`), and the closes
//! gain its two causes; without one, none of them appear (not
//! even as zeros: a plain server has no handshakes to count). A preamble
//! (`--proxy-protocol`) adds its own families (`tenk_proxy_protocol_…`)
//! and the same two causes: a refused or late header is such a close.
//!
//! Per-route series ([`route_stats`](crate::route_stats)), summed over
//! workers, are labelled by the route's `method` and `route` (its
//! pattern, so `/users/:id` is one series however many users): requests
//! by status `class`, and a duration histogram.

use std::fmt::Write as _;

use reactor::{Histogram, PreambleCounts, Stats, TransportCounts};

use crate::route_stats::RouteFigures;
use crate::server::HttpStats;

mod board;
mod routes;

pub use board::HttpBoard;
pub use routes::render_request_durations;
use routes::render_routes;

/// The Content-Type of the exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// One reactor thread's figures, for the series labelled by worker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerFigures {
    /// The `worker` label's value: its index, or `acceptor`.
    pub label: String,
    /// Its reactor's counters.
    pub reactor: Stats,
    /// HTTP responses it sent (refusals included), if it serves HTTP.
    pub responses: Option<u64>,
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &str, value: impl std::fmt::Display) {
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

/// Nanoseconds as seconds, exactly (no float rounding): `1.250000000`.
fn seconds(ns: u64) -> String {
    format!("{}.{:09}", ns / 1_000_000_000, ns % 1_000_000_000)
}

/// Renders the process's reactor counters (`reactor`, a total over
/// threads), its transport's handshakes (`transport`, see
/// [`reactor::Io::transport_counts`]) and preamble headers (`preamble`,
/// [`reactor::Io::preamble_counts`]), each worker's, the HTTP layer's, and
/// each route's.
pub fn render(
    reactor: &Stats,
    transport: Option<&TransportCounts>,
    preamble: Option<&PreambleCounts>,
    workers: &[WorkerFigures],
    http: &HttpStats,
    routes: &[RouteFigures],
) -> String {
    let mut out = render_reactor(reactor, transport, preamble, workers);
    render_http(&mut out, http, routes);
    out
}

/// The part of [`render`] every server has, HTTP or not: the reactor's
/// counters, the transport's and preamble's, each worker's (with its pass
/// duration histogram, `tenk_reactor_pass_duration_seconds`).
pub fn render_reactor(
    reactor: &Stats,
    transport: Option<&TransportCounts>,
    preamble: Option<&PreambleCounts>,
    workers: &[WorkerFigures],
) -> String {
    let mut out = String::with_capacity(4096 + 1024 * workers.len());
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
    let mut causes = vec![
        ("client", c.client),
        ("idle_timeout", c.idle_timeout),
        ("write_timeout", c.write_timeout),
        ("buffer_limit", c.buffer_limit),
        ("error", c.error),
        ("local", c.local),
    ];
    if transport.is_some() || preamble.is_some() {
        causes.push(("handshake_failed", c.handshake_failed));
        causes.push(("handshake_timeout", c.handshake_timeout));
    }
    for (cause, value) in causes {
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
        "tenk_busy_seconds_total",
        "counter",
        "Time reactor threads spent outside epoll_wait (handling events), summed over threads.",
    );
    sample(
        &mut out,
        "tenk_busy_seconds_total",
        "",
        seconds(reactor.busy_ns),
    );
    if let Some(preamble) = preamble {
        render_preamble(&mut out, preamble);
    }
    if let Some(transport) = transport {
        render_transport(&mut out, transport, c.handshake_timeout);
    }
    render_workers(&mut out, workers);
    out
}

/// The HTTP layer's part of [`render`]: responses by class, refusals,
/// header timeouts, and each route's families.
pub fn render_http(out: &mut String, http: &HttpStats, routes: &[RouteFigures]) {
    family(
        out,
        "tenk_http_responses_total",
        "counter",
        "HTTP responses, by status class.",
    );
    for (i, class) in ["other", "1xx", "2xx", "3xx", "4xx", "5xx"]
        .iter()
        .enumerate()
    {
        sample(
            out,
            "tenk_http_responses_total",
            &format!("class=\"{class}\""),
            http.responses[i],
        );
    }
    single(
        out,
        "tenk_http_requests_refused_total",
        "counter",
        "Requests refused as malformed or hostile.",
        http.refused,
    );
    single(
        out,
        "tenk_http_header_timeouts_total",
        "counter",
        "Request heads cut by the header timeout (408).",
        http.header_timeouts,
    );
    render_routes(out, routes);
}

/// The transport's families, `tenk_<protocol>_…` (for TLS:
/// `tenk_tls_handshakes_total{kind="full"|"resumed"}`,
/// `tenk_tls_handshake_failures_total{reason="error"|"timeout"}`,
/// `tenk_tls_handshakes_by_version_total{version="1.2"|"1.3"}`).
///
/// Kinds and versions split the same completed handshakes two ways, and
/// are two families rather than two labels of one because the transport
/// counts them apart (no full-and-1.2 count): within each family the sum
/// over its label is all completed handshakes, as Prometheus' naming
/// advice asks. Failures are a family of their own: summed with the
/// completed ones they would be attempts, not handshakes. `timeouts` are
/// the reactor's (only it knows the clock); refusals the transport's.
fn render_transport(out: &mut String, t: &TransportCounts, timeouts: u64) {
    let p = t.protocol;
    let versions: Vec<(String, u64)> = t
        .versions
        .iter()
        .map(|(v, n)| (format!("version=\"{v}\""), *n))
        .collect();
    let families = [
        (
            "handshakes_total",
            "Handshakes completed, by kind: full, or resuming an earlier session.",
            vec![
                ("kind=\"full\"".to_string(), t.full),
                ("kind=\"resumed\"".to_string(), t.resumed),
            ],
        ),
        (
            "handshake_failures_total",
            "Handshakes that did not complete, by reason: refused (error) or cut at the handshake timeout.",
            vec![
                ("reason=\"error\"".to_string(), t.failed),
                ("reason=\"timeout\"".to_string(), timeouts),
            ],
        ),
        (
            "handshakes_by_version_total",
            "Handshakes completed, by protocol version negotiated.",
            versions,
        ),
    ];
    for (suffix, help, samples) in families {
        let name = format!("tenk_{p}_{suffix}");
        family(out, &name, "counter", help);
        for (labels, value) in samples {
            sample(out, &name, &labels, value);
        }
    }
}

/// The preamble's families, `tenk_<protocol>_…` (for the PROXY protocol:
/// `tenk_proxy_protocol_headers_total{source="client"|"socket"}`, headers
/// read that named the client or left the socket's address, and
/// `tenk_proxy_protocol_refused_total`). Connections whose header did not
/// come in time are `tenk_connections_closed_total{cause="handshake_timeout"}`:
/// the reactor's count, which with TLS behind also counts handshakes.
fn render_preamble(out: &mut String, p: &PreambleCounts) {
    let headers = format!("tenk_{}_headers_total", p.protocol);
    family(
        out,
        &headers,
        "counter",
        "Headers read, by the address the connection goes by: the client's they named, or the socket's (none named: LOCAL, UNKNOWN).",
    );
    sample(out, &headers, "source=\"client\"", p.with_client);
    sample(out, &headers, "source=\"socket\"", p.without_client);
    single(
        out,
        &format!("tenk_{}_refused_total", p.protocol),
        "counter",
        "Connections closed without a byte sent because they did not start with a valid header.",
        p.refused,
    );
}

/// The `tenk_worker_*` families, one sample per worker each.
fn render_workers(out: &mut String, workers: &[WorkerFigures]) {
    type Field = fn(&WorkerFigures) -> Option<String>;
    let families: [(&str, &str, &str, Field); 6] = [
        (
            "tenk_worker_connections_active",
            "gauge",
            "Connections open now, by worker thread.",
            |w| Some(w.reactor.active.to_string()),
        ),
        (
            "tenk_worker_connections_accepted_total",
            "counter",
            "Inbound connections accepted (or adopted from the acceptor), by worker thread.",
            |w| Some(w.reactor.accepted.to_string()),
        ),
        (
            "tenk_worker_events_total",
            "counter",
            "Events returned by epoll_wait, by worker thread.",
            |w| Some(w.reactor.events.to_string()),
        ),
        (
            "tenk_worker_epoll_waits_total",
            "counter",
            "epoll_wait calls that returned (wake-ups), by worker thread.",
            |w| Some(w.reactor.epoll_waits.to_string()),
        ),
        (
            "tenk_worker_busy_seconds_total",
            "counter",
            "Time spent outside epoll_wait (handling events), by worker thread.",
            |w| Some(seconds(w.reactor.busy_ns)),
        ),
        (
            "tenk_worker_http_responses_total",
            "counter",
            "HTTP responses sent (refusals included), by worker thread.",
            |w| w.responses.map(|n| n.to_string()),
        ),
    ];
    for (name, kind, help, field) in families {
        let values: Vec<(&str, String)> = workers
            .iter()
            .filter_map(|w| Some((w.label.as_str(), field(w)?)))
            .collect();
        if values.is_empty() {
            continue;
        }
        family(out, name, kind, help);
        for (label, value) in values {
            sample(out, name, &format!("worker=\"{label}\""), value);
        }
    }
    let passes: Vec<(String, Histogram)> = workers
        .iter()
        .map(|w| (format!("worker=\"{}\"", w.label), w.reactor.passes))
        .collect();
    render_histograms(
        out,
        PASS_DURATION,
        "Time from a reactor's wake-up (epoll_wait returning) to the end of its pass, by worker thread.",
        &passes,
    );
}

/// The pass histogram's family name.
pub const PASS_DURATION: &str = "tenk_reactor_pass_duration_seconds";

/// A histogram family `name` of [`reactor::Histogram`]s, one series per
/// `(labels, histogram)` (labels as `k="v",…`); nothing without series.
pub fn render_histograms(out: &mut String, name: &str, help: &str, series: &[(String, Histogram)]) {
    if series.is_empty() {
        return;
    }
    family(out, name, "histogram", help);
    for (labels, h) in series {
        histogram_series(
            out,
            name,
            labels,
            &Histogram::BOUNDS_NS,
            &h.buckets,
            h.sum_ns,
        );
    }
}

/// One series of a histogram: cumulative `_bucket`s for `bounds_ns` and
/// `+Inf` (`buckets` has one count more than `bounds_ns`, not
/// cumulative), `_sum` in seconds, `_count`.
pub(crate) fn histogram_series(
    out: &mut String,
    name: &str,
    labels: &str,
    bounds_ns: &[u64],
    buckets: &[u64],
    sum_ns: u64,
) {
    let sep = if labels.is_empty() { "" } else { "," };
    let mut below = 0;
    for (i, &count) in buckets.iter().enumerate() {
        below += count;
        let le = bounds_ns
            .get(i)
            .map_or_else(|| "+Inf".to_string(), |&ns| bound(ns));
        let bucket = format!("{labels}{sep}le=\"{le}\"");
        sample(out, &format!("{name}_bucket"), &bucket, below);
    }
    sample(out, &format!("{name}_sum"), labels, seconds(sum_ns));
    sample(out, &format!("{name}_count"), labels, below);
}

/// `ns` as seconds, without trailing zeros: `0.0001`, `2.5`, `10`.
fn bound(ns: u64) -> String {
    let text = seconds(ns);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(label: &str, active: u64, busy_ns: u64, responses: Option<u64>) -> WorkerFigures {
        WorkerFigures {
            label: label.to_string(),
            reactor: Stats {
                active,
                accepted: active,
                busy_ns,
                ..Stats::default()
            },
            responses,
        }
    }

    /// Checks the exposition's shape: each family's HELP and TYPE once,
    /// before its samples; counters end in `_total`; values are numbers.
    pub(crate) fn check_shape(text: &str) {
        let mut typed = std::collections::HashSet::new();
        let mut helped = std::collections::HashSet::new();
        let mut histograms = std::collections::HashSet::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap();
                assert!(helped.insert(name.to_string()), "HELP twice: {name}");
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
                if kind == "histogram" {
                    histograms.insert(name.to_string());
                }
                if kind == "counter" {
                    assert!(name.ends_with("_total"), "counters end in _total: {name}");
                }
                assert!(typed.insert(name.to_string()), "TYPE twice: {name}");
            } else {
                let (series, value) = line.rsplit_once(' ').unwrap();
                let mut name = series.split('{').next().unwrap();
                if let Some(base) = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .filter(|base| histograms.contains(*base))
                {
                    name = base;
                }
                assert!(typed.contains(name), "{name} has no TYPE before it");
                assert!(helped.contains(name), "{name} has no HELP before it");
                value.parse::<f64>().unwrap();
            }
        }
    }

    #[test]
    fn every_sample_has_help_and_type_and_parses() {
        let mut reactor = Stats {
            accepted: 3,
            active: 2,
            busy_ns: 1_250_000_000,
            ..Stats::default()
        };
        reactor.closes.idle_timeout = 1;
        let mut http = HttpStats::default();
        http.responses[2] = 10;
        let text = render(
            &reactor,
            None,
            None,
            &[worker("0", 2, 7, Some(10))],
            &http,
            &[],
        );
        check_shape(&text);
        assert!(text.contains("tenk_connections_accepted_total 3\n"));
        assert!(text.contains("tenk_connections_closed_total{cause=\"idle_timeout\"} 1\n"));
        assert!(text.contains("tenk_http_responses_total{class=\"2xx\"} 10\n"));
        assert!(text.contains("tenk_busy_seconds_total 1.250000000\n"));
        assert!(text.contains("tenk_worker_busy_seconds_total{worker=\"0\"} 0.000000007\n"));
        assert!(text.contains("tenk_worker_http_responses_total{worker=\"0\"} 10\n"));
    }

    #[test]
    fn a_transport_adds_its_handshake_families_and_close_causes() {
        let mut reactor = Stats::default();
        reactor.closes.handshake_failed = 3;
        reactor.closes.handshake_timeout = 1;
        let tls = TransportCounts {
            protocol: "tls",
            full: 4,
            resumed: 6,
            failed: 2,
            versions: vec![("1.2", 1), ("1.3", 9)],
        };
        let text = render(&reactor, Some(&tls), None, &[], &HttpStats::default(), &[]);
        check_shape(&text);
        for series in [
            "tenk_tls_handshakes_total{kind=\"full\"} 4\n",
            "tenk_tls_handshakes_total{kind=\"resumed\"} 6\n",
            "tenk_tls_handshake_failures_total{reason=\"error\"} 2\n",
            "tenk_tls_handshake_failures_total{reason=\"timeout\"} 1\n",
            "tenk_tls_handshakes_by_version_total{version=\"1.2\"} 1\n",
            "tenk_tls_handshakes_by_version_total{version=\"1.3\"} 9\n",
            "tenk_connections_closed_total{cause=\"handshake_failed\"} 3\n",
            "tenk_connections_closed_total{cause=\"handshake_timeout\"} 1\n",
        ] {
            assert!(text.contains(series), "no {series:?} in\n{text}");
        }
        // Without one: no trace of handshakes, not even zeros.
        let plain = render(&reactor, None, None, &[], &HttpStats::default(), &[]);
        check_shape(&plain);
        assert!(!plain.contains("tls"), "{plain}");
        assert!(!plain.contains("handshake"), "{plain}");
    }

    #[test]
    fn a_preamble_adds_its_families_and_the_close_causes() {
        let mut reactor = Stats::default();
        reactor.closes.handshake_failed = 2;
        reactor.closes.handshake_timeout = 1;
        let proxy = PreambleCounts {
            protocol: "proxy_protocol",
            with_client: 5,
            without_client: 3,
            refused: 2,
        };
        let text = render(
            &reactor,
            None,
            Some(&proxy),
            &[],
            &HttpStats::default(),
            &[],
        );
        check_shape(&text);
        for series in [
            "tenk_proxy_protocol_headers_total{source=\"client\"} 5\n",
            "tenk_proxy_protocol_headers_total{source=\"socket\"} 3\n",
            "tenk_proxy_protocol_refused_total 2\n",
            "tenk_connections_closed_total{cause=\"handshake_failed\"} 2\n",
            "tenk_connections_closed_total{cause=\"handshake_timeout\"} 1\n",
        ] {
            assert!(text.contains(series), "no {series:?} in\n{text}");
        }
        // No TLS behind it: no TLS families.
        assert!(!text.contains("tls"), "{text}");
    }

    #[test]
    fn each_worker_gets_its_labelled_series_under_one_help_and_type() {
        let workers = [
            worker("0", 3, 2_000_000_000, Some(5)),
            worker("1", 2, 500, Some(4)),
            worker("acceptor", 0, 9, None),
        ];
        let text = render(
            &Stats::default(),
            None,
            None,
            &workers,
            &HttpStats::default(),
            &[],
        );
        check_shape(&text);
        for (label, active) in [("0", 3), ("1", 2), ("acceptor", 0)] {
            let series = format!("tenk_worker_connections_active{{worker=\"{label}\"}} {active}\n");
            assert!(text.contains(&series), "no {series:?} in\n{text}");
        }
        assert!(text.contains("tenk_worker_busy_seconds_total{worker=\"0\"} 2.000000000\n"));
        assert!(text.contains("tenk_worker_http_responses_total{worker=\"1\"} 4\n"));
        // The acceptor serves no HTTP: no sample rather than a zero.
        assert!(!text.contains("tenk_worker_http_responses_total{worker=\"acceptor\"}"));
    }

    #[test]
    fn no_http_anywhere_leaves_the_responses_family_out() {
        let text = render(
            &Stats::default(),
            None,
            None,
            &[worker("0", 0, 0, None)],
            &HttpStats::default(),
            &[],
        );
        check_shape(&text);
        assert!(!text.contains("tenk_worker_http_responses_total"));
        assert!(text.contains("tenk_worker_epoll_waits_total{worker=\"0\"} 0\n"));
    }
}
