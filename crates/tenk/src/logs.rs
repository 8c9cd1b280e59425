//! Where the libraries' `tracing` events go, as the libraries themselves
//! never print: diagnostics to stderr, filtered by `--log-level` and
//! `RUST_LOG`; the HTTP access log (`--access-log`, target [`ACCESS_LOG`])
//! to stdout, one line per request. `--log-format json` makes both one
//! JSON object a line; the banner, `--stats` and summaries stay text.

use std::fmt;
use std::time::SystemTime;

use clap::{Args, ValueEnum};
use http::server::ACCESS_LOG;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{filter_fn, EnvFilter, FilterExt as _};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

/// The logging options every command takes.
#[derive(Args, Debug, Clone)]
pub struct LogArgs {
    /// Diagnostics on stderr at this level and above; RUST_LOG goes after it.
    ///
    /// RUST_LOG, when set, is applied after it: a target there refines it
    /// (RUST_LOG=reactor=debug adds the reactor's debug lines), a bare
    /// level replaces it (RUST_LOG=error). Neither filters the banner,
    /// the --stats lines or the access log.
    #[arg(long, global = true, value_enum, value_name = "LEVEL",
          default_value_t = LogLevel::Warn)]
    pub log_level: LogLevel,
    /// Diagnostics and access log as text lines or JSON objects.
    ///
    /// Format of the diagnostics on stderr and of the access log on
    /// stdout: text lines, or one JSON object a line (access log fields:
    /// time, client, method, target, status, bytes, duration_us and, with
    /// --request-id, request_id). The banner, --stats lines and summaries
    /// stay text.
    #[arg(long, global = true, value_enum, value_name = "FORMAT",
          default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// `--log-level` values.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogLevel {
    Off,
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    fn directive(self) -> &'static str {
        match self {
            LogLevel::Off => "off",
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// `--log-format` values.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Installs the process's subscriber. A `RUST_LOG` that does not parse is
/// reported on stderr and left out; the level alone applies.
pub fn init(args: &LogArgs) {
    let rust_log = std::env::var("RUST_LOG");
    let rust_log = match &rust_log {
        Ok(text) => Some(text.as_str()),
        Err(std::env::VarError::NotPresent) => None,
        Err(e @ std::env::VarError::NotUnicode(_)) => {
            crate::out::err(format_args!("tenk: ignoring RUST_LOG: {e}"));
            None
        }
    };
    let levels = match filter(args.log_level, rust_log) {
        Ok(filter) => filter,
        Err(e) => {
            crate::out::err(format_args!("tenk: ignoring RUST_LOG: {e}"));
            filter(args.log_level, None).expect("a level alone parses")
        }
    };
    // The access log goes to stdout alone, whatever the level says.
    let levels = levels.and(filter_fn(|meta| meta.target() != ACCESS_LOG));
    let terminal = match args.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let access = AccessLog {
        format: args.log_format,
    }
    .with_filter(filter_fn(|meta| meta.target() == ACCESS_LOG));
    tracing_subscriber::registry()
        .with(terminal.with_filter(levels))
        .with(access)
        .init();
}

/// The filter of the diagnostics: `--log-level`'s level, then
/// `RUST_LOG`'s directives, so that a directive of the same target (a
/// bare level has none) replaces the level and others add to it.
fn filter(level: LogLevel, rust_log: Option<&str>) -> Result<EnvFilter, String> {
    let directives = match rust_log {
        Some(more) if !more.trim().is_empty() => format!("{},{more}", level.directive()),
        _ => level.directive().to_string(),
    };
    EnvFilter::builder()
        .parse(&directives)
        .map_err(|e| format!("{e} (in {directives:?})"))
}

/// Prints each access-log event on stdout: its message as text, or its
/// fields as a JSON object.
struct AccessLog {
    format: LogFormat,
}

impl<S: Subscriber> Layer<S> for AccessLog {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        match self.format {
            LogFormat::Text => crate::out::line(format_args!("{}", fields.message)),
            LogFormat::Json => {
                crate::out::line(format_args!("{}", fields.json(SystemTime::now())));
            }
        }
    }
}

/// The fields of an access-log event, as the HTTP server records them
/// ([`http::HttpConfig::access_log`]).
#[derive(Default, Debug)]
struct Fields {
    message: String,
    client: String,
    method: String,
    target: String,
    status: u64,
    bytes: u64,
    duration_us: u64,
    request_id: Option<String>,
}

impl Fields {
    /// One JSON object, its keys in a fixed order (time first).
    fn json(&self, now: SystemTime) -> String {
        let text = |s: &str| serde_json::Value::from(s).to_string();
        let mut line = format!(
            "{{\"time\":\"{}\",\"client\":{},\"method\":{},\"target\":{},\"status\":{},\"bytes\":{},\"duration_us\":{}",
            humantime::format_rfc3339_micros(now),
            text(&self.client),
            text(&self.method),
            text(&self.target),
            self.status,
            self.bytes,
            self.duration_us,
        );
        if let Some(id) = &self.request_id {
            line.push_str(",\"request_id\":");
            line.push_str(&text(id));
        }
        line.push('}');
        line
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        let slot = match field.name() {
            "message" => &mut self.message,
            "client" => &mut self.client,
            "method" => &mut self.method,
            "target" => &mut self.target,
            "request_id" => self.request_id.get_or_insert_with(String::new),
            _ => return,
        };
        value.clone_into(slot);
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        match field.name() {
            "status" => self.status = value,
            "bytes" => self.bytes = value,
            "duration_us" => self.duration_us = value,
            _ => {}
        }
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.record_u64(field, u64::try_from(value).unwrap_or(0));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // `client = %peer` and the formatted message arrive here.
        self.record_str(field, &format!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn json_line_has_the_fields_in_order_and_escapes_text() {
        let mut fields = Fields {
            message: "ignored".into(),
            client: "127.0.0.1".into(),
            method: "GET".into(),
            target: "/a\"b\\c".into(),
            status: 200,
            bytes: 13,
            duration_us: 42,
            request_id: None,
        };
        let at = SystemTime::UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456);
        assert_eq!(
            fields.json(at),
            r#"{"time":"2023-11-14T22:13:20.123456Z","client":"127.0.0.1","method":"GET","target":"/a\"b\\c","status":200,"bytes":13,"duration_us":42}"#
        );
        fields.request_id = Some("tenk-1".into());
        let parsed: serde_json::Value = serde_json::from_str(&fields.json(at)).unwrap();
        assert_eq!(parsed["request_id"], "tenk-1");
        assert_eq!(parsed["target"], "/a\"b\\c");
    }

    /// The combination --help and the README state: --log-level first,
    /// RUST_LOG after it.
    #[test]
    fn rust_log_refines_or_replaces_the_level() {
        let shown = |level, rust_log| filter(level, rust_log).unwrap().to_string();
        assert_eq!(shown(LogLevel::Info, None), "info");
        assert_eq!(shown(LogLevel::Info, Some("")), "info");
        // A bare level replaces --log-level's.
        assert_eq!(shown(LogLevel::Debug, Some("error")), "error");
        // A target adds to it.
        let both = shown(LogLevel::Warn, Some("reactor=debug"));
        assert!(
            both.contains("reactor=debug") && both.contains("warn"),
            "{both}"
        );
        assert!(filter(LogLevel::Warn, Some("reactor=loud")).is_err());
    }
}
