//! An upstream as the command line names it: `HOST:PORT[=WEIGHT]`.

use std::net::{SocketAddr, ToSocketAddrs};

/// Largest weight accepted (nginx allows up to its own limit; this keeps
/// the smooth round-robin's sums far from overflow).
pub const MAX_WEIGHT: u32 = 1000;

/// One backend the proxy forwards to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamSpec {
    /// As written (`HOST:PORT`), for reports.
    pub name: String,
    /// The address the name resolved to at start-up (the first one).
    pub addr: SocketAddr,
    /// Its share of requests relative to the others (default 1).
    pub weight: u32,
}

impl UpstreamSpec {
    /// Parses `HOST:PORT` or `HOST:PORT=WEIGHT` and resolves the host
    /// once, now: the proxy does not re-resolve while running (as nginx
    /// without a `resolver`).
    ///
    /// # Errors
    /// A message for the user: no port, a name that does not resolve, a
    /// weight that is not 1 to [`MAX_WEIGHT`].
    pub fn parse(text: &str) -> Result<UpstreamSpec, String> {
        let (name, weight) = match text.rsplit_once('=') {
            Some((name, weight)) => {
                let weight: u32 = weight
                    .parse()
                    .map_err(|_| format!("{text:?}: weight {weight:?} is not a number"))?;
                if !(1..=MAX_WEIGHT).contains(&weight) {
                    return Err(format!("{text:?}: weight must be 1 to {MAX_WEIGHT}"));
                }
                (name, weight)
            }
            None => (text, 1),
        };
        if name
            .rsplit_once(':')
            .is_none_or(|(_, port)| port.is_empty())
        {
            return Err(format!("{text:?}: expected HOST:PORT[=WEIGHT]"));
        }
        let addr = name
            .to_socket_addrs()
            .map_err(|e| format!("{text:?}: {e}"))?
            .next()
            .ok_or_else(|| format!("{text:?}: the name resolves to no address"))?;
        Ok(UpstreamSpec {
            name: name.to_string(),
            addr,
            weight,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_address_and_weight() {
        let plain = UpstreamSpec::parse("127.0.0.1:8081").unwrap();
        assert_eq!(plain.addr, "127.0.0.1:8081".parse().unwrap());
        assert_eq!((plain.weight, plain.name.as_str()), (1, "127.0.0.1:8081"));
        let weighted = UpstreamSpec::parse("127.0.0.1:8082=5").unwrap();
        assert_eq!(weighted.weight, 5);
        assert_eq!(weighted.name, "127.0.0.1:8082");
        let v6 = UpstreamSpec::parse("[::1]:9000=2").unwrap();
        assert_eq!(v6.addr, "[::1]:9000".parse().unwrap());
        let named = UpstreamSpec::parse("localhost:80").unwrap();
        assert!(named.addr.ip().is_loopback());
    }

    #[test]
    fn refuses_bad_upstreams_with_a_reason() {
        for (bad, why) in [
            ("127.0.0.1", "HOST:PORT"),
            ("127.0.0.1:", "HOST:PORT"),
            ("127.0.0.1:80=0", "weight must be 1"),
            ("127.0.0.1:80=1001", "weight must be 1"),
            ("127.0.0.1:80=x", "not a number"),
            ("127.0.0.1:99999", "127.0.0.1:99999"),
        ] {
            let err = UpstreamSpec::parse(bad).expect_err(bad);
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
