//! Routing by method and path, with parameters (`/users/:id`) and a
//! wildcard tail (`/files/*path`), and middleware around the handlers.
//!
//! The router answers 404 when no route's path matches (or hands the
//! request to a [`fallback`](Router::fallback)) and 405, with an `Allow`
//! header, when a path matches under other methods. HEAD is served by a
//! GET route (the body is dropped by the encoder). Paths match exactly: a
//! trailing or doubled slash makes another path.
//!
//! A route answers in one of three ways: a handler returning a
//! [`Response`] ([`Router::route`]); a fixed response encoded once a
//! second and copied out for each request ([`Router::cached`], the fast
//! path of a hello-world); or a handler writing to the [`Reply`] itself
//! ([`Router::reply`]), for what needs the connection: files sent with
//! `sendfile`, the reactor's counters. Middleware sees every kind's
//! response; without middleware, cached and reply routes skip building
//! a `Response`.
//!
//! [`Router::count_into`] counts every route's requests by status class
//! and duration ([`route_stats`](crate::route_stats)), cached routes
//! included, without a middleware layer and so without building a
//! `Response` for them.
//!
//! ```
//! use http::router::{Params, Router};
//! use http::{Method, Request, Response};
//!
//! let mut router = Router::new();
//! router.route(Method::Get, "/users/:id", |_req: &Request<'_, '_>, params: &Params| {
//!     Response::text(200, format!("user {}\n", params.get("id").unwrap_or("?")).into_bytes())
//! });
//! router.cached(Method::Get, "/", Response::text(200, &b"Hello, World!"[..]));
//! ```

use std::sync::Arc;

use crate::middleware::{run_chain, Middleware};
use crate::parse::{Method, Request};
use crate::response::{CachedResponse, Response};
use crate::route_stats::{Counters, RouteStats, RouteTable};
use crate::server::Reply;

mod answer;

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

/// A route handler that answers through the [`Reply`] itself.
pub type ReplyFn = Box<dyn FnMut(&Request<'_, '_>, &Params, &mut Reply<'_>)>;

/// What answers the requests no route's path matches.
pub type FallbackFn = Box<dyn FnMut(&Request<'_, '_>, &mut Reply<'_>)>;

/// How a route answers.
enum Endpoint {
    Respond(HandlerFn),
    /// With its counter once the router counts ([`Router::count_into`]):
    /// held here so the fast path bumps it without a table look-up.
    Cached(CachedResponse, Option<Arc<Counters>>),
    Reply(ReplyFn),
}

struct Route {
    method: Method,
    pattern: Arc<str>,
    /// The whole pattern when it has no parameter: matched by one string
    /// comparison.
    literal: Option<Box<str>>,
    segments: Vec<Segment>,
    endpoint: Endpoint,
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
    /// Answers requests whose path no route matches (404 without one).
    fallback: Option<FallbackFn>,
    /// This router's counters, if it counts ([`Router::count_into`]).
    counts: Option<Arc<RouteTable>>,
}

impl Router {
    pub fn new() -> Router {
        Router::default()
    }

    /// Adds a route. Patterns are `/`-separated; `:name` captures one
    /// (non-empty) segment, `*name` (last) captures the rest of the path.
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
        self.add(method, pattern, Endpoint::Respond(Box::new(handler)))
    }

    /// Adds a route that always answers `response`, encoded once a second
    /// (when the `Date` changes) and copied out for each HTTP/1.1
    /// keep-alive request ([`CachedResponse`]).
    pub fn cached(&mut self, method: Method, pattern: &str, response: Response) -> &mut Router {
        self.add(
            method,
            pattern,
            Endpoint::Cached(CachedResponse::new(response), None),
        )
    }

    /// Adds a route whose handler answers through the [`Reply`]: with
    /// [`Reply::send_file`], [`Reply::send_cached`], or reading the
    /// reactor's counters. It must answer exactly once.
    pub fn reply(
        &mut self,
        method: Method,
        pattern: &str,
        handler: impl FnMut(&Request<'_, '_>, &Params, &mut Reply<'_>) + 'static,
    ) -> &mut Router {
        self.add(method, pattern, Endpoint::Reply(Box::new(handler)))
    }

    /// Answers, through the [`Reply`], every request whose path no route
    /// matches, instead of the 404 (a path some route takes under other
    /// methods still gets the 405): static files under the routes, say.
    pub fn fallback(
        &mut self,
        handler: impl FnMut(&Request<'_, '_>, &mut Reply<'_>) + 'static,
    ) -> &mut Router {
        self.fallback = Some(Box::new(handler));
        self
    }

    /// Counts every request in `stats`, by route (method and pattern) and
    /// status class, with its duration (see [`route_stats`](crate::route_stats)
    /// for what is timed and how); the misses under `(fallback)`,
    /// `(not found)` and `(method not allowed)`, and answers a middleware
    /// layer gave without calling `next` under `(middleware)`. One `stats` may serve the
    /// routers of several workers: they are summed by route. Requests
    /// answered through [`App::handle`](crate::server::App::handle) are counted, not those of
    /// [`Router::dispatch`] (which has no connection to time against).
    ///
    /// # Panics
    /// If called twice, or if a route is added after it: the counters are
    /// laid out for the routes declared so far (a start-up bug).
    pub fn count_into(&mut self, stats: &RouteStats) -> &mut Router {
        self.count_into_as(stats, 0)
    }

    /// [`count_into`](Router::count_into) as worker `worker` of a server
    /// whose workers share `stats`: the label of its series in
    /// [`RouteStats::by_worker`].
    ///
    /// # Panics
    /// As [`count_into`](Router::count_into).
    pub fn count_into_as(&mut self, stats: &RouteStats, worker: usize) -> &mut Router {
        assert!(self.counts.is_none(), "count_into called twice");
        let routes = self
            .routes
            .iter()
            .map(|r| {
                let fixed = match &r.endpoint {
                    Endpoint::Cached(cached, _) => Some(cached.status()),
                    _ => None,
                };
                (r.method.as_str(), r.pattern.clone(), fixed)
            })
            .collect();
        let table = stats.register(routes, worker);
        for (i, route) in self.routes.iter_mut().enumerate() {
            if let Endpoint::Cached(_, hits) = &mut route.endpoint {
                *hits = Some(table.counters(i));
            }
        }
        self.counts = Some(table);
        self
    }

    fn add(&mut self, method: Method, pattern: &str, endpoint: Endpoint) -> &mut Router {
        assert!(
            self.counts.is_none(),
            "route {pattern:?} added after count_into"
        );
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
        let literal = segments
            .iter()
            .all(|s| matches!(s, Segment::Literal(_)))
            .then(|| Box::from(pattern));
        self.routes.push(Route {
            method,
            pattern: Arc::from(pattern),
            literal,
            segments,
            endpoint,
        });
        self
    }

    /// Adds middleware; the first added is the outermost.
    pub fn wrap(&mut self, middleware: impl Middleware + 'static) -> &mut Router {
        self.middleware.push(Box::new(middleware));
        self
    }

    /// Answers `request`: through the middleware, to the matching route,
    /// as a [`Response`] (a reply route's or the fallback's answer cannot
    /// be one: 500). [`App::handle`](crate::server::App::handle) is the full way, for the server.
    pub fn dispatch(&mut self, request: &Request<'_, '_>) -> Response {
        let routes = &mut self.routes;
        run_chain(
            &mut self.middleware,
            request,
            &mut |request| match find(routes, request) {
                Found::Route(i, params) => {
                    let route = &mut routes[i];
                    let response = match &mut route.endpoint {
                        Endpoint::Respond(handler) => handler(request, &params),
                        Endpoint::Cached(cached, _) => cached.response().clone(),
                        Endpoint::Reply(_) => Response::text(500, &b"a reply route\n"[..]),
                    };
                    (response, Matched::Route(route.pattern.clone()))
                }
                Found::NotAllowed(allow) => (not_allowed(&allow), Matched::MethodNotAllowed),
                Found::Nothing => (not_found(), Matched::NotFound),
            },
        )
    }
}

/// Which route takes a request.
enum Found {
    /// The first route for the path and method, and the path's parameters.
    Route(usize, Params),
    /// The path's routes are for other methods: these.
    NotAllowed(Vec<Method>),
    /// No route's path matches.
    Nothing,
}

/// The route for `request`: the first whose path and method match.
fn find(routes: &[Route], request: &Request<'_, '_>) -> Found {
    let path = request.path();
    match first(routes, request.method, path) {
        Some(i) => Found::Route(i, routes[i].params(path)),
        None => missed(routes, path),
    }
}

/// The first route for `method` (HEAD served by GET) and `path`: the hot
/// path of every request, kept to a loop of comparisons.
#[inline(always)]
fn first(routes: &[Route], method: Method, path: &str) -> Option<usize> {
    let method = match method {
        Method::Head => Method::Get,
        other => other,
    };
    for (i, route) in routes.iter().enumerate() {
        if route.method == method && route.is_match(path) {
            return Some(i);
        }
    }
    None
}

/// No route for the method: a second pass, off the hot path, for the
/// 405's methods.
#[inline(never)]
fn missed(routes: &[Route], path: &str) -> Found {
    let mut allowed: Vec<Method> = Vec::new();
    for route in routes {
        if !allowed.contains(&route.method) && route.is_match(path) {
            allowed.push(route.method);
        }
    }
    if allowed.is_empty() {
        Found::Nothing
    } else {
        Found::NotAllowed(allowed)
    }
}

impl Route {
    /// Whether `path` matches this route's pattern.
    #[inline(always)]
    fn is_match(&self, path: &str) -> bool {
        match &self.literal {
            // A byte loop: paths are short, and a call to `memcmp` costs
            // more than the comparison.
            Some(literal) => literal.bytes().eq(path.bytes()),
            None => match_path(&self.segments, path).is_some(),
        }
    }

    /// The parameters of a matching `path`.
    fn params(&self, path: &str) -> Params {
        route_params(&self.literal, &self.segments, path)
    }
}

/// A matching path's parameters (split borrows: the endpoint is borrowed
/// mutably beside them).
fn route_params(literal: &Option<Box<str>>, segments: &[Segment], path: &str) -> Params {
    match literal {
        Some(_) => Params::default(),
        None => match_path(segments, path).unwrap_or_default(),
    }
}

fn not_found() -> Response {
    Response::text(404, &b"404 Not Found\n"[..])
}

fn not_allowed(allowed: &[Method]) -> Response {
    let mut allow: Vec<&str> = allowed.iter().map(|m| m.as_str()).collect();
    if allowed.contains(&Method::Get) && !allowed.contains(&Method::Head) {
        allow.push(Method::Head.as_str());
    }
    Response::text(405, &b"405 Method Not Allowed\n"[..]).header("Allow", allow.join(", "))
}

/// The segments of a path or pattern after its leading `/`: `/` is one
/// empty segment, and a trailing or doubled slash gives an empty one, so
/// `/a/` is not `/a`.
fn split(path: &str) -> std::str::Split<'_, char> {
    path.strip_prefix('/').unwrap_or(path).split('/')
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
                let value = parts.next().filter(|v| !v.is_empty())?;
                params.pairs.push((name.clone(), value.to_string()));
            }
        }
    }
    parts.next().is_none().then_some(params)
}

#[cfg(test)]
mod tests;
