//! WebSocket scenario server for conformance tests of a WebSocket *client*.
//!
//! The server listens on loopback only (127.0.0.1, or ::1 when asked), runs on
//! its own background thread and tokio runtime, and picks a behaviour per
//! connection from the request path (`/echo`, `/close?code=4001`, `/raw?status=404`,
//! ...). It implements the server side of RFC 6455 itself so that it can record
//! exactly what the client sent (see [`Observed`]) and misbehave on purpose.

#![warn(missing_docs)]

mod behaviours;
mod bulk;
mod deflate;
mod frames;
mod handshake;
mod json;
mod observe;
mod params;
mod proxy;
mod proxy_http;
mod proxy_socks;
mod session;
mod tls;

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

pub use bulk::BulkEchoServer;
pub use observe::{Observed, ObservedFrame};
pub use proxy::{ProxyKind, ProxyOptions, ProxyRequest, ProxyServer};

use observe::ObservedLog;

/// How long a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How to start a [`TestServer`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerOptions {
    /// Serve `wss://` with a freshly generated CA and server certificate.
    pub tls: bool,
    /// Listen on `::1` instead of `127.0.0.1`.
    pub ipv6: bool,
}

/// A running scenario server; stopped by [`TestServer::stop`] or on drop.
pub struct TestServer {
    port: u16,
    opts: ServerOptions,
    ca_pem: Option<String>,
    log: ObservedLog,
    _thread: ServerThread,
}

/// For the server binaries: returns once stdin reaches EOF (or fails), so that a server
/// started by a script ends when the script does; with `ignore_stdin`, never returns.
pub fn wait_for_stdin_eof(ignore_stdin: bool) {
    use std::io::Read;
    if ignore_stdin {
        loop {
            std::thread::park();
        }
    }
    let mut sink = [0u8; 4096];
    let mut stdin = io::stdin().lock();
    loop {
        match stdin.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
    }
}

/// A server's own thread and tokio runtime. Dropping it stops the server: the stop signal
/// ends the accept loop, and dropping the runtime cancels every connection task, closing
/// their sockets.
pub(crate) struct ServerThread {
    stop_tx: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerThread {
    /// Runs the future `serve(stop)` on a new thread named `name`, on a current-thread
    /// runtime; `stop` resolves when the server is dropped.
    pub(crate) fn spawn<F, Fut>(name: String, serve: F) -> io::Result<ServerThread>
    where
        F: FnOnce(oneshot::Receiver<()>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()>,
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let (stop_tx, stop_rx) = oneshot::channel();
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            runtime.block_on(serve(stop_rx));
            drop(runtime);
        })?;
        Ok(ServerThread {
            stop_tx: Some(stop_tx),
            thread: Some(thread),
        })
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        if let Some(tx) = self.stop_tx.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl TestServer {
    /// Starts on 127.0.0.1 (or ::1) with an ephemeral port, on its own
    /// background thread with its own tokio runtime.
    pub fn start(opts: ServerOptions) -> io::Result<TestServer> {
        let addr: SocketAddr = if opts.ipv6 {
            (Ipv6Addr::LOCALHOST, 0).into()
        } else {
            (Ipv4Addr::LOCALHOST, 0).into()
        };
        let listener = std::net::TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let port = listener.local_addr()?.port();
        let (acceptor, ca_pem) = if opts.tls {
            let setup = tls::setup()?;
            (Some(setup.acceptor), Some(setup.ca_pem))
        } else {
            (None, None)
        };
        let log = ObservedLog::default();
        let thread_log = log.clone();
        let thread = ServerThread::spawn(format!("wsdom-testserver-{port}"), move |stop| {
            serve(listener, acceptor, thread_log, stop)
        })?;
        Ok(TestServer {
            port,
            opts,
            ca_pem,
            log,
            _thread: thread,
        })
    }

    /// The listening port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `ws://127.0.0.1:PORT` or `wss://localhost:PORT` (IPv6: `ws://[::1]:PORT` / `wss://[::1]:PORT`).
    pub fn base_url(&self) -> String {
        match (self.opts.tls, self.opts.ipv6) {
            (false, false) => format!("ws://127.0.0.1:{}", self.port),
            (true, false) => format!("wss://localhost:{}", self.port),
            (false, true) => format!("ws://[::1]:{}", self.port),
            (true, true) => format!("wss://[::1]:{}", self.port),
        }
    }

    /// [`base_url`](Self::base_url) followed by `path_and_query` (e.g. `"/echo"`).
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{}", self.base_url(), path_and_query)
    }

    /// For TLS: PEM of the CA certificate that signed the server certificate
    /// (SANs `localhost`, `127.0.0.1`, `::1`). `None` for plain.
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// Snapshot of what the server observed, one entry per connection in accept order.
    pub fn observed(&self) -> Vec<Observed> {
        self.log.snapshot()
    }

    /// Waits until at least `count` connections have finished (or `timeout`
    /// passes), then returns [`observed`](Self::observed).
    pub fn wait_finished(&self, count: usize, timeout: Duration) -> Vec<Observed> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let snap = self.log.snapshot();
            let done = snap.iter().filter(|o| o.finished).count();
            if done >= count || std::time::Instant::now() >= deadline {
                return snap;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Forgets everything observed so far.
    pub fn clear_observed(&self) {
        self.log.clear();
    }

    /// Stops the server and closes all its connections (also done on drop).
    pub fn stop(self) {
        drop(self);
    }
}

/// Accept loop: runs until `stop` fires (or its sender is dropped).
async fn serve(
    listener: std::net::TcpListener,
    acceptor: Option<TlsAcceptor>,
    log: ObservedLog,
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
                    tokio::spawn(connection(tcp, acceptor.clone(), log.clone()));
                }
                // E.g. out of file descriptors: back off briefly.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
        }
    }
}

/// Terminates TLS if configured, then hands the stream to the behaviours.
async fn connection(tcp: tokio::net::TcpStream, acceptor: Option<TlsAcceptor>, log: ObservedLog) {
    match acceptor {
        None => behaviours::handle(tcp, log).await,
        Some(acceptor) => {
            if let Ok(Ok(tls)) =
                tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await
            {
                behaviours::handle(tls, log).await;
            }
        }
    }
}
