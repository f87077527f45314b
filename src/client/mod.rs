//! The client library every component uses to reach the API server: typed CRUD ([`Api`]),
//! watch streams ([`watch`]), informers with a shared read-only cache ([`informer`]), the
//! controllers' rate-limited work queue ([`queue`]) and leader election on Leases
//! ([`leader`]).
//!
//! A [`Client`] knows several API server endpoints and fails over between them: a request
//! whose connection fails or times out is retried on the next endpoint (a create whose reply
//! was lost may therefore answer AlreadyExists — callers treat that like any conflict). All
//! I/O goes through the platform seam, so the same client runs in the real build and in the
//! simulation. Connections are kept alive and reused per endpoint (a TLS handshake per request
//! would cost more than most requests).

pub mod events;
pub mod informer;
pub mod leader;
pub mod queue;
pub mod watch;

use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use crate::api::kind::{to_json, Kind, ObjectList};
use crate::api::Status;
use crate::platform::net::{self, Http1Conn, Http1Pool, SendFailure, SocketAddr};
use crate::platform::time::Clock;
use crate::platform::tls::{self, CertAndKey};

pub use watch::{Event, WatchStream};

/// Deadline of one request (watches are bounded by their `timeoutSeconds` instead).
pub const REQUEST_TIMEOUT_MS: u64 = 30_000;
/// Longest watch the client asks for (the server caps it too).
pub const MAX_WATCH_TIMEOUT_SECS: u64 = 3600;

/// Where the API servers are and how to authenticate.
#[derive(Debug, Clone, Default)]
pub struct ClientConfig {
    /// `https://host:port` or `http://host:port` URLs (IP addresses or `localhost`), tried
    /// in order on failure.
    pub servers: Vec<String>,
    /// Sent as `Authorization: Bearer <token>`.
    pub bearer_token: Option<String>,
    /// The CA that signed the servers' certificates (PEM), for `https://` servers.
    pub ca_pem: Option<String>,
    /// A client certificate to present (CN = user, O = groups).
    pub identity: Option<CertAndKey>,
    pub request_timeout_ms: u64,
}

impl ClientConfig {
    /// One server, no credentials, default timeout.
    pub fn insecure(server: &str) -> ClientConfig {
        ClientConfig {
            servers: vec![server.to_string()],
            request_timeout_ms: REQUEST_TIMEOUT_MS,
            ..Default::default()
        }
    }

    /// The current context of a kubeconfig (server, CA, client certificate or token).
    pub fn from_kubeconfig(text: &str) -> Result<ClientConfig, ClientError> {
        let bad = |m: String| ClientError::Config(format!("kubeconfig: {m}"));
        let doc: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| bad(e.to_string()))?;
        let current = doc["current-context"]
            .as_str()
            .ok_or_else(|| bad("no current-context".into()))?;
        let named = |list: &str, name: &str| -> Result<serde_yaml::Value, ClientError> {
            let items = doc[list].as_sequence().cloned().unwrap_or_default();
            items
                .into_iter()
                .find(|i| i["name"].as_str() == Some(name))
                .ok_or_else(|| bad(format!("no {list} entry named {name:?}")))
        };
        let ctx = named("contexts", current)?;
        let cluster_name = ctx["context"]["cluster"].as_str().unwrap_or("");
        let user_name = ctx["context"]["user"].as_str().unwrap_or("");
        let cluster = named("clusters", cluster_name)?;
        let user = named("users", user_name)?;
        let data = |v: &serde_yaml::Value| -> Result<Option<String>, ClientError> {
            let Some(b64) = v.as_str() else {
                return Ok(None);
            };
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| bad(format!("bad base64: {e}")))?;
            String::from_utf8(raw)
                .map(Some)
                .map_err(|_| bad("data is not text".into()))
        };
        let server = cluster["cluster"]["server"]
            .as_str()
            .ok_or_else(|| bad("no server".into()))?;
        let u = &user["user"];
        let identity = match (
            data(&u["client-certificate-data"])?,
            data(&u["client-key-data"])?,
        ) {
            (Some(cert_pem), Some(key_pem)) => Some(CertAndKey { cert_pem, key_pem }),
            _ => None,
        };
        Ok(ClientConfig {
            servers: vec![server.to_string()],
            bearer_token: u["token"].as_str().map(str::to_string),
            ca_pem: data(&cluster["cluster"]["certificate-authority-data"])?,
            identity,
            request_timeout_ms: REQUEST_TIMEOUT_MS,
        })
    }
}

/// Why a request failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The API server answered with an error `Status`.
    #[error("{} ({})", .0.message, .0.code)]
    Api(Box<Status>),
    /// No endpoint answered (the last endpoint's error).
    #[error("no API server reachable: {0}")]
    Unreachable(String),
    #[error("cannot decode the API server's answer: {0}")]
    Decode(String),
    #[error("bad client configuration: {0}")]
    Config(String),
}

impl ClientError {
    /// The HTTP status code of an API error.
    pub fn code(&self) -> Option<u16> {
        match self {
            ClientError::Api(s) => Some(s.code),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.code() == Some(404)
    }

    pub fn is_conflict(&self) -> bool {
        self.code() == Some(409)
    }

    /// 410: the resourceVersion asked for is too old (re-list).
    pub fn is_gone(&self) -> bool {
        self.code() == Some(410)
    }
}

#[derive(Debug)]
struct Endpoint {
    addr: SocketAddr,
    authority: String,
    /// The name the server certificate must carry (`https://` only).
    host: String,
    tls: bool,
}

fn parse_server(url: &str) -> Result<Endpoint, ClientError> {
    let bad = |why: &str| ClientError::Config(format!("server {url:?}: {why}"));
    let (tls, rest) = match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (false, rest),
        _ => return Err(bad("the URL must start with https:// or http://")),
    };
    let authority = rest.trim_end_matches('/');
    let (host, port) = authority
        .rsplit_once(':')
        .ok_or_else(|| bad("needs a port"))?;
    let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: net::IpAddr = match host {
        "localhost" => net::IpAddr::from([127, 0, 0, 1]),
        h => h
            .parse()
            .map_err(|_| bad("the host must be an IP address"))?,
    };
    Ok(Endpoint {
        addr: SocketAddr::new(ip, port),
        authority: authority.to_string(),
        host: host.to_string(),
        tls,
    })
}

/// A client of one or more API servers; cheap to clone (clones share one connection pool).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    endpoints: Vec<Endpoint>,
    /// The endpoint that answered last; requests start there.
    current: AtomicUsize,
    token: Option<String>,
    /// TLS settings for `https://` endpoints.
    tls: Option<Arc<rustls::ClientConfig>>,
    timeout: Duration,
    clock: Clock,
    /// Idle connections per endpoint (same index as `endpoints`), reused across requests.
    pools: Vec<Http1Pool>,
}

/// A request body and its media type.
pub struct Body {
    /// Shared, so a retry on another endpoint does not copy the body.
    pub bytes: Bytes,
    pub content_type: &'static str,
}

impl Body {
    pub fn json(v: &Value) -> Body {
        Body::typed(v, "application/json")
    }

    fn typed(v: &Value, content_type: &'static str) -> Body {
        Body {
            bytes: Bytes::from(serde_json::to_vec(v).expect("JSON serializes")),
            content_type,
        }
    }
}

impl Client {
    pub fn new(cfg: &ClientConfig, clock: Clock) -> Result<Client, ClientError> {
        if cfg.servers.is_empty() {
            return Err(ClientError::Config("no API server given".into()));
        }
        let endpoints = cfg
            .servers
            .iter()
            .map(|s| parse_server(s))
            .collect::<Result<Vec<_>, _>>()?;
        let tls = match (&cfg.ca_pem, endpoints.iter().any(|e| e.tls)) {
            (Some(ca), _) => {
                Some(tls::client_config(ca, cfg.identity.as_ref()).map_err(ClientError::Config)?)
            }
            (None, true) => {
                return Err(ClientError::Config(
                    "https:// servers need the cluster CA".into(),
                ))
            }
            (None, false) => None,
        };
        let pools = endpoints.iter().map(|_| Http1Pool::default()).collect();
        Ok(Client {
            inner: Arc::new(Inner {
                endpoints,
                current: AtomicUsize::new(0),
                token: cfg.bearer_token.clone(),
                tls,
                timeout: Duration::from_millis(cfg.request_timeout_ms),
                clock,
                pools,
            }),
        })
    }

    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    fn build(
        &self,
        ep: &Endpoint,
        method: &hyper::Method,
        path: &str,
        body: Option<&Body>,
    ) -> hyper::Request<Full<Bytes>> {
        let mut b = hyper::Request::builder()
            .method(method.clone())
            .uri(path)
            .header("host", &ep.authority)
            .header("accept", "application/json")
            .header("user-agent", "rkube-client");
        if let Some(t) = &self.inner.token {
            b = b.header("authorization", format!("Bearer {t}"));
        }
        if let Some(body) = body {
            b = b.header("content-type", body.content_type);
        }
        let bytes = body.map(|b| b.bytes.clone()).unwrap_or_default();
        b.body(Full::new(bytes)).expect("a valid request")
    }

    /// One request to endpoint `at` over a pooled connection if one is idle; the response as
    /// soon as its head arrives, and the connection to return to the pool once the body has
    /// been read whole. A request a stale pooled connection did not carry goes out on a fresh
    /// one; so does a GET or HEAD it failed part-way (they are safe to repeat; other methods
    /// are not, so their failure is the caller's).
    async fn send(
        &self,
        at: usize,
        method: &hyper::Method,
        path: &str,
        body: Option<&Body>,
    ) -> Result<(hyper::Response<hyper::body::Incoming>, Http1Conn), String> {
        let ep = &self.inner.endpoints[at];
        let fut = async {
            let mut req = self.build(ep, method, path, body);
            if let Some(mut conn) = self.inner.pools[at].checkout().await {
                let idempotent = matches!(*method, hyper::Method::GET | hyper::Method::HEAD);
                match conn.send(req).await {
                    Ok(resp) => return Ok((resp, conn)),
                    Err(SendFailure::NotSent(back, _)) => req = *back,
                    Err(SendFailure::Failed(_)) if idempotent => {
                        req = self.build(ep, method, path, body);
                    }
                    Err(SendFailure::Failed(e)) => return Err(e),
                }
            }
            let mut conn = if ep.tls {
                let cfg = self.inner.tls.clone();
                let cfg = cfg.expect("Client::new refuses https servers without TLS settings");
                tls::connect_https(ep.addr, &ep.host, cfg).await?
            } else {
                net::connect_http1(ep.addr).await?
            };
            let resp = conn.send(req).await.map_err(SendFailure::into_error)?;
            Ok((resp, conn))
        };
        match self.inner.clock.timeout(self.inner.timeout, fut).await {
            Ok(Ok(sent)) => Ok(sent),
            Ok(Err(e)) => Err(format!("{}: {e}", ep.authority)),
            Err(_) => Err(format!(
                "{}: no answer within {:?}",
                ep.authority, self.inner.timeout
            )),
        }
    }

    /// Sends one request, failing over across endpoints; the response head of the first
    /// endpoint that answers, its connection, and the endpoint's index.
    async fn send_any(
        &self,
        method: &hyper::Method,
        path: &str,
        body: Option<&Body>,
    ) -> Result<(hyper::Response<hyper::body::Incoming>, Http1Conn, usize), ClientError> {
        let n = self.inner.endpoints.len();
        let start = self.inner.current.load(Ordering::Relaxed);
        let mut last = String::new();
        for i in 0..n {
            let at = (start + i) % n;
            match self.send(at, method, path, body).await {
                Ok((resp, conn)) => {
                    self.inner.current.store(at, Ordering::Relaxed);
                    return Ok((resp, conn, at));
                }
                Err(e) => last = e,
            }
        }
        Err(ClientError::Unreachable(last))
    }

    /// Sends one request, failing over across endpoints; returns the body of a 2xx answer
    /// or the server's error `Status`.
    pub async fn request(
        &self,
        method: hyper::Method,
        path: &str,
        body: Option<Body>,
    ) -> Result<Bytes, ClientError> {
        let (resp, conn, at) = self.send_any(&method, path, body.as_ref()).await?;
        let (code, bytes) = self.read_body(resp).await?;
        // Read whole: the connection can carry the next request.
        self.inner.pools[at].checkin(conn);
        answer(code, bytes)
    }

    /// The whole answer, bounded in size and time, with its status code.
    async fn read_body(
        &self,
        resp: hyper::Response<hyper::body::Incoming>,
    ) -> Result<(u16, Bytes), ClientError> {
        let code = resp.status().as_u16();
        let limited =
            http_body_util::Limited::new(resp.into_body(), net::MAX_CLIENT_RESPONSE_BYTES);
        let read = self
            .inner
            .clock
            .timeout(self.inner.timeout, limited.collect())
            .await;
        match read {
            Ok(Ok(b)) => Ok((code, b.to_bytes())),
            Ok(Err(e)) => Err(ClientError::Unreachable(format!("reading the answer: {e}"))),
            Err(_) => Err(ClientError::Unreachable("the answer stalled".into())),
        }
    }

    /// Opens a streaming GET (a watch), failing over like [`Client::request`].
    pub async fn stream(&self, path: &str) -> Result<hyper::body::Incoming, ClientError> {
        // The connection is not pooled: it carries the stream until the body is dropped.
        let (resp, _conn, _) = self.send_any(&hyper::Method::GET, path, None).await?;
        if resp.status().is_success() {
            return Ok(resp.into_body());
        }
        let (code, bytes) = self.read_body(resp).await?;
        Err(answer(code, bytes)
            .err()
            .unwrap_or_else(|| ClientError::Decode(format!("unexpected HTTP {code} for a watch"))))
    }
}

/// A 2xx body, or the error Status the server sent (synthesized if it sent none).
fn answer(code: u16, body: Bytes) -> Result<Bytes, ClientError> {
    if (200..300).contains(&code) {
        return Ok(body);
    }
    let status = serde_json::from_slice::<Status>(&body)
        .ok()
        .filter(|s| s.code == code)
        .unwrap_or_else(|| {
            let text = String::from_utf8_lossy(&body);
            Status::failure(code, "Unknown", format!("HTTP {code}: {}", text.trim()))
        });
    Err(ClientError::Api(Box::new(status)))
}

/// Percent-encodes a query value (everything but RFC 3986 unreserved characters).
pub fn encode_query_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What a list or watch selects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListParams {
    pub label_selector: String,
    pub field_selector: String,
    /// Page size (0: everything at once).
    pub limit: i64,
    pub continue_token: String,
    /// `""`: the latest (consistent); `"0"`: any (from the API server's cache).
    pub resource_version: String,
    pub timeout_secs: Option<u64>,
    pub bookmarks: bool,
}

impl ListParams {
    pub fn labels(selector: &str) -> ListParams {
        ListParams {
            label_selector: selector.to_string(),
            ..Default::default()
        }
    }

    pub fn fields(selector: &str) -> ListParams {
        ListParams {
            field_selector: selector.to_string(),
            ..Default::default()
        }
    }

    fn query(&self, watch: bool) -> String {
        let mut q: Vec<String> = Vec::new();
        let mut push = |k: &str, v: &str| {
            if !v.is_empty() {
                q.push(format!("{k}={}", encode_query_value(v)));
            }
        };
        push("labelSelector", &self.label_selector);
        push("fieldSelector", &self.field_selector);
        push("resourceVersion", &self.resource_version);
        if watch {
            push("watch", "true");
            let t = self.timeout_secs.unwrap_or(300).min(MAX_WATCH_TIMEOUT_SECS);
            push("timeoutSeconds", &t.to_string());
            if self.bookmarks {
                push("allowWatchBookmarks", "true");
            }
        } else {
            if self.limit > 0 {
                push("limit", &self.limit.to_string());
            }
            push("continue", &self.continue_token);
        }
        if q.is_empty() {
            String::new()
        } else {
            format!("?{}", q.join("&"))
        }
    }
}

/// A patch and its type.
#[derive(Debug, Clone, PartialEq)]
pub enum Patch {
    Merge(Value),
    Json(Value),
    Strategic(Value),
}

impl Patch {
    fn body(&self) -> Body {
        let (v, content_type) = match self {
            Patch::Merge(v) => (v, "application/merge-patch+json"),
            Patch::Json(v) => (v, "application/json-patch+json"),
            Patch::Strategic(v) => (v, "application/strategic-merge-patch+json"),
        };
        Body::typed(v, content_type)
    }
}

/// Options of a delete.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteParams {
    pub grace_period_seconds: Option<i64>,
    /// Delete only if the object is still at this resourceVersion.
    pub resource_version: Option<String>,
    /// Delete only if the object still has this uid.
    pub uid: Option<String>,
    /// "Background", "Foreground" or "Orphan".
    pub propagation_policy: Option<String>,
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ClientError> {
    serde_json::from_slice(bytes).map_err(|e| ClientError::Decode(e.to_string()))
}

/// Typed access to one kind, in one namespace or across all.
pub struct Api<K> {
    client: Client,
    namespace: Option<String>,
    _kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Api<K> {
    fn clone(&self) -> Self {
        Api {
            client: self.client.clone(),
            namespace: self.namespace.clone(),
            _kind: PhantomData,
        }
    }
}

impl<K: Kind> Api<K> {
    /// Objects of a namespaced kind in `namespace`.
    pub fn namespaced(client: &Client, namespace: &str) -> Api<K> {
        assert!(K::NAMESPACED, "{} is not namespaced", K::KIND);
        Api {
            client: client.clone(),
            namespace: Some(namespace.to_string()),
            _kind: PhantomData,
        }
    }

    /// Objects of a cluster-scoped kind, or of a namespaced kind across every namespace
    /// (lists and watches; single objects are addressed by their own namespace).
    pub fn all(client: &Client) -> Api<K> {
        Api {
            client: client.clone(),
            namespace: None,
            _kind: PhantomData,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    fn group_prefix() -> String {
        if K::GROUP.is_empty() {
            format!("/api/{}", K::VERSION)
        } else {
            format!("/apis/{}/{}", K::GROUP, K::VERSION)
        }
    }

    fn collection(&self, namespace: Option<&str>) -> String {
        match namespace.or(self.namespace.as_deref()) {
            Some(ns) if K::NAMESPACED => {
                format!("{}/namespaces/{ns}/{}", Self::group_prefix(), K::PLURAL)
            }
            _ => format!("{}/{}", Self::group_prefix(), K::PLURAL),
        }
    }

    fn object(&self, namespace: Option<&str>, name: &str) -> Result<String, ClientError> {
        if name.is_empty() {
            return Err(ClientError::Config(format!("a {} needs a name", K::KIND)));
        }
        let ns = namespace
            .filter(|n| !n.is_empty())
            .or(self.namespace.as_deref());
        if K::NAMESPACED && ns.is_none() {
            return Err(ClientError::Config(format!(
                "{} {name:?} needs a namespace",
                K::KIND
            )));
        }
        Ok(format!("{}/{name}", self.collection(ns)))
    }

    fn own_path(&self, obj: &K) -> Result<String, ClientError> {
        let meta = obj.metadata();
        self.object(Some(&meta.namespace), &meta.name)
    }

    pub async fn get(&self, name: &str) -> Result<K, ClientError> {
        let path = self.object(None, name)?;
        decode(&self.client.request(hyper::Method::GET, &path, None).await?)
    }

    pub async fn list(&self, p: &ListParams) -> Result<ObjectList<K>, ClientError> {
        let path = format!("{}{}", self.collection(None), p.query(false));
        decode(&self.client.request(hyper::Method::GET, &path, None).await?)
    }

    /// Creates `obj` in this Api's namespace (or, for [`Api::all`], in the object's own).
    pub async fn create(&self, obj: &K) -> Result<K, ClientError> {
        let own = obj.metadata().namespace.as_str();
        let path = match &self.namespace {
            Some(_) => self.collection(None),
            None => self.collection(Some(own).filter(|n| !n.is_empty())),
        };
        let body = Body::json(&to_json(obj));
        decode(
            &self
                .client
                .request(hyper::Method::POST, &path, Some(body))
                .await?,
        )
    }

    /// PUT: conditioned on the object's `resourceVersion` when it has one (409 if stale).
    pub async fn replace(&self, obj: &K) -> Result<K, ClientError> {
        self.put(obj, "").await
    }

    pub async fn replace_status(&self, obj: &K) -> Result<K, ClientError> {
        self.put(obj, "/status").await
    }

    /// PUT of `obj` to its own path plus `suffix` (`""` or a subresource).
    async fn put(&self, obj: &K, suffix: &str) -> Result<K, ClientError> {
        let path = format!("{}{suffix}", self.own_path(obj)?);
        let body = Body::json(&to_json(obj));
        let sent = self.client.request(hyper::Method::PUT, &path, Some(body));
        decode(&sent.await?)
    }

    pub async fn patch(&self, name: &str, p: &Patch) -> Result<K, ClientError> {
        self.patch_at(name, "", p).await
    }

    pub async fn patch_status(&self, name: &str, p: &Patch) -> Result<K, ClientError> {
        self.patch_at(name, "/status", p).await
    }

    async fn patch_at(&self, name: &str, suffix: &str, p: &Patch) -> Result<K, ClientError> {
        let path = format!("{}{suffix}", self.object(None, name)?);
        let sent = self
            .client
            .request(hyper::Method::PATCH, &path, Some(p.body()));
        decode(&sent.await?)
    }

    pub async fn delete(&self, name: &str, p: &DeleteParams) -> Result<(), ClientError> {
        let path = self.object(None, name)?;
        let mut opts = serde_json::json!({"kind": "DeleteOptions", "apiVersion": "v1"});
        if let Some(g) = p.grace_period_seconds {
            opts["gracePeriodSeconds"] = g.into();
        }
        if let Some(rv) = &p.resource_version {
            opts["preconditions"]["resourceVersion"] = rv.clone().into();
        }
        if let Some(uid) = &p.uid {
            opts["preconditions"]["uid"] = uid.clone().into();
        }
        if let Some(pp) = &p.propagation_policy {
            opts["propagationPolicy"] = pp.clone().into();
        }
        let body = Body::json(&opts);
        self.client
            .request(hyper::Method::DELETE, &path, Some(body))
            .await
            .map(drop)
    }

    /// POSTs `body` to a subresource (`binding`, `eviction`) of `name`.
    pub async fn create_subresource(
        &self,
        name: &str,
        sub: &str,
        body: &Value,
    ) -> Result<Value, ClientError> {
        let path = format!("{}/{sub}", self.object(None, name)?);
        let sent = self
            .client
            .request(hyper::Method::POST, &path, Some(Body::json(body)));
        decode(&sent.await?)
    }

    /// Watches from `resource_version` (see [`ListParams::resource_version`]).
    pub async fn watch(&self, p: &ListParams) -> Result<WatchStream<K>, ClientError> {
        let path = format!("{}{}", self.collection(None), p.query(true));
        Ok(WatchStream::new(self.client.stream(&path).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::core::{Namespace, Pod};

    #[test]
    fn servers_parse_and_paths_follow_the_api_layout() {
        assert!(parse_server("https://1.2.3.4:6443").unwrap().tls);
        assert!(parse_server("ftp://1.2.3.4:6443").is_err());
        assert!(parse_server("http://example.com:80").is_err());
        assert!(parse_server("http://127.0.0.1").is_err());
        let ep = parse_server("http://localhost:8080/").unwrap();
        assert_eq!(ep.addr.to_string(), "127.0.0.1:8080");
        let client =
            Client::new(&ClientConfig::insecure("http://127.0.0.1:1"), Clock::new()).unwrap();
        let pods: Api<Pod> = Api::namespaced(&client, "a");
        assert_eq!(
            pods.object(None, "p").unwrap(),
            "/api/v1/namespaces/a/pods/p"
        );
        let all: Api<Pod> = Api::all(&client);
        assert!(all.object(None, "p").is_err(), "a pod needs a namespace");
        assert_eq!(
            all.object(Some("b"), "p").unwrap(),
            "/api/v1/namespaces/b/pods/p"
        );
        let ns: Api<Namespace> = Api::all(&client);
        assert_eq!(ns.object(None, "x").unwrap(), "/api/v1/namespaces/x");
    }

    #[test]
    fn queries_are_encoded() {
        let p = ListParams {
            label_selector: "app in (a,b),tier!=x".into(),
            limit: 5,
            ..Default::default()
        };
        assert_eq!(
            p.query(false),
            "?labelSelector=app%20in%20%28a%2Cb%29%2Ctier%21%3Dx&limit=5"
        );
        let w = ListParams {
            resource_version: "42".into(),
            bookmarks: true,
            ..Default::default()
        };
        assert_eq!(
            w.query(true),
            "?resourceVersion=42&watch=true&timeoutSeconds=300&allowWatchBookmarks=true"
        );
        assert_eq!(ListParams::default().query(false), "");
    }

    #[test]
    fn errors_carry_the_servers_status() {
        let body = serde_json::to_vec(&Status::conflict("", "pods", "p")).unwrap();
        let e = answer(409, Bytes::from(body)).unwrap_err();
        assert!(e.is_conflict());
        let e = answer(502, Bytes::from_static(b"bad gateway")).unwrap_err();
        assert_eq!(e.code(), Some(502));
        assert!(e.to_string().contains("bad gateway"));
        assert_eq!(answer(200, Bytes::from_static(b"{}")).unwrap(), "{}");
    }
}
