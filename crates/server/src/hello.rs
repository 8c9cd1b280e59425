//! The application `tenk serve http` runs: `GET /` says hello, `/health`
//! reports ok, `POST /echo` answers with the request body, `/metrics`
//! gives the counters in Prometheus text format. With a root directory
//! (`--root`), every other path is a file under it, and `/` is its
//! `index.html` when there is one.
//!
//! `/metrics` labels each reactor thread's figures by worker. With
//! `--threads`, the worker answering shows its own figures live and the
//! others' as last shared: their HTTP counters exactly (each worker
//! records them after every callback that can change them), their reactor
//! counters at most about a second old (see [`crate::serving`]).

use std::sync::Arc;

use http::metrics::{HttpBoard, WorkerFigures};
use http::response::CachedResponse;
use http::server::{HttpStats, Reply};
use http::static_files::{self, Miss, StaticFiles};
use http::{App, HttpConfig, HttpServer, Method, Request, Response};

use crate::group::Group;

/// The built-in routes, with their fixed responses encoded once a second,
/// and the static files, if any.
pub struct Hello {
    hello: CachedResponse,
    health: CachedResponse,
    files: Option<StaticFiles>,
    /// With `--threads`: which worker this is, and what workers share.
    worker: Option<Worker>,
}

/// One worker's place in a group of HTTP workers.
#[derive(Clone)]
pub struct Worker {
    pub id: usize,
    /// For every reactor's published counters.
    pub group: Arc<Group>,
    /// For every worker's HTTP counters.
    pub board: Arc<HttpBoard>,
}

impl Default for Hello {
    fn default() -> Hello {
        Hello {
            hello: CachedResponse::new(Response::text(200, &b"Hello, World!"[..])),
            health: CachedResponse::new(Response::new(
                200,
                "application/json",
                &b"{\"status\":\"ok\"}"[..],
            )),
            files: None,
            worker: None,
        }
    }
}

impl Hello {
    /// Serves `files` for every path the built-in routes do not take.
    pub fn with_files(files: StaticFiles) -> Hello {
        Hello {
            files: Some(files),
            ..Hello::default()
        }
    }

    /// The `/metrics` text: this reactor's live figures and, in a group,
    /// the others' as last shared.
    fn metrics(&self, reply: &Reply<'_>) -> String {
        let live = reply.reactor_stats();
        let http = reply.http_stats();
        let Some(me) = &self.worker else {
            let figures = WorkerFigures {
                label: "0".to_string(),
                reactor: live,
                responses: Some(http.total()),
            };
            return http::metrics::render(&live, &[figures], &http);
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
        http::metrics::render(&board.total(), &figures, &total_http)
    }
}

/// The handler `tenk serve http` runs on each reactor: the HTTP server
/// with [`Hello`].
pub type HelloServer = HttpServer<Hello>;

/// `app` served with `config` as worker `id` of `group`. With other
/// workers, it shares its HTTP counters on `board` (recorded after each
/// callback that can change them) and its `/metrics` shows every
/// worker's; alone, its figures are only its own.
pub fn in_group(
    mut app: Hello,
    config: HttpConfig,
    id: usize,
    group: &Arc<Group>,
    board: &Arc<HttpBoard>,
) -> HelloServer {
    let shared = group.workers() > 1;
    if shared {
        app.worker = Some(Worker {
            id,
            group: group.clone(),
            board: board.clone(),
        });
    }
    let mut server = HttpServer::new(app, config);
    if shared {
        server.share_stats(board.clone(), id);
    }
    server
}

fn not_allowed(allow: &'static str) -> Response {
    Response::text(405, &b"405 Method Not Allowed\n"[..]).header("Allow", allow)
}

impl App for Hello {
    fn handle(&mut self, request: &Request<'_, '_>, reply: &mut Reply<'_>) {
        let method = request.method;
        let get = matches!(method, Method::Get | Method::Head);
        match request.path() {
            "/" if get => match self.files.as_ref().map(|files| files.find("/")) {
                Some(Ok(index)) => static_files::respond(index, request, reply),
                // No index.html under the root: the hello stays.
                None | Some(Err(Miss::NotFound)) => reply.send_cached(&mut self.hello),
                Some(Err(miss)) => reply.send(&static_files::miss_response(miss)),
            },
            "/health" if get => reply.send_cached(&mut self.health),
            "/" | "/health" => reply.send(&not_allowed("GET, HEAD")),
            "/echo" if method == Method::Post => {
                // A media type is ASCII: a Content-Type that is not UTF-8
                // text is not one worth echoing.
                let content_type = request
                    .header_str("content-type")
                    .unwrap_or("application/octet-stream")
                    .to_string();
                reply.send(&Response::new(200, content_type, request.body.to_vec()));
            }
            "/echo" => reply.send(&not_allowed("POST")),
            "/metrics" if get => {
                let text = self.metrics(reply);
                reply.send(&Response::new(
                    200,
                    http::metrics::CONTENT_TYPE,
                    text.into_bytes(),
                ));
            }
            "/metrics" => reply.send(&not_allowed("GET, HEAD")),
            _ => match &self.files {
                Some(files) => files.serve(request, reply),
                None => reply.send(&Response::text(404, &b"404 Not Found\n"[..])),
            },
        }
    }
}
