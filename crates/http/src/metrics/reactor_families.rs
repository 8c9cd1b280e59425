//! The reactor's families: connections, closes by cause, syscalls, busy
//! time; the transport's and the preamble's; each worker's, with its pass
//! duration histogram.

use reactor::{Histogram, PreambleCounts, Stats, TransportCounts};

use super::histogram::render_histograms;
use super::{family, sample, seconds, single, WorkerFigures};

/// The part of [`render`](super::render) every server has, HTTP or not: the reactor's
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
