//! Proxy selection (the proxy option and curl-style environment variables, `no_proxy`), and
//! the tunnel handshakes: HTTP CONNECT (over TCP or TLS) and SOCKS5 (RFC 1928/1929).

use base64::Engine;
use std::net::IpAddr;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use url::Url;

/// Where a socket's connection goes first.
#[derive(Clone, Default, PartialEq, Eq)]
pub enum ProxySetting {
    /// Read `https_proxy`/`HTTPS_PROXY` (wss), `http_proxy`/`HTTP_PROXY` (ws), then
    /// `all_proxy`/`ALL_PROXY`, honouring `no_proxy`/`NO_PROXY`, as curl does (default).
    /// Loopback hosts (`localhost`, 127.0.0.0/8, ::1) always connect directly, as in browsers.
    #[default]
    FromEnvironment,
    /// Connect directly, ignoring the environment.
    Direct,
    /// Use this proxy: `http://[user:pass@]host:port`, `https://...`, `socks5://...` or
    /// `socks5h://...` (the proxy resolves the host name).
    Url(String),
}

impl std::fmt::Debug for ProxySetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProxySetting::FromEnvironment => f.write_str("FromEnvironment"),
            ProxySetting::Direct => f.write_str("Direct"),
            // Never print the password.
            ProxySetting::Url(u) => match Proxy::parse(u) {
                Ok(p) => write!(f, "Url({})", p.display()),
                Err(_) => f.write_str("Url(<invalid>)"),
            },
        }
    }
}

/// The supported proxy protocols.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyScheme {
    /// HTTP CONNECT over plain TCP.
    Http,
    /// HTTP CONNECT over TLS to the proxy.
    Https,
    /// SOCKS5, host names resolved locally.
    Socks5,
    /// SOCKS5, host names resolved by the proxy.
    Socks5h,
}

/// A parsed proxy address.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// The protocol.
    pub scheme: ProxyScheme,
    /// The proxy's host (an IPv6 literal without brackets).
    pub host: String,
    /// The proxy's port (1080 when not given, as curl does).
    pub port: u16,
    /// User name and password, percent-decoded.
    pub credentials: Option<(String, String)>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never show the password.
        write!(f, "Proxy({})", self.display())
    }
}

impl Proxy {
    /// Parses a proxy URL; the error never contains the password.
    pub fn parse(input: &str) -> Result<Proxy, String> {
        let url = Url::parse(input).map_err(|e| format!("invalid proxy URL: {e}"))?;
        let scheme = match url.scheme() {
            "http" => ProxyScheme::Http,
            "https" => ProxyScheme::Https,
            "socks5" => ProxyScheme::Socks5,
            "socks5h" => ProxyScheme::Socks5h,
            other => return Err(format!("unsupported proxy scheme {other:?}")),
        };
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(h) => h.to_string(),
            None => return Err("the proxy URL has no host".into()),
        };
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let credentials = (!url.username().is_empty())
            .then(|| (decode(url.username()), decode(url.password().unwrap_or(""))));
        Ok(Proxy {
            scheme,
            host,
            port: url.port().unwrap_or(1080),
            credentials,
        })
    }

    /// `scheme://host:port`, for diagnostics (no credentials).
    pub fn display(&self) -> String {
        let scheme = match self.scheme {
            ProxyScheme::Http => "http",
            ProxyScheme::Https => "https",
            ProxyScheme::Socks5 => "socks5",
            ProxyScheme::Socks5h => "socks5h",
        };
        match self.host.parse::<IpAddr>() {
            Ok(IpAddr::V6(_)) => format!("{scheme}://[{}]:{}", self.host, self.port),
            _ => format!("{scheme}://{}:{}", self.host, self.port),
        }
    }
}

/// True when `host` matches a `no_proxy` list: `*`, host names and domain suffixes
/// (`example.com` and `.example.com` both match `a.example.com`), IP addresses and CIDR blocks.
pub fn no_proxy_matches(no_proxy: &str, host: &str) -> bool {
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let host_ip: Option<IpAddr> = host.parse().ok();
    no_proxy
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| {
            if entry == "*" {
                return true;
            }
            let entry = entry.to_ascii_lowercase();
            if let Some((net, bits)) = entry.split_once('/') {
                return match (net.parse::<IpAddr>(), bits.parse::<u8>(), host_ip) {
                    (Ok(net), Ok(bits), Some(ip)) => in_cidr(ip, net, bits),
                    _ => false,
                };
            }
            let entry = entry.trim_start_matches('[');
            let entry = match entry.split_once(']') {
                Some((ip6, _)) => ip6.to_string(),
                None if entry.matches(':').count() == 1 => {
                    entry.split(':').next().unwrap().to_string()
                }
                None => entry.to_string(),
            };
            if let (Ok(e), Some(ip)) = (entry.parse::<IpAddr>(), host_ip) {
                return e == ip;
            }
            let domain = entry.trim_start_matches('.');
            host == domain || host.ends_with(&format!(".{domain}"))
        })
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The proxy to use for `url` under `setting`, reading variables through `env`.
pub fn select(
    setting: &ProxySetting,
    url: &Url,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<Proxy>, String> {
    match setting {
        ProxySetting::Direct => Ok(None),
        ProxySetting::Url(u) => Proxy::parse(u).map(Some),
        ProxySetting::FromEnvironment => {
            let get = |names: &[&str]| {
                names
                    .iter()
                    .find_map(|n| env(n).filter(|v| !v.trim().is_empty()))
            };
            let host = url.host_str().unwrap_or_default();
            if no_proxy_matches("localhost,127.0.0.0/8,::1", host) {
                return Ok(None);
            }
            if let Some(no) = get(&["no_proxy", "NO_PROXY"]) {
                if no_proxy_matches(&no, host) {
                    return Ok(None);
                }
            }
            let specific = if url.scheme() == "wss" {
                get(&["https_proxy", "HTTPS_PROXY"])
            } else {
                get(&["http_proxy", "HTTP_PROXY"])
            };
            match specific.or_else(|| get(&["all_proxy", "ALL_PROXY"])) {
                None => Ok(None),
                // A bare host:port means an HTTP proxy, as curl reads it.
                Some(v) if !v.contains("://") => Proxy::parse(&format!("http://{v}")).map(Some),
                Some(v) => Proxy::parse(&v).map(Some),
            }
        }
    }
}

/// Asks an HTTP proxy for a tunnel to `host:port` (RFC 9110 CONNECT).
pub async fn http_connect<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    proxy: &Proxy,
    host: &str,
    port: u16,
) -> Result<(), String> {
    let authority = if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let mut req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some((user, pass)) = &proxy.credentials {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        req.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
    }
    req.push_str("\r\n");
    let name = proxy.display();
    stream
        .write_all(req.as_bytes())
        .await
        .map_err(|e| format!("proxy {name}: {e}"))?;
    let mut buf = Vec::with_capacity(512);
    loop {
        let mut chunk = [0u8; 512];
        let n = stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("proxy {name}: {e}"))?;
        if n == 0 {
            return Err(format!("proxy {name} closed the connection during CONNECT"));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(&buf) {
            Ok(httparse::Status::Partial) if buf.len() < 64 * 1024 => continue,
            Ok(httparse::Status::Complete(len)) => {
                return match resp.code {
                    Some(200..=299) if len == buf.len() => Ok(()),
                    Some(200..=299) => {
                        Err(format!("proxy {name} sent data before the tunnel opened"))
                    }
                    Some(407) => Err(format!(
                        "proxy {name} requires authentication (407 Proxy Authentication Required)"
                    )),
                    Some(code) => Err(format!(
                        "proxy {name} refused the tunnel to {authority}: HTTP {code} {}",
                        resp.reason.unwrap_or("")
                    )),
                    None => Err(format!("proxy {name} sent an invalid response")),
                };
            }
            _ => return Err(format!("proxy {name} sent an invalid response")),
        }
    }
}

/// Opens a SOCKS5 tunnel to `host:port` (RFC 1928), authenticating with RFC 1929 when the
/// proxy has credentials. With `Socks5`, host names are resolved here first.
pub async fn socks5_connect<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    proxy: &Proxy,
    host: &str,
    port: u16,
) -> Result<(), String> {
    let name = proxy.display();
    let io = |e: std::io::Error| format!("SOCKS5 proxy {name}: {e}");
    let methods: &[u8] = if proxy.credentials.is_some() {
        &[0x00, 0x02]
    } else {
        &[0x00]
    };
    let mut hello = vec![5, methods.len() as u8];
    hello.extend_from_slice(methods);
    stream.write_all(&hello).await.map_err(io)?;
    let mut choice = [0u8; 2];
    stream.read_exact(&mut choice).await.map_err(io)?;
    match (choice, &proxy.credentials) {
        ([5, 0x00], _) => {}
        ([5, 0x02], Some((user, pass))) => {
            if user.len() > 255 || pass.len() > 255 {
                return Err(format!(
                    "SOCKS5 proxy {name}: user name or password too long"
                ));
            }
            let mut auth = vec![1, user.len() as u8];
            auth.extend_from_slice(user.as_bytes());
            auth.push(pass.len() as u8);
            auth.extend_from_slice(pass.as_bytes());
            stream.write_all(&auth).await.map_err(io)?;
            let mut status = [0u8; 2];
            stream.read_exact(&mut status).await.map_err(io)?;
            if status[1] != 0 {
                return Err(format!(
                    "SOCKS5 proxy {name} rejected the user name or password"
                ));
            }
        }
        ([5, 0xff], _) => {
            return Err(format!(
                "SOCKS5 proxy {name} accepts none of our authentication methods"
            ))
        }
        _ => return Err(format!("SOCKS5 proxy {name} sent an invalid greeting")),
    }
    let mut req = vec![5, 1, 0];
    let ip: Option<IpAddr> = match host.parse() {
        Ok(ip) => Some(ip),
        Err(_) if proxy.scheme == ProxyScheme::Socks5 => Some(
            tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| format!("cannot resolve {host}: {e}"))?
                .next()
                .ok_or_else(|| format!("{host} has no address"))?
                .ip(),
        ),
        Err(_) => None,
    };
    match ip {
        Some(IpAddr::V4(v4)) => {
            req.push(1);
            req.extend_from_slice(&v4.octets());
        }
        Some(IpAddr::V6(v6)) => {
            req.push(4);
            req.extend_from_slice(&v6.octets());
        }
        None => {
            if host.len() > 255 {
                return Err(format!("host name {host:?} is too long for SOCKS5"));
            }
            req.push(3);
            req.push(host.len() as u8);
            req.extend_from_slice(host.as_bytes());
        }
    }
    req.extend_from_slice(&port.to_be_bytes());
    stream.write_all(&req).await.map_err(io)?;
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).await.map_err(io)?;
    if head[0] != 5 {
        return Err(format!("SOCKS5 proxy {name} sent an invalid reply"));
    }
    if head[1] != 0 {
        let why = match head[1] {
            1 => "general failure",
            2 => "connection not allowed by ruleset",
            3 => "network unreachable",
            4 => "host unreachable",
            5 => "connection refused",
            6 => "TTL expired",
            7 => "command not supported",
            8 => "address type not supported",
            _ => "unknown error",
        };
        return Err(format!(
            "SOCKS5 proxy {name} could not connect to {host}:{port}: {why}"
        ));
    }
    let rest = match head[3] {
        1 => 4 + 2,
        4 => 16 + 2,
        3 => {
            let mut len = [0u8; 1];
            stream.read_exact(&mut len).await.map_err(io)?;
            len[0] as usize + 2
        }
        _ => return Err(format!("SOCKS5 proxy {name} sent an invalid address type")),
    };
    let mut bound = vec![0u8; rest];
    stream.read_exact(&mut bound).await.map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_hides_passwords() {
        let p = Proxy::parse("http://us%40er:s3cr%3At@proxy.local:3128").unwrap();
        assert_eq!(p.scheme, ProxyScheme::Http);
        assert_eq!((p.host.as_str(), p.port), ("proxy.local", 3128));
        assert_eq!(p.credentials, Some(("us@er".into(), "s3cr:t".into())));
        assert!(!format!("{p:?}").contains("s3cr"));
        assert_eq!(p.display(), "http://proxy.local:3128");
        let p = Proxy::parse("socks5h://[::1]").unwrap();
        assert_eq!((p.scheme, p.port), (ProxyScheme::Socks5h, 1080));
        assert_eq!(p.display(), "socks5h://[::1]:1080");
        assert!(Proxy::parse("ftp://x").is_err());
        let e = Proxy::parse("http://u:pw@").unwrap_err();
        assert!(!e.contains("pw"));
    }

    #[test]
    fn no_proxy_like_curl() {
        assert!(no_proxy_matches("*", "anything"));
        assert!(no_proxy_matches("example.com", "example.com"));
        assert!(no_proxy_matches("example.com", "a.b.example.com"));
        assert!(no_proxy_matches(".example.com", "a.example.com"));
        assert!(!no_proxy_matches("example.com", "badexample.com"));
        assert!(no_proxy_matches("localhost, 127.0.0.1", "127.0.0.1"));
        assert!(no_proxy_matches("10.0.0.0/8", "10.1.2.3"));
        assert!(!no_proxy_matches("10.0.0.0/8", "11.1.2.3"));
        assert!(no_proxy_matches("::1", "[::1]"));
        assert!(no_proxy_matches("fd00::/8", "[fd12::1]"));
        assert!(no_proxy_matches("host:8080", "host"));
        assert!(!no_proxy_matches("", "host"));
    }

    #[test]
    fn selection_from_the_environment() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        let ws = Url::parse("ws://svc.internal:80/").unwrap();
        let wss = Url::parse("wss://svc.internal/").unwrap();
        let vars: &[(&str, &str)] = &[
            ("http_proxy", "http://p1:1"),
            ("HTTPS_PROXY", "socks5h://p2:2"),
            ("no_proxy", "other.example"),
        ];
        let s = ProxySetting::FromEnvironment;
        assert_eq!(select(&s, &ws, env(vars)).unwrap().unwrap().host, "p1");
        assert_eq!(
            select(&s, &wss, env(vars)).unwrap().unwrap().scheme,
            ProxyScheme::Socks5h
        );
        let vars: &[(&str, &str)] = &[("ALL_PROXY", "p3:3"), ("NO_PROXY", ".internal")];
        assert_eq!(select(&s, &ws, env(vars)).unwrap(), None);
        let vars: &[(&str, &str)] = &[("ALL_PROXY", "p3:3")];
        let p = select(&s, &wss, env(vars)).unwrap().unwrap();
        assert_eq!((p.scheme, p.port), (ProxyScheme::Http, 3));
        assert_eq!(select(&ProxySetting::Direct, &ws, env(vars)).unwrap(), None);
        let local = Url::parse("ws://127.0.0.1:9/").unwrap();
        assert_eq!(
            select(&s, &local, env(vars)).unwrap(),
            None,
            "loopback bypasses"
        );
        let explicit = ProxySetting::Url("socks5://p:1".into());
        assert!(select(&explicit, &local, env(vars)).unwrap().is_some());
    }
}
