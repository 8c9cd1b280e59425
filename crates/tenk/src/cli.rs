//! The command line: `tenk serve echo|http|chat|proxy` and their flags
//! (the flags every server takes in `cli/serve_args.rs`, each server's own
//! in `cli/servers.rs`), `tenk completions` and `tenk man`; the `tenk load`
//! subcommands are in [`crate::load_cli`], the global logging options in
//! [`crate::logs`].

use clap::{Parser, Subcommand};

mod serve_args;
mod servers;

pub use serve_args::ServeArgs;
pub use servers::{ChatArgs, HttpArgs, ProxyArgs};

/// Build and measure high-concurrency TCP servers on Linux epoll.
#[derive(Parser, Debug)]
#[command(name = "tenk", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub log: crate::logs::LogArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a server.
    #[command(subcommand)]
    Serve(Serve),
    /// Generate load against a server and report what it measured.
    #[command(subcommand)]
    Load(crate::load_cli::Load),
    /// Print a completion script for a shell on stdout, e.g.
    /// `tenk completions bash > /etc/bash_completion.d/tenk`.
    Completions {
        #[arg(value_enum)]
        shell: crate::generate::Shell,
    },
    /// Print a man page (roff) on stdout: tenk(1), or a command's, e.g.
    /// `tenk man serve http | man -l -`.
    Man {
        /// The command whose page to print (`serve http`); none for tenk(1).
        #[arg(value_name = "COMMAND")]
        command: Vec<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum Serve {
    /// A TCP echo server: every byte received is sent back.
    Echo(ServeArgs),
    /// An HTTP/1.1 server: `GET /` says hello, `/health`, `POST /echo`,
    /// `/metrics`, and the files under `--root DIR`.
    Http(HttpArgs),
    /// A line-based chat server (try it with `nc`): rooms, nicks, private
    /// messages; slow readers are cut without slowing the room.
    // A chat user who only reads sends nothing for as long as the room is
    // quiet: an idle timeout would throw them out, so chat has none by
    // default and finds dead peers with TCP keepalive instead.
    #[command(mut_arg("idle_timeout", |a| a.default_value(CHAT_IDLE_TIMEOUT).help(
        "Close connections with no traffic either way for this long (0: never). \
         Off for chat: a user reading a quiet room sends nothing and must not be \
         cut; dead peers are found by TCP keepalive (--keepalive-idle) instead"
    )))]
    #[command(mut_arg("keepalive_idle", |a| a.default_value(CHAT_KEEPALIVE_IDLE).help(
        "TCP keepalive: probe a connection silent this long, and close it when \
         --keepalive-count probes --keepalive-interval apart go unanswered, so a \
         peer gone without a FIN or RST is found (0: off; whole seconds). On for chat (60s, 10s, \
         6: a dead peer is closed within 2 minutes), as chat has no idle timeout"
    )))]
    Chat(ChatArgs),
    /// An HTTP/1.1 reverse proxy and load balancer: requests go to the
    /// `--upstream`s over pooled keep-alive connections (docs/proxy.md).
    Proxy(ProxyArgs),
}

/// Chat's `--idle-timeout` default: off (see the `Chat` variant).
pub const CHAT_IDLE_TIMEOUT: &str = "0";
/// Chat's `--keepalive-idle` default, with the default interval and count:
/// [`reactor::Keepalive::default`].
pub const CHAT_KEEPALIVE_IDLE: &str = "60s";
#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use reactor::Trigger;
    use serve_args::{BalanceArg, TriggerArg};
    use std::time::Duration;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults() {
        let cli = Cli::try_parse_from(["tenk", "serve", "echo"]).unwrap();
        let Command::Serve(Serve::Echo(args)) = cli.command else {
            panic!("parsed as another command");
        };
        assert_eq!(args.port, 8080);
        assert_eq!(args.bind.to_string(), "127.0.0.1");
        assert_eq!(args.trigger, TriggerArg::Edge);
        assert_eq!(args.max_events, 1024);
        assert_eq!(args.budget, 65536);
        assert_eq!(args.backlog, 4096);
        assert_eq!(args.max_conns, None);
        assert_eq!(args.drain_timeout, Duration::from_secs(5));
        assert_eq!(args.idle_timeout, Duration::from_secs(60));
        assert_eq!(args.write_timeout, Duration::from_secs(60));
        let zero = Cli::try_parse_from(["tenk", "serve", "echo", "--idle-timeout", "0"]).unwrap();
        let Command::Serve(Serve::Echo(zero)) = zero.command else {
            panic!("parsed as another command");
        };
        assert!(zero.idle_timeout.is_zero(), "0 disables the idle timeout");
    }

    fn serve_args(argv: &[&str]) -> ServeArgs {
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Serve(Serve::Echo(args)) => args,
            Command::Serve(Serve::Http(args)) => args.serve,
            Command::Serve(Serve::Chat(args)) => args.serve,
            Command::Serve(Serve::Proxy(args)) => args.serve,
            other => panic!("parsed as {other:?}"),
        }
    }

    /// Regression (issue 14, item 4): chat applied the 60 s idle timeout of
    /// echo and http, so a user reading a quiet room was thrown out after
    /// a minute. Chat has no idle timeout and finds dead peers by TCP
    /// keepalive; the other servers keep their idle timeout and no
    /// keepalive.
    #[test]
    fn regression_chat_has_no_idle_timeout_and_keepalive_by_default() {
        let chat = serve_args(&["tenk", "serve", "chat"]);
        assert!(chat.idle_timeout.is_zero(), "chat idle timeout");
        assert_eq!(chat.keepalive(), Some(reactor::Keepalive::default()));
        for server in ["echo", "http"] {
            let args = serve_args(&["tenk", "serve", server]);
            assert_eq!(args.idle_timeout, Duration::from_secs(60), "{server}");
            assert_eq!(args.keepalive(), None, "{server}");
        }
        // The help text states the chat defaults the constants give.
        let help = Cli::command()
            .find_subcommand_mut("serve")
            .and_then(|serve| serve.find_subcommand_mut("chat"))
            .expect("serve chat")
            .render_long_help()
            .to_string();
        assert!(help.contains("Off for chat"), "{help}");
        assert!(help.contains("On for chat (60s, 10s, 6"), "{help}");
        let k = reactor::Keepalive::default();
        assert_eq!(
            (k.idle.as_secs(), k.interval.as_secs(), k.count),
            (60, 10, 6),
            "the chat help text quotes these"
        );
    }

    /// --log-level and --log-format are global: before the command or
    /// after any subcommand, for every command.
    #[test]
    fn log_options_are_global() {
        use crate::logs::{LogFormat, LogLevel};
        for argv in [
            &[
                "tenk",
                "--log-level",
                "debug",
                "--log-format",
                "json",
                "serve",
                "echo",
            ][..],
            &[
                "tenk",
                "serve",
                "echo",
                "--log-level",
                "debug",
                "--log-format",
                "json",
            ],
            &[
                "tenk",
                "serve",
                "--log-format",
                "json",
                "chat",
                "--log-level",
                "debug",
            ],
            &[
                "tenk",
                "load",
                "echo",
                "127.0.0.1:1",
                "--log-level",
                "debug",
                "--log-format",
                "json",
            ],
            &[
                "tenk",
                "man",
                "--log-level",
                "debug",
                "--log-format",
                "json",
            ],
        ] {
            let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{argv:?}: {e}"));
            assert_eq!(cli.log.log_level, LogLevel::Debug, "{argv:?}");
            assert_eq!(cli.log.log_format, LogFormat::Json, "{argv:?}");
        }
        let cli = Cli::try_parse_from(["tenk", "serve", "echo"]).unwrap();
        assert_eq!(cli.log.log_level, LogLevel::Warn);
        assert_eq!(cli.log.log_format, LogFormat::Text);
        assert!(Cli::try_parse_from(["tenk", "serve", "echo", "--log-level", "loud"]).is_err());
        assert!(Cli::try_parse_from(["tenk", "serve", "echo", "--log-format", "xml"]).is_err());
    }

    #[test]
    fn proxy_defaults_and_repeated_upstreams() {
        let cli = Cli::try_parse_from([
            "tenk",
            "serve",
            "proxy",
            "--upstream",
            "127.0.0.1:1",
            "--upstream",
            "127.0.0.1:2=3",
        ])
        .unwrap();
        let Command::Serve(Serve::Proxy(args)) = cli.command else {
            panic!("parsed as another command");
        };
        assert_eq!(args.upstreams, ["127.0.0.1:1", "127.0.0.1:2=3"]);
        assert_eq!(
            args.upstream_balance,
            server::proxy::BalanceMode::RoundRobin
        );
        assert_eq!(args.upstream_keepalive, 32);
        assert_eq!(args.upstream_connect_timeout, Duration::from_secs(2));
        assert_eq!(args.upstream_timeout, Duration::from_secs(60));
        assert_eq!(args.health_interval, Duration::from_secs(2));
        assert_eq!(args.health_check, None);
        assert_eq!(
            args.serve.balance,
            BalanceArg::RoundRobin,
            "--balance unchanged"
        );
    }

    #[test]
    fn keepalive_flags_tune_and_turn_off() {
        let tuned = serve_args(&[
            "tenk",
            "serve",
            "echo",
            "--keepalive-idle",
            "5s",
            "--keepalive-interval",
            "2s",
            "--keepalive-count",
            "3",
        ]);
        let k = tuned.keepalive().expect("on");
        assert_eq!(
            (k.idle, k.interval, k.count),
            (Duration::from_secs(5), Duration::from_secs(2), 3)
        );
        assert_eq!(k.dead_after(), Duration::from_secs(11));
        let off = serve_args(&["tenk", "serve", "chat", "--keepalive-idle", "0"]);
        assert_eq!(off.keepalive(), None, "--keepalive-idle 0 turns it off");
        let idle = serve_args(&["tenk", "serve", "chat", "--idle-timeout", "5m"]);
        assert_eq!(idle.idle_timeout, Duration::from_secs(300));
    }

    #[test]
    fn rejects_bad_keepalive_values() {
        for (bad, why) in [
            (&["--keepalive-idle", "1500ms"][..], "whole seconds"),
            (&["--keepalive-idle", "32768s"], "1s to 32767s"),
            (&["--keepalive-interval", "0"], "1s to 32767s"),
            (&["--keepalive-interval", "500ms"], "whole seconds"),
            (&["--keepalive-interval", "often"], ""),
            (&["--keepalive-count", "0"], "not in 1..=127"),
            (&["--keepalive-count", "128"], "not in 1..=127"),
        ] {
            for server in ["echo", "chat"] {
                let argv: Vec<&str> = ["tenk", "serve", server]
                    .iter()
                    .chain(bad)
                    .copied()
                    .collect();
                let err = Cli::try_parse_from(&argv).expect_err(&format!("{argv:?} parsed"));
                assert!(err.to_string().contains(why), "{argv:?}: {err}");
            }
        }
    }

    #[test]
    fn rejects_bad_values() {
        for bad in [
            &["tenk", "serve", "echo", "--port", "70000"][..],
            &["tenk", "serve", "echo", "--trigger", "sideways"],
            &["tenk", "serve", "echo", "--max-events", "0"],
            &["tenk", "serve", "echo", "--bind", "localhost:1"],
            &["tenk", "serve", "echo", "--drain-timeout", "soon"],
            &["tenk", "serve", "echo", "--no-such-flag"],
        ] {
            assert!(Cli::try_parse_from(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn ipv6_and_trigger_modes_parse() {
        let cli = Cli::try_parse_from([
            "tenk",
            "serve",
            "echo",
            "--bind",
            "::1",
            "--trigger",
            "oneshot",
        ])
        .unwrap();
        let Command::Serve(Serve::Echo(args)) = cli.command else {
            panic!("parsed as another command");
        };
        assert!(args.bind.is_ipv6());
        assert_eq!(Trigger::from(args.trigger), Trigger::OneShot);
    }
}
