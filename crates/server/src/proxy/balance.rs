//! Choosing an upstream for a request: smooth weighted round-robin (as
//! nginx's round-robin upstream module), least connections (fewest
//! requests in flight per unit of weight, ties broken by the round-robin,
//! as nginx's `least_conn`), or a hash of a key: the client's address or
//! a request header (weighted rendezvous hashing, below). Each worker has
//! its own [`Balancer`]: no state is shared between threads, so with
//! `--threads N` the distribution is exact per worker and only
//! statistically so overall; a hash picks the same upstream in every
//! worker (and every tenk process with the same `--upstream` names).

use std::net::IpAddr;
use std::time::Instant;

use super::health::Health;

/// `--upstream-balance`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BalanceMode {
    RoundRobin,
    LeastConnections,
    /// By the client's address (a PROXY protocol header's, if any).
    HashClient,
    /// By this request header's value (round-robin without it).
    HashHeader(String),
}

impl BalanceMode {
    /// Parses `round-robin`, `least-connections`, `hash-client` or
    /// `hash-header:NAME`.
    ///
    /// # Errors
    /// A message for the user: another mode, or a header name that is
    /// empty or not an HTTP token.
    pub fn parse(text: &str) -> Result<BalanceMode, String> {
        match text {
            "round-robin" => return Ok(BalanceMode::RoundRobin),
            "least-connections" => return Ok(BalanceMode::LeastConnections),
            "hash-client" => return Ok(BalanceMode::HashClient),
            _ => {}
        }
        let Some(name) = text.strip_prefix("hash-header:") else {
            return Err(format!(
                "{text:?}: expected round-robin, least-connections, hash-client or \
                 hash-header:NAME"
            ));
        };
        // RFC 9110 section 5.6.2's tchar.
        let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(tchar) {
            return Err(format!("{text:?}: {name:?} is not a header name"));
        }
        Ok(BalanceMode::HashHeader(name.to_string()))
    }
}

/// The hash of a request's balancing key (`--upstream-balance hash-*`).
pub fn key_of(bytes: &[u8]) -> u64 {
    // FNV-1a, then a finaliser: fixed (not per process, as std's
    // RandomState is), so every worker and every proxy with the same
    // upstreams sends a key to the same one.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// The key of a client address: its IP, an IPv4-mapped IPv6 one as IPv4.
pub fn key_of_addr(addr: IpAddr) -> u64 {
    match addr.to_canonical() {
        IpAddr::V4(v4) => key_of(&v4.octets()),
        IpAddr::V6(v6) => key_of(&v6.octets()),
    }
}

/// splitmix64's finaliser: every input bit moves about half the output.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Weighted rendezvous (highest random weight) score of `key` on the
/// upstream `id` of `weight`: `-weight / ln(u)` with `u` uniform in (0,1)
/// from the pair's hash, so that each upstream wins a key with a
/// probability proportional to its weight (Schindelhauer and Schomaker,
/// "Weighted distributed hash tables", 2005). Each key ranks the
/// upstreams on its own: taking one out moves only the keys it won, each
/// to its next choice, and the others' keys stay where they are.
fn rendezvous(key: u64, id: u64, weight: u32) -> f64 {
    let h = mix(key ^ id.rotate_left(32));
    // 53 bits, centred in their interval: never 0 or 1.
    let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    f64::from(weight) / -u.ln()
}

/// What the balancer needs to know of one upstream.
pub struct Candidate<'a> {
    /// The hash of its name (`--upstream` as written): its identity for
    /// hashing, so that removing another upstream moves none of its keys.
    pub id: u64,
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
    /// `avoid` (a retry goes elsewhere when it can). `key`: the request's
    /// balancing key under a hash mode (`None`: it has none, round-robin
    /// then). `None` when none is available: every upstream is out.
    pub fn pick(
        &mut self,
        candidates: &[Candidate<'_>],
        now: Instant,
        avoid: Option<usize>,
        key: Option<u64>,
    ) -> Option<usize> {
        let usable = |i: usize, c: &Candidate<'_>| c.health.available(now) && Some(i) != avoid;
        self.pick_among(candidates, &usable, key).or_else(|| {
            // Only `avoid` is left (or nothing): the same one again.
            let usable = |_: usize, c: &Candidate<'_>| c.health.available(now);
            self.pick_among(candidates, &usable, key)
        })
    }

    fn pick_among(
        &mut self,
        candidates: &[Candidate<'_>],
        usable: &dyn Fn(usize, &Candidate<'_>) -> bool,
        key: Option<u64>,
    ) -> Option<usize> {
        match self.mode {
            BalanceMode::HashClient | BalanceMode::HashHeader(_) if key.is_some() => {
                let key = key?;
                // The usable upstream of the highest score: one out is
                // skipped, and its keys go to their next choice.
                let mut best: Option<(usize, f64)> = None;
                for (i, c) in candidates.iter().enumerate() {
                    if !usable(i, c) {
                        continue;
                    }
                    let score = rendezvous(key, c.id, c.weight);
                    if best.is_none_or(|(_, b)| score > b) {
                        best = Some((i, score));
                    }
                }
                best.map(|(i, _)| i)
            }
            BalanceMode::RoundRobin | BalanceMode::HashClient | BalanceMode::HashHeader(_) => {
                self.smooth(candidates, usable)
            }
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
            .enumerate()
            .map(|(i, ((&weight, &active), health))| Candidate {
                id: key_of(format!("10.0.0.{i}:80").as_bytes()),
                weight,
                active,
                health,
            })
            .collect()
    }

    fn sequence(b: &mut Balancer, c: &[Candidate<'_>], n: usize) -> String {
        let now = Instant::now();
        (0..n)
            .map(|_| char::from(b'a' + b.pick(c, now, None, None).unwrap() as u8))
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
        assert_eq!(b.pick(&c, now, None, None), Some(1));
        // 4 in flight at weight 4 beats 2 at weight 1.
        let c = candidates(&[1, 4, 1], &[2, 4, 2], &health);
        assert_eq!(b.pick(&c, now, None, None), Some(1));
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
            let mut b = Balancer::new(mode.clone(), 3);
            let c = candidates(&[1, 1, 1], &[0, 0, 0], &health);
            let picks: Vec<usize> = (0..6)
                .map(|_| b.pick(&c, now, None, None).unwrap())
                .collect();
            assert!(!picks.contains(&1), "{mode:?}: {picks:?}");
            assert_eq!(b.pick(&c, now, Some(0), None), Some(2), "{mode:?}");
            assert_eq!(b.pick(&c, now, Some(2), None), Some(0), "{mode:?}");
        }
    }

    #[test]
    fn retry_with_one_upstream_goes_to_it_again_and_none_when_all_out() {
        let now = Instant::now();
        let mut health = vec![Health::default()];
        let mut b = Balancer::new(BalanceMode::RoundRobin, 1);
        let c = candidates(&[1], &[0], &health);
        assert_eq!(b.pick(&c, now, Some(0), None), Some(0));
        let policy = HealthPolicy {
            max_fails: 1,
            ..HealthPolicy::default()
        };
        health[0].failed(&policy, now);
        let c = candidates(&[1], &[0], &health);
        assert_eq!(b.pick(&c, now, None, None), None);
    }

    /// The pick of each of `keys` (`None`: none available).
    fn picks(b: &mut Balancer, c: &[Candidate<'_>], keys: &[u64]) -> Vec<Option<usize>> {
        let now = Instant::now();
        keys.iter()
            .map(|&k| b.pick(c, now, None, Some(k)))
            .collect()
    }

    #[test]
    fn hashing_is_stable_spread_by_weight_and_consistent() {
        let keys: Vec<u64> = (0..20_000u32).map(|k| key_of(&k.to_be_bytes())).collect();
        let health = vec![Health::default(); 4];
        let mut b = Balancer::new(BalanceMode::HashClient, 4);
        let c = candidates(&[1, 1, 2, 1], &[0, 0, 0, 0], &health);
        let first = picks(&mut b, &c, &keys);
        // The same key, the same upstream, whatever the load says.
        let busy = candidates(&[1, 1, 2, 1], &[9, 0, 0, 0], &health);
        assert_eq!(picks(&mut b, &busy, &keys), first);
        // Shares by weight: 1/5, 1/5, 2/5, 1/5, within a few percent.
        let mut count = [0usize; 4];
        for p in &first {
            count[p.unwrap()] += 1;
        }
        let expect = [4000, 4000, 8000, 4000];
        for (got, want) in count.iter().zip(expect) {
            assert!(got.abs_diff(want) < want / 10, "{count:?}");
        }
        // Upstream 2 out: only its keys move, and they spread over the rest.
        let mut down = vec![Health::default(); 4];
        let policy = HealthPolicy {
            max_fails: 1,
            ..HealthPolicy::default()
        };
        down[2].failed(&policy, Instant::now());
        let c = candidates(&[1, 1, 2, 1], &[0, 0, 0, 0], &down);
        let after = picks(&mut b, &c, &keys);
        let mut moved_to = [0usize; 4];
        for (before, after) in first.iter().zip(&after) {
            if *before == Some(2) {
                moved_to[after.unwrap()] += 1;
            } else {
                assert_eq!(before, after, "a key of a live upstream moved");
            }
        }
        assert_eq!(moved_to[2], 0);
        assert!(
            moved_to
                .iter()
                .enumerate()
                .all(|(i, &n)| i == 2 || n > 2000),
            "{moved_to:?}"
        );
    }

    #[test]
    fn a_hash_retry_goes_to_the_keys_next_choice_and_no_key_goes_round() {
        let health = vec![Health::default(); 3];
        let now = Instant::now();
        let mut b = Balancer::new(BalanceMode::HashHeader("x-user".into()), 3);
        let c = candidates(&[1, 1, 1], &[0, 0, 0], &health);
        let key = key_of(b"alice");
        let first = b.pick(&c, now, None, Some(key)).unwrap();
        let second = b.pick(&c, now, Some(first), Some(key)).unwrap();
        assert_ne!(first, second);
        assert_eq!(b.pick(&c, now, Some(first), Some(key)), Some(second));
        // Without a key: the smooth round-robin.
        assert_eq!(sequence(&mut b, &c, 6), "abcabc");
    }

    #[test]
    fn modes_parse_and_bad_ones_say_why() {
        use BalanceMode::*;
        for (text, mode) in [
            ("round-robin", RoundRobin),
            ("least-connections", LeastConnections),
            ("hash-client", HashClient),
            ("hash-header:X-User", HashHeader("X-User".into())),
        ] {
            assert_eq!(BalanceMode::parse(text), Ok(mode), "{text}");
        }
        for bad in [
            "",
            "hash",
            "hash-header",
            "hash-header:",
            "hash-header:a b",
            "random",
        ] {
            let err = BalanceMode::parse(bad).unwrap_err();
            assert!(err.starts_with(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn keys_are_fixed_across_processes_and_addresses_canonical() {
        // A fixed function: a changed constant would move every key.
        assert_eq!(key_of(b""), mix(0xcbf2_9ce4_8422_2325));
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(key_of_addr(v4), key_of_addr(mapped));
        assert_ne!(key_of_addr(v4), key_of_addr("192.0.2.8".parse().unwrap()));
    }
}
