//! `--metrics ADDR:PORT`: a listener beside the server's port, on the
//! same reactor (worker 0's), answering `GET /metrics` with the
//! Prometheus text of every server: the reactor's families
//! ([`http::metrics::render_reactor`], the pass histogram among them) and
//! what the server adds through its [`Render`] (HTTP's counters and
//! request durations, chat's fan-out durations and Redis figures, the
//! proxy's figures), and the standard `process_*` families with the
//! answering pid (`process.rs`).
//!
//! The listener is plain TCP whatever the main port speaks
//! ([`reactor::Io::add_plain_listener`]): a scraper reaches it directly,
//! without TLS or the balancer that sends PROXY protocol headers. It is
//! worker 0's own, never the acceptor thread's, so under
//! `--accept dispatch` its connections are not handed to a worker that
//! would put them behind the transport. The scrape's own connection
//! counts in the reactor's connection figures like any other.

mod board;
pub(crate) mod endpoint;
mod process;

use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use http::metrics::WorkerFigures;
use reactor::{PreambleCounts, TransportCounts};

use crate::group::Board;

pub use board::HistogramBoard;

/// What a scrape sees: every reactor's figures (worker 0's live, the
/// others' as last published, see [`crate::serving`]) and the transport's.
pub struct Scrape<'a> {
    pub board: &'a Board,
    pub transport: Option<TransportCounts>,
    pub preamble: Option<PreambleCounts>,
}

/// Renders a server's `/metrics` text from a [`Scrape`]; called on worker
/// 0's thread, so it reads what other workers share (boards), never
/// their handlers.
pub type Render = Arc<dyn Fn(&Scrape<'_>) -> String + Send + Sync>;

/// The metrics listener `serve` puts on worker 0.
pub struct MetricsListener {
    /// Bound and listening already (bound by the caller, so that a bad
    /// address fails before anything else starts).
    pub fd: OwnedFd,
    /// Where it listens (for the banner).
    pub addr: SocketAddr,
    pub render: Render,
}

/// The reactor's families as a server that is not HTTP has them:
/// `responses(worker)` gives a worker's HTTP responses, if it counts any.
pub fn reactor_text(scrape: &Scrape<'_>, responses: &dyn Fn(usize) -> Option<u64>) -> String {
    let board = scrape.board;
    let mut figures: Vec<WorkerFigures> = board
        .workers
        .iter()
        .enumerate()
        .map(|(id, stats)| WorkerFigures {
            label: id.to_string(),
            reactor: *stats,
            responses: responses(id),
        })
        .collect();
    if let Some(acceptor) = board.acceptor {
        figures.push(WorkerFigures {
            label: "acceptor".to_string(),
            reactor: acceptor,
            responses: None,
        });
    }
    http::metrics::render_reactor(
        &board.total(),
        scrape.transport.as_ref(),
        scrape.preamble.as_ref(),
        &figures,
    )
}

/// Echo's: the reactor's families alone.
pub fn echo() -> Render {
    Arc::new(|scrape| reactor_text(scrape, &|_| None))
}

/// Chat's: the reactor's families, the fan-out durations each worker
/// records on `fanout`, and with `--redis` each worker's Redis figures as
/// last published on `redis` (once a second).
pub fn chat(
    fanout: Arc<HistogramBoard>,
    redis: Option<Arc<crate::chat::cluster::ClusterBoard>>,
) -> Render {
    Arc::new(move |scrape| {
        let mut text = reactor_text(scrape, &|_| None);
        http::metrics::render_histograms(
            &mut text,
            "tenk_chat_fanout_duration_seconds",
            "Time from the start of the loop pass that read a room message to its copies queued on every member on this worker (for members on another worker: from the sender's pass to their worker's queueing), by worker thread.",
            &fanout.series(),
        );
        if let Some(redis) = &redis {
            crate::chat::cluster::metrics::render(&redis.workers(), &mut text);
        }
        text
    })
}

/// HTTP's: the reactor's families, the HTTP counters every worker records
/// on `http`, the request durations and per-route figures of `routes`.
pub fn http(
    board: Arc<http::metrics::HttpBoard>,
    routes: Arc<http::route_stats::RouteStats>,
) -> Render {
    Arc::new(move |scrape| {
        let mut text = reactor_text(scrape, &|id| Some(board.read(id).total()));
        let mut total = http::server::HttpStats::default();
        for id in 0..board.workers() {
            total.add(&board.read(id));
        }
        http::metrics::render_request_durations(&mut text, &routes.by_worker());
        http::metrics::render_http(&mut text, &total, &routes.snapshot());
        text
    })
}

/// The proxy's: the reactor's families, each worker's request durations,
/// and [`crate::proxy::metrics::render`] of every worker's figures, as
/// last published on `board` (once a second).
pub fn proxy(board: Arc<crate::proxy::ProxyBoard>) -> Render {
    Arc::new(move |scrape| {
        let mut text = reactor_text(scrape, &|_| None);
        let workers = board.workers();
        let series: Vec<_> = workers
            .iter()
            .enumerate()
            .map(|(id, w)| (format!("worker=\"{id}\""), w.requests))
            .collect();
        http::metrics::render_histograms(
            &mut text,
            "tenk_http_request_duration_seconds",
            "Time from the start of the loop pass that read a request's head to its response head (or error answer) queued to the client, by worker thread.",
            &series,
        );
        let mut total = crate::proxy::ProxyStats::default();
        for w in &workers {
            total.add(w);
        }
        crate::proxy::metrics::render(&total, &mut text);
        text
    })
}
