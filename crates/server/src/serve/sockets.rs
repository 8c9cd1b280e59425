//! The listening sockets of a run, bound here or inherited (a graceful
//! restart's hand-over, systemd socket activation), and the metrics
//! listener taken out of the options.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::sync::Arc;

use reactor::Io;

use crate::metrics::MetricsListener;
use crate::threads::AcceptStrategy;

/// The listening sockets of a run: each part's (a worker's, or the
/// acceptor thread's under `dispatch`), and a duplicate of every distinct
/// socket for a restart to hand over.
pub(super) struct Sockets {
    pub(super) bound: SocketAddr,
    pub(super) parts: Vec<Vec<OwnedFd>>,
    pub(super) handover: Vec<OwnedFd>,
    /// The strategy that applies (an inherited socket may rule one out).
    pub(super) accept: AcceptStrategy,
    pub(super) origin: Option<String>,
}

/// Shares inherited sockets between the parts. `reuseport` needs a socket
/// per worker bound with `SO_REUSEPORT`: sockets from a restart are (one
/// per worker, in order); a socket systemd passes is only with
/// `ReusePort=yes`, and then each worker beyond the sockets passed binds
/// one more on the same address (handed over too at the next restart).
/// Otherwise the workers share the sockets with `EPOLLEXCLUSIVE`, as
/// `--accept exclusive` (said in the banner); `exclusive` and `dispatch`
/// apply to any socket.
pub(super) fn arrange_inherited(
    fds: Vec<OwnedFd>,
    workers: usize,
    accept: AcceptStrategy,
    backlog: i32,
    origin: String,
) -> io::Result<Sockets> {
    let first = fds
        .first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no inherited socket"))?;
    let bound = TcpListener::from(first.try_clone()?).local_addr()?;
    let mut origin = origin;
    let mut accept = accept;
    let mut handover: Vec<OwnedFd> = fds
        .iter()
        .map(OwnedFd::try_clone)
        .collect::<io::Result<_>>()?;
    let mut parts: Vec<Vec<OwnedFd>> = (0..workers).map(|_| Vec::new()).collect();
    match accept {
        AcceptStrategy::Dispatch(_) => parts = vec![fds],
        AcceptStrategy::ReusePort if workers > 1 && fds.iter().all(Io::is_reuseport) => {
            let count = fds.len();
            for (i, fd) in fds.into_iter().enumerate() {
                parts[i % workers].push(fd);
            }
            for part in parts.iter_mut().skip(count) {
                let fd = Io::bind_reuseport(bound, backlog)?;
                handover.push(fd.try_clone()?);
                part.push(fd);
            }
        }
        _ => {
            if workers > 1 && accept == AcceptStrategy::ReusePort {
                origin.push_str(
                    ", accept exclusive instead of reuseport: the sockets were not bound with SO_REUSEPORT",
                );
                accept = AcceptStrategy::Exclusive;
            }
            for part in &mut parts {
                for fd in &fds {
                    part.push(fd.try_clone()?);
                }
            }
        }
    }
    Ok(Sockets {
        bound,
        parts,
        handover,
        accept,
        origin: Some(origin),
    })
}

/// The metrics listener out of its `Arc`: the one descriptor, or a
/// duplicate while a clone of the options still holds it.
pub(super) fn take_metrics(shared: Arc<MetricsListener>) -> io::Result<MetricsListener> {
    Arc::try_unwrap(shared).or_else(|shared| {
        Ok(MetricsListener {
            fd: shared.fd.try_clone()?,
            addr: shared.addr,
            render: shared.render.clone(),
        })
    })
}
