//! A real HAProxy in front of a tenk server (`send-proxy-v2` to test the
//! PROXY protocol): its config written to a temporary file, the process
//! killed on drop. `.ci/run` installs the `haproxy` package.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// A running `haproxy -db`, killed on drop.
pub struct Haproxy {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free now on 127.0.0.1 (for HAProxy to bind: it takes no port 0
/// it would tell us).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn start_haproxy(config: &str) -> Haproxy {
    let found = Command::new("haproxy")
        .arg("-v")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        found,
        "haproxy is not installed: `apt-get install -y haproxy` (.ci/run installs it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("haproxy.cfg");
    std::fs::write(&path, config).unwrap();
    let child = Command::new("haproxy")
        .args(["-db", "-f"])
        .arg(Path::new(&path))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn haproxy");
    Haproxy { child, _dir: dir }
}
