//! Middleware: code around every request, as a chain. Each layer gets the
//! request and a `next` it may call (or not) to run the layers inside it
//! and the route; it can change the response on the way out.
//!
//! Shipped layers: [`RequestLog`], [`RequestId`]. Per-route statistics
//! are not a layer but the router's own counters
//! ([`Router::count_into`](crate::router::Router::count_into)): a layer
//! sees `Response`s, which a cached route does not build.

use std::time::Instant;

use crate::parse::Request;
use crate::response::Response;
use crate::router::Matched;

/// The rest of the chain, from a layer's point of view.
pub type Next<'n> = &'n mut dyn FnMut(&Request<'_, '_>) -> (Response, Matched);

/// One layer of the chain.
pub trait Middleware {
    /// Handles `request`, normally by calling `next` and returning (or
    /// amending) its response.
    fn call(&mut self, request: &Request<'_, '_>, next: Next<'_>) -> (Response, Matched);
}

/// Runs `layers` around `endpoint`, outermost first.
pub(crate) fn run_chain(
    layers: &mut [Box<dyn Middleware>],
    request: &Request<'_, '_>,
    endpoint: &mut dyn FnMut(&Request<'_, '_>) -> (Response, Matched),
) -> Response {
    chain(layers, request, endpoint).0
}

fn chain(
    layers: &mut [Box<dyn Middleware>],
    request: &Request<'_, '_>,
    endpoint: &mut dyn FnMut(&Request<'_, '_>) -> (Response, Matched),
) -> (Response, Matched) {
    match layers.split_first_mut() {
        None => endpoint(request),
        Some((layer, inner)) => layer.call(request, &mut |r| chain(inner, r, endpoint)),
    }
}

/// Logs each request through `tracing` (an `INFO` event of target
/// `http::request`): method, target, status, route and time.
#[derive(Default)]
pub struct RequestLog;

impl Middleware for RequestLog {
    fn call(&mut self, request: &Request<'_, '_>, next: Next<'_>) -> (Response, Matched) {
        let started = Instant::now();
        let (response, matched) = next(request);
        tracing::info!(
            target: "http::request",
            "{} {} {} {:?} {}µs",
            request.method.as_str(),
            request.target,
            response.status,
            matched,
            started.elapsed().as_micros()
        );
        (response, matched)
    }
}

/// Gives every response an `X-Request-Id`: the client's if it sent one
/// (so a trace crosses services), else a fresh one, `PREFIX-N` with `N`
/// counting up in hex. The prefix is what makes fresh ids unique beyond
/// one layer: give each worker of each process its own (see
/// [`RequestId::with_prefix`]); [`RequestId::default`] uses `tenk`.
pub struct RequestId {
    prefix: String,
    next: u64,
}

impl Default for RequestId {
    fn default() -> RequestId {
        RequestId::with_prefix("tenk")
    }
}

impl RequestId {
    /// Fresh ids are `{prefix}-{n:x}`.
    pub fn with_prefix(prefix: impl Into<String>) -> RequestId {
        RequestId {
            prefix: prefix.into(),
            next: 0,
        }
    }
}

impl Middleware for RequestId {
    fn call(&mut self, request: &Request<'_, '_>, next: Next<'_>) -> (Response, Matched) {
        let id = match request
            .header_str("x-request-id")
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        {
            Some(theirs) => theirs.to_string(),
            None => {
                self.next += 1;
                format!("{}-{:x}", self.prefix, self.next)
            }
        };
        let (response, matched) = next(request);
        (response.header("X-Request-Id", id), matched)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::Method;
    use crate::router::Router;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// Records the order layers run in.
    struct Trace(Rc<RefCell<Vec<String>>>, &'static str);

    impl Middleware for Trace {
        fn call(&mut self, request: &Request<'_, '_>, next: Next<'_>) -> (Response, Matched) {
            self.0.borrow_mut().push(format!("{} in", self.1));
            let (response, matched) = next(request);
            self.0.borrow_mut().push(format!("{} out", self.1));
            (response.header("X-Layer", self.1), matched)
        }
    }

    fn get<'b>(target: &'b str, headers: &'b [httparse::Header<'b>]) -> Request<'b, 'b> {
        Request {
            method: Method::Get,
            target,
            version: 1,
            headers,
            body: std::borrow::Cow::Borrowed(&[]),
            keep_alive: true,
        }
    }

    #[test]
    fn layers_run_outermost_first_and_unwind_in_reverse() {
        let trace = Rc::new(RefCell::new(Vec::new()));
        let mut router = Router::new();
        let t = trace.clone();
        router
            .route(Method::Get, "/", move |_, _| {
                t.borrow_mut().push("handler".into());
                Response::text(200, &b"ok"[..])
            })
            .wrap(Trace(trace.clone(), "outer"))
            .wrap(Trace(trace.clone(), "inner"));
        let response = router.dispatch(&get("/", &[]));
        assert_eq!(
            *trace.borrow(),
            ["outer in", "inner in", "handler", "inner out", "outer out"]
        );
        let layers: Vec<&str> = response
            .headers
            .iter()
            .filter(|(n, _)| n == "X-Layer")
            .map(|(_, v)| v.as_ref())
            .collect();
        assert_eq!(layers, ["inner", "outer"]);
    }

    #[test]
    fn request_ids_are_fresh_or_passed_through() {
        let mut router = Router::new();
        router
            .route(Method::Get, "/", |_, _| Response::text(200, &b"ok"[..]))
            .wrap(RequestId::default());
        let id = |r: &Response| {
            r.headers
                .iter()
                .find(|(n, _)| n == "X-Request-Id")
                .map(|(_, v)| v.to_string())
        };
        let a = id(&router.dispatch(&get("/", &[])));
        let b = id(&router.dispatch(&get("/", &[])));
        assert!(a.is_some() && a != b, "{a:?} {b:?}");
        let theirs = [httparse::Header {
            name: "X-Request-Id",
            value: b"abc-123",
        }];
        assert_eq!(
            id(&router.dispatch(&get("/", &theirs))).as_deref(),
            Some("abc-123")
        );
    }
}
