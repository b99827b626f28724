//! The opening handshake (RFC 6455 §4.1, WHATWG "establish a WebSocket connection"):
//! building the upgrade request and validating the server's response. Pure logic, no I/O.

use crate::address::resource_name;
use base64::Engine;
use url::Url;

/// Largest response head accepted from the server, in bytes.
pub const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// An upgrade request ready to be written.
#[derive(Debug, Clone)]
pub struct Request {
    /// The `Sec-WebSocket-Key` sent (base64 of 16 random bytes).
    pub key: String,
    /// The whole HTTP/1.1 request head.
    pub bytes: Vec<u8>,
}

/// Builds the GET upgrade request for `url`.
///
/// `headers` are the user's extra headers (already validated); URL credentials become a Basic
/// `Authorization` header unless the user gave one.
pub fn build_request(
    url: &Url,
    protocols: &[String],
    extensions_offer: Option<&str>,
    headers: &[(String, String)],
) -> Request {
    let key = tungstenite::handshake::client::generate_key();
    let host = url.host_str().unwrap_or_default();
    let host = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    };
    let mut req = format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n",
        resource_name(url)
    );
    if !protocols.is_empty() {
        req.push_str(&format!(
            "Sec-WebSocket-Protocol: {}\r\n",
            protocols.join(", ")
        ));
    }
    if let Some(offer) = extensions_offer {
        req.push_str(&format!("Sec-WebSocket-Extensions: {offer}\r\n"));
    }
    let has = |n: &str| headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(n));
    if !url.username().is_empty() && !has("authorization") {
        let decode = |s: &str| percent_encoding::percent_decode_str(s).collect::<Vec<u8>>();
        let mut creds = decode(url.username());
        creds.push(b':');
        creds.extend(decode(url.password().unwrap_or("")));
        let b64 = base64::engine::general_purpose::STANDARD.encode(creds);
        req.push_str(&format!("Authorization: Basic {b64}\r\n"));
    }
    if !has("user-agent") {
        req.push_str(concat!(
            "User-Agent: wsdom/",
            env!("CARGO_PKG_VERSION"),
            "\r\n"
        ));
    }
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    req.push_str("\r\n");
    Request {
        key,
        bytes: req.into_bytes(),
    }
}

/// What the server agreed to in a valid 101 response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The subprotocol in use (`""` for none).
    pub protocol: String,
    /// The `Sec-WebSocket-Extensions` value, verbatim (`""` for none).
    pub extensions: String,
    /// Length of the response head; bytes after it are already WebSocket frames.
    pub head_len: usize,
}

/// Parses and validates the server's response in `buf`.
///
/// Returns `Ok(None)` while the head is incomplete, and a diagnostic for every reason the
/// WHATWG and RFC 6455 give to fail the connection. `offered_extensions` lists the extension
/// names the client offered.
pub fn check_response(
    buf: &[u8],
    key: &str,
    protocols: &[String],
    offered_extensions: &[&str],
) -> Result<Option<Accepted>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_RESPONSE_HEAD => {
            return Err(format!(
                "the response head exceeds {MAX_RESPONSE_HEAD} bytes"
            ))
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("the server's response is not valid HTTP: {e}")),
    };
    let code = resp.code.unwrap_or(0);
    if code != 101 {
        let reason = resp.reason.unwrap_or("");
        let redirect = if (300..400).contains(&code) {
            " (redirects are not followed)"
        } else {
            ""
        };
        return Err(format!(
            "the server answered HTTP {code} {reason}, expected 101 Switching Protocols{redirect}"
        ));
    }
    let values = |name: &str| -> Vec<&[u8]> {
        resp.headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
            .collect()
    };
    let single = |name: &str| -> Result<Option<String>, String> {
        match values(name).as_slice() {
            [] => Ok(None),
            [v] => std::str::from_utf8(v)
                .map(|s| Some(s.trim().to_owned()))
                .map_err(|_| format!("the {name} header is not valid text")),
            _ => Err(format!("the response has more than one {name} header")),
        }
    };
    match single("Upgrade")? {
        Some(v) if v.eq_ignore_ascii_case("websocket") => {}
        other => return Err(format!("bad Upgrade header in the response: {other:?}")),
    }
    let connection_ok = values("Connection").iter().any(|v| {
        String::from_utf8_lossy(v)
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
    });
    if !connection_ok {
        return Err("the response's Connection header lacks the Upgrade token".into());
    }
    let expected = tungstenite::handshake::derive_accept_key(key.as_bytes());
    match single("Sec-WebSocket-Accept")? {
        Some(v) if v == expected => {}
        Some(v) => return Err(format!("wrong Sec-WebSocket-Accept {v:?}")),
        None => return Err("the response has no Sec-WebSocket-Accept header".into()),
    }
    let protocol = single("Sec-WebSocket-Protocol")?.unwrap_or_default();
    if protocol.is_empty() {
        if !protocols.is_empty() {
            return Err(format!(
                "the server selected no subprotocol, but {protocols:?} were offered"
            ));
        }
    } else if !protocols.contains(&protocol) {
        return Err(format!(
            "the server selected subprotocol {protocol:?}, which was not offered"
        ));
    }
    let extensions = values("Sec-WebSocket-Extensions")
        .iter()
        .map(|v| String::from_utf8_lossy(v).trim().to_owned())
        .collect::<Vec<_>>()
        .join(", ");
    for ext in extensions
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let name = ext.split(';').next().unwrap_or("").trim();
        if !offered_extensions
            .iter()
            .any(|o| o.eq_ignore_ascii_case(name))
        {
            return Err(format!(
                "the server selected extension {name:?}, which was not offered"
            ));
        }
    }
    Ok(Some(Accepted {
        protocol,
        extensions,
        head_len,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(url: &str, protocols: &[&str]) -> (Request, String) {
        let url = Url::parse(url).unwrap();
        let p: Vec<String> = protocols.iter().map(|s| s.to_string()).collect();
        let r = build_request(&url, &p, None, &[("Origin".into(), "http://o".into())]);
        let text = String::from_utf8(r.bytes.clone()).unwrap();
        (r, text)
    }

    fn response(key: &str, extra: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n\
             Sec-WebSocket-Accept: {}\r\n{extra}\r\n",
            tungstenite::handshake::derive_accept_key(key.as_bytes())
        )
        .into_bytes()
    }

    #[test]
    fn request_has_the_required_headers() {
        let (r, text) = req("ws://u%20x:p@Example.com:8080/a/b?q=1", &["chat", "v2"]);
        assert!(text.starts_with("GET /a/b?q=1 HTTP/1.1\r\nHost: example.com:8080\r\n"));
        assert!(text.contains("Upgrade: websocket\r\n"));
        assert!(text.contains("Connection: Upgrade\r\n"));
        assert!(text.contains(&format!("Sec-WebSocket-Key: {}\r\n", r.key)));
        assert!(text.contains("Sec-WebSocket-Version: 13\r\n"));
        assert!(text.contains("Sec-WebSocket-Protocol: chat, v2\r\n"));
        assert!(text.contains("Authorization: Basic dSB4OnA=\r\n"));
        assert!(text.contains("Origin: http://o\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
        assert_eq!(
            base64::engine::general_purpose::STANDARD
                .decode(&r.key)
                .unwrap()
                .len(),
            16
        );
        let (_, text) = req("ws://h/?", &[]);
        assert!(text.starts_with("GET / HTTP/1.1\r\nHost: h\r\n"));
        assert!(!text.contains("Sec-WebSocket-Protocol"));
    }

    #[test]
    fn accepts_a_valid_response_with_trailing_frames() {
        let mut buf = response("k", "Sec-WebSocket-Protocol: chat\r\n");
        let head = buf.len();
        buf.extend_from_slice(b"\x81\x01x");
        let a = check_response(&buf, "k", &["chat".into()], &[])
            .unwrap()
            .unwrap();
        assert_eq!(a.protocol, "chat");
        assert_eq!(a.extensions, "");
        assert_eq!(a.head_len, head);
        assert_eq!(check_response(&buf[..10], "k", &[], &[]).unwrap(), None);
    }

    #[test]
    fn rejects_every_invalid_response() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let bad = |buf: &[u8], protocols: &[String]| {
            check_response(buf, "k", protocols, &[]).unwrap_err()
        };
        assert!(bad(b"HTTP/1.1 200 OK\r\n\r\n", &[]).contains("200"));
        assert!(bad(b"HTTP/1.1 302 Found\r\nLocation: ws://x/\r\n\r\n", &[]).contains("redirect"));
        assert!(bad(b"FOO BAR BAZ\r\n\r\n", &[]).contains("not valid HTTP"));
        let wrong_accept = b"HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: abc\r\n\r\n";
        assert!(bad(wrong_accept, &[]).contains("Accept"));
        let no_upgrade = b"HTTP/1.1 101 S\r\nConnection: Upgrade\r\n\r\n";
        assert!(bad(no_upgrade, &[]).contains("Upgrade"));
        let ok = String::from_utf8(response("k", "")).unwrap();
        let no_conn = ok.replace("Connection: keep-alive, Upgrade\r\n", "");
        assert!(bad(no_conn.as_bytes(), &[]).contains("Connection"));
        assert!(
            bad(&response("k", "Sec-WebSocket-Protocol: chat\r\n"), &[]).contains("not offered")
        );
        assert!(bad(
            &response("k", "Sec-WebSocket-Protocol: CHAT\r\n"),
            &p(&["chat"])
        )
        .contains("not offered"));
        assert!(bad(&response("k", ""), &p(&["chat"])).contains("no subprotocol"));
        assert!(bad(&response("k", "Sec-WebSocket-Extensions: x-foo\r\n"), &[]).contains("x-foo"));
        let ok_ext = check_response(
            &response(
                "k",
                "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=15\r\n",
            ),
            "k",
            &[],
            &["permessage-deflate"],
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            ok_ext.extensions,
            "permessage-deflate; client_max_window_bits=15"
        );
        let huge = vec![b'a'; MAX_RESPONSE_HEAD];
        assert!(bad(&huge, &[]).contains("not valid HTTP") || bad(&huge, &[]).contains("exceeds"));
    }
}
