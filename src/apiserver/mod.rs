//! The API server: Kubernetes REST over HTTP on top of the store. It owns routing,
//! discovery, object rules (server-set metadata, resourceVersion preconditions) and the
//! mapping of objects onto store keys; it is the store's only client in a cluster.
//!
//! It serves `/version`, health, discovery, OpenAPI and every resource in
//! [`resources::RESOURCES`] (JSON or YAML bodies): CRUD as conditional store Txns, all
//! patch types but apply, subresources, Table output, selectors, pagination, dry runs,
//! graceful deletion with finalizers, defaulting ([`defaults`]), validation ([`validate`]),
//! namespace lifecycle ([`admission`]), and watches from one [`cache`] per resource type.

pub mod admission;
pub mod cache;
pub mod defaults;
pub mod discovery;
pub mod handler;
pub mod objects;
pub mod openapi;
pub mod paging;
pub mod patch;
pub mod query;
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
    /// Where to serve HTTP.
    pub listen: SocketAddr,
    /// The store's client URL (`http://host:port`).
    pub etcd_server: String,
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
}

/// Serves until `shutdown`.
pub async fn run(
    cfg: ApiServerConfig,
    platform: Platform,
    shutdown: Shutdown,
) -> Result<(), ApiServerError> {
    let storage = storage::Storage::new(&cfg.etcd_server).map_err(ApiServerError::Store)?;
    let listener = net::listen(cfg.listen)
        .await
        .map_err(|source| ApiServerError::Listen {
            addr: cfg.listen,
            source,
        })?;
    tracing::info!(listen = %cfg.listen, store = %cfg.etcd_server, "API server serving");
    let api = Arc::new(handler::Api::new(storage, platform));
    let starter = api.clone();
    crate::platform::task::spawn(async move { starter.ensure_builtin_namespaces().await });
    net::serve_http(
        listener,
        move |req| handler::handle(api.clone(), req),
        shutdown,
    )
    .await;
    Ok(())
}
