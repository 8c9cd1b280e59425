//! A small JSON API on the router: an in-memory to-do list.
//!
//! ```sh
//! cargo run -p tenk-http --example json_api -- 127.0.0.1:7100
//! curl -s localhost:7100/todos -d '{"title":"write docs"}'
//! curl -s localhost:7100/todos
//! curl -s localhost:7100/todos/1
//! curl -s -X DELETE localhost:7100/todos/1
//! curl -s localhost:7100/stats        # per-route figures the router counts
//! curl -s localhost:7100/whoami -A $'caf\xe9'   # a header value with obs-text
//! ```
//!
//! Routes share state through `Rc<RefCell<..>>`: the reactor is one
//! thread, so no lock is needed. Middleware: a request log and request
//! ids; per-route statistics are the router's own (`count_into`).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use http::middleware::{RequestId, RequestLog};
use http::route_stats::RouteStats;
use http::router::Router;
use http::{HttpConfig, HttpServer, Method, Response};
use reactor::{Config, Reactor};
use serde_json::{json, Value};

#[derive(Default)]
struct Todos {
    next_id: u64,
    items: BTreeMap<u64, String>,
}

fn json_response(status: u16, value: &Value) -> Response {
    Response::new(status, "application/json", value.to_string().into_bytes())
}

fn error(status: u16, message: &str) -> Response {
    json_response(status, &json!({ "error": message }))
}

fn router() -> Router {
    let todos = Rc::new(RefCell::new(Todos::default()));
    let stats = Arc::new(RouteStats::new());
    let mut router = Router::new();

    let list = todos.clone();
    router.route(Method::Get, "/todos", move |_, _| {
        let items: Vec<Value> = list
            .borrow()
            .items
            .iter()
            .map(|(id, title)| json!({ "id": id, "title": title }))
            .collect();
        json_response(200, &Value::Array(items))
    });

    let create = todos.clone();
    router.route(Method::Post, "/todos", move |request, _| {
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return error(400, "body must be JSON");
        };
        let Some(title) = body.get("title").and_then(Value::as_str) else {
            return error(422, "\"title\" (a string) is required");
        };
        let mut todos = create.borrow_mut();
        todos.next_id += 1;
        let id = todos.next_id;
        todos.items.insert(id, title.to_string());
        json_response(201, &json!({ "id": id, "title": title }))
    });

    let get = todos.clone();
    router.route(Method::Get, "/todos/:id", move |_, params| {
        let id = params.get("id").and_then(|v| v.parse::<u64>().ok());
        match id.and_then(|id| get.borrow().items.get(&id).cloned().map(|t| (id, t))) {
            Some((id, title)) => json_response(200, &json!({ "id": id, "title": title })),
            None => error(404, "no such to-do"),
        }
    });

    let delete = todos;
    router.route(Method::Delete, "/todos/:id", move |_, params| {
        let id = params.get("id").and_then(|v| v.parse::<u64>().ok());
        match id.and_then(|id| delete.borrow_mut().items.remove(&id)) {
            Some(_) => Response::new(204, "application/json", &b""[..]),
            None => error(404, "no such to-do"),
        }
    });

    // Header values are bytes, which may not be UTF-8 (obs-text from an
    // old client): shown lossily, never refused.
    router.route(Method::Get, "/whoami", |request, _| {
        let agent = request.header_lossy("user-agent").unwrap_or_default();
        json_response(200, &json!({ "user_agent": agent }))
    });

    let report = stats.clone();
    router.route(Method::Get, "/stats", move |_, _| {
        let routes: serde_json::Map<String, Value> = report
            .snapshot()
            .iter()
            .map(|f| {
                let value = json!({
                    "requests": f.requests(),
                    "errors": f.responses[5],
                    "total_us": f.sum_ns / 1000,
                });
                (format!("{} {}", f.method, f.route), value)
            })
            .collect();
        json_response(200, &Value::Object(routes))
    });

    router
        .wrap(RequestLog)
        .wrap(RequestId::default())
        .count_into(&stats);
    router
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7100".into())
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{e}")))?;
    let signals = reactor::signal::block(&[reactor::signal::SIGINT, reactor::signal::SIGTERM])?;
    // The request log (`RequestLog`) goes through `tracing`: shown here.
    tracing_subscriber::fmt().with_env_filter("info").init();
    let http_config = HttpConfig::default();
    let config = Config {
        max_input: http_config.reactor_max_input(),
        ..Config::default()
    };
    let mut reactor = Reactor::new(config, HttpServer::new(router(), http_config))?;
    let listener = reactor.io().listen(addr, 1024)?;
    reactor.io().watch_signals(&signals)?;
    println!(
        "json_api listening on {}",
        reactor.io().local_addr(listener)?
    );
    reactor.run()?;
    Ok(())
}
