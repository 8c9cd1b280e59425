//! Deterministic test data from a seed (xorshift64), different per seed and
//! along its length, so a lost, duplicated, reordered or misrouted piece
//! shows up as a mismatch.
//!
//! Not `load::pattern`: that one answers "which byte is at offset N" for a
//! load generator checking replies on the fly; tests want a whole buffer,
//! and some want text.

/// The xorshift64 words of `seed`'s stream.
fn words(seed: u64) -> impl Iterator<Item = u64> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    std::iter::repeat_with(move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    })
}

/// `len` pseudo-random bytes of every value, eight per word.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    // Whole words at a time: megabyte buffers stay quick in debug builds.
    let mut bytes = Vec::with_capacity(len + 8);
    for word in words(seed) {
        if bytes.len() >= len {
            break;
        }
        bytes.extend_from_slice(&word.to_le_bytes());
    }
    bytes.truncate(len);
    bytes
}

/// `len` pseudo-random ASCII letters and digits, one per word: a body that
/// is readable text.
pub fn letters(seed: u64, len: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    words(seed)
        .take(len)
        .map(|word| ALPHABET[(word % ALPHABET.len() as u64) as usize])
        .collect()
}
