//! The `Date` header, formatted at most once a second.
//!
//! Formatting an HTTP date per response would cost more than parsing the
//! request. The cache is refreshed by the server when requests arrive, so
//! an idle server runs no timer for it (nginx updates its cached time on
//! each wake-up for the same reason).

use std::time::{SystemTime, UNIX_EPOCH};

/// `Sun, 06 Nov 1994 08:49:37 GMT`: always 29 bytes.
pub const DATE_LEN: usize = 29;

/// The formatted date of the current second.
#[derive(Debug)]
pub struct DateCache {
    second: u64,
    value: [u8; DATE_LEN],
}

impl Default for DateCache {
    fn default() -> DateCache {
        let mut cache = DateCache {
            second: u64::MAX,
            value: [b' '; DATE_LEN],
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
}
