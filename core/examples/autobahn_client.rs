//! Autobahn|Testsuite client driver: runs the fuzzingserver's cases against wsdom-core.
//!
//! For each case it opens `/runCase?case=N&agent=AGENT`, echoes every text and binary message
//! back unchanged, and waits for the `close` event (bounded by a per-case timeout, after which
//! the socket is closed and the next case starts). At the end it calls
//! `/updateReports?agent=AGENT` so the server writes `reports/clients/index.json`.
//!
//! ```text
//! cargo run --release -p wsdom-core --example autobahn_client -- \
//!     [--url ws://127.0.0.1:9001] [--agent wsdom-rust] [--case-timeout 60] [PATTERN ...]
//! ```
//! A PATTERN selects case ids: `1.*`, `7.1.*`, `9.1.6` (a trailing `*` matches any suffix);
//! none means every case. Tests/autobahn/run.sh starts the server and runs this.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wsdom_core::{Event, Message, Options, WebSocket};

struct Args {
    url: String,
    agent: String,
    case_timeout: Duration,
    patterns: Vec<String>,
}

fn parse_args() -> Args {
    let mut a = Args {
        url: "ws://127.0.0.1:9001".into(),
        agent: "wsdom-rust".into(),
        case_timeout: Duration::from_secs(60),
        patterns: Vec::new(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--url" => a.url = it.next().expect("--url needs a value"),
            "--agent" => a.agent = it.next().expect("--agent needs a value"),
            "--case-timeout" => {
                let s: u64 = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--case-timeout needs seconds");
                a.case_timeout = Duration::from_secs(s);
            }
            "-h" | "--help" => {
                eprintln!("usage: autobahn_client [--url URL] [--agent NAME] [--case-timeout SECS] [PATTERN ...]");
                std::process::exit(0);
            }
            _ => a.patterns.push(arg),
        }
    }
    a
}

/// What one connection ended with.
struct Outcome {
    messages: Vec<String>,
    close: Option<(u16, bool)>,
}

/// Opens `url`; `echo` sends every message back. Waits for `close` up to `timeout`.
fn run(url: &str, echo: bool, timeout: Duration) -> Outcome {
    let (tx, rx) = mpsc::channel::<Event>();
    let opts = Options {
        handler: Some(Arc::new(move |ws: &WebSocket, ev: Event| {
            if echo {
                if let Event::Message(m) = &ev {
                    // Errors only mean the socket is already closing.
                    let _ = match m {
                        Message::Text(t) => ws.send_text(t),
                        Message::Binary(b) => ws.send_binary(b),
                    };
                    return;
                }
            }
            let _ = tx.send(ev);
        })),
        ..Options::default()
    };
    let ws = match WebSocket::new(url, &[], opts) {
        Ok(ws) => ws,
        Err(e) => {
            eprintln!("{url}: {e}");
            return Outcome {
                messages: Vec::new(),
                close: None,
            };
        }
    };
    let deadline = Instant::now() + timeout;
    let mut out = Outcome {
        messages: Vec::new(),
        close: None,
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left.max(Duration::from_millis(1))) {
            Ok(Event::Message(Message::Text(t))) => out.messages.push(t),
            Ok(Event::Close(c)) => {
                out.close = Some((c.code, c.was_clean));
                return out;
            }
            Ok(_) => {}
            Err(_) => {
                eprintln!("{url}: no close event within {timeout:?}; closing");
                let _ = ws.close(None, None);
                return wait_close(&rx, out);
            }
        }
    }
}

fn wait_close(rx: &mpsc::Receiver<Event>, mut out: Outcome) -> Outcome {
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Ok(ev) = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        if let Event::Close(c) = ev {
            out.close = Some((c.code, c.was_clean));
            break;
        }
    }
    out
}

fn matches(id: &str, patterns: &[String]) -> bool {
    patterns.is_empty()
        || patterns.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => id.starts_with(prefix),
            None => id == p,
        })
}

/// The `"id"` field of a getCaseInfo answer, e.g. `{"id": "1.1.1", "description": ...}`.
fn case_id(info: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(info).ok()?;
    v["id"].as_str().map(str::to_owned)
}

fn main() {
    let a = parse_args();
    let control = Duration::from_secs(30);
    let count: u32 = run(&format!("{}/getCaseCount", a.url), false, control)
        .messages
        .first()
        .and_then(|m| m.trim().parse().ok())
        .unwrap_or_else(|| {
            eprintln!("cannot read the case count from {}", a.url);
            std::process::exit(2)
        });
    let t0 = Instant::now();
    let mut ran = 0;
    let mut no_close = Vec::new();
    for n in 1..=count {
        let id = if a.patterns.is_empty() {
            n.to_string()
        } else {
            let info = run(&format!("{}/getCaseInfo?case={n}", a.url), false, control);
            match info.messages.first().and_then(|m| case_id(m)) {
                Some(id) if matches(&id, &a.patterns) => id,
                Some(_) => continue,
                None => {
                    eprintln!("case {n}: no case info");
                    continue;
                }
            }
        };
        let started = Instant::now();
        let url = format!("{}/runCase?case={n}&agent={}", a.url, a.agent);
        let out = run(&url, true, a.case_timeout);
        if out.close.is_none() {
            no_close.push(id.clone());
        }
        if started.elapsed() > Duration::from_secs(5) {
            eprintln!("case {n} ({id}): {:.1}s", started.elapsed().as_secs_f64());
        }
        ran += 1;
    }
    let update = format!("{}/updateReports?agent={}", a.url, a.agent);
    let done = run(&update, false, Duration::from_secs(300));
    println!(
        "ran {ran} of {count} cases in {:.1}s (agent {}); reports updated: {}",
        t0.elapsed().as_secs_f64(),
        a.agent,
        done.close.is_some()
    );
    if !no_close.is_empty() {
        println!("cases without a close event: {}", no_close.join(" "));
    }
}
