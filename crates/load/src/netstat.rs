//! The kernel's count of connections dropped at a full accept queue, read
//! before and after a run so the report can say that the server, not the
//! network or the load tool, left connections unanswered.
//!
//! When a listener's accept queue (its `listen(2)` backlog, capped by
//! `net.core.somaxconn`) is full, Linux drops the SYNs and final ACKs that
//! would add to it and counts `ListenOverflows` (and `ListenDrops`, which
//! also counts other drops) in `TcpExt` of `/proc/net/netstat`. A client
//! whose final ACK was dropped believes itself connected, sends its
//! request, and never hears back. The counts are the network namespace's,
//! not one listener's: they mean something only when the target listens
//! on this host (a loopback target), and other listeners' drops during the
//! run count too.

use std::fs;

const NETSTAT: &str = "/proc/net/netstat";

/// `TcpExt` listen counters at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ListenCounters {
    /// `ListenOverflows`: dropped because the accept queue was full.
    pub(crate) overflows: u64,
    /// `ListenDrops`: every drop at a listener, the overflows included.
    pub(crate) drops: u64,
}

impl ListenCounters {
    /// The counters now; `None` where `/proc/net/netstat` cannot be read
    /// or lacks them (not Linux, no procfs).
    pub(crate) fn read() -> Option<ListenCounters> {
        match fs::read_to_string(NETSTAT) {
            Ok(text) => parse(&text),
            Err(e) => {
                tracing::debug!("cannot read {NETSTAT}: {e}");
                None
            }
        }
    }

    /// What was counted since `earlier` (a counter that went backwards,
    /// e.g. in another namespace, counts as 0).
    pub(crate) fn since(self, earlier: ListenCounters) -> ListenCounters {
        ListenCounters {
            overflows: self.overflows.saturating_sub(earlier.overflows),
            drops: self.drops.saturating_sub(earlier.drops),
        }
    }
}

/// The listen counters of `/proc/net/netstat`'s text: a line of names
/// then a line of values, each starting `TcpExt:`.
fn parse(text: &str) -> Option<ListenCounters> {
    let mut tcp_ext = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let names = tcp_ext.next()?.split_whitespace().skip(1);
    let values = tcp_ext.next()?.split_whitespace().skip(1);
    let (mut overflows, mut drops) = (None, None);
    for (name, value) in names.zip(values) {
        match name {
            "ListenOverflows" => overflows = value.parse().ok(),
            "ListenDrops" => drops = value.parse().ok(),
            _ => {}
        }
    }
    Some(ListenCounters {
        overflows: overflows?,
        drops: drops?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_tcp_ext_listen_counters() {
        let text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPHPHits\n\
                    TcpExt: 0 361598 361600 12\n\
                    IpExt: InNoRoutes ListenOverflows\n\
                    IpExt: 0 99\n";
        let counters = parse(text).expect("counters");
        assert_eq!(
            counters,
            ListenCounters {
                overflows: 361_598,
                drops: 361_600
            }
        );
        let later = ListenCounters {
            overflows: 361_600,
            drops: 361_599,
        };
        assert_eq!(
            later.since(counters),
            ListenCounters {
                overflows: 2,
                drops: 0
            },
            "a counter that went backwards counts 0"
        );
    }

    #[test]
    fn missing_or_garbled_counters_are_none() {
        assert_eq!(parse(""), None);
        assert_eq!(parse("TcpExt: ListenOverflows ListenDrops\n"), None);
        assert_eq!(
            parse("TcpExt: ListenOverflows ListenDrops\nTcpExt: 1 x\n"),
            None
        );
        assert_eq!(parse("TcpExt: Other\nTcpExt: 1\n"), None);
    }

    #[test]
    fn this_host_has_them() {
        // Linux with procfs: where the tests run.
        assert!(ListenCounters::read().is_some());
    }
}
