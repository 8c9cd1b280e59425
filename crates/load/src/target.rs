//! Turning what the user typed (`HOST:PORT`, a URL) into an address to
//! connect to and the names a request carries.

use std::net::{SocketAddr, ToSocketAddrs};

/// An HTTP target: where to connect, and the request's Host and path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpTarget {
    pub addr: SocketAddr,
    /// The `Host` header: host, and port unless it is the default.
    pub host: String,
    /// Path and query.
    pub path: String,
}

/// Resolves `HOST:PORT` (first address; IPv6 as `[::1]:8080`).
///
/// # Errors
/// A message for an unparsable or unresolvable address.
pub fn resolve(host_port: &str) -> Result<SocketAddr, String> {
    host_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host_port:?}: {e} (expected HOST:PORT)"))?
        .next()
        .ok_or_else(|| format!("{host_port:?} resolves to no address"))
}

/// Parses an `http://` URL.
///
/// # Errors
/// A message for a malformed URL, another scheme (https is not spoken),
/// or an unresolvable host.
pub fn http_target(raw: &str) -> Result<HttpTarget, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("bad URL {raw:?}: {e}"))?;
    if url.scheme() != "http" {
        return Err(format!(
            "unsupported scheme {:?} in {raw:?}: only http:// is supported",
            url.scheme()
        ));
    }
    let host = url
        .host_str()
        .ok_or_else(|| format!("no host in URL {raw:?}"))?;
    let port = url.port_or_known_default().unwrap_or(80);
    // `host_str` keeps IPv6 brackets, as both Host and to_socket_addrs want.
    let addr = resolve(&format!("{host}:{port}"))?;
    let host_header = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    let mut path = url.path().to_string();
    if let Some(query) = url.query() {
        path.push('?');
        path.push_str(query);
    }
    Ok(HttpTarget {
        addr,
        host: host_header,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_address_host_and_path() {
        let t = http_target("http://127.0.0.1:8080/a/b?x=1").unwrap();
        assert_eq!(t.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(t.host, "127.0.0.1:8080");
        assert_eq!(t.path, "/a/b?x=1");
        let t = http_target("http://[::1]/").unwrap();
        assert_eq!(t.addr, "[::1]:80".parse().unwrap());
        assert_eq!(t.host, "[::1]");
    }

    #[test]
    fn bad_targets_are_explained() {
        assert!(http_target("https://127.0.0.1/")
            .unwrap_err()
            .contains("only http://"));
        assert!(http_target("not a url").unwrap_err().contains("bad URL"));
        assert!(resolve("127.0.0.1").unwrap_err().contains("HOST:PORT"));
        assert_eq!(
            resolve("127.0.0.1:9").unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
    }
}
