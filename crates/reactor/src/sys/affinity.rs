//! Pinning a thread to a core (`sched_setaffinity`), for one reactor per
//! core with no migration between them.

use std::io;

/// Pins the calling thread to CPU `cpu` (taken modulo the CPUs this
/// process may run on).
///
/// # Errors
/// Those of `sched_getaffinity`/`sched_setaffinity`.
pub fn pin_current_thread(cpu: usize) -> io::Result<usize> {
    use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet};
    let allowed = sched_getaffinity(None)?;
    let cpus: Vec<usize> = (0..CpuSet::MAX_CPU)
        .filter(|&c| allowed.is_set(c))
        .collect();
    if cpus.is_empty() {
        return Err(io::Error::other("no CPU allowed"));
    }
    let chosen = cpus[cpu % cpus.len()];
    let mut set = CpuSet::new();
    set.set(chosen);
    sched_setaffinity(None, &set)?;
    Ok(chosen)
}
