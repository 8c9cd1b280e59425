//! Static files under a root directory: GET and HEAD, `Content-Type` by
//! extension, `ETag` and `Last-Modified` with their conditional requests
//! (304), a single byte range (206, or 416 when unsatisfiable), and
//! `index.html` for directories. Bodies go out with `sendfile` through
//! [`Reply::send_file`]: the bytes never pass through user space, and a
//! large file is sent as the peer reads it, without growing memory.
//!
//! # Confinement
//! Every path is resolved by `openat2(2)` under the root's descriptor with
//! `RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS`: the kernel refuses, during
//! the lookup itself, any `..` or symlink (absolute or relative) that would
//! leave the root, so no check-then-open race exists. Symlinks that stay
//! inside the root are followed. Paths are percent-decoded once, so
//! `%2e%2e` is `..` (and refused by the kernel like a raw one), while
//! `%252e` is the literal name `%2e`. Needs Linux 5.6;
//! [`StaticFiles::open`] fails on older kernels rather than serve
//! unconfined.
//!
//! # Open files
//! No descriptor is cached: a file is opened per request, and its
//! descriptor lives only in the connection's output queue, closed as soon
//! as its last byte is sent (or the connection closes). Files of zero
//! bytes are answered without one. HEAD, 304 and 416 close theirs at once.
//!
//! # Examples
//! ```no_run
//! use http::static_files::StaticFiles;
//! use http::{HttpConfig, HttpServer};
//!
//! let files = StaticFiles::open("./public")?;
//! let server = HttpServer::new(files, HttpConfig::default());
//! # Ok::<(), std::io::Error>(())
//! ```

use std::borrow::Cow;
use std::fs::{File, Metadata};
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustix::fs::{Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::parse::{Method, Request};
use crate::response::Response;
use crate::server::{App, Reply};

mod conditions;
mod range;

pub use conditions::{Answer, Conditions};
pub use range::{parse_range, Range};

/// Serves the files under one root directory; see the module docs.
///
/// Cloning is cheap and shares the root's descriptor (one per thread of
/// a multi-threaded server).
#[derive(Clone, Debug)]
pub struct StaticFiles {
    /// The root, opened once with `O_PATH`: every lookup starts here, so
    /// renaming or replacing the directory later does not move the root.
    root: Arc<OwnedFd>,
    path: PathBuf,
}

/// Why a path found no file to serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Miss {
    /// Not a valid path: NUL, not UTF-8 once decoded, not absolute (400).
    BadPath,
    /// Nothing there, or not a regular file (404).
    NotFound,
    /// Outside the root, or not readable (403).
    Forbidden,
    /// Out of descriptors or memory for now (503).
    Busy,
    /// An unexpected error, logged (500).
    Failed,
}

impl Miss {
    /// The status this answers with.
    pub fn status(self) -> u16 {
        match self {
            Miss::BadPath => 400,
            Miss::NotFound => 404,
            Miss::Forbidden => 403,
            Miss::Busy => 503,
            Miss::Failed => 500,
        }
    }

    fn of(errno: Errno) -> Miss {
        match errno {
            Errno::NOENT | Errno::NOTDIR | Errno::NAMETOOLONG => Miss::NotFound,
            // EXDEV: the lookup would leave the root (`..`, a symlink out
            // of it, an absolute symlink); ELOOP: a magic link or a
            // symlink cycle.
            Errno::XDEV | Errno::LOOP | Errno::ACCESS | Errno::PERM => Miss::Forbidden,
            // EAGAIN: openat2 could not rule out a `..` race after a
            // concurrent rename and asks for a retry, which was done.
            Errno::MFILE | Errno::NFILE | Errno::NOMEM | Errno::AGAIN => Miss::Busy,
            Errno::INVAL => Miss::BadPath,
            _ => Miss::Failed,
        }
    }
}

/// An open regular file, ready to be answered with.
#[derive(Debug)]
pub struct Found {
    file: File,
    size: u64,
    modified: SystemTime,
    content_type: &'static str,
}

impl Found {
    /// Its size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Its `Content-Type`, guessed from the extension.
    pub fn content_type(&self) -> &'static str {
        self.content_type
    }

    /// Its entity tag: size and modification time (to the nanosecond), so
    /// a file rewritten within the same second still gets a new tag.
    pub fn etag(&self) -> String {
        etag(self.size, self.modified)
    }
}

/// A strong entity tag from a file's size and modification time.
fn etag(size: u64, modified: SystemTime) -> String {
    let nanos = modified
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("\"{size:x}-{nanos:x}\"")
}

/// Seconds since the epoch, the precision of HTTP dates.
fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// How many times an `EAGAIN` from `openat2` is retried before 503.
const OPEN_RETRIES: usize = 3;

impl StaticFiles {
    /// Opens `root` (a directory) for serving.
    ///
    /// # Errors
    /// Those of `open(2)` on the root (`NotFound`, `PermissionDenied`,
    /// `ENOTDIR`), and `Unsupported` if the kernel has no `openat2`
    /// (before Linux 5.6): serving without `RESOLVE_BENEATH` could leak
    /// files outside the root.
    pub fn open(root: impl AsRef<Path>) -> io::Result<StaticFiles> {
        let path = root.as_ref().to_path_buf();
        let fd = rustix::fs::open(
            &path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        match rustix::fs::openat2(
            &fd,
            ".",
            OFlags::PATH | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH,
        ) {
            Ok(_) => {}
            Err(Errno::NOSYS) => {
                return Err(io::Error::new(
                    io::ErrorKind::Unsupported,
                    "openat2(2) is not available (Linux 5.6 or later is needed to confine paths to the root)",
                ))
            }
            Err(e) => return Err(e.into()),
        }
        Ok(StaticFiles {
            root: Arc::new(fd),
            path,
        })
    }

    /// The root directory, as given to [`open`](StaticFiles::open).
    pub fn root(&self) -> &Path {
        &self.path
    }

    /// Answers `request` with the file its path names, or the status of
    /// why not. Only GET and HEAD are served; other methods get 405 with
    /// `Allow: GET, HEAD`.
    pub fn serve(&self, request: &Request<'_, '_>, reply: &mut Reply<'_>) {
        if !matches!(request.method, Method::Get | Method::Head) {
            reply.send(
                &Response::text(405, &b"405 Method Not Allowed\n"[..]).header("Allow", "GET, HEAD"),
            );
            return;
        }
        match self.find(request.path()) {
            Ok(found) => respond(found, request, reply),
            Err(miss) => reply.send(&miss_response(miss)),
        }
    }

    /// Opens the regular file `path` (a request path, percent-encoded)
    /// names under the root: `index.html` for a directory.
    ///
    /// # Errors
    /// Why there is no file to serve; see [`Miss`].
    pub fn find(&self, path: &str) -> Result<Found, Miss> {
        let relative = decode_path(path)?;
        let wants_dir = relative.is_empty() || relative.ends_with('/');
        let (file, meta, name) = if wants_dir {
            let index = format!("{relative}index.html");
            let (file, meta) = self.open_beneath(&index)?;
            (file, meta, index)
        } else {
            let (file, meta) = self.open_beneath(&relative)?;
            if meta.is_dir() {
                drop(file);
                let index = format!("{relative}/index.html");
                let (file, meta) = self.open_beneath(&index)?;
                (file, meta, index)
            } else {
                (file, meta, relative.into_owned())
            }
        };
        if !meta.is_file() {
            return Err(Miss::NotFound);
        }
        Ok(Found {
            file,
            size: meta.len(),
            modified: meta.modified().unwrap_or(UNIX_EPOCH),
            content_type: mime_guess::from_path(&name)
                .first_raw()
                .unwrap_or("application/octet-stream"),
        })
    }

    /// `openat2` beneath the root, then `fstat`.
    fn open_beneath(&self, relative: &str) -> Result<(File, Metadata), Miss> {
        // O_NONBLOCK: opening a FIFO for reading would otherwise block the
        // reactor until a writer came; on regular files it changes nothing.
        let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY;
        let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
        let mut tries = 0;
        let fd = loop {
            match rustix::fs::openat2(&*self.root, relative, flags, Mode::empty(), resolve) {
                Ok(fd) => break fd,
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) if tries < OPEN_RETRIES => tries += 1,
                Err(errno) => {
                    let miss = Miss::of(errno);
                    if miss == Miss::Failed {
                        tracing::warn!(path = relative, "cannot open: {}", io::Error::from(errno));
                    } else {
                        tracing::debug!(path = relative, ?miss, "cannot open: {errno}");
                    }
                    return Err(miss);
                }
            }
        };
        let file = File::from(fd);
        match file.metadata() {
            Ok(meta) => Ok((file, meta)),
            Err(e) => {
                tracing::warn!(path = relative, "cannot stat: {e}");
                Err(Miss::Failed)
            }
        }
    }
}

impl App for StaticFiles {
    fn handle(&mut self, request: &Request<'_, '_>, reply: &mut Reply<'_>) {
        self.serve(request, reply);
    }
}

/// The response to a miss.
pub fn miss_response(miss: Miss) -> Response {
    let body: &'static [u8] = match miss {
        Miss::BadPath => b"400 Bad Request\n",
        Miss::NotFound => b"404 Not Found\n",
        Miss::Forbidden => b"403 Forbidden\n",
        Miss::Busy => b"503 Service Unavailable\n",
        Miss::Failed => b"500 Internal Server Error\n",
    };
    let response = Response::text(miss.status(), body);
    if miss == Miss::Busy {
        response.header("Retry-After", "1")
    } else {
        response
    }
}

/// Answers `request` with `found`: 304, 416, 206 or 200 as its headers ask.
pub fn respond(found: Found, request: &Request<'_, '_>, reply: &mut Reply<'_>) {
    let etag = found.etag();
    let last_modified = last_modified(found.modified);
    let conditions = Conditions::of(request);
    let size = found.size;
    let head = |status: u16| {
        Response::new(status, found.content_type, &b""[..])
            .header("Last-Modified", last_modified.clone())
            .header("ETag", etag.clone())
    };
    match conditions.answer(&etag, unix_seconds(found.modified), size) {
        Answer::NotModified => reply.send(&head(304)),
        Answer::Unsatisfiable => reply.send(
            &Response::text(416, &b"416 Range Not Satisfiable\n"[..])
                .header("Content-Range", format!("bytes */{size}"))
                .header("Accept-Ranges", "bytes"),
        ),
        Answer::Full if size == 0 => reply.send(&head(200).header("Accept-Ranges", "bytes")),
        Answer::Full => reply.send_file(
            &head(200).header("Accept-Ranges", "bytes"),
            OwnedFd::from(found.file),
            0,
            size,
        ),
        Answer::Partial { first, last } => reply.send_file(
            &head(206)
                .header("Content-Range", format!("bytes {first}-{last}/{size}"))
                .header("Accept-Ranges", "bytes"),
            OwnedFd::from(found.file),
            first,
            last - first + 1,
        ),
    }
}

/// The path relative to the root that a request path names: decoded once,
/// leading slashes stripped (so `//etc/passwd` is `etc/passwd` under the
/// root). Empty or ending in `/` names a directory.
///
/// # Errors
/// [`Miss::BadPath`] for a path that does not start with `/`, or holds NUL
/// or bytes that are not UTF-8 once decoded.
pub fn decode_path(path: &str) -> Result<Cow<'_, str>, Miss> {
    if !path.starts_with('/') {
        return Err(Miss::BadPath);
    }
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| Miss::BadPath)?;
    if decoded.contains('\0') {
        return Err(Miss::BadPath);
    }
    Ok(match decoded {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim_start_matches('/')),
        Cow::Owned(s) => Cow::Owned(s.trim_start_matches('/').to_string()),
    })
}

/// `modified` as the `Last-Modified` value (whole seconds).
pub fn last_modified(modified: SystemTime) -> String {
    let seconds = Duration::from_secs(unix_seconds(modified));
    httpdate::fmt_http_date(UNIX_EPOCH + seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sun, 06 Nov 1994 08:49:37 GMT
    const MODIFIED: u64 = 784_111_777;

    #[test]
    fn paths() {
        use std::borrow::Cow as C;
        let table: &[(&str, Result<C<'_, str>, Miss>)] = &[
            ("/", Ok("".into())),
            ("/a.txt", Ok("a.txt".into())),
            ("/dir/", Ok("dir/".into())),
            ("//etc/passwd", Ok("etc/passwd".into())),
            ("/a%20b.txt", Ok("a b.txt".into())),
            ("/caf%C3%A9", Ok("café".into())),
            // Decoded once: `..` reaches openat2, which refuses it.
            ("/%2e%2e/secret", Ok("../secret".into())),
            ("/..%2fsecret", Ok("../secret".into())),
            ("/%2F%2Fetc/passwd", Ok("etc/passwd".into())),
            ("/%252e%252e/x", Ok("%2e%2e/x".into())),
            ("/100%", Ok("100%".into())),
            ("/%zz", Ok("%zz".into())),
            ("/a%00b", Err(Miss::BadPath)),
            ("/%ff", Err(Miss::BadPath)),
            ("/%c3", Err(Miss::BadPath)),
            ("a.txt", Err(Miss::BadPath)),
            ("*", Err(Miss::BadPath)),
            ("", Err(Miss::BadPath)),
        ];
        for (path, want) in table {
            assert_eq!(decode_path(path), *want, "{path:?}");
        }
    }

    #[test]
    fn etags_change_with_size_and_time() {
        let t = UNIX_EPOCH + Duration::new(MODIFIED, 5);
        assert_eq!(
            etag(100, t),
            format!("\"64-{:x}\"", MODIFIED as u128 * 1_000_000_000 + 5)
        );
        assert_ne!(etag(100, t), etag(101, t));
        assert_ne!(etag(100, t), etag(100, t + Duration::from_nanos(1)));
        assert_eq!(last_modified(t), "Sun, 06 Nov 1994 08:49:37 GMT");
    }

    #[test]
    fn errno_to_status() {
        let table = [
            (Errno::NOENT, 404),
            (Errno::NOTDIR, 404),
            (Errno::XDEV, 403),
            (Errno::LOOP, 403),
            (Errno::ACCESS, 403),
            (Errno::MFILE, 503),
            (Errno::NFILE, 503),
            (Errno::IO, 500),
        ];
        for (errno, status) in table {
            assert_eq!(Miss::of(errno).status(), status, "{errno:?}");
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tenk-static-unit-{name}-{}-{:?}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn find_confines_lookups_to_the_root() {
        let base = temp_dir("find");
        let root = base.join("root");
        std::fs::create_dir_all(root.join("sub/empty")).unwrap();
        std::fs::write(base.join("secret.txt"), "SECRET").unwrap();
        std::fs::write(root.join("a.css"), "body{}").unwrap();
        std::fs::write(root.join("sub/index.html"), "<p>sub</p>").unwrap();
        std::os::unix::fs::symlink("../secret.txt", root.join("out")).unwrap();
        std::os::unix::fs::symlink(base.join("secret.txt"), root.join("abs")).unwrap();
        std::os::unix::fs::symlink("a.css", root.join("in.css")).unwrap();
        std::os::unix::fs::symlink("/proc/self/root/etc/hostname", root.join("magic")).unwrap();
        let files = StaticFiles::open(&root).unwrap();
        let found = files.find("/a.css").unwrap();
        assert_eq!((found.size(), found.content_type()), (6, "text/css"));
        assert_eq!(files.find("/in.css").unwrap().size(), 6);
        let index = files.find("/sub").unwrap();
        assert_eq!((index.size(), index.content_type()), (10, "text/html"));
        assert_eq!(files.find("/sub/").unwrap().size(), 10);
        let table = [
            ("/nothing", Miss::NotFound),
            ("/", Miss::NotFound),
            ("/sub/empty/", Miss::NotFound),
            ("/sub/empty", Miss::NotFound),
            ("/a.css/", Miss::NotFound),
            ("/../secret.txt", Miss::Forbidden),
            ("/%2e%2e/secret.txt", Miss::Forbidden),
            ("/sub/../../secret.txt", Miss::Forbidden),
            ("/out", Miss::Forbidden),
            ("/abs", Miss::Forbidden),
            ("/magic", Miss::Forbidden),
        ];
        for (path, miss) in table {
            assert_eq!(files.find(path).err(), Some(miss), "{path}");
        }
        assert!(files.find("/sub/../a.css").is_ok(), "`..` inside the root");
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn open_refuses_what_is_not_a_directory() {
        let base = temp_dir("open");
        std::fs::write(base.join("file"), "x").unwrap();
        assert!(StaticFiles::open(base.join("file")).is_err());
        assert!(StaticFiles::open(base.join("missing")).is_err());
        assert!(StaticFiles::open(&base).is_ok());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
