//! Per-connection scenario dispatch: the request path selects the behaviour.

use std::io;
use std::time::Duration;

use tokio::time::{sleep, timeout, Instant};

use crate::deflate::DeflateParams;
use crate::frames::{self, OP_BINARY, OP_CLOSE, OP_TEXT};
use crate::handshake::{self, Request};
use crate::json;
use crate::observe::{ObservedLog, Recorder};
use crate::params::{hex_decode, Target};
use crate::session::{
    discard_until, respond_and_close, Event, Flow, OnClose, Session, Transport, HOLD,
};

/// How long a client may take to send its request head.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Upper bound on one connection's whole life.
const CONNECTION_LIFETIME: Duration = Duration::from_secs(300);
/// Upper bound on any `*_ms` parameter.
const MAX_DELAY_MS: u64 = 60_000;
/// How long `/raw` keeps the connection after writing its response.
const RAW_HOLD: Duration = Duration::from_secs(10);
/// How long `/never-handshake` holds a connection: beyond any client's default connect
/// timeout (wsdom's is 30 s), so that the client's timeout is what ends it.
const NEVER_HANDSHAKE_HOLD: Duration = Duration::from_secs(90);
/// How long `/close` waits for the client's Close reply.
const CLOSE_REPLY_WAIT: Duration = Duration::from_secs(10);
/// Upper bound on the bytes `/push` sends in total.
const MAX_PUSH_BYTES: u64 = 1 << 30;

/// Paths that perform a normal opening handshake.
const WS_PATHS: &[&str] = &[
    "/echo",
    "/close",
    "/no-close-reply",
    "/drop",
    "/delay-handshake",
    "/protocol",
    "/extension",
    "/headers",
    "/push",
    "/send",
    "/slow",
    "/rst-after-open",
    "/deflate",
];

/// Serves one accepted connection (TLS already terminated) to completion.
pub async fn handle<S: Transport>(mut stream: S, log: ObservedLog) {
    let (req, leftover) = match timeout(REQUEST_TIMEOUT, handshake::read_request(&mut stream)).await
    {
        Ok(Ok(parsed)) => parsed,
        Ok(Err(e)) if e.kind() == io::ErrorKind::InvalidData => {
            let resp = handshake::simple_response(400, &[], b"malformed request");
            return respond_and_close(stream, &resp, &Recorder::detached()).await;
        }
        _ => return,
    };
    let target = Target::parse(&req.target);
    if target.path == "/observed" {
        let body = log.to_json();
        if target.flag("clear") {
            log.clear();
        }
        let resp = handshake::simple_response(
            200,
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        );
        return respond_and_close(stream, &resp, &Recorder::detached()).await;
    }
    let rec = log.begin(req.target.clone(), req.headers.clone());
    let _ = timeout(
        CONNECTION_LIFETIME,
        route(stream, req, leftover, target, rec.clone()),
    )
    .await;
    rec.finish();
}

fn millis(target: &Target, name: &str) -> Duration {
    Duration::from_millis(target.num::<u64>(name).unwrap_or(0).min(MAX_DELAY_MS))
}

async fn route<S: Transport>(
    mut stream: S,
    req: Request,
    leftover: Vec<u8>,
    target: Target,
    rec: Recorder,
) {
    let path = target.path.as_str();
    if path == "/raw" {
        return raw(stream, &req, &target, &rec).await;
    }
    if path == "/never-handshake" {
        return discard_until(&mut stream, Instant::now() + NEVER_HANDSHAKE_HOLD, &rec).await;
    }
    if !WS_PATHS.contains(&path) {
        let resp = handshake::simple_response(404, &[], b"unknown path");
        return respond_and_close(stream, &resp, &rec).await;
    }
    let key = match handshake::check_upgrade(&req) {
        Ok(key) => key,
        Err(resp) => return respond_and_close(stream, &resp, &rec).await,
    };
    // Validate injected bytes before answering, so a bad test URL gets a 400.
    let injected = match (path, target.bytes("frames")) {
        ("/send", Some(hex)) => match hex_decode(hex) {
            Some(bytes) => bytes,
            None => {
                let resp = handshake::simple_response(400, &[], b"frames: bad hex");
                return respond_and_close(stream, &resp, &rec).await;
            }
        },
        _ => Vec::new(),
    };

    let offered = req.tokens("sec-websocket-protocol").into_iter().next();
    let protocol = match path {
        "/protocol" if target.flag("none") => None,
        "/protocol" => target.str("select").or(offered),
        _ => offered,
    };
    let offered_deflate = req
        .tokens("sec-websocket-extensions")
        .iter()
        .any(|t| t.split(';').next().unwrap_or("").trim() == "permessage-deflate");
    let deflate =
        (path == "/deflate" && offered_deflate).then(|| DeflateParams::from_target(&target));
    let extensions = match path {
        "/extension" => target.str("value"),
        "/deflate" => deflate.as_ref().map(|p| p.header.clone()),
        _ => None,
    };
    if path == "/delay-handshake" {
        sleep(millis(&target, "ms")).await;
    }
    let resp = handshake::accept_response(&key, protocol.as_deref(), extensions.as_deref());
    let mut s = Session::new(stream, leftover, rec);
    if s.write(&resp).await.is_err() {
        return;
    }
    if path == "/deflate" {
        let _ = match &deflate {
            Some(params) => crate::deflate::echo(s, params).await,
            None => {
                s.echo(OnClose::Reply(Duration::ZERO), None).await;
                Ok(())
            }
        };
        return;
    }
    let _ = scenario(s, &req, &target, &injected).await;
}

/// Runs the post-handshake part of a WebSocket scenario.
async fn scenario<S: Transport>(
    mut s: Session<S>,
    req: &Request,
    target: &Target,
    injected: &[u8],
) -> io::Result<()> {
    let reply = OnClose::Reply(millis(target, "delay_close_ms"));
    match target.path.as_str() {
        "/close" => close(s, target).await,
        "/no-close-reply" => {
            s.echo(OnClose::Ignore, None).await;
            Ok(())
        }
        "/drop" => drop_conn(s, target).await,
        "/headers" => {
            let body = json::header_object(&req.headers);
            s.send(OP_TEXT, body.as_bytes()).await?;
            s.echo(reply, None).await;
            Ok(())
        }
        "/push" => push(s, target, reply).await,
        "/send" => send_raw(s, target, injected).await,
        "/slow" => slow(s, target, reply).await,
        "/rst-after-open" => {
            s.reset();
            Ok(())
        }
        _ => {
            s.echo(reply, None).await;
            Ok(())
        }
    }
}

/// `/close`: server-initiated closing handshake.
async fn close<S: Transport>(mut s: Session<S>, target: &Target) -> io::Result<()> {
    let after = millis(target, "after_ms");
    if !after.is_zero()
        && s.echo(OnClose::Reply(Duration::ZERO), Some(Instant::now() + after))
            .await
            == Flow::Done
    {
        return Ok(());
    }
    let body = if target.flag("empty") {
        Vec::new()
    } else {
        let code = target.num::<u16>("code").unwrap_or(1000);
        frames::close_body(code, target.bytes("reason").unwrap_or(&[]))
    };
    let sent_at = Instant::now();
    s.send(OP_CLOSE, &body).await?;
    let no_tcp_close = target.flag("no_tcp_close");
    let wait_until = sent_at + if no_tcp_close { HOLD } else { CLOSE_REPLY_WAIT };
    loop {
        match s.next_until(wait_until).await {
            Event::Frame(f) if f.opcode == OP_CLOSE => break,
            Event::Frame(_) => continue,
            Event::Eof => return Ok(()),
            Event::Timeout => break,
        }
    }
    if no_tcp_close {
        s.hold(sent_at + HOLD).await;
    } else {
        s.close_tcp().await;
    }
    Ok(())
}

/// `/drop`: close TCP (FIN, or RST with `rst=1`) without a Close frame.
async fn drop_conn<S: Transport>(mut s: Session<S>, target: &Target) -> io::Result<()> {
    let after = millis(target, "after_ms");
    if !after.is_zero()
        && s.echo(OnClose::Reply(Duration::ZERO), Some(Instant::now() + after))
            .await
            == Flow::Done
    {
        return Ok(());
    }
    if target.flag("rst") {
        s.reset();
    } else {
        s.close_tcp().await;
    }
    Ok(())
}

/// `/push`: N messages of S bytes, then "done", then echo.
async fn push<S: Transport>(mut s: Session<S>, target: &Target, reply: OnClose) -> io::Result<()> {
    let size = target
        .num::<u64>("size")
        .unwrap_or(1)
        .min(frames::MAX_PAYLOAD as u64);
    let n = target
        .num::<u64>("n")
        .unwrap_or(1)
        .min(MAX_PUSH_BYTES.checked_div(size).unwrap_or(1_000_000));
    let opcode = match target.str("type").as_deref() {
        Some("text") => OP_TEXT,
        _ => OP_BINARY,
    };
    let frame = frames::encode(true, opcode, &vec![b'x'; size as usize]);
    let mut batch = Vec::with_capacity(256 * 1024);
    for _ in 0..n {
        batch.extend_from_slice(&frame);
        if batch.len() >= 256 * 1024 {
            s.write(&batch).await?;
            batch.clear();
        }
    }
    frames::encode_into(&mut batch, true, OP_TEXT, b"done");
    s.write(&batch).await?;
    s.echo(reply, None).await;
    Ok(())
}

/// `/send`: write raw bytes after the handshake, then echo / close / reset.
async fn send_raw<S: Transport>(
    mut s: Session<S>,
    target: &Target,
    bytes: &[u8],
) -> io::Result<()> {
    s.write(bytes).await?;
    match target.str("then").as_deref() {
        Some("rst") => s.reset(),
        Some("close") => s.close_tcp().await,
        _ => {
            let on_close = if target.flag("reply_close") {
                OnClose::Reply(Duration::ZERO)
            } else {
                OnClose::CloseTcp
            };
            s.echo(on_close, None).await;
        }
    }
    Ok(())
}

/// `/slow`: send one text message a few bytes at a time, then echo.
async fn slow<S: Transport>(mut s: Session<S>, target: &Target, reply: OnClose) -> io::Result<()> {
    let chunk = target.num::<usize>("chunk").unwrap_or(1).max(1);
    let interval =
        Duration::from_millis(target.num::<u64>("interval_ms").unwrap_or(10).min(10_000));
    let msg = target.bytes("then").unwrap_or(b"hello").to_vec();
    let frame = frames::encode(true, OP_TEXT, &msg);
    for (i, piece) in frame.chunks(chunk).enumerate() {
        if i > 0 {
            sleep(interval).await;
        }
        s.write(piece).await?;
    }
    s.echo(reply, None).await;
    Ok(())
}

/// `/raw`: no handshake; write the requested response verbatim, then hold.
async fn raw<S: Transport>(mut stream: S, req: &Request, target: &Target, rec: &Recorder) {
    use tokio::io::AsyncWriteExt;
    let resp = if let Some(hex) = target.bytes("response") {
        match hex_decode(hex) {
            Some(bytes) => bytes,
            None => {
                let resp = handshake::simple_response(400, &[], b"response: bad hex");
                return respond_and_close(stream, &resp, rec).await;
            }
        }
    } else if target.str("accept").as_deref() == Some("bad") {
        handshake::bad_accept_response(req.header("sec-websocket-key").unwrap_or(""))
    } else if let Some(url) = target.str("redirect") {
        let status = target.num::<u16>("status").unwrap_or(302);
        format!(
            "HTTP/1.1 {} {}\r\nLocation: {}\r\nContent-Length: 0\r\n\r\n",
            status,
            handshake::reason_phrase(status),
            url
        )
        .into_bytes()
    } else if let Some(status) = target.num::<u16>("status") {
        format!(
            "HTTP/1.1 {} {}\r\nContent-Length: 0\r\n\r\n",
            status,
            handshake::reason_phrase(status)
        )
        .into_bytes()
    } else {
        let resp = handshake::simple_response(
            400,
            &[],
            b"raw: give response=HEX, accept=bad, status=N or redirect=URL",
        );
        return respond_and_close(stream, &resp, rec).await;
    };
    if stream.write_all(&resp).await.is_err() || stream.flush().await.is_err() {
        return;
    }
    discard_until(&mut stream, Instant::now() + RAW_HOLD, rec).await;
    rec.server_closed();
}
