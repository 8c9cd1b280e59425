//! `--proxy-protocol` of `tenk serve`: every connection starts with a
//! PROXY protocol header from a balancer in front, which names the client
//! (docs/proxy-protocol.md).

use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use server::proxy_protocol::ProxyProtocolFactory;
use server::ServeOptions;

/// PROXY protocol options every server takes.
#[derive(Args, Debug, Clone)]
pub struct ProxyProtocolArgs {
    /// Require a PROXY protocol header (v1 or v2, as HAProxy's send-proxy
    /// and send-proxy-v2 send it) at the start of every connection, and
    /// take the client's address from it (access log, X-Forwarded-For);
    /// before TLS when both are on. A connection without a valid header is
    /// closed without a byte sent, and counted. v2 LOCAL (health checks)
    /// and v1 UNKNOWN keep the socket's address.
    #[arg(long)]
    pub proxy_protocol: bool,
    /// Close a connection whose PROXY header has not arrived this long
    /// after it was accepted. Without TLS only: with --tls-cert, one
    /// deadline, --tls-handshake-timeout, covers the header and the
    /// handshake.
    #[arg(
        long,
        value_name = "D",
        default_value = "5s",
        value_parser = crate::tls_cli::parse_handshake_timeout,
        requires = "proxy_protocol",
        conflicts_with = "tls_cert"
    )]
    pub proxy_protocol_timeout: Duration,
}

impl ProxyProtocolArgs {
    /// With `--proxy-protocol`, puts the header's layer in front of the
    /// transport `options` has (TLS) or of the plain connection. Call it
    /// after TLS is set up.
    pub fn apply(&self, options: &mut ServeOptions) {
        if !self.proxy_protocol {
            return;
        }
        let inner = options.config.transport.take();
        // The reactor has one handshake deadline per connection: without
        // TLS it is the header's; with TLS, the TLS handshake timeout,
        // counted from accept, covers the header too.
        if inner.is_none() {
            options.config.handshake_timeout = self.proxy_protocol_timeout;
        }
        options.config.transport = Some(Arc::new(ProxyProtocolFactory::new(inner)));
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use crate::cli::{Cli, Command, Serve};

    fn error(argv: &[&str]) -> String {
        Cli::try_parse_from(argv)
            .expect_err(&format!("{argv:?} parsed"))
            .to_string()
    }

    #[test]
    fn every_server_takes_it_and_the_timeout_defaults_to_5s() {
        for server in ["echo", "chat", "http", "proxy"] {
            let mut argv = vec!["tenk", "serve", server, "--proxy-protocol"];
            if server == "proxy" {
                argv.extend(["--upstream", "127.0.0.1:1"]);
            }
            let cli = Cli::try_parse_from(argv);
            let args = match cli.unwrap().command {
                Command::Serve(Serve::Echo(args)) => args,
                Command::Serve(Serve::Chat(args)) => args.serve,
                Command::Serve(Serve::Http(args)) => args.serve,
                Command::Serve(Serve::Proxy(args)) => args.serve,
                other => panic!("parsed as {other:?}"),
            };
            assert!(args.proxy.proxy_protocol, "{server}");
            assert_eq!(args.proxy.proxy_protocol_timeout.as_secs(), 5, "{server}");
        }
    }

    #[test]
    fn the_timeout_needs_the_flag_is_never_0_and_not_with_tls() {
        let e = error(&["tenk", "serve", "echo", "--proxy-protocol-timeout", "1s"]);
        assert!(e.contains("--proxy-protocol"), "{e}");
        let e = error(&[
            "tenk",
            "serve",
            "echo",
            "--proxy-protocol",
            "--proxy-protocol-timeout",
            "0",
        ]);
        assert!(e.contains("more than 0"), "{e}");
        let e = error(&[
            "tenk",
            "serve",
            "echo",
            "--proxy-protocol",
            "--proxy-protocol-timeout",
            "1s",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ]);
        assert!(e.contains("--tls-cert"), "{e}");
        // The default alone does not conflict with TLS.
        Cli::try_parse_from([
            "tenk",
            "serve",
            "echo",
            "--proxy-protocol",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ])
        .unwrap();
    }
}
