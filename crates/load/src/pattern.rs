//! The bytes an echo connection sends: a deterministic stream per
//! connection, so a reply can be checked byte for byte without keeping a
//! copy of what was sent.
//!
//! Byte `offset` of the stream with seed `s` is a byte of
//! `splitmix64(s ^ (offset / 8))`: cheap, different for every connection
//! (each has its own seed), and different at every position, so a dropped,
//! duplicated, flipped or misrouted byte shows up as a mismatch.

/// One 64-bit step of splitmix64: a fast, well-mixed hash of `x`.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The byte stream of one connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pattern {
    seed: u64,
}

impl Pattern {
    /// The stream for `seed` (one seed per connection).
    pub fn new(seed: u64) -> Pattern {
        Pattern {
            seed: splitmix64(seed),
        }
    }

    /// Byte `offset` of the stream.
    pub fn byte(&self, offset: u64) -> u8 {
        let word = splitmix64(self.seed ^ (offset / 8));
        word.to_le_bytes()[(offset % 8) as usize]
    }

    /// Fills `out` with the stream's bytes from `offset` on.
    pub fn fill(&self, offset: u64, out: &mut [u8]) {
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = self.byte(offset + i as u64);
        }
    }

    /// The first position at which `data` differs from the stream starting
    /// at `offset`, if any.
    pub fn first_mismatch(&self, offset: u64, data: &[u8]) -> Option<usize> {
        data.iter()
            .enumerate()
            .position(|(i, &b)| b != self.byte(offset + i as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_and_check_agree_at_any_offset() {
        let p = Pattern::new(7);
        let mut buf = vec![0; 100];
        p.fill(13, &mut buf);
        assert_eq!(p.first_mismatch(13, &buf), None);
        assert_eq!(p.first_mismatch(18, &buf[5..]), None);
    }

    #[test]
    fn one_flipped_byte_is_found() {
        let p = Pattern::new(1);
        let mut buf = vec![0; 64];
        p.fill(0, &mut buf);
        buf[40] ^= 1;
        assert_eq!(p.first_mismatch(0, &buf), Some(40));
    }

    #[test]
    fn a_dropped_or_duplicated_byte_is_found() {
        let p = Pattern::new(2);
        let mut buf = vec![0; 64];
        p.fill(0, &mut buf);
        let mut dropped = buf.clone();
        dropped.remove(10);
        assert!(p.first_mismatch(0, &dropped).is_some());
        let mut duplicated = buf.clone();
        duplicated.insert(10, buf[10]);
        assert!(p.first_mismatch(0, &duplicated).is_some());
    }

    #[test]
    fn connections_have_different_streams() {
        let a = Pattern::new(1);
        let b = Pattern::new(2);
        let mut buf = vec![0; 64];
        a.fill(0, &mut buf);
        assert!(b.first_mismatch(0, &buf).is_some());
    }
}
