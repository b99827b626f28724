//! `wsdom-testserver [--tls] [--ipv6] [--ca-out PATH] [--ignore-stdin]`
//!
//! Starts the scenario server, writes the CA PEM to PATH (with `--tls`), prints
//! exactly one line `LISTENING <port>` to stdout, then runs until stdin reaches
//! EOF (unless `--ignore-stdin`) or the process gets SIGTERM.

use std::io::{self, Read, Write};
use std::process::ExitCode;

use wsdom_testserver::{ServerOptions, TestServer};

const USAGE: &str = "usage: wsdom-testserver [--tls] [--ipv6] [--ca-out PATH] [--ignore-stdin]";

struct Args {
    opts: ServerOptions,
    ca_out: Option<String>,
    ignore_stdin: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        opts: ServerOptions::default(),
        ca_out: None,
        ignore_stdin: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--tls" => args.opts.tls = true,
            "--ipv6" => args.opts.ipv6 = true,
            "--ignore-stdin" => args.ignore_stdin = true,
            "--ca-out" => args.ca_out = Some(it.next().ok_or("--ca-out needs a PATH")?),
            s if s.starts_with("--ca-out=") => args.ca_out = Some(s["--ca-out=".len()..].into()),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("wsdom-testserver: {msg}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let server = match TestServer::start(args.opts) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("wsdom-testserver: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let (Some(path), Some(pem)) = (&args.ca_out, server.ca_pem()) {
        if let Err(e) = std::fs::write(path, pem) {
            eprintln!("wsdom-testserver: cannot write {path}: {e}");
            return ExitCode::FAILURE;
        }
    }
    {
        let mut out = io::stdout().lock();
        if writeln!(out, "LISTENING {}", server.port())
            .and_then(|_| out.flush())
            .is_err()
        {
            return ExitCode::FAILURE;
        }
    }
    if args.ignore_stdin {
        loop {
            std::thread::park();
        }
    }
    // Run until stdin reaches EOF (or fails); SIGTERM's default action ends the process.
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
    server.stop();
    ExitCode::SUCCESS
}
