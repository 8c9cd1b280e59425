//! Tokens: a slot index plus the generation of the slot's occupant.

/// Names one registration (a connection or a listener) in a reactor.
///
/// A token is a slot index plus a *generation*. When a connection closes,
/// its slot's generation is bumped and the slot may be reused at once, even
/// for a connection accepted later in the same `epoll_wait` batch. An event
/// still queued for the old connection carries the old generation and is
/// recognised as stale and dropped, so it can never be delivered to the new
/// occupant. Every method that takes a token ignores a stale one.
///
/// The index is dense and small (the most recently freed slot is reused first), so a
/// protocol can keep its per-connection state in a `Vec` indexed by
/// [`Token::index`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct Token {
    index: u32,
    generation: u32,
}

impl Token {
    pub(crate) const fn new(index: u32, generation: u32) -> Token {
        Token { index, generation }
    }

    /// The slot index, stable for the life of the registration.
    pub fn index(self) -> usize {
        self.index as usize
    }

    /// The slot's generation when this token was issued.
    pub fn generation(self) -> u32 {
        self.generation
    }

    /// Packs the token into epoll's 64-bit user data.
    pub(crate) fn to_u64(self) -> u64 {
        (u64::from(self.generation) << 32) | u64::from(self.index)
    }

    pub(crate) fn from_u64(data: u64) -> Token {
        Token {
            index: data as u32,
            generation: (data >> 32) as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_epoll_data() {
        for token in [
            Token::new(0, 0),
            Token::new(7, 1),
            Token::new(u32::MAX, u32::MAX),
            Token::new(12345, 0xdead_beef),
        ] {
            assert_eq!(Token::from_u64(token.to_u64()), token);
        }
    }

    #[test]
    fn index_and_generation_do_not_overlap() {
        let token = Token::new(1, 2);
        assert_eq!(token.to_u64(), (2 << 32) | 1);
        assert_eq!(token.index(), 1);
        assert_eq!(token.generation(), 2);
    }
}
