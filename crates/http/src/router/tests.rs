//! The router's table tests: matching, parameters, 404 and 405.

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
fn paths_match_exactly() {
    let mut r = router();
    for target in ["/users/7/", "//users/7", "/users//7", "/users/", "//"] {
        let (status, _, _) = answer(&mut r, Method::Get, target);
        assert_eq!(status, 404, "{target}");
    }
    assert_eq!(answer(&mut r, Method::Get, "/files/").1, "file \"\"");
}

#[test]
fn cached_routes_answer_their_response() {
    let mut r = Router::new();
    r.cached(Method::Get, "/hi", Response::text(200, &b"hi"[..]));
    assert_eq!(answer(&mut r, Method::Get, "/hi"), (200, "hi".into(), None));
    let (status, _, allow) = answer(&mut r, Method::Post, "/hi");
    assert_eq!((status, allow.as_deref()), (405, Some("GET, HEAD")));
}

#[test]
#[should_panic(expected = "must end pattern")]
fn a_tail_in_the_middle_is_a_bug() {
    Router::new().route(Method::Get, "/a/*rest/b", |_, _| {
        Response::text(200, &b""[..])
    });
}
