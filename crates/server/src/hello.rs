//! The application `tenk serve http` runs: `GET /` says hello, `/health`
//! reports ok, `POST /echo` answers with the request body, `/metrics`
//! gives the counters in Prometheus text format. With a root directory
//! (`--root`), every other path is a file under it, and `/` is its
//! `index.html` when there is one.
//!
//! It is an app on `crates/http`'s [`Router`]: the fixed answers are
//! cached routes (encoded once a second, copied out per request), `/echo`
//! a plain route, `/metrics` a reply route (it reads the reactor's
//! counters), the files the router's fallback; 404 and 405 with `Allow`
//! are the router's.
//!
//! The router counts every route ([`Router::count_into`]): `/metrics`
//! gives requests by route and status class and a duration histogram per
//! route, summed over workers. The cached routes are counted too, at the
//! cost of two counter bumps (see [`http::route_stats`]).
//!
//! `/metrics` labels each reactor thread's figures by worker. With
//! `--threads`, the worker answering shows its own figures live and the
//! others' as last shared: their HTTP counters exactly (each worker
//! records them after every callback that can change them), their reactor
//! counters at most about a second old (see [`crate::serving`]).

use std::sync::Arc;

use http::metrics::{HttpBoard, WorkerFigures};
use http::middleware::RequestId;
use http::route_stats::RouteStats;
use http::router::Router;
use http::server::{HttpStats, Reply};
use http::static_files::{self, Miss, StaticFiles};
use http::{HttpConfig, HttpServer, Method, Response};

use crate::group::Group;

/// The handler `tenk serve http` runs on each reactor: the HTTP server
/// with the app's [`Router`].
pub type HelloServer = HttpServer<Router>;

/// One worker's place in a group of HTTP workers.
#[derive(Clone)]
pub struct Worker {
    pub id: usize,
    /// For every reactor's published counters.
    pub group: Arc<Group>,
    /// For every worker's HTTP counters.
    pub board: Arc<HttpBoard>,
}

/// The app's routes, serving `files` (if any) for every other path,
/// counted in `routes`; `worker`, with other workers, for `/metrics` to
/// show them all.
pub fn app(
    files: Option<StaticFiles>,
    worker: Option<Worker>,
    routes: Arc<RouteStats>,
    request_ids: Option<RequestId>,
) -> Router {
    // The worker its routes are counted as (`tenk_http_request_duration_seconds`).
    let id = worker.as_ref().map_or(0, |w| w.id);
    let hello = Response::text(200, &b"Hello, World!"[..]);

    let health = Response::new(200, "application/json", &b"{\"status\":\"ok\"}"[..]);
    let mut router = Router::new();
    match files.clone() {
        None => router.cached(Method::Get, "/", hello),
        // `/` is the root's index.html when it has one.
        Some(files) => {
            let mut hello = http::response::CachedResponse::new(hello);
            router.reply(Method::Get, "/", move |request, _, reply| {
                match files.find("/") {
                    Ok(index) => static_files::respond(index, request, reply),
                    // No index.html under the root: the hello stays.
                    Err(Miss::NotFound) => reply.send_cached(&mut hello),
                    Err(miss) => reply.send(&static_files::miss_response(miss)),
                }
            })
        }
    };
    router
        .cached(Method::Get, "/health", health)
        .route(Method::Post, "/echo", |request, _| {
            // A media type is ASCII: a Content-Type that is not UTF-8
            // text is not one worth echoing.
            let content_type = request
                .header_str("content-type")
                .unwrap_or("application/octet-stream")
                .to_string();
            Response::new(200, content_type, request.body.to_vec())
        })
        .reply(Method::Get, "/metrics", {
            let routes = routes.clone();
            move |_, _, reply| {
                let text = metrics(worker.as_ref(), &routes, reply);
                reply.send(&Response::new(
                    200,
                    http::metrics::CONTENT_TYPE,
                    text.into_bytes(),
                ));
            }
        });
    if let Some(files) = files {
        router.fallback(move |request, reply| files.serve(request, reply));
    }
    if let Some(layer) = request_ids {
        // Middleware: every answer, cached ones included, is built as a
        // response the layer amends. That costs the cached fast path its
        // speed, which is why it is opt-in (`--request-id`).
        router.wrap(layer);
    }
    router.count_into_as(&routes, id);
    router
}

/// The request-id layer of worker `id`: fresh ids carry this process's
/// start time and pid and the worker, so that they do not repeat across
/// workers, restarts or the processes behind one balancer.
pub fn request_ids(id: usize) -> RequestId {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| since.as_millis());
    RequestId::with_prefix(format!("{started:x}-{:x}-{id}", std::process::id()))
}

/// The app serving `files` with `config` as worker `id` of `group`. With
/// other workers, it shares its HTTP counters on `board` (recorded after
/// each callback that can change them) and its `/metrics` shows every
/// worker's; alone, its figures are only its own. Every worker counts its
/// routes in `routes`, summed in every worker's `/metrics`.
pub fn in_group(
    files: Option<StaticFiles>,
    config: HttpConfig,
    id: usize,
    group: &Arc<Group>,
    board: &Arc<HttpBoard>,
    routes: &Arc<RouteStats>,
    request_id: bool,
) -> HelloServer {
    let worker = (group.workers() > 1).then(|| Worker {
        id,
        group: group.clone(),
        board: board.clone(),
    });
    let shared = worker.is_some();
    let mut server = HttpServer::new(
        app(
            files,
            worker,
            routes.clone(),
            request_id.then(|| request_ids(id)),
        ),
        config,
    );
    if shared {
        server.share_stats(board.clone(), id);
    }
    server
}

/// The `/metrics` text: this reactor's live figures and, in a group,
/// the others' as last shared; every worker's routes.
fn metrics(worker: Option<&Worker>, routes: &RouteStats, reply: &Reply<'_>) -> String {
    let live = reply.reactor_stats();
    let http = reply.http_stats();
    let routes = routes.snapshot();
    // The transport's counts are the process's already (one factory
    // shared by every worker): no board needed.
    let transport = reply.transport_counts();
    let preamble = reply.preamble_counts();
    let Some(me) = worker else {
        let figures = WorkerFigures {
            label: "0".to_string(),
            reactor: live,
            responses: Some(http.total()),
        };
        return http::metrics::render(
            &live,
            transport.as_ref(),
            preamble.as_ref(),
            &[figures],
            &http,
            &routes,
        );
    };
    // Share this worker's live figures first: the boards then hold
    // nothing older than what an earlier scrape showed, so counters
    // never go backwards between scrapes answered by different workers.
    me.group.publish(me.id, live);
    me.board.record(me.id, &http);
    let board = me.group.board();
    let mut total_http = HttpStats::default();
    let mut figures = Vec::with_capacity(board.workers.len() + 1);
    for (id, stats) in board.workers.iter().enumerate() {
        let theirs = me.board.read(id);
        total_http.add(&theirs);
        figures.push(WorkerFigures {
            label: id.to_string(),
            reactor: *stats,
            responses: Some(theirs.total()),
        });
    }
    if let Some(acceptor) = board.acceptor {
        figures.push(WorkerFigures {
            label: "acceptor".to_string(),
            reactor: acceptor,
            responses: None,
        });
    }
    http::metrics::render(
        &board.total(),
        transport.as_ref(),
        preamble.as_ref(),
        &figures,
        &total_http,
        &routes,
    )
}
