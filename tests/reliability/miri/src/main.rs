//! Replays the committed fuzz seed corpora (fuzz/corpus/*) through the same checks as the
//! fuzz targets, for Miri: undefined behaviour, out-of-bounds and uninitialised reads in the
//! pure layers (URL and subprotocol checks, the handshake response parser, the frame decoder,
//! with and without permessage-deflate) on the inputs that reach their interesting paths.
//!
//! `cargo +nightly miri run --manifest-path tests/reliability/miri/Cargo.toml -- fuzz/corpus`
//! (with MIRIFLAGS=-Zmiri-disable-isolation, to read the files). Also runs natively.

use std::path::Path;
use wsdom_fuzz_checks::{frames, handshake_response, url_and_protocols};

fn main() {
    let root = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/corpus".into());
    let targets: [(&str, fn(&[u8])); 4] = [
        ("url_and_protocols", url_and_protocols),
        ("handshake_response", handshake_response),
        ("frames", |d| frames(d, false)),
        ("frames_deflate", |d| frames(d, true)),
    ];
    let mut total = 0;
    for (name, run) in targets {
        let dir = Path::new(&root).join(name);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in &files {
            run(&std::fs::read(f).unwrap());
        }
        println!("{name}: {} inputs replayed", files.len());
        total += files.len();
    }
    println!("miri-replay: {total} corpus inputs, no undefined behaviour");
}
