//! The once-a-second `--stats` line; with a PROXY protocol preamble,
//! followed by its headers; with a transport (TLS), by its handshakes;
//! with `--threads`, by each worker's connections, busy share, accepts and
//! events.

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reactor::{Io, PreambleCounts, Stats, TimerId, TransportCounts};

use crate::serve::{Notice, Notify};

/// Makes one line of rates each second (a [`Notice::Stats`] for whoever
/// runs the server to print), re-arming its own timer.
pub struct StatsTicker {
    notify: Notify,
    last: Stats,
    /// The transport's handshake counters at the last line (if it keeps
    /// any): they are the process's, whichever worker reads them.
    last_transport: Option<TransportCounts>,
    /// The preamble's header counters at the last line (if any).
    last_preamble: Option<PreambleCounts>,
    /// Each worker's figures at the last line (with `--threads`).
    last_workers: Vec<Stats>,
    last_at: Instant,
    period: Duration,
    timer: TimerId,
}

impl StatsTicker {
    /// Starts ticking on `io` every `period`, telling `notify` each line.
    pub fn start(io: &mut Io, period: Duration, notify: Notify) -> StatsTicker {
        let timer = io.add_timer(period, 0);
        StatsTicker {
            notify,
            last: io.stats(),
            last_transport: io.transport_counts(),
            last_preamble: io.preamble_counts(),
            last_workers: Vec::new(),
            last_at: Instant::now(),
            period,
            timer,
        }
    }

    /// Whether `timer` is this ticker's.
    pub fn owns(&self, timer: TimerId) -> bool {
        self.timer == timer
    }

    /// Makes the line for the period just ended and schedules the next.
    pub fn tick(&mut self, io: &mut Io) {
        let stats = io.stats();
        self.tick_workers(io, stats, &[]);
    }

    /// Makes the line for `total` (over threads) followed, if there are
    /// any, by each of `workers`' figures, and schedules the next tick.
    pub fn tick_workers(&mut self, io: &mut Io, total: Stats, workers: &[Stats]) {
        let now = Instant::now();
        let elapsed = now - self.last_at;
        let delta = total.since(&self.last);
        let mut line = format_line(SystemTime::now(), &delta, elapsed);
        let transport = io.transport_counts();
        let preamble = io.preamble_counts();
        if let Some(now) = &preamble {
            let zero = PreambleCounts::default();
            let before = self.last_preamble.as_ref().unwrap_or(&zero);
            // With TLS behind, its suffix shows the timeouts of both.
            let timeouts = if transport.is_none() {
                delta.closes.handshake_timeout
            } else {
                0
            };
            line.push_str(&format_preamble(&now.since(before), timeouts, elapsed));
        }
        if let Some(now) = &transport {
            let zero = TransportCounts::default();
            let before = self.last_transport.as_ref().unwrap_or(&zero);
            line.push_str(&format_handshakes(
                &now.since(before),
                delta.closes.handshake_timeout,
                elapsed,
            ));
        }
        if !workers.is_empty() {
            line.push_str(&format_workers(&self.last_workers, workers, elapsed));
        }
        (self.notify)(Notice::Stats(&line));
        self.last = total;
        self.last_transport = transport;
        self.last_preamble = preamble;
        self.last_workers = workers.to_vec();
        self.last_at = now;
        self.timer = io.add_timer(self.period, 0);
    }

    /// Schedules the next tick without a line (a worker that only
    /// publishes its figures for another to print).
    pub fn rearm(&mut self, io: &mut Io) {
        self.timer = io.add_timer(self.period, 0);
    }
}

/// `[10:00:01] conns 10000 active | +12/s | in 4.2 MB/s | out 4.2 MB/s | events 250k/s | wakeups 3k/s`
/// (time of day in UTC).
pub fn format_line(at: SystemTime, delta: &Stats, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let rate = |n: u64| n as f64 / secs;
    let day = at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() % 86_400;
    let mut line = String::new();
    let _ = write!(
        line,
        "[{:02}:{:02}:{:02}] conns {} active | +{:.0}/s | in {}/s | out {}/s | events {}/s | wakeups {}/s | closed: timeout {} limit {} rejected {}",
        day / 3600,
        day / 60 % 60,
        day % 60,
        delta.active,
        rate(delta.accepted + delta.connected),
        human_bytes(rate(delta.bytes_in)),
        human_bytes(rate(delta.bytes_out)),
        human_count(rate(delta.events)),
        human_count(rate(delta.epoll_waits)),
        delta.closes.idle_timeout + delta.closes.write_timeout,
        delta.closes.buffer_limit,
        delta.rejected,
    );
    line
}

/// ` | hs 120/s (resumed 80)`: handshakes completed per second (and how
/// many of them resumed a session); then, only when there were any in the
/// period, ` failed N` (refused by the transport) and ` timeout N` (closed
/// at the handshake timeout; `timeouts`, the reactor's count), as the
/// closes are counted: per line, not per second.
pub fn format_handshakes(delta: &TransportCounts, timeouts: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mut out = format!(
        " | hs {}/s (resumed {})",
        human_count(delta.completed() as f64 / secs),
        human_count(delta.resumed as f64 / secs),
    );
    if delta.failed > 0 {
        let _ = write!(out, " failed {}", delta.failed);
    }
    if timeouts > 0 {
        let _ = write!(out, " timeout {timeouts}");
    }
    out
}

/// ` | proxy protocol 120/s`: headers read per second; then, only when
/// there were any in the period, ` refused N` (connections that did not
/// start with a header) and ` timeout N` (closed before it came;
/// `timeouts`, the reactor's count), per line as the closes are.
pub fn format_preamble(delta: &PreambleCounts, timeouts: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let mut out = format!(
        " | {} {}/s",
        delta.protocol.replace('_', " "),
        human_count(delta.read() as f64 / secs),
    );
    if delta.refused > 0 {
        let _ = write!(out, " refused {}", delta.refused);
    }
    if timeouts > 0 {
        let _ = write!(out, " timeout {timeouts}");
    }
    out
}

/// ` | workers 10/12 (skew 1.20) | busy 35%/40% | accepts 5/6/s | events 1.2k/900/s`:
/// each worker's open connections (and the largest over the smallest),
/// the share of `elapsed` it spent outside `epoll_wait`, and its accept
/// and event rates since `before` (its figures at the previous line; a
/// worker missing there counts from zero).
///
/// Workers publish their figures on their own ticks, a little out of
/// phase with the line's, so a fully busy worker may compute a hair over
/// 100 %: shown as 100 %.
pub fn format_workers(before: &[Stats], now: &[Stats], elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-9);
    let zero = Stats::default();
    let deltas: Vec<Stats> = now
        .iter()
        .enumerate()
        .map(|(i, s)| s.since(before.get(i).unwrap_or(&zero)))
        .collect();
    let join = |f: &dyn Fn(&Stats) -> String| -> String {
        deltas.iter().map(f).collect::<Vec<_>>().join("/")
    };
    let max = now.iter().map(|s| s.active).max().unwrap_or(0);
    let min = now.iter().map(|s| s.active).min().unwrap_or(0);
    let skew = if min > 0 {
        format!("{:.2}", max as f64 / min as f64)
    } else if max > 0 {
        "inf".to_string()
    } else {
        "1.00".to_string()
    };
    format!(
        " | workers {} (skew {skew}) | busy {} | accepts {}/s | events {}/s",
        join(&|d| d.active.to_string()),
        join(&|d| percent(d.busy_ns as f64 / 1e9 / secs)),
        join(&|d| format!("{:.0}", d.accepted as f64 / secs)),
        join(&|d| human_count(d.events as f64 / secs)),
    )
}

/// A share as a percentage, capped at 100: `0.4%`, `35%`.
fn percent(share: f64) -> String {
    let p = (share * 100.0).clamp(0.0, 100.0);
    if p < 10.0 {
        format!("{p:.1}%")
    } else {
        format!("{p:.0}%")
    }
}

/// Bytes with a decimal unit: `512 B`, `4.2 MB`.
pub fn human_bytes(n: f64) -> String {
    scaled(n, &["B", "kB", "MB", "GB", "TB"], " ")
}

/// A count with a decimal suffix: `950`, `250k`, `1.2M`.
pub fn human_count(n: f64) -> String {
    scaled(n, &["", "k", "M", "G"], "")
}

fn scaled(mut n: f64, units: &[&str], sep: &str) -> String {
    let mut unit = 0;
    while n >= 1000.0 && unit + 1 < units.len() {
        n /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n:.0}{sep}{}", units[0])
    } else if n < 100.0 {
        format!("{n:.1}{sep}{}", units[unit])
    } else {
        format!("{n:.0}{sep}{}", units[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_matches_the_documented_shape() {
        let delta = Stats {
            active: 10_000,
            accepted: 12,
            bytes_in: 4_200_000,
            bytes_out: 4_200_000,
            events: 250_000,
            epoll_waits: 3_000,
            ..Stats::default()
        };
        let at = UNIX_EPOCH + Duration::from_secs(10 * 3600 + 1);
        assert_eq!(
            format_line(at, &delta, Duration::from_secs(1)),
            "[10:00:01] conns 10000 active | +12/s | in 4.2 MB/s | out 4.2 MB/s | events 250k/s | wakeups 3.0k/s | closed: timeout 0 limit 0 rejected 0"
        );
    }

    fn handshakes(full: u64, resumed: u64, failed: u64) -> TransportCounts {
        TransportCounts {
            protocol: "tls",
            full,
            resumed,
            failed,
            versions: vec![("1.2", 0), ("1.3", full + resumed)],
        }
    }

    #[test]
    fn handshakes_suffix_matches_the_documented_shape() {
        let second = Duration::from_secs(1);
        assert_eq!(
            format_handshakes(&handshakes(40, 80, 0), 0, second),
            " | hs 120/s (resumed 80)"
        );
        // Failures and timeouts show only when there were some.
        assert_eq!(
            format_handshakes(&handshakes(1_000, 500, 2), 1, second),
            " | hs 1.5k/s (resumed 500) failed 2 timeout 1"
        );
        assert_eq!(
            format_handshakes(&handshakes(0, 0, 0), 3, Duration::from_secs(2)),
            " | hs 0/s (resumed 0) timeout 3"
        );
    }

    #[test]
    fn preamble_suffix_matches_the_documented_shape() {
        let headers = |with_client, refused| PreambleCounts {
            protocol: "proxy_protocol",
            with_client,
            without_client: 20,
            refused,
        };
        let second = Duration::from_secs(1);
        assert_eq!(
            format_preamble(&headers(100, 0), 0, second),
            " | proxy protocol 120/s"
        );
        assert_eq!(
            format_preamble(&headers(1_480, 2), 1, Duration::from_secs(2)),
            " | proxy protocol 750/s refused 2 timeout 1"
        );
    }

    /// The line a ticker makes: the header and handshakes suffixes with a
    /// transport, none (the line as before) without one.
    #[test]
    fn ticker_adds_handshakes_only_with_a_transport() {
        use std::sync::{Arc, Mutex};

        use reactor::{Config, Reactor, Transport, TransportFactory};

        #[derive(Debug)]
        struct Counting;
        impl TransportFactory for Counting {
            fn new_transport(&self) -> Box<dyn Transport> {
                unreachable!("no connection in this test")
            }
            fn counts(&self) -> Option<TransportCounts> {
                Some(handshakes(3, 2, 0))
            }
            fn preamble_counts(&self) -> Option<PreambleCounts> {
                Some(PreambleCounts {
                    protocol: "proxy_protocol",
                    with_client: 4,
                    ..PreambleCounts::default()
                })
            }
        }
        struct Idle;
        impl reactor::Handler for Idle {
            fn on_data(&mut self, _: &mut Io, _: reactor::Token, data: &[u8]) -> usize {
                data.len()
            }
        }

        for transport in [None, Some(Arc::new(Counting) as Arc<dyn TransportFactory>)] {
            let with = transport.is_some();
            let config = Config {
                transport,
                ..Config::default()
            };
            let mut reactor = Reactor::new(config, Idle).unwrap();
            let lines = Arc::new(Mutex::new(Vec::new()));
            let notify: Notify = {
                let lines = lines.clone();
                Arc::new(move |notice| {
                    if let Notice::Stats(line) = notice {
                        lines.lock().unwrap().push(line.to_string());
                    }
                })
            };
            let io = reactor.io();
            let mut ticker = StatsTicker::start(io, Duration::from_secs(1), notify);
            ticker.tick(io);
            let lines = lines.lock().unwrap();
            assert_eq!(lines.len(), 1);
            let line = &lines[0];
            // The counts did not move since the ticker started.
            assert_eq!(line.contains(" | hs 0/s (resumed 0)"), with, "{line}");
            // The header's figures come first, as on the wire.
            assert_eq!(line.contains(" | proxy protocol 0/s | hs "), with, "{line}");
            assert!(line.ends_with("rejected 0") != with, "{line}");
        }
    }

    #[test]
    fn rates_divide_by_elapsed_time() {
        let delta = Stats {
            bytes_in: 2_000,
            ..Stats::default()
        };
        let line = format_line(UNIX_EPOCH, &delta, Duration::from_secs(2));
        assert!(line.contains("in 1.0 kB/s"), "{line}");
    }

    fn worker(active: u64, accepted: u64, events: u64, busy_ms: u64) -> Stats {
        Stats {
            active,
            accepted,
            events,
            busy_ns: busy_ms * 1_000_000,
            ..Stats::default()
        }
    }

    #[test]
    fn workers_suffix_shows_each_workers_share_of_the_second() {
        let before = [worker(8, 100, 1_000, 500), worker(12, 200, 2_000, 1_000)];
        let now = [worker(10, 105, 2_200, 850), worker(12, 206, 2_900, 1_400)];
        assert_eq!(
            format_workers(&before, &now, Duration::from_secs(1)),
            " | workers 10/12 (skew 1.20) | busy 35%/40% | accepts 5/6/s | events 1.2k/900/s"
        );
    }

    #[test]
    fn workers_suffix_divides_by_elapsed_and_caps_busy() {
        let now = [worker(0, 4, 10, 8), worker(3, 0, 0, 2_500)];
        // No earlier figures: counted from zero, over two seconds.
        assert_eq!(
            format_workers(&[], &now, Duration::from_secs(2)),
            " | workers 0/3 (skew inf) | busy 0.4%/100% | accepts 2/0/s | events 5/0/s"
        );
    }

    #[test]
    fn units() {
        assert_eq!(human_bytes(0.0), "0 B");
        assert_eq!(human_bytes(999.0), "999 B");
        assert_eq!(human_bytes(1_500.0), "1.5 kB");
        assert_eq!(human_bytes(123_456_789.0), "123 MB");
        assert_eq!(human_count(250_000.0), "250k");
        assert_eq!(human_count(1_200_000.0), "1.2M");
    }
}
