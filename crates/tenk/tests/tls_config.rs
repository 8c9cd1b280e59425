//! TLS configuration on the command line (issue 16): certificate and key
//! files are loaded before anything listens or connects, and every bad
//! file or flag combination is a usage error (exit 2) whose message names
//! the flag and the file. The certificates are made by the test
//! (`util::certs`), in every key format a server accepts.

mod util;

use std::path::Path;
use std::process::Output;

use util::certs::{KeyFormat, TestPki, Validity};
use util::{run_tenk, Server};

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `tenk <args>` exits 2, printing nothing on stdout (no banner: nothing
/// listened), with a message on stderr containing each of `mentions`.
fn assert_usage_error(args: &[&str], mentions: &[&str]) {
    let output = run_tenk(args);
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    for m in mentions {
        assert!(stderr.contains(m), "{args:?}: {m:?} not in {stderr:?}");
    }
    assert!(
        output.stdout.is_empty(),
        "{args:?} printed {:?}",
        String::from_utf8_lossy(&output.stdout)
    );
}

fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temporary path")
}

/// `serve <server> --port 0 --tls-cert <cert> --tls-key <key>`.
fn serve_args<'a>(server: &'a str, cert: &'a Path, key: &'a Path) -> Vec<&'a str> {
    vec![
        "serve",
        server,
        "--port",
        "0",
        "--tls-cert",
        s(cert),
        "--tls-key",
        s(key),
    ]
}

#[test]
fn good_files_in_every_key_format_start_the_server() {
    for format in KeyFormat::ALL {
        let pki = TestPki::new(format);
        let args = serve_args("echo", &pki.cert, &pki.key);
        let server = Server::start(&args, |_| {});
        assert!(server.addr.port() != 0, "{format:?}: {}", server.banner);
    }
    // A server does not check its own certificate's dates.
    let expired = TestPki::with(KeyFormat::Sec1Ec, Validity::Expired);
    Server::start(&serve_args("http", &expired.cert, &expired.key), |_| {});
}

#[test]
fn bad_files_exit_2_naming_flag_and_file() {
    let pki = TestPki::new(KeyFormat::Pkcs8);
    let other = TestPki::new(KeyFormat::Pkcs8);
    let missing = pki.path("missing.pem");
    let dir = pki.path("");
    let text = pki.write("text.pem", "not PEM at all\n");
    let encrypted = pki.encrypted_key();
    let cases: [(&Path, &Path, &str, &Path, &str); 7] = [
        (&missing, &pki.key, "--tls-cert", &missing, "No such file"),
        (&pki.cert, &missing, "--tls-key", &missing, "No such file"),
        // Tests run as root, whom chmod 000 does not stop: a directory
        // stands for the file that cannot be read.
        (&pki.cert, &dir, "--tls-key", &dir, "cannot read"),
        (&text, &pki.key, "--tls-cert", &text, "no certificate"),
        (&pki.cert, &text, "--tls-key", &text, "no private key"),
        (
            &pki.cert,
            &encrypted,
            "--tls-key",
            &encrypted,
            "openssl pkey",
        ),
        (
            &pki.cert,
            &other.key,
            "--tls-key",
            &other.key,
            "does not match",
        ),
    ];
    for (cert, key, flag, named, why) in cases {
        let file = format!("{flag} {}", named.display());
        assert_usage_error(&serve_args("echo", cert, key), &[&file, why]);
    }
    // The mismatch also names the certificate it was checked against.
    assert_usage_error(&serve_args("echo", &pki.cert, &other.key), &[s(&pki.cert)]);
}

/// Every server loads its files before it listens.
#[test]
fn every_server_checks_its_files() {
    let pki = TestPki::new(KeyFormat::Sec1Ec);
    let other = TestPki::new(KeyFormat::Sec1Ec);
    for server in ["echo", "chat", "http"] {
        assert_usage_error(
            &serve_args(server, &pki.cert, &other.key),
            &["--tls-key", "does not match"],
        );
    }
}

#[test]
fn cert_without_key_and_key_without_cert_exit_2() {
    for server in ["echo", "chat", "http"] {
        assert_usage_error(
            &["serve", server, "--port", "0", "--tls-cert", "c.pem"],
            &["--tls-key"],
        );
        assert_usage_error(
            &["serve", server, "--port", "0", "--tls-key", "k.pem"],
            &["--tls-cert"],
        );
    }
}

#[test]
fn load_ca_and_insecure_conflict() {
    for workload in ["echo", "chat"] {
        assert_usage_error(
            &[
                "load",
                workload,
                "127.0.0.1:1",
                "--tls",
                "--ca",
                "ca.pem",
                "--insecure",
            ],
            &["--ca", "--insecure"],
        );
    }
    assert_usage_error(
        &[
            "load",
            "http",
            "https://127.0.0.1:1/",
            "--ca",
            "ca.pem",
            "--insecure",
        ],
        &["--ca", "--insecure"],
    );
}

#[test]
fn load_ca_file_is_checked_before_connecting() {
    let pki = TestPki::new(KeyFormat::Pkcs8);
    let missing = pki.path("missing.pem");
    let named = format!("--ca {}", missing.display());
    for args in [
        &["load", "echo", "127.0.0.1:1", "--tls", "--ca", s(&missing)][..],
        &["load", "chat", "127.0.0.1:1", "--tls", "--ca", s(&missing)],
        &["load", "http", "https://127.0.0.1:1/", "--ca", s(&missing)],
    ] {
        assert_usage_error(args, &[&named, "No such file"]);
    }
    // A key file is no CA file.
    assert_usage_error(
        &["load", "echo", "127.0.0.1:1", "--tls", "--ca", s(&pki.key)],
        &["--ca", "no certificate"],
    );
}

#[test]
fn load_ca_and_insecure_need_tls() {
    for args in [
        &["load", "echo", "127.0.0.1:1", "--insecure"][..],
        &["load", "chat", "127.0.0.1:1", "--ca", "ca.pem"],
        &["load", "http", "http://127.0.0.1:1/", "--insecure"],
    ] {
        assert_usage_error(args, &["applies to TLS only"]);
    }
}

/// `tenk load http https://...` is accepted: the arguments pass (TLS on,
/// so `--ca` is read and used) and the run fails only at connecting, to a
/// port where nothing listens (exit 1, not 2).
#[test]
fn load_http_accepts_https_urls() {
    let pki = TestPki::new(KeyFormat::Pkcs8);
    for trust in [&["--ca", s(&pki.ca)][..], &["--insecure"]] {
        let mut args = vec![
            "load",
            "http",
            "https://127.0.0.1:1/",
            "-n",
            "1",
            "-c",
            "1",
            "--connect-timeout",
            "2s",
            "--new-conn-per-request",
        ];
        args.extend_from_slice(trust);
        let output = run_tenk(&args);
        let stderr = stderr(&output);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(!stderr.contains("scheme"), "{stderr}");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains("https://127.0.0.1:1/"), "{stdout}");
    }
}
