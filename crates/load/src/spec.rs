//! What a load run is asked to do.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection};

/// The protocol spoken on every connection.
#[derive(Clone, Debug)]
pub enum Workload {
    /// Messages of `size` bytes, each echoed back and checked byte for byte.
    Echo { size: usize },
    /// The same HTTP request, again and again; responses checked for their
    /// status line and framing.
    Http {
        /// The request bytes, built once.
        request: Vec<u8>,
        /// Its method (a HEAD response has no body).
        method: String,
    },
    /// Chat clients in `rooms` rooms, `senders` of them sending numbered,
    /// time-stamped messages at `rate` (total); every member of a room
    /// checks it gets every other member's messages, in order, and
    /// measures their delivery latency (see [`crate::chat`]).
    Chat { rooms: usize, senders: usize },
}

/// TLS on every connection of a run.
#[derive(Clone, Debug)]
pub struct TlsClient {
    /// One config for the whole run, shared by every thread: its session
    /// cache is what lets a reconnect resume.
    pub config: Arc<ClientConfig>,
    /// The name the server's certificate must carry (SNI too, for a DNS
    /// name; an IP address is checked against the IP SANs).
    pub server_name: ServerName<'static>,
}

impl TlsClient {
    /// TLS with `config` to `host`, a DNS name or an IP address (as in a
    /// URL or `HOST:PORT`, IPv6 with or without brackets).
    ///
    /// # Errors
    /// `host` is neither a valid DNS name nor an IP address.
    pub fn new(config: Arc<ClientConfig>, host: &str) -> Result<TlsClient, String> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = ServerName::try_from(bare.to_string())
            .map_err(|e| format!("{host:?} is not a name a TLS certificate can carry: {e}"))?;
        Ok(TlsClient {
            config,
            server_name,
        })
    }

    /// A client session for one connection.
    ///
    /// # Errors
    /// A config rustls refuses to start a session with.
    pub(crate) fn session(&self) -> Result<ClientConnection, rustls::Error> {
        ClientConnection::new(self.config.clone(), self.server_name.clone())
    }
}

/// When a run ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// After this long of measurement (after connecting and warm-up).
    Duration(Duration),
    /// After exactly this many requests have been answered or failed.
    Requests(u64),
}

/// A load run.
#[derive(Clone, Debug)]
pub struct LoadSpec {
    /// Where to connect.
    pub target: SocketAddr,
    /// Further servers (a chat cluster's other nodes): connection `i`
    /// (numbered over all threads) goes to `i % (1 + len)`, the first
    /// being `target`.
    pub spread: Vec<SocketAddr>,
    /// How the target is named in the report (`echo 127.0.0.1:8080`).
    pub label: String,
    pub workload: Workload,
    /// Connections to hold open, over all threads.
    pub connections: usize,
    pub stop: Stop,
    /// Reactor threads; connections are split evenly between them.
    pub threads: usize,
    /// Requests in flight per connection (closed loop).
    pub pipeline: usize,
    /// Run this long after connecting before measuring.
    pub warmup: Duration,
    /// New connections per second while connecting; `None` for as fast as
    /// the reactor can (a bounded number of connects in progress).
    pub connect_rate: Option<f64>,
    /// A connection whose requests make no progress (no reply byte, counted
    /// from the later of the oldest request's send and the last byte) for
    /// this long has timed out: it is closed and replaced, its requests
    /// lost; one still waiting so when the run ends counts too. Also
    /// bounds a chat client's join and the chat drain.
    pub timeout: Duration,
    /// A connect not complete this long is a timeout (and not retried).
    pub connect_timeout: Duration,
    /// Open loop: total requests per second on a fixed schedule.
    pub rate: Option<f64>,
    /// Source addresses to spread connections over (empty: the kernel
    /// chooses).
    pub sources: Vec<IpAddr>,
    /// Print a progress line each second on stderr.
    pub progress: bool,
    /// TLS on every connection (`None`: plain TCP). Requests start once
    /// the handshake is done, so their latency never includes it; the
    /// handshakes are timed apart, and `connect_timeout` covers the TCP
    /// connect and the handshake together.
    pub tls: Option<TlsClient>,
    /// Each connection carries one request: once it is answered the
    /// client closes the connection and opens another, so a run measures
    /// connections (and TLS handshakes, full or resumed) per second.
    /// `connections` is then how many are open at once. Echo and HTTP,
    /// closed loop, pipeline 1.
    pub new_conn_per_request: bool,
}

impl LoadSpec {
    /// Where connection `n` (numbered over all threads) goes.
    pub fn target_of(&self, n: u64) -> SocketAddr {
        match n % (1 + self.spread.len() as u64) {
            0 => self.target,
            i => self.spread[i as usize - 1],
        }
    }

    /// Every server of the run listens on this host's loopback: the
    /// kernel's listen counters are then about them (see `netstat`).
    pub fn targets_loopback(&self) -> bool {
        std::iter::once(&self.target)
            .chain(&self.spread)
            .all(|a| a.ip().is_loopback())
    }

    /// How long the connect phase may last: `connect_timeout`, after the
    /// `connect_rate` ramp if there is one. Then the run starts with the
    /// connections that are open; the others never connected.
    /// At most a year, so that it always makes a timer.
    pub fn connect_deadline(&self) -> Duration {
        const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);
        let ramp = match self.connect_rate {
            Some(rate) => {
                Duration::try_from_secs_f64(self.connections as f64 / rate).unwrap_or(YEAR)
            }
            None => Duration::ZERO,
        };
        ramp.saturating_add(self.connect_timeout).min(YEAR)
    }

    /// Checks the combination of settings.
    ///
    /// # Errors
    /// A message naming the setting at fault.
    pub fn validate(&self) -> Result<(), String> {
        if self.connections == 0 {
            return Err("--connections must be at least 1".into());
        }
        if self.threads == 0 {
            return Err("--threads must be at least 1".into());
        }
        if self.threads > self.connections {
            return Err(format!(
                "--threads {} exceeds --connections {}: each thread needs a connection",
                self.threads, self.connections
            ));
        }
        if self.pipeline == 0 {
            return Err("--pipeline must be at least 1".into());
        }
        if let Workload::Echo { size: 0 } = self.workload {
            return Err("--size must be at least 1".into());
        }
        if let Workload::Chat { rooms, senders } = self.workload {
            if rooms == 0 {
                return Err("--rooms must be at least 1".into());
            }
            if senders == 0 || senders > self.connections {
                return Err(format!(
                    "--senders must be between 1 and --connections ({}), got {senders}",
                    self.connections
                ));
            }
            if self.rate.is_none() {
                return Err("--rate is needed: chat senders send on a schedule".into());
            }
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err("--rate must be a positive number of requests per second".into());
            }
        }
        if let Some(rate) = self.connect_rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err("--connect-rate must be a positive number per second".into());
            }
        }
        match self.stop {
            Stop::Requests(0) => return Err("--requests must be at least 1".into()),
            Stop::Requests(_) if !self.warmup.is_zero() => {
                return Err("--warmup applies to --duration runs, not --requests".into())
            }
            Stop::Duration(d) if d.is_zero() => {
                return Err("--duration must be longer than 0".into())
            }
            _ => {}
        }
        if self.timeout.is_zero() {
            return Err("--timeout must be longer than 0".into());
        }
        if self.connect_timeout.is_zero() {
            return Err("--connect-timeout must be longer than 0".into());
        }
        if self.new_conn_per_request {
            if let Workload::Chat { .. } = self.workload {
                return Err(
                    "--new-conn-per-request applies to echo and http: a chat client \
                            stays in its room to receive"
                        .into(),
                );
            }
            if self.pipeline > 1 {
                return Err("--new-conn-per-request sends one request per connection: \
                            --pipeline must be 1"
                    .into());
            }
            if self.rate.is_some() {
                return Err("--new-conn-per-request runs a closed loop: not with --rate".into());
            }
        }
        if let Some(tls) = &self.tls {
            // Checked once here, so that no connect meets it later.
            if let Err(e) = tls.session() {
                return Err(format!("TLS client configuration refused: {e}"));
            }
        }
        if let Some(bad) = self.sources.iter().find(|s| {
            std::iter::once(&self.target)
                .chain(&self.spread)
                .any(|t| s.is_ipv4() != t.is_ipv4())
        }) {
            return Err(format!(
                "--source {bad} is not of the target's address family ({})",
                self.target
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
impl LoadSpec {
    /// A valid echo run, for tests to vary.
    pub(crate) fn example() -> LoadSpec {
        LoadSpec {
            target: "127.0.0.1:1".parse().unwrap(),
            spread: Vec::new(),
            label: "echo".into(),
            workload: Workload::Echo { size: 64 },
            connections: 10,
            stop: Stop::Duration(Duration::from_secs(1)),
            threads: 1,
            pipeline: 1,
            warmup: Duration::ZERO,
            connect_rate: None,
            timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(10),
            rate: None,
            sources: Vec::new(),
            progress: false,
            tls: None,
            new_conn_per_request: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 20: the connect phase is bounded by `--connect-timeout`,
    /// after the `--connect-rate` ramp; an absurd rate still makes a timer.
    #[test]
    fn connect_deadline_is_the_ramp_and_the_connect_timeout() {
        let spec = LoadSpec {
            connections: 1000,
            connect_timeout: Duration::from_secs(2),
            ..LoadSpec::example()
        };
        assert_eq!(spec.connect_deadline(), Duration::from_secs(2));
        let ramp = LoadSpec {
            connect_rate: Some(500.0),
            ..spec.clone()
        };
        assert_eq!(ramp.connect_deadline(), Duration::from_secs(4));
        let crawl = LoadSpec {
            connect_rate: Some(1e-300),
            ..spec
        };
        assert_eq!(
            crawl.connect_deadline(),
            Duration::from_secs(365 * 24 * 3600)
        );
    }

    #[test]
    fn loopback_targets_only_when_every_server_is() {
        let local = LoadSpec::example();
        assert!(local.targets_loopback());
        let spread = LoadSpec {
            spread: vec!["10.0.0.1:7000".parse().unwrap()],
            ..LoadSpec::example()
        };
        assert!(!spread.targets_loopback());
    }

    #[test]
    fn tls_names_an_ip_address_or_a_dns_name() {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth();
        let config = Arc::new(config);
        for (host, ip) in [
            ("127.0.0.1", true),
            ("[::1]", true),
            ("::1", true),
            ("localhost", false),
            ("example.com", false),
        ] {
            let tls = TlsClient::new(config.clone(), host).unwrap();
            let is_ip = matches!(tls.server_name, ServerName::IpAddress(_));
            assert_eq!(is_ip, ip, "{host}");
        }
        let err = TlsClient::new(config.clone(), "bad name!").unwrap_err();
        assert!(err.contains("\"bad name!\""), "{err}");
        let spec = LoadSpec {
            tls: Some(TlsClient::new(config, "localhost").unwrap()),
            ..LoadSpec::example()
        };
        assert_eq!(spec.validate(), Ok(()));
    }

    #[test]
    fn defaults_are_valid() {
        assert_eq!(LoadSpec::example().validate(), Ok(()));
    }

    #[test]
    fn bad_combinations_name_the_flag() {
        let cases: Vec<(LoadSpec, &str)> = vec![
            (
                LoadSpec {
                    connections: 0,
                    ..LoadSpec::example()
                },
                "--connections",
            ),
            (
                LoadSpec {
                    threads: 11,
                    ..LoadSpec::example()
                },
                "--threads",
            ),
            (
                LoadSpec {
                    pipeline: 0,
                    ..LoadSpec::example()
                },
                "--pipeline",
            ),
            (
                LoadSpec {
                    workload: Workload::Echo { size: 0 },
                    ..LoadSpec::example()
                },
                "--size",
            ),
            (
                LoadSpec {
                    rate: Some(0.0),
                    ..LoadSpec::example()
                },
                "--rate",
            ),
            (
                LoadSpec {
                    stop: Stop::Requests(0),
                    ..LoadSpec::example()
                },
                "--requests",
            ),
            (
                LoadSpec {
                    stop: Stop::Requests(5),
                    warmup: Duration::from_secs(1),
                    ..LoadSpec::example()
                },
                "--warmup",
            ),
            (
                LoadSpec {
                    connect_timeout: Duration::ZERO,
                    ..LoadSpec::example()
                },
                "--connect-timeout",
            ),
            (
                LoadSpec {
                    sources: vec!["::1".parse().unwrap()],
                    ..LoadSpec::example()
                },
                "--source",
            ),
            (
                LoadSpec {
                    workload: Workload::Chat {
                        rooms: 0,
                        senders: 1,
                    },
                    rate: Some(10.0),
                    ..LoadSpec::example()
                },
                "--rooms",
            ),
            (
                LoadSpec {
                    workload: Workload::Chat {
                        rooms: 1,
                        senders: 11,
                    },
                    rate: Some(10.0),
                    ..LoadSpec::example()
                },
                "--senders",
            ),
            (
                LoadSpec {
                    workload: Workload::Chat {
                        rooms: 1,
                        senders: 1,
                    },
                    ..LoadSpec::example()
                },
                "--rate",
            ),
            (
                LoadSpec {
                    workload: Workload::Chat {
                        rooms: 1,
                        senders: 1,
                    },
                    rate: Some(10.0),
                    new_conn_per_request: true,
                    ..LoadSpec::example()
                },
                "--new-conn-per-request applies to echo and http",
            ),
            (
                LoadSpec {
                    pipeline: 2,
                    new_conn_per_request: true,
                    ..LoadSpec::example()
                },
                "--pipeline",
            ),
            (
                LoadSpec {
                    rate: Some(10.0),
                    new_conn_per_request: true,
                    ..LoadSpec::example()
                },
                "--rate",
            ),
        ];
        for (spec, flag) in cases {
            let err = spec.validate().unwrap_err();
            assert!(err.contains(flag), "{err:?} should name {flag}");
        }
    }
}
