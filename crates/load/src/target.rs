//! Turning what the user typed (`HOST:PORT`, a URL) into an address to
//! connect to and the names a request carries.

use std::net::{SocketAddr, ToSocketAddrs};

/// An HTTP target: where to connect, and the request's Host and path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpTarget {
    pub addr: SocketAddr,
    /// Whether to speak TLS (an `https://` URL).
    pub tls: bool,
    /// The host as the URL names it, without port (IPv6 in brackets): the
    /// name a TLS client checks the certificate against.
    pub name: String,
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

/// The host of `HOST:PORT`, IPv6 in its brackets: the name a TLS client
/// checks the server's certificate against.
pub fn host(host_port: &str) -> &str {
    host_port
        .rsplit_once(':')
        .map_or(host_port, |(host, _)| host)
}

/// Parses an `http://` or `https://` URL; the port defaults to the
/// scheme's (80, 443).
///
/// # Errors
/// A message for a malformed URL, another scheme, or an unresolvable host.
pub fn http_target(raw: &str) -> Result<HttpTarget, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("bad URL {raw:?}: {e}"))?;
    let tls = match url.scheme() {
        "http" => false,
        "https" => true,
        other => {
            return Err(format!(
                "unsupported scheme {other:?} in {raw:?}: only http:// and https:// are supported"
            ))
        }
    };
    let host = url
        .host_str()
        .ok_or_else(|| format!("no host in URL {raw:?}"))?;
    // The url crate knows both schemes' default ports.
    let port = url.port_or_known_default().unwrap_or(80);
    // `host_str` keeps IPv6 brackets, as both Host and to_socket_addrs want.
    let addr = resolve(&format!("{host}:{port}"))?;
    // `port()` is `None` for the scheme's default port, which Host omits.
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
        tls,
        name: host.to_string(),
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
    fn https_urls_speak_tls_on_443_by_default() {
        let t = http_target("https://127.0.0.1/x").unwrap();
        assert!(t.tls);
        assert_eq!(t.addr, "127.0.0.1:443".parse().unwrap());
        assert_eq!(
            (t.host.as_str(), t.name.as_str()),
            ("127.0.0.1", "127.0.0.1")
        );
        let t = http_target("https://[::1]:8443/").unwrap();
        assert_eq!(t.addr, "[::1]:8443".parse().unwrap());
        assert_eq!((t.host.as_str(), t.name.as_str()), ("[::1]:8443", "[::1]"));
        // An explicit default port is the default: Host leaves it out.
        assert_eq!(
            http_target("https://127.0.0.1:443/").unwrap().host,
            "127.0.0.1"
        );
        assert!(!http_target("http://127.0.0.1:443/").unwrap().tls);
        assert_eq!(
            http_target("http://127.0.0.1:443/").unwrap().host,
            "127.0.0.1:443"
        );
    }

    #[test]
    fn bad_targets_are_explained() {
        assert!(http_target("ftp://127.0.0.1/")
            .unwrap_err()
            .contains("only http:// and https://"));
        assert!(http_target("not a url").unwrap_err().contains("bad URL"));
        assert!(resolve("127.0.0.1").unwrap_err().contains("HOST:PORT"));
        assert_eq!(host("[::1]:9"), "[::1]");
        assert_eq!(host("localhost:9"), "localhost");
        assert_eq!(
            resolve("127.0.0.1:9").unwrap(),
            "127.0.0.1:9".parse().unwrap()
        );
    }
}
