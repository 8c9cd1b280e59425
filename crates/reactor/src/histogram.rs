//! A latency histogram cheap enough for every pass of the loop: fixed
//! bucket bounds, counts in plain `u64`s, no allocation, and a bucket
//! found with a shift and a count of leading zeros instead of a search.

/// How many bounded buckets there are; one more, beyond the last bound,
/// is unbounded (`+Inf`).
pub const BOUNDS: usize = 11;

/// The first bound is 2^10 ns (1.024 µs); each next one is 4 times the
/// one before, up to 2^30 ns (1.07 s). Powers of 4 so that the bucket of
/// a duration is half its bit length: the lower bound of an event loop's
/// pass is about a microsecond, and a pass of a second is a stall worth
/// seeing but not worth resolving further.
const FIRST_SHIFT: u32 = 10;

/// The bucket bounds in nanoseconds, `le` of each bucket but the last.
pub const BOUNDS_NS: [u64; BOUNDS] = {
    let mut bounds = [0; BOUNDS];
    let mut i = 0;
    while i < BOUNDS {
        bounds[i] = 1 << (FIRST_SHIFT + 2 * i as u32);
        i += 1;
    }
    bounds
};

/// Durations in buckets of `BOUNDS_NS` and their sum: what Prometheus
/// calls a histogram (`_bucket`, `_sum`, `_count`). `Copy`, so a reactor's
/// [`Stats`](crate::Stats) carrying one can still be published by value.
///
/// # Examples
/// ```
/// use reactor::Histogram;
///
/// let mut h = Histogram::default();
/// h.record(800); // 0.8 µs: the first bucket (≤ 1.024 µs)
/// h.record(5_000); // 5 µs: the third (≤ 16.384 µs)
/// assert_eq!(h.buckets[0], 1);
/// assert_eq!(h.buckets[2], 1);
/// assert_eq!((h.count(), h.sum_ns), (2, 5_800));
/// ```
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Histogram {
    /// `buckets[i]`: durations above `BOUNDS_NS[i - 1]` (0 for `i` = 0)
    /// and at most `BOUNDS_NS[i]`; the last, above every bound. Not
    /// cumulative (the exposition adds them up).
    pub buckets: [u64; BOUNDS + 1],
    /// Every duration recorded, added up, in nanoseconds.
    pub sum_ns: u64,
}

impl Histogram {
    /// The bucket bounds in nanoseconds (`BOUNDS_NS`).
    pub const BOUNDS_NS: [u64; BOUNDS] = BOUNDS_NS;

    /// Counts one duration of `ns` nanoseconds: about ten instructions,
    /// branch-free but for the clamp.
    #[inline(always)]
    pub fn record(&mut self, ns: u64) {
        self.buckets[Histogram::bucket_of(ns)] += 1;
        self.sum_ns = self.sum_ns.wrapping_add(ns);
    }

    /// Durations recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// Adds another histogram's counts (for a total over threads).
    pub fn add(&mut self, other: &Histogram) {
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            *mine += theirs;
        }
        self.sum_ns = self.sum_ns.wrapping_add(other.sum_ns);
    }

    /// The counts accumulated since `earlier`.
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let mut delta = *self;
        for (mine, theirs) in delta.buckets.iter_mut().zip(earlier.buckets) {
            *mine -= theirs;
        }
        delta.sum_ns = self.sum_ns.wrapping_sub(earlier.sum_ns);
        delta
    }
}

impl Histogram {
    /// The index in [`Histogram::buckets`] of a duration of `ns`
    /// nanoseconds (for a histogram kept elsewhere, e.g. in atomics
    /// shared between threads): a duration `d` with
    /// `4^(i-1) < d / 2^10 ≤ 4^i` goes to bucket `i`, which is half the
    /// bit length of `(d - 1) >> 10`, rounded up.
    #[inline(always)]
    pub fn bucket_of(ns: u64) -> usize {
        let scaled = ns.saturating_sub(1) >> FIRST_SHIFT;
        // The bit length of `scaled` as the log of `2 * scaled + 1`,
        // never 0: one `bsr`, without the zero check `leading_zeros`
        // needs on x86-64 before `lzcnt`.
        let bits = ((scaled << 1) | 1).ilog2();
        (bits.div_ceil(2) as usize).min(BOUNDS)
    }

    /// [`record`](Histogram::record) without the sum, for a caller that
    /// keeps the sum already (the reactor's `busy_ns`) and fills
    /// `sum_ns` in when it hands the histogram out.
    #[inline(always)]
    pub(crate) fn count_only(&mut self, ns: u64) {
        self.buckets[Histogram::bucket_of(ns)] += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_powers_of_four_from_a_microsecond_to_a_second() {
        assert_eq!(BOUNDS_NS[0], 1024);
        assert_eq!(BOUNDS_NS[1], 4096);
        assert_eq!(BOUNDS_NS[BOUNDS - 1], 1 << 30);
    }

    /// Every bound and its neighbours land where `le` says: at most the
    /// bound in its bucket, one more in the next. Checked against a plain
    /// search, the definition.
    #[test]
    fn each_duration_lands_in_the_first_bucket_whose_bound_it_does_not_pass() {
        let by_search = |ns: u64| BOUNDS_NS.partition_point(|&bound| bound < ns);
        let mut probes = vec![0, 1, u64::MAX, u64::MAX - 1];
        for bound in BOUNDS_NS {
            probes.extend([bound - 1, bound, bound + 1, bound * 2]);
        }
        for ns in probes {
            assert_eq!(Histogram::bucket_of(ns), by_search(ns), "{ns} ns");
        }
    }

    #[test]
    fn add_and_since_are_inverse() {
        let mut a = Histogram::default();
        let mut b = Histogram::default();
        for ns in [1, 2_000, 3_000_000, 5_000_000_000] {
            a.record(ns);
            b.record(ns / 2);
        }
        let mut total = a;
        total.add(&b);
        assert_eq!(total.count(), 8);
        assert_eq!(total.since(&b), a);
        assert_eq!(
            total.buckets[BOUNDS], 2,
            "5 s and 2.5 s are beyond the last bound"
        );
    }
}
