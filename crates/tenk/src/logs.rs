//! Where the libraries' `tracing` events go: warnings and errors (or what
//! `RUST_LOG` asks for) to stderr, and the HTTP access log
//! (`--access-log`, target [`ACCESS_LOG`]) to stdout, one plain line per
//! request, as the libraries themselves never print.

use std::fmt;
use std::io::Write as _;

use http::server::ACCESS_LOG;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

/// Installs the process's subscriber.
pub fn init() {
    let terminal = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")));
    let access = AccessLog.with_filter(filter_fn(|meta| meta.target() == ACCESS_LOG));
    tracing_subscriber::registry()
        .with(terminal)
        .with(access)
        .init();
}

/// Prints each access-log event's message on stdout.
struct AccessLog;

impl<S: Subscriber> Layer<S> for AccessLog {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        let _ = writeln!(std::io::stdout().lock(), "{}", message.0);
    }
}

/// The `message` field of an event, as formatted.
struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            use fmt::Write as _;
            let _ = write!(self.0, "{value:?}");
        }
    }
}
