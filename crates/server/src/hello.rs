//! The application `tenk serve http` runs: `GET /` says hello, `/health`
//! reports ok, `POST /echo` answers with the request body, `/metrics`
//! gives the counters in Prometheus text format. With a root directory
//! (`--root`), every other path is a file under it, and `/` is its
//! `index.html` when there is one.

use http::response::CachedResponse;
use http::server::Reply;
use http::static_files::{self, Miss, StaticFiles};
use http::{App, Method, Request, Response};

/// The built-in routes, with their fixed responses encoded once a second,
/// and the static files, if any.
pub struct Hello {
    hello: CachedResponse,
    health: CachedResponse,
    files: Option<StaticFiles>,
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
                let content_type = request
                    .header("content-type")
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .unwrap_or("application/octet-stream")
                    .to_string();
                reply.send(&Response::new(200, content_type, request.body.to_vec()));
            }
            "/echo" => reply.send(&not_allowed("POST")),
            "/metrics" if get => {
                let text = http::metrics::render(&reply.reactor_stats(), &reply.http_stats());
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
