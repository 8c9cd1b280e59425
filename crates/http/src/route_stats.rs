//! Per-route statistics, counted by the [`Router`](crate::router::Router)
//! itself: requests by status class and a duration histogram for each
//! route, for [`metrics::render`](crate::metrics::render) to expose.
//!
//! Not a [`Middleware`](crate::middleware::Middleware) layer: a layer sees
//! `Response`s, so a cached or reply route's answer would have to be
//! captured as one, which costs more than the answer itself on the fast
//! path. The router counts after answering, from the route it chose and
//! the status it sent; a cached route costs two counter bumps.
//!
//! # Time
//! A request's duration runs from the start of the loop pass that read it
//! ([`Io::now`](reactor::Io::now), the clock read once per wake-up, as
//! nginx's cached time) to its answer. A cached route is not timed by a
//! clock read of its own, to keep the fast path fast: its answer is a copy
//! of bytes encoded once a second, counted in the first bucket with a
//! duration of 0. Every other route reads the clock once after its
//! handler, so its time includes the requests answered before it in the
//! same pass (time it waited, as a client sees it).
//!
//! # Threads
//! One [`RouteStats`] serves every worker of a server: each worker's router
//! registers a table of its own ([`Router::count_into`]) and is its only
//! writer, with plain relaxed stores to cache lines of its own — no lock
//! and no shared line on the request path. [`RouteStats::snapshot`] sums
//! the tables by route, so a scrape answered by any worker shows the
//! whole server.
//!
//! [`Router::count_into`]: crate::router::Router::count_into

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The histogram's upper bounds, in nanoseconds: 100 µs to 10 s, the
/// spread of Prometheus's default buckets shifted down to where an event
/// loop's answers fall. A last, implicit bucket is `+Inf`.
pub const BUCKETS: [u64; 16] = [
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// The `route` label of the requests the router's fallback answered.
pub const FALLBACK: &str = "(fallback)";
/// The `route` label of the router's 404s.
pub const NOT_FOUND: &str = "(not found)";
/// The `route` label of the router's 405s.
pub const METHOD_NOT_ALLOWED: &str = "(method not allowed)";
/// The `route` label of answers a middleware layer gave without calling
/// the rest of the chain (a refusal before routing, say).
pub const LAYER: &str = "(middleware)";

/// Where, past the declared routes, the kinds of miss are counted.
pub(crate) const MISSES: [&str; 4] = [FALLBACK, NOT_FOUND, METHOD_NOT_ALLOWED, LAYER];

/// The status class index of `status`: 1 for 1xx … 5 for 5xx, else 0 (as
/// [`HttpStats::responses`](crate::server::HttpStats::responses)).
#[inline(always)]
pub(crate) fn class(status: u16) -> usize {
    let class = usize::from(status / 100);
    if (1..=5).contains(&class) {
        class
    } else {
        0
    }
}

/// One route's counters in one worker, on cache lines of their own.
#[repr(align(128))]
#[derive(Default)]
pub(crate) struct Counters {
    classes: [AtomicU64; 6],
    buckets: [AtomicU64; BUCKETS.len() + 1],
    sum_ns: AtomicU64,
    /// Answers of a cached route: one status, duration 0, so one counter
    /// says it all (added to `classes` and the first bucket when read).
    untimed: AtomicU64,
    /// The class of a cached route's status.
    untimed_class: usize,
}

impl Counters {
    /// Counts a cached route's answer (see `untimed`).
    #[inline(always)]
    pub(crate) fn count_untimed(&self) {
        bump(&self.untimed, 1);
    }
}

/// Adds to a counter only one thread writes: a load and a store, no
/// locked instruction (a reader sees the old or the new value).
#[inline(always)]
fn bump(counter: &AtomicU64, by: u64) {
    counter.store(
        counter.load(Ordering::Relaxed).wrapping_add(by),
        Ordering::Relaxed,
    );
}

/// One worker's counters, a [`Counters`] per route: the declared routes
/// in order, then [`MISSES`].
pub(crate) struct RouteTable {
    /// The worker whose router counts here.
    worker: usize,
    labels: Vec<(&'static str, Arc<str>)>,
    counters: Box<[Arc<Counters>]>,
}

impl RouteTable {
    /// How many routes were declared (the misses come after them).
    pub(crate) fn routes(&self) -> usize {
        self.labels.len() - MISSES.len()
    }

    /// Route `index`'s counters, for a cached route to hold.
    ///
    /// # Panics
    /// If there is no such route (a bug in the router).
    pub(crate) fn counters(&self, index: usize) -> Arc<Counters> {
        self.counters[index].clone()
    }

    /// Counts an answer of route `index` that took `took`.
    pub(crate) fn count(&self, index: usize, status: u16, took: Duration) {
        let Some(counters) = self.counters.get(index) else {
            return;
        };
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BUCKETS.partition_point(|&bound| bound < ns);
        bump(&counters.classes[class(status)], 1);
        bump(&counters.buckets[bucket], 1);
        bump(&counters.sum_ns, ns);
    }
}

/// The per-route counters of one server, shared by its workers; see the
/// module docs.
#[derive(Default)]
pub struct RouteStats {
    tables: Mutex<Vec<Arc<RouteTable>>>,
}

/// One worker's answers of every route, by duration: the series of
/// `tenk_http_request_duration_seconds`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkerDurations {
    /// The worker ([`Router::count_into_as`](crate::router::Router::count_into_as)).
    pub worker: usize,
    /// As [`RouteFigures::buckets`], summed over routes.
    pub buckets: [u64; BUCKETS.len() + 1],
    /// Their durations added up, in nanoseconds.
    pub sum_ns: u64,
}

/// One route's figures, summed over workers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteFigures {
    /// The route's method (`GET` also counts its HEADs), or `any` for the
    /// requests no declared route took.
    pub method: &'static str,
    /// Its pattern, or one of [`FALLBACK`], [`NOT_FOUND`],
    /// [`METHOD_NOT_ALLOWED`], [`LAYER`].
    pub route: Arc<str>,
    /// Answers by status class: index 1 for 1xx … 5 for 5xx, 0 other.
    pub responses: [u64; 6],
    /// Answers by duration: `buckets[i]` took at most [`BUCKETS`]`[i]`
    /// and more than the bound before; the last, more than all bounds.
    pub buckets: [u64; BUCKETS.len() + 1],
    /// Their durations added up, in nanoseconds.
    pub sum_ns: u64,
}

impl RouteFigures {
    /// Answers of every class.
    pub fn requests(&self) -> u64 {
        self.responses.iter().sum()
    }
}

impl RouteStats {
    pub fn new() -> RouteStats {
        RouteStats::default()
    }

    /// A table for one worker's routes, `(method, pattern, the status of
    /// a cached route)` in order; the misses are added after them.
    pub(crate) fn register(
        &self,
        routes: Vec<(&'static str, Arc<str>, Option<u16>)>,
        worker: usize,
    ) -> Arc<RouteTable> {
        let misses = MISSES.iter().map(|&miss| ("any", Arc::from(miss), None));
        let (labels, counters): (Vec<_>, Vec<_>) = routes
            .into_iter()
            .chain(misses)
            .map(|(method, route, fixed)| {
                let counters = Counters {
                    untimed_class: fixed.map_or(0, class),
                    ..Counters::default()
                };
                ((method, route), Arc::new(counters))
            })
            .unzip();
        let table = Arc::new(RouteTable {
            worker,
            labels,
            counters: counters.into_boxed_slice(),
        });
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(table.clone());
        table
    }

    /// Every route's figures, summed over the workers' tables by method
    /// and pattern, in the order routes were declared. A miss no request
    /// came to is left out; a declared route is always there.
    pub fn snapshot(&self) -> Vec<RouteFigures> {
        let tables = self
            .tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut figures: Vec<RouteFigures> = Vec::new();
        for table in tables.iter() {
            for ((method, route), counters) in table.labels.iter().zip(table.counters.iter()) {
                let at = match figures
                    .iter()
                    .position(|f| f.method == *method && f.route == *route)
                {
                    Some(at) => at,
                    None => {
                        figures.push(RouteFigures {
                            method,
                            route: route.clone(),
                            responses: [0; 6],
                            buckets: [0; BUCKETS.len() + 1],
                            sum_ns: 0,
                        });
                        figures.len() - 1
                    }
                };
                let f = &mut figures[at];
                for (sum, c) in f.responses.iter_mut().zip(&counters.classes) {
                    *sum += c.load(Ordering::Relaxed);
                }
                for (sum, c) in f.buckets.iter_mut().zip(&counters.buckets) {
                    *sum += c.load(Ordering::Relaxed);
                }
                f.sum_ns += counters.sum_ns.load(Ordering::Relaxed);
                let untimed = counters.untimed.load(Ordering::Relaxed);
                f.responses[counters.untimed_class] += untimed;
                f.buckets[0] += untimed;
            }
        }
        figures.retain(|f| f.requests() > 0 || !MISSES.contains(&&*f.route));
        figures
    }

    /// Every route's durations summed by worker, in worker order (tables
    /// of one worker, if it registered several, are added up).
    pub fn by_worker(&self) -> Vec<WorkerDurations> {
        let tables = self
            .tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut workers: Vec<WorkerDurations> = Vec::new();
        for table in tables.iter() {
            let at = match workers.iter().position(|w| w.worker == table.worker) {
                Some(at) => at,
                None => {
                    workers.push(WorkerDurations {
                        worker: table.worker,
                        buckets: [0; BUCKETS.len() + 1],
                        sum_ns: 0,
                    });
                    workers.len() - 1
                }
            };
            let w = &mut workers[at];
            for counters in table.counters.iter() {
                for (sum, c) in w.buckets.iter_mut().zip(&counters.buckets) {
                    *sum += c.load(Ordering::Relaxed);
                }
                w.sum_ns += counters.sum_ns.load(Ordering::Relaxed);
                w.buckets[0] += counters.untimed.load(Ordering::Relaxed);
            }
        }
        workers.sort_by_key(|w| w.worker);
        workers
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routes() -> Vec<(&'static str, Arc<str>, Option<u16>)> {
        vec![
            ("GET", Arc::from("/"), Some(200)),
            ("POST", Arc::from("/echo"), None),
        ]
    }

    #[test]
    fn durations_fall_in_the_first_bucket_they_fit() {
        let stats = RouteStats::new();
        let table = stats.register(routes(), 0);
        let table_of = |ns: u64| {
            table.count(1, 200, Duration::from_nanos(ns));
        };
        for ns in [0, 100_000, 100_001, 10_000_000_000, 10_000_000_001] {
            table_of(ns);
        }
        let echo = &stats.snapshot()[1];
        let mut want = [0; BUCKETS.len() + 1];
        want[0] = 2;
        want[1] = 1;
        want[BUCKETS.len() - 1] = 1;
        want[BUCKETS.len()] = 1;
        assert_eq!(echo.buckets, want);
        assert_eq!(echo.sum_ns, 20_000_200_002);
        assert_eq!(echo.responses[2], 5);
    }

    #[test]
    fn workers_tables_sum_by_route_and_unused_misses_are_left_out() {
        let stats = RouteStats::new();
        let (a, b) = (stats.register(routes(), 0), stats.register(routes(), 1));
        a.counters(0).count_untimed();
        b.counters(0).count_untimed();
        b.count(0, 503, Duration::from_millis(1));
        a.count(3, 404, Duration::from_micros(1)); // (not found)
        b.count(99, 200, Duration::ZERO); // no such route: ignored
        let figures = stats.snapshot();
        let names: Vec<(&str, &str)> = figures.iter().map(|f| (f.method, &*f.route)).collect();
        assert_eq!(names, [("GET", "/"), ("POST", "/echo"), ("any", NOT_FOUND)]);
        assert_eq!(figures[0].responses, [0, 0, 2, 0, 0, 1]);
        assert_eq!(figures[0].buckets[0], 2);
        assert_eq!(figures[0].buckets[3], 1);
        assert_eq!(figures[0].sum_ns, 1_000_000);
        assert_eq!(figures[1].requests(), 0);
        assert_eq!(figures[2].responses[4], 1);
        let workers = stats.by_worker();
        assert_eq!(workers.len(), 2);
        assert_eq!((workers[0].worker, workers[1].worker), (0, 1));
        assert_eq!(workers[0].buckets[0], 2, "a's cached answer and its 404");
        assert_eq!(workers[1].buckets[0], 1, "b's cached answer");
        assert_eq!(workers[1].buckets[3], 1, "b's 1 ms answer");
        assert_eq!(workers[1].sum_ns, 1_000_000);
    }

    #[test]
    fn status_classes() {
        for (status, want) in [
            (99, 0),
            (100, 1),
            (204, 2),
            (399, 3),
            (404, 4),
            (599, 5),
            (600, 0),
        ] {
            assert_eq!(class(status), want, "{status}");
        }
    }

    #[test]
    fn counters_of_neighbouring_routes_share_no_cache_line() {
        assert_eq!(std::mem::align_of::<Counters>(), 128);
    }
}
