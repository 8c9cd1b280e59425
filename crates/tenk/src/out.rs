//! Lines for the user on stdout and stderr that never panic.
//!
//! `println!` panics when the write fails: stdout piped into `head -1`
//! that has exited (EPIPE, as SIGPIPE is ignored), or a terminal that went
//! away (EIO). A server printing its summary on Ctrl-C would then die with
//! a panic message instead of exiting 0. Nothing useful can be done with a
//! line that cannot be shown, so these drop it.

use std::fmt;
use std::io::Write as _;

/// Writes `args` and a newline to stdout and flushes (scripts and tests
/// wait for each line); a failed write is ignored.
pub fn line(args: fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(args);
    let _ = out.write_all(b"\n");
    let _ = out.flush();
}

/// Writes `args` and a newline to stderr; a failed write is ignored.
pub fn err(args: fmt::Arguments<'_>) {
    let mut out = std::io::stderr().lock();
    let _ = out.write_fmt(args);
    let _ = out.write_all(b"\n");
}

/// [`line()`] with `format!` arguments.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::out::line(format_args!($($arg)*))
    };
}

/// [`err()`] with `format!` arguments.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::out::err(format_args!($($arg)*))
    };
}
