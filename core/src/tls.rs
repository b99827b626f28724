//! TLS client configuration for `wss://` (rustls with the ring provider chosen explicitly).

use crate::options::TlsOptions;
use once_cell::sync::Lazy;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{self, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: Lazy<Arc<CryptoProvider>> =
        Lazy::new(|| Arc::new(crypto::ring::default_provider()));
    PROVIDER.clone()
}

/// The system store plus the webpki (Mozilla) roots; loaded once.
fn default_roots() -> &'static RootCertStore {
    static ROOTS: Lazy<RootCertStore> = Lazy::new(|| {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
        roots
    });
    &ROOTS
}

fn pem_certs(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("cannot read {what}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what} contains no PEM certificate"));
    }
    Ok(certs)
}

/// Builds the rustls configuration for `opts` (TLS 1.2 minimum, ALPN http/1.1).
///
/// Errors name what is wrong (unreadable CA file, bad PEM, key not matching the certificate);
/// they surface as the socket's `error` event.
pub fn client_config(opts: &TlsOptions) -> Result<Arc<ClientConfig>, String> {
    let is_default = opts.ca_pem.is_empty()
        && opts.ca_files.is_empty()
        && opts.client_cert_pem.is_none()
        && !opts.insecure
        && opts.default_roots;
    static DEFAULT: Lazy<Result<Arc<ClientConfig>, String>> = Lazy::new(|| {
        build(&TlsOptions {
            default_roots: true,
            ..TlsOptions::default()
        })
    });
    if is_default {
        return DEFAULT.clone();
    }
    build(opts)
}

fn build(opts: &TlsOptions) -> Result<Arc<ClientConfig>, String> {
    let mut roots = if opts.default_roots {
        default_roots().clone()
    } else {
        RootCertStore::empty()
    };
    for pem in &opts.ca_pem {
        for cert in pem_certs(pem.as_bytes(), "the CA PEM")? {
            roots
                .add(cert)
                .map_err(|e| format!("invalid CA certificate: {e}"))?;
        }
    }
    for path in &opts.ca_files {
        let data = std::fs::read(path)
            .map_err(|e| format!("cannot read CA file {}: {e}", path.display()))?;
        for cert in pem_certs(&data, &format!("CA file {}", path.display()))? {
            roots
                .add(cert)
                .map_err(|e| format!("invalid CA certificate: {e}"))?;
        }
    }
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots);
    let mut config = match &opts.client_cert_pem {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => {
            let chain = pem_certs(chain.as_bytes(), "the client certificate")?;
            let key = PrivateKeyDer::from_pem_slice(key.as_bytes())
                .map_err(|e| format!("cannot read the client private key: {e}"))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("invalid client certificate or key: {e}"))?
        }
    };
    if opts.insecure {
        eprintln!("wsdom: WARNING: TLS certificate verification is disabled (insecure option)");
        config
            .dangerous()
            .set_certificate_verifier(Arc::new(NoVerification(provider())));
    }
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The server name to verify and send as SNI for `host`.
pub fn server_name(host: &url::Host<&str>) -> Result<ServerName<'static>, String> {
    match host {
        url::Host::Domain(d) => ServerName::try_from(d.to_string())
            .map_err(|e| format!("invalid TLS server name {d:?}: {e}")),
        url::Host::Ipv4(ip) => Ok(ServerName::IpAddress(std::net::IpAddr::V4(*ip).into())),
        url::Host::Ipv6(ip) => Ok(ServerName::IpAddress(std::net::IpAddr::V6(*ip).into())),
    }
}

/// Accepts any certificate (the explicit `insecure` option).
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
