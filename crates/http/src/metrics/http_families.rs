//! The HTTP layer's families: responses by status class, refusals, header
//! timeouts, and each route's.

use super::routes::render_routes;
use super::{family, sample, single};
use crate::route_stats::RouteFigures;
use crate::server::HttpStats;

/// The HTTP layer's part of [`render`](super::render): responses by class, refusals,
/// header timeouts, and each route's families.
pub fn render_http(out: &mut String, http: &HttpStats, routes: &[RouteFigures]) {
    family(
        out,
        "tenk_http_responses_total",
        "counter",
        "HTTP responses, by status class.",
    );
    for (i, class) in ["other", "1xx", "2xx", "3xx", "4xx", "5xx"]
        .iter()
        .enumerate()
    {
        sample(
            out,
            "tenk_http_responses_total",
            &format!("class=\"{class}\""),
            http.responses[i],
        );
    }
    single(
        out,
        "tenk_http_requests_refused_total",
        "counter",
        "Requests refused as malformed or hostile.",
        http.refused,
    );
    single(
        out,
        "tenk_http_header_timeouts_total",
        "counter",
        "Request heads cut by the header timeout (408).",
        http.header_timeouts,
    );
    render_routes(out, routes);
}
