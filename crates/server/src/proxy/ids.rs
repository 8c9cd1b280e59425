//! The hasher of the proxy's maps keyed by its own ids (reactor tokens,
//! timer numbers).
//!
//! std's default SipHash-1-3 resists flooding by keys an attacker
//! chooses; these keys are never chosen from outside (the reactor hands
//! out tokens, the proxy counts its timers), and SipHash cost a quarter
//! of the proxy's user-space instructions per request: four to six map
//! operations per request at ~800 instructions each under callgrind
//! (docs/benchmarks.md §14). One multiply per word instead (the FxHash
//! of rustc): the multiply carries every input bit into the high bits,
//! which hashbrown's control bytes and probe start both use.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` keyed by the proxy's own ids.
pub(super) type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;

/// FxHash: rotate, xor the word in, multiply.
#[derive(Clone, Copy, Default, Debug)]
pub(super) struct IdHasher {
    hash: u64,
}

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl IdHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.hash = (self.hash.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for IdHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }

    // Ids hash through the integer writes below; this covers any other
    // key, a byte at a time.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.add(u64::from(b));
        }
    }

    #[inline]
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    use super::*;

    fn hash<T: std::hash::Hash>(value: T) -> u64 {
        BuildHasherDefault::<IdHasher>::default().hash_one(value)
    }

    #[test]
    fn distinct_ids_hash_apart_in_the_bits_hashbrown_uses() {
        // Sequential ids (slab indices, timer numbers): their top 7 bits
        // (hashbrown's control byte) and low 10 bits (the probe start of
        // a 1,024-bucket table) must spread, or lookups degrade to scans.
        let hashes: Vec<u64> = (0u64..1024).map(hash).collect();
        let tops: HashSet<u64> = hashes.iter().map(|h| h >> 57).collect();
        let lows: HashSet<u64> = hashes.iter().map(|h| h & 1023).collect();
        assert!(tops.len() >= 100, "control bytes: {} of 128", tops.len());
        assert!(lows.len() >= 600, "probe starts: {} of 1024", lows.len());
    }

    #[test]
    fn a_map_keyed_by_ids_finds_every_key() {
        let mut map: IdMap<(u32, u32), u32> = IdMap::default();
        for i in 0..10_000u32 {
            map.insert((i, i % 7), i);
        }
        for i in 0..10_000u32 {
            assert_eq!(map.get(&(i, i % 7)), Some(&i));
            assert_eq!(map.get(&(i, i % 7 + 1)), None);
        }
    }
}
