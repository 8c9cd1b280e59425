//! A real `redis-server` for the chat cluster suite: on a port free when
//! it starts, persistence off, killed on drop; stopped and started again
//! on the same port to play an outage. `.ci/run` installs `redis-server`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::haproxy::free_port;
use super::PROMPTLY;

/// A running `redis-server`, killed on drop.
pub struct Redis {
    pub port: u16,
    /// Extra `redis-server` arguments (e.g. `--requirepass`).
    extra: Vec<String>,
    child: Option<Child>,
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Redis {
    /// Starts one on a free port and waits until it answers PING.
    pub fn start() -> Redis {
        Redis::start_with(&[])
    }

    /// [`Redis::start`] with extra `redis-server` arguments.
    pub fn start_with(extra: &[&str]) -> Redis {
        let mut redis = Redis::stopped();
        redis.extra = extra.iter().map(|a| a.to_string()).collect();
        redis.restart();
        redis
    }

    /// One not started yet, on a port free now ([`Redis::restart`] starts it).
    pub fn stopped() -> Redis {
        Redis {
            port: free_port(),
            extra: Vec::new(),
            child: None,
        }
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Sends it `signal` (SIGSTOP: a Redis that answers nothing while its
    /// kernel still accepts and acknowledges; SIGCONT: back).
    pub fn signal(&self, signal: i32) {
        let child = self.child.as_ref().expect("redis-server running");
        super::send_signal(child.id(), signal);
    }

    /// Kills it (SIGKILL: an outage, not a clean shutdown).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it (again) on the same port, empty, and waits for PONG.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(&self.extra)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is not installed: `apt-get install -y redis-server` (.ci/run installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + PROMPTLY;
        // With a password, NOAUTH is its answer: up all the same.
        let up =
            |reply: Option<String>| reply.is_some_and(|r| r == "+PONG" || r.starts_with("-NOAUTH"));
        while !up(self.command(&["PING"])) {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING"
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// Runs one command; its reply's first line (`+PONG`, `:1`, `*2`…),
    /// `None` if Redis cannot be reached.
    pub fn command(&self, args: &[&str]) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(PROMPTLY)).ok()?;
        let mut out = format!("*{}\r\n", args.len());
        for a in args {
            out.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        stream.write_all(out.as_bytes()).ok()?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).ok()?;
        Some(line.trim_end().to_string())
    }

    /// How many subscribers `channel` has (`PUBSUB NUMSUB`).
    pub fn subscribers(&self, channel: &str) -> u64 {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to redis");
        stream.set_read_timeout(Some(PROMPTLY)).unwrap();
        let cmd = format!(
            "*3\r\n$6\r\nPUBSUB\r\n$6\r\nNUMSUB\r\n${}\r\n{channel}\r\n",
            channel.len()
        );
        stream.write_all(cmd.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        // *2, $len, channel, :count
        let mut line = String::new();
        for _ in 0..4 {
            line.clear();
            reader.read_line(&mut line).unwrap();
        }
        line.trim_end()
            .strip_prefix(':')
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("PUBSUB NUMSUB reply {line:?}"))
    }
}
