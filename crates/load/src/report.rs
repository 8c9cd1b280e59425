//! The end-of-run report: the figures of a run, as JSON for machines and
//! (in `report/human.rs`) as a summary for people.

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::recorder::Errors;
use crate::spec::{LoadSpec, Workload};
use crate::totals::Totals;

mod human;
mod tls;

pub use human::{human_bytes, human_us};
pub use tls::TlsReport;

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
    /// Connects completed in the measured window, per second: with
    /// `--new-conn-per-request`, connections (and TLS handshakes) per
    /// second.
    pub connects_per_s: f64,
    /// Connections closed on an error (a timeout, a reset...) and replaced
    /// by a new connect: in an overloaded open-loop run, timeouts churn
    /// connections, and this says how many.
    pub connections_replaced: u64,
    /// Connections of the connect phase that never connected: refused,
    /// not connected within `--connect-timeout`, or still opening (or not
    /// started) when the connect phase's deadline passed. Not replaced.
    pub connections_never_connected: u64,
    /// Connections that connected and timed out without a byte of answer.
    /// With `accept_queue_overflows`: mostly connections the kernel put in
    /// the server's full accept queue, which it never accepted.
    pub connections_never_answered: u64,
    /// How long the connect phase lasted (the run starts after it), in
    /// seconds.
    pub connect_s: f64,
    /// The kernel's `ListenOverflows` during the run (`TcpExt` of
    /// `/proc/net/netstat`): SYNs and final ACKs dropped because a
    /// listener's accept queue was full. Counted for the whole host (its
    /// network namespace), and only when every target is a loopback
    /// address (`null` otherwise, or without procfs).
    pub accept_queue_overflows: Option<u64>,
    /// `ListenDrops` during the run: every drop at a listener, the
    /// overflows included (`null` as `accept_queue_overflows`).
    pub listen_drops: Option<u64>,
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
    /// TLS runs: the handshakes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsReport>,
    /// Ended early by a signal (shown only then).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
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
            connects_per_s: per_s(totals.window_connects),
            connections_replaced: totals.replaced,
            connections_never_connected: totals.never_connected,
            connections_never_answered: totals.never_answered,
            connect_s: totals.connecting.as_secs_f64(),
            accept_queue_overflows: None,
            listen_drops: None,
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
            tls: None,
            interrupted: false,
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
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::chat::ChatTotals;
    use crate::recorder::Recorder;
    use crate::spec::Stop;

    fn spec(rate: Option<f64>) -> LoadSpec {
        LoadSpec {
            label: "echo 127.0.0.1:1".into(),
            connections: 2,
            stop: Stop::Duration(Duration::from_secs(2)),
            rate,
            ..LoadSpec::example()
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
            ..Totals::new()
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

    /// Issue 20: what the connect phase lost, connections never answered
    /// and the accept queue's overflows, each named when it happened.
    #[test]
    fn never_connected_never_answered_and_overflows_are_named() {
        let clean = Report::new(&spec(None), &totals());
        let human = clean.to_human();
        for absent in ["never connected", "never answered", "accept queue"] {
            assert!(!human.contains(absent), "{absent:?} in\n{human}");
        }
        let json: serde_json::Value = serde_json::from_str(&clean.to_json()).unwrap();
        assert_eq!(json["connections_never_answered"], 0);
        assert!(json["accept_queue_overflows"].is_null(), "not measured");

        let mut totals = totals();
        totals.never_connected = 48;
        totals.never_answered = 2;
        totals.connecting = Duration::from_secs(1);
        let mut report = Report::new(&spec(None), &totals);
        report.accept_queue_overflows = Some(50);
        report.listen_drops = Some(52);
        let human = report.to_human();
        assert!(human.contains("connected in 1.00s"), "{human}");
        assert!(human.contains("48 never connected"), "{human}");
        assert!(human.contains("2 connections never answered"), "{human}");
        assert!(
            human.contains("accept queue overflowed 50 times") && human.contains("backlog"),
            "{human}"
        );
        let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(json["connections_never_connected"], 48);
        assert_eq!(json["connections_never_answered"], 2);
        assert_eq!(json["connect_s"], 1.0);
        assert_eq!(json["accept_queue_overflows"], 50);
        assert_eq!(json["listen_drops"], 52);
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
}
