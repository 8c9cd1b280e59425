//! `redis://[:password@]host:port[/db]`, the one form `--redis` takes.
//! I/O free: the host is resolved by the caller.

use std::fmt;

/// Where Redis is and how to log in.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    pub host: String,
    pub port: u16,
    /// Sent with `AUTH` when given.
    pub password: Option<String>,
    /// Selected with `SELECT` when given (pub/sub ignores it; it is for
    /// the keys a later phase keeps).
    pub db: Option<u32>,
}

// The password stays out of logs and panics.
impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisUrl")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("db", &self.db)
            .finish()
    }
}

impl RedisUrl {
    /// Parses `text`.
    ///
    /// # Errors
    /// A message for the user: `rediss://` (TLS to Redis is not built), any
    /// other scheme, a missing host or port, a user name (Redis 6 ACL
    /// users are not supported), a database that is not a number, or a
    /// query string.
    pub fn parse(text: &str) -> Result<RedisUrl, String> {
        if text.starts_with("rediss://") {
            return Err("rediss:// (TLS to Redis) is not supported; use redis://".into());
        }
        let Some(rest) = text.strip_prefix("redis://") else {
            return Err("expected redis://[:password@]host:port[/db]".into());
        };
        if rest.contains(['?', '#']) {
            return Err("no query or fragment is understood".into());
        }
        let (authority, db) = match rest.split_once('/') {
            Some((a, "")) => (a, None),
            Some((a, db)) => match db.parse::<u32>() {
                Ok(n) => (a, Some(n)),
                Err(_) => return Err(format!("database {db:?} is not a number")),
            },
            None => (rest, None),
        };
        let (password, host_port) = match authority.rsplit_once('@') {
            Some((user_info, hp)) => match user_info.strip_prefix(':') {
                Some("") => return Err("empty password".into()),
                Some(password) => (Some(password.to_string()), hp),
                None => {
                    return Err("a user name is not supported; write :password@".into());
                }
            },
            None => (None, authority),
        };
        let (host, port) = if let Some(v6) = host_port.strip_prefix('[') {
            match v6.split_once("]:") {
                Some((h, p)) => (h, p),
                None => return Err("expected [address]:port".into()),
            }
        } else {
            match host_port.rsplit_once(':') {
                Some((h, p)) => (h, p),
                None => return Err("a port is needed (host:port)".into()),
            }
        };
        if host.is_empty() {
            return Err("a host is needed".into());
        }
        let port = match port.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(format!("port {port:?} is not 1 to 65535")),
        };
        Ok(RedisUrl {
            host: host.to_string(),
            port,
            password,
            db,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// URL, host, port, password, database.
    type Case = (
        &'static str,
        &'static str,
        u16,
        Option<&'static str>,
        Option<u32>,
    );

    #[test]
    fn good_urls() {
        let cases: &[Case] = &[
            ("redis://127.0.0.1:6379", "127.0.0.1", 6379, None, None),
            ("redis://localhost:7000/", "localhost", 7000, None, None),
            ("redis://:s3cret@h:1/2", "h", 1, Some("s3cret"), Some(2)),
            ("redis://:a@b@h:1", "h", 1, Some("a@b"), None),
            ("redis://[::1]:6379/0", "::1", 6379, None, Some(0)),
        ];
        for &(text, host, port, password, db) in cases {
            let url = RedisUrl::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(url.host, host, "{text}");
            assert_eq!(url.port, port, "{text}");
            assert_eq!(url.password.as_deref(), password, "{text}");
            assert_eq!(url.db, db, "{text}");
        }
    }

    #[test]
    fn bad_urls_say_why() {
        for (text, why) in [
            ("rediss://h:1", "not supported"),
            ("http://h:1", "expected redis://"),
            ("h:1", "expected redis://"),
            ("redis://h", "a port is needed"),
            ("redis://:1", "a host is needed"),
            ("redis://h:0", "not 1 to 65535"),
            ("redis://h:99999", "not 1 to 65535"),
            ("redis://h:x", "not 1 to 65535"),
            ("redis://h:1/x", "not a number"),
            ("redis://user:pw@h:1", "user name"),
            ("redis://:@h:1", "empty password"),
            ("redis://h:1?db=2", "no query"),
            ("redis://[::1]/0", "[address]:port"),
        ] {
            match RedisUrl::parse(text) {
                Err(e) => assert!(e.contains(why), "{text}: {e}"),
                Ok(url) => panic!("{text} parsed as {url:?}"),
            }
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let url = RedisUrl::parse("redis://:hunter2@h:1").unwrap();
        assert!(!format!("{url:?}").contains("hunter2"));
    }
}
