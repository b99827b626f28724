//! The I/O park hook runs before each I/O thread blocks (its own test binary: the runtime
//! is process-wide and the hook must be set before the first socket).

mod common;
use common::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use wsdom_core::Event;

static PARKS: AtomicUsize = AtomicUsize::new(0);

fn count_park() {
    PARKS.fetch_add(1, Ordering::SeqCst);
}

#[test]
fn park_hook_runs_and_is_refused_once_started() {
    assert!(wsdom_core::set_io_park_hook(count_park));
    let srv = server();
    let (ws, rx) = open(&srv.url("/echo"), &[]);
    assert!(matches!(next(&rx).event, Event::Open));
    ws.close(None, None).unwrap();
    until_close(&rx);
    assert!(PARKS.load(Ordering::SeqCst) > 0);
    assert!(
        !wsdom_core::set_io_park_hook(count_park),
        "too late once running"
    );
    assert!(!wsdom_core::set_io_threads(2), "too late once running");
}
