//! The plain Rust peer: tokio current_thread runtime + tokio-tungstenite, TCP_NODELAY
//! (`connect_async_with_config(.., disable_nagle = true)`), no size limits, written the way
//! its README shows (`send` + `next` per round trip; `feed` + one `flush` to stream).
//! Command line and output: see `wsdom_bench` (lib.rs).

use futures_util::{SinkExt, StreamExt};
use std::time::Instant;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wsdom_bench::{cpu_time, fail, report, rss_bytes, Args, Mode};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

fn main() {
    let args = Args::parse();
    wsdom_bench::raise_nofile();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        match args.mode {
            Mode::Rr => rr(&args).await,
            Mode::Push => push(&args).await,
            Mode::Send => send(&args).await,
            Mode::Conns => conns(&args).await,
            Mode::Setup => setup(&args).await,
            Mode::ZPush | Mode::ZSend => fail("tokio-tungstenite has no permessage-deflate"),
        }
    });
}

fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None)
}

async fn connect(url: String) -> Ws {
    match tokio_tungstenite::connect_async_with_config(url.as_str(), Some(config()), true).await {
        Ok((ws, _)) => ws,
        Err(e) => fail(format!("connect {url}: {e}")),
    }
}

async fn next_data(ws: &mut Ws) -> Message {
    loop {
        match ws.next().await {
            Some(Ok(m @ (Message::Binary(_) | Message::Text(_)))) => return m,
            Some(Ok(_)) => continue,
            Some(Err(e)) => fail(format!("read: {e}")),
            None => fail("connection closed early"),
        }
    }
}

async fn close(mut ws: Ws) {
    let _ = ws.close(None).await;
    while let Some(Ok(_)) = ws.next().await {}
}

async fn rr(args: &Args) {
    let mut ws = connect(args.url_for(&args.path())).await;
    let payload = Bytes::from(args.payload());
    for _ in 0..args.warmup {
        round_trip(&mut ws, &payload).await;
    }
    let (start, cpu0) = (Instant::now(), cpu_time());
    let mut count = 0u64;
    while start.elapsed() < args.duration {
        round_trip(&mut ws, &payload).await;
        count += 1;
    }
    let (secs, cpu) = (start.elapsed().as_secs_f64(), cpu_time() - cpu0);
    close(ws).await;
    report(&[
        ("rate", count as f64 / secs),
        ("count", count as f64),
        ("seconds", secs),
        ("cpu_s", cpu),
    ]);
}

async fn round_trip(ws: &mut Ws, payload: &Bytes) {
    if let Err(e) = ws.send(Message::Binary(payload.clone())).await {
        fail(format!("send: {e}"));
    }
    let m = next_data(ws).await;
    if m.len() != payload.len() {
        fail(format!(
            "echo of {} bytes, expected {}",
            m.len(),
            payload.len()
        ));
    }
}

async fn push(args: &Args) {
    let mut ws = connect(args.url_for(&args.path())).await;
    let (start, cpu0) = (Instant::now(), cpu_time());
    let mut count = 0usize;
    loop {
        match next_data(&mut ws).await {
            Message::Binary(b) => {
                if b.len() != args.size {
                    fail(format!(
                        "message of {} bytes, expected {}",
                        b.len(),
                        args.size
                    ));
                }
                count += 1;
            }
            Message::Text(t) if t.as_str() == "done" => break,
            m => fail(format!("unexpected {m:?}")),
        }
    }
    let (secs, cpu) = (start.elapsed().as_secs_f64(), cpu_time() - cpu0);
    if count != args.n {
        fail(format!("received {count} messages, expected {}", args.n));
    }
    close(ws).await;
    let rate = count as f64 / secs;
    report(&[
        ("rate", rate),
        ("mbps", rate * args.size as f64 / 1e6),
        ("seconds", secs),
        ("cpu_s", cpu),
    ]);
}

async fn send(args: &Args) {
    let mut ws = connect(args.url_for(&args.path())).await;
    let payload = Bytes::from(args.payload());
    let (start, cpu0) = (Instant::now(), cpu_time());
    for _ in 0..args.n {
        if let Err(e) = ws.feed(Message::Binary(payload.clone())).await {
            fail(format!("send: {e}"));
        }
    }
    if let Err(e) = ws.flush().await {
        fail(format!("flush: {e}"));
    }
    match next_data(&mut ws).await {
        Message::Text(t) if t.as_str() == "done" => {}
        m => fail(format!("expected done, got {m:?}")),
    }
    let (secs, cpu) = (start.elapsed().as_secs_f64(), cpu_time() - cpu0);
    close(ws).await;
    let rate = args.n as f64 / secs;
    report(&[
        ("rate", rate),
        ("mbps", rate * args.size as f64 / 1e6),
        ("seconds", secs),
        ("cpu_s", cpu),
    ]);
}

async fn conns(args: &Args) {
    let url = args.url_for("/echo");
    // Warm up the runtime and the allocator with one connection before the baseline.
    close(connect(url.clone()).await).await;
    let rss0 = rss_bytes();
    let start = Instant::now();
    let mut set = JoinSet::new();
    for _ in 0..args.n {
        set.spawn(connect(url.clone()));
    }
    let mut all = Vec::with_capacity(args.n);
    while let Some(ws) = set.join_next().await {
        all.push(ws.expect("task"));
    }
    let open_s = start.elapsed().as_secs_f64();
    let size = args.size;
    let start = Instant::now();
    let mut set = JoinSet::new();
    for mut ws in all.drain(..) {
        set.spawn(async move {
            if let Err(e) = ws
                .send(Message::Binary(vec![wsdom_bench::FILL; size].into()))
                .await
            {
                fail(format!("send: {e}"));
            }
            let m = next_data(&mut ws).await;
            if m.len() != size {
                fail("bad echo length");
            }
            ws
        });
    }
    while let Some(ws) = set.join_next().await {
        all.push(ws.expect("task"));
    }
    let echo_s = start.elapsed().as_secs_f64();
    let rss1 = rss_bytes();
    let mut set = JoinSet::new();
    for ws in all.drain(..) {
        set.spawn(close(ws));
    }
    while set.join_next().await.is_some() {}
    report(&[
        ("rate", args.n as f64 / open_s),
        ("open_s", open_s),
        ("echo_s", echo_s),
        (
            "rss_per_conn",
            (rss1.saturating_sub(rss0)) as f64 / args.n as f64,
        ),
        ("rss_before", rss0 as f64),
        ("rss_after", rss1 as f64),
    ]);
}

async fn setup(args: &Args) {
    let url = args.url_for("/echo");
    for _ in 0..args.warmup.min(20) {
        close(connect(url.clone()).await).await;
    }
    let (start, cpu0) = (Instant::now(), cpu_time());
    let mut count = 0u64;
    while start.elapsed() < args.duration {
        close(connect(url.clone()).await).await;
        count += 1;
    }
    let (secs, cpu) = (start.elapsed().as_secs_f64(), cpu_time() - cpu0);
    report(&[
        ("rate", count as f64 / secs),
        ("count", count as f64),
        ("seconds", secs),
        ("cpu_s", cpu),
    ]);
}
