//! The report as a person reads it: a summary in the spirit of the classic
//! tools, one subject a line, units that keep three digits.

use std::fmt::Write as _;

use super::{ChatReport, Percentiles, Report};

impl Report {
    /// The human summary.
    pub fn to_human(&self) -> String {
        if let Some(chat) = &self.chat {
            return self.chat_to_human(chat);
        }
        let mut out = String::new();
        let mode = if self.mode == "open" {
            "open loop".to_string()
        } else {
            format!("closed loop, pipeline {}", self.pipeline)
        };
        let _ = writeln!(
            out,
            "tenk load {}: {} connections, {} thread{}, {mode}",
            self.target,
            self.connections_requested,
            self.threads,
            if self.threads == 1 { "" } else { "s" },
        );
        let _ = write!(
            out,
            "  connections  {} requested, {} established, {} connects, {} replaced",
            self.connections_requested,
            self.connections_established,
            self.connects,
            self.connections_replaced
        );
        if self.connects_per_s > 0.0 {
            let _ = write!(out, ", {:.0}/s in the window", self.connects_per_s);
        }
        let _ = writeln!(out, ", connected in {}", human_us(self.connect_s * 1e6));
        self.not_open_to_human(&mut out);
        self.tls_to_human(&mut out);
        let _ = writeln!(
            out,
            "  requests     {} in {:.2}s = {:.0}/s | in {}/s | out {}/s",
            self.requests,
            self.duration_s,
            self.requests_per_s,
            human_bytes(self.bytes_in_per_s),
            human_bytes(self.bytes_out_per_s),
        );
        let _ = writeln!(
            out,
            "  unanswered   {} at the end, oldest {} (in latency as lower bounds)",
            self.unanswered,
            human_us(self.unanswered_oldest_ms * 1e3),
        );
        if let Some(target) = self.target_rate {
            let _ = writeln!(
                out,
                "  rate         target {target:.0}/s, achieved {:.0}/s ({:.1}%)",
                self.requests_per_s,
                100.0 * self.requests_per_s / target
            );
        }
        let label = if self.latency_uncorrected_us.is_some() {
            "latency      (from intended send) "
        } else {
            "latency      "
        };
        let _ = writeln!(out, "  {label}{}", format_percentiles(&self.latency_us));
        if let Some(raw) = &self.latency_uncorrected_us {
            let _ = writeln!(
                out,
                "  latency      (from actual send)   {}",
                format_percentiles(raw)
            );
        }
        if let Some(s) = &self.status {
            let _ = writeln!(
                out,
                "  status       1xx {}  2xx {}  3xx {}  4xx {}  5xx {}  other {}",
                s.informational, s.success, s.redirect, s.client_error, s.server_error, s.other
            );
        }
        let e = &self.errors;
        let _ = writeln!(
            out,
            "  errors       {} (connect {}, timeout {}, mismatch {}, malformed {}, reset {}, early close {}), lost {}",
            self.errors_total,
            e.connect_failures,
            e.timeouts,
            e.mismatches,
            e.malformed,
            e.resets,
            e.early_closes,
            self.lost
        );
        let _ = write!(
            out,
            "  client CPU   {:.2}s = {:.2} µs/request",
            self.cpu_s, self.cpu_us_per_request
        );
        out
    }

    fn chat_to_human(&self, c: &ChatReport) -> String {
        let mut out = String::new();
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let _ = writeln!(
            out,
            "tenk load {}: {} clients in {} room{}, {} sender{}, {} thread{}",
            self.target,
            self.connections_requested,
            c.rooms,
            plural(c.rooms),
            c.senders,
            plural(c.senders),
            self.threads,
            plural(self.threads),
        );
        let _ = writeln!(
            out,
            "  connections  {} requested, {} established, {} connects, connected in {}",
            self.connections_requested,
            self.connections_established,
            self.connects,
            human_us(self.connect_s * 1e6)
        );
        self.not_open_to_human(&mut out);
        self.tls_to_human(&mut out);
        let target = self.target_rate.unwrap_or(0.0);
        let _ = writeln!(
            out,
            "  messages     {:.0}/s in {:.2}s (target {target:.0}/s, {:.1}%), {} sent in all",
            c.messages_per_s,
            self.duration_s,
            if target > 0.0 {
                100.0 * c.messages_per_s / target
            } else {
                0.0
            },
            c.messages,
        );
        let _ = writeln!(
            out,
            "  deliveries   {:.0}/s | {} of {} expected, lost {}, reordered {}",
            c.deliveries_per_s, c.deliveries, c.deliveries_expected, c.lost, c.reordered
        );
        // Lost deliveries are in it as lower bounds: the time since their
        // sender's last message.
        let _ = writeln!(
            out,
            "  latency      (due to received, lost as lower bounds) {}",
            format_percentiles(&self.latency_us)
        );
        let e = &self.errors;
        let _ = writeln!(
            out,
            "  errors       {} (connect {}, timeout {}, refused {}, misrouted {}, malformed {}, reset {}, early close {}), slots missed {}",
            self.errors_total,
            e.connect_failures,
            e.timeouts,
            e.refused,
            e.mismatches,
            e.malformed,
            e.resets,
            e.early_closes,
            self.lost
        );
        let _ = write!(
            out,
            "  client CPU   {:.2}s = {:.2} µs/delivery",
            self.cpu_s, c.cpu_us_per_delivery
        );
        out
    }
}

impl Report {
    /// Connections that never connected or never answered, and the
    /// server's accept queue overflowing: each line only when it happened.
    fn not_open_to_human(&self, out: &mut String) {
        if self.connections_never_connected > 0 {
            let _ = writeln!(
                out,
                "  not open     {} never connected: refused, or not connected within \
                 --connect-timeout (the connect phase's deadline); not replaced",
                self.connections_never_connected
            );
        }
        if self.connections_never_answered > 0 {
            let _ = writeln!(
                out,
                "  silent       {} connection{} never answered: connected, then not a byte \
                 back within --timeout",
                self.connections_never_answered,
                if self.connections_never_answered == 1 {
                    ""
                } else {
                    "s"
                },
            );
        }
        if let Some(overflows) = self.accept_queue_overflows.filter(|&n| n > 0) {
            let _ = writeln!(
                out,
                "  accept queue overflowed {overflows} time{} on this host during the run \
                 (ListenOverflows): the server accepts more slowly than the connections \
                 arrive, and the kernel dropped their SYNs or final ACKs; raise its backlog \
                 (listen(2), net.core.somaxconn), or ramp up with --connect-rate",
                if overflows == 1 { "" } else { "s" },
            );
        }
    }

    /// The TLS lines, for a TLS run: the handshakes, their time, and why
    /// they failed with what to do about it.
    fn tls_to_human(&self, out: &mut String) {
        let Some(t) = &self.tls else { return };
        let _ = writeln!(
            out,
            "  tls          {} handshakes ({} full, {} resumed; TLS 1.3 {}, 1.2 {}), failed {}, timed out {}",
            t.handshakes, t.full, t.resumed, t.tls13, t.tls12, t.failed, t.timeouts
        );
        if t.handshakes > 0 {
            let _ = writeln!(
                out,
                "  handshake    (connect + TLS, not in latency) p50 {}  p99 {}  max {}",
                human_us(t.handshake_p50_us),
                human_us(t.handshake_p99_us),
                human_us(t.handshake_max_us)
            );
        }
        if let Some(error) = &t.error {
            let _ = writeln!(out, "  tls error    {error}");
            if let Some(hint) = t.hint {
                let _ = writeln!(out, "               {hint}");
            }
        }
    }
}

fn format_percentiles(p: &Percentiles) -> String {
    format!(
        "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}",
        human_us(p.p50),
        human_us(p.p90),
        human_us(p.p99),
        human_us(p.p999),
        human_us(p.max)
    )
}

/// Microseconds with a unit that keeps three digits: `52µs`, `2.10ms`, `1.00s`.
pub fn human_us(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.0}µs")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{:.2}s", us / 1_000_000.0)
    }
}

/// Bytes with a decimal unit: `512 B`, `7.9 MB`.
pub fn human_bytes(n: f64) -> String {
    let units = ["B", "kB", "MB", "GB", "TB"];
    let mut n = n;
    let mut unit = 0;
    while n >= 1000.0 && unit + 1 < units.len() {
        n /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n:.0} B")
    } else {
        format!("{n:.1} {}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(human_us(52.4), "52µs");
        assert_eq!(human_us(2100.0), "2.10ms");
        assert_eq!(human_us(1_500_000.0), "1.50s");
        assert_eq!(human_bytes(7_900_000.0), "7.9 MB");
    }
}
