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

use reactor::{PreambleCounts, Stats, TransportCounts};

use crate::route_stats::RouteFigures;
use crate::server::HttpStats;

mod board;
mod histogram;
mod http_families;
mod reactor_families;
mod routes;

pub use board::HttpBoard;
pub(crate) use histogram::histogram_series;
pub use histogram::render_histograms;
pub use http_families::render_http;
pub use reactor_families::{render_reactor, PASS_DURATION};
pub use routes::render_request_durations;

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
