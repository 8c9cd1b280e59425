//! The histogram writer: a family of [`reactor::Histogram`]s, and one
//! series of any histogram as cumulative buckets, sum and count.

use reactor::Histogram;

use super::{family, sample, seconds};

/// A histogram family `name` of [`reactor::Histogram`]s, one series per
/// `(labels, histogram)` (labels as `k="v",…`); nothing without series.
pub fn render_histograms(out: &mut String, name: &str, help: &str, series: &[(String, Histogram)]) {
    if series.is_empty() {
        return;
    }
    family(out, name, "histogram", help);
    for (labels, h) in series {
        histogram_series(
            out,
            name,
            labels,
            &Histogram::BOUNDS_NS,
            &h.buckets,
            h.sum_ns,
        );
    }
}

/// One series of a histogram: cumulative `_bucket`s for `bounds_ns` and
/// `+Inf` (`buckets` has one count more than `bounds_ns`, not
/// cumulative), `_sum` in seconds, `_count`.
pub(crate) fn histogram_series(
    out: &mut String,
    name: &str,
    labels: &str,
    bounds_ns: &[u64],
    buckets: &[u64],
    sum_ns: u64,
) {
    let sep = if labels.is_empty() { "" } else { "," };
    let mut below = 0;
    for (i, &count) in buckets.iter().enumerate() {
        below += count;
        let le = bounds_ns
            .get(i)
            .map_or_else(|| "+Inf".to_string(), |&ns| bound(ns));
        let bucket = format!("{labels}{sep}le=\"{le}\"");
        sample(out, &format!("{name}_bucket"), &bucket, below);
    }
    sample(out, &format!("{name}_sum"), labels, seconds(sum_ns));
    sample(out, &format!("{name}_count"), labels, below);
}

/// `ns` as seconds, without trailing zeros: `0.0001`, `2.5`, `10`.
fn bound(ns: u64) -> String {
    let text = seconds(ns);
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}
