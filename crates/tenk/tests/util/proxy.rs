//! Starting `tenk serve proxy` and reading its summary, shared by the
//! proxy test files.

use super::{Server, PROMPTLY};

/// `tenk serve proxy --port 0 --trigger T --upstream U...` plus `extra`.
pub fn proxy(trigger: &str, upstreams: &[String], extra: &[&str]) -> Server {
    let mut args = vec!["serve", "proxy", "--port", "0", "--trigger", trigger];
    for u in upstreams {
        args.push("--upstream");
        args.push(u);
    }
    args.extend_from_slice(extra);
    let server = Server::start(&args, |_| {});
    assert!(
        server.banner.starts_with("tenk proxy listening on "),
        "{}",
        server.banner
    );
    server
}

/// Shuts the proxy down (SIGINT) and returns its last line, the proxy
/// figures summed over workers (`tenk proxy: …`).
pub fn proxy_summary(mut p: Server) -> String {
    p.signal(libc::SIGINT);
    let status = p.wait_exit(PROMPTLY);
    assert_eq!(status.code(), Some(0), "proxy exit");
    loop {
        match p.next_line(PROMPTLY) {
            Some(line) if line.starts_with("tenk proxy: ") => return line,
            Some(_) => continue,
            None => panic!("no proxy summary line"),
        }
    }
}
