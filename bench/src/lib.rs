//! Shared helpers of the benchmark binaries: the command line every client takes, the
//! payload, the result line the harness parses, and the resident-memory probe.
//!
//! Every client (Rust, C and Python alike) is run by `bench/harness.py` as
//!
//! ```text
//! CLIENT --mode rr|push|send|conns|setup --url ws://127.0.0.1:PORT
//!        [--size BYTES] [--n COUNT] [--duration SECONDS] [--warmup COUNT]
//! ```
//!
//! and prints one line `RESULT {json}` on stdout. The server (`bench-server`) chooses its
//! behaviour from the request path: `/echo`, `/push?n=N&size=S`, `/sink?n=N`, `/raw`.

use std::time::Duration;

/// The byte every payload is made of (as in peerbench.md).
pub const FILL: u8 = 0x5a;

/// What a client is asked to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Round trips per second on one connection.
    Rr,
    /// Receive rate from the push server.
    Push,
    /// Send rate to the sink server.
    Send,
    /// Many concurrent connections: open, echo one message each, memory per idle connection.
    Conns,
    /// Sequential open + close on one thread.
    Setup,
}

/// The parsed command line of a client.
#[derive(Debug, Clone)]
pub struct Args {
    /// The workload.
    pub mode: Mode,
    /// `ws://host:port`, without a path.
    pub url: String,
    /// Message size in bytes.
    pub size: usize,
    /// Message or connection count.
    pub n: usize,
    /// Measuring time for rr and setup.
    pub duration: Duration,
    /// Warm-up round trips (rr) or connections (setup).
    pub warmup: usize,
}

impl Args {
    /// Parses `std::env::args()`; exits with a message on a bad command line.
    pub fn parse() -> Args {
        let mut a = Args {
            mode: Mode::Rr,
            url: "ws://127.0.0.1:9001".into(),
            size: 256,
            n: 1000,
            duration: Duration::from_secs(2),
            warmup: 100,
        };
        let argv: Vec<String> = std::env::args().skip(1).collect();
        let mut it = argv.iter();
        while let Some(flag) = it.next() {
            let value = it
                .next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")));
            match flag.as_str() {
                "--mode" => {
                    a.mode = match value.as_str() {
                        "rr" => Mode::Rr,
                        "push" => Mode::Push,
                        "send" => Mode::Send,
                        "conns" => Mode::Conns,
                        "setup" => Mode::Setup,
                        m => usage(&format!("unknown mode {m}")),
                    }
                }
                "--url" => a.url = value.trim_end_matches('/').to_string(),
                "--size" => a.size = num(value) as usize,
                "--n" => a.n = num(value) as usize,
                "--duration" => a.duration = Duration::from_secs_f64(num(value)),
                "--warmup" => a.warmup = num(value) as usize,
                f => usage(&format!("unknown flag {f}")),
            }
        }
        a
    }

    /// The URL of `path` on the bench server.
    pub fn url_for(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    /// The server path of this workload.
    pub fn path(&self) -> String {
        match self.mode {
            Mode::Rr | Mode::Conns | Mode::Setup => "/echo".into(),
            Mode::Push => format!("/push?n={}&size={}", self.n, self.size),
            Mode::Send => format!("/sink?n={}", self.n),
        }
    }

    /// The payload of this run.
    pub fn payload(&self) -> Vec<u8> {
        vec![FILL; self.size]
    }
}

fn num(s: &str) -> f64 {
    s.parse()
        .unwrap_or_else(|_| usage(&format!("not a number: {s}")))
}

fn usage(why: &str) -> ! {
    eprintln!("{why}");
    eprintln!(
        "usage: CLIENT --mode rr|push|send|conns|setup --url ws://HOST:PORT \
         [--size B] [--n N] [--duration S] [--warmup N]"
    );
    std::process::exit(2)
}

/// Prints the result line the harness reads: `RESULT {"k": v, ...}`.
pub fn report(fields: &[(&str, f64)]) {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| {
            if v.is_finite() {
                format!("\"{k}\": {v}")
            } else {
                format!("\"{k}\": null")
            }
        })
        .collect();
    println!("RESULT {{{}}}", body.join(", "));
}

/// CPU time (user + system, all threads) this process has used so far, in seconds.
pub fn cpu_time() -> f64 {
    // SAFETY: getrusage fills a local struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Resident set size of this process in bytes (`/proc/self/statm`).
pub fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    pages * page.max(1) as u64
}

/// Fails the run with a message on stderr and exit status 1.
pub fn fail(why: impl std::fmt::Display) -> ! {
    eprintln!("error: {why}");
    std::process::exit(1)
}

/// Raises the soft open-file limit to the hard limit (for the many-connections workload).
pub fn raise_nofile() {
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}
