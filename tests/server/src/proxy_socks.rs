//! SOCKS5 negotiation (RFC 1928) with username/password authentication (RFC 1929).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::proxy::{allowed_targets, connect_any, ProxyCtx, ProxyRequest, Tunnel};

const VERSION: u8 = 0x05;
const METHOD_NONE: u8 = 0x00;
const METHOD_USER_PASS: u8 = 0x02;
const METHOD_UNACCEPTABLE: u8 = 0xFF;
const USER_PASS_VERSION: u8 = 0x01;
const CMD_CONNECT: u8 = 0x01;
const ATYP_IPV4: u8 = 0x01;
const ATYP_DOMAIN: u8 = 0x03;
const ATYP_IPV6: u8 = 0x04;

/// SOCKS5 reply codes.
mod rep {
    pub const SUCCEEDED: u8 = 0x00;
    pub const NOT_ALLOWED: u8 = 0x02;
    pub const HOST_UNREACHABLE: u8 = 0x04;
    pub const CONNECTION_REFUSED: u8 = 0x05;
    pub const COMMAND_NOT_SUPPORTED: u8 = 0x07;
    pub const ATYP_NOT_SUPPORTED: u8 = 0x08;
}

/// Runs method selection, the optional username/password sub-negotiation and
/// the request; connects and replies `0x00`, or replies an error and returns `None`.
pub(crate) async fn negotiate<S>(client: &mut S, ctx: &ProxyCtx) -> Option<Tunnel>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Method selection.
    let mut greeting = [0u8; 2];
    client.read_exact(&mut greeting).await.ok()?;
    if greeting[0] != VERSION {
        return None;
    }
    let mut methods = vec![0u8; usize::from(greeting[1])];
    client.read_exact(&mut methods).await.ok()?;
    let method = if ctx.auth.is_some() {
        METHOD_USER_PASS
    } else {
        METHOD_NONE
    };
    if !methods.contains(&method) {
        send(client, &[VERSION, METHOD_UNACCEPTABLE]).await;
        return None;
    }
    send_ok(client, &[VERSION, method]).await?;

    // Username/password sub-negotiation.
    let authenticated = match &ctx.auth {
        Some((user, pass)) => {
            let mut ver_ulen = [0u8; 2];
            client.read_exact(&mut ver_ulen).await.ok()?;
            let mut uname = vec![0u8; usize::from(ver_ulen[1])];
            client.read_exact(&mut uname).await.ok()?;
            let mut plen = [0u8; 1];
            client.read_exact(&mut plen).await.ok()?;
            let mut passwd = vec![0u8; usize::from(plen[0])];
            client.read_exact(&mut passwd).await.ok()?;
            let ok = ver_ulen[0] == USER_PASS_VERSION
                && uname == user.as_bytes()
                && passwd == pass.as_bytes();
            if !ok {
                send(client, &[USER_PASS_VERSION, 0x01]).await;
                return None;
            }
            send_ok(client, &[USER_PASS_VERSION, 0x00]).await?;
            true
        }
        None => false,
    };

    // Request: VER CMD RSV ATYP DST.ADDR DST.PORT.
    let mut req = [0u8; 4];
    client.read_exact(&mut req).await.ok()?;
    if req[0] != VERSION {
        return None;
    }
    let [_, cmd, _, atyp] = req;
    let host = match atyp {
        ATYP_IPV4 => {
            let mut a = [0u8; 4];
            client.read_exact(&mut a).await.ok()?;
            Ipv4Addr::from(a).to_string()
        }
        ATYP_DOMAIN => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len).await.ok()?;
            let mut name = vec![0u8; usize::from(len[0])];
            client.read_exact(&mut name).await.ok()?;
            // A name that is not UTF-8 cannot be `localhost`; the policy refuses it.
            String::from_utf8_lossy(&name).into_owned()
        }
        ATYP_IPV6 => {
            let mut a = [0u8; 16];
            client.read_exact(&mut a).await.ok()?;
            Ipv6Addr::from(a).to_string()
        }
        _ => {
            send(client, &reply(rep::ATYP_NOT_SUPPORTED, None)).await;
            return None;
        }
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port).await.ok()?;
    let port = u16::from_be_bytes(port);
    let index = ctx.log.push(ProxyRequest {
        target_host: host.clone(),
        target_port: port,
        authenticated,
        accepted: false,
        socks_atyp: Some(atyp),
    });
    if cmd != CMD_CONNECT {
        send(client, &reply(rep::COMMAND_NOT_SUPPORTED, None)).await;
        return None;
    }
    let Some(addrs) = allowed_targets(&host, port).await else {
        send(client, &reply(rep::NOT_ALLOWED, None)).await;
        return None;
    };
    match connect_any(&addrs).await {
        Ok(target) => {
            ctx.log.set_accepted(index);
            let bound = target.local_addr().ok();
            send_ok(client, &reply(rep::SUCCEEDED, bound)).await?;
            Some(Tunnel {
                target,
                early: Vec::new(),
            })
        }
        Err(e) => {
            let code = if e.kind() == io::ErrorKind::ConnectionRefused {
                rep::CONNECTION_REFUSED
            } else {
                rep::HOST_UNREACHABLE
            };
            send(client, &reply(code, None)).await;
            None
        }
    }
}

/// A reply `VER REP RSV ATYP BND.ADDR BND.PORT` (`0.0.0.0:0` when `bound` is `None`).
fn reply(code: u8, bound: Option<SocketAddr>) -> Vec<u8> {
    let bound = bound.unwrap_or_else(|| (Ipv4Addr::UNSPECIFIED, 0).into());
    let mut out = vec![VERSION, code, 0x00];
    match bound {
        SocketAddr::V4(a) => {
            out.push(ATYP_IPV4);
            out.extend_from_slice(&a.ip().octets());
        }
        SocketAddr::V6(a) => {
            out.push(ATYP_IPV6);
            out.extend_from_slice(&a.ip().octets());
        }
    }
    out.extend_from_slice(&bound.port().to_be_bytes());
    out
}

/// Writes `bytes`; `None` if the client is gone.
async fn send_ok<S: AsyncWrite + Unpin>(client: &mut S, bytes: &[u8]) -> Option<()> {
    client.write_all(bytes).await.ok()?;
    client.flush().await.ok()
}

/// Writes a final (failure) message, ignoring errors: the connection closes next.
async fn send<S: AsyncWrite + Unpin>(client: &mut S, bytes: &[u8]) {
    let _ = send_ok(client, bytes).await;
}
