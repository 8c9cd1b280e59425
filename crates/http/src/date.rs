//! The `Date` header, formatted at most once a second.
//!
//! Formatting an HTTP date per response would cost more than parsing the
//! request. The cache is refreshed by the server when requests arrive, so
//! an idle server runs no timer for it (nginx updates its cached time on
//! each wake-up for the same reason). Nor does it read the wall clock on
//! every wake-up: the monotonic clock the loop reads anyway tells when
//! the second last read has ended ([`DateCache::refresh_for`]).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// `Sun, 06 Nov 1994 08:49:37 GMT`: always 29 bytes.
pub const DATE_LEN: usize = 29;

/// The formatted date of the current second.
#[derive(Debug)]
pub struct DateCache {
    second: u64,
    value: [u8; DATE_LEN],
    /// The pass [`DateCache::refresh_for`] last saw: checked once a pass.
    checked: Option<Instant>,
    /// A monotonic time before which the wall clock is still in the
    /// second last read by [`DateCache::refresh_for`] (none read yet).
    until: Option<Instant>,
}

impl Default for DateCache {
    fn default() -> DateCache {
        let mut cache = DateCache {
            second: u64::MAX,
            value: [b' '; DATE_LEN],
            checked: None,
            until: None,
        };
        cache.refresh(SystemTime::now());
        cache
    }
}

impl DateCache {
    /// Re-formats the date if `now` is in a later second; returns whether
    /// it changed.
    pub fn refresh(&mut self, now: SystemTime) -> bool {
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if second == self.second {
            return false;
        }
        self.second = second;
        let text = httpdate::fmt_http_date(now);
        let bytes = text.as_bytes();
        let n = bytes.len().min(DATE_LEN);
        self.value[..n].copy_from_slice(&bytes[..n]);
        true
    }

    /// Brings the date up to a loop pass that began at `pass` (the loop's
    /// monotonic clock): the wall clock is read only once `pass` reaches
    /// the end of the second it showed last time, so a busy server reads
    /// it about once a second, not on every wake-up. A step of the wall
    /// clock shows within that second. Returns whether the date changed.
    ///
    /// Inline, the check for a pass already seen alone: it runs for every
    /// request, most of which share a pass with others.
    #[inline]
    pub fn refresh_for(&mut self, pass: Instant) -> bool {
        if self.checked == Some(pass) {
            return false;
        }
        self.checked = Some(pass);
        self.refresh_by(pass, SystemTime::now)
    }

    /// [`DateCache::refresh_for`] in a new pass, with the wall clock `wall`.
    #[inline]
    fn refresh_by(&mut self, pass: Instant, wall: impl FnOnce() -> SystemTime) -> bool {
        if self.until.is_some_and(|until| pass < until) {
            return false;
        }
        self.refresh_at(pass, wall())
    }

    /// Reads the date at `now`, the wall clock read in the pass of `pass`.
    #[inline(never)]
    fn refresh_at(&mut self, pass: Instant, now: SystemTime) -> bool {
        let into = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        // `pass` was read before `now`: the second ends no earlier than
        // this, so the date is never kept past it.
        self.until = Some(pass + Duration::from_nanos(u64::from(1_000_000_000 - into)));
        self.refresh(now)
    }

    /// The formatted date.
    pub fn as_bytes(&self) -> &[u8] {
        &self.value
    }

    /// The second it shows (since the epoch), to tell when cached
    /// responses embedding it went stale.
    pub fn second(&self) -> u64 {
        self.second
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn formats_rfc_9110_dates_once_per_second() {
        let mut cache = DateCache::default();
        let t = UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert!(cache.refresh(t));
        assert_eq!(cache.as_bytes(), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert!(!cache.refresh(t + Duration::from_millis(999)));
        assert!(cache.refresh(t + Duration::from_secs(1)));
        assert_eq!(cache.as_bytes(), b"Sun, 06 Nov 1994 08:49:38 GMT");
    }

    #[test]
    fn reads_the_wall_clock_once_its_second_has_ended() {
        let mut cache = DateCache::default();
        let pass = Instant::now();
        // 250 ms into a second: it ends 750 ms after `pass`.
        let t = UNIX_EPOCH + Duration::from_millis(784_111_777_250);
        assert!(cache.refresh_by(pass, || t));
        assert_eq!(cache.as_bytes(), b"Sun, 06 Nov 1994 08:49:37 GMT");
        let unread = || panic!("the wall clock was read within its second");
        assert!(!cache.refresh_by(pass, unread));
        assert!(!cache.refresh_by(pass + Duration::from_millis(749), unread));
        let later = t + Duration::from_millis(750);
        assert!(cache.refresh_by(pass + Duration::from_millis(750), || later));
        assert_eq!(cache.as_bytes(), b"Sun, 06 Nov 1994 08:49:38 GMT");
        // A wall clock stepped back shows at the end of the second.
        let stepped = t - Duration::from_secs(3600);
        assert!(!cache.refresh_by(pass + Duration::from_millis(1_000), unread));
        assert!(cache.refresh_by(pass + Duration::from_millis(1_750), || stepped));
        assert_eq!(cache.as_bytes(), b"Sun, 06 Nov 1994 07:49:37 GMT");
    }
}
