//! RLIMIT_NOFILE: how many descriptors this process may hold.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};

/// Raises the soft RLIMIT_NOFILE to the hard limit and returns the soft limit
/// now in force.
///
/// A server that holds 10,000 connections needs more than the usual soft
/// default of 1,024; the hard limit is what the administrator allows. If the
/// raise fails, the current soft limit is returned unchanged.
pub fn raise_nofile_limit() -> u64 {
    let limit = getrlimit(Resource::Nofile);
    if let (Some(current), maximum) = (limit.current, limit.maximum) {
        if maximum.is_none_or(|max| max > current) {
            let raised = Rlimit {
                current: maximum,
                maximum,
            };
            if setrlimit(Resource::Nofile, raised).is_ok() {
                return maximum.unwrap_or(u64::MAX);
            }
        }
        return current;
    }
    u64::MAX
}

/// The soft RLIMIT_NOFILE in force (`u64::MAX` when unlimited).
pub fn nofile_limit() -> u64 {
    getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX)
}
