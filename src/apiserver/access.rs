//! Who may do what: the API server's glue between requests and [`super::auth`] (who),
//! [`super::rbac`] (may they), node restriction (a kubelet touches only its own Node, Lease
//! and pods), and the two endpoints built on them: SelfSubjectAccessReview (`kubectl auth
//! can-i`) and TokenRequest (`kubectl create token`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{json, Value};

use super::auth::{self, ServiceAccountClaim, TokenSigner, UserInfo};
use super::cache::{CachedObject, CACHE_FRESHNESS_WAIT_MS};
use super::handler::Api;
use super::rbac::{self, Attributes, Policy};
use super::resources::{self, Resource};
use super::route::{self, Route};
use crate::api::authorization::{SelfSubjectAccessReview, SubjectAccessReviewStatus};
use crate::api::rbac::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use crate::api::{fail, Status};
use crate::platform::tls::PeerIdentity;

/// How requests on the secure port are authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizationMode {
    Rbac,
    AlwaysAllow,
}

/// The content versions of the four RBAC caches a policy was built from.
type PolicyVersion = [(u64, u64); 4];

/// Credentials the secure port accepts.
pub struct Authenticator {
    /// Static tokens (`--token-auth-file`).
    pub tokens: BTreeMap<String, UserInfo>,
    pub signer: TokenSigner,
    pub mode: AuthorizationMode,
    /// The last policy built and the cache revisions it was built from.
    policy: Mutex<Option<(PolicyVersion, Arc<Policy>)>>,
}

impl Authenticator {
    pub fn new(
        tokens: BTreeMap<String, UserInfo>,
        signer: TokenSigner,
        mode: AuthorizationMode,
    ) -> Authenticator {
        Authenticator {
            tokens,
            signer,
            mode,
            policy: Mutex::new(None),
        }
    }
}

/// The user of the insecure port (upstream's: unauthenticated, unrestricted).
pub fn unsecured_user() -> UserInfo {
    UserInfo::authenticated("system:unsecured", "", &[auth::MASTERS.into()])
}

fn unauthorized() -> Box<Status> {
    Box::new(Status::failure(401, "Unauthorized", "Unauthorized".into()))
}

fn verb_of(method: &str, watch: bool, collection: bool) -> &'static str {
    match (method, collection) {
        ("GET" | "HEAD", true) if watch => "watch",
        ("GET" | "HEAD", true) => "list",
        ("GET" | "HEAD", false) => "get",
        ("POST", _) => "create",
        ("PUT", _) => "update",
        ("PATCH", _) => "patch",
        ("DELETE", true) => "deletecollection",
        ("DELETE", false) => "delete",
        _ => "unknown",
    }
}

/// The RBAC attributes of a request.
pub fn attributes(route: &Route, method: &str, watch: bool, path: &str) -> Attributes {
    let resource = |r: &Resource, ns: &Option<String>, name: &str, sub: &str, verb: &str| {
        // As upstream, a request about one namespace is scoped to that namespace, so a
        // RoleBinding there can grant `get namespaces/<it>`.
        let namespace = match (r.group, r.plural) {
            ("", "namespaces") => name.to_string(),
            _ => ns.clone().unwrap_or_default(),
        };
        Attributes {
            verb: verb.into(),
            resource_request: true,
            api_group: r.group.into(),
            resource: r.plural.into(),
            subresource: sub.into(),
            namespace,
            name: name.into(),
            path: path.into(),
        }
    };
    match route {
        Route::Collection {
            resource: r,
            namespace,
        } => resource(r, namespace, "", "", verb_of(method, watch, true)),
        Route::Object {
            resource: r,
            namespace,
            name,
        } => resource(r, namespace, name, "", verb_of(method, watch, false)),
        Route::Subresource {
            resource: r,
            namespace,
            name,
            sub,
        } => resource(
            r,
            namespace,
            name,
            sub.name(),
            verb_of(method, false, false),
        ),
        Route::Bindings { namespace } => Attributes {
            verb: verb_of(method, false, true).into(),
            resource_request: true,
            resource: "bindings".into(),
            namespace: namespace.clone(),
            path: path.into(),
            ..Default::default()
        },
        _ => Attributes {
            verb: method.to_ascii_lowercase(),
            path: path.into(),
            ..Default::default()
        },
    }
}

fn typed<T: serde::de::DeserializeOwned>(objs: &[Arc<CachedObject>]) -> Vec<T> {
    objs.iter()
        .filter_map(|o| T::deserialize(&***o).ok())
        .collect()
}

impl Api {
    /// Who sent `req`: a bearer token, else a client certificate, else anonymous.
    pub async fn authenticate(
        &self,
        authn: &Authenticator,
        authorization: Option<&str>,
        peer: Option<&PeerIdentity>,
    ) -> Result<UserInfo, Box<Status>> {
        if let Some(header) = authorization {
            let token = auth::bearer(header).ok_or_else(unauthorized)?;
            return self
                .user_of_token(authn, token)
                .await
                .ok_or_else(unauthorized);
        }
        if let Some(user) = peer.and_then(auth::certificate_user) {
            return Ok(user);
        }
        Ok(UserInfo::anonymous())
    }

    async fn user_of_token(&self, authn: &Authenticator, token: &str) -> Option<UserInfo> {
        if let Some(u) = authn.tokens.get(token) {
            return Some(u.clone());
        }
        let now_ms = self.platform.clock.wall_unix_ms();
        if let Some(claim) = authn.signer.verify(token, now_ms / 1000) {
            // Only while the account exists with that uid (deleting it revokes its tokens).
            let sa = self
                .cached_object("serviceaccounts", &claim.namespace, &claim.name)
                .await?;
            return (sa["metadata"]["uid"] == claim.uid.as_str()).then(|| claim.user());
        }
        let (id, secret) = auth::parse_bootstrap_token(token)?;
        let name = format!("bootstrap-token-{id}");
        let stored = self.cached_object("secrets", "kube-system", &name).await?;
        auth::bootstrap_user(&stored, id, secret, now_ms)
    }

    /// An object of a core resource from the watch cache (waiting for it to fill).
    pub(super) async fn cached_object(
        &self,
        plural: &str,
        ns: &str,
        name: &str,
    ) -> Option<Arc<CachedObject>> {
        let r = resources::find("", "v1", plural).expect("a served core resource");
        let cache = self.caches.of(r);
        let wait = Duration::from_millis(CACHE_FRESHNESS_WAIT_MS);
        if !cache
            .wait_for(&self.platform.clock, wait, |s| s.ready())
            .await
        {
            return None;
        }
        let key = route::object_key(r, Some(ns), name);
        cache.with(|s| s.get(&key))
    }

    /// The current RBAC policy, rebuilt only when a role or binding changed.
    async fn policy(&self, authn: &Authenticator) -> Result<Arc<Policy>, Box<Status>> {
        let group = "rbac.authorization.k8s.io";
        let plurals = [
            "clusterroles",
            "roles",
            "clusterrolebindings",
            "rolebindings",
        ];
        let caches = plurals.map(|p| {
            self.caches
                .of(resources::find(group, "v1", p).expect("served"))
        });
        let wait = Duration::from_millis(CACHE_FRESHNESS_WAIT_MS);
        for c in &caches {
            if !c.wait_for(&self.platform.clock, wait, |s| s.ready()).await {
                let m = "authorization is not ready: the RBAC objects cannot be read".to_string();
                return fail(Status::failure(503, "ServiceUnavailable", m));
            }
        }
        // Keyed on content, not on revision: progress notifications move the revision on
        // every write anywhere in the cluster.
        let revs = [0, 1, 2, 3].map(|i| caches[i].with(|s| s.content_version()));
        let mut held = authn.policy.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, p)) = held.as_ref() {
            if *at == revs {
                return Ok(p.clone());
            }
        }
        let snap = |i: usize| caches[i].with(|s| s.snapshot("/registry/").0);
        let policy = Arc::new(Policy::build(
            typed::<ClusterRole>(&snap(0)),
            typed::<Role>(&snap(1)),
            typed::<ClusterRoleBinding>(&snap(2)),
            typed::<RoleBinding>(&snap(3)),
        ));
        *held = Some((revs, policy.clone()));
        Ok(policy)
    }

    /// Whether `user` may do `a`; a 403 Status (upstream's wording) if not.
    pub async fn authorize(
        &self,
        authn: &Authenticator,
        user: &UserInfo,
        a: &Attributes,
    ) -> Result<(), Box<Status>> {
        if authn.mode == AuthorizationMode::AlwaysAllow {
            return Ok(());
        }
        let policy = self.policy(authn).await?;
        if rbac::authorize(user, a, &policy).is_some() {
            return Ok(());
        }
        let mut s = Status::failure(403, "Forbidden", rbac::denial_message(user, a));
        if a.resource_request {
            s = s.about(&a.api_group, &a.resource, &a.name);
        }
        fail(s)
    }

    /// Node restriction: a kubelet (`system:node:<name>`) writes only its own Node and
    /// Lease, and only pods bound to it.
    pub async fn node_restriction(
        &self,
        user: &UserInfo,
        route: &Route,
        method: &str,
        body: Option<&Value>,
    ) -> Result<(), Box<Status>> {
        let Some(node) = user.node_name() else {
            return Ok(());
        };
        if matches!(method, "GET" | "HEAD") {
            return Ok(());
        }
        let deny = |what: String| {
            let m = format!("node {node:?} is not allowed to modify {what}");
            fail(Status::failure(403, "Forbidden", m))
        };
        let (r, ns, name) = match route {
            Route::Object {
                resource,
                namespace,
                name,
            }
            | Route::Subresource {
                resource,
                namespace,
                name,
                ..
            } => (*resource, namespace.clone(), name.clone()),
            Route::Collection {
                resource,
                namespace,
            } => {
                let name = body
                    .and_then(|b| b["metadata"]["name"].as_str())
                    .unwrap_or("");
                (*resource, namespace.clone(), name.to_string())
            }
            _ => return Ok(()),
        };
        match r.plural {
            "nodes" if name != node => deny(format!("node {name:?}")),
            "leases" if ns.as_deref() != Some("kube-node-lease") || name != node => {
                deny(format!("lease {name:?}"))
            }
            "pods" if matches!(route, Route::Collection { .. }) => {
                // Only mirror pods of static pods, bound to this node, may be created.
                let bound = body
                    .and_then(|b| b["spec"]["nodeName"].as_str())
                    .unwrap_or("");
                if bound == node {
                    Ok(())
                } else {
                    deny("pods not bound to it".into())
                }
            }
            "pods" => {
                let (pod, _) = self.read(r, ns.as_deref(), &name).await?;
                if pod["spec"]["nodeName"] == node {
                    Ok(())
                } else {
                    deny(format!("pod {name:?} bound to another node"))
                }
            }
            _ => Ok(()),
        }
    }

    /// `POST selfsubjectaccessreviews`: may the caller do what the review describes?
    pub async fn access_review(
        &self,
        authn: Option<&Authenticator>,
        user: &UserInfo,
        body: Value,
    ) -> Result<(u16, Value), Box<Status>> {
        let mut review: SelfSubjectAccessReview = serde_json::from_value(body).map_err(|e| {
            Box::new(Status::bad_request(format!(
                "invalid SelfSubjectAccessReview: {e}"
            )))
        })?;
        let a = if let Some(ra) = &review.spec.resource_attributes {
            Attributes {
                verb: ra.verb.clone(),
                resource_request: true,
                api_group: ra.group.clone(),
                resource: ra.resource.clone(),
                subresource: ra.subresource.clone(),
                namespace: ra.namespace.clone(),
                name: ra.name.clone(),
                path: String::new(),
            }
        } else if let Some(nr) = &review.spec.non_resource_attributes {
            Attributes {
                verb: nr.verb.clone(),
                path: nr.path.clone(),
                ..Default::default()
            }
        } else {
            let m = "a SelfSubjectAccessReview needs resourceAttributes or nonResourceAttributes";
            return fail(Status::bad_request(m.into()));
        };
        let allowed = match authn {
            Some(authn) => match self.authorize(authn, user, &a).await {
                Ok(()) => Ok(true),
                Err(s) if s.code == 403 => Ok(false),
                Err(s) => Err(s),
            }?,
            None => true,
        };
        review.status = Some(SubjectAccessReviewStatus {
            allowed,
            reason: if allowed {
                "allowed by RBAC".into()
            } else {
                String::new()
            },
            ..Default::default()
        });
        let mut out = crate::api::kind::to_json(&review);
        out["metadata"]["creationTimestamp"] = Value::Null;
        Ok((201, out))
    }

    /// `POST serviceaccounts/<name>/token`: a signed token for an existing account.
    pub async fn token_request(
        &self,
        authn: Option<&Authenticator>,
        ns: &str,
        name: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), Box<Status>> {
        let Some(authn) = authn else {
            let m = "tokens are issued only by an API server serving HTTPS (--secure-port)";
            return fail(Status::failure(400, "BadRequest", m.into()));
        };
        let sas = resources::find("", "v1", "serviceaccounts").expect("served");
        let (sa, _) = self.read(sas, Some(ns), name).await?;
        let body = body.unwrap_or(Value::Null);
        let seconds = body["spec"]["expirationSeconds"]
            .as_i64()
            .unwrap_or(auth::DEFAULT_TOKEN_SECONDS)
            .clamp(600, auth::MAX_TOKEN_SECONDS);
        let now_s = self.platform.clock.wall_unix_ms() / 1000;
        let claim = ServiceAccountClaim {
            namespace: ns.into(),
            name: name.into(),
            uid: sa["metadata"]["uid"].as_str().unwrap_or("").into(),
        };
        let token = authn.signer.issue(&claim, now_s, now_s + seconds);
        let expires = crate::api::time::rfc3339((now_s + seconds) * 1000);
        Ok((
            201,
            json!({
                "kind": "TokenRequest",
                "apiVersion": "authentication.k8s.io/v1",
                "metadata": {"name": name, "namespace": ns, "creationTimestamp": null},
                "spec": {"audiences": [auth::TOKEN_ISSUER], "expirationSeconds": seconds},
                "status": {"token": token, "expirationTimestamp": expires},
            }),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_map_to_rbac_attributes() {
        let a = attributes(
            &route::parse("/api/v1/namespaces/a/pods"),
            "GET",
            true,
            "/x",
        );
        assert_eq!(
            (a.verb.as_str(), a.resource.as_str(), a.namespace.as_str()),
            ("watch", "pods", "a")
        );
        let a = attributes(
            &route::parse("/apis/apps/v1/namespaces/a/deployments/w/scale"),
            "PATCH",
            false,
            "/x",
        );
        assert_eq!(
            (
                a.verb.as_str(),
                a.subresource.as_str(),
                a.name.as_str(),
                a.api_group.as_str()
            ),
            ("patch", "scale", "w", "apps")
        );
        let a = attributes(
            &route::parse("/api/v1/namespaces/a/bindings"),
            "POST",
            false,
            "/x",
        );
        assert_eq!(
            (a.verb.as_str(), a.resource.as_str()),
            ("create", "bindings")
        );
        let a = attributes(&route::parse("/version"), "GET", false, "/version");
        assert!(!a.resource_request);
        assert_eq!((a.verb.as_str(), a.path.as_str()), ("get", "/version"));
        let a = attributes(
            &route::parse("/api/v1/namespaces/team-a"),
            "GET",
            false,
            "/x",
        );
        assert_eq!(
            (a.resource.as_str(), a.namespace.as_str()),
            ("namespaces", "team-a")
        );
        let a = attributes(&route::parse("/api/v1/nodes/n1"), "DELETE", false, "/x");
        assert_eq!((a.verb.as_str(), a.namespace.as_str()), ("delete", ""));
    }
}
