//! The per-route families ([`route_stats`](crate::route_stats)):
//! requests by route and status class, and a duration histogram.

use std::borrow::Cow;

use super::{family, histogram_series, sample};
use crate::route_stats::{RouteFigures, WorkerDurations, BUCKETS};

/// A label value with `\`, `"` and newlines escaped, as the format asks.
fn escape(value: &str) -> Cow<'_, str> {
    if !value.contains(['\\', '"', '\n']) {
        return Cow::Borrowed(value);
    }
    Cow::Owned(
        value
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n"),
    )
}

const CLASSES: [&str; 6] = ["other", "1xx", "2xx", "3xx", "4xx", "5xx"];

/// The per-route families: requests by class (the classes seen), and the
/// duration histogram (every declared route, seen or not).
pub(super) fn render_routes(out: &mut String, routes: &[RouteFigures]) {
    if routes.is_empty() {
        return;
    }
    let labels = |r: &RouteFigures| {
        format!(
            "method=\"{}\",route=\"{}\"",
            escape(r.method),
            escape(&r.route)
        )
    };
    let name = "tenk_http_route_requests_total";
    family(
        out,
        name,
        "counter",
        "HTTP requests answered, by route (method and pattern) and status class.",
    );
    for route in routes {
        let labels = labels(route);
        for (class, &value) in CLASSES.iter().zip(&route.responses) {
            if value > 0 {
                sample(out, name, &format!("{labels},class=\"{class}\""), value);
            }
        }
    }
    let name = "tenk_http_route_request_duration_seconds";
    family(
        out,
        name,
        "histogram",
        "Time from the start of the loop pass that read a request to its answer, by route (0 for a cached route's: see the route_stats docs).",
    );
    for route in routes {
        let labels = labels(route);
        histogram_series(out, name, &labels, &BUCKETS, &route.buckets, route.sum_ns);
    }
}

/// `tenk_http_request_duration_seconds`: every route's durations summed,
/// one series per worker (`worker="N"`), in the routes' buckets.
pub fn render_request_durations(out: &mut String, workers: &[WorkerDurations]) {
    if workers.is_empty() {
        return;
    }
    let name = "tenk_http_request_duration_seconds";
    family(
        out,
        name,
        "histogram",
        "Time from the start of the loop pass that read a request to its answer queued, by worker thread (0 for a cached route's: see the route_stats docs).",
    );
    for w in workers {
        let labels = format!("worker=\"{}\"", w.worker);
        histogram_series(out, name, &labels, &BUCKETS, &w.buckets, w.sum_ns);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::render;
    use crate::metrics::tests::check_shape;
    use crate::server::HttpStats;
    use reactor::Stats;

    #[test]
    fn routes_get_requests_by_class_and_a_cumulative_histogram() {
        let mut buckets = [0; BUCKETS.len() + 1];
        buckets[0] = 3;
        buckets[2] = 1;
        buckets[BUCKETS.len()] = 1;
        let routes = [
            RouteFigures {
                method: "GET",
                route: "/users/:id".into(),
                responses: [0, 0, 4, 0, 1, 0],
                buckets,
                sum_ns: 20_000_400_000,
            },
            RouteFigures {
                method: "any",
                route: "a \"quoted\" \\ name\n".into(),
                responses: [0; 6],
                buckets: [0; BUCKETS.len() + 1],
                sum_ns: 0,
            },
        ];
        let text = render(
            &Stats::default(),
            None,
            None,
            &[],
            &HttpStats::default(),
            &routes,
        );
        check_shape(&text);
        let users = "method=\"GET\",route=\"/users/:id\"";
        for line in [
            format!("tenk_http_route_requests_total{{{users},class=\"2xx\"}} 4\n"),
            format!("tenk_http_route_requests_total{{{users},class=\"4xx\"}} 1\n"),
            format!("tenk_http_route_request_duration_seconds_bucket{{{users},le=\"0.0001\"}} 3\n"),
            format!("tenk_http_route_request_duration_seconds_bucket{{{users},le=\"0.00025\"}} 3\n"),
            format!("tenk_http_route_request_duration_seconds_bucket{{{users},le=\"0.0005\"}} 4\n"),
            format!("tenk_http_route_request_duration_seconds_bucket{{{users},le=\"10\"}} 4\n"),
            format!("tenk_http_route_request_duration_seconds_bucket{{{users},le=\"+Inf\"}} 5\n"),
            format!("tenk_http_route_request_duration_seconds_sum{{{users}}} 20.000400000\n"),
            format!("tenk_http_route_request_duration_seconds_count{{{users}}} 5\n"),
            "tenk_http_route_request_duration_seconds_count{method=\"any\",route=\"a \\\"quoted\\\" \\\\ name\\n\"} 0\n".to_string(),
        ] {
            assert!(text.contains(&line), "no {line:?} in\n{text}");
        }
        assert!(
            !text.contains(&format!("{users},class=\"5xx\"")),
            "classes never seen are left out"
        );
    }
}
