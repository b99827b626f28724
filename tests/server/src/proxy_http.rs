//! HTTP/1.1 `CONNECT` negotiation, used plain and inside TLS.

use httparse::Status;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::proxy::{allowed_targets, connect_any, ProxyCtx, ProxyRequest, Tunnel};

/// Largest request head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// Largest number of header lines accepted.
const MAX_HEADERS: usize = 64;

/// The parts of a request head the proxy cares about.
struct Head {
    method: String,
    target: String,
    /// Values of every `Proxy-Authorization` header.
    proxy_auth: Vec<Vec<u8>>,
    /// Length of the head in bytes (including the blank line).
    len: usize,
}

/// Reads a `CONNECT` request, checks credentials and the target policy,
/// connects and answers `200`; on failure answers an error status and returns `None`.
pub(crate) async fn negotiate<S>(client: &mut S, ctx: &ProxyCtx) -> Option<Tunnel>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = Vec::with_capacity(1024);
    let head = loop {
        let mut chunk = [0u8; 2048];
        let n = client.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        match parse_head(&buf) {
            Ok(Some(head)) => break head,
            Ok(None) if buf.len() <= MAX_HEAD => continue,
            Ok(None) => {
                reply(client, "431 Request Header Fields Too Large", "").await;
                return None;
            }
            Err(()) => {
                reply(client, "400 Bad Request", "").await;
                return None;
            }
        }
    };
    if head.method != "CONNECT" {
        reply(client, "405 Method Not Allowed", "Allow: CONNECT\r\n").await;
        return None;
    }
    let Some((host, port)) = split_authority(&head.target) else {
        reply(client, "400 Bad Request", "").await;
        return None;
    };
    let authenticated = match &ctx.auth {
        Some((user, pass)) => {
            let want = basic_token(user, pass);
            head.proxy_auth.iter().any(|v| basic_matches(v, &want))
        }
        None => false,
    };
    let index = ctx.log.push(ProxyRequest {
        target_host: host.clone(),
        target_port: port,
        authenticated,
        accepted: false,
        socks_atyp: None,
    });
    if ctx.auth.is_some() && !authenticated {
        let extra = "Proxy-Authenticate: Basic realm=\"wsdom-test\"\r\n";
        reply(client, "407 Proxy Authentication Required", extra).await;
        return None;
    }
    let Some(addrs) = allowed_targets(&host, port).await else {
        reply(client, "403 Forbidden", "").await;
        return None;
    };
    let Ok(target) = connect_any(&addrs).await else {
        reply(client, "502 Bad Gateway", "").await;
        return None;
    };
    ctx.log.set_accepted(index);
    let ok = b"HTTP/1.1 200 Connection established\r\n\r\n";
    client.write_all(ok).await.ok()?;
    client.flush().await.ok()?;
    Some(Tunnel {
        target,
        early: buf[head.len..].to_vec(),
    })
}

/// `Ok(None)`: incomplete; `Err(())`: malformed (or too many headers).
fn parse_head(buf: &[u8]) -> Result<Option<Head>, ()> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(Status::Complete(len)) => Ok(Some(Head {
            method: req.method.unwrap_or_default().to_string(),
            target: req.path.unwrap_or_default().to_string(),
            proxy_auth: req
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("proxy-authorization"))
                .map(|h| h.value.to_vec())
                .collect(),
            len,
        })),
        Ok(Status::Partial) => Ok(None),
        Err(_) => Err(()),
    }
}

/// Splits an authority-form target: `host:port` or `[v6]:port`.
fn split_authority(target: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = target.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        (host, after.strip_prefix(':')?)
    } else {
        let (host, port) = target.rsplit_once(':')?;
        if host.contains(':') {
            return None; // an unbracketed IPv6 literal
        }
        (host, port)
    };
    if host.is_empty() || port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port: u16 = port.parse().ok()?;
    (port != 0).then(|| (host.to_string(), port))
}

/// Writes an error response with an empty body; the connection is closed afterwards.
async fn reply<S: AsyncWrite + Unpin>(client: &mut S, status: &str, extra_headers: &str) {
    let resp = format!(
        "HTTP/1.1 {status}\r\n{extra_headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if client.write_all(resp.as_bytes()).await.is_ok() {
        let _ = client.flush().await;
    }
}

/// `base64(user:pass)` without padding.
fn basic_token(user: &str, pass: &str) -> String {
    base64_unpadded(format!("{user}:{pass}").as_bytes())
}

/// Whether a `Proxy-Authorization` value is `Basic <want>` (scheme
/// case-insensitive, padding optional).
fn basic_matches(value: &[u8], want: &str) -> bool {
    let Ok(value) = std::str::from_utf8(value) else {
        return false;
    };
    let value = value.trim();
    let Some((scheme, token)) = value.split_once(' ') else {
        return false;
    };
    scheme.eq_ignore_ascii_case("basic") && token.trim().trim_end_matches('=') == want
}

/// Standard base64 alphabet, no padding.
fn base64_unpadded(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ];
        for (input, want) in cases {
            assert_eq!(base64_unpadded(input.as_bytes()), want);
        }
        assert!(basic_matches(
            b"Basic dXNlcjpwYXNz",
            &basic_token("user", "pass")
        ));
        assert!(basic_matches(b"basic  Zm8=", "Zm8"));
        assert!(!basic_matches(
            b"Bearer dXNlcjpwYXNz",
            &basic_token("user", "pass")
        ));
    }

    #[test]
    fn authority_forms() {
        assert_eq!(
            split_authority("127.0.0.1:80"),
            Some(("127.0.0.1".into(), 80))
        );
        assert_eq!(
            split_authority("localhost:8080"),
            Some(("localhost".into(), 8080))
        );
        assert_eq!(split_authority("[::1]:443"), Some(("::1".into(), 443)));
        assert_eq!(split_authority("::1:443"), None);
        assert_eq!(split_authority("host"), None);
        assert_eq!(split_authority("host:0"), None);
        assert_eq!(split_authority("host:+1"), None);
        assert_eq!(split_authority(":80"), None);
        assert_eq!(split_authority("[::1]443"), None);
    }
}
