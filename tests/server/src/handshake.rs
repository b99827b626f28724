//! HTTP side of the opening handshake: reading the upgrade request and
//! building responses.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};
use tungstenite::handshake::derive_accept_key;

/// Largest request head accepted from a client.
const MAX_REQUEST: usize = 32 * 1024;
/// Most request headers accepted.
const MAX_HEADERS: usize = 128;

/// A parsed HTTP request head.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Method, e.g. `GET`.
    pub method: String,
    /// Request target as sent, e.g. `/echo?x=1`.
    pub target: String,
    /// HTTP minor version (1 for HTTP/1.1).
    pub version: u8,
    /// Headers in order, names lowercased.
    pub headers: Vec<(String, String)>,
}

impl Request {
    /// First value of header `name` (give it lowercased).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All comma-separated tokens of every `name` header, trimmed, empty ones dropped.
    pub fn tokens(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(','))
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
            .collect()
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.tokens(name)
            .iter()
            .any(|t| t.eq_ignore_ascii_case(token))
    }
}

/// Reads one request head. Returns the request and any bytes read past its end.
/// Fails with `InvalidData` on malformed or oversized requests and
/// `UnexpectedEof` if the client closes first.
pub async fn read_request<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<(Request, Vec<u8>)> {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        let mut tmp = [0u8; 4096];
        let n = r.read(&mut tmp).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&tmp[..n]);
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        match req.parse(&buf) {
            Ok(httparse::Status::Complete(len)) => {
                let parsed = Request {
                    method: req.method.unwrap_or("").to_string(),
                    target: req.path.unwrap_or("").to_string(),
                    version: req.version.unwrap_or(0),
                    headers: req
                        .headers
                        .iter()
                        .map(|h| {
                            (
                                h.name.to_ascii_lowercase(),
                                String::from_utf8_lossy(h.value).into_owned(),
                            )
                        })
                        .collect(),
                };
                return Ok((parsed, buf[len..].to_vec()));
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_REQUEST => continue,
            Ok(httparse::Status::Partial) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "request too large",
                ))
            }
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }
}

/// Checks that `req` is a valid WebSocket upgrade (RFC 6455 section 4.2.1).
/// Returns the `Sec-WebSocket-Key`, or a complete error response to send.
pub fn check_upgrade(req: &Request) -> Result<String, Vec<u8>> {
    let fail = |status: u16, why: &str| Err(simple_response(status, &[], why.as_bytes()));
    if req.method != "GET" {
        return fail(400, "method must be GET");
    }
    if req.version != 1 {
        return fail(400, "HTTP/1.1 required");
    }
    if req.header("host").is_none() {
        return fail(400, "missing Host");
    }
    if !req.has_token("upgrade", "websocket") {
        return fail(400, "missing Upgrade: websocket");
    }
    if !req.has_token("connection", "upgrade") {
        return fail(400, "missing Connection: Upgrade");
    }
    if req.header("sec-websocket-version").map(str::trim) != Some("13") {
        return Err(simple_response(
            426,
            &[("Sec-WebSocket-Version", "13")],
            b"Sec-WebSocket-Version must be 13",
        ));
    }
    match req.header("sec-websocket-key").map(str::trim) {
        Some(key) if !key.is_empty() => Ok(key.to_string()),
        _ => fail(400, "missing Sec-WebSocket-Key"),
    }
}

/// Builds the `101 Switching Protocols` response. `protocol` / `extensions`
/// add those headers verbatim when `Some` (an empty value is sent as empty).
pub fn accept_response(key: &str, protocol: Option<&str>, extensions: Option<&str>) -> Vec<u8> {
    let mut s = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n",
        derive_accept_key(key.as_bytes())
    );
    if let Some(p) = protocol {
        s.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    if let Some(e) = extensions {
        s.push_str(&format!("Sec-WebSocket-Extensions: {e}\r\n"));
    }
    s.push_str("\r\n");
    s.into_bytes()
}

/// A `101` response whose `Sec-WebSocket-Accept` is deliberately wrong.
pub fn bad_accept_response(key: &str) -> Vec<u8> {
    let wrong = derive_accept_key(format!("{key}-wrong").as_bytes());
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {wrong}\r\n\r\n"
    )
    .into_bytes()
}

/// A complete non-upgrade response with `Content-Length` and `Connection: close`.
pub fn simple_response(status: u16, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut s = format!("HTTP/1.1 {} {}\r\n", status, reason_phrase(status));
    for (k, v) in headers {
        s.push_str(&format!("{k}: {v}\r\n"));
    }
    s.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut out = s.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Standard reason phrase for common status codes (`Status` otherwise).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        426 => "Upgrade Required",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn parses_and_checks_upgrade() {
        let raw = b"GET /echo?a=1 HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: a, b\r\n\r\n\x81";
        let (req, rest) = read_request(&mut &raw[..]).await.unwrap();
        assert_eq!(req.target, "/echo?a=1");
        assert_eq!(rest, b"\x81");
        assert_eq!(req.tokens("sec-websocket-protocol"), vec!["a", "b"]);
        let key = check_upgrade(&req).unwrap();
        let resp = String::from_utf8(accept_response(&key, Some("a"), None)).unwrap();
        assert!(resp.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
        assert!(resp.contains("Sec-WebSocket-Protocol: a\r\n"));
        assert!(!resp.contains("Extensions"));
    }
}
