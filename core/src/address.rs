//! The constructor's URL steps (WHATWG WebSockets, constructor steps 1-7).

use crate::error::DomError;
use url::Url;

/// Parses `input` the way `new WebSocket(input)` does.
///
/// Relative URLs resolve against `base` (a SyntaxError without one), `http` becomes `ws`
/// and `https` becomes `wss`, any other scheme and any fragment (even an empty `#`) are
/// SyntaxErrors.
pub fn parse_websocket_url(input: &str, base: Option<&str>) -> Result<Url, DomError> {
    let base = match base {
        Some(b) => Some(
            Url::parse(b).map_err(|e| DomError::syntax(format!("invalid base URL {b:?}: {e}")))?,
        ),
        None => None,
    };
    let mut url = Url::options()
        .base_url(base.as_ref())
        .parse(input)
        .map_err(|e| match (e, base.is_none()) {
            (url::ParseError::RelativeUrlWithoutBase, true) => DomError::syntax(format!(
                "{input:?} is a relative URL and no base URL was given"
            )),
            (e, _) => DomError::syntax(format!("invalid URL {input:?}: {e}")),
        })?;
    let new_scheme = match url.scheme() {
        "ws" | "wss" => None,
        "http" => Some("ws"),
        "https" => Some("wss"),
        other => {
            return Err(DomError::syntax(format!(
                "the URL's scheme must be ws, wss, http or https, not {other:?}"
            )))
        }
    };
    if let Some(scheme) = new_scheme {
        // http and ws are both "special" schemes, so the url crate allows the swap.
        url.set_scheme(scheme)
            .map_err(|()| DomError::syntax("cannot rewrite the URL scheme"))?;
    }
    if url.fragment().is_some() {
        return Err(DomError::syntax(format!(
            "a WebSocket URL must not contain a fragment: {input:?}"
        )));
    }
    if url.host().is_none() {
        return Err(DomError::syntax(format!("the URL {input:?} has no host")));
    }
    Ok(url)
}

/// The request target of the opening handshake: path, then `?query` only when non-empty.
pub(crate) fn resource_name(url: &Url) -> String {
    match url.query() {
        Some(q) if !q.is_empty() => format!("{}?{}", url.path(), q),
        _ => url.path().to_owned(),
    }
}

/// The serialised origin of the URL, used as `MessageEvent.origin` (e.g. `ws://host:port`).
pub fn origin_of(url: &Url) -> String {
    url.origin().ascii_serialization()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn ok(input: &str) -> String {
        parse_websocket_url(input, None).unwrap().to_string()
    }

    fn syntax(input: &str, base: Option<&str>) {
        let err = parse_websocket_url(input, base).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Syntax, "{input}");
    }

    #[test]
    fn serialisation_follows_whatwg() {
        assert_eq!(ok("ws://h:8080"), "ws://h:8080/");
        assert_eq!(ok("WS://EXAMPLE.com:80/a"), "ws://example.com/a");
        assert_eq!(ok("wss://h:443/"), "wss://h/");
        assert_eq!(
            ok("ws://h/echo?foo%20bar baz"),
            "ws://h/echo?foo%20bar%20baz"
        );
        assert_eq!(ok("ws://h/?\u{20ac}"), "ws://h/?%E2%82%AC");
        assert_eq!(ok("  ws://h/x  "), "ws://h/x");
        assert_eq!(ok("ws://天気の良い日./"), "ws://xn--n8j6ds53lwwkrqhv28a./");
        assert_eq!(ok("ws://[::1]:9/"), "ws://[::1]:9/");
    }

    #[test]
    fn http_schemes_are_rewritten() {
        assert_eq!(ok("http://h/"), "ws://h/");
        assert_eq!(ok("https://h/"), "wss://h/");
        assert_eq!(ok("HTTPS://h:443/p"), "wss://h/p");
    }

    #[test]
    fn bad_urls_are_syntax_errors() {
        syntax("ws://foo bar.com/", None);
        syntax("ftp://h/", None);
        syntax("mailto:x@y", None);
        syntax("about:blank", None);
        syntax("ws://h/#", None);
        syntax("ws://h/#test", None);
        syntax("#test", Some("ws://h/"));
        syntax("/echo", None);
        syntax("ws://h/", Some("not a url"));
    }

    #[test]
    fn relative_urls_resolve_against_the_base() {
        let u = parse_websocket_url("/echo?x", Some("http://h:81/a/b")).unwrap();
        assert_eq!(u.as_str(), "ws://h:81/echo?x");
        let u = parse_websocket_url("test", Some("wss://h/a/b")).unwrap();
        assert_eq!(u.as_str(), "wss://h/a/test");
    }

    #[test]
    fn resource_name_omits_empty_query() {
        let u = parse_websocket_url("ws://h/?", None).unwrap();
        assert_eq!(u.as_str(), "ws://h/?");
        assert_eq!(resource_name(&u), "/");
        let u = parse_websocket_url("ws://h/p?q=1", None).unwrap();
        assert_eq!(resource_name(&u), "/p?q=1");
        assert_eq!(origin_of(&u), "ws://h");
    }
}
