//! TLS flags: `--tls-cert`/`--tls-key` of `tenk serve`, `--ca`/`--insecure`
//! of `tenk load`, and their loading into rustls configurations.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ServerConfig};

/// TLS options every server takes.
#[derive(Args, Debug, Clone)]
pub struct TlsArgs {
    /// Speak TLS (1.3 and 1.2), with this certificate chain: PEM, the
    /// server's own certificate first, then its intermediates. Needs
    /// --tls-key.
    #[arg(long, value_name = "CHAIN.pem", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert: PEM, in PKCS#8, PKCS#1 or SEC1 (as
    /// `openssl ecparam -genkey` writes), not encrypted. Needs --tls-cert.
    #[arg(long, value_name = "KEY.pem", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Close a connection whose TLS handshake has not finished this long
    /// after it was accepted.
    #[arg(long, value_name = "D", default_value = "10s", value_parser = parse_handshake_timeout)]
    pub tls_handshake_timeout: Duration,
}

pub(crate) fn parse_handshake_timeout(text: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if d.is_zero() {
        // Unlike the idle timeout, 0 cannot mean "never": a client that
        // stalls mid-handshake would hold its connection for good.
        return Err("must be more than 0".into());
    }
    Ok(d)
}

impl TlsArgs {
    /// The server's TLS configuration, offering `alpn`, or `None` without
    /// --tls-cert. Loaded before anything listens, so a bad file stops the
    /// start.
    ///
    /// # Errors
    /// A message naming the flag and the file, and what is wrong.
    pub fn server_config(&self, alpn: &[&[u8]]) -> Result<Option<Arc<ServerConfig>>, String> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            // clap's `requires` makes the two come together.
            return Ok(None);
        };
        tls::server_config(cert, key, alpn).map(Some).map_err(|e| {
            let flag = if e.path() == Some(key.as_path()) {
                "--tls-key "
            } else if e.path() == Some(cert.as_path()) {
                "--tls-cert "
            } else {
                ""
            };
            format!("{flag}{e}")
        })
    }
}

/// TLS options of `tenk load` (TLS itself is on with `--tls`, or an
/// `https://` URL).
#[derive(Args, Debug)]
pub struct TlsLoadArgs {
    /// Trust the CA certificates in this PEM file, and only them, instead
    /// of the system's.
    #[arg(long, value_name = "CA.pem", conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,
    /// Accept any server certificate, e.g. a self-signed one (the
    /// handshake's signatures are still checked against it).
    #[arg(long)]
    pub insecure: bool,
    /// Open a new connection for every request, to measure connection
    /// setup: with TLS, full or resumed handshakes per second.
    #[arg(long)]
    pub new_conn_per_request: bool,
}

/// A load run's TLS client: configuration, and the name the server's
/// certificate must hold.
pub type TlsClient = (Arc<ClientConfig>, ServerName<'static>);

impl TlsLoadArgs {
    /// The client configuration and server name to reach `host` over TLS
    /// when `on`, offering `alpn`; `None` when off.
    ///
    /// # Errors
    /// A message naming the flag at fault: `--ca` or `--insecure` without
    /// TLS, a CA file that cannot be used, a host that is no valid name.
    pub fn client_config(
        &self,
        on: bool,
        host: &str,
        alpn: &[&[u8]],
    ) -> Result<Option<TlsClient>, String> {
        if !on {
            let flag = match (&self.ca, self.insecure) {
                (Some(_), _) => "--ca",
                (None, true) => "--insecure",
                (None, false) => return Ok(None),
            };
            return Err(format!(
                "{flag} applies to TLS only: add --tls (echo, chat) or use an https:// URL"
            ));
        }
        let config = tls::client_config(self.ca.as_deref(), self.insecure, alpn).map_err(|e| {
            match e.path() {
                Some(_) => format!("--ca {e}"),
                None => e.to_string(),
            }
        })?;
        let name = tls::server_name(host)
            .map_err(|e| format!("{host:?} cannot be checked against a certificate: {e}"))?;
        Ok(Some((config, name)))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use crate::cli::{Cli, Command, Serve};
    use crate::load_cli::Load;

    fn error(argv: &[&str]) -> String {
        Cli::try_parse_from(argv)
            .expect_err(&format!("{argv:?} parsed"))
            .to_string()
    }

    #[test]
    fn cert_and_key_come_together() {
        for server in ["echo", "chat", "http"] {
            let e = error(&["tenk", "serve", server, "--tls-cert", "c.pem"]);
            assert!(e.contains("--tls-key"), "{server}: {e}");
            let e = error(&["tenk", "serve", server, "--tls-key", "k.pem"]);
            assert!(e.contains("--tls-cert"), "{server}: {e}");
        }
        let cli = Cli::try_parse_from([
            "tenk",
            "serve",
            "http",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ])
        .unwrap();
        let Command::Serve(Serve::Http(args)) = cli.command else {
            panic!("parsed as another command");
        };
        assert_eq!(args.serve.tls.tls_cert.unwrap().to_str(), Some("c.pem"));
        assert_eq!(args.serve.tls.tls_key.unwrap().to_str(), Some("k.pem"));
    }

    #[test]
    fn handshake_timeout_defaults_to_10s_and_is_never_0() {
        let cli = Cli::try_parse_from(["tenk", "serve", "echo"]).unwrap();
        let Command::Serve(Serve::Echo(args)) = cli.command else {
            panic!("parsed as another command");
        };
        assert_eq!(args.tls.tls_handshake_timeout.as_secs(), 10);
        assert!(args.tls.server_config(&[]).unwrap().is_none(), "TLS off");
        let e = error(&["tenk", "serve", "echo", "--tls-handshake-timeout", "0"]);
        assert!(e.contains("more than 0"), "{e}");
    }

    #[test]
    fn ca_and_insecure_conflict_and_need_tls() {
        let e = error(&[
            "tenk",
            "load",
            "echo",
            "127.0.0.1:1",
            "--tls",
            "--ca",
            "x",
            "--insecure",
        ]);
        assert!(e.contains("--insecure") && e.contains("--ca"), "{e}");
        let cli =
            Cli::try_parse_from(["tenk", "load", "chat", "127.0.0.1:1", "--insecure"]).unwrap();
        let Command::Load(Load::Chat(args)) = cli.command else {
            panic!("parsed as another command");
        };
        let e = args
            .tls
            .client_config(args.tls_on, "127.0.0.1", &[])
            .unwrap_err();
        assert!(e.contains("--insecure applies to TLS only"), "{e}");
        let tls = args
            .tls
            .client_config(true, "127.0.0.1", &[])
            .unwrap()
            .expect("on");
        assert!(matches!(tls.1, rustls::pki_types::ServerName::IpAddress(_)));
    }

    #[test]
    fn https_url_and_new_conn_per_request_parse() {
        let cli = Cli::try_parse_from([
            "tenk",
            "load",
            "http",
            "https://127.0.0.1:8443/",
            "--insecure",
            "--new-conn-per-request",
        ])
        .unwrap();
        let Command::Load(Load::Http(args)) = cli.command else {
            panic!("parsed as another command");
        };
        assert!(args.tls.insecure && args.tls.new_conn_per_request);
    }
}
