//! The once-a-second `--stats` line.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use reactor::{Io, Stats, TimerId};

/// Prints one line of rates each second, re-arming its own timer.
pub struct StatsTicker {
    last: Stats,
    last_at: Instant,
    period: Duration,
    timer: TimerId,
}

impl StatsTicker {
    /// Starts ticking on `io` every `period`.
    pub fn start(io: &mut Io, period: Duration) -> StatsTicker {
        let timer = io.add_timer(period, 0);
        StatsTicker {
            last: io.stats(),
            last_at: Instant::now(),
            period,
            timer,
        }
    }

    /// Whether `timer` is this ticker's.
    pub fn owns(&self, timer: TimerId) -> bool {
        self.timer == timer
    }

    /// Prints the line for the period just ended and schedules the next.
    pub fn tick(&mut self, io: &mut Io) {
        let stats = io.stats();
        self.tick_with(io, stats, "");
    }

    /// Prints the line for `stats` (a total over threads, say), with
    /// `suffix` appended, and schedules the next tick.
    pub fn tick_with(&mut self, io: &mut Io, stats: Stats, suffix: &str) {
        let now = Instant::now();
        let line = format_line(
            SystemTime::now(),
            &stats.since(&self.last),
            now - self.last_at,
        );
        let _ = writeln!(std::io::stdout().lock(), "{line}{suffix}");
        self.last = stats;
        self.last_at = now;
        self.timer = io.add_timer(self.period, 0);
    }

    /// Schedules the next tick without printing (a worker that only
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

    #[test]
    fn rates_divide_by_elapsed_time() {
        let delta = Stats {
            bytes_in: 2_000,
            ..Stats::default()
        };
        let line = format_line(UNIX_EPOCH, &delta, Duration::from_secs(2));
        assert!(line.contains("in 1.0 kB/s"), "{line}");
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
