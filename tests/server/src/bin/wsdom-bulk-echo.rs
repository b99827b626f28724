//! `wsdom-bulk-echo [--ignore-stdin]`: the non-recording echo server for load and soak tests
//! (see `wsdom_testserver::BulkEchoServer`). Prints exactly one line `LISTENING <port>`, then
//! runs until stdin reaches EOF (unless `--ignore-stdin`) or the process gets SIGTERM.

use std::io::{self, Write};
use std::process::ExitCode;

use wsdom_testserver::BulkEchoServer;

fn main() -> ExitCode {
    let ignore_stdin = match std::env::args().nth(1).as_deref() {
        None => false,
        Some("--ignore-stdin") => true,
        Some(_) => {
            eprintln!("usage: wsdom-bulk-echo [--ignore-stdin]");
            return ExitCode::from(2);
        }
    };
    let server = match BulkEchoServer::start() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wsdom-bulk-echo: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    {
        let mut out = io::stdout().lock();
        if writeln!(out, "LISTENING {}", server.port())
            .and_then(|_| out.flush())
            .is_err()
        {
            return ExitCode::FAILURE;
        }
    }
    // Run until stdin reaches EOF; SIGTERM's default action ends the process.
    wsdom_testserver::wait_for_stdin_eof(ignore_stdin);
    server.stop();
    ExitCode::SUCCESS
}
