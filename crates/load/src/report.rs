//! The end-of-run report: a human summary in the spirit of the classic
//! tools, and JSON for machines.

use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::chat::ChatTotals;
use crate::recorder::{Errors, Recorder};
use crate::spec::{LoadSpec, Workload};

/// Latency percentiles, in microseconds.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct Percentiles {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    /// Percentiles of a nanosecond histogram; all zero when it is empty.
    pub fn of(histogram: &Histogram<u64>) -> Percentiles {
        let us = |ns: u64| ns as f64 / 1000.0;
        if histogram.is_empty() {
            return Percentiles {
                p50: 0.0,
                p90: 0.0,
                p99: 0.0,
                p999: 0.0,
                max: 0.0,
                mean: 0.0,
            };
        }
        Percentiles {
            p50: us(histogram.value_at_quantile(0.50)),
            p90: us(histogram.value_at_quantile(0.90)),
            p99: us(histogram.value_at_quantile(0.99)),
            p999: us(histogram.value_at_quantile(0.999)),
            max: us(histogram.max()),
            mean: histogram.mean() / 1000.0,
        }
    }
}

/// Responses by status class (HTTP runs).
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct StatusClasses {
    #[serde(rename = "1xx")]
    pub informational: u64,
    #[serde(rename = "2xx")]
    pub success: u64,
    #[serde(rename = "3xx")]
    pub redirect: u64,
    #[serde(rename = "4xx")]
    pub client_error: u64,
    #[serde(rename = "5xx")]
    pub server_error: u64,
    pub other: u64,
}

/// What a chat run measured beyond the common figures. There, `requests`
/// and `latency_us` are deliveries in the window and their latency (from
/// the time a message was due to be sent to its receipt by one member).
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct ChatReport {
    pub rooms: usize,
    pub senders: usize,
    /// Messages sent, over the whole run (warm-up included).
    pub messages: u64,
    /// Messages sent in the window, per second.
    pub messages_per_s: f64,
    /// Deliveries owed: every message to every other member of its room
    /// (members whose connection failed excepted: that is an error).
    pub deliveries_expected: u64,
    /// Deliveries received, over the whole run (the drain included).
    pub deliveries: u64,
    /// Deliveries received in the window, per second.
    pub deliveries_per_s: f64,
    /// Owed and never received.
    pub lost: u64,
    /// Received after a later message of the same sender.
    pub reordered: u64,
    /// The load tool's CPU time per delivery.
    pub cpu_us_per_delivery: f64,
}

/// Everything a run measured.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub target: String,
    pub workload: &'static str,
    /// `closed` or `open`.
    pub mode: &'static str,
    pub threads: usize,
    pub pipeline: usize,
    pub connections_requested: usize,
    /// Most connections open at once, summed over threads.
    pub connections_established: u64,
    /// Connects that completed, reconnects included.
    pub connects: u64,
    /// Connections closed on an error (a timeout, a reset...) and replaced
    /// by a new connect: in an overloaded open-loop run, timeouts churn
    /// connections, and this says how many.
    pub connections_replaced: u64,
    /// Length of the measured window, in seconds.
    pub duration_s: f64,
    /// Requests answered in the measured window.
    pub requests: u64,
    pub requests_per_s: f64,
    /// Open loop: the rate asked for.
    pub target_rate: Option<f64>,
    /// Requests sent but never answered because their connection closed,
    /// or schedule slots with no connection to carry them.
    pub lost: u64,
    /// Requests still in flight when the measured window ended (not
    /// errors: a closed loop always has some). Their waits so far are in
    /// `latency_us` as lower bounds, so a server gone silent shows there.
    pub unanswered: u64,
    /// How long the oldest of them had waited, in milliseconds.
    pub unanswered_oldest_ms: f64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub bytes_in_per_s: f64,
    pub bytes_out_per_s: f64,
    /// Latency from the intended send time (open loop) or the send.
    pub latency_us: Percentiles,
    /// Open loop: latency from the actual send time, as tools that suffer
    /// coordinated omission report it.
    pub latency_uncorrected_us: Option<Percentiles>,
    pub status: Option<StatusClasses>,
    pub errors: Errors,
    pub errors_total: u64,
    /// The load tool's own CPU time in the measured window.
    pub cpu_s: f64,
    pub cpu_us_per_request: f64,
    pub chat: Option<ChatReport>,
}

/// What the threads measured, summed.
pub(crate) struct Totals {
    pub(crate) recorder: Recorder,
    pub(crate) measured: Duration,
    pub(crate) cpu: Duration,
    pub(crate) connects: u64,
    pub(crate) peak_open: u64,
    pub(crate) lost: u64,
    pub(crate) replaced: u64,
    pub(crate) chat: ChatTotals,
}

impl Report {
    pub(crate) fn new(spec: &LoadSpec, totals: &Totals) -> Report {
        let r = &totals.recorder;
        let secs = totals.measured.as_secs_f64();
        let per_s = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        let open = spec.rate.is_some();
        let http = matches!(spec.workload, Workload::Http { .. });
        let s = r.status_classes;
        let per_request = if r.requests > 0 {
            totals.cpu.as_secs_f64() * 1e6 / r.requests as f64
        } else {
            0.0
        };
        let chat = match spec.workload {
            Workload::Chat { rooms, senders } => Some(ChatReport {
                rooms,
                senders,
                messages: totals.chat.sent,
                messages_per_s: per_s(totals.chat.window_sent),
                deliveries_expected: totals.chat.expected,
                deliveries: totals.chat.delivered,
                deliveries_per_s: per_s(r.requests),
                lost: totals.chat.lost,
                reordered: totals.chat.reordered,
                cpu_us_per_delivery: per_request,
            }),
            _ => None,
        };
        Report {
            target: spec.label.clone(),
            workload: match spec.workload {
                Workload::Echo { .. } => "echo",
                Workload::Http { .. } => "http",
                Workload::Chat { .. } => "chat",
            },
            mode: if open { "open" } else { "closed" },
            threads: spec.threads,
            pipeline: spec.pipeline,
            connections_requested: spec.connections,
            connections_established: totals.peak_open,
            connects: totals.connects,
            connections_replaced: totals.replaced,
            duration_s: secs,
            requests: r.requests,
            requests_per_s: per_s(r.requests),
            target_rate: spec.rate,
            lost: totals.lost,
            unanswered: r.unanswered,
            unanswered_oldest_ms: r.unanswered_oldest.as_secs_f64() * 1e3,
            bytes_in: r.bytes_in,
            bytes_out: r.bytes_out,
            bytes_in_per_s: per_s(r.bytes_in),
            bytes_out_per_s: per_s(r.bytes_out),
            latency_us: Percentiles::of(&r.corrected),
            // A chat message carries one stamp: the time it was due.
            latency_uncorrected_us: (open && chat.is_none())
                .then(|| Percentiles::of(&r.uncorrected)),
            status: http.then_some(StatusClasses {
                informational: s[1],
                success: s[2],
                redirect: s[3],
                client_error: s[4],
                server_error: s[5],
                other: s[0],
            }),
            errors: r.errors,
            errors_total: r.errors.total(),
            cpu_s: totals.cpu.as_secs_f64(),
            cpu_us_per_request: per_request,
            chat,
        }
    }

    /// Lost or reordered chat deliveries and errors: what `--max-errors`
    /// tolerates.
    pub fn faults(&self) -> u64 {
        let chat = self.chat.map_or(0, |c| c.lost + c.reordered);
        self.errors_total + chat
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report always serialises")
    }

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
        let _ = writeln!(
            out,
            "  connections  {} requested, {} established, {} connects, {} replaced",
            self.connections_requested,
            self.connections_established,
            self.connects,
            self.connections_replaced
        );
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
}

impl Report {
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
            "  connections  {} requested, {} established, {} connects",
            self.connections_requested, self.connections_established, self.connects
        );
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
    use crate::spec::Stop;

    fn spec(rate: Option<f64>) -> LoadSpec {
        LoadSpec {
            target: "127.0.0.1:1".parse().unwrap(),
            label: "echo 127.0.0.1:1".into(),
            workload: Workload::Echo { size: 64 },
            connections: 2,
            stop: Stop::Duration(Duration::from_secs(2)),
            threads: 1,
            pipeline: 1,
            warmup: Duration::ZERO,
            connect_rate: None,
            timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(10),
            rate,
            sources: Vec::new(),
            progress: false,
        }
    }

    fn totals() -> Totals {
        let mut recorder = Recorder::new();
        for i in 1..=1000u64 {
            recorder.record(Duration::from_micros(i * 10), Duration::from_micros(i));
        }
        recorder.bytes_in = 64_000;
        recorder.errors.timeouts = 2;
        Totals {
            recorder,
            measured: Duration::from_secs(2),
            cpu: Duration::from_millis(100),
            connects: 4,
            peak_open: 2,
            lost: 1,
            replaced: 2,
            chat: ChatTotals::default(),
        }
    }

    #[test]
    fn rates_percentiles_and_cpu_per_request() {
        let report = Report::new(&spec(None), &totals());
        assert_eq!(report.requests, 1000);
        assert_eq!(report.unanswered, 0);
        assert_eq!(report.requests_per_s, 500.0);
        assert_eq!(report.bytes_in_per_s, 32_000.0);
        assert!(
            (report.latency_us.p50 - 5000.0).abs() < 10.0,
            "{:?}",
            report.latency_us
        );
        assert!((report.latency_us.p99 - 9900.0).abs() < 20.0);
        assert!((report.cpu_us_per_request - 100.0).abs() < 1e-6);
        assert_eq!(report.errors_total, 2);
        assert!(report.latency_uncorrected_us.is_none());
        let human = report.to_human();
        assert!(
            human.contains("2 requested, 2 established, 4 connects, 2 replaced"),
            "{human}"
        );
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["connections_replaced"], 2);
        assert!(
            human.contains("errors       2 (connect 0, timeout 2"),
            "{human}"
        );
        assert!(human.contains("lost 1"), "{human}");
    }

    /// Issue 14: requests in flight at the end are reported, and their
    /// waits are in the latency (a lower bound), not in the requests.
    #[test]
    fn unanswered_requests_are_reported() {
        let mut totals = totals();
        let wait = Duration::from_millis(1500);
        totals.recorder.record_unanswered(wait, wait);
        let report = Report::new(&spec(None), &totals);
        assert_eq!(report.requests, 1000);
        assert_eq!(report.unanswered, 1);
        assert_eq!(report.unanswered_oldest_ms, 1500.0);
        assert!(
            report.latency_us.max >= 1_500_000.0,
            "{:?}",
            report.latency_us
        );
        let human = report.to_human();
        assert!(
            human.contains("unanswered   1 at the end, oldest 1.50s"),
            "{human}"
        );
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["unanswered"], 1);
        assert_eq!(json["unanswered_oldest_ms"], 1500.0);
    }

    #[test]
    fn open_loop_reports_target_and_both_latencies() {
        let report = Report::new(&spec(Some(1000.0)), &totals());
        let raw = report
            .latency_uncorrected_us
            .expect("open loop has raw latency");
        assert!(raw.p50 < report.latency_us.p50);
        let human = report.to_human();
        assert!(
            human.contains("target 1000/s, achieved 500/s (50.0%)"),
            "{human}"
        );
        assert!(human.contains("from intended send"), "{human}");
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["mode"], "open");
        assert_eq!(json["errors"]["timeouts"], 2);
        assert_eq!(json["requests"], 1000);
    }

    #[test]
    fn chat_reports_deliveries_losses_and_faults() {
        let spec = LoadSpec {
            workload: Workload::Chat {
                rooms: 2,
                senders: 4,
            },
            ..spec(Some(1000.0))
        };
        let mut totals = totals();
        totals.chat = ChatTotals {
            sent: 2100,
            window_sent: 2000,
            delivered: 1000,
            expected: 1003,
            lost: 3,
            reordered: 1,
        };
        let report = Report::new(&spec, &totals);
        let chat = report.chat.expect("a chat run has chat figures");
        assert_eq!(chat.messages_per_s, 1000.0);
        assert_eq!(chat.deliveries_per_s, 500.0, "window deliveries / window");
        assert!((chat.cpu_us_per_delivery - 100.0).abs() < 1e-6);
        assert!(report.latency_uncorrected_us.is_none());
        assert_eq!(report.faults(), 2 + 3 + 1, "errors, lost, reordered");
        let human = report.to_human();
        assert!(human.contains("in 2 rooms, 4 senders"), "{human}");
        assert!(
            human.contains("1000 of 1003 expected, lost 3, reordered 1"),
            "{human}"
        );
        assert!(human.contains("µs/delivery"), "{human}");
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["workload"], "chat");
        assert_eq!(json["chat"]["deliveries_expected"], 1003);
        assert_eq!(json["chat"]["lost"], 3);
        // Other workloads have no chat figures, and faults are errors.
        let echo = Report::new(&self::spec(None), &totals);
        assert!(echo.chat.is_none());
        assert_eq!(echo.faults(), 2);
    }

    #[test]
    fn units() {
        assert_eq!(human_us(52.4), "52µs");
        assert_eq!(human_us(2100.0), "2.10ms");
        assert_eq!(human_us(1_500_000.0), "1.50s");
        assert_eq!(human_bytes(7_900_000.0), "7.9 MB");
    }
}
