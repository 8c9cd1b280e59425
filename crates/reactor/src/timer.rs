//! Deadlines, ordered, for the reactor's single timerfd.

use std::collections::BTreeMap;
use std::time::Instant;

/// Names one scheduled timer, for cancelling it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct TimerId {
    deadline: Instant,
    seq: u64,
}

impl TimerId {
    /// When the timer fires.
    pub fn deadline(self) -> Instant {
        self.deadline
    }
}

/// Timers ordered by deadline, ties broken by insertion order.
///
/// Insert and cancel are O(log n). The reactor arms its one timerfd for
/// [`TimerQueue::next_deadline`] only.
pub(crate) struct TimerQueue<T> {
    timers: BTreeMap<TimerId, T>,
    seq: u64,
}

impl<T> TimerQueue<T> {
    pub(crate) fn new() -> TimerQueue<T> {
        TimerQueue {
            timers: BTreeMap::new(),
            seq: 0,
        }
    }

    pub(crate) fn insert(&mut self, deadline: Instant, value: T) -> TimerId {
        self.seq += 1;
        let id = TimerId {
            deadline,
            seq: self.seq,
        };
        self.timers.insert(id, value);
        id
    }

    pub(crate) fn cancel(&mut self, id: TimerId) -> Option<T> {
        self.timers.remove(&id)
    }

    #[inline]
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.timers.first_key_value().map(|(id, _)| id.deadline)
    }

    /// Whether a timer is due at `now`.
    #[inline]
    pub(crate) fn is_due(&self, now: Instant) -> bool {
        self.next_deadline().is_some_and(|deadline| deadline <= now)
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    pub(crate) fn pop_expired(&mut self, now: Instant) -> Option<(TimerId, T)> {
        if self.next_deadline()? <= now {
            self.timers.pop_first()
        } else {
            None
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.timers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn pops_in_deadline_order_then_insertion_order() {
        let now = Instant::now();
        let mut q = TimerQueue::new();
        q.insert(now + Duration::from_millis(30), "c");
        q.insert(now + Duration::from_millis(10), "a");
        q.insert(now + Duration::from_millis(10), "b");
        q.insert(now + Duration::from_millis(50), "later");
        let later = now + Duration::from_millis(40);
        let mut fired = vec![];
        while let Some((_, v)) = q.pop_expired(later) {
            fired.push(v);
        }
        assert_eq!(fired, ["a", "b", "c"]);
        assert_eq!(q.len(), 1);
        assert_eq!(q.next_deadline(), Some(now + Duration::from_millis(50)));
    }

    #[test]
    fn nothing_fires_early() {
        let now = Instant::now();
        let mut q = TimerQueue::new();
        q.insert(now + Duration::from_secs(1), ());
        assert!(q.pop_expired(now).is_none());
        assert_eq!(q.len(), 1);
    }

    #[test]
    fn due_exactly_at_its_deadline() {
        let now = Instant::now();
        let mut q = TimerQueue::new();
        let id = q.insert(now, "now");
        assert_eq!(id.deadline(), now);
        assert_eq!(q.pop_expired(now), Some((id, "now")));
        assert!(q.pop_expired(now).is_none(), "an empty queue pops nothing");
    }

    #[test]
    fn cancelling_the_earliest_moves_the_next_deadline() {
        // The reactor re-arms its timerfd from `next_deadline`; a cancelled
        // timer must not keep its place there.
        let now = Instant::now();
        let mut q = TimerQueue::new();
        let early = q.insert(now + Duration::from_millis(5), 'e');
        q.insert(now + Duration::from_millis(9), 'l');
        q.cancel(early);
        assert_eq!(q.next_deadline(), Some(now + Duration::from_millis(9)));
        assert!(q.pop_expired(now + Duration::from_millis(5)).is_none());
    }

    #[test]
    fn cancel_removes_exactly_one() {
        let now = Instant::now();
        let mut q = TimerQueue::new();
        let a = q.insert(now, 1);
        let b = q.insert(now, 2);
        assert_eq!(q.cancel(a), Some(1));
        assert_eq!(q.cancel(a), None);
        assert_eq!(q.pop_expired(now), Some((b, 2)));
        assert_eq!(q.next_deadline(), None);
    }
}
