//! wsdom from Rust, used the way its README shows: a handler on wsdom's I/O thread (the
//! default), which answers each echo by sending the next message from inside the handler (a
//! direct write, no thread hop). Streaming sends come from the main thread and respect
//! `bufferedAmount` like browser code does. Compression is not offered (the server has none
//! anyway) except in the compression workloads (zpush, zsend), which use wsdom's default
//! (`deflate: true`); the proxy is `Direct`. Command line and output: see `wsdom_bench`
//! (lib.rs).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wsdom_bench::{cpu_time, fail, parse_done, report, rss_bytes, Args, Mode};
use wsdom_core::{Event, EventHandler, Message, Options, ProxySetting, WebSocket};

/// Sends wait while `bufferedAmount` is above this.
const HIGH_WATER: u64 = 4 << 20;

fn main() {
    let args = Args::parse();
    wsdom_bench::raise_nofile();
    match args.mode {
        Mode::Rr => rr(&args),
        Mode::Push => push(&args),
        Mode::Send => send(&args),
        Mode::Conns => conns(&args),
        Mode::Setup => setup(&args),
        Mode::ZPush => zpush(&args),
        Mode::ZSend => zsend(&args),
    }
}

fn open(url: &str, handler: impl Fn(&WebSocket, Event) + Send + Sync + 'static) -> WebSocket {
    open_shared(url, Arc::new(handler))
}

fn open_shared(url: &str, handler: Arc<dyn EventHandler>) -> WebSocket {
    open_with(url, handler, false)
}

/// Fails unless the server accepted permessage-deflate.
fn check_deflate(ws: &WebSocket) {
    if !ws.extensions().contains("permessage-deflate") {
        fail(format!(
            "permessage-deflate was not negotiated (extensions {:?})",
            ws.extensions()
        ));
    }
}

fn open_with(url: &str, handler: Arc<dyn EventHandler>, deflate: bool) -> WebSocket {
    let options = Options {
        deflate,
        proxy: ProxySetting::Direct,
        handler: Some(handler),
        ..Options::default()
    };
    WebSocket::new(url, &[], options).unwrap_or_else(|e| fail(format!("new: {e}")))
}

fn wait(rx: &Receiver<&'static str>, what: &str) {
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(got) if got == what => {}
        Ok(got) => fail(format!("expected {what}, got {got}")),
        Err(_) => fail(format!("timed out waiting for {what}")),
    }
}

fn on_failure(event: &Event) {
    if let Event::Error(e) = event {
        fail(format!("error event: {e}"));
    }
}

fn rr(args: &Args) {
    let payload = args.payload();
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = channel();
    let warmup = args.warmup.max(1) as u64;
    let handler = {
        let (count, stop, tx, payload) =
            (count.clone(), stop.clone(), Mutex::new(tx), payload.clone());
        move |ws: &WebSocket, event: Event| match event {
            Event::Open => ws.send_binary(&payload).unwrap(),
            Event::Message(m) => {
                if m.len() != payload.len() {
                    fail(format!(
                        "echo of {} bytes, expected {}",
                        m.len(),
                        payload.len()
                    ));
                }
                let c = count.fetch_add(1, Ordering::Relaxed) + 1;
                if c == warmup {
                    let _ = tx.lock().unwrap().send("warm");
                }
                if !stop.load(Ordering::Relaxed) {
                    ws.send_binary(&payload).unwrap();
                }
            }
            Event::Close(_) => {
                let _ = tx.lock().unwrap().send("close");
            }
            e => on_failure(&e),
        }
    };
    let ws = open(&args.url_for(&args.path()), handler);
    wait(&rx, "warm");
    let (c0, t0, cpu0) = (count.load(Ordering::Relaxed), Instant::now(), cpu_time());
    std::thread::sleep(args.duration);
    let (c1, secs, cpu) = (
        count.load(Ordering::Relaxed),
        t0.elapsed().as_secs_f64(),
        cpu_time() - cpu0,
    );
    stop.store(true, Ordering::Relaxed);
    ws.close(None, None).unwrap();
    wait(&rx, "close");
    let n = (c1 - c0) as f64;
    report(&[
        ("rate", n / secs),
        ("count", n),
        ("seconds", secs),
        ("cpu_s", cpu),
    ]);
}

#[derive(Default)]
struct Timing {
    start: Option<(Instant, f64)>,
    end: Option<(Instant, f64)>,
}

fn push(args: &Args) {
    let size = args.size;
    let count = Arc::new(AtomicU64::new(0));
    let timing = Arc::new(Mutex::new(Timing::default()));
    let (tx, rx) = channel();
    let handler = {
        let (count, timing, tx) = (count.clone(), timing.clone(), Mutex::new(tx));
        move |ws: &WebSocket, event: Event| match event {
            Event::Open => timing.lock().unwrap().start = Some((Instant::now(), cpu_time())),
            Event::Message(Message::Binary(b)) => {
                if b.len() != size {
                    fail(format!("message of {} bytes, expected {size}", b.len()));
                }
                count.fetch_add(1, Ordering::Relaxed);
            }
            Event::Message(Message::Text(t)) if t == "done" => {
                timing.lock().unwrap().end = Some((Instant::now(), cpu_time()));
                ws.close(None, None).unwrap();
            }
            Event::Message(m) => fail(format!("unexpected {m:?}")),
            Event::Close(_) => {
                let _ = tx.lock().unwrap().send("close");
            }
            e => on_failure(&e),
        }
    };
    let _ws = open(&args.url_for(&args.path()), handler);
    wait(&rx, "close");
    let t = timing.lock().unwrap();
    let ((t1, c1), (t0, c0)) = (t.end.expect("done"), t.start.expect("open"));
    let (secs, cpu) = ((t1 - t0).as_secs_f64(), c1 - c0);
    let got = count.load(Ordering::Relaxed) as usize;
    if got != args.n {
        fail(format!("received {got} messages, expected {}", args.n));
    }
    let rate = got as f64 / secs;
    report(&[
        ("rate", rate),
        ("mbps", rate * size as f64 / 1e6),
        ("seconds", secs),
        ("cpu_s", cpu),
    ]);
}

fn send(args: &Args) {
    let payload = args.payload();
    let (tx, rx) = channel();
    let handler = {
        let tx = Mutex::new(tx);
        move |_: &WebSocket, event: Event| {
            let what = match event {
                Event::Open => "open",
                Event::Message(Message::Text(t)) if t == "done" => "done",
                Event::Close(_) => "close",
                e => {
                    on_failure(&e);
                    fail(format!("unexpected {e:?}"));
                }
            };
            let _ = tx.lock().unwrap().send(what);
        }
    };
    let ws = open(&args.url_for(&args.path()), handler);
    wait(&rx, "open");
    let (start, cpu0) = (Instant::now(), cpu_time());
    for _ in 0..args.n {
        while ws.buffered_amount() > HIGH_WATER {
            std::thread::sleep(Duration::from_micros(100));
        }
        ws.send_binary(&payload).unwrap();
    }
    wait(&rx, "done");
    let (secs, cpu) = (start.elapsed().as_secs_f64(), cpu_time() - cpu0);
    ws.close(None, None).unwrap();
    wait(&rx, "close");
    let rate = args.n as f64 / secs;
    report(&[
        ("rate", rate),
        ("mbps", rate * args.size as f64 / 1e6),
        ("seconds", secs),
        ("cpu_s", cpu),
    ]);
}

/// Counts events of many sockets and wakes the main thread when a count reaches its target.
struct Counter {
    count: AtomicU64,
    target: u64,
    tx: Mutex<Sender<&'static str>>,
    what: &'static str,
}

impl Counter {
    fn new(target: usize, tx: &Sender<&'static str>, what: &'static str) -> Counter {
        Counter {
            count: AtomicU64::new(0),
            target: target as u64,
            tx: Mutex::new(tx.clone()),
            what,
        }
    }

    fn hit(&self) {
        if self.count.fetch_add(1, Ordering::AcqRel) + 1 == self.target {
            let _ = self.tx.lock().unwrap().send(self.what);
        }
    }
}

fn conns(args: &Args) {
    let url = args.url_for("/echo");
    let size = args.size;
    // Warm up the runtime (its thread starts on first use) and the allocator.
    {
        let (tx, rx) = channel();
        let tx = Mutex::new(tx);
        let ws = open(&url, move |_: &WebSocket, e: Event| {
            let _ = tx.lock().unwrap().send(e.type_name());
        });
        wait(&rx, "open");
        ws.close(None, None).unwrap();
        wait(&rx, "close");
    }
    let rss0 = rss_bytes();
    let (tx, rx) = channel();
    let opened = Arc::new(Counter::new(args.n, &tx, "open"));
    let echoed = Arc::new(Counter::new(args.n, &tx, "echo"));
    let closed = Arc::new(Counter::new(args.n, &tx, "close"));
    let handler: Arc<dyn EventHandler> = {
        let (opened, echoed, closed) = (opened.clone(), echoed.clone(), closed.clone());
        Arc::new(move |_: &WebSocket, event: Event| match event {
            Event::Open => opened.hit(),
            Event::Message(m) => {
                if m.len() != size {
                    fail("bad echo length");
                }
                echoed.hit()
            }
            Event::Close(_) => closed.hit(),
            e => on_failure(&e),
        })
    };
    let start = Instant::now();
    let sockets: Vec<WebSocket> = (0..args.n)
        .map(|_| open_shared(&url, handler.clone()))
        .collect();
    wait(&rx, "open");
    let open_s = start.elapsed().as_secs_f64();
    let payload = args.payload();
    let start = Instant::now();
    for ws in &sockets {
        ws.send_binary(&payload).unwrap();
    }
    wait(&rx, "echo");
    let echo_s = start.elapsed().as_secs_f64();
    let rss1 = rss_bytes();
    for ws in &sockets {
        ws.close(None, None).unwrap();
    }
    wait(&rx, "close");
    report(&[
        ("rate", args.n as f64 / open_s),
        ("open_s", open_s),
        ("echo_s", echo_s),
        (
            "rss_per_conn",
            rss1.saturating_sub(rss0) as f64 / args.n as f64,
        ),
        ("rss_before", rss0 as f64),
        ("rss_after", rss1 as f64),
    ]);
}

fn setup(args: &Args) {
    let url = args.url_for("/echo");
    let (tx, rx) = channel();
    let tx = Arc::new(Mutex::new(tx));
    let once = || {
        let tx = tx.clone();
        let ws = open(&url, move |_: &WebSocket, e: Event| {
            on_failure(&e);
            let _ = tx.lock().unwrap().send(e.type_name());
        });
        wait(&rx, "open");
        ws.close(None, None).unwrap();
        wait(&rx, "close");
    };
    for _ in 0..args.warmup.min(20) {
        once();
    }
    let (start, cpu0) = (Instant::now(), cpu_time());
    let mut count = 0u64;
    while start.elapsed() < args.duration {
        once();
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

fn zpush(args: &Args) {
    let pool = Arc::new(args.load_pool());
    let n = args.n;
    let count = Arc::new(AtomicU64::new(0));
    let timing = Arc::new(Mutex::new(Timing::default()));
    let (tx, rx) = channel();
    let handler = {
        let (count, timing, tx, pool) =
            (count.clone(), timing.clone(), Mutex::new(tx), pool.clone());
        move |ws: &WebSocket, event: Event| match event {
            Event::Open => {
                check_deflate(ws);
                timing.lock().unwrap().start = Some((Instant::now(), cpu_time()));
            }
            Event::Message(m) => {
                let i = count.load(Ordering::Relaxed) as usize;
                if i == n {
                    match m {
                        Message::Text(t) if t == "done" => {}
                        m => fail(format!("expected done, got {m:?}")),
                    }
                    timing.lock().unwrap().end = Some((Instant::now(), cpu_time()));
                    ws.close(None, None).unwrap();
                    return;
                }
                let want = pool.get(i).len();
                let ok = match &m {
                    Message::Text(t) => pool.text && t.len() == want && t.starts_with('{'),
                    Message::Binary(b) => !pool.text && b.len() == want,
                };
                if !ok {
                    fail(format!("message {i}: {} bytes, expected {want}", m.len()));
                }
                count.store(i as u64 + 1, Ordering::Relaxed);
            }
            Event::Close(_) => {
                let _ = tx.lock().unwrap().send("close");
            }
            e => on_failure(&e),
        }
    };
    let _ws = open_with(&args.url_for(&args.path()), Arc::new(handler), true);
    wait(&rx, "close");
    let t = timing.lock().unwrap();
    let ((t1, c1), (t0, c0)) = (t.end.expect("done"), t.start.expect("open"));
    let (secs, cpu) = ((t1 - t0).as_secs_f64(), c1 - c0);
    let got = count.load(Ordering::Relaxed) as usize;
    if got != n {
        fail(format!("received {got} messages, expected {n}"));
    }
    let bytes = pool.bytes_of(n) as f64;
    report(&[
        ("rate", n as f64 / secs),
        ("mbps", bytes / secs / 1e6),
        ("seconds", secs),
        ("cpu_s", cpu),
        ("payload_bytes", bytes),
    ]);
}

fn zsend(args: &Args) {
    let pool = args.load_pool();
    // The pool's text, checked once (send_text takes &str).
    let texts: Vec<&str> = if pool.text {
        pool.messages
            .iter()
            .map(|m| std::str::from_utf8(m).unwrap())
            .collect()
    } else {
        Vec::new()
    };
    let (tx, rx) = channel();
    let done = Arc::new(Mutex::new(None));
    let handler = {
        let (tx, done) = (Mutex::new(tx), done.clone());
        move |_: &WebSocket, event: Event| {
            let what = match event {
                Event::Open => "open",
                Event::Message(Message::Text(t)) => {
                    *done.lock().unwrap() = Some((t, Instant::now(), cpu_time()));
                    "done"
                }
                Event::Close(_) => "close",
                e => {
                    on_failure(&e);
                    fail(format!("unexpected {e:?}"));
                }
            };
            let _ = tx.lock().unwrap().send(what);
        }
    };
    let ws = open_with(&args.url_for(&args.path()), Arc::new(handler), true);
    wait(&rx, "open");
    check_deflate(&ws);
    let len = pool.messages.len();
    let (start, cpu0) = (Instant::now(), cpu_time());
    for i in 0..args.n {
        while ws.buffered_amount() > HIGH_WATER {
            std::thread::sleep(Duration::from_micros(100));
        }
        if pool.text {
            ws.send_text(texts[i % len]).unwrap();
        } else {
            ws.send_binary(&pool.messages[i % len]).unwrap();
        }
    }
    wait(&rx, "done");
    let (text, end, cpu1) = done.lock().unwrap().take().expect("done");
    let (wire, rsv1) = parse_done(&text);
    let (secs, cpu) = ((end - start).as_secs_f64(), cpu1 - cpu0);
    ws.close(None, None).unwrap();
    wait(&rx, "close");
    let bytes = pool.bytes_of(args.n) as f64;
    report(&[
        ("rate", args.n as f64 / secs),
        ("mbps", bytes / secs / 1e6),
        ("seconds", secs),
        ("cpu_s", cpu),
        ("payload_bytes", bytes),
        ("wire_bytes", wire as f64),
        ("rsv1_messages", rsv1 as f64),
    ]);
}
