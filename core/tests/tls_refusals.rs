//! TLS refusals (issue #8, part 5): certificates generated at test time with rcgen, served by a
//! tiny rustls echo server in this file.
//!
//! By default a bad certificate (wrong host name, expired, not yet valid, self-signed, signed by
//! an unknown CA, wrong key usage) is refused: `error` naming the reason, then `close` 1006.
//! A custom CA option accepts exactly the certificates that CA signed; the insecure option is
//! explicit (off by default) and logs a warning; TLS 1.2 and 1.3 servers work, and a server that
//! answers with TLS 1.1 is refused (rustls implements no TLS version below 1.2, so a TLS 1.1
//! server is emulated with a hand-written ServerHello).

mod common;
use common::*;
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ProtocolVersion, ServerConfig, SupportedProtocolVersion};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use wsdom_core::{Event, Message, Options, TlsOptions};

/// Every refusal must be reported within this bound (no hang).
const BOUND: Duration = Duration::from_secs(5);

// ---- Certificates ----

/// A certificate authority generated for one test.
struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn new_ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    Ca {
        issuer: Issuer::new(params, key),
        pem: cert.pem(),
    }
}

/// A server certificate chain and key.
struct Leaf {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

fn leaf_params(names: &[&str]) -> CertificateParams {
    let mut params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    params
        .distinguished_name
        .push(DnType::CommonName, names.first().copied().unwrap_or("leaf"));
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params
}

/// A leaf for `names` signed by `ca`, after `tweak` adjusted its parameters.
fn leaf_signed_by(ca: &Ca, names: &[&str], tweak: impl FnOnce(&mut CertificateParams)) -> Leaf {
    let mut params = leaf_params(names);
    tweak(&mut params);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, &ca.issuer).unwrap();
    Leaf {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

/// A self-signed leaf for `names` (no CA), and its PEM.
///
/// Its subject (= issuer) name is unique: with a common one such as `CN=localhost`, path
/// building can pick a same-named root of the system store (Debian's `ssl-cert-snakeoil.pem`
/// is one when `SSL_CERT_DIR=/etc/ssl/certs`), and the error then names that root's
/// signature mismatch instead of `UnknownIssuer`.
fn self_signed(names: &[&str]) -> (Leaf, String) {
    let mut params = leaf_params(names);
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "wsdom self-signed test certificate");
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let pem = cert.pem();
    (
        Leaf {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        },
        pem,
    )
}

// ---- A tiny TLS WebSocket echo server ----

/// A TLS echo server on 127.0.0.1; each connection runs on its own thread. The protocol
/// version of every completed TLS handshake is recorded.
struct TlsEcho {
    port: u16,
    versions: Arc<Mutex<Vec<ProtocolVersion>>>,
}

fn tls_echo(leaf: Leaf, versions: &[&'static SupportedProtocolVersion]) -> TlsEcho {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(leaf.chain, leaf.key)
        .unwrap();
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let versions = seen.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { continue };
            let config = config.clone();
            let seen = seen.clone();
            std::thread::spawn(move || serve_one(tcp, config, seen));
        }
    });
    TlsEcho { port, versions }
}

fn serve_one(tcp: TcpStream, config: Arc<ServerConfig>, seen: Arc<Mutex<Vec<ProtocolVersion>>>) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(20)));
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    // Drive the TLS handshake to its end (or to the client's refusal).
    while tls.conn.is_handshaking() {
        if tls.conn.complete_io(&mut tls.sock).is_err() {
            return;
        }
    }
    if let Some(v) = tls.conn.protocol_version() {
        seen.lock().unwrap().push(v);
    }
    let Ok(mut ws) = tungstenite::accept(tls) else {
        return;
    };
    loop {
        match ws.read() {
            Ok(m @ (tungstenite::Message::Text(_) | tungstenite::Message::Binary(_))) => {
                if ws.send(m).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(_) => return,
        }
    }
}

// ---- Client side ----

fn trusting(pems: &[&str], default_roots: bool) -> Options {
    Options {
        tls: TlsOptions {
            ca_pem: pems.iter().map(|s| s.to_string()).collect(),
            default_roots,
            ..TlsOptions::default()
        },
        ..Options::default()
    }
}

/// Connects to `url` with `opts`; expects `error` then `close` 1006 within BOUND and returns
/// the error's diagnostic.
fn refused(url: &str, opts: Options) -> String {
    let start = Instant::now();
    let (_ws, rx) = open_with(url, &[], opts);
    let events = until_close(&rx);
    assert!(start.elapsed() < BOUND, "took {:?}", start.elapsed());
    assert_eq!(types(&events), ["error", "close"], "{events:#?}");
    let close = close_of(&events);
    assert_eq!(close.code, 1006);
    assert!(!close.was_clean);
    match &events[0].event {
        Event::Error(msg) => {
            assert!(msg.contains("TLS handshake with"), "{msg}");
            msg.clone()
        }
        _ => unreachable!(),
    }
}

/// Connects, echoes a text and a binary message, closes cleanly.
fn accepted(url: &str, opts: Options) {
    let (ws, rx) = open_with(url, &[], opts);
    let first = next(&rx);
    assert!(matches!(first.event, Event::Open), "{first:#?}");
    ws.send_text("über tls").unwrap();
    ws.send_binary(&[7u8; 70_000]).unwrap();
    assert!(matches!(next(&rx).event, Event::Message(Message::Text(t)) if t == "über tls"));
    assert!(
        matches!(next(&rx).event, Event::Message(Message::Binary(b)) if b == vec![7u8; 70_000])
    );
    ws.close(Some(1000), None).unwrap();
    let events = until_close(&rx);
    assert!(close_of(&events).was_clean, "{events:#?}");
}

fn url(port: u16) -> String {
    format!("wss://localhost:{port}/")
}

const ALL_VERSIONS: &[&SupportedProtocolVersion] = rustls::ALL_VERSIONS;

// ---- Tests ----

#[test]
fn the_secure_defaults() {
    let opts = Options::default();
    assert!(!opts.tls.insecure, "verification is on by default");
    assert!(opts.tls.default_roots);
    assert!(!TlsOptions::default().insecure);
}

#[test]
fn a_custom_ca_accepts_the_certificates_it_signed() {
    let ca = new_ca("wsdom test CA");
    let srv = tls_echo(leaf_signed_by(&ca, &["localhost"], |_| {}), ALL_VERSIONS);
    // Only the custom CA trusted, and with the system roots as well.
    accepted(&url(srv.port), trusting(&[&ca.pem], false));
    accepted(&url(srv.port), trusting(&[&ca.pem], true));
    // The same CA as a file.
    let dir = std::env::temp_dir().join(format!("wsdom-tls-refusals-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("ca.pem");
    std::fs::write(&path, &ca.pem).unwrap();
    let opts = Options {
        tls: TlsOptions {
            ca_files: vec![path],
            default_roots: false,
            ..TlsOptions::default()
        },
        ..Options::default()
    };
    accepted(&url(srv.port), opts);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_ip_address_url_needs_an_ip_address_in_the_certificate() {
    let ca = new_ca("wsdom test CA");
    let srv = tls_echo(leaf_signed_by(&ca, &["localhost"], |_| {}), ALL_VERSIONS);
    let msg = refused(
        &format!("wss://127.0.0.1:{}/", srv.port),
        trusting(&[&ca.pem], false),
    );
    assert!(msg.contains("not valid for name"), "{msg}");
    let srv = tls_echo(
        leaf_signed_by(&ca, &["localhost", "127.0.0.1"], |_| {}),
        ALL_VERSIONS,
    );
    accepted(
        &format!("wss://127.0.0.1:{}/", srv.port),
        trusting(&[&ca.pem], false),
    );
}

#[test]
fn wrong_host_name_is_refused() {
    let ca = new_ca("wsdom test CA");
    let srv = tls_echo(
        leaf_signed_by(&ca, &["www.example.invalid"], |_| {}),
        ALL_VERSIONS,
    );
    let msg = refused(&url(srv.port), trusting(&[&ca.pem], false));
    assert!(
        msg.contains("certificate not valid for name \"localhost\"")
            && msg.contains("www.example.invalid"),
        "{msg}"
    );
}

#[test]
fn expired_certificate_is_refused() {
    let ca = new_ca("wsdom test CA");
    let srv = tls_echo(
        leaf_signed_by(&ca, &["localhost"], |p| {
            p.not_before = date_time_ymd(2000, 1, 1);
            p.not_after = date_time_ymd(2001, 1, 1);
        }),
        ALL_VERSIONS,
    );
    let msg = refused(&url(srv.port), trusting(&[&ca.pem], false));
    assert!(msg.contains("certificate expired"), "{msg}");
}

#[test]
fn not_yet_valid_certificate_is_refused() {
    let ca = new_ca("wsdom test CA");
    let srv = tls_echo(
        leaf_signed_by(&ca, &["localhost"], |p| {
            p.not_before = date_time_ymd(2090, 1, 1);
            p.not_after = date_time_ymd(2091, 1, 1);
        }),
        ALL_VERSIONS,
    );
    let msg = refused(&url(srv.port), trusting(&[&ca.pem], false));
    assert!(msg.contains("certificate not valid yet"), "{msg}");
}

#[test]
fn self_signed_certificate_is_refused() {
    let (leaf, _pem) = self_signed(&["localhost"]);
    let srv = tls_echo(leaf, ALL_VERSIONS);
    // With the default trust (system store + Mozilla roots) ...
    let msg = refused(&url(srv.port), Options::default());
    assert!(
        msg.contains("invalid peer certificate: UnknownIssuer"),
        "{msg}"
    );
    // ... and with another custom CA only.
    let other = new_ca("some other CA");
    let msg = refused(&url(srv.port), trusting(&[&other.pem], false));
    assert!(msg.contains("UnknownIssuer"), "{msg}");
    // Self-signed with the common subject CN=localhost: refused too (the reason named may be
    // a same-named system root's signature mismatch, see `self_signed`).
    let params = leaf_params(&["localhost"]);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    let leaf = Leaf {
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    };
    let srv = tls_echo(leaf, ALL_VERSIONS);
    let msg = refused(&url(srv.port), Options::default());
    assert!(msg.contains("invalid peer certificate"), "{msg}");
}

#[test]
fn unknown_ca_is_refused() {
    let unknown = new_ca("unknown CA");
    let trusted = new_ca("trusted CA");
    let srv = tls_echo(
        leaf_signed_by(&unknown, &["localhost"], |_| {}),
        ALL_VERSIONS,
    );
    let msg = refused(&url(srv.port), Options::default());
    assert!(
        msg.contains("invalid peer certificate: UnknownIssuer"),
        "{msg}"
    );
    // A custom CA accepts what it signed, not what another CA signed.
    let msg = refused(&url(srv.port), trusting(&[&trusted.pem], true));
    assert!(msg.contains("UnknownIssuer"), "{msg}");
}

#[test]
fn certificate_for_client_authentication_only_is_refused() {
    let ca = new_ca("wsdom test CA");
    let srv = tls_echo(
        leaf_signed_by(&ca, &["localhost"], |p| {
            p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        }),
        ALL_VERSIONS,
    );
    let msg = refused(&url(srv.port), trusting(&[&ca.pem], false));
    assert!(
        msg.contains("does not allow extended key usage for server authentication"),
        "{msg}"
    );
}

#[test]
fn tls_1_2_only_server_works() {
    let ca = new_ca("wsdom test CA");
    let srv = tls_echo(
        leaf_signed_by(&ca, &["localhost"], |_| {}),
        &[&rustls::version::TLS12],
    );
    accepted(&url(srv.port), trusting(&[&ca.pem], false));
    assert_eq!(*srv.versions.lock().unwrap(), [ProtocolVersion::TLSv1_2]);
}

#[test]
fn tls_1_3_is_preferred_when_the_server_has_it() {
    let ca = new_ca("wsdom test CA");
    let srv = tls_echo(leaf_signed_by(&ca, &["localhost"], |_| {}), ALL_VERSIONS);
    accepted(&url(srv.port), trusting(&[&ca.pem], false));
    assert_eq!(*srv.versions.lock().unwrap(), [ProtocolVersion::TLSv1_3]);
}

/// What the emulated TLS 1.1 server saw.
#[derive(Debug, Default)]
struct Hello {
    /// ClientHello.legacy_version.
    legacy_version: u16,
    /// The supported_versions extension's list.
    supported_versions: Vec<u16>,
    /// The first bytes the client sent after our ServerHello (its alert), if any.
    after: Vec<u8>,
}

/// Reads exactly `n` bytes.
fn read_n(s: &mut TcpStream, n: usize) -> std::io::Result<Vec<u8>> {
    let mut v = vec![0; n];
    s.read_exact(&mut v)?;
    Ok(v)
}

/// Parses a ClientHello handshake message body (after the 4-byte handshake header).
fn parse_client_hello(b: &[u8], hello: &mut Hello) {
    let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    hello.legacy_version = u16_at(0);
    let mut i = 2 + 32;
    i += 1 + b[i] as usize; // session id
    i += 2 + u16_at(i) as usize; // cipher suites
    i += 1 + b[i] as usize; // compression methods
    let end = i + 2 + u16_at(i) as usize;
    i += 2;
    while i + 4 <= end {
        let (ty, len) = (u16_at(i), u16_at(i + 2) as usize);
        let data = &b[i + 4..i + 4 + len];
        if ty == 0x002b {
            hello.supported_versions = data[1..]
                .chunks(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
        }
        i += 4 + len;
    }
}

/// A "server" that answers any ClientHello with a TLS 1.1 ServerHello.
fn tls11_server() -> (u16, std::thread::JoinHandle<Hello>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let t = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut hello = Hello::default();
        let head = read_n(&mut s, 5).unwrap();
        assert_eq!(head[0], 0x16, "a handshake record");
        let len = u16::from_be_bytes([head[3], head[4]]) as usize;
        let body = read_n(&mut s, len).unwrap();
        assert_eq!(body[0], 1, "a ClientHello");
        parse_client_hello(&body[4..], &mut hello);
        // ServerHello: version 3.2 (TLS 1.1), random, empty session id,
        // TLS_RSA_WITH_AES_128_CBC_SHA, no compression, no extensions.
        let mut sh = vec![0x03, 0x02];
        sh.extend([0x42; 32]);
        sh.extend([0x00, 0x00, 0x2f, 0x00]);
        let mut hs = vec![0x02, 0, (sh.len() >> 8) as u8, sh.len() as u8];
        hs.extend(sh);
        let mut rec = vec![0x16, 0x03, 0x02, (hs.len() >> 8) as u8, hs.len() as u8];
        rec.extend(hs);
        s.write_all(&rec).unwrap();
        let mut buf = [0u8; 64];
        if let Ok(n) = s.read(&mut buf) {
            hello.after = buf[..n].to_vec();
        }
        hello
    });
    (port, t)
}

#[test]
fn a_tls_1_1_server_is_refused_and_never_offered() {
    let (port, server) = tls11_server();
    let msg = refused(&url(port), Options::default());
    let hello = server.join().unwrap();
    // Only TLS 1.3 (0x0304) and TLS 1.2 (0x0303) are offered; 1.2 is the legacy version.
    assert_eq!(hello.legacy_version, 0x0303, "{hello:?}");
    assert_eq!(hello.supported_versions, [0x0304, 0x0303], "{hello:?}");
    // The client answered the TLS 1.1 ServerHello with a fatal protocol_version alert (70).
    assert_eq!(
        hello.after.first(),
        Some(&0x15),
        "an alert record: {hello:?}"
    );
    assert_eq!(hello.after.get(5..7), Some(&[2u8, 70][..]), "{hello:?}");
    assert!(msg.contains("ServerDoesNotSupportTls12Or13"), "{msg}");
}

#[test]
fn insecure_accepts_bad_certificates_and_logs_a_warning() {
    // The warning goes to stderr: run the helper test below in a child process to see it.
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(exe)
        .args([
            "insecure_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("WSDOM_TLS_INSECURE_CHILD", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "child failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("1 passed"), "the helper ran:\n{stdout}");
    let warnings = stderr
        .matches("wsdom: WARNING: TLS certificate verification is disabled (insecure option)")
        .count();
    assert_eq!(
        warnings, 3,
        "one warning per insecure connection:\n{stderr}"
    );
}

#[test]
#[ignore = "helper run in a child process by insecure_accepts_bad_certificates_and_logs_a_warning"]
fn insecure_child() {
    if std::env::var_os("WSDOM_TLS_INSECURE_CHILD").is_none() {
        return;
    }
    let insecure = || Options {
        tls: TlsOptions {
            insecure: true,
            ..TlsOptions::default()
        },
        ..Options::default()
    };
    let ca = new_ca("unknown CA");
    let expired = tls_echo(
        leaf_signed_by(&ca, &["localhost"], |p| {
            p.not_before = date_time_ymd(2000, 1, 1);
            p.not_after = date_time_ymd(2001, 1, 1);
        }),
        ALL_VERSIONS,
    );
    let wrong_name = tls_echo(
        leaf_signed_by(&ca, &["www.example.invalid"], |_| {}),
        ALL_VERSIONS,
    );
    let (leaf, _) = self_signed(&["localhost"]);
    let self_signed = tls_echo(leaf, ALL_VERSIONS);
    // A secure connection first: it must not log the warning.
    refused(&url(expired.port), Options::default());
    for port in [expired.port, wrong_name.port, self_signed.port] {
        accepted(&url(port), insecure());
    }
}
