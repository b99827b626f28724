//! Reaching the server: the proxy (if any), then a TCP connection that tries every address
//! (RFC 8305 happy eyeballs), then TLS.

use crate::options::{Options, TlsOptions};
use crate::proxy::{self, Proxy, ProxyScheme};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::Instant;
use url::Url;

/// How long an attempt may run alone before the next address is tried too (RFC 8305 §5).
const ATTEMPT_DELAY: Duration = Duration::from_millis(250);

/// Hosts with a connection in CONNECTING: RFC 6455 §4.1 (client requirement 2) allows only
/// one opening handshake at a time per host and port; later ones wait their turn.
static CONNECTING: std::sync::Mutex<Vec<HostTurns>> = std::sync::Mutex::new(Vec::new());

/// A host, a port, and the lock its opening handshakes take in turn.
type HostTurns = (String, u16, std::sync::Arc<tokio::sync::Mutex<()>>);

/// Holds the host's handshake turn; released on drop.
pub(crate) struct HandshakeTurn {
    key: (String, u16),
    _guard: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for HandshakeTurn {
    fn drop(&mut self) {
        let mut list = CONNECTING.lock().unwrap_or_else(|e| e.into_inner());
        // Forget the host once nobody else waits for it (our guard holds one reference).
        list.retain(|(h, p, m)| {
            !(h == &self.key.0 && *p == self.key.1 && std::sync::Arc::strong_count(m) <= 2)
        });
    }
}

/// Waits until no other socket of this process is in its opening handshake with `url`'s
/// host and port, then holds the turn until the returned value is dropped.
pub(crate) async fn handshake_turn(url: &Url) -> HandshakeTurn {
    let key = (
        bare_host(url).to_ascii_lowercase(),
        url.port_or_known_default().unwrap_or(80),
    );
    let lock = {
        let mut list = CONNECTING.lock().unwrap_or_else(|e| e.into_inner());
        match list.iter().find(|(h, p, _)| *h == key.0 && *p == key.1) {
            Some((_, _, m)) => m.clone(),
            None => {
                let m = std::sync::Arc::new(tokio::sync::Mutex::new(()));
                list.push((key.0.clone(), key.1, m.clone()));
                m
            }
        }
    };
    HandshakeTurn {
        key,
        _guard: lock.lock_owned().await,
    }
}

/// A byte stream of any kind (TLS, a tunnel inside TLS).
pub(crate) trait ByteStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ByteStream for T {}

/// A connected stream: plain TCP (which allows writes from any thread), or anything else.
pub(crate) enum Stream {
    Tcp(TcpStream),
    Boxed(Box<dyn ByteStream>),
}

/// The host of `url` without IPv6 brackets.
pub(crate) fn bare_host(url: &Url) -> String {
    match url.host() {
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(h) => h.to_string(),
        None => String::new(),
    }
}

/// Opens the stream to `url`'s host and port, through the proxy the options select.
pub(crate) async fn open(url: &Url, options: &Options) -> Result<Stream, String> {
    let host = bare_host(url);
    let port = url.port_or_known_default().unwrap_or(80);
    let proxy = proxy::select(&options.proxy, url, |k| std::env::var(k).ok())?;
    let Some(proxy) = proxy else {
        return Ok(Stream::Tcp(connect_tcp(&host, port).await?));
    };
    let mut tcp = connect_tcp(&proxy.host, proxy.port)
        .await
        .map_err(|e| format!("cannot reach proxy {}: {e}", proxy.display()))?;
    match proxy.scheme {
        ProxyScheme::Http => {
            proxy::http_connect(&mut tcp, &proxy, &host, port).await?;
            Ok(Stream::Tcp(tcp))
        }
        ProxyScheme::Socks5 | ProxyScheme::Socks5h => {
            proxy::socks5_connect(&mut tcp, &proxy, &host, port).await?;
            Ok(Stream::Tcp(tcp))
        }
        ProxyScheme::Https => {
            let mut tls = tls_to_proxy(tcp, &proxy, &options.tls).await?;
            proxy::http_connect(&mut tls, &proxy, &host, port).await?;
            Ok(Stream::Boxed(Box::new(tls)))
        }
    }
}

async fn tls_to_proxy(
    tcp: TcpStream,
    proxy: &Proxy,
    tls: &TlsOptions,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, String> {
    let host = url::Host::parse(&proxy.host)
        .or_else(|_| url::Host::parse(&format!("[{}]", proxy.host)))
        .map_err(|e| format!("invalid proxy host: {e}"))?;
    tls_handshake(tcp, &host, tls)
        .await
        .map_err(|e| format!("proxy {}: {e}", proxy.display()))
}

/// Runs the TLS handshake over `io`, verifying `host` (and sending it as SNI).
pub(crate) async fn tls_handshake<IO: AsyncRead + AsyncWrite + Unpin>(
    io: IO,
    host: &url::Host<impl AsRef<str>>,
    tls: &TlsOptions,
) -> Result<tokio_rustls::client::TlsStream<IO>, String> {
    let config = crate::tls::client_config(tls)?;
    let host = match host {
        url::Host::Domain(d) => url::Host::Domain(d.as_ref()),
        url::Host::Ipv4(ip) => url::Host::Ipv4(*ip),
        url::Host::Ipv6(ip) => url::Host::Ipv6(*ip),
    };
    let name = crate::tls::server_name(&host)?;
    tokio_rustls::TlsConnector::from(config)
        .connect(name, io)
        .await
        .map_err(|e| format!("TLS handshake with {host} failed: {e}"))
}

/// Resolves `host` and connects to its addresses, IPv6 and IPv4 interleaved, starting a new
/// attempt every 250 ms (or as soon as one fails) until one succeeds.
pub(crate) async fn connect_tcp(host: &str, port: u16) -> Result<TcpStream, String> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .collect();
    let tcp = happy_eyeballs(interleave(addrs)).await?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// Orders addresses alternating families, starting with the resolver's first choice.
fn interleave(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
    let first_v6 = addrs.first().is_some_and(|a| a.is_ipv6());
    let (mut a, mut b): (Vec<_>, Vec<_>) = addrs.into_iter().partition(|x| x.is_ipv6() == first_v6);
    let mut out = Vec::with_capacity(a.len() + b.len());
    a.reverse();
    b.reverse();
    while !a.is_empty() || !b.is_empty() {
        out.extend(a.pop());
        out.extend(b.pop());
    }
    out
}

async fn happy_eyeballs(addrs: Vec<SocketAddr>) -> Result<TcpStream, String> {
    let mut pending = addrs.into_iter().peekable();
    if pending.peek().is_none() {
        return Err("the host has no address".into());
    }
    let mut attempts = JoinSet::new();
    let mut last_error = String::new();
    let mut next_start = Instant::now();
    loop {
        if attempts.is_empty() || Instant::now() >= next_start {
            match pending.next() {
                Some(addr) => {
                    attempts.spawn(async move { (addr, TcpStream::connect(addr).await) });
                    next_start = Instant::now() + ATTEMPT_DELAY;
                }
                None if attempts.is_empty() => return Err(last_error),
                None => {}
            }
        }
        let more = pending.peek().is_some();
        tokio::select! {
            Some(done) = attempts.join_next() => match done {
                Ok((_, Ok(stream))) => return Ok(stream),
                Ok((addr, Err(e))) => {
                    last_error = format!("cannot connect to {addr}: {e}");
                    next_start = Instant::now(); // a failure starts the next attempt at once
                }
                Err(e) => last_error = format!("connection attempt failed: {e}"),
            },
            _ = tokio::time::sleep_until(next_start), if more => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interleaves_families() {
        let a: Vec<SocketAddr> = ["[::1]:1", "[::2]:1", "127.0.0.1:1", "127.0.0.2:1"]
            .iter()
            .map(|s| s.parse().unwrap())
            .collect();
        let order: Vec<String> = interleave(a).iter().map(|s| s.to_string()).collect();
        assert_eq!(order, ["[::1]:1", "127.0.0.1:1", "[::2]:1", "127.0.0.2:1"]);
    }

    #[tokio::test]
    async fn falls_back_to_the_next_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let good = listener.local_addr().unwrap();
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        // ::1 on a closed port (refused at once), then the good IPv4 address.
        let dead6: SocketAddr = format!("[::1]:{}", closed.port()).parse().unwrap();
        let s = happy_eyeballs(vec![dead6, closed, good]).await.unwrap();
        assert_eq!(s.peer_addr().unwrap(), good);
        assert!(happy_eyeballs(vec![closed]).await.is_err());
    }
}
