//! Routing by method and path, with parameters (`/users/:id`) and a
//! wildcard tail (`/files/*path`), and middleware around the handlers.
//!
//! The router answers 404 when no route's path matches and 405, with an
//! `Allow` header, when a path matches under other methods. HEAD is served
//! by a GET route (the body is dropped by the encoder).
//!
//! ```
//! use http::router::{Params, Router};
//! use http::{Method, Request, Response};
//!
//! let mut router = Router::new();
//! router.route(Method::Get, "/users/:id", |_req: &Request<'_, '_>, params: &Params| {
//!     Response::text(200, format!("user {}\n", params.get("id").unwrap_or("?")).into_bytes())
//! });
//! ```

use std::sync::Arc;

use crate::middleware::{run_chain, Middleware};
use crate::parse::{Method, Request};
use crate::response::Response;
use crate::server::{App, Reply};

/// Parameters captured from the path.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// The value captured for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    /// Matches the rest of the path, possibly empty.
    Tail(String),
}

/// A route handler: a request and its path parameters in, a response out.
pub type HandlerFn = Box<dyn FnMut(&Request<'_, '_>, &Params) -> Response>;

struct Route {
    method: Method,
    pattern: Arc<str>,
    segments: Vec<Segment>,
    handler: HandlerFn,
}

/// The route a request matched, for middleware (per-route stats, logs).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matched {
    /// The pattern of the route that answered.
    Route(Arc<str>),
    /// No route's path matched (404).
    NotFound,
    /// The path matched under other methods (405).
    MethodNotAllowed,
}

/// Routes and the middleware chain around them.
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
    middleware: Vec<Box<dyn Middleware>>,
}

impl Router {
    pub fn new() -> Router {
        Router::default()
    }

    /// Adds a route. Patterns are `/`-separated; `:name` captures one
    /// segment, `*name` (last) captures the rest of the path.
    ///
    /// # Panics
    /// If a `*tail` is not the last segment: a pattern bug, found at
    /// start-up.
    pub fn route(
        &mut self,
        method: Method,
        pattern: &str,
        handler: impl FnMut(&Request<'_, '_>, &Params) -> Response + 'static,
    ) -> &mut Router {
        let segments: Vec<Segment> = split(pattern)
            .map(|s| {
                if let Some(name) = s.strip_prefix(':') {
                    Segment::Param(name.to_string())
                } else if let Some(name) = s.strip_prefix('*') {
                    Segment::Tail(name.to_string())
                } else {
                    Segment::Literal(s.to_string())
                }
            })
            .collect();
        if let Some(i) = segments.iter().position(|s| matches!(s, Segment::Tail(_))) {
            assert_eq!(
                i + 1,
                segments.len(),
                "`*tail` must end pattern {pattern:?}"
            );
        }
        self.routes.push(Route {
            method,
            pattern: Arc::from(pattern),
            segments,
            handler: Box::new(handler),
        });
        self
    }

    /// Adds middleware; the first added is the outermost.
    pub fn wrap(&mut self, middleware: impl Middleware + 'static) -> &mut Router {
        self.middleware.push(Box::new(middleware));
        self
    }

    /// Answers `request`: through the middleware, to the matching route.
    pub fn dispatch(&mut self, request: &Request<'_, '_>) -> Response {
        let routes = &mut self.routes;
        run_chain(&mut self.middleware, request, &mut |request| {
            endpoint(routes, request)
        })
    }
}

/// Which route answers, and its response.
fn endpoint(routes: &mut [Route], request: &Request<'_, '_>) -> (Response, Matched) {
    let path = request.path();
    let method = match request.method {
        Method::Head => Method::Get,
        other => other,
    };
    let mut allowed: Vec<Method> = Vec::new();
    let mut found = None;
    for (i, route) in routes.iter().enumerate() {
        if let Some(params) = match_path(&route.segments, path) {
            if route.method == method && found.is_none() {
                found = Some((i, params));
            } else if !allowed.contains(&route.method) {
                allowed.push(route.method);
            }
        }
    }
    match found {
        Some((i, params)) => {
            let route = &mut routes[i];
            let response = (route.handler)(request, &params);
            (response, Matched::Route(route.pattern.clone()))
        }
        None if allowed.is_empty() => (
            Response::text(404, &b"404 Not Found\n"[..]),
            Matched::NotFound,
        ),
        None => {
            if allowed.contains(&Method::Get) {
                allowed.push(Method::Head);
            }
            let allow: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
            let response = Response::text(405, &b"405 Method Not Allowed\n"[..])
                .header("Allow", allow.join(", "));
            (response, Matched::MethodNotAllowed)
        }
    }
}

fn split(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

/// The parameters of `path` under `segments`, if it matches.
fn match_path(segments: &[Segment], path: &str) -> Option<Params> {
    let mut params = Params::default();
    let mut parts = split(path);
    for (i, segment) in segments.iter().enumerate() {
        match segment {
            Segment::Tail(name) => {
                let rest: Vec<&str> = parts.by_ref().collect();
                params.pairs.push((name.clone(), rest.join("/")));
                debug_assert_eq!(i + 1, segments.len());
                return Some(params);
            }
            Segment::Literal(literal) => {
                if parts.next()? != literal {
                    return None;
                }
            }
            Segment::Param(name) => {
                let value = parts.next()?;
                params.pairs.push((name.clone(), value.to_string()));
            }
        }
    }
    parts.next().is_none().then_some(params)
}

impl App for Router {
    fn handle(&mut self, request: &Request<'_, '_>, reply: &mut Reply<'_>) {
        let response = self.dispatch(request);
        reply.send(&response);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request<'b>(
        method: Method,
        target: &'b str,
        headers: &'b [httparse::Header<'b>],
    ) -> Request<'b, 'b> {
        Request {
            method,
            target,
            version: 1,
            headers,
            body: std::borrow::Cow::Borrowed(&[]),
            keep_alive: true,
        }
    }

    fn router() -> Router {
        let mut r = Router::new();
        r.route(Method::Get, "/", |_, _| Response::text(200, &b"root"[..]))
            .route(Method::Get, "/users/:id", |_, p| {
                Response::text(200, format!("get {}", p.get("id").unwrap()).into_bytes())
            })
            .route(Method::Delete, "/users/:id", |_, p| {
                Response::text(200, format!("delete {}", p.get("id").unwrap()).into_bytes())
            })
            .route(Method::Get, "/users/:id/posts/:post", |_, p| {
                let text = format!("{}/{}", p.get("id").unwrap(), p.get("post").unwrap());
                Response::text(200, text.into_bytes())
            })
            .route(Method::Get, "/files/*path", |_, p| {
                Response::text(
                    200,
                    format!("file {:?}", p.get("path").unwrap()).into_bytes(),
                )
            });
        r
    }

    fn answer(r: &mut Router, method: Method, target: &str) -> (u16, String, Option<String>) {
        let response = r.dispatch(&request(method, target, &[]));
        let allow = response
            .headers
            .iter()
            .find(|(n, _)| n == "Allow")
            .map(|(_, v)| v.to_string());
        (
            response.status,
            String::from_utf8_lossy(&response.body).into_owned(),
            allow,
        )
    }

    #[test]
    fn routes_params_and_tails() {
        let mut r = router();
        let cases = [
            (Method::Get, "/", 200, "root"),
            (Method::Get, "/users/7", 200, "get 7"),
            (Method::Get, "/users/7?x=1", 200, "get 7"),
            (Method::Head, "/users/7", 200, "get 7"),
            (Method::Delete, "/users/42", 200, "delete 42"),
            (Method::Get, "/users/7/posts/9", 200, "7/9"),
            (Method::Get, "/files/a/b/c.txt", 200, "file \"a/b/c.txt\""),
            (Method::Get, "/files", 200, "file \"\""),
            (Method::Get, "/users", 404, "404 Not Found\n"),
            (Method::Get, "/users/7/extra", 404, "404 Not Found\n"),
            (Method::Get, "/nope", 404, "404 Not Found\n"),
        ];
        for (method, target, status, body) in cases {
            let (got_status, got_body, _) = answer(&mut r, method, target);
            assert_eq!(
                (got_status, got_body.as_str()),
                (status, body),
                "{method:?} {target}"
            );
        }
    }

    #[test]
    fn wrong_method_is_405_with_allow() {
        let mut r = router();
        let (status, _, allow) = answer(&mut r, Method::Post, "/users/7");
        assert_eq!(status, 405);
        assert_eq!(allow.as_deref(), Some("GET, DELETE, HEAD"));
        let (status, _, allow) = answer(&mut r, Method::Put, "/");
        assert_eq!((status, allow.as_deref()), (405, Some("GET, HEAD")));
    }

    #[test]
    #[should_panic(expected = "must end pattern")]
    fn a_tail_in_the_middle_is_a_bug() {
        Router::new().route(Method::Get, "/a/*rest/b", |_, _| {
            Response::text(200, &b""[..])
        });
    }
}
