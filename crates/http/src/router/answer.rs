//! Answering through the [`Reply`]: straight into it without middleware
//! (the fast path: a cached route is copied out, no `Response` built), or
//! through the chain, which works on `Response`s; either way counted when
//! the router counts ([`Router::count_into`]).

use std::sync::Arc;
use std::time::Instant;

use super::{find, first};
use super::{missed, not_allowed, not_found, route_params, Endpoint, Found, Matched, Router};
use crate::middleware::run_chain;
use crate::parse::Request;
use crate::route_stats::RouteTable;
use crate::server::{App, Reply};

/// Where a request went, for the counters: a route's index, or a miss
/// (counted past the routes, in the order of `route_stats::MISSES`).
#[derive(Clone, Copy)]
enum Hit {
    Route(usize),
    Fallback,
    NotFound,
    NotAllowed,
    Layer,
}

impl App for Router {
    #[inline]
    fn handle(&mut self, request: &Request<'_, '_>, reply: &mut Reply<'_>) {
        if !self.middleware.is_empty() {
            self.handle_through_middleware(request, reply);
            return;
        }
        // No middleware: each kind answers straight into the reply.
        let path = request.path();
        if let Some(i) = first(&self.routes, request.method, path) {
            let route = &mut self.routes[i];
            match &mut route.endpoint {
                Endpoint::Cached(cached, hits) => {
                    reply.send_cached(cached);
                    // The fast path: one counter bump, no clock read.
                    if let Some(hits) = hits {
                        hits.count_untimed();
                    }
                }
                Endpoint::Respond(handler) => {
                    let params = route_params(&route.literal, &route.segments, path);
                    reply.send(&handler(request, &params));
                    count(&self.counts, Hit::Route(i), reply);
                }
                Endpoint::Reply(handler) => {
                    let params = route_params(&route.literal, &route.segments, path);
                    handler(request, &params, reply);
                    count(&self.counts, Hit::Route(i), reply);
                }
            }
            return;
        }
        let hit = match missed(&self.routes, path) {
            Found::Route(..) | Found::Nothing => match &mut self.fallback {
                Some(fallback) => {
                    fallback(request, reply);
                    Hit::Fallback
                }
                None => {
                    reply.send(&not_found());
                    Hit::NotFound
                }
            },
            Found::NotAllowed(allow) => {
                reply.send(&not_allowed(&allow));
                Hit::NotAllowed
            }
        };
        count(&self.counts, hit, reply);
    }
}

/// Counts an answer `reply` holds (an unanswered request as the 500 the
/// server will send), timed from the start of the pass to now.
fn count(counts: &Option<Arc<RouteTable>>, hit: Hit, reply: &Reply<'_>) {
    let Some(counts) = counts else { return };
    let routes = counts.routes();
    let index = match hit {
        Hit::Route(i) => i,
        Hit::Fallback => routes,
        Hit::NotFound => routes + 1,
        Hit::NotAllowed => routes + 2,
        Hit::Layer => routes + 3,
    };
    let took = Instant::now().saturating_duration_since(reply.pass());
    counts.count(index, reply.status(), took);
}

impl Router {
    /// The chain runs on `Response`s: what a reply route or the fallback
    /// writes is captured as one (a file stays aside, to be sent after
    /// the head the chain returns), and the chain's answer is sent.
    fn handle_through_middleware(&mut self, request: &Request<'_, '_>, reply: &mut Reply<'_>) {
        let routes = &mut self.routes;
        let fallback = &mut self.fallback;
        let reply_cell = std::cell::RefCell::new(&mut *reply);
        // What the chain reached, counted with the status the layers
        // made of its answer; `Layer` if a layer answered on its own.
        let mut hit = Hit::Layer;
        let response = run_chain(&mut self.middleware, request, &mut |request| {
            let mut reply = reply_cell.borrow_mut();
            match find(routes, request) {
                Found::Route(i, params) => {
                    hit = Hit::Route(i);
                    let route = &mut routes[i];
                    let response = match &mut route.endpoint {
                        Endpoint::Respond(handler) => handler(request, &params),
                        Endpoint::Cached(cached, _) => cached.response().clone(),
                        Endpoint::Reply(handler) => {
                            reply.capture(|reply| handler(request, &params, reply))
                        }
                    };
                    (response, Matched::Route(route.pattern.clone()))
                }
                Found::NotAllowed(allow) => {
                    hit = Hit::NotAllowed;
                    (not_allowed(&allow), Matched::MethodNotAllowed)
                }
                Found::Nothing => match fallback {
                    Some(fallback) => {
                        hit = Hit::Fallback;
                        (
                            reply.capture(|reply| fallback(request, reply)),
                            Matched::NotFound,
                        )
                    }
                    None => {
                        hit = Hit::NotFound;
                        (not_found(), Matched::NotFound)
                    }
                },
            }
        });
        let reply = reply_cell.into_inner();
        reply.send_captured(&response);
        count(&self.counts, hit, reply);
    }
}
