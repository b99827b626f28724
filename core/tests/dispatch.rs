//! Item 8: event queues drained by one consumer thread, woken through a descriptor; handlers
//! set late; handlers that re-enter the API.

mod common;
use common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wsdom_core::{Event, EventQueue, Options, WebSocket};

/// Polls the queue's descriptor, then dispatches, until `done()` or 10 s.
fn drive(queue: &EventQueue, done: impl Fn() -> bool) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut wakeups = 0;
    while !done() {
        assert!(Instant::now() < deadline, "timed out");
        let mut pfd = libc::pollfd {
            fd: queue.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, 100) };
        if n > 0 {
            wakeups += 1;
            queue.dispatch(Some(Duration::ZERO));
        }
    }
    wakeups
}

#[test]
fn one_consumer_thread_runs_the_handlers_of_many_sockets_via_the_fd() {
    let srv = server();
    let queue = EventQueue::new().unwrap();
    let me = std::thread::current().id();
    let log = Arc::new(Mutex::new(Vec::<(u64, String)>::new()));
    let closed = Arc::new(AtomicUsize::new(0));
    let mut sockets = Vec::new();
    for _ in 0..20 {
        let log = log.clone();
        let closed = closed.clone();
        let opts = Options {
            queue: Some(queue.clone()),
            handler: Some(Arc::new(move |ws: &WebSocket, ev: Event| {
                assert_eq!(std::thread::current().id(), me, "runs on the consumer");
                log.lock()
                    .unwrap()
                    .push((ws.id(), ev.type_name().to_owned()));
                match ev {
                    Event::Open => {
                        for i in 0..50 {
                            ws.send_text(&i.to_string()).unwrap();
                        }
                    }
                    Event::Message(m) if m.as_bytes() == b"49" => ws.close(None, None).unwrap(),
                    Event::Close(_) => {
                        closed.fetch_add(1, Ordering::SeqCst);
                    }
                    _ => {}
                }
            })),
            ..Options::default()
        };
        sockets.push(WebSocket::new(&srv.url("/echo"), &[], opts).unwrap());
    }
    let wakeups = drive(&queue, || closed.load(Ordering::SeqCst) == 20);
    let log = log.lock().unwrap();
    for ws in &sockets {
        let mine: Vec<&str> = log
            .iter()
            .filter(|(id, _)| *id == ws.id())
            .map(|(_, t)| t.as_str())
            .collect();
        assert_eq!(mine.len(), 52, "open, 50 messages, close");
        assert_eq!(mine[0], "open");
        assert_eq!(mine[51], "close");
    }
    // 1040 events arrived in far fewer wake-ups than events.
    assert!(
        wakeups < log.len(),
        "{wakeups} wake-ups for {} events",
        log.len()
    );
}

#[test]
fn events_wait_for_a_late_handler_500_sockets() {
    let srv = server();
    let sockets: Vec<WebSocket> = (0..500)
        .map(|_| WebSocket::new(&srv.url("/echo"), &[], Options::default()).unwrap())
        .collect();
    // Let every socket open (and buffer its open event) before any handler exists.
    std::thread::sleep(Duration::from_millis(300));
    let (tx, rx) = crossbeam_channel::unbounded();
    for ws in &sockets {
        let tx = tx.clone();
        ws.set_handler(Arc::new(move |ws: &WebSocket, ev: Event| {
            match &ev {
                Event::Open => ws.send_text("ping").unwrap(),
                Event::Message(_) => ws.close(Some(1000), None).unwrap(),
                _ => {}
            }
            let _ = tx.send((ws.id(), ev.type_name()));
        }));
    }
    let mut per_socket = std::collections::HashMap::<u64, Vec<&str>>::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut closes = 0;
    while closes < 500 {
        let (id, t) = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .expect("all sockets close within 20 s");
        if t == "close" {
            closes += 1;
        }
        per_socket.entry(id).or_default().push(t);
    }
    assert_eq!(per_socket.len(), 500);
    for events in per_socket.values() {
        assert_eq!(events, &["open", "message", "close"]);
    }
}

#[test]
fn handlers_may_close_detach_and_drop_their_own_socket() {
    let srv = server();
    // Echo once, then close and detach from inside the handler; drop the user handle.
    let (tx, rx) = crossbeam_channel::unbounded();
    let opts = Options {
        handler: Some(Arc::new(move |ws: &WebSocket, ev: Event| {
            let _ = tx.send(ev.type_name());
            match ev {
                Event::Open => ws.send_text("x").unwrap(),
                Event::Message(_) => {
                    ws.close(None, None).unwrap();
                    ws.detach_handler();
                }
                _ => {}
            }
        })),
        ..Options::default()
    };
    drop(WebSocket::new(&srv.url("/echo"), &[], opts).unwrap());
    let mut seen = Vec::new();
    while let Ok(t) = rx.recv_timeout(Duration::from_millis(1000)) {
        seen.push(t);
    }
    assert_eq!(seen, ["open", "message"], "nothing after detach");
}

#[test]
fn detach_from_another_thread_waits_for_a_running_handler() {
    let srv = server();
    let running = Arc::new(AtomicUsize::new(0));
    let r2 = running.clone();
    let opts = Options {
        handler: Some(Arc::new(move |_: &WebSocket, ev: Event| {
            if let Event::Open = ev {
                r2.store(1, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(300));
                r2.store(2, Ordering::SeqCst);
            }
        })),
        ..Options::default()
    };
    let ws = WebSocket::new(&srv.url("/echo"), &[], opts).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while running.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    ws.detach_handler();
    assert_eq!(
        running.load(Ordering::SeqCst),
        2,
        "detach returned only after the handler"
    );
    ws.close(None, None).unwrap();
}

/// Counts batches and events; checks that events only arrive inside a batch.
struct Batching {
    in_batch: std::sync::atomic::AtomicBool,
    batches: AtomicUsize,
    messages: AtomicUsize,
    closed: AtomicUsize,
}

impl wsdom_core::EventHandler for Batching {
    fn handle_event(&self, _: &WebSocket, ev: Event) {
        if let Event::Message(_) = ev {
            assert!(
                self.in_batch.load(Ordering::SeqCst),
                "messages arrive inside a batch"
            );
            self.messages.fetch_add(1, Ordering::SeqCst);
        }
        if let Event::Close(_) = ev {
            self.closed.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn batch(&self, dispatch: &mut dyn FnMut()) {
        self.in_batch.store(true, Ordering::SeqCst);
        self.batches.fetch_add(1, Ordering::SeqCst);
        dispatch();
        self.in_batch.store(false, Ordering::SeqCst);
    }
}

#[test]
fn inline_handlers_get_messages_in_batches() {
    let srv = server();
    let h = Arc::new(Batching {
        in_batch: false.into(),
        batches: AtomicUsize::new(0),
        messages: AtomicUsize::new(0),
        closed: AtomicUsize::new(0),
    });
    let opts = Options {
        handler: Some(h.clone()),
        ..Options::default()
    };
    let ws = WebSocket::new(&srv.url("/push?n=20000&size=16"), &[], opts).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.messages.load(Ordering::SeqCst) < 20001 {
        assert!(Instant::now() < deadline, "all messages within 10 s");
        std::thread::sleep(Duration::from_millis(5));
    }
    let batches = h.batches.load(Ordering::SeqCst);
    assert!(batches * 10 < 20001, "{batches} batches for 20001 messages");
    ws.close(None, None).unwrap();
}

#[test]
fn the_queue_descriptor_never_misses_a_wakeup() {
    // Many producers racing with one consumer that only dispatches when the fd polls readable.
    let srv = server();
    let queue = EventQueue::new().unwrap();
    let messages = Arc::new(AtomicUsize::new(0));
    let sockets: Vec<WebSocket> = (0..40)
        .map(|_| {
            let messages = messages.clone();
            let opts = Options {
                queue: Some(queue.clone()),
                handler: Some(Arc::new(move |_: &WebSocket, ev: Event| {
                    if let Event::Message(_) = ev {
                        messages.fetch_add(1, Ordering::SeqCst);
                    }
                })),
                ..Options::default()
            };
            WebSocket::new(&srv.url("/push?n=300&size=8"), &[], opts).unwrap()
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while messages.load(Ordering::SeqCst) < 40 * 301 {
        assert!(Instant::now() < deadline, "stalled: a wake-up was lost");
        let mut pfd = libc::pollfd {
            fd: queue.fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd. A lost wake-up makes this time out with events waiting.
        let n = unsafe { libc::poll(&mut pfd, 1, 5000) };
        assert!(
            n > 0 || queue.is_empty(),
            "events wait but the fd is not readable"
        );
        queue.dispatch(Some(Duration::ZERO));
    }
    drop(sockets);
}
