//! `--find-max-rate`: the highest open-loop rate a server holds within a
//! p99 bound. A closed-loop probe finds the ceiling, a coarse ramp from a
//! fraction of it finds a failing rate, then bisection closes in on the
//! edge. Each step is a [`run`] of its own (new connections, a warm-up),
//! so one step's backlog cannot spill into the next.

use std::io;
use std::time::Duration;

use reactor::signal::SignalSet;
use serde::Serialize;

use crate::report::Report;
use crate::run::{run, Progress};
use crate::spec::{LoadSpec, Stop};

/// Warm-up before each step's measurement: long enough for connects and
/// the server's caches, short enough to keep a search to minutes.
pub const STEP_WARMUP: Duration = Duration::from_secs(1);
/// Steps in one search, the probe included: a bound on its length.
pub const MAX_STEPS: usize = 20;
/// Bisection stops once the failing rate is within this factor of the
/// passing one: finer than the 2 % achieved-rate tolerance is noise.
const PRECISION: f64 = 1.03;
/// The achieved rate must be at least this fraction of the target.
const ACHIEVED: f64 = 0.98;
/// Without `rate_min`, the ramp starts at this fraction of the probe's
/// ceiling.
const START_FRACTION: f64 = 1.0 / 16.0;
/// Lowest default start, for a probe that got (almost) nothing through.
const START_FLOOR: f64 = 10.0;

/// What to search for.
#[derive(Clone, Copy, Debug)]
pub struct Search {
    /// The bound on the corrected p99.
    pub p99: Duration,
    /// Measured length of each step (after [`STEP_WARMUP`]).
    pub step: Duration,
    pub rate_min: Option<f64>,
    pub rate_max: Option<f64>,
}

impl Search {
    /// Checks the search's own settings.
    ///
    /// # Errors
    /// A message naming the flag at fault.
    pub fn validate(&self) -> Result<(), String> {
        if self.p99.is_zero() {
            return Err("--p99 must be longer than 0".into());
        }
        if self.step.is_zero() {
            return Err("--step-duration must be longer than 0".into());
        }
        for (flag, rate) in [("--rate-min", self.rate_min), ("--rate-max", self.rate_max)] {
            if let Some(rate) = rate {
                if !(rate.is_finite() && rate > 0.0) {
                    return Err(format!(
                        "{flag} must be a positive number of requests per second"
                    ));
                }
            }
        }
        if let (Some(lo), Some(hi)) = (self.rate_min, self.rate_max) {
            if lo > hi {
                return Err(format!("--rate-min {lo} exceeds --rate-max {hi}"));
            }
        }
        Ok(())
    }

    /// Whether `report`, measured at `target`, holds the bound; if not,
    /// why not.
    fn verdict(&self, target: f64, report: &Report) -> Option<&'static str> {
        let bound_us = self.p99.as_secs_f64() * 1e6;
        if report.faults() + report.lost > 0 {
            Some("errors")
        } else if report.latency_us.p99 > bound_us {
            Some("p99")
        } else if report.unanswered_oldest_ms * 1e3 > bound_us {
            // Waits are lower bounds in the p99 already; one request left
            // waiting past the bound fails the step even when too few to
            // move the p99.
            Some("unanswered")
        } else if report.requests_per_s < ACHIEVED * target {
            Some("rate")
        } else {
            None
        }
    }
}

/// One open-loop step.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Step {
    pub target_rate: f64,
    pub achieved_rate: f64,
    /// Corrected latency percentiles.
    pub p50_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    /// Errors, lost requests, and (chat) lost or reordered deliveries.
    pub errors: u64,
    /// Requests in flight when the window ended, and the oldest one's wait.
    pub unanswered: u64,
    pub unanswered_oldest_ms: f64,
    pub passed: bool,
    /// Why it failed: `errors`, `p99`, `unanswered` or `rate`.
    pub failed_on: Option<&'static str>,
}

/// What a search found.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct MaxRate {
    pub target: String,
    /// The highest passing step's target rate, requests/s; 0 when none
    /// passed.
    pub max_rate: f64,
    pub p99_bound_us: f64,
    pub step_duration_s: f64,
    /// What the closed-loop probe achieved, requests/s.
    pub probe_rate: f64,
    pub steps: Vec<Step>,
    /// Ended early by a signal: `max_rate` is the best found until then.
    pub interrupted: bool,
}

impl MaxRate {
    /// The result as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a result always serialises")
    }

    /// The steps as a table and the verdict, for people.
    pub fn to_human(&self) -> String {
        let mut out = format!(
            "max rate of {} with p99 ≤ {:.0} µs (closed-loop probe: {:.0} req/s)\n",
            self.target, self.p99_bound_us, self.probe_rate
        );
        out += &format!(
            "{:>12} {:>12} {:>10} {:>10} {:>10} {:>7}  verdict\n",
            "target/s", "achieved/s", "p50 µs", "p99 µs", "max µs", "errors"
        );
        for s in &self.steps {
            out += &format!(
                "{:>12.0} {:>12.0} {:>10.0} {:>10.0} {:>10.0} {:>7}  {}\n",
                s.target_rate,
                s.achieved_rate,
                s.p50_us,
                s.p99_us,
                s.max_us,
                s.errors,
                s.failed_on
                    .map_or("pass".to_string(), |why| format!("fail ({why})"))
            );
        }
        if self.interrupted {
            out += "interrupted: the search ended early\n";
        }
        out += &format!("max_rate {:.0} req/s", self.max_rate);
        out
    }
}

/// Searches for the highest rate at which `spec` (its connections,
/// workload and timeouts; its stop, warm-up and rate are replaced) holds
/// `search`. `on_step` is told each step as it ends; `on_progress` as in
/// [`run`]. A signal in `signals` ends the search with what was found.
///
/// # Errors
/// As [`run`].
pub fn find_max_rate(
    spec: &LoadSpec,
    search: &Search,
    signals: Option<SignalSet>,
    mut on_step: impl FnMut(&Step),
    mut on_progress: impl FnMut(&Progress),
) -> io::Result<MaxRate> {
    let step_spec = |rate: Option<f64>| LoadSpec {
        stop: Stop::Duration(search.step),
        warmup: STEP_WARMUP,
        rate,
        ..spec.clone()
    };
    let probe = run(step_spec(None), signals, &mut on_progress)?;
    let mut result = MaxRate {
        target: spec.label.clone(),
        max_rate: 0.0,
        p99_bound_us: search.p99.as_secs_f64() * 1e6,
        step_duration_s: search.step.as_secs_f64(),
        probe_rate: probe.requests_per_s,
        steps: Vec::new(),
        interrupted: probe.interrupted,
    };
    let mut plan = Plan::new(search, probe.requests_per_s);
    while !result.interrupted && result.steps.len() + 1 < MAX_STEPS {
        let Some(target) = plan.next() else { break };
        let report = run(step_spec(Some(target)), signals, &mut on_progress)?;
        if report.interrupted {
            // A cut-short step measured too little to judge.
            result.interrupted = true;
            break;
        }
        let failed_on = search.verdict(target, &report);
        let step = Step {
            target_rate: target,
            achieved_rate: report.requests_per_s,
            p50_us: report.latency_us.p50,
            p99_us: report.latency_us.p99,
            max_us: report.latency_us.max,
            errors: report.faults() + report.lost,
            unanswered: report.unanswered,
            unanswered_oldest_ms: report.unanswered_oldest_ms,
            passed: failed_on.is_none(),
            failed_on,
        };
        tracing::debug!(?step, "find-max-rate step");
        on_step(&step);
        plan.record(target, step.passed);
        result.steps.push(step);
    }
    result.max_rate = plan.passed.unwrap_or(0.0);
    Ok(result)
}

/// The rates to try: a geometric ramp from the start until a step fails
/// (or `rate_max`), then bisection between the best pass and the lowest
/// fail. Pure, so its logic is tested without a server.
#[derive(Debug)]
struct Plan {
    start: f64,
    factor: f64,
    rate_max: Option<f64>,
    /// The highest passing rate and the lowest failing one so far.
    passed: Option<f64>,
    failed: Option<f64>,
    /// The last rate tried was `rate_max` and passed: nothing is left.
    topped: bool,
}

impl Plan {
    fn new(search: &Search, probed: f64) -> Plan {
        let ceiling = search.rate_max.map_or(probed, |max| probed.min(max));
        let mut start = search
            .rate_min
            .unwrap_or((ceiling * START_FRACTION).max(START_FLOOR));
        if let Some(max) = search.rate_max {
            start = start.min(max);
        }
        // About five ramp steps from the start to the ceiling, each at
        // least double the last.
        let factor = (ceiling / start).powf(0.25).max(2.0);
        Plan {
            start,
            factor,
            rate_max: search.rate_max,
            passed: None,
            failed: None,
            topped: false,
        }
    }

    /// The next rate to try, or `None` when the search is done.
    fn next(&self) -> Option<f64> {
        match (self.passed, self.failed) {
            (None, None) => Some(self.start),
            // The lowest step failed: there is nothing below to find.
            (None, Some(_)) => None,
            (Some(lo), None) => {
                if self.topped {
                    return None;
                }
                let up = lo * self.factor;
                Some(self.rate_max.map_or(up, |max| up.min(max)))
            }
            (Some(lo), Some(hi)) => {
                let mid = (lo * hi).sqrt().round();
                (hi / lo > PRECISION && lo < mid && mid < hi).then_some(mid)
            }
        }
        // Whole requests per second: a table of 9120.378619 is no more
        // exact.
        .map(|rate| rate.round().max(1.0))
    }

    fn record(&mut self, rate: f64, passed: bool) {
        if passed {
            self.passed = Some(self.passed.map_or(rate, |p| p.max(rate)));
            self.topped = self.rate_max.is_some_and(|max| rate >= max);
        } else {
            self.failed = Some(self.failed.map_or(rate, |f| f.min(rate)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn search(rate_min: Option<f64>, rate_max: Option<f64>) -> Search {
        Search {
            p99: Duration::from_millis(1),
            step: Duration::from_secs(1),
            rate_min,
            rate_max,
        }
    }

    /// Runs the plan against a server that holds exactly `edge` req/s.
    fn simulate(search: &Search, ceiling: f64, edge: f64) -> (Option<f64>, Vec<f64>) {
        let mut plan = Plan::new(search, ceiling);
        let mut tried = Vec::new();
        while tried.len() + 1 < MAX_STEPS {
            let Some(rate) = plan.next() else { break };
            tried.push(rate);
            plan.record(rate, rate <= edge);
        }
        (plan.passed, tried)
    }

    #[test]
    fn converges_on_the_edge_within_the_precision() {
        for edge in [7_000.0, 9_000.0, 55_000.0, 99_000.0, 150_000.0] {
            let (found, tried) = simulate(&search(None, None), 100_000.0, edge);
            let found = found.unwrap();
            assert!(
                found <= edge && edge / found <= PRECISION,
                "{edge}: {tried:?}"
            );
            assert!(tried.len() < MAX_STEPS - 1, "{edge}: {} steps", tried.len());
        }
    }

    #[test]
    fn lowest_step_failing_ends_the_search() {
        let (found, tried) = simulate(&search(Some(1000.0), None), 0.0, 10.0);
        assert_eq!((found, tried), (None, vec![1000.0]));
    }

    #[test]
    fn rate_max_caps_the_ramp() {
        let (found, tried) = simulate(&search(None, Some(5000.0)), 100_000.0, 1e9);
        assert_eq!(found, Some(5000.0));
        assert_eq!(tried.last(), Some(&5000.0));
        assert!(tried.iter().all(|&r| r <= 5000.0), "{tried:?}");
    }

    #[test]
    fn rate_max_below_the_probe_is_the_ceiling() {
        let (found, tried) = simulate(&search(None, Some(1600.0)), 100_000.0, 1e9);
        assert_eq!(found, Some(1600.0));
        assert_eq!(tried, vec![100.0, 200.0, 400.0, 800.0, 1600.0]);
    }

    #[test]
    fn a_dead_probe_still_tries_one_step() {
        let (found, tried) = simulate(&search(None, None), 0.0, 0.0);
        assert_eq!((found, tried), (None, vec![START_FLOOR]));
    }

    #[test]
    fn bad_settings_name_the_flag() {
        let cases = [
            (
                Search {
                    p99: Duration::ZERO,
                    ..search(None, None)
                },
                "--p99",
            ),
            (
                Search {
                    step: Duration::ZERO,
                    ..search(None, None)
                },
                "--step-duration",
            ),
            (search(Some(0.0), None), "--rate-min"),
            (search(None, Some(f64::NAN)), "--rate-max"),
            (search(Some(10.0), Some(5.0)), "--rate-min"),
        ];
        for (search, flag) in cases {
            let err = search.validate().unwrap_err();
            assert!(err.contains(flag), "{err:?} should name {flag}");
        }
        assert_eq!(search(Some(1.0), Some(2.0)).validate(), Ok(()));
    }
}
