//! Choosing an upstream for a request: smooth weighted round-robin (as
//! nginx's round-robin upstream module) or least connections
//! (fewest requests in flight per unit of weight, ties broken by the
//! round-robin, as nginx's `least_conn`). Each worker has its own
//! [`Balancer`]: no state is shared between threads, so with `--threads N`
//! the distribution is exact per worker and only statistically so overall.

use std::time::Instant;

use super::health::Health;

/// `--upstream-balance`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BalanceMode {
    RoundRobin,
    LeastConnections,
}

/// What the balancer needs to know of one upstream.
pub struct Candidate<'a> {
    pub weight: u32,
    /// Requests in flight to it from this worker.
    pub active: u32,
    pub health: &'a Health,
}

/// A worker's balancer over its upstreams.
#[derive(Debug)]
pub struct Balancer {
    mode: BalanceMode,
    /// Smooth round-robin's current weight of each upstream.
    current: Vec<i64>,
}

impl Balancer {
    pub fn new(mode: BalanceMode, upstreams: usize) -> Balancer {
        Balancer {
            mode,
            current: vec![0; upstreams],
        }
    }

    /// Picks an upstream among those available now, preferring any but
    /// `avoid` (a retry goes elsewhere when it can). `None` when none is
    /// available: every upstream is out.
    pub fn pick(
        &mut self,
        candidates: &[Candidate<'_>],
        now: Instant,
        avoid: Option<usize>,
    ) -> Option<usize> {
        let usable = |i: usize, c: &Candidate<'_>| c.health.available(now) && Some(i) != avoid;
        self.pick_among(candidates, &usable).or_else(|| {
            // Only `avoid` is left (or nothing): the same one again.
            let usable = |_: usize, c: &Candidate<'_>| c.health.available(now);
            self.pick_among(candidates, &usable)
        })
    }

    fn pick_among(
        &mut self,
        candidates: &[Candidate<'_>],
        usable: &dyn Fn(usize, &Candidate<'_>) -> bool,
    ) -> Option<usize> {
        match self.mode {
            BalanceMode::RoundRobin => self.smooth(candidates, usable),
            BalanceMode::LeastConnections => {
                // Fewest in flight per weight: a.active / a.weight <
                // b.active / b.weight, compared without division.
                let load = |c: &Candidate<'_>| (u64::from(c.active), u64::from(c.weight));
                let mut best: Option<(u64, u64)> = None;
                for (i, c) in candidates.iter().enumerate() {
                    if !usable(i, c) {
                        continue;
                    }
                    let (a, w) = load(c);
                    if best.is_none_or(|(ba, bw)| a * bw < ba * w) {
                        best = Some((a, w));
                    }
                }
                let (ba, bw) = best?;
                let tied = |i: usize, c: &Candidate<'_>| {
                    let (a, w) = load(c);
                    usable(i, c) && a * bw == ba * w
                };
                self.smooth(candidates, &tied)
            }
        }
    }

    /// nginx's smooth weighted round-robin: every usable upstream's
    /// current weight grows by its weight; the largest is picked and
    /// lowered by the sum. Weights 5,1,1 give a a b a c a a, not a a a a
    /// a b c.
    fn smooth(
        &mut self,
        candidates: &[Candidate<'_>],
        usable: &dyn Fn(usize, &Candidate<'_>) -> bool,
    ) -> Option<usize> {
        let mut total = 0i64;
        let mut best: Option<usize> = None;
        for (i, c) in candidates.iter().enumerate() {
            if !usable(i, c) {
                continue;
            }
            let weight = i64::from(c.weight);
            self.current[i] += weight;
            total += weight;
            if best.is_none_or(|b| self.current[i] > self.current[b]) {
                best = Some(i);
            }
        }
        let best = best?;
        self.current[best] -= total;
        Some(best)
    }
}

#[cfg(test)]
mod tests {
    use super::super::health::HealthPolicy;
    use super::*;

    fn candidates<'a>(weights: &[u32], active: &[u32], health: &'a [Health]) -> Vec<Candidate<'a>> {
        weights
            .iter()
            .zip(active)
            .zip(health)
            .map(|((&weight, &active), health)| Candidate {
                weight,
                active,
                health,
            })
            .collect()
    }

    fn sequence(b: &mut Balancer, c: &[Candidate<'_>], n: usize) -> String {
        let now = Instant::now();
        (0..n)
            .map(|_| char::from(b'a' + b.pick(c, now, None).unwrap() as u8))
            .collect()
    }

    #[test]
    fn smooth_round_robin_interleaves_by_weight() {
        let health = vec![Health::default(); 3];
        let mut b = Balancer::new(BalanceMode::RoundRobin, 3);
        let c = candidates(&[5, 1, 1], &[0, 0, 0], &health);
        // nginx's own example.
        assert_eq!(sequence(&mut b, &c, 14), "aabacaaaabacaa");
        let mut even = Balancer::new(BalanceMode::RoundRobin, 3);
        let c = candidates(&[1, 1, 1], &[0, 0, 0], &health);
        assert_eq!(sequence(&mut even, &c, 6), "abcabc");
    }

    #[test]
    fn least_connections_prefers_the_least_loaded_per_weight() {
        let health = vec![Health::default(); 3];
        let mut b = Balancer::new(BalanceMode::LeastConnections, 3);
        let now = Instant::now();
        let c = candidates(&[1, 1, 1], &[3, 1, 2], &health);
        assert_eq!(b.pick(&c, now, None), Some(1));
        // 4 in flight at weight 4 beats 2 at weight 1.
        let c = candidates(&[1, 4, 1], &[2, 4, 2], &health);
        assert_eq!(b.pick(&c, now, None), Some(1));
        // Ties go round: all idle → a b c.
        let c = candidates(&[1, 1, 1], &[0, 0, 0], &health);
        assert_eq!(sequence(&mut b, &c, 3).len(), 3);
        let mut fresh = Balancer::new(BalanceMode::LeastConnections, 3);
        assert_eq!(sequence(&mut fresh, &c, 6), "abcabc");
    }

    #[test]
    fn skips_upstreams_that_are_out_and_avoids_the_one_asked() {
        let now = Instant::now();
        let mut health = vec![Health::default(); 3];
        let policy = HealthPolicy {
            max_fails: 1,
            ..HealthPolicy::default()
        };
        health[1].failed(&policy, now);
        for mode in [BalanceMode::RoundRobin, BalanceMode::LeastConnections] {
            let mut b = Balancer::new(mode, 3);
            let c = candidates(&[1, 1, 1], &[0, 0, 0], &health);
            let picks: Vec<usize> = (0..6).map(|_| b.pick(&c, now, None).unwrap()).collect();
            assert!(!picks.contains(&1), "{mode:?}: {picks:?}");
            assert_eq!(b.pick(&c, now, Some(0)), Some(2), "{mode:?}");
            assert_eq!(b.pick(&c, now, Some(2)), Some(0), "{mode:?}");
        }
    }

    #[test]
    fn retry_with_one_upstream_goes_to_it_again_and_none_when_all_out() {
        let now = Instant::now();
        let mut health = vec![Health::default()];
        let mut b = Balancer::new(BalanceMode::RoundRobin, 1);
        let c = candidates(&[1], &[0], &health);
        assert_eq!(b.pick(&c, now, Some(0)), Some(0));
        let policy = HealthPolicy {
            max_fails: 1,
            ..HealthPolicy::default()
        };
        health[0].failed(&policy, now);
        let c = candidates(&[1], &[0], &health);
        assert_eq!(b.pick(&c, now, None), None);
    }
}
