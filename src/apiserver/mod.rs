//! The API server: Kubernetes REST over HTTP on top of the store. It owns routing,
//! discovery, object rules (server-set metadata, resourceVersion preconditions) and the
//! mapping of objects onto store keys; it is the store's only client in a cluster.
//!
//! It serves `/version`, health, discovery, OpenAPI and every resource in
//! [`resources::RESOURCES`] (JSON or YAML bodies, and the protobuf ones kubectl's generator
//! commands send, decoded by [`protobuf`]): CRUD as conditional store Txns, all patch
//! types, server-side apply with field ownership in `managedFields` ([`apply`]),
//! subresources, Table output, selectors, pagination, dry runs, graceful deletion with
//! finalizers, defaulting ([`defaults`]), validation ([`validate`]), namespace lifecycle
//! ([`admission`]), pod priority from PriorityClasses ([`priority`]), and watches from one
//! [`cache`] per resource type.

pub mod access;
pub mod admission;
pub mod apply;
pub mod auth;
pub mod cache;
pub mod defaults;
pub mod discovery;
pub mod fieldvalidation;
pub mod handler;
pub mod logs;
pub mod objects;
pub mod openapi;
pub mod paging;
pub mod patch;
pub mod pki;
pub mod priority;
pub mod protobuf;
pub mod query;
pub mod rbac;
pub mod resources;
pub mod route;
pub mod selector;
pub mod storage;
pub mod table;
pub mod validate;
pub mod watch;

use std::sync::Arc;

use crate::platform::net::{self, SocketAddr};
use crate::platform::task::Shutdown;
use crate::platform::Platform;

/// Largest request body accepted (Kubernetes' own limit is 3 MiB).
pub const MAX_REQUEST_BODY_BYTES: usize = 3 * 1024 * 1024;

/// How to run one API server.
#[derive(Debug, Clone)]
pub struct ApiServerConfig {
    /// The store's client URLs (`http://host:port`), balanced and failed over.
    pub etcd_servers: Vec<String>,
    /// HTTPS with authentication and authorization.
    pub secure: Option<SecureServing>,
    /// Plain HTTP without authentication (upstream's old insecure port): loopback only.
    pub insecure: Option<SocketAddr>,
}

/// The secure port's settings.
#[derive(Debug, Clone)]
pub struct SecureServing {
    pub listen: SocketAddr,
    /// Extra names and addresses for the serving certificate (`--tls-san`).
    pub extra_sans: Vec<String>,
    /// Contents of `--token-auth-file`.
    pub token_file: Option<String>,
    pub authorization: access::AuthorizationMode,
}

/// Why the API server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ApiServerError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("bad --etcd-servers: {0}")]
    Store(String),
    #[error("the insecure port must be bound to a loopback address, not {0}")]
    InsecureNotLoopback(SocketAddr),
    #[error("nothing to serve: give a secure port, an insecure port, or both")]
    NoListener,
    #[error("data dir: {0}")]
    DataDir(String),
    #[error("--token-auth-file: {0}")]
    TokenFile(String),
}

async fn bind(addr: SocketAddr) -> Result<net::TcpListener, ApiServerError> {
    net::listen(addr)
        .await
        .map_err(|source| ApiServerError::Listen { addr, source })
}

/// The serving certificate's names: loopback, the host's own, the in-cluster service names.
fn sans(s: &SecureServing) -> Vec<String> {
    let mut out: Vec<String> = [
        "localhost",
        "127.0.0.1",
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if !s.listen.ip().is_unspecified() {
        out.push(s.listen.ip().to_string());
    }
    out.extend(s.extra_sans.iter().cloned());
    out.sort();
    out.dedup();
    out
}

/// What the secure port needs, made from the data dir.
struct Secure {
    authn: access::Authenticator,
    tls: std::sync::Arc<rustls::ServerConfig>,
    kubelet_tls: logs::KubeletTls,
}

/// Makes the secure port's parts, creating the data dir's credentials on first start.
fn secure_setup(s: &SecureServing, platform: &Platform) -> Result<Secure, ApiServerError> {
    let host = if s.listen.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        s.listen.ip().to_string()
    };
    let url = format!("https://{host}:{}", s.listen.port());
    let pki = pki::ensure(platform.disk.as_ref(), &sans(s), &url)
        .map_err(|e| ApiServerError::DataDir(e.to_string()))?;
    let tokens = match &s.token_file {
        Some(text) => auth::parse_token_file(text).map_err(ApiServerError::TokenFile)?,
        None => Default::default(),
    };
    let authn =
        access::Authenticator::new(tokens, auth::TokenSigner::new(&pki.sa_key), s.authorization);
    let tls = crate::platform::tls::server_config(&pki.serving, &pki.ca.cert_pem)
        .map_err(ApiServerError::DataDir)?;
    let kubelet_tls =
        crate::platform::tls::client_config(&pki.ca.cert_pem, Some(&pki.kubelet_client))
            .map_err(ApiServerError::DataDir)?;
    Ok(Secure {
        authn,
        tls,
        kubelet_tls,
    })
}

/// Serves until `shutdown`.
pub async fn run(
    cfg: ApiServerConfig,
    platform: Platform,
    shutdown: Shutdown,
) -> Result<(), ApiServerError> {
    let storage = storage::Storage::new(&cfg.etcd_servers).map_err(ApiServerError::Store)?;
    if let Some(addr) = cfg.insecure.filter(|a| !a.ip().is_loopback()) {
        return Err(ApiServerError::InsecureNotLoopback(addr));
    }
    if cfg.secure.is_none() && cfg.insecure.is_none() {
        return Err(ApiServerError::NoListener);
    }
    let secure = match &cfg.secure {
        Some(s) => Some((s.listen, secure_setup(s, &platform)?)),
        None => None,
    };
    let (authn, tls, kubelet_tls) = match secure {
        Some((addr, sec)) => (
            Some(sec.authn),
            Some((bind(addr).await?, sec.tls)),
            Some(sec.kubelet_tls),
        ),
        None => (None, None, None),
    };
    let insecure = match cfg.insecure {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    let mut api = handler::Api::new(storage, platform, authn);
    api.kubelet_tls = kubelet_tls;
    let api = Arc::new(api);
    let starter = api.clone();
    crate::platform::task::spawn(async move { starter.bootstrap().await });
    tracing::info!(
        secure = ?cfg.secure.as_ref().map(|s| s.listen),
        insecure = ?cfg.insecure,
        store = ?cfg.etcd_servers,
        "API server serving"
    );
    let plain = insecure.map(|l| {
        let api = api.clone();
        net::serve_http(
            l,
            move |req| handler::handle(api.clone(), req, handler::Port::Insecure),
            shutdown.clone(),
        )
    });
    let https = tls.map(|(l, tls)| {
        let api = api.clone();
        crate::platform::tls::serve_https(
            l,
            tls,
            move |req| handler::handle(api.clone(), req, handler::Port::Secure),
            shutdown.clone(),
        )
    });
    match (plain, https) {
        (Some(p), Some(h)) => {
            futures::future::join(p, h).await;
        }
        (Some(p), None) => p.await,
        (None, Some(h)) => h.await,
        (None, None) => {}
    }
    Ok(())
}
