//! `wsdom-testserver [--tls] [--ipv6] [--ca-out PATH] [--ignore-stdin]`
//! `wsdom-testserver --proxy http|https|socks5 [--proxy-auth USER:PASS] [--ipv6] [--ca-out PATH] [--ignore-stdin]`
//!
//! Starts the scenario server (or, with `--proxy`, only a proxy tunnelling to
//! loopback targets), writes the CA PEM to PATH (with `--tls` or `--proxy
//! https`), prints exactly one line `LISTENING <port>` to stdout, then runs
//! until stdin reaches EOF (unless `--ignore-stdin`) or the process gets SIGTERM.

use std::io::{self, Write};
use std::process::ExitCode;

use wsdom_testserver::{ProxyKind, ProxyOptions, ProxyServer, ServerOptions, TestServer};

const USAGE: &str = "usage: wsdom-testserver [--tls] [--ipv6] [--ca-out PATH] [--ignore-stdin]
       wsdom-testserver --proxy http|https|socks5 [--proxy-auth USER:PASS] [--ipv6] [--ca-out PATH] [--ignore-stdin]";

struct Args {
    opts: ServerOptions,
    ca_out: Option<String>,
    ignore_stdin: bool,
    proxy: Option<ProxyKind>,
    proxy_auth: Option<(String, String)>,
}

/// The scenario server or a proxy, whichever was asked for.
enum Running {
    Server(TestServer),
    Proxy(ProxyServer),
}

impl Running {
    fn port(&self) -> u16 {
        match self {
            Running::Server(s) => s.port(),
            Running::Proxy(p) => p.port(),
        }
    }

    fn ca_pem(&self) -> Option<String> {
        match self {
            Running::Server(s) => s.ca_pem(),
            Running::Proxy(p) => p.ca_pem(),
        }
    }
}

fn parse_proxy_kind(s: &str) -> Result<ProxyKind, String> {
    match s {
        "http" => Ok(ProxyKind::HttpConnect),
        "https" => Ok(ProxyKind::HttpsConnect),
        "socks5" => Ok(ProxyKind::Socks5),
        other => Err(format!(
            "unknown proxy kind: {other} (http, https or socks5)"
        )),
    }
}

fn parse_proxy_auth(s: &str) -> Result<(String, String), String> {
    s.split_once(':')
        .map(|(u, p)| (u.to_string(), p.to_string()))
        .ok_or_else(|| "--proxy-auth needs USER:PASS".to_string())
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        opts: ServerOptions::default(),
        ca_out: None,
        ignore_stdin: false,
        proxy: None,
        proxy_auth: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--tls" => args.opts.tls = true,
            "--ipv6" => args.opts.ipv6 = true,
            "--ignore-stdin" => args.ignore_stdin = true,
            "--ca-out" => args.ca_out = Some(it.next().ok_or("--ca-out needs a PATH")?),
            s if s.starts_with("--ca-out=") => args.ca_out = Some(s["--ca-out=".len()..].into()),
            "--proxy" => {
                args.proxy = Some(parse_proxy_kind(&it.next().ok_or("--proxy needs a KIND")?)?)
            }
            s if s.starts_with("--proxy=") => {
                args.proxy = Some(parse_proxy_kind(&s["--proxy=".len()..])?)
            }
            "--proxy-auth" => {
                args.proxy_auth = Some(parse_proxy_auth(
                    &it.next().ok_or("--proxy-auth needs USER:PASS")?,
                )?)
            }
            s if s.starts_with("--proxy-auth=") => {
                args.proxy_auth = Some(parse_proxy_auth(&s["--proxy-auth=".len()..])?)
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    if args.proxy.is_some() && args.opts.tls {
        return Err("--tls does not apply to --proxy (use --proxy https)".into());
    }
    if args.proxy.is_none() && args.proxy_auth.is_some() {
        return Err("--proxy-auth needs --proxy".into());
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
    let started = match args.proxy {
        None => TestServer::start(args.opts).map(Running::Server),
        Some(kind) => ProxyServer::start(ProxyOptions {
            kind,
            auth: args.proxy_auth.clone(),
            ipv6: args.opts.ipv6,
        })
        .map(Running::Proxy),
    };
    let server = match started {
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
    // Run until stdin reaches EOF; SIGTERM's default action ends the process.
    wsdom_testserver::wait_for_stdin_eof(args.ignore_stdin);
    match server {
        Running::Server(s) => s.stop(),
        Running::Proxy(p) => p.stop(),
    }
    ExitCode::SUCCESS
}
