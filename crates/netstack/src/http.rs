//! A small HTTP/1.1 responder and client for hosts talking to real ones.
//!
//! No kernel twin: HTTP lives in user space. The responder answers what the
//! interop tests and `netstack serve` need (RFC 9112 message framing with
//! `Content-Length`, persistent connections, no ranges, no request bodies
//! beyond a declared `Content-Length`); the client is `netstack get`.
//!
//! The body of `GET /bytes/N` is [`http_pattern`]: byte `i` is
//! `(i % 251) ^ ((i / 251) % 256)`, a pattern that repeats only every
//! 64 256 bytes (251 × 256), so a lost, repeated or reordered segment of
//! any size a TCP stack sends changes the hash. In Python:
//! `bytes((i % 251) ^ ((i // 251) & 255) for i in range(n))`.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};

/// The longest request head (request line and headers) the responder
/// reads before answering 400.
pub const HTTP_MAX_HEAD: usize = 16 * 1024;

/// The largest `N` of `GET /bytes/N` (1 TiB).
pub const HTTP_MAX_BYTES: u64 = 1 << 40;

/// The period of [`http_pattern`] in bytes (251 × 256).
pub const HTTP_PATTERN_PERIOD: usize = 251 * 256;

/// Byte `i` of a `/bytes/N` body: `(i % 251) ^ ((i / 251) % 256)`.
pub fn http_pattern(i: u64) -> u8 {
    ((i % 251) as u8) ^ ((i / 251) as u8)
}

/// One period of [`http_pattern`], to copy bodies from.
pub(crate) fn pattern_period() -> Vec<u8> {
    (0..HTTP_PATTERN_PERIOD as u64).map(http_pattern).collect()
}

/// Writes `len` bytes of the pattern starting at offset 0 to `w`, in
/// chunks of up to 64 KiB.
pub fn write_pattern(w: &mut impl Write, len: u64) -> std::io::Result<()> {
    let period = pattern_period();
    let mut off = 0u64;
    while off < len {
        let start = (off % HTTP_PATTERN_PERIOD as u64) as usize;
        let n = ((HTTP_PATTERN_PERIOD - start) as u64).min(len - off) as usize;
        w.write_all(&period[start..start + n])?;
        off += n as u64;
    }
    Ok(())
}

/// A parsed request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    /// The method (`GET`, `HEAD`, ...).
    pub method: String,
    /// The request target (`/bytes/100`).
    pub target: String,
    /// The minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// The declared body length (`Content-Length`), read and discarded.
    pub content_length: u64,
}

/// Why a request head is malformed (answered with 400).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadRequest(pub String);

impl std::fmt::Display for BadRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where the head (request line and headers, through the blank line)
/// ends in `buf`, if it is complete.
pub fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Parses a complete request head (RFC 9112 §3 and §6: request line,
/// header fields, `Connection`, `Content-Length`).
pub fn parse_request(head: &[u8]) -> Result<HttpRequest, BadRequest> {
    let bad = |why: &str| BadRequest(why.to_owned());
    let text = std::str::from_utf8(head).map_err(|_| bad("request head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("request line is not `METHOD TARGET HTTP/1.x`"));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(bad("bad method"));
    }
    if !target.starts_with('/') {
        return Err(bad("request target must start with `/`"));
    }
    let minor = match version {
        "HTTP/1.1" => 1,
        "HTTP/1.0" => 0,
        _ => return Err(bad("version must be HTTP/1.0 or HTTP/1.1")),
    };
    let mut keep_alive = minor == 1;
    let mut content_length = None;
    for l in lines {
        if l.is_empty() {
            continue;
        }
        let Some((name, value)) = l.split_once(':') else {
            return Err(bad("header line without `:`"));
        };
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(bad("bad header name"));
        }
        let value = value.trim();
        if name.eq_ignore_ascii_case("connection") {
            for tok in value.split(',').map(str::trim) {
                if tok.eq_ignore_ascii_case("close") {
                    keep_alive = false;
                } else if tok.eq_ignore_ascii_case("keep-alive") {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("content-length") {
            let n: u64 = value.parse().map_err(|_| bad("bad Content-Length"))?;
            if content_length.is_some_and(|c| c != n) {
                return Err(bad("conflicting Content-Length"));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(bad(
                "request bodies with Transfer-Encoding are not accepted",
            ));
        }
    }
    Ok(HttpRequest {
        method: method.to_owned(),
        target: target.to_owned(),
        minor,
        keep_alive,
        content_length: content_length.unwrap_or(0),
    })
}

/// What the responder answers to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpRoute {
    /// `GET /bytes/N`: N bytes of [`http_pattern`].
    Bytes(u64),
    /// `GET /`: the status page.
    Status,
    /// Another path: 404.
    NotFound,
    /// Another method than GET or HEAD: 405.
    MethodNotAllowed,
    /// `/bytes/` with something other than a number up to
    /// [`HTTP_MAX_BYTES`]: 400.
    BadBytes,
}

/// Routes a request.
pub fn route(req: &HttpRequest) -> HttpRoute {
    if req.method != "GET" && req.method != "HEAD" {
        return HttpRoute::MethodNotAllowed;
    }
    let path = req.target.split('?').next().unwrap_or_default();
    if path == "/" {
        return HttpRoute::Status;
    }
    if let Some(n) = path.strip_prefix("/bytes/") {
        if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
            return HttpRoute::BadBytes;
        }
        return match n.parse::<u64>() {
            Ok(n) if n <= HTTP_MAX_BYTES => HttpRoute::Bytes(n),
            _ => HttpRoute::BadBytes,
        };
    }
    HttpRoute::NotFound
}

/// A response head with `Content-Length`, and `Connection: close` when
/// the connection ends after it.
pub fn response_head(status: u16, reason: &str, ctype: &str, len: u64, keep_alive: bool) -> String {
    let conn = if keep_alive { "keep-alive" } else { "close" };
    format!(
        "HTTP/1.1 {status} {reason}\r\nServer: netstack\r\nContent-Type: {ctype}\r\nContent-Length: {len}\r\nConnection: {conn}\r\n\r\n"
    )
}

/// A parsed `http://A.B.C.D[:PORT]/PATH` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    /// The server.
    pub addr: SocketAddrV4,
    /// The path (with query), starting with `/`.
    pub path: String,
}

impl std::str::FromStr for HttpUrl {
    type Err = String;

    /// Parses `http://A.B.C.D[:PORT][/PATH]`; hosts are IPv4 literals
    /// (the stack has no resolver).
    fn from_str(s: &str) -> Result<HttpUrl, String> {
        let bad = |why: &str| format!("bad URL `{s}`: {why}; accepts http://A.B.C.D[:PORT][/PATH]");
        let rest = s
            .strip_prefix("http://")
            .ok_or_else(|| bad("not http://"))?;
        let (hostport, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse::<u16>().map_err(|_| bad("bad port"))?),
            None => (hostport, 80),
        };
        let ip: Ipv4Addr = host
            .parse()
            .map_err(|_| bad("host is not an IPv4 address"))?;
        Ok(HttpUrl {
            addr: SocketAddrV4::new(ip, port),
            path: path.to_owned(),
        })
    }
}

/// A response head as the client reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponseHead {
    /// The status code.
    pub status: u16,
    /// The body length, if declared.
    pub content_length: Option<u64>,
    /// Whether the body is chunked (not supported by the client).
    pub chunked: bool,
}

/// Parses a complete response head.
pub fn parse_response(head: &[u8]) -> Result<HttpResponseHead, String> {
    let text = std::str::from_utf8(head).map_err(|_| "response head is not UTF-8".to_owned())?;
    let mut lines = text.split("\r\n");
    let line = lines.next().unwrap_or_default();
    let mut parts = line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(format!("bad status line `{line}`"));
    }
    let status: u16 = parts
        .next()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("bad status line `{line}`"))?;
    let mut content_length = None;
    let mut chunked = false;
    for l in lines {
        let Some((name, value)) = l.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(
                value
                    .parse()
                    .map_err(|_| format!("bad Content-Length `{value}`"))?,
            );
        } else if name.eq_ignore_ascii_case("transfer-encoding")
            && value.to_ascii_lowercase().contains("chunked")
        {
            chunked = true;
        }
    }
    Ok(HttpResponseHead {
        status,
        content_length,
        chunked,
    })
}

/// What a GET fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpGetReport {
    /// The status code.
    pub status: u16,
    /// Body bytes received (and written to the sink).
    pub bytes: u64,
    /// Time from the start of `connect` to the last byte.
    pub elapsed: std::time::Duration,
}

impl HttpGetReport {
    /// Body throughput in Gbit/s.
    pub fn gbps(&self) -> f64 {
        let ns = self.elapsed.as_nanos() as f64;
        if ns <= 0.0 {
            0.0
        } else {
            self.bytes as f64 * 8.0 / ns
        }
    }
}

/// Sends `GET url.path` on `conn` and copies the body to `sink`: reads the
/// head, then `Content-Length` bytes (or to end of stream when the server
/// declared none). Chunked bodies are refused.
pub fn http_get_on(
    conn: &mut impl ReadWrite,
    url: &HttpUrl,
    sink: &mut impl Write,
    start: std::time::Instant,
) -> Result<HttpGetReport, String> {
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: netstack\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        url.path, url.addr
    );
    conn.write_all(req.as_bytes())
        .map_err(|e| format!("sending the request: {e}"))?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut have = 0usize;
    let end = loop {
        if let Some(e) = head_end(&buf[..have]) {
            break e;
        }
        if have >= HTTP_MAX_HEAD {
            return Err(format!("response head longer than {HTTP_MAX_HEAD} bytes"));
        }
        let n = conn
            .read(&mut buf[have..])
            .map_err(|e| format!("reading the response head: {e}"))?;
        if n == 0 {
            return Err("connection closed before the response head ended".to_owned());
        }
        have += n;
    };
    let head = parse_response(&buf[..end])?;
    if head.chunked {
        return Err("chunked transfer coding is not supported".to_owned());
    }
    let mut bytes = (have - end) as u64;
    sink.write_all(&buf[end..have])
        .map_err(|e| format!("writing the body: {e}"))?;
    loop {
        if head.content_length.is_some_and(|l| bytes >= l) {
            break;
        }
        let n = conn
            .read(&mut buf)
            .map_err(|e| format!("reading the body after {bytes} bytes: {e}"))?;
        if n == 0 {
            if let Some(l) = head.content_length {
                return Err(format!("connection closed after {bytes} of {l} body bytes"));
            }
            break;
        }
        sink.write_all(&buf[..n])
            .map_err(|e| format!("writing the body: {e}"))?;
        bytes += n as u64;
    }
    Ok(HttpGetReport {
        status: head.status,
        bytes,
        elapsed: start.elapsed(),
    })
}

/// A byte stream (a TCP connection).
pub trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(s: &str) -> Result<HttpRequest, BadRequest> {
        parse_request(s.as_bytes())
    }

    #[test]
    fn pattern_is_the_documented_formula_and_period() {
        assert_eq!(http_pattern(0), 0);
        assert_eq!(http_pattern(250), 250);
        assert_eq!(http_pattern(251), 1);
        assert_eq!(http_pattern(252), 1 ^ 1);
        let p = pattern_period();
        assert_eq!(p.len(), HTTP_PATTERN_PERIOD);
        for i in [0u64, 1, 64_255, 64_256, 64_257, 1_000_000] {
            assert_eq!(
                http_pattern(i),
                p[(i % HTTP_PATTERN_PERIOD as u64) as usize]
            );
        }
        let mut out = Vec::new();
        write_pattern(&mut out, 200_000).unwrap();
        assert_eq!(out.len(), 200_000);
        assert!(
            out.iter()
                .enumerate()
                .all(|(i, &b)| b == http_pattern(i as u64))
        );
    }

    #[test]
    fn requests_parse_with_keep_alive_rules() {
        let r = req("GET /bytes/10 HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        assert_eq!(r.target, "/bytes/10");
        assert!(r.keep_alive);
        assert_eq!(route(&r), HttpRoute::Bytes(10));
        let r = req("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
        assert!(!r.keep_alive);
        assert_eq!(route(&r), HttpRoute::Status);
        let r = req("GET /x HTTP/1.0\r\n\r\n").unwrap();
        assert!(!r.keep_alive);
        assert_eq!(route(&r), HttpRoute::NotFound);
        let r = req("GET /x HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").unwrap();
        assert!(r.keep_alive);
        let r = req("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n").unwrap();
        assert_eq!(r.content_length, 3);
        assert_eq!(route(&r), HttpRoute::MethodNotAllowed);
        let r = req("GET /bytes/abc HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(route(&r), HttpRoute::BadBytes);
        let r = req("GET /bytes/2000000000000 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(route(&r), HttpRoute::BadBytes);
    }

    #[test]
    fn malformed_requests_say_why() {
        for (s, why) in [
            ("GET /\r\n\r\n", "request line"),
            ("GET / HTTP/2.0\r\n\r\n", "version"),
            ("get / HTTP/1.1\r\n\r\n", "method"),
            ("GET x HTTP/1.1\r\n\r\n", "target"),
            ("GET / HTTP/1.1\r\nNoColon\r\n\r\n", "`:`"),
            (
                "GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n",
                "Content-Length",
            ),
            (
                "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
                "Transfer-Encoding",
            ),
        ] {
            let e = req(s).unwrap_err();
            assert!(e.0.contains(why), "{s:?}: {e}");
        }
        assert!(parse_request(&[0xff, 0xfe]).is_err());
    }

    #[test]
    fn urls_parse_and_bad_ones_are_refused() {
        let u: HttpUrl = "http://198.18.0.1:8000/f.bin".parse().unwrap();
        assert_eq!(u.addr, "198.18.0.1:8000".parse().unwrap());
        assert_eq!(u.path, "/f.bin");
        let u: HttpUrl = "http://198.18.0.1".parse().unwrap();
        assert_eq!(u.addr.port(), 80);
        assert_eq!(u.path, "/");
        for s in [
            "https://1.2.3.4/",
            "http://example.com/",
            "http://1.2.3.4:x/",
        ] {
            assert!(s.parse::<HttpUrl>().unwrap_err().contains("accepts"), "{s}");
        }
    }

    #[test]
    fn get_reads_exactly_content_length_and_refuses_short_bodies() {
        struct Fake {
            input: std::io::Cursor<Vec<u8>>,
            sent: Vec<u8>,
        }
        impl Read for Fake {
            fn read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
                self.input.read(b)
            }
        }
        impl Write for Fake {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.sent.extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let url: HttpUrl = "http://198.18.0.1/x".parse().unwrap();
        let mut f = Fake {
            input: std::io::Cursor::new(
                b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_vec(),
            ),
            sent: Vec::new(),
        };
        let mut body = Vec::new();
        let r = http_get_on(&mut f, &url, &mut body, std::time::Instant::now()).unwrap();
        assert_eq!((r.status, r.bytes), (200, 5));
        assert_eq!(body, b"hello");
        assert!(
            f.sent
                .starts_with(b"GET /x HTTP/1.1\r\nHost: 198.18.0.1:80\r\n")
        );
        let mut f = Fake {
            input: std::io::Cursor::new(
                b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nhello".to_vec(),
            ),
            sent: Vec::new(),
        };
        let e = http_get_on(&mut f, &url, &mut Vec::new(), std::time::Instant::now()).unwrap_err();
        assert!(e.contains("after 5 of 9"), "{e}");
    }
}
