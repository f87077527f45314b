//! HTTP requests → routes → store operations → JSON responses. Every failure is a `Status`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use serde_json::{json, Value};

use super::access::{self, Authenticator};
use super::apply;
use super::auth::UserInfo;
use super::cache::{CacheState, CachedObject, Caches};
use super::fieldvalidation::{self, FieldValidation};
use super::objects::{self, CreateInputs, Deletion};
use super::paging;
use super::patch::{self, PatchKind};
use super::query;
use super::resources::Resource;
use super::route::{self, Route, Sub};
use super::selector::Filter;
use super::storage::{self, Storage, StorageError};
use super::watch::{self, WatchSpec};
use super::MAX_REQUEST_BODY_BYTES;
use super::{admission, defaults, discovery, openapi, priority, table, validate};
use crate::api::{fail, PriorityClass, Status};
use crate::platform::net::{self, HttpRequest, HttpResponse};
use crate::platform::tls::PeerIdentity;
use crate::platform::Platform;

/// Pause between attempts to create the built-in namespaces while the store is unreachable.
const BUILTIN_RETRY_MS: u64 = 500;
/// Times a conditional delete is retried when the object changes underneath it.
const MAX_DELETE_ATTEMPTS: usize = 3;

/// Most read requests served at once (upstream's `--max-requests-inflight`); watches are
/// long-running and not counted.
pub const MAX_READS_IN_FLIGHT: usize = 400;
/// Most writes served at once (upstream's `--max-mutating-requests-inflight`).
pub const MAX_WRITES_IN_FLIGHT: usize = 200;
/// Longest a non-watch request may take before it is answered 504 (upstream: 60 s).
pub const REQUEST_TIMEOUT_MS: u64 = 60_000;
/// What a refused client is told to wait before retrying (the `Retry-After` header).
pub const RETRY_AFTER_SECS: u64 = 1;

/// Counts requests in flight of one class.
#[derive(Default)]
pub struct InFlight {
    count: AtomicUsize,
}

/// One admitted request; leaving gives its slot back.
pub struct Slot<'a>(&'a InFlight);

impl InFlight {
    /// A slot if fewer than `max` requests are in flight.
    pub fn try_enter(&self, max: usize) -> Option<Slot<'_>> {
        let admitted = self
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        // `then`, not `then_some`: an eagerly built Slot would be dropped (and give back a
        // slot it never took) when the request is refused.
        admitted.then(|| Slot(self))
    }

    pub fn current(&self) -> usize {
        self.count.load(Ordering::Acquire)
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        let before = self.0.count.fetch_sub(1, Ordering::AcqRel);
        assert!(before > 0, "a slot was given back twice");
    }
}

/// What a handler needs: the store and the node's clock and randomness.
pub struct Api {
    pub storage: Storage,
    pub platform: Platform,
    /// One watch cache per resource type, serving watches and `resourceVersion=0` lists.
    pub caches: Caches,
    pub reads: InFlight,
    pub writes: InFlight,
    /// Authentication and authorization of the secure port (`None`: insecure only).
    pub authn: Option<Authenticator>,
    /// How to reach kubelets (pod logs); only with the secure port's credentials.
    pub kubelet_tls: Option<super::logs::KubeletTls>,
}

impl Api {
    pub fn new(storage: Storage, platform: Platform, authn: Option<Authenticator>) -> Api {
        let caches = Caches::new(storage.clone(), platform.clock.clone());
        Api {
            storage,
            platform,
            caches,
            reads: InFlight::default(),
            writes: InFlight::default(),
            authn,
            kubelet_tls: None,
        }
    }
}

/// Which port a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Port {
    /// HTTPS: authenticated and authorized.
    Secure,
    /// Plain HTTP on loopback: no authentication (upstream's old insecure port).
    Insecure,
}

fn too_many_requests() -> HttpResponse {
    let s = Status::failure(
        429,
        "TooManyRequests",
        "Too many requests, please try again later.".into(),
    );
    let mut resp = respond_status(&s);
    resp.headers_mut().insert(
        "retry-after",
        hyper::header::HeaderValue::from(RETRY_AFTER_SECS),
    );
    resp
}

fn timed_out() -> Status {
    Status::failure(
        504,
        "Timeout",
        "Timeout: request did not complete within the allotted timeout".into(),
    )
}

type Reply = Result<(u16, Value), Box<Status>>;
type Query = std::collections::BTreeMap<String, String>;

/// One request, after routing.
struct Call<'a> {
    method: &'a str,
    user: &'a UserInfo,
    /// `dryRun=All`: validate and answer, but write nothing.
    dry_run: bool,
    query: &'a Query,
    content_type: &'a str,
    body: Option<Value>,
    /// Who writes, for `managedFields`: `fieldManager`, else from the User-Agent.
    manager: Option<String>,
}

/// How a write records field ownership in `metadata.managedFields` ([`apply`]).
#[derive(Clone)]
enum Owner {
    /// Not recorded (bindings, finalize, built-in objects).
    Nobody,
    /// The manager's `Update` entry for `subresource` ("" for the main resource).
    Update {
        manager: String,
        subresource: &'static str,
    },
    /// An apply computed the object's `managedFields` itself.
    Applied,
}

impl Owner {
    fn update(manager: &Option<String>, subresource: &'static str) -> Owner {
        match manager {
            Some(m) => Owner::Update {
                manager: m.clone(),
                subresource,
            },
            None => Owner::Nobody,
        }
    }
}

/// How a write is conditioned and whether it happens.
struct Write {
    /// The `resourceVersion` the client requires the object to be at.
    rv: Option<String>,
    dry_run: bool,
    /// The binding subresource may set `spec.nodeName`, which a pod update may not.
    binding: bool,
    owner: Owner,
}

impl Write {
    fn of(body: &Value, dry_run: bool) -> Write {
        let rv = body["metadata"]["resourceVersion"].as_str();
        Write {
            rv: rv.filter(|v| !v.is_empty()).map(str::to_string),
            dry_run,
            binding: false,
            owner: Owner::Nobody,
        }
    }

    fn by(self, owner: Owner) -> Write {
        Write { owner, ..self }
    }
}

/// A DELETE's options (its `DeleteOptions` body and `dryRun` parameter).
struct DeleteOptions {
    dry_run: bool,
    /// `gracePeriodSeconds`: how long a running pod gets to stop.
    grace_secs: Option<i64>,
    /// Preconditions: the object must still be at this resourceVersion / have this uid.
    rv: Option<String>,
    uid: Option<String>,
}

impl DeleteOptions {
    fn from(body: Option<&Value>, dry_run_param: bool) -> Result<DeleteOptions, Box<Status>> {
        let empty = Value::Null;
        let b = body.unwrap_or(&empty);
        let dry = match b.get("dryRun") {
            None | Some(Value::Null) => false,
            Some(Value::Array(v)) if v.iter().all(|x| x == "All") => !v.is_empty(),
            Some(other) => {
                let m = format!("Invalid dryRun value {other}: the only valid value is \"All\"");
                return fail(Status::bad_request(m));
            }
        };
        let pre = &b["preconditions"];
        let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
        Ok(DeleteOptions {
            dry_run: dry || dry_run_param,
            grace_secs: b["gracePeriodSeconds"].as_i64(),
            rv: text(&pre["resourceVersion"]),
            uid: text(&pre["uid"]),
        })
    }
}

/// A list's items: shared from the watch cache (each encoded once) or read from the store.
enum Items {
    Cached(Vec<Arc<CachedObject>>),
    Read(Vec<Value>),
}

/// A list answer before encoding: its resource, items and `metadata`.
struct Listed {
    resource: &'static Resource,
    items: Items,
    meta: Value,
}

/// What a request is answered with: one JSON value, or a list encoded straight from its
/// items (the watch cache's are encoded once), never built as one JSON value unless printed
/// as a Table.
enum Answer {
    Json(Value),
    List(Listed),
}

impl Answer {
    fn into_value(self) -> Value {
        match self {
            Answer::Json(v) => v,
            Answer::List(l) => l.into_value(),
        }
    }
}

/// A handler's result when its answer may be a list.
type Served = Result<(u16, Answer), Box<Status>>;

fn json_answer(reply: Reply) -> Served {
    reply.map(|(code, v)| (code, Answer::Json(v)))
}

impl Listed {
    /// As a JSON value (Table printing reads it).
    fn into_value(self) -> Value {
        let r = self.resource;
        let items = match self.items {
            Items::Cached(objs) => objs.iter().map(|o| Value::clone(o)).collect(),
            Items::Read(objs) => objs,
        };
        json!({
            "kind": format!("{}List", r.kind),
            "apiVersion": r.api_version(),
            "metadata": self.meta,
            "items": items,
        })
    }

    /// As JSON bytes; cached items are spliced in as they were encoded, not encoded again.
    fn encode(&self) -> Bytes {
        let r = self.resource;
        let head = json!({
            "kind": format!("{}List", r.kind),
            "apiVersion": r.api_version(),
            "metadata": self.meta,
        });
        let mut out = serde_json::to_vec(&head).expect("JSON serializes");
        assert_eq!(out.pop(), Some(b'}'), "a JSON object ends with a brace");
        out.extend_from_slice(b",\"items\":[");
        match &self.items {
            Items::Cached(objs) => {
                out.reserve(objs.iter().map(|o| o.json().len() + 1).sum());
                for (i, o) in objs.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(o.json());
                }
            }
            Items::Read(objs) => {
                for (i, o) in objs.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    serde_json::to_writer(&mut out, o).expect("JSON serializes");
                }
            }
        }
        out.extend_from_slice(b"]}");
        Bytes::from(out)
    }
}

/// Attempts at a patch when the object changes between read and write.
const MAX_PATCH_ATTEMPTS: usize = 5;

fn respond(code: u16, body: &Value) -> HttpResponse {
    respond_json(code, serde_json::to_vec(body).expect("JSON serializes"))
}

fn respond_json(code: u16, bytes: impl Into<Bytes>) -> HttpResponse {
    hyper::Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(net::full_body(bytes))
        .expect("valid response")
}

fn respond_status(s: &Status) -> HttpResponse {
    respond(s.code, &serde_json::to_value(s).expect("Status serializes"))
}

fn store_failure(e: StorageError, r: &Resource, name: &str) -> Status {
    match e {
        StorageError::NotFound => Status::not_found(r.group, r.plural, name),
        StorageError::AlreadyExists => Status::already_exists(r.group, r.plural, name),
        StorageError::Conflict => Status::conflict(r.group, r.plural, name),
        StorageError::TooLarge => Status::failure(500, "InternalError", e.to_string()),
        StorageError::Compacted => Status::failure(410, "Expired", e.to_string()),
        StorageError::Unavailable(m) => Status::failure(
            503,
            "ServiceUnavailable",
            format!("the store is unavailable: {m}"),
        ),
    }
}

/// Who sent a request and whether they may make it.
async fn admit(
    api: &Api,
    req: &HttpRequest,
    port: Port,
    route: &Route,
    query: &Query,
) -> Result<UserInfo, Box<Status>> {
    let (Port::Secure, Some(authn)) = (port, api.authn.as_ref()) else {
        return Ok(access::unsecured_user());
    };
    let header = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok());
    let peer = req.extensions().get::<PeerIdentity>();
    let user = api.authenticate(authn, header, peer).await?;
    let attrs = access::attributes(
        route,
        req.method().as_str(),
        is_watch(query),
        req.uri().path(),
    );
    api.authorize(authn, &user, &attrs).await?;
    Ok(user)
}

/// Serves one request that came in on `port`.
pub async fn handle(api: Arc<Api>, req: HttpRequest, port: Port) -> HttpResponse {
    let method = req.method().clone();
    let route = route::parse(req.uri().path());
    let query = match query::parse(req.uri().query()) {
        Ok(q) => q,
        Err(e) => return respond_status(&Status::bad_request(e)),
    };
    if let Route::Health = route {
        return hyper::Response::builder()
            .header("content-type", "text/plain")
            .body(net::full_body(Bytes::from_static(b"ok")))
            .expect("valid response");
    }
    let user = match admit(&api, &req, port, &route, &query).await {
        Ok(u) => u,
        Err(s) => return respond_status(&s),
    };
    if let (
        &hyper::Method::GET,
        Route::Subresource {
            namespace,
            name,
            sub: Sub::Log,
            ..
        },
    ) = (&method, &route)
    {
        let ns = namespace.as_deref().unwrap_or("");
        return match api.pod_logs(ns, name, &query).await {
            Ok(resp) => resp,
            Err(s) => respond_status(&s),
        };
    }
    if method == hyper::Method::GET && is_watch(&query) {
        if let Route::Collection {
            resource,
            namespace,
        } = &route
        {
            if resource.is_review() {
                return respond_status(&method_not_allowed("WATCH"));
            }
            return match watch_spec(resource, namespace.as_deref(), &query) {
                Ok(spec) => start_watch(&api, spec),
                Err(s) => respond_status(&s),
            };
        }
    }
    let mutating = !matches!(method, hyper::Method::GET | hyper::Method::HEAD);
    let slot = if mutating {
        api.writes.try_enter(MAX_WRITES_IN_FLIGHT)
    } else {
        api.reads.try_enter(MAX_READS_IN_FLIGHT)
    };
    let Some(_slot) = slot else {
        return too_many_requests();
    };
    let accept = req
        .headers()
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    if let (&hyper::Method::GET, Route::CoreVersions | Route::Groups) = (&method, &route) {
        if discovery::wants_aggregated(&accept) {
            let body = discovery::aggregated(route == Route::CoreVersions);
            let mut resp = respond(200, &body);
            resp.headers_mut().insert(
                "content-type",
                hyper::header::HeaderValue::from_static(discovery::AGGREGATED_MEDIA_TYPE),
            );
            return resp;
        }
    }
    let manager = match query.get("fieldManager").filter(|m| !m.is_empty()) {
        Some(m) if m.len() > apply::MAX_MANAGER_BYTES => {
            let m = format!(
                "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Too long: may not be more than {} bytes",
                apply::MAX_MANAGER_BYTES
            );
            return respond_status(&Status::failure(422, "Invalid", m));
        }
        Some(m) => Some(m.clone()),
        None => req
            .headers()
            .get("user-agent")
            .and_then(|v| v.to_str().ok())
            .and_then(apply::manager_from_user_agent),
    };
    let content_type = req
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string();
    let validation = match FieldValidation::parse(query.get("fieldValidation").map(String::as_str))
    {
        Ok(v) => v,
        Err(s) => return respond_status(&s),
    };
    // A client that trickles its body holds a slot: the body read is bounded too.
    let limit = std::time::Duration::from_millis(REQUEST_TIMEOUT_MS);
    let find_duplicates = validation != FieldValidation::Ignore;
    let body = match api
        .platform
        .clock
        .timeout(limit, read_body(req, &content_type, find_duplicates))
        .await
    {
        Ok(body) => body,
        Err(_) => Err(Box::new(timed_out())),
    };
    let mut warnings = Vec::new();
    let reply = match body {
        Ok((_, dups)) if validation == FieldValidation::Strict && !dups.is_empty() => {
            return respond_status(&fieldvalidation::strict_error(&dups));
        }
        Ok((body, dups)) => {
            warnings = dups.iter().map(|d| fieldvalidation::warning(d)).collect();
            let dry_run = match query.get("dryRun").map(String::as_str) {
                None | Some("") => false,
                Some("All") => true,
                Some(other) => {
                    let m =
                        format!("Invalid dryRun value {other:?}: the only valid value is \"All\"");
                    return respond_status(&Status::bad_request(m));
                }
            };
            if let Err(s) = api
                .node_restriction(&user, &route, method.as_str(), body.as_ref())
                .await
            {
                return respond_status(&s);
            }
            let call = Call {
                method: method.as_str(),
                user: &user,
                dry_run,
                query: &query,
                content_type: &content_type,
                body,
                manager,
            };
            let printed = table_resource(&method, &route, &accept);
            let reply = match api
                .platform
                .clock
                .timeout(limit, api.dispatch(route, call))
                .await
            {
                Ok(reply) => reply,
                Err(_) => Err(Box::new(timed_out())),
            };
            match (reply, printed) {
                (Ok((200, answer)), Some(r)) => {
                    let now = api.platform.clock.wall_unix_ms();
                    Ok((200, Answer::Json(as_table(r, answer.into_value(), now))))
                }
                (other, _) => other,
            }
        }
        Err(s) => Err(s),
    };
    let mut resp = match reply {
        Ok((code, Answer::Json(body))) => respond(code, &body),
        Ok((code, Answer::List(list))) => respond_json(code, list.encode()),
        Err(s) => respond_status(&s),
    };
    for w in warnings {
        if let Ok(v) = hyper::header::HeaderValue::from_str(&w) {
            resp.headers_mut().append("warning", v);
        }
    }
    resp
}

/// The version, discovery and OpenAPI documents.
fn read_only(route: Route) -> Reply {
    let found = |v: Option<Value>| {
        v.map(|v| (200, v))
            .ok_or_else(|| Box::new(not_found_path()))
    };
    match route {
        Route::Version => Ok((200, discovery::version())),
        Route::CoreVersions => Ok((200, discovery::core_versions())),
        Route::Groups => Ok((200, discovery::groups())),
        Route::ResourceList { group, version } => found(discovery::resource_list(&group, &version)),
        Route::OpenApiRoot => Ok((200, openapi::root())),
        Route::OpenApiGroup { group, version } => found(openapi::group_version(&group, &version)),
        _ => fail(not_found_path()),
    }
}

/// The resource whose GET should answer as a Table, if the client asked for one.
fn table_resource(
    method: &hyper::Method,
    route: &Route,
    accept: &str,
) -> Option<&'static Resource> {
    if method != hyper::Method::GET || !table::wants_table(accept) {
        return None;
    }
    match route {
        Route::Collection { resource, .. } | Route::Object { resource, .. } => Some(resource),
        _ => None,
    }
}

/// A list (its items) or one object, printed as a Table.
fn as_table(r: &Resource, body: Value, now_ms: i64) -> Value {
    match body.get("items").and_then(Value::as_array) {
        Some(items) => table::to_table(r, items, body["metadata"].clone(), now_ms),
        None => {
            let rv = body["metadata"]["resourceVersion"].clone();
            table::to_table(r, &[body], json!({"resourceVersion": rv}), now_ms)
        }
    }
}

fn is_watch(query: &Query) -> bool {
    matches!(query.get("watch").map(String::as_str), Some("true" | "1"))
}

fn watch_spec(
    r: &'static Resource,
    ns: Option<&str>,
    query: &Query,
) -> Result<WatchSpec, Box<Status>> {
    let bad = |m: String| Box::new(Status::bad_request(m));
    let filter = Filter::from_query(query, r.plural).map_err(bad)?;
    let resource_version = match query.get("resourceVersion").map(String::as_str) {
        None | Some("") | Some("0") => None,
        Some(v) => Some(
            v.parse::<i64>()
                .map_err(|_| bad(format!("invalid resourceVersion {v:?}")))?,
        ),
    };
    let timeout_secs = match query.get("timeoutSeconds") {
        None => watch::DEFAULT_WATCH_TIMEOUT_SECS,
        Some(t) => t
            .parse::<u64>()
            .map_err(|_| bad(format!("invalid timeoutSeconds {t:?}")))?
            .min(watch::MAX_WATCH_TIMEOUT_SECS),
    };
    let flag = |k: &str| query.get(k).map(String::as_str) == Some("true");
    Ok(WatchSpec {
        resource: r,
        prefix: route::collection_prefix(r, ns),
        filter,
        resource_version,
        send_initial_events: flag("sendInitialEvents"),
        bookmarks: flag("allowWatchBookmarks"),
        timeout: std::time::Duration::from_secs(timeout_secs),
    })
}

fn start_watch(api: &Api, spec: WatchSpec) -> HttpResponse {
    let (tx, rx) = tokio::sync::mpsc::channel(watch::WATCH_EVENT_QUEUE);
    let clock = api.platform.clock.clone();
    let cache = api.caches.of(spec.resource);
    crate::platform::task::spawn(watch::run(cache, spec, clock, tx));
    hyper::Response::builder()
        .header("content-type", "application/json")
        .body(net::stream_body(rx))
        .expect("valid response")
}

/// A request body and the keys it gave twice (looked for only when asked).
type Body = (Option<Value>, Vec<String>);

/// The request body as JSON (`None` when empty), read from JSON, YAML or Kubernetes protobuf
/// ([`super::protobuf`]); oversized bodies are refused.
async fn read_body(
    req: HttpRequest,
    content_type: &str,
    find_duplicates: bool,
) -> Result<Body, Box<Status>> {
    let limited = Limited::new(req.into_body(), MAX_REQUEST_BODY_BYTES);
    let bytes = match limited.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            let m = format!(
                "the request body is larger than {MAX_REQUEST_BODY_BYTES} bytes or was cut off"
            );
            return fail(Status::failure(413, "RequestEntityTooLarge", m));
        }
    };
    if bytes.is_empty() {
        return Ok((None, Vec::new()));
    }
    let base = content_type.split(';').next().unwrap_or("").trim();
    if base.eq_ignore_ascii_case(super::protobuf::PROTOBUF_MEDIA_TYPE) {
        // kubectl's generator commands send protobuf and never retry as JSON.
        return super::protobuf::decode(&bytes)
            .map(|v| (Some(v), Vec::new()))
            .map_err(|e| {
                Box::new(Status::bad_request(format!(
                    "the request body is not a valid Kubernetes protobuf object: {e}"
                )))
            });
    }
    if base.ends_with("yaml") {
        // YAML is accepted wherever JSON is; it is read into the same JSON value.
        // serde_yaml refuses duplicate keys itself.
        return serde_yaml::from_slice::<Value>(&bytes)
            .map(|v| (Some(v), Vec::new()))
            .map_err(|e| {
                Box::new(Status::bad_request(format!(
                    "the request body is not valid YAML: {e}"
                )))
            });
    }
    if !base.ends_with("json") {
        let m = format!("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml (got {content_type})");
        return fail(Status::failure(415, "UnsupportedMediaType", m));
    }
    let value = serde_json::from_slice(&bytes).map_err(|e| {
        Box::new(Status::bad_request(format!(
            "the request body is not valid JSON: {e}"
        )))
    })?;
    let duplicates = if find_duplicates {
        super::fieldvalidation::duplicate_fields(&bytes)
    } else {
        Vec::new()
    };
    Ok((Some(value), duplicates))
}

fn method_not_allowed(method: &str) -> Status {
    Status::failure(
        405,
        "MethodNotAllowed",
        format!("the server does not allow this method on the requested resource ({method})"),
    )
}

fn not_found_path() -> Status {
    Status::failure(
        404,
        "NotFound",
        "the server could not find the requested resource".into(),
    )
}

fn success_status() -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201})
}

fn unsupported_patch(content_type: &str) -> Status {
    let m = format!("the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json (got {content_type})");
    Status::failure(415, "UnsupportedMediaType", m)
}

fn apply_patch(
    r: &Resource,
    name: &str,
    kind: PatchKind,
    old: &Value,
    p: &Value,
) -> Result<Value, Box<Status>> {
    let invalid = |e: &str| {
        let m = format!("{} \"{name}\" is invalid: {e}", r.kind);
        Box::new(Status::failure(422, "Invalid", m))
    };
    let out = patch::apply(kind, old, p).map_err(|e| invalid(&e))?;
    if !out.is_object() {
        return Err(invalid("the patched object is not a JSON object"));
    }
    Ok(out)
}

/// True if an updated object is the stored one (the resourceVersion aside).
fn unchanged(new: &Value, old: &Value) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(m) = v.get_mut("metadata").and_then(Value::as_object_mut) {
            m.remove("resourceVersion");
        }
        v
    };
    strip(new) == strip(old)
}

/// The configuration of an apply to `name`: an object of the resource's kind and name,
/// without what the server owns (`managedFields`; `status` where a subresource owns it).
fn apply_config(r: &Resource, name: &str, body: Value) -> Result<Value, Box<Status>> {
    let mut config = body;
    objects::meta_of(&config)?;
    for field in ["apiVersion", "kind"] {
        if config
            .get(field)
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return fail(Status::bad_request(format!(
                "error decoding patch: Object '{field}' is missing"
            )));
        }
    }
    objects::check_type(&mut config, r)?;
    match config["metadata"]["name"].as_str() {
        Some(n) if n != name => {
            return fail(Status::bad_request(format!(
                "the name of the object ({n}) does not match the name on the URL ({name})"
            )))
        }
        Some(_) => {}
        None => config["metadata"]["name"] = Value::String(name.to_string()),
    }
    if let Some(m) = config["metadata"].as_object_mut() {
        m.remove("managedFields");
    }
    if r.has_status() {
        if let Some(m) = config.as_object_mut() {
            m.remove("status");
        }
    }
    Ok(config)
}

/// What an update gets before it is compared with the stored object and validated: the
/// defaults, and (pods) what the Priority admission set on create.
fn default_update(r: &Resource, new: &mut Value, old: &Value) {
    defaults::apply(r, new);
    if priority::is_pod(r) {
        priority::keep_on_update(new, old);
    }
}

/// The PriorityClass resource (served, so it has a watch cache).
fn priority_class_resource() -> &'static Resource {
    super::resources::find(priority::GROUP, "v1", priority::PLURAL).expect("served")
}

/// A stored PriorityClass (its shape was checked before it was stored).
fn decode_class(obj: &Value) -> Result<PriorityClass, Box<Status>> {
    use serde::Deserialize;
    PriorityClass::deserialize(obj).map_err(|e| {
        let m = format!("a stored PriorityClass cannot be read: {e}");
        Box::new(Status::failure(500, "InternalError", m))
    })
}

fn need_body(body: Option<Value>) -> Result<Value, Box<Status>> {
    body.ok_or_else(|| Box::new(Status::bad_request("the request needs a body".into())))
}

impl Api {
    async fn dispatch(&self, route: Route, call: Call<'_>) -> Served {
        let method = call.method;
        match route {
            Route::Collection {
                resource,
                namespace,
            } => self.collection(resource, namespace.as_deref(), call).await,
            Route::Object {
                resource,
                namespace,
                name,
            } => json_answer(
                self.object(resource, namespace.as_deref(), &name, call)
                    .await,
            ),
            Route::Bindings { namespace } => {
                if method != "POST" {
                    return fail(method_not_allowed(method));
                }
                let body = need_body(call.body)?;
                let name = body["metadata"]["name"].as_str().unwrap_or("").to_string();
                let pods = super::resources::find("", "v1", "pods").expect("served");
                json_answer(
                    self.bind(pods, &namespace, &name, &body, call.dry_run)
                        .await,
                )
            }
            Route::Subresource {
                resource,
                namespace,
                name,
                sub,
            } => {
                let served = self.subresource(resource, namespace.as_deref(), &name, sub, call);
                json_answer(served.await)
            }
            Route::NotFound | Route::Health => fail(not_found_path()),
            _ if method != "GET" => fail(method_not_allowed(method)),
            route => json_answer(read_only(route)),
        }
    }

    async fn collection(&self, r: &'static Resource, ns: Option<&str>, call: Call<'_>) -> Served {
        if r.is_review() {
            return json_answer(match call.method {
                "POST" => {
                    self.access_review(self.authn.as_ref(), call.user, need_body(call.body)?)
                        .await
                }
                m => fail(method_not_allowed(m)),
            });
        }
        match call.method {
            "GET" => Ok((200, Answer::List(self.list_items(r, ns, call.query).await?))),
            "POST" => {
                let owner = Owner::update(&call.manager, "");
                let body = need_body(call.body)?;
                json_answer(self.create(r, ns, body, call.dry_run, &owner).await)
            }
            m => fail(method_not_allowed(m)),
        }
    }

    async fn object(
        &self,
        r: &'static Resource,
        ns: Option<&str>,
        name: &str,
        call: Call<'_>,
    ) -> Reply {
        match call.method {
            "GET" => self.get(r, ns, name).await,
            "PUT" => {
                let owner = Owner::update(&call.manager, "");
                self.update(r, ns, name, need_body(call.body)?, call.dry_run, owner)
                    .await
            }
            "DELETE" => {
                let opts = DeleteOptions::from(call.body.as_ref(), call.dry_run)?;
                self.delete(r, ns, name, &opts).await
            }
            "PATCH" if apply::is_apply(call.content_type) => {
                self.server_side_apply(r, ns, name, call).await
            }
            "PATCH" => {
                let Some(kind) = PatchKind::from_content_type(call.content_type) else {
                    return fail(unsupported_patch(call.content_type));
                };
                let body = need_body(call.body)?;
                let want = Write::of(&body, call.dry_run).by(Owner::update(&call.manager, ""));
                self.patch(r, ns, name, kind, body, want).await
            }
            m => fail(method_not_allowed(m)),
        }
    }

    pub(super) async fn read(
        &self,
        r: &Resource,
        ns: Option<&str>,
        name: &str,
    ) -> Result<(Value, i64), Box<Status>> {
        let key = route::object_key(r, ns, name);
        let stored = self.storage.get(key.as_bytes()).await;
        let stored = stored.map_err(|e| store_failure(e, r, name))?;
        let obj = objects::from_stored(&stored.value, stored.mod_revision)
            .map_err(|e| Status::failure(500, "InternalError", e))?;
        Ok((obj, stored.mod_revision))
    }

    async fn get(&self, r: &Resource, ns: Option<&str>, name: &str) -> Reply {
        Ok((200, self.read(r, ns, name).await?.0))
    }

    /// A list's items and metadata. Served from the watch cache when the list starts fresh
    /// and either accepts any version (`resourceVersion=0`) or is consistent and unpaged: then
    /// the cache is first brought up to the store's current revision (upstream's consistent
    /// reads from cache). Pages and continuations are read from the store at one revision.
    async fn list_items(
        &self,
        r: &'static Resource,
        ns: Option<&str>,
        query: &Query,
    ) -> Result<Listed, Box<Status>> {
        let bad = |m: String| Box::new(Status::bad_request(m));
        let filter = Filter::from_query(query, r.plural).map_err(bad)?;
        let prefix = route::collection_prefix(r, ns);
        let limit = match query.get("limit").map(String::as_str) {
            None | Some("") => 0,
            Some(l) => l
                .parse::<i64>()
                .map_err(|_| bad(format!("invalid limit {l:?}")))?,
        };
        let version = query.get("resourceVersion").map(String::as_str);
        let token = query.get("continue").map(String::as_str).unwrap_or("");
        if token.is_empty() {
            let cached = match version {
                Some("0") => self.list_cached(r, &prefix, &filter, None).await,
                None | Some("") if limit <= 0 => {
                    let current = self.storage.revision(prefix.as_bytes()).await;
                    let current = current.map_err(|e| store_failure(e, r, ""))?;
                    self.list_cached(r, &prefix, &filter, Some(current)).await
                }
                _ => None,
            };
            if let Some(listed) = cached {
                return Ok(listed);
            }
        }
        let (start, revision) = match token {
            "" => (prefix.clone().into_bytes(), 0),
            token => {
                let c = paging::decode(token, &prefix)
                    .map_err(|e| bad(format!("invalid continue token: {e}")))?;
                (c.start, c.revision)
            }
        };
        let end = storage::prefix_end(prefix.as_bytes());
        let page = self.storage.list_page(&start, &end, limit, revision).await;
        let page = page.map_err(|e| match e {
            StorageError::Compacted => Box::new(Status::failure(410, "Expired",
                "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter.".into())),
            e => Box::new(store_failure(e, r, "")),
        })?;
        let mut objs = Vec::with_capacity(page.items.len());
        for (_, s) in &page.items {
            let obj = objects::from_stored(&s.value, s.mod_revision)
                .map_err(|e| Status::failure(500, "InternalError", e))?;
            if filter.matches(&obj) {
                objs.push(obj);
            }
        }
        if page.more && limit <= 0 {
            return fail(store_failure(StorageError::TooLarge, r, ""));
        }
        let mut meta = json!({"resourceVersion": page.revision.to_string()});
        if let (true, Some((last, _))) = (page.more, page.items.last()) {
            meta["continue"] = Value::String(paging::encode(last, page.revision));
        }
        Ok(Listed {
            resource: r,
            items: Items::Read(objs),
            meta,
        })
    }

    /// The list from the resource's watch cache: at once if the cache is filled and
    /// `at_least` is `None`; else once the cache has seen revision `at_least` (or `None` if
    /// it does not get there in time: the caller reads the store).
    async fn list_cached(
        &self,
        r: &'static Resource,
        prefix: &str,
        filter: &Filter,
        at_least: Option<i64>,
    ) -> Option<Listed> {
        let cache = self.caches.of(r);
        // The snapshot is taken under the lock that saw the cache far enough.
        let snapshot = |s: &CacheState| {
            let far_enough = at_least.is_none_or(|rev| s.rev() >= rev);
            (s.ready() && far_enough).then(|| s.snapshot(prefix))
        };
        let (objs, rev, _) = match at_least {
            Some(_) => {
                let wait = std::time::Duration::from_millis(super::cache::CACHE_FRESHNESS_WAIT_MS);
                cache
                    .wait_then(&self.platform.clock, wait, snapshot)
                    .await?
            }
            None => cache.with(snapshot)?,
        };
        let items: Vec<_> = objs.into_iter().filter(|o| filter.matches(o)).collect();
        Some(Listed {
            resource: r,
            items: Items::Cached(items),
            meta: json!({"resourceVersion": rev.to_string()}),
        })
    }

    /// Starts every watch cache, then creates what every cluster has from the start and is
    /// missing: the [`admission::BUILTIN_NAMESPACES`], the bootstrap RBAC roles and bindings,
    /// and the system PriorityClasses. Retries until the store answers; never changes an
    /// object that exists (so a deleted built-in class comes back at the next start, as
    /// upstream's post-start hook does it).
    pub async fn bootstrap(&self) {
        // Every resource's watch cache starts now, as upstream's do: the first list or watch
        // of a kind then finds it filled instead of waiting for a full read of the store.
        for r in super::resources::RESOURCES
            .iter()
            .filter(|r| !r.is_review())
        {
            self.caches.of(r);
        }
        let namespaces = super::resources::find("", "v1", "namespaces").expect("served");
        for ns in admission::BUILTIN_NAMESPACES {
            let obj = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            self.ensure_exists(namespaces, obj).await;
        }
        let group = "rbac.authorization.k8s.io";
        let roles = super::resources::find(group, "v1", "clusterroles").expect("served");
        for role in super::rbac::bootstrap_roles() {
            self.ensure_exists(roles, crate::api::kind::to_json(&role))
                .await;
        }
        let bindings = super::resources::find(group, "v1", "clusterrolebindings").expect("served");
        for b in super::rbac::bootstrap_bindings() {
            self.ensure_exists(bindings, crate::api::kind::to_json(&b))
                .await;
        }
        for pc in priority::builtin_classes() {
            self.ensure_exists(priority_class_resource(), pc).await;
        }
    }

    async fn ensure_exists(&self, r: &Resource, obj: Value) {
        loop {
            match self
                .create(r, None, obj.clone(), false, &Owner::Nobody)
                .await
            {
                Ok(_) => return,
                Err(s) if s.code == 409 => return,
                Err(s) if s.code < 500 => {
                    // A refusal will not change on retry: a bug in what we tried to create.
                    tracing::error!(resource = r.plural, error = %s.message, "cannot create a built-in object");
                    return;
                }
                Err(s) => {
                    tracing::debug!(resource = r.plural, error = %s.message, "cannot create yet");
                    let pause = std::time::Duration::from_millis(BUILTIN_RETRY_MS);
                    self.platform.clock.sleep(pause).await;
                }
            }
        }
    }

    /// Namespace lifecycle admission: new objects only in a namespace that exists and is
    /// not being deleted.
    async fn require_namespace(
        &self,
        r: &Resource,
        ns: Option<&str>,
        name: &str,
    ) -> Result<(), Box<Status>> {
        let (true, Some(ns)) = (r.namespaced, ns) else {
            return Ok(());
        };
        // From the watch cache (no store round trip per create); a namespace created an
        // instant ago may not be there yet, so a miss asks the store.
        let terminating = match self.cached_object("namespaces", "", ns).await {
            Some(n) => objects::is_being_deleted(&n),
            None => {
                let namespaces = super::resources::find("", "v1", "namespaces").expect("served");
                objects::is_being_deleted(&self.read(namespaces, None, ns).await?.0)
            }
        };
        if terminating {
            return fail(admission::namespace_terminating(r, ns, name));
        }
        Ok(())
    }

    /// Validation of an update (a binding is checked as a new object: it may set what an
    /// update may not), then validating admission.
    async fn validate_update(
        &self,
        r: &Resource,
        new: &Value,
        old: &Value,
        binding: bool,
    ) -> Result<(), Box<Status>> {
        if binding {
            validate::check(r, new)?;
        } else {
            validate::check_update(r, new, old)?;
        }
        self.validating_admission(r, new, false).await
    }

    /// Validating admission, after validation as upstream orders it: a PriorityClass marked
    /// the global default while another one is ([`priority::second_default`]) is refused.
    async fn validating_admission(
        &self,
        r: &Resource,
        obj: &Value,
        creating: bool,
    ) -> Result<(), Box<Status>> {
        if !priority::is_priority_class(r) || obj["globalDefault"] != true {
            return Ok(());
        }
        let classes = self.priority_classes(true).await?;
        match priority::second_default(obj, creating, &classes) {
            Some(s) => fail(s),
            None => Ok(()),
        }
    }

    /// The Priority admission of a new pod ([`priority::admit_new_pod`]) with the class it
    /// names, or without a name the global default class as the watch cache has it (as
    /// upstream's informer-backed lister does).
    async fn admit_pod_priority(&self, pod: &mut Value, name: &str) -> Result<(), Box<Status>> {
        let source = match priority::requested(pod) {
            priority::Request::Malformed => return Ok(()),
            priority::Request::Class(class) => {
                let class = class.to_string();
                match self.priority_class(&class).await? {
                    Some(pc) => priority::Source::Named(pc),
                    None => return fail(priority::missing_class(name, &class)),
                }
            }
            priority::Request::Default => {
                let classes = self.priority_classes(false).await?;
                priority::Source::Default(priority::default_class(&classes).cloned())
            }
        };
        priority::admit_new_pod(pod, name, &source)
    }

    /// One PriorityClass: from the watch cache, else (not there yet, e.g. created an instant
    /// ago) from the store; `None` if it does not exist.
    async fn priority_class(&self, name: &str) -> Result<Option<PriorityClass>, Box<Status>> {
        let r = priority_class_resource();
        let key = route::object_key(r, None, name);
        let cached = self.caches.of(r).with(|s| s.ready().then(|| s.get(&key)));
        if let Some(o) = cached.flatten() {
            return decode_class(&o).map(Some);
        }
        match self.read(r, None, name).await {
            Ok((o, _)) => decode_class(&o).map(Some),
            Err(s) if s.code == 404 => Ok(None),
            Err(s) => Err(s),
        }
    }

    /// Every PriorityClass: from the watch cache as it is, or (`fresh`: a class about to be
    /// marked the global default must see one created just before) brought up to the
    /// store's current revision; from the store when the cache cannot answer.
    async fn priority_classes(&self, fresh: bool) -> Result<Vec<PriorityClass>, Box<Status>> {
        let r = priority_class_resource();
        let query = Query::new();
        let cached = if fresh {
            None
        } else {
            let everything = Filter::from_query(&query, r.plural).map_err(Status::bad_request)?;
            let prefix = route::collection_prefix(r, None);
            self.list_cached(r, &prefix, &everything, None).await
        };
        let listed = match cached {
            Some(l) => l,
            None => self.list_items(r, None, &query).await?,
        };
        match &listed.items {
            Items::Cached(objs) => objs.iter().map(|o| decode_class(o)).collect(),
            Items::Read(objs) => objs.iter().map(decode_class).collect(),
        }
    }

    async fn create(
        &self,
        r: &Resource,
        ns: Option<&str>,
        mut obj: Value,
        dry_run: bool,
        owner: &Owner,
    ) -> Reply {
        if r.namespaced && ns.is_none() {
            return fail(method_not_allowed("POST"));
        }
        let rng = &self.platform.rng;
        let inputs = CreateInputs {
            now_unix_ms: self.platform.clock.wall_unix_ms(),
            random: [rng.next_u64(), rng.next_u64(), rng.next_u64()],
        };
        let meta = objects::prepare_create(&mut obj, r, ns, &inputs)?;
        self.require_namespace(r, ns, &meta.name).await?;
        defaults::apply(r, &mut obj);
        defaults::admit_new(r, &mut obj);
        self.record_write(r, None, &mut obj, owner);
        // After `record_write`, as upstream runs mutating admission after its field manager:
        // what the Priority admission sets is not the writer's in `managedFields`.
        if priority::is_pod(r) {
            self.admit_pod_priority(&mut obj, &meta.name).await?;
        }
        validate::check(r, &obj)?;
        self.validating_admission(r, &obj, true).await?;
        let key = route::object_key(r, ns, &meta.name);
        if dry_run {
            return match self.storage.get(key.as_bytes()).await {
                Err(StorageError::NotFound) => Ok((201, obj)),
                Ok(_) => fail(Status::already_exists(r.group, r.plural, &meta.name)),
                Err(e) => fail(store_failure(e, r, &meta.name)),
            };
        }
        let bytes = serde_json::to_vec(&obj).expect("JSON serializes");
        let rev = self.storage.create(key.as_bytes(), bytes).await;
        let rev = rev.map_err(|e| store_failure(e, r, &meta.name))?;
        obj["metadata"]["resourceVersion"] = Value::String(rev.to_string());
        Ok((201, obj))
    }

    /// Read, change, conditionally write; retried when the object changes in between unless
    /// the client required a particular `resourceVersion`.
    async fn modify<F>(
        &self,
        r: &Resource,
        ns: Option<&str>,
        name: &str,
        want: Write,
        change: F,
    ) -> Result<Value, Box<Status>>
    where
        F: Fn(&Value) -> Result<Value, Box<Status>>,
    {
        let key = route::object_key(r, ns, name);
        for _ in 0..MAX_PATCH_ATTEMPTS {
            let (old, old_rev) = self.read(r, ns, name).await?;
            if want.rv.as_ref().is_some_and(|w| *w != old_rev.to_string()) {
                return fail(Status::conflict(r.group, r.plural, name));
            }
            let mut new = change(&old)?;
            // Defaults first, so a client that leaves defaulted fields out does not change
            // the spec (and its generation).
            default_update(r, &mut new, &old);
            objects::prepare_update(&mut new, &old, r)?;
            if let Owner::Applied = want.owner {
                if unchanged(&new, &old) {
                    // A no-op apply writes nothing (the store would only bump the revision).
                    return Ok(old);
                }
            }
            self.record_write(r, Some(&old), &mut new, &want.owner);
            self.validate_update(r, &new, &old, want.binding).await?;
            if want.dry_run {
                new["metadata"]["resourceVersion"] = Value::String(old_rev.to_string());
                return Ok(new);
            }
            let bytes = serde_json::to_vec(&new).expect("JSON serializes");
            let done = objects::deletion_complete(&new);
            let written = if done {
                // The last finalizer is gone from an object being deleted: it goes now.
                self.storage.delete(key.as_bytes(), old_rev).await
            } else {
                self.storage.update(key.as_bytes(), old_rev, bytes).await
            };
            match written {
                Ok(rev) => {
                    new["metadata"]["resourceVersion"] = Value::String(rev.to_string());
                    return Ok(new);
                }
                Err(StorageError::Conflict) if want.rv.is_none() => continue,
                Err(e) => return fail(store_failure(e, r, name)),
            }
        }
        fail(Status::conflict(r.group, r.plural, name))
    }

    async fn update(
        &self,
        r: &Resource,
        ns: Option<&str>,
        name: &str,
        obj: Value,
        dry_run: bool,
        owner: Owner,
    ) -> Reply {
        objects::meta_of(&obj)?;
        let want = Write::of(&obj, dry_run).by(owner);
        let new = self
            .modify(r, ns, name, want, |old| {
                let mut o = obj.clone();
                objects::keep_subresource_fields(&mut o, old, r);
                Ok(o)
            })
            .await?;
        Ok((200, new))
    }

    async fn patch(
        &self,
        r: &Resource,
        ns: Option<&str>,
        name: &str,
        kind: PatchKind,
        p: Value,
        want: Write,
    ) -> Reply {
        let new = self
            .modify(r, ns, name, want, |old| {
                let mut o = apply_patch(r, name, kind, old, &p)?;
                objects::keep_subresource_fields(&mut o, old, r);
                Ok(o)
            })
            .await?;
        Ok((200, new))
    }

    /// Records a non-apply write in `new`'s `managedFields` (`old`: `None` for a create).
    fn record_write(&self, r: &Resource, old: Option<&Value>, new: &mut Value, owner: &Owner) {
        let Owner::Update {
            manager,
            subresource,
        } = owner
        else {
            return;
        };
        let now = crate::api::time::rfc3339(self.platform.clock.wall_unix_ms());
        let api_version = r.api_version();
        let w = apply::Writer {
            manager,
            subresource,
            api_version: &api_version,
            now: &now,
            skip_status: subresource.is_empty() && r.has_status(),
        };
        apply::record_update(old, new, &w);
    }

    /// Server-side apply (`PATCH` with `application/apply-patch+yaml`): creates the object
    /// if it does not exist, else merges the configuration in with field ownership.
    async fn server_side_apply(
        &self,
        r: &Resource,
        ns: Option<&str>,
        name: &str,
        call: Call<'_>,
    ) -> Reply {
        let Some(manager) = call.query.get("fieldManager").filter(|m| !m.is_empty()) else {
            let m = "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch";
            return fail(Status::failure(422, "Invalid", m.into()));
        };
        let force = match call.query.get("force").map(String::as_str) {
            None | Some("" | "false") => false,
            Some("true") => true,
            Some(other) => {
                return fail(Status::bad_request(format!(
                    "invalid force value {other:?}: must be true or false"
                )))
            }
        };
        let config = apply_config(r, name, need_body(call.body)?)?;
        let now = crate::api::time::rfc3339(self.platform.clock.wall_unix_ms());
        let api_version = r.api_version();
        let applier = apply::Applier {
            manager,
            api_version: &api_version,
            now: &now,
            force,
        };
        let refused = |c: Vec<apply::Conflict>| Box::new(apply::conflict_status(&c));
        for _ in 0..MAX_PATCH_ATTEMPTS {
            let want = Write::of(&config, call.dry_run).by(Owner::Applied);
            let updated = self
                .modify(r, ns, name, want, |old| {
                    let mut o = apply::apply(Some(old), &config, &applier).map_err(refused)?;
                    objects::keep_subresource_fields(&mut o, old, r);
                    Ok(o)
                })
                .await;
            match updated {
                Ok(new) => return Ok((200, new)),
                Err(s) if s.code == 404 && s.reason == "NotFound" => {}
                Err(s) => return Err(s),
            }
            let obj = apply::apply(None, &config, &applier).map_err(refused)?;
            match self.create(r, ns, obj, call.dry_run, &Owner::Applied).await {
                // Created in between: apply to it.
                Err(s) if s.code == 409 && s.reason == "AlreadyExists" => continue,
                other => return other,
            }
        }
        fail(Status::conflict(r.group, r.plural, name))
    }

    async fn subresource(
        &self,
        r: &'static Resource,
        ns: Option<&str>,
        name: &str,
        sub: Sub,
        call: Call<'_>,
    ) -> Reply {
        let (method, body) = (call.method, call.body);
        let patch_kind = || {
            PatchKind::from_content_type(call.content_type)
                .ok_or_else(|| Box::new(unsupported_patch(call.content_type)))
        };
        match (sub, method) {
            (Sub::Status, "GET") => self.get(r, ns, name).await,
            (Sub::Status, "PUT") => {
                let body = need_body(body)?;
                let want =
                    Write::of(&body, call.dry_run).by(Owner::update(&call.manager, "status"));
                let new = self
                    .modify(r, ns, name, want, |old| {
                        Ok(objects::with_status(old, body.get("status")))
                    })
                    .await?;
                Ok((200, new))
            }
            (Sub::Status, "PATCH") => {
                let (kind, p) = (patch_kind()?, need_body(body)?);
                let want = Write::of(&p, call.dry_run).by(Owner::update(&call.manager, "status"));
                let new = self
                    .modify(r, ns, name, want, |old| {
                        let patched = apply_patch(r, name, kind, old, &p)?;
                        Ok(objects::with_status(old, patched.get("status")))
                    })
                    .await?;
                Ok((200, new))
            }
            (Sub::Scale, "GET") => Ok((200, objects::scale_of(&self.read(r, ns, name).await?.0))),
            (Sub::Scale, "PUT" | "PATCH") => {
                let body = need_body(body)?;
                let kind = if method == "PATCH" {
                    Some(patch_kind()?)
                } else {
                    None
                };
                let want = Write::of(&body, call.dry_run).by(Owner::update(&call.manager, "scale"));
                let new = self
                    .modify(r, ns, name, want, |old| {
                        let current = objects::scale_of(old);
                        let wanted = match kind {
                            Some(k) => apply_patch(r, name, k, &current, &body)?,
                            None => body.clone(),
                        };
                        let n = objects::scale_replicas(&wanted, r.kind, name)?;
                        let mut o = old.clone();
                        o["spec"]["replicas"] = Value::from(n);
                        Ok(o)
                    })
                    .await?;
                Ok((200, objects::scale_of(&new)))
            }
            (Sub::Binding, "POST") => {
                let ns = ns.unwrap_or("");
                self.bind(r, ns, name, &need_body(body)?, call.dry_run)
                    .await
            }
            (Sub::Token, "POST") => {
                let ns = ns.unwrap_or("");
                self.token_request(self.authn.as_ref(), ns, name, body)
                    .await
            }
            (Sub::Finalize, "PUT") => {
                let body = need_body(body)?;
                let want = Write::of(&body, call.dry_run);
                let finalizers = body["spec"]["finalizers"].clone();
                let new = self
                    .modify(r, ns, name, want, |old| {
                        let mut o = old.clone();
                        if !o["spec"].is_object() {
                            o["spec"] = json!({});
                        }
                        o["spec"]["finalizers"] = finalizers.clone();
                        Ok(o)
                    })
                    .await?;
                Ok((200, new))
            }
            (Sub::Eviction, "POST") => {
                let body = body.unwrap_or(Value::Null);
                let opts = DeleteOptions::from(body.get("deleteOptions"), call.dry_run)?;
                self.delete(r, ns, name, &opts).await?;
                Ok((201, success_status()))
            }
            (_, m) => fail(method_not_allowed(m)),
        }
    }

    /// Assigns a pod to a node (the scheduler's write): only an unassigned pod can be bound,
    /// so two schedulers racing on one pod cannot both win.
    async fn bind(
        &self,
        pods: &Resource,
        ns: &str,
        name: &str,
        binding: &Value,
        dry_run: bool,
    ) -> Reply {
        let node = binding["target"]["name"].as_str().unwrap_or("").to_string();
        if name.is_empty() || node.is_empty() {
            let m = "a binding needs metadata.name and target.name".to_string();
            return fail(Status::bad_request(m));
        }
        let now = crate::api::time::rfc3339(self.platform.clock.wall_unix_ms());
        let want = Write {
            rv: None,
            dry_run,
            binding: true,
            owner: Owner::Nobody,
        };
        self.modify(pods, Some(ns), name, want, |old| {
            objects::bind_pod(old, name, &node, &now)
        })
        .await?;
        Ok((201, success_status()))
    }

    async fn delete(
        &self,
        r: &Resource,
        ns: Option<&str>,
        name: &str,
        opts: &DeleteOptions,
    ) -> Reply {
        let protected = admission::undeletable(r, name).or_else(|| priority::undeletable(r, name));
        if let Some(s) = protected {
            return fail(s);
        }
        let key = route::object_key(r, ns, name);
        for _ in 0..MAX_DELETE_ATTEMPTS {
            let (obj, rev) = self.read(r, ns, name).await?;
            let meta = &obj["metadata"];
            let stale_rv = opts.rv.as_ref().is_some_and(|w| *w != rev.to_string());
            let stale_uid = opts
                .uid
                .as_ref()
                .is_some_and(|u| meta["uid"].as_str() != Some(u));
            if stale_rv || stale_uid {
                return fail(Status::conflict(r.group, r.plural, name));
            }
            let now_ms = self.platform.clock.wall_unix_ms();
            let step = objects::deletion_step(r, &obj, opts.grace_secs, now_ms);
            if opts.dry_run {
                return Ok((200, obj));
            }
            let outcome = match &step {
                Deletion::Remove => self.storage.delete(key.as_bytes(), rev).await,
                Deletion::Mark(marked) => {
                    let bytes =
                        serde_json::to_vec(&objects::without_rv(marked)).expect("JSON serializes");
                    self.storage.update(key.as_bytes(), rev, bytes).await
                }
                Deletion::AlreadyMarked => return Ok((200, obj)),
            };
            match (outcome, step) {
                (Ok(_), Deletion::Remove) => return Ok((200, obj)),
                (Ok(new_rev), Deletion::Mark(mut marked)) => {
                    marked["metadata"]["resourceVersion"] = Value::String(new_rev.to_string());
                    return Ok((200, marked));
                }
                (Err(StorageError::Conflict), _) => continue,
                (Err(e), _) => return fail(store_failure(e, r, name)),
                (Ok(_), Deletion::AlreadyMarked) => unreachable!("no write was made"),
            }
        }
        fail(Status::conflict(r.group, r.plural, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_slots_are_limited_and_given_back() {
        let f = InFlight::default();
        let a = f.try_enter(2).expect("room");
        let b = f.try_enter(2).expect("room");
        assert!(f.try_enter(2).is_none(), "full");
        drop(a);
        assert_eq!(f.current(), 1);
        let _c = f.try_enter(2).expect("a slot was freed");
        drop(b);
        assert_eq!(f.current(), 1);
        let resp = too_many_requests();
        assert_eq!(resp.status(), 429);
        assert_eq!(resp.headers()["retry-after"], "1");
    }

    proptest::proptest! {
        /// A list encoded by splicing its items' JSON is the same document as the list
        /// built as one value, whether the items come from the cache or the store.
        #[test]
        fn spliced_lists_equal_built_ones(
            names in proptest::collection::vec("[a-z\"\\\\é]{0,8}", 0..6),
            cont in proptest::option::of("[a-z0-9]{1,6}"),
        ) {
            let r = super::super::resources::find("", "v1", "pods").unwrap();
            let objs: Vec<Value> = names
                .iter()
                .map(|n| json!({"metadata": {"name": n, "labels": {"n": n}}, "spec": {}}))
                .collect();
            let mut meta = json!({"resourceVersion": "7"});
            if let Some(c) = cont {
                meta["continue"] = Value::String(c);
            }
            let cached = objs.iter().cloned().map(|o| Arc::new(CachedObject::new(o))).collect();
            for items in [Items::Read(objs.clone()), Items::Cached(cached)] {
                let listed = Listed { resource: r, items, meta: meta.clone() };
                let bytes = listed.encode();
                let parsed: Value = serde_json::from_slice(&bytes).expect("valid JSON");
                proptest::prop_assert_eq!(&parsed, &listed.into_value());
                proptest::prop_assert_eq!(parsed["items"].as_array().unwrap().len(), objs.len());
                proptest::prop_assert_eq!(&parsed["kind"], "PodList");
            }
        }
    }
}
