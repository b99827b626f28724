//! Proxy servers (HTTP CONNECT, HTTPS CONNECT, SOCKS5) for proxy-support tests
//! of a WebSocket client: the shared server, request log and target policy.
//!
//! SAFETY: the proxy listens on loopback only and tunnels only to loopback
//! targets (`127.0.0.0/8`, `::1` and the host name `localhost`); every other
//! target is refused without connecting anywhere.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use crate::{proxy_http, proxy_socks, tls};

/// Bound on the whole negotiation phase (TLS handshake, request head or SOCKS
/// exchanges, connecting to the target, the reply).
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a refused connection is drained before it is closed.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// Bound on the lifetime of an established tunnel.
pub(crate) const TUNNEL_LIFETIME: Duration = Duration::from_secs(300);

/// Which proxy protocol a [`ProxyServer`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyKind {
    /// Plain HTTP/1.1 `CONNECT host:port`.
    HttpConnect,
    /// HTTP/1.1 `CONNECT` inside TLS (certificate signed by a generated CA,
    /// see [`ProxyServer::ca_pem`]).
    HttpsConnect,
    /// SOCKS version 5 (RFC 1928), with RFC 1929 username/password auth.
    Socks5,
}

/// How to start a [`ProxyServer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyOptions {
    /// The protocol to speak.
    pub kind: ProxyKind,
    /// Require these credentials (`Proxy-Authorization: Basic` for HTTP(S),
    /// RFC 1929 username/password for SOCKS5). `None`: no authentication.
    pub auth: Option<(String, String)>,
    /// Listen on `::1` instead of `127.0.0.1`.
    pub ipv6: bool,
}

impl ProxyOptions {
    /// Options for `kind`, without authentication, on `127.0.0.1`.
    pub fn new(kind: ProxyKind) -> ProxyOptions {
        ProxyOptions {
            kind,
            auth: None,
            ipv6: false,
        }
    }
}

/// One tunnel request the proxy received (an HTTP `CONNECT` or a SOCKS5 request).
///
/// Connections that end before a request is seen (failed TLS handshake, SOCKS
/// method or username/password negotiation failure, garbage) are not logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRequest {
    /// Target host as the client sent it (IPv6 without brackets).
    pub target_host: String,
    /// Target port.
    pub target_port: u16,
    /// The client passed authentication with the configured credentials
    /// (always `false` when the proxy has no credentials configured).
    pub authenticated: bool,
    /// The tunnel was established (`200` / SOCKS reply `0x00` sent).
    pub accepted: bool,
    /// SOCKS5 address type of the request: 1 IPv4, 3 domain name, 4 IPv6.
    /// `None` for HTTP(S) `CONNECT`.
    pub socks_atyp: Option<u8>,
}

/// Shared, ordered log of [`ProxyRequest`]s.
#[derive(Clone, Default)]
pub(crate) struct ProxyLog(Arc<Mutex<Vec<ProxyRequest>>>);

impl ProxyLog {
    /// Appends `req` and returns its index (for [`set_accepted`](Self::set_accepted)).
    pub(crate) fn push(&self, req: ProxyRequest) -> usize {
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        v.push(req);
        v.len() - 1
    }

    /// Marks entry `index` as accepted.
    pub(crate) fn set_accepted(&self, index: usize) {
        let mut v = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = v.get_mut(index) {
            r.accepted = true;
        }
    }

    fn snapshot(&self) -> Vec<ProxyRequest> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Per-connection settings shared by the protocol handlers.
#[derive(Clone)]
pub(crate) struct ProxyCtx {
    pub(crate) auth: Option<(String, String)>,
    pub(crate) log: ProxyLog,
}

/// A running proxy on loopback; stopped by [`ProxyServer::stop`] or on drop.
pub struct ProxyServer {
    port: u16,
    opts: ProxyOptions,
    ca_pem: Option<String>,
    log: ProxyLog,
    stop_tx: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ProxyServer {
    /// Starts on 127.0.0.1 (or ::1) with an ephemeral port, on its own
    /// background thread with its own tokio runtime.
    pub fn start(opts: ProxyOptions) -> io::Result<ProxyServer> {
        let addr: SocketAddr = if opts.ipv6 {
            (Ipv6Addr::LOCALHOST, 0).into()
        } else {
            (Ipv4Addr::LOCALHOST, 0).into()
        };
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let (acceptor, ca_pem) = if opts.kind == ProxyKind::HttpsConnect {
            let setup = tls::setup()?;
            (Some(setup.acceptor), Some(setup.ca_pem))
        } else {
            (None, None)
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let log = ProxyLog::default();
        let ctx = ProxyCtx {
            auth: opts.auth.clone(),
            log: log.clone(),
        };
        let kind = opts.kind;
        let (stop_tx, stop_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(format!("wsdom-proxy-{port}"))
            .spawn(move || {
                runtime.block_on(serve(listener, kind, acceptor, ctx, stop_rx));
                // Dropping the runtime cancels every connection task, closing sockets.
                drop(runtime);
            })?;
        Ok(ProxyServer {
            port,
            opts,
            ca_pem,
            log,
            stop_tx: Some(stop_tx),
            thread: Some(thread),
        })
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:P`, `https://localhost:P` or `socks5://127.0.0.1:P`
    /// (IPv6: host `[::1]`); never contains credentials.
    pub fn url(&self) -> String {
        let host = match (self.opts.kind, self.opts.ipv6) {
            (_, true) => "[::1]",
            (ProxyKind::HttpsConnect, false) => "localhost",
            (_, false) => "127.0.0.1",
        };
        let scheme = match self.opts.kind {
            ProxyKind::HttpConnect => "http",
            ProxyKind::HttpsConnect => "https",
            ProxyKind::Socks5 => "socks5",
        };
        format!("{scheme}://{host}:{}", self.port)
    }

    /// For [`ProxyKind::HttpsConnect`]: PEM of the CA certificate that signed
    /// the proxy's certificate (SANs `localhost`, `127.0.0.1`, `::1`).
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// Every tunnel request seen, in order.
    pub fn log(&self) -> Vec<ProxyRequest> {
        self.log.snapshot()
    }

    /// Stops the proxy and closes all its connections and tunnels (also done on drop).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for ProxyServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop_tx.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accept loop: runs until `stop` fires (or its sender is dropped).
async fn serve(
    listener: std::net::TcpListener,
    kind: ProxyKind,
    acceptor: Option<TlsAcceptor>,
    ctx: ProxyCtx,
    mut stop: oneshot::Receiver<()>,
) {
    let Ok(listener) = TcpListener::from_std(listener) else {
        return;
    };
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => match accepted {
                Ok((tcp, _)) => {
                    let _ = tcp.set_nodelay(true);
                    tokio::spawn(connection(tcp, kind, acceptor.clone(), ctx.clone()));
                }
                // E.g. out of file descriptors: back off briefly.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

/// Runs one client connection: negotiation (bounded by [`HANDSHAKE_TIMEOUT`]),
/// then the tunnel (bounded by [`TUNNEL_LIFETIME`]).
async fn connection(tcp: TcpStream, kind: ProxyKind, acceptor: Option<TlsAcceptor>, ctx: ProxyCtx) {
    match (kind, acceptor) {
        (ProxyKind::HttpConnect, _) => run(tcp, &ctx, false).await,
        (ProxyKind::HttpsConnect, Some(acceptor)) => {
            if let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
            {
                run(tls, &ctx, false).await;
            }
        }
        (ProxyKind::HttpsConnect, None) => {}
        (ProxyKind::Socks5, _) => run(tcp, &ctx, true).await,
    }
}

/// The outcome of a successful negotiation.
pub(crate) struct Tunnel {
    /// The connected target.
    pub(crate) target: TcpStream,
    /// Bytes the client sent after its request, to forward to the target first.
    pub(crate) early: Vec<u8>,
}

/// Negotiates (SOCKS5 if `socks`, else HTTP `CONNECT`) under
/// [`HANDSHAKE_TIMEOUT`], then splices bytes both ways until both directions
/// are done or [`TUNNEL_LIFETIME`] passes.
async fn run<S>(mut client: S, ctx: &ProxyCtx, socks: bool)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let negotiation = async {
        if socks {
            proxy_socks::negotiate(&mut client, ctx).await
        } else {
            proxy_http::negotiate(&mut client, ctx).await
        }
    };
    let Ok(Some(Tunnel { mut target, early })) =
        tokio::time::timeout(HANDSHAKE_TIMEOUT, negotiation).await
    else {
        close_gently(&mut client).await;
        return;
    };
    let _ = target.set_nodelay(true);
    let _ = tokio::time::timeout(TUNNEL_LIFETIME, async {
        if !early.is_empty() {
            target.write_all(&early).await?;
        }
        tokio::io::copy_bidirectional(&mut client, &mut target).await
    })
    .await;
}

/// After a refusal: sends EOF, then discards what the client still sends (for
/// at most [`CLOSE_LINGER`]) so that closing does not reset the connection
/// before the client has read the refusal.
async fn close_gently<S: AsyncRead + AsyncWrite + Unpin>(client: &mut S) {
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        let _ = client.shutdown().await;
        let mut sink = [0u8; 1024];
        while matches!(client.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}

/// Where a tunnel may go: the loopback addresses for `host`, or `None` if the
/// target is not allowed (anything but `127.0.0.0/8`, `::1` and `localhost`).
pub(crate) async fn allowed_targets(host: &str, port: u16) -> Option<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return is_allowed_ip(ip).then(|| vec![SocketAddr::new(ip, port)]);
    }
    if !(host.eq_ignore_ascii_case("localhost") || host.eq_ignore_ascii_case("localhost.")) {
        return None;
    }
    // Resolve it ourselves, keeping only loopback results whatever the resolver says.
    let mut addrs: Vec<SocketAddr> = match tokio::net::lookup_host(("localhost", port)).await {
        Ok(it) => it.filter(|a| is_allowed_ip(a.ip())).collect(),
        Err(_) => Vec::new(),
    };
    if addrs.is_empty() {
        addrs = vec![
            (Ipv4Addr::LOCALHOST, port).into(),
            (Ipv6Addr::LOCALHOST, port).into(),
        ];
    }
    addrs.dedup();
    Some(addrs)
}

/// `127.0.0.0/8` or `::1`.
fn is_allowed_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.octets()[0] == 127,
        IpAddr::V6(v6) => v6 == Ipv6Addr::LOCALHOST,
    }
}

/// Connects to the first of `addrs` that accepts; the error is the last failure.
pub(crate) async fn connect_any(addrs: &[SocketAddr]) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::AddrNotAvailable, "no address");
    for addr in addrs {
        debug_assert!(is_allowed_ip(addr.ip()));
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}
