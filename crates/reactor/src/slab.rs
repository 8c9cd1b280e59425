//! A slab of generation-tagged slots: O(1) insert, lookup and removal.

use crate::token::Token;

struct Slot<T> {
    generation: u32,
    value: Option<T>,
}

/// Slots reused last-freed-first, each with a generation bumped on removal,
/// so a [`Token`] held past its entry's removal no longer resolves.
pub(crate) struct Slab<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Slab<T> {
    pub(crate) fn new() -> Slab<T> {
        Slab {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The token the next [`Slab::insert`] will return.
    pub(crate) fn next_token(&self) -> Token {
        match self.free.last() {
            Some(&index) => Token::new(index, self.slots[index as usize].generation),
            None => Token::new(self.slots.len() as u32, 0),
        }
    }

    pub(crate) fn insert(&mut self, value: T) -> Token {
        self.len += 1;
        match self.free.pop() {
            Some(index) => {
                let slot = &mut self.slots[index as usize];
                slot.value = Some(value);
                Token::new(index, slot.generation)
            }
            None => {
                let index = self.slots.len() as u32;
                self.slots.push(Slot {
                    generation: 0,
                    value: Some(value),
                });
                Token::new(index, 0)
            }
        }
    }

    fn slot(&self, token: Token) -> Option<&Slot<T>> {
        self.slots
            .get(token.index())
            .filter(|slot| slot.generation == token.generation())
    }

    pub(crate) fn get(&self, token: Token) -> Option<&T> {
        self.slot(token)?.value.as_ref()
    }

    pub(crate) fn get_mut(&mut self, token: Token) -> Option<&mut T> {
        self.slots
            .get_mut(token.index())
            .filter(|slot| slot.generation == token.generation())?
            .value
            .as_mut()
    }

    /// Removes the entry and retires its token.
    pub(crate) fn remove(&mut self, token: Token) -> Option<T> {
        let slot = self
            .slots
            .get_mut(token.index())
            .filter(|slot| slot.generation == token.generation())?;
        let value = slot.value.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(token.index() as u32);
        self.len -= 1;
        Some(value)
    }

    /// Tokens of every live entry, for shutdown sweeps.
    pub(crate) fn tokens(&self) -> Vec<Token> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, slot)| slot.value.is_some())
            .map(|(index, slot)| Token::new(index as u32, slot.generation))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_get_remove() {
        let mut slab = Slab::new();
        let a = slab.insert("a");
        let b = slab.insert("b");
        assert_eq!(slab.len(), 2);
        assert_eq!(slab.get(a), Some(&"a"));
        assert_eq!(slab.get(b), Some(&"b"));
        assert_eq!(slab.remove(a), Some("a"));
        assert_eq!(slab.get(a), None);
        assert_eq!(slab.len(), 1);
    }

    #[test]
    fn reused_slot_rejects_the_old_token() {
        // The bug this guards: an event for a connection closed earlier in
        // the same batch reaching the connection that took its slot.
        let mut slab = Slab::new();
        let old = slab.insert(1);
        slab.remove(old);
        let predicted = slab.next_token();
        let new = slab.insert(2);
        assert_eq!(predicted, new);
        assert_eq!(old.index(), new.index(), "slot is reused");
        assert_eq!(new.generation(), old.generation() + 1, "generation bumped");
        assert_ne!(old, new);
        assert_eq!(slab.get(old), None);
        assert_eq!(slab.get_mut(old), None);
        assert_eq!(slab.remove(old), None, "a stale token removes nothing");
        assert_eq!(slab.get(new), Some(&2));
    }

    #[test]
    fn every_reuse_bumps_the_generation_and_retires_all_older_tokens() {
        let mut slab = Slab::new();
        let mut retired = Vec::new();
        let mut token = slab.insert(0);
        for round in 1..=5 {
            slab.remove(token);
            retired.push(token);
            token = slab.insert(round);
            assert_eq!(token.index(), 0);
            assert_eq!(token.generation(), round);
            for &old in &retired {
                assert_eq!(slab.get(old), None, "{old:?} resolves in round {round}");
            }
        }
        assert_eq!(slab.get(token), Some(&5));
    }

    #[test]
    fn generation_wraps_instead_of_overflowing() {
        let mut slab = Slab::new();
        let first = slab.insert('a');
        slab.slots[first.index()].generation = u32::MAX;
        let last = Token::new(first.index() as u32, u32::MAX);
        assert_eq!(slab.remove(last), Some('a'));
        let wrapped = slab.insert('b');
        assert_eq!(wrapped.generation(), 0);
        assert_eq!(slab.get(last), None);
    }

    #[test]
    fn a_token_from_beyond_the_slab_resolves_to_nothing() {
        let mut slab = Slab::new();
        slab.insert(());
        let foreign = Token::new(7, 0);
        assert_eq!(slab.get(foreign), None);
        assert_eq!(slab.get_mut(foreign), None);
        assert_eq!(slab.remove(foreign), None);
        assert_eq!(slab.len(), 1);
    }

    #[test]
    fn double_remove_is_harmless() {
        let mut slab = Slab::new();
        let t = slab.insert(());
        assert!(slab.remove(t).is_some());
        assert!(slab.remove(t).is_none());
        assert_eq!(slab.len(), 0);
    }

    #[test]
    fn tokens_lists_live_entries_only() {
        let mut slab = Slab::new();
        let a = slab.insert('a');
        let b = slab.insert('b');
        let c = slab.insert('c');
        slab.remove(b);
        assert_eq!(slab.tokens(), vec![a, c]);
    }
}
