//! Shared helpers of the benchmark binaries: the command line every client takes, the
//! payload, the result line the harness parses, and the resident-memory probe.
//!
//! Every client (Rust, C and Python alike) is run by `bench/harness.py` as
//!
//! ```text
//! CLIENT --mode rr|push|send|conns|setup|zpush|zsend --url ws://127.0.0.1:PORT
//!        [--size BYTES] [--n COUNT] [--duration SECONDS] [--warmup COUNT] [--pool FILE]
//! ```
//!
//! and prints one line `RESULT {json}` on stdout. The server (`bench-server`) chooses its
//! behaviour from the request path: `/echo`, `/push?n=N&size=S`, `/sink?n=N`, `/raw`, and
//! with permessage-deflate `/zpush?n=N&pool=NAME`, `/zsink?n=N&pool=NAME`.
//!
//! The compression workloads (`zpush`, `zsend`) cycle through a message pool that
//! `harness.py` writes once into `bench/build/pools/NAME.pool`, so every client sends (and
//! the server pushes) exactly the same bytes. A pool file is one header line
//! `wsdom-bench-pool 1 text|binary COUNT\n`, then COUNT records, each a u32 little-endian
//! length and that many bytes (UTF-8 JSON for `text`).

use std::path::Path;
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
    /// With permessage-deflate: receive rate of the pool's messages from `/zpush`.
    ZPush,
    /// With permessage-deflate: send rate of the pool's messages to `/zsink`, which reports
    /// the bytes it saw on the wire.
    ZSend,
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
    /// The message pool of the compression workloads (`--pool FILE`).
    pub pool: Option<String>,
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
            pool: None,
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
                        "zpush" => Mode::ZPush,
                        "zsend" => Mode::ZSend,
                        m => usage(&format!("unknown mode {m}")),
                    }
                }
                "--url" => a.url = value.trim_end_matches('/').to_string(),
                "--size" => a.size = num(value) as usize,
                "--n" => a.n = num(value) as usize,
                "--duration" => a.duration = Duration::from_secs_f64(num(value)),
                "--warmup" => a.warmup = num(value) as usize,
                "--pool" => a.pool = Some(value.clone()),
                f => usage(&format!("unknown flag {f}")),
            }
        }
        if matches!(a.mode, Mode::ZPush | Mode::ZSend) && a.pool.is_none() {
            usage("zpush and zsend need --pool FILE");
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
            Mode::ZPush => format!("/zpush?n={}&pool={}", self.n, pool_name(self.pool_file())),
            Mode::ZSend => format!("/zsink?n={}&pool={}", self.n, pool_name(self.pool_file())),
        }
    }

    /// The `--pool` file (the compression workloads).
    pub fn pool_file(&self) -> &str {
        self.pool
            .as_deref()
            .unwrap_or_else(|| usage("--pool FILE is missing"))
    }

    /// Loads the `--pool` file; exits with a message if it cannot.
    pub fn load_pool(&self) -> Pool {
        Pool::load(Path::new(self.pool_file())).unwrap_or_else(|e| fail(e))
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
        "usage: CLIENT --mode rr|push|send|conns|setup|zpush|zsend --url ws://HOST:PORT \
         [--size B] [--n N] [--duration S] [--warmup N] [--pool FILE]"
    );
    std::process::exit(2)
}

/// The name the server knows a pool file by: its file name without `.pool`.
pub fn pool_name(file: &str) -> String {
    let name = Path::new(file)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    name.strip_suffix(".pool").unwrap_or(name).to_string()
}

/// A message pool of the compression workloads (see the crate docs for the file format).
#[derive(Debug, Clone)]
pub struct Pool {
    /// True: text messages (UTF-8 JSON); false: binary messages.
    pub text: bool,
    /// The messages, in the order every client cycles through them.
    pub messages: Vec<Vec<u8>>,
}

impl Pool {
    /// Reads a pool file.
    pub fn load(path: &Path) -> Result<Pool, String> {
        let data =
            std::fs::read(path).map_err(|e| format!("cannot read pool {}: {e}", path.display()))?;
        Pool::parse(&data).map_err(|e| format!("pool {}: {e}", path.display()))
    }

    /// Parses the contents of a pool file.
    pub fn parse(data: &[u8]) -> Result<Pool, String> {
        let nl = data
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("no header line")?;
        let header = std::str::from_utf8(&data[..nl]).map_err(|_| "bad header")?;
        let words: Vec<&str> = header.split(' ').collect();
        let (text, count) = match words.as_slice() {
            ["wsdom-bench-pool", "1", kind @ ("text" | "binary"), count] => (
                *kind == "text",
                count.parse::<usize>().map_err(|_| "bad count")?,
            ),
            _ => return Err(format!("bad header {header:?}")),
        };
        let mut messages = Vec::with_capacity(count);
        let mut at = nl + 1;
        for i in 0..count {
            let len = data
                .get(at..at + 4)
                .ok_or_else(|| format!("record {i} is cut short"))?;
            let len = u32::from_le_bytes(len.try_into().unwrap()) as usize;
            at += 4;
            let msg = data
                .get(at..at + len)
                .ok_or_else(|| format!("record {i} is cut short"))?;
            if text && std::str::from_utf8(msg).is_err() {
                return Err(format!("record {i} is not UTF-8"));
            }
            messages.push(msg.to_vec());
            at += len;
        }
        if at != data.len() || messages.is_empty() {
            return Err("trailing bytes or no records".into());
        }
        Ok(Pool { text, messages })
    }

    /// The i-th message of the cycle.
    pub fn get(&self, i: usize) -> &[u8] {
        &self.messages[i % self.messages.len()]
    }

    /// Payload bytes of the first `n` messages of the cycle.
    pub fn bytes_of(&self, n: usize) -> u64 {
        let pass: u64 = self.messages.iter().map(|m| m.len() as u64).sum();
        let len = self.messages.len();
        let rest: u64 = self.messages[..n % len]
            .iter()
            .map(|m| m.len() as u64)
            .sum();
        pass * (n / len) as u64 + rest
    }
}

/// `(wire_bytes, rsv1_messages)` of the sink's answer `done W R`; exits on anything else.
pub fn parse_done(text: &str) -> (u64, u64) {
    let parts: Vec<&str> = text.split(' ').collect();
    match parts.as_slice() {
        ["done", w, r] => match (w.parse(), r.parse()) {
            (Ok(w), Ok(r)) => (w, r),
            _ => fail(format!("bad answer from the sink: {text:?}")),
        },
        _ => fail(format!(
            "expected 'done W R' from the sink, got {:?}",
            text.chars().take(300).collect::<String>()
        )),
    }
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
