//! What `tenk serve` prints when a run ends: the summary line of a
//! [`ServeReport`], and the lines of its transport (TLS handshakes) and
//! preamble (PROXY protocol headers). Data to text only; the binary
//! decides where it goes.

use reactor::{CloseCounts, Exit, PreambleCounts, TransportCounts};

use crate::serve::ServeReport;
use crate::stats_line::{human_bytes, human_count};

/// The final line: how the run ended and its totals; with a preamble
/// (PROXY protocol), a line of its headers ([`preamble_summary`]); with a
/// transport that counts its handshakes, a line of those
/// ([`transport_summary`]).
pub fn summary<X>(name: &str, report: &ServeReport<X>) -> String {
    let s = &report.stats;
    let how = match report.exit {
        Exit::Graceful if report.handed_over => "handed over to a new process and drained",
        Exit::Graceful => "shut down gracefully",
        Exit::Forced => "stopped at once (second signal)",
        Exit::Stopped => "stopped",
        // Servers run without a deadline (`Reactor::run`).
        Exit::Deadline => "stopped at its deadline",
    };
    let c = &s.closes;
    let mut line = format!(
        "tenk {name} {how} after {:.1}s: {} accepted, {} rejected (max-conns), {} closed (client {}, idle timeout {}, write timeout {}, buffer limit {}, error {}, local {}), {} in, {} out, {} wake-ups, {} accept pauses; syscalls: {} epoll_wait, {} epoll_ctl, {} read, {} write",
        report.elapsed.as_secs_f64(),
        s.accepted,
        s.rejected,
        s.closed,
        c.client,
        c.idle_timeout,
        c.write_timeout,
        c.buffer_limit,
        c.error,
        c.local,
        human_bytes(s.bytes_in as f64),
        human_bytes(s.bytes_out as f64),
        human_count(s.epoll_waits as f64),
        s.accept_pauses,
        s.epoll_waits,
        s.epoll_ctls,
        s.reads,
        s.writes,
    );
    if let Some(counts) = &report.preamble {
        // With TLS behind, its line counts the timeouts (one deadline
        // covers the header and the handshake).
        let timeouts = report
            .transport
            .is_none()
            .then_some(s.closes.handshake_timeout);
        line.push('\n');
        line.push_str(&preamble_summary(name, counts, timeouts));
    }
    if let Some(counts) = &report.transport {
        line.push('\n');
        line.push_str(&transport_summary(name, counts, &s.closes));
    }
    line
}

/// `tenk http tls: 120 handshakes (full 40, resumed 80), 2 failed, 1 timed
/// out; versions 1.2: 0, 1.3: 120`. Failures are the transport's count
/// (handshakes it refused), not the reactor's `closes.handshake_failed`,
/// which also counts a corrupt record long after the handshake; timeouts
/// only the reactor sees.
pub fn transport_summary(name: &str, t: &TransportCounts, closes: &CloseCounts) -> String {
    let versions: Vec<String> = t
        .versions
        .iter()
        .map(|(v, n)| format!("{v}: {n}"))
        .collect();
    format!(
        "tenk {name} {}: {} handshakes (full {}, resumed {}), {} failed, {} timed out; versions {}",
        t.protocol,
        t.completed(),
        t.full,
        t.resumed,
        t.failed,
        closes.handshake_timeout,
        versions.join(", "),
    )
}

/// `tenk http proxy protocol: 120 headers (client 117, socket 3), 2
/// refused, 1 timed out`: headers read, by the address they left the
/// connection with (the client's they named, or the socket's), connections
/// refused for a header that was not one, and, when given (`timeouts`: the
/// reactor's count, when no TLS handshake shares the deadline), those
/// closed before their header came.
pub fn preamble_summary(name: &str, p: &PreambleCounts, timeouts: Option<u64>) -> String {
    let mut line = format!(
        "tenk {name} {}: {} headers (client {}, socket {}), {} refused",
        p.protocol.replace('_', " "),
        p.read(),
        p.with_client,
        p.without_client,
        p.refused,
    );
    if let Some(timeouts) = timeouts {
        line.push_str(&format!(", {timeouts} timed out"));
    }
    line
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use reactor::Stats;

    use super::*;

    #[test]
    fn summary_names_the_exit_and_totals() {
        let report = ServeReport {
            exit: Exit::Forced,
            stats: Stats {
                accepted: 3,
                closed: 3,
                bytes_in: 2_000,
                bytes_out: 2_000,
                ..Stats::default()
            },
            elapsed: Duration::from_millis(1500),
            extra: Vec::<()>::new(),
            transport: None,
            preamble: None,
            handed_over: false,
        };
        let line = summary("echo", &report);
        // Without a transport: one line, no handshakes.
        assert!(
            !line.contains('\n') && !line.contains("handshake"),
            "{line}"
        );
        assert!(line.contains("second signal"), "{line}");
        assert!(line.contains("after 1.5s"), "{line}");
        assert!(line.contains("3 accepted"), "{line}");
        assert!(line.contains("2.0 kB in"), "{line}");
    }

    #[test]
    fn summary_adds_a_preamble_line_before_the_transport_line() {
        let mut stats = Stats::default();
        stats.closes.handshake_timeout = 4;
        let proxy = PreambleCounts {
            protocol: "proxy_protocol",
            with_client: 117,
            without_client: 3,
            refused: 2,
        };
        let mut report = ServeReport {
            exit: Exit::Graceful,
            stats,
            elapsed: Duration::from_secs(1),
            extra: Vec::<()>::new(),
            transport: None,
            preamble: Some(proxy),
            handed_over: false,
        };
        let text = summary("echo", &report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1..],
            ["tenk echo proxy protocol: 120 headers (client 117, socket 3), 2 refused, 4 timed out"]
        );
        // With TLS behind, the TLS line counts the timeouts of both.
        report.transport = Some(TransportCounts {
            protocol: "tls",
            ..TransportCounts::default()
        });
        let text = summary("echo", &report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert_eq!(
            lines[1],
            "tenk echo proxy protocol: 120 headers (client 117, socket 3), 2 refused"
        );
        assert!(lines[2].starts_with("tenk echo tls: "), "{text}");
        assert!(lines[2].contains("4 timed out"), "{text}");
    }

    #[test]
    fn summary_adds_a_transport_line_with_its_handshakes() {
        let mut stats = Stats::default();
        stats.closes.handshake_timeout = 1;
        let report = ServeReport {
            exit: Exit::Graceful,
            stats,
            elapsed: Duration::from_secs(1),
            extra: Vec::<()>::new(),
            transport: Some(TransportCounts {
                protocol: "tls",
                full: 40,
                resumed: 80,
                failed: 2,
                versions: vec![("1.2", 20), ("1.3", 100)],
            }),
            preamble: None,
            handed_over: false,
        };
        let text = summary("http", &report);
        let (first, second) = text.split_once('\n').expect("two lines");
        assert!(
            first.starts_with("tenk http shut down gracefully"),
            "{first}"
        );
        assert_eq!(
            second,
            "tenk http tls: 120 handshakes (full 40, resumed 80), 2 failed, 1 timed out; versions 1.2: 20, 1.3: 100"
        );
    }
}
