//! The PROXY protocol header, versions 1 and 2, as HAProxy's
//! specification defines it (`proxy-protocol.txt` in HAProxy's
//! documentation): a pure parser over the bytes received so far, which says the
//! header is incomplete, complete (with its length and the client's
//! address), or invalid (and why).
//!
//! Bounded both ways: a v1 line may not exceed 107 bytes (the spec's
//! worst case), a v2 header's payload not [`V2_MAX_PAYLOAD`]; and bytes
//! that can start no header are refused at the first byte, so a client
//! that speaks HTTP or TLS straight to the port is refused at once rather
//! than at the deadline.
//!
//! What keeps the socket's address (`source: None`): v1 `UNKNOWN`, v2
//! `LOCAL` (HAProxy's own health checks), and v2 `PROXY` with a family or
//! transport that names no TCP client — `AF_UNSPEC`, `AF_UNIX`, or a UDP
//! (`DGRAM`) source. The spec lets a receiver accept those with the real
//! endpoints or refuse them; refusing would break a working chain (a
//! balancer that listens on a UNIX socket) for no safety gain, while an
//! address that is not a TCP peer's is of no use as the client's.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The longest v1 header, CRLF included (spec section 2.1: `PROXY TCP6`
/// with two full IPv6 addresses and two 5-digit ports).
pub const V1_MAX: usize = 107;

/// The v2 signature, the first 12 bytes of every v2 header.
pub const V2_SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// Bytes of a v2 header before its payload: signature, version and
/// command, family and transport, payload length.
const V2_FIXED: usize = 16;

/// The largest v2 payload (addresses and TLVs) accepted. The length field
/// allows 64 KiB; real senders send the addresses and a few TLVs (HAProxy's
/// SSL and unique-id TLVs, a cloud balancer's endpoint id), far below this.
/// The cap bounds what one connection buffers before it is known to be
/// from a balancer at all.
pub const V2_MAX_PAYLOAD: usize = 4096;

const V1_PREFIX: &[u8] = b"PROXY ";

/// What the bytes received so far hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A header may still follow: more bytes are needed.
    Incomplete,
    /// A complete header of `len` bytes; the bytes after it are the
    /// connection's own. `source` is the client's address, or `None` when
    /// the header names none (see the module's notes): the socket's peer
    /// then stands for the client.
    Header {
        len: usize,
        source: Option<SocketAddr>,
    },
    /// No valid header can start with these bytes.
    Invalid(&'static str),
}

/// Parses the header at the front of `buf` (the bytes received so far).
///
/// # Examples
/// ```
/// use server::proxy_protocol::parse::{parse, Parsed};
///
/// let header = b"PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\nGET /";
/// assert_eq!(
///     parse(header),
///     Parsed::Header { len: 45, source: Some("192.0.2.1:56324".parse().unwrap()) }
/// );
/// assert_eq!(parse(&header[..20]), Parsed::Incomplete);
/// assert!(matches!(parse(b"GET / HTTP/1.1\r\n"), Parsed::Invalid(_)));
/// ```
pub fn parse(buf: &[u8]) -> Parsed {
    match buf.first() {
        None => Parsed::Incomplete,
        Some(b'P') => v1(buf),
        Some(b'\r') => v2(buf),
        Some(_) => Parsed::Invalid("not a PROXY protocol header"),
    }
}

/// Whether `buf` and `expected` agree as far as both go.
fn agrees(buf: &[u8], expected: &[u8]) -> bool {
    let n = buf.len().min(expected.len());
    buf[..n] == expected[..n]
}

fn v1(buf: &[u8]) -> Parsed {
    if !agrees(buf, V1_PREFIX) {
        return Parsed::Invalid("not a PROXY protocol header");
    }
    let window = &buf[..buf.len().min(V1_MAX)];
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        if buf.len() >= V1_MAX {
            return Parsed::Invalid("v1 line longer than 107 bytes");
        }
        // Refused now rather than at the deadline: a byte no v1 line has
        // (a CR is allowed only last, where the LF may follow).
        let (last, before) = window.split_last().expect("starts with P");
        if !before.iter().all(|&b| printable(b)) || !(printable(*last) || *last == b'\r') {
            return Parsed::Invalid("v1 line holds a byte other than printable ASCII");
        }
        return Parsed::Incomplete;
    };
    // The prefix holds no LF, so `lf` >= 6.
    if window[lf - 1] != b'\r' {
        return Parsed::Invalid("v1 line not ended by CRLF");
    }
    let line = &window[V1_PREFIX.len()..lf - 1];
    if !line.iter().all(|&b| printable(b)) {
        return Parsed::Invalid("v1 line holds a byte other than printable ASCII");
    }
    let line = std::str::from_utf8(line).expect("printable ASCII");
    match v1_fields(line) {
        Ok(source) => Parsed::Header {
            len: lf + 1,
            source,
        },
        Err(why) => Parsed::Invalid(why),
    }
}

fn printable(b: u8) -> bool {
    b == b' ' || b.is_ascii_graphic()
}

/// The fields after `PROXY `: `UNKNOWN[ anything]`, or `TCP4|TCP6 SRC DST
/// SPORT DPORT`, single spaces apart (spec 2.1).
fn v1_fields(line: &str) -> Result<Option<SocketAddr>, &'static str> {
    if line == "UNKNOWN" || line.starts_with("UNKNOWN ") {
        // The receiver ignores whatever follows (spec 2.1).
        return Ok(None);
    }
    let fields: Vec<&str> = line.split(' ').collect();
    let [family, src, dst, sport, dport] = fields[..] else {
        return Err("v1 line does not have 5 fields after PROXY");
    };
    let (src, _dst): (IpAddr, IpAddr) = match family {
        "TCP4" => (
            src.parse::<Ipv4Addr>()
                .map_err(|_| "v1 source is not an IPv4 address")?
                .into(),
            dst.parse::<Ipv4Addr>()
                .map_err(|_| "v1 destination is not an IPv4 address")?
                .into(),
        ),
        "TCP6" => (
            src.parse::<Ipv6Addr>()
                .map_err(|_| "v1 source is not an IPv6 address")?
                .into(),
            dst.parse::<Ipv6Addr>()
                .map_err(|_| "v1 destination is not an IPv6 address")?
                .into(),
        ),
        _ => return Err("v1 protocol is not TCP4, TCP6 or UNKNOWN"),
    };
    let sport = port(sport).ok_or("v1 source port is not a number from 0 to 65535")?;
    port(dport).ok_or("v1 destination port is not a number from 0 to 65535")?;
    Ok(Some(SocketAddr::new(src, sport)))
}

/// Digits only: `u16::from_str` would take a sign (`+80`).
fn port(text: &str) -> Option<u16> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

const CMD_LOCAL: u8 = 0x0;
const CMD_PROXY: u8 = 0x1;
const AF_UNSPEC: u8 = 0x0;
const AF_INET: u8 = 0x1;
const AF_INET6: u8 = 0x2;
const AF_UNIX: u8 = 0x3;
const STREAM: u8 = 0x1;
const DGRAM: u8 = 0x2;

fn v2(buf: &[u8]) -> Parsed {
    if !agrees(buf, &V2_SIGNATURE) {
        return Parsed::Invalid("not a PROXY protocol header");
    }
    // Each fixed byte is checked as soon as it is there.
    let Some(&version_command) = buf.get(12) else {
        return Parsed::Incomplete;
    };
    if version_command >> 4 != 2 {
        return Parsed::Invalid("v2 version is not 2");
    }
    let command = version_command & 0x0f;
    if command != CMD_LOCAL && command != CMD_PROXY {
        return Parsed::Invalid("v2 command is neither LOCAL nor PROXY");
    }
    let Some(&family_transport) = buf.get(13) else {
        return Parsed::Incomplete;
    };
    let (family, transport) = (family_transport >> 4, family_transport & 0x0f);
    // LOCAL discards the whole block, family included (spec 2.2).
    if command == CMD_PROXY {
        if family > AF_UNIX {
            return Parsed::Invalid("v2 address family unknown");
        }
        if transport > DGRAM {
            return Parsed::Invalid("v2 transport protocol unknown");
        }
    }
    let Some(length) = buf.get(14..16) else {
        return Parsed::Incomplete;
    };
    let payload = usize::from(u16::from_be_bytes([length[0], length[1]]));
    if payload > V2_MAX_PAYLOAD {
        return Parsed::Invalid("v2 header longer than 4096 bytes");
    }
    let addresses = match family {
        AF_INET => 12,
        AF_INET6 => 36,
        AF_UNIX => 216,
        _ => 0,
    };
    if command == CMD_PROXY && payload < addresses {
        return Parsed::Invalid("v2 header shorter than its addresses");
    }
    let len = V2_FIXED + payload;
    let Some(block) = buf.get(V2_FIXED..len) else {
        return Parsed::Incomplete;
    };
    if command == CMD_LOCAL {
        return Parsed::Header { len, source: None };
    }
    if let Err(why) = tlvs(&block[addresses..]) {
        return Parsed::Invalid(why);
    }
    let source = match (family, transport) {
        (AF_INET, STREAM) => {
            let ip: [u8; 4] = block[0..4].try_into().expect("4 bytes");
            let port = u16::from_be_bytes([block[8], block[9]]);
            Some(SocketAddr::new(Ipv4Addr::from(ip).into(), port))
        }
        (AF_INET6, STREAM) => {
            let ip: [u8; 16] = block[0..16].try_into().expect("16 bytes");
            let port = u16::from_be_bytes([block[32], block[33]]);
            Some(SocketAddr::new(Ipv6Addr::from(ip).into(), port))
        }
        // AF_UNSPEC, AF_UNIX, UDP: see the module's notes.
        _ => {
            debug_assert!(family == AF_UNSPEC || family == AF_UNIX || transport != STREAM);
            None
        }
    };
    Parsed::Header { len, source }
}

/// The TLVs after the addresses (spec 2.2.7): type, 16-bit length, value,
/// back to back to the end of the payload. Their values are skipped (none
/// changes the client's address); their framing must hold, as a broken
/// list means a broken sender.
fn tlvs(mut rest: &[u8]) -> Result<(), &'static str> {
    while !rest.is_empty() {
        let Some(head) = rest.get(..3) else {
            return Err("v2 TLV cut short");
        };
        let value = usize::from(u16::from_be_bytes([head[1], head[2]]));
        let Some(after) = rest.get(3 + value..) else {
            return Err("v2 TLV longer than the header");
        };
        rest = after;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
