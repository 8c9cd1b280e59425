//! Static files of `tenk serve http --root DIR`, as real clients see them:
//! content and types, 304 on both validators, 206/416 ranges, HEAD,
//! `index.html` for directories, a 100 MiB file to a slow reader (memory
//! flat, every byte delivered, resumed on EPOLLOUT), traversal attempts
//! that must never leak a file outside the root, and a file that shrinks
//! while it is being sent.
//!
//! Every test builds its own root under the system temp directory (a
//! unique name, removed on drop). Client sockets have read and write
//! timeouts of [`util::PROMPTLY`]; the data-path scenarios with a slow
//! reader run in every trigger mode.

#[macro_use]
mod util;

use std::fs::{self, File};
use std::io::{ErrorKind, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use util::http_client::{get, read_head, read_response, Client};
use util::{pattern, Server, PROMPTLY};

every_trigger!([edge, level, oneshot] => [
    large_file_to_a_slow_reader_keeps_memory_flat,
    file_truncated_while_sent_closes_the_connection,
    regression_file_shrunk_mid_chunk_is_not_left_stalled,
]);

/// A directory under the system temp directory, unique to this test,
/// removed with everything in it on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let path = std::env::temp_dir().join(format!(
            "tenk-static-{tag}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    /// Writes `contents` to `relative`, creating directories on the way.
    fn write(&self, relative: &str, contents: &[u8]) -> PathBuf {
        let path = self.0.join(relative);
        fs::create_dir_all(path.parent().unwrap()).expect("create parent");
        fs::write(&path, contents).expect("write file");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn serve(root: &Path, trigger: &str) -> Server {
    let root = root.to_str().expect("UTF-8 temp path");
    let server = Server::start(
        &[
            "serve",
            "http",
            "--port",
            "0",
            "--trigger",
            trigger,
            "--root",
            root,
        ],
        |_| {},
    );
    assert!(
        server.banner.starts_with("tenk http listening on "),
        "unexpected banner: {:?}",
        server.banner
    );
    server
}

/// Every file answers with its bytes and the Content-Type its extension
/// gives, with validators and `Accept-Ranges`; an empty file is a plain
/// empty 200. Requests go one at a time and then pipelined in one write
/// (file bodies interleaved with in-memory answers), on one connection.
#[test]
fn files_are_served_with_their_content_types() {
    let root = TempDir::new("types");
    let files: Vec<(&str, Vec<u8>, &str)> = vec![
        ("index.html", b"<h1>home</h1>\n".to_vec(), "text/html"),
        ("style.css", b"body { color: red }\n".to_vec(), "text/css"),
        ("app.js", b"console.log(1);\n".to_vec(), "text/javascript"),
        ("data.json", b"{\"a\":1}".to_vec(), "application/json"),
        ("notes.txt", b"plain text\n".to_vec(), "text/plain"),
        ("pic.png", pattern(1, 70_000), "image/png"),
        ("doc.pdf", pattern(2, 3000), "application/pdf"),
        (
            "blob.tenkunknown",
            pattern(3, 10),
            "application/octet-stream",
        ),
        ("noext", pattern(4, 5), "application/octet-stream"),
        ("with space.txt", b"spaced".to_vec(), "text/plain"),
        ("empty.txt", Vec::new(), "text/plain"),
    ];
    for (name, contents, _) in &files {
        root.write(name, contents);
    }
    let server = serve(root.path(), "edge");
    let mut client = Client::connect(server.addr);
    for (name, contents, content_type) in &files {
        let path = format!("/{}", name.replace(' ', "%20"));
        let r = client.get(&path);
        r.expect(200, contents);
        assert_eq!(r.header("content-type"), Some(*content_type), "{name}");
        assert_eq!(r.header("accept-ranges"), Some("bytes"), "{name}");
        let etag = r.header("etag").expect("ETag");
        assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");
        let modified = r.header("last-modified").expect("Last-Modified");
        assert!(httpdate(modified).is_some(), "{modified}");
    }
    // Pipelined: every answer in order, bodies intact.
    let mut batch = Vec::new();
    for (name, _, _) in &files {
        batch.extend(get(&format!("/{}", name.replace(' ', "%20"))));
        batch.extend(get("/health"));
    }
    client.send(&batch);
    for (name, contents, _) in &files {
        let r = read_response(&mut client.reader, false);
        assert_eq!(r.body, *contents, "pipelined {name}");
        read_response(&mut client.reader, false).expect(200, b"{\"status\":\"ok\"}");
    }
    client.get("/missing.txt").expect(404, b"404 Not Found\n");
}

fn httpdate(text: &str) -> Option<SystemTime> {
    // Only the IMF-fixdate form the server sends: "Sun, 06 Nov 1994 08:49:37 GMT".
    let parts: Vec<&str> = text.split([' ', ':']).collect();
    if parts.len() != 8 || parts[7] != "GMT" {
        return None;
    }
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = months.iter().position(|m| *m == parts[2])? as i64 + 1;
    let (day, year): (i64, i64) = (parts[1].parse().ok()?, parts[3].parse().ok()?);
    let (h, m, s): (u64, u64, u64) = (
        parts[4].parse().ok()?,
        parts[5].parse().ok()?,
        parts[6].parse().ok()?,
    );
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(UNIX_EPOCH + Duration::from_secs(days as u64 * 86_400 + h * 3600 + m * 60 + s))
}

/// If-None-Match (exact, weak, a list, `*`) and If-Modified-Since (at or
/// after the modification) give 304 with the validators and no body;
/// If-None-Match that does not match wins over a matching
/// If-Modified-Since; a rewritten file has a new ETag.
#[test]
fn conditional_requests_get_304() {
    let root = TempDir::new("cond");
    let path = root.write("page.html", b"<p>version 1</p>");
    let modified = UNIX_EPOCH + Duration::from_secs(1_600_000_000); // 2020-09-13 12:26:40
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    let server = serve(root.path(), "edge");
    let mut client = Client::connect(server.addr);
    let r = client.get("/page.html");
    r.expect(200, b"<p>version 1</p>");
    let etag = r.header("etag").unwrap().to_string();
    let last_modified = r.header("last-modified").unwrap().to_string();
    assert_eq!(last_modified, "Sun, 13 Sep 2020 12:26:40 GMT");

    let not_modified = [
        format!("If-None-Match: {etag}\r\n"),
        format!("If-None-Match: W/{etag}\r\n"),
        format!("If-None-Match: \"other\", {etag}\r\n"),
        "If-None-Match: *\r\n".to_string(),
        format!("If-Modified-Since: {last_modified}\r\n"),
        "If-Modified-Since: Mon, 14 Sep 2020 00:00:00 GMT\r\n".to_string(),
        format!("If-None-Match: {etag}\r\nIf-Modified-Since: Sat, 01 Jan 2000 00:00:00 GMT\r\n"),
    ];
    for headers in &not_modified {
        let r = client.get_with("/page.html", headers);
        assert_eq!(r.status, 304, "{headers:?}: {}", r.head);
        assert_eq!(r.header("etag"), Some(etag.as_str()), "{headers:?}");
        assert_eq!(r.header("last-modified"), Some(last_modified.as_str()));
        assert_eq!(r.header("content-type"), None, "{}", r.head);
    }
    let modified_since = [
        "If-None-Match: \"other\"\r\n".to_string(),
        format!("If-None-Match: \"other\"\r\nIf-Modified-Since: {last_modified}\r\n"),
        "If-Modified-Since: Sun, 13 Sep 2020 12:26:39 GMT\r\n".to_string(),
        "If-Modified-Since: not a date\r\n".to_string(),
    ];
    for headers in &modified_since {
        client
            .get_with("/page.html", headers)
            .expect(200, b"<p>version 1</p>");
    }
    // A HEAD that is not modified is a 304 as well.
    let r = client.exchange(
        format!("HEAD /page.html HTTP/1.1\r\nHost: tenk\r\nIf-None-Match: {etag}\r\n\r\n")
            .as_bytes(),
    );
    assert_eq!(r.status, 304);

    fs::write(&path, b"<p>version 2, longer</p>").unwrap();
    let r = client.get_with("/page.html", &format!("If-None-Match: {etag}\r\n"));
    r.expect(200, b"<p>version 2, longer</p>");
    assert_ne!(r.header("etag"), Some(etag.as_str()));
}

/// A single range gives 206 with Content-Range and exactly those bytes;
/// past the end gives 416 with `bytes */size`; several ranges or a
/// malformed one are ignored (200, whole file); If-Range with the current
/// ETag keeps the range, a stale one drops it.
#[test]
fn ranges_get_206_or_416() {
    let root = TempDir::new("range");
    let contents = pattern(7, 1000);
    root.write("data.bin", &contents);
    let server = serve(root.path(), "edge");
    let mut client = Client::connect(server.addr);
    let etag = client.get("/data.bin").header("etag").unwrap().to_string();
    let partial = [
        ("bytes=0-9", 0, 9),
        ("bytes=10-", 10, 999),
        ("bytes=-5", 995, 999),
        ("bytes=990-5000", 990, 999),
        ("bytes=-5000", 0, 999),
    ];
    for (range, first, last) in partial {
        let r = client.get_with("/data.bin", &format!("Range: {range}\r\n"));
        r.expect(206, &contents[first..=last]);
        let want = format!("bytes {first}-{last}/1000");
        assert_eq!(r.header("content-range"), Some(want.as_str()), "{range}");
        assert_eq!(r.header("etag"), Some(etag.as_str()));
    }
    for range in ["bytes=999999-", "bytes=1000-", "bytes=-0"] {
        let r = client.get_with("/data.bin", &format!("Range: {range}\r\n"));
        assert_eq!(r.status, 416, "{range}: {}", r.head);
        assert_eq!(r.header("content-range"), Some("bytes */1000"), "{range}");
    }
    for range in ["bytes=0-1,5-6", "bytes=5-1", "bytes=x-y", "lines=1-2"] {
        client
            .get_with("/data.bin", &format!("Range: {range}\r\n"))
            .expect(200, &contents);
    }
    client
        .get_with(
            "/data.bin",
            &format!("Range: bytes=0-9\r\nIf-Range: {etag}\r\n"),
        )
        .expect(206, &contents[..10]);
    client
        .get_with("/data.bin", "Range: bytes=0-9\r\nIf-Range: \"stale\"\r\n")
        .expect(200, &contents);
    // HEAD with a range: the 206 head, its length, no body.
    let r = client.exchange(b"HEAD /data.bin HTTP/1.1\r\nHost: tenk\r\nRange: bytes=-5\r\n\r\n");
    assert_eq!((r.status, r.content_length()), (206, 5));
    client.get("/data.bin").expect(200, &contents);
}

/// HEAD answers with the Content-Length a GET would have and no body: the
/// next response on the connection starts right after the head. Other
/// methods get 405 with Allow.
#[test]
fn head_has_the_length_and_no_body() {
    let root = TempDir::new("head");
    let big = pattern(9, 3 * 1024 * 1024);
    root.write("big.bin", &big);
    root.write("small.txt", b"small");
    let server = serve(root.path(), "edge");
    let mut client = Client::connect(server.addr);
    for _ in 0..3 {
        let r = client.exchange(b"HEAD /big.bin HTTP/1.1\r\nHost: tenk\r\n\r\n");
        assert_eq!((r.status, r.content_length()), (200, big.len() as u64));
        assert_eq!(r.header("content-type"), Some("application/octet-stream"));
        let r = client.exchange(b"HEAD /small.txt HTTP/1.1\r\nHost: tenk\r\n\r\n");
        assert_eq!((r.status, r.content_length()), (200, 5));
        client.get("/small.txt").expect(200, b"small");
    }
    client.get("/big.bin").expect(200, &big);
    for method in ["POST", "PUT", "DELETE"] {
        let r = client.exchange(
            format!("{method} /small.txt HTTP/1.1\r\nHost: tenk\r\nContent-Length: 0\r\n\r\n")
                .as_bytes(),
        );
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("allow"), Some("GET, HEAD"), "{method}");
    }
    // The built-in routes stay built in, whatever the root holds.
    root.write("health", b"not the health check");
    client.get("/health").expect(200, b"{\"status\":\"ok\"}");
}

/// A directory, with or without its trailing slash, is its index.html; one
/// without an index.html is 404; `/` is the root's index.html, or the
/// hello when the root has none.
#[test]
fn directories_serve_index_html() {
    let root = TempDir::new("index");
    root.write("index.html", b"<h1>root index</h1>");
    root.write("docs/index.html", b"<h1>docs</h1>");
    root.write("docs/deeper/index.html", b"<h1>deeper</h1>");
    fs::create_dir_all(root.path().join("bare")).unwrap();
    let server = serve(root.path(), "edge");
    let mut client = Client::connect(server.addr);
    for (path, body) in [
        ("/", &b"<h1>root index</h1>"[..]),
        ("/?q=1", b"<h1>root index</h1>"),
        ("/index.html", b"<h1>root index</h1>"),
        ("/docs/", b"<h1>docs</h1>"),
        ("/docs", b"<h1>docs</h1>"),
        ("/docs/deeper/", b"<h1>deeper</h1>"),
        ("/docs//deeper", b"<h1>deeper</h1>"),
    ] {
        let r = client.get(path);
        r.expect(200, body);
        assert_eq!(r.header("content-type"), Some("text/html"), "{path}");
    }
    for path in ["/bare/", "/bare", "/docs/missing/", "/index.html/"] {
        assert_eq!(client.get(path).status, 404, "{path}");
    }
    drop(client);
    drop(server);

    let plain = TempDir::new("noindex");
    plain.write("a.txt", b"a");
    let server = serve(plain.path(), "edge");
    let mut client = Client::connect(server.addr);
    client.get("/").expect(200, b"Hello, World!");
    client.get("/a.txt").expect(200, b"a");
}

/// `--root` must name an existing directory: anything else is a usage
/// error (exit 2) with a message naming it, before anything listens.
#[test]
fn bad_root_is_a_usage_error() {
    let dir = TempDir::new("badroot");
    let file = dir.write("file.txt", b"x");
    let missing = dir.path().join("missing");
    for (root, why) in [
        (missing.as_path(), "No such file"),
        (file.as_path(), "not a directory"),
    ] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_tenk"))
            .args(["serve", "http", "--port", "0", "--root"])
            .arg(root)
            .output()
            .expect("run tenk");
        assert_eq!(output.status.code(), Some(2), "{root:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("--root") && stderr.contains(why),
            "{root:?}: {stderr}"
        );
        assert!(
            output.stdout.is_empty(),
            "nothing listened: {:?}",
            output.stdout
        );
    }
}

/// The secret marker of the traversal test, unique per run.
fn secret_marker() -> String {
    format!("SECRET-{}-{:?}", std::process::id(), Instant::now())
}

/// No request path reaches a file outside the root: raw `..`, encoded
/// and double-encoded dots and slashes, absolute paths, the absolute
/// request form, symlinks out of the root (relative, absolute, through a
/// directory, magic /proc links) all get 403 or 404, never the secret;
/// symlinks inside the root work, and `%252e` is the literal name `%2e`.
#[test]
fn traversal_never_leaks_a_file_outside_the_root() {
    let base = TempDir::new("traversal");
    let outside = TempDir::new("outside");
    let secret = secret_marker();
    base.write("secret.txt", secret.as_bytes());
    let outside_file = outside.write("secret.txt", secret.as_bytes());
    let root = base.path().join("root");
    fs::create_dir_all(root.join("sub")).unwrap();
    fs::write(root.join("inside.txt"), b"inside").unwrap();
    fs::write(root.join("sub/page.txt"), b"page").unwrap();
    // A directory literally named `%2e%2e`: what `%252e%252e` names.
    fs::create_dir_all(root.join("%2e%2e")).unwrap();
    fs::write(root.join("%2e%2e/literal.txt"), b"literal").unwrap();
    let symlink = |target: &dyn AsRef<Path>, link: PathBuf| {
        std::os::unix::fs::symlink(target.as_ref(), link).expect("symlink")
    };
    symlink(&&outside_file, root.join("abs-link"));
    symlink(&"../secret.txt", root.join("rel-link"));
    symlink(&outside.path(), root.join("dir-link"));
    symlink(&"sub/../../secret.txt", root.join("sneaky-link"));
    symlink(&"/proc/self/root/etc/passwd", root.join("magic-link"));
    symlink(&"/proc/self/cwd", root.join("cwd-link"));
    symlink(&"inside.txt", root.join("good-link"));
    symlink(&"sub", root.join("good-dir-link"));
    symlink(&"../root/inside.txt", root.join("round-trip-link"));

    let server = serve(&root, "edge");
    let attempts = [
        "/../secret.txt",
        "/../../../../../../etc/passwd",
        "/sub/../../secret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e/secret.txt",
        "/%2e%2e%2fsecret.txt",
        "/%2E%2E/%2E%2E/etc/passwd",
        "/sub/%2e%2e/%2e%2e/secret.txt",
        "/%252e%252e/secret.txt",
        "/%252e%252e%252fsecret.txt",
        "//etc/passwd",
        "/%2fetc/passwd",
        "/%2f%2e%2e/secret.txt",
        "/abs-link",
        "/rel-link",
        "/sneaky-link",
        "/dir-link/secret.txt",
        "/magic-link",
        "/cwd-link/Cargo.toml",
        "/round-trip-link",
        "/..",
        "/../",
        "/%2e%2e",
        "/%2e%2e/",
    ];
    let mut client = Client::connect(server.addr);
    for path in attempts {
        for target in [path.to_string(), format!("http://tenk{path}")] {
            let r = client.get(&target);
            let body = String::from_utf8_lossy(&r.body);
            assert!(
                matches!(r.status, 403 | 404),
                "{target}: status {} ({body:?})",
                r.status
            );
            assert!(!body.contains(&secret), "{target} leaked the secret");
            assert!(!body.contains("root:"), "{target} leaked /etc/passwd");
        }
    }
    client.get("/inside.txt").expect(200, b"inside");
    client.get("/good-link").expect(200, b"inside");
    client.get("/good-dir-link/page.txt").expect(200, b"page");
    client.get("/sub/../inside.txt").expect(200, b"inside");
    client
        .get("/%252e%252e/literal.txt")
        .expect(200, b"literal");
    // Bad encodings are 400, not a lookup.
    for path in ["/a%00b", "/%ff%fe"] {
        assert_eq!(client.get(path).status, 400, "{path}");
    }
    // The round-trip link leaves the root and comes back: still refused,
    // because resolution may never step outside.
    assert_eq!(client.get("/round-trip-link").status, 403);
}

/// Reads a response body from `reader` in 64 KiB pieces, pausing `pause`
/// after each (a slow reader: a pacing, not a synchronisation), calling
/// `every` after each piece. Returns the bytes read and whether every
/// one was zero; stops at EOF or `limit` bytes.
fn slow_read(
    reader: &mut impl Read,
    limit: u64,
    pause: Duration,
    mut every: impl FnMut(u64),
) -> (u64, bool, Option<std::io::Error>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    let mut zeros = true;
    while total < limit {
        let want = buf.len().min((limit - total) as usize);
        match reader.read(&mut buf[..want]) {
            Ok(0) => return (total, zeros, None),
            Ok(n) => {
                zeros &= buf[..n].iter().all(|&b| b == 0);
                total += n as u64;
                every(total);
                if !pause.is_zero() {
                    thread::sleep(pause);
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return (total, zeros, Some(e)),
        }
    }
    (total, zeros, None)
}

const MIB: u64 = 1024 * 1024;

/// A sparse file of `len` bytes (reads as zeros).
fn sparse(dir: &TempDir, name: &str, len: u64) -> PathBuf {
    let path = dir.path().join(name);
    File::create(&path).unwrap().set_len(len).unwrap();
    path
}

/// A 100 MiB file to a reader that takes 64 KiB at a time and pauses: the
/// server holds a descriptor, not the bytes (RSS grows < 8 MiB), resumes
/// on EPOLLOUT every time the reader makes room (the file is ~25 times
/// the socket buffers), answers another client meanwhile, delivers every
/// byte, and closes the file once sent.
fn large_file_to_a_slow_reader_keeps_memory_flat(trigger: &str) {
    let root = TempDir::new("large");
    let size = 100 * MIB;
    sparse(&root, "big.bin", size);
    root.write("small.txt", b"small");
    let server = serve(root.path(), trigger);
    // Warm up (the first request's allocations), then take the baseline.
    Client::connect(server.addr)
        .get("/small.txt")
        .expect(200, b"small");
    let rss_before = server.rss_bytes();
    let fds_before = server.fd_count();
    let waits_before = metric(server.addr, "tenk_syscalls_total{call=\"epoll_wait\"}");

    let mut client = Client::connect(server.addr);
    client.send(&get("/big.bin"));
    let head = read_head(&mut client.reader);
    assert_eq!((head.status, head.content_length()), (200, size));
    let mut peak = rss_before;
    let mut other_served = false;
    let started = Instant::now();
    let (total, zeros, error) = slow_read(
        &mut client.reader,
        size,
        Duration::from_micros(500),
        |total| {
            if total % (4 * MIB) == 0 {
                peak = peak.max(server.rss_bytes());
            }
            if !other_served && total >= size / 2 {
                // Halfway: the server is not held by the transfer.
                Client::connect(server.addr)
                    .get("/small.txt")
                    .expect(200, b"small");
                other_served = true;
            }
        },
    );
    assert!(
        error.is_none(),
        "{trigger}: read failed after {total} bytes: {error:?}"
    );
    assert_eq!(total, size, "{trigger}: every byte arrives");
    assert!(zeros, "{trigger}: the sparse file reads as zeros");
    assert!(other_served);
    let growth = peak.saturating_sub(rss_before);
    assert!(
        growth < 8 * MIB,
        "{trigger}: server RSS grew {growth} bytes (from {rss_before}) for a 100 MiB file"
    );
    // The socket buffers hold a few MiB at most: the transfer went on over
    // many wake-ups (EPOLLOUT each time the reader made room), not in one.
    let waits = metric(server.addr, "tenk_syscalls_total{call=\"epoll_wait\"}") - waits_before;
    assert!(waits >= 10, "{trigger}: 100 MiB in {waits} wake-ups");
    // Keep-alive after the body, and the file's descriptor is closed.
    client.get("/small.txt").expect(200, b"small");
    drop(client);
    assert!(
        util::wait_until(PROMPTLY, || server.fd_count() <= fds_before),
        "{trigger}: descriptors {} after, {fds_before} before",
        server.fd_count()
    );
    eprintln!(
        "{trigger}: 100 MiB to a slow reader in {:?} over {waits} wake-ups, RSS {rss_before} -> peak {peak}",
        started.elapsed()
    );
}

/// The value of the sample `name` (with its labels, as printed) in the
/// server's `/metrics`.
fn metric(addr: SocketAddr, name: &str) -> u64 {
    let r = Client::connect(addr).get("/metrics");
    assert_eq!(r.status, 200);
    let text = String::from_utf8(r.body).expect("UTF-8 metrics");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
        .parse()
        .expect("numeric sample")
}

/// Starts a GET of `path` (of `size` bytes) and reads its head and the
/// first `first` body bytes.
fn start_download(server: &Server, path: &str, size: u64, first: u64) -> Client {
    let mut client = Client::connect(server.addr);
    client.send(&get(path));
    let head = read_head(&mut client.reader);
    assert_eq!((head.status, head.content_length()), (200, size));
    let (got, _, error) = slow_read(&mut client.reader, first, Duration::ZERO, |_| {});
    assert!(
        error.is_none() && got == first,
        "first {first} bytes: {got} {error:?}"
    );
    client
}

/// After a truncated download: the server answers others, uses no CPU
/// while idle (no spin on the dead transfer), and has closed the file.
fn server_is_well_after_a_shrink(server: &Server, trigger: &str, fds_before: usize) {
    Client::connect(server.addr)
        .get("/small.txt")
        .expect(200, b"small");
    assert!(
        util::wait_until(PROMPTLY, || server.fd_count() <= fds_before),
        "{trigger}: descriptors {} after, {fds_before} before",
        server.fd_count()
    );
    // A window to measure CPU over (not a synchronisation): a spinning
    // loop would burn all of it.
    let ticks = server.cpu_ticks();
    thread::sleep(Duration::from_millis(500));
    let spent = server.cpu_ticks() - ticks;
    assert!(
        spent <= 5,
        "{trigger}: server used {spent} ticks in 500 ms idle"
    );
}

/// A file truncated to nothing after its head went out: the connection is
/// closed (the client sees EOF after a short body, or a reset), never a
/// spin on a `sendfile` that returns 0.
fn file_truncated_while_sent_closes_the_connection(trigger: &str) {
    let root = TempDir::new("shrink");
    let size = 64 * MIB;
    let path = sparse(&root, "shrinking.bin", size);
    root.write("small.txt", b"small");
    let server = serve(root.path(), trigger);
    let fds_before = server.fd_count();
    let mut client = start_download(&server, "/shrinking.bin", size, MIB);
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(0)
        .unwrap();
    let started = Instant::now();
    let (total, _, error) = slow_read(&mut client.reader, size, Duration::ZERO, |_| {});
    let total = total + MIB;
    assert!(
        total < size,
        "{trigger}: the whole body arrived from a truncated file"
    );
    if let Some(e) = error {
        assert_eq!(
            e.kind(),
            ErrorKind::ConnectionReset,
            "{trigger}: after {total} bytes: {e}"
        );
    }
    assert!(started.elapsed() < PROMPTLY);
    server_is_well_after_a_shrink(&server, trigger, fds_before);
}

/// Regression: a file that shrinks to a length the transfer has not
/// reached yet makes `sendfile` return short (the end of the file, with
/// room left in the socket), and the reactor took every short `sendfile`
/// for a full socket. In edge mode no EPOLLOUT follows a write that did
/// not fill the socket, so the connection sat until the write timeout
/// (60 s) instead of being closed at once. Every byte up to the new end
/// arrives, then EOF.
fn regression_file_shrunk_mid_chunk_is_not_left_stalled(trigger: &str) {
    let root = TempDir::new("shrink-mid");
    let size = 64 * MIB;
    let new_size = 32 * MIB;
    let path = sparse(&root, "shrinking.bin", size);
    root.write("small.txt", b"small");
    let server = serve(root.path(), trigger);
    let fds_before = server.fd_count();
    let mut client = start_download(&server, "/shrinking.bin", size, MIB);
    File::options()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(new_size)
        .unwrap();
    let started = Instant::now();
    let (total, zeros, error) = slow_read(&mut client.reader, size, Duration::ZERO, |_| {});
    let total = total + MIB;
    assert!(
        error.is_none(),
        "{trigger}: after {total} bytes (in {:?}): {error:?}",
        started.elapsed()
    );
    assert_eq!(
        total, new_size,
        "{trigger}: bytes up to the new end, then EOF"
    );
    assert!(zeros);
    server_is_well_after_a_shrink(&server, trigger, fds_before);
}

/// Pins how the app's own routes and the files under `--root` share the
/// paths (issue 15 moves the app onto the Router): a route's path keeps
/// its methods (`GET /echo` is 405, not a file lookup), every other path
/// is a file, and the files answer other methods 405 with `GET, HEAD`.
#[test]
fn routes_take_their_paths_and_files_the_rest() {
    let root = TempDir::new("routes");
    root.write("echo", b"a file named echo");
    root.write("health/x", b"under health");
    root.write("page.txt", b"page");
    let server = serve(root.path(), "edge");
    let mut client = Client::connect(server.addr);
    let r = client.get("/echo");
    assert_eq!((r.status, r.header("allow")), (405, Some("POST")));
    client.get("/health").expect(200, b"{\"status\":\"ok\"}");
    client.get("/health/x").expect(200, b"under health");
    client.get("/echo/").expect(404, b"404 Not Found\n");
    client.get("/page.txt").expect(200, b"page");
    client.get("/missing").expect(404, b"404 Not Found\n");
    for (method, path) in [("DELETE", "/page.txt"), ("POST", "/missing")] {
        let request =
            format!("{method} {path} HTTP/1.1\r\nHost: tenk\r\nContent-Length: 0\r\n\r\n");
        let r = client.exchange(request.as_bytes());
        assert_eq!(
            (r.status, r.header("allow")),
            (405, Some("GET, HEAD")),
            "{method} {path}"
        );
    }
    let r = client.exchange(b"PUT / HTTP/1.1\r\nHost: tenk\r\nContent-Length: 0\r\n\r\n");
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD")));
    client.get("/").expect(200, b"Hello, World!");
}
