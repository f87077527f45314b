//! TLS (rustls, ring provider) for the API server and its clients, and the cluster's
//! certificates (rcgen). It lives in the platform seam because key generation, handshakes and
//! token secrets draw on OS randomness.
//!
//! The server asks every client for a certificate but does not require one: a client that
//! presents one signed by the cluster CA is identified by it (CN = user, O = groups, as
//! Kubernetes does); others authenticate with bearer tokens or stay anonymous. The verified
//! identity travels to the request handler as a [`PeerIdentity`] request extension.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use super::net::{
    connect, serve_connection, Http1Conn, HttpClientError, HttpRequest, HttpResponse, SocketAddr,
    TcpListener,
};
use super::task::{spawn, Shutdown};

/// Longest a TLS handshake may take before the connection is dropped.
pub const TLS_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;

/// A PEM certificate and its PEM private key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertAndKey {
    pub cert_pem: String,
    pub key_pem: String,
}

/// Who a verified client certificate names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PeerIdentity {
    pub common_name: String,
    pub organizations: Vec<String>,
}

fn rcgen_err(e: rcgen::Error) -> String {
    format!("certificate generation: {e}")
}

fn names(cn: &str, orgs: &[&str]) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    for o in orgs {
        dn.push(DnType::OrganizationName, *o);
    }
    dn.push(DnType::CommonName, cn);
    dn
}

/// A new self-signed certificate authority.
pub fn generate_ca(common_name: &str) -> Result<CertAndKey, String> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(rcgen_err)?;
    params.distinguished_name = names(common_name, &[]);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::CrlSign,
    ];
    let key = KeyPair::generate().map_err(rcgen_err)?;
    let cert = params.self_signed(&key).map_err(rcgen_err)?;
    Ok(CertAndKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// What a certificate issued by [`issue`] is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    Server,
    Client,
}

/// A certificate for `common_name` (with `organizations`; DNS names and IP addresses in
/// `sans` for servers) signed by `ca`.
pub fn issue(
    ca: &CertAndKey,
    common_name: &str,
    organizations: &[&str],
    sans: &[String],
    usage: Usage,
) -> Result<CertAndKey, String> {
    let ca_key = KeyPair::from_pem(&ca.key_pem).map_err(rcgen_err)?;
    let ca_params = CertificateParams::from_ca_cert_pem(&ca.cert_pem).map_err(rcgen_err)?;
    // Re-signing the CA's own parameters with its key yields an issuer with the same name
    // and key, which is all a signature needs.
    let ca_cert = ca_params.self_signed(&ca_key).map_err(rcgen_err)?;
    let mut params = CertificateParams::new(sans.to_vec()).map_err(rcgen_err)?;
    params.distinguished_name = names(common_name, organizations);
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![match usage {
        Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
        Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
    }];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().map_err(rcgen_err)?;
    let cert = params
        .signed_by(&key, &ca_cert, &ca_key)
        .map_err(rcgen_err)?;
    Ok(CertAndKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// `n` random bytes from the OS, as lowercase hex (tokens and signing secrets).
pub fn random_hex(n: usize) -> String {
    let mut bytes = vec![0u8; n];
    fill_secure(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(not(madsim))]
fn fill_secure(buf: &mut [u8]) {
    use rand::TryRngCore;
    // Without OS entropy no secret can be made; the process cannot do its job.
    rand::rngs::OsRng
        .try_fill_bytes(buf)
        .expect("OS entropy is available");
}

/// Under simulation, secrets come from the seeded generator (a seed replays a run).
#[cfg(madsim)]
fn fill_secure(buf: &mut [u8]) {
    for b in buf {
        *b = madsim::rand::random::<u8>();
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(pem.as_bytes()).collect();
    let certs = certs.map_err(|e| format!("bad certificate PEM: {e}"))?;
    if certs.is_empty() {
        return Err("no certificate in the PEM text".into());
    }
    Ok(certs)
}

fn key(pem: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| format!("bad private key PEM: {e}"))
}

fn roots(ca_pem: &str) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in certs(ca_pem)? {
        roots
            .add(c)
            .map_err(|e| format!("bad CA certificate: {e}"))?;
    }
    Ok(roots)
}

/// A server configuration: serve `identity`, verify (optional) client certificates against
/// `client_ca_pem`, offer HTTP/2 and HTTP/1.1.
pub fn server_config(
    identity: &CertAndKey,
    client_ca_pem: &str,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots(client_ca_pem)?),
        provider(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| format!("client verifier: {e}"))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs(&identity.cert_pem)?, key(&identity.key_pem)?)
        .map_err(|e| format!("serving certificate: {e}"))?;
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// A client configuration trusting `ca_pem`, presenting `identity` if given (HTTP/1.1).
pub fn client_config(
    ca_pem: &str,
    identity: Option<&CertAndKey>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_root_certificates(roots(ca_pem)?);
    let mut cfg = match identity {
        Some(id) => builder
            .with_client_auth_cert(certs(&id.cert_pem)?, key(&id.key_pem)?)
            .map_err(|e| format!("client certificate: {e}"))?,
        None => builder.with_no_client_auth(),
    };
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// The subject of a DER certificate (already verified by rustls).
pub fn identity_of(der: &[u8]) -> Option<PeerIdentity> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let subject = cert.subject();
    let common_name = subject
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())?
        .to_string();
    let organizations = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok().map(str::to_string))
        .collect();
    Some(PeerIdentity {
        common_name,
        organizations,
    })
}

/// Serves HTTPS on `listener` until `shutdown`, like [`super::net::serve_http`]; a verified
/// client certificate's identity is attached to each request as a [`PeerIdentity`].
pub async fn serve_https<H, Fut>(
    listener: TcpListener,
    config: Arc<rustls::ServerConfig>,
    handler: H,
    mut shutdown: Shutdown,
) where
    H: Fn(HttpRequest) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = HttpResponse> + Send + 'static,
{
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.wait() => return,
            a = listener.accept() => a,
        };
        let Ok((stream, _peer)) = accepted else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (acceptor, handler) = (acceptor.clone(), handler.clone());
        spawn(async move {
            let limit = Duration::from_millis(TLS_HANDSHAKE_TIMEOUT_MS);
            let Ok(Ok(tls)) = tokio::time::timeout(limit, acceptor.accept(stream)).await else {
                return;
            };
            let peer = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| identity_of(c));
            let with_peer = move |mut req: HttpRequest| {
                if let Some(p) = &peer {
                    req.extensions_mut().insert(p.clone());
                }
                handler(req)
            };
            serve_connection(tls, with_peer).await;
        });
    }
}

/// The name a client verifies the server certificate against.
fn server_name(host: &str) -> Result<ServerName<'static>, HttpClientError> {
    ServerName::try_from(host.to_string()).map_err(|e| {
        HttpClientError::Connect(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("bad server name {host:?}: {e}"),
        ))
    })
}

async fn handshake(
    addr: SocketAddr,
    host: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<tokio_rustls::client::TlsStream<super::net::TcpStream>, HttpClientError> {
    let stream = connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let limit = Duration::from_millis(TLS_HANDSHAKE_TIMEOUT_MS);
    match tokio::time::timeout(limit, connector.connect(server_name(host)?, stream)).await {
        Ok(tls) => Ok(tls?),
        Err(_) => Err(HttpClientError::Connect(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("TLS handshake with {addr} took longer than {limit:?}"),
        ))),
    }
}

/// Opens an HTTPS (HTTP/1.1 over TLS) connection to `host` at `addr`.
pub async fn connect_https(
    addr: SocketAddr,
    host: &str,
    config: Arc<rustls::ClientConfig>,
) -> Result<Http1Conn, HttpClientError> {
    Http1Conn::open(handshake(addr, host, config).await?).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_certificates_name_their_subject_and_verify() {
        let ca = generate_ca("rkube-ca").unwrap();
        let admin = issue(
            &ca,
            "kubernetes-admin",
            &["system:masters"],
            &[],
            Usage::Client,
        )
        .unwrap();
        let der = certs(&admin.cert_pem).unwrap();
        let id = identity_of(&der[0]).unwrap();
        assert_eq!(id.common_name, "kubernetes-admin");
        assert_eq!(id.organizations, ["system:masters"]);
        let sans = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        let server = issue(&ca, "kube-apiserver", &[], &sans, Usage::Server).unwrap();
        assert!(server_config(&server, &ca.cert_pem).is_ok());
        assert!(client_config(&ca.cert_pem, Some(&admin)).is_ok());
        assert!(server_config(&server, "not pem").is_err());
        assert_eq!(random_hex(8).len(), 16);
    }
}
