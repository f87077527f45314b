//! URL paths → what they name. Pure, so it is tested without a server.

use super::resources::{self, Resource};

/// What a request path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Version,
    Health,
    CoreVersions,
    Groups,
    ResourceList {
        group: String,
        version: String,
    },
    OpenApiRoot,
    OpenApiGroup {
        group: String,
        version: String,
    },
    /// A collection: all namespaces (`namespace: None`) or one, or a cluster-scoped one.
    Collection {
        resource: &'static Resource,
        namespace: Option<String>,
    },
    Object {
        resource: &'static Resource,
        namespace: Option<String>,
        name: String,
    },
    /// `POST namespaces/<ns>/bindings`: bind the pod the body names.
    Bindings {
        namespace: String,
    },
    /// `status` or `scale` of one object.
    Subresource {
        resource: &'static Resource,
        namespace: Option<String>,
        name: String,
        sub: Sub,
    },
    NotFound,
}

/// The subresources served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sub {
    Status,
    Scale,
    /// `pods/binding` (and `POST namespaces/<ns>/bindings`, named by the body).
    Binding,
    /// `pods/eviction`.
    Eviction,
    /// `namespaces/finalize`: the namespace controller clears `spec.finalizers`.
    Finalize,
    /// `serviceaccounts/token`: a TokenRequest for the account.
    Token,
    /// `pods/log`: the container's log, from its node's kubelet.
    Log,
}

impl Sub {
    /// The subresource's name in URLs and RBAC rules.
    pub fn name(&self) -> &'static str {
        match self {
            Sub::Status => "status",
            Sub::Scale => "scale",
            Sub::Binding => "binding",
            Sub::Eviction => "eviction",
            Sub::Finalize => "finalize",
            Sub::Token => "token",
            Sub::Log => "log",
        }
    }
}

fn subresource(r: &'static Resource, ns: Option<&str>, name: &str, sub: &str) -> Route {
    let sub = match sub {
        "status" if r.has_status() => Sub::Status,
        "scale" if r.has_scale() => Sub::Scale,
        "binding" if r.plural == "pods" => Sub::Binding,
        "eviction" if r.plural == "pods" => Sub::Eviction,
        "finalize" if r.plural == "namespaces" => Sub::Finalize,
        "token" if r.plural == "serviceaccounts" => Sub::Token,
        "log" if r.plural == "pods" => Sub::Log,
        _ => return Route::NotFound,
    };
    Route::Subresource {
        resource: r,
        namespace: ns.map(str::to_string),
        name: name.to_string(),
        sub,
    }
}

/// Parses a request path (without the query).
pub fn parse(path: &str) -> Route {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segs.as_slice() {
        ["version"] => Route::Version,
        ["healthz"] | ["livez"] | ["readyz"] => Route::Health,
        ["api"] => Route::CoreVersions,
        ["apis"] => Route::Groups,
        ["openapi", "v3"] => Route::OpenApiRoot,
        ["openapi", "v3", "api", version] => Route::OpenApiGroup {
            group: String::new(),
            version: version.to_string(),
        },
        ["openapi", "v3", "apis", group, version] => Route::OpenApiGroup {
            group: group.to_string(),
            version: version.to_string(),
        },
        ["api", version] => resource_list("", version),
        ["apis", group, version] => resource_list(group, version),
        ["api", version, rest @ ..] => resource_path("", version, rest),
        ["apis", group, version, rest @ ..] => resource_path(group, version, rest),
        _ => Route::NotFound,
    }
}

fn resource_list(group: &str, version: &str) -> Route {
    Route::ResourceList {
        group: group.to_string(),
        version: version.to_string(),
    }
}

fn resource_path(group: &str, version: &str, rest: &[&str]) -> Route {
    match resource_route(group, version, rest) {
        // A review is answered, never stored: only its collection (POST) exists.
        Route::Object { resource, .. } | Route::Subresource { resource, .. }
            if resource.is_review() =>
        {
            Route::NotFound
        }
        other => other,
    }
}

fn resource_route(group: &str, version: &str, rest: &[&str]) -> Route {
    let find = |plural: &str| resources::find(group, version, plural);
    match rest {
        ["namespaces", ns, "bindings"] if group.is_empty() => Route::Bindings {
            namespace: ns.to_string(),
        },
        // `namespaces/<name>/status` and `/finalize` are a namespace's subresources.
        ["namespaces", ns, plural] if find(plural).is_some_and(|r| r.namespaced) => {
            Route::Collection {
                resource: find(plural).expect("checked by the guard"),
                namespace: Some(ns.to_string()),
            }
        }
        ["namespaces", ns, plural, name] => match find(plural) {
            Some(r) if r.namespaced => Route::Object {
                resource: r,
                namespace: Some(ns.to_string()),
                name: name.to_string(),
            },
            _ => Route::NotFound,
        },
        [plural] => match find(plural) {
            Some(r) => Route::Collection {
                resource: r,
                namespace: None,
            },
            None => Route::NotFound,
        },
        ["namespaces", ns, plural, name, sub] => match find(plural) {
            Some(r) if r.namespaced => subresource(r, Some(ns), name, sub),
            _ => Route::NotFound,
        },
        [plural, name, sub] => match find(plural) {
            Some(r) if !r.namespaced => subresource(r, None, name, sub),
            _ => Route::NotFound,
        },
        [plural, name] => match find(plural) {
            Some(r) if !r.namespaced => Route::Object {
                resource: r,
                namespace: None,
                name: name.to_string(),
            },
            _ => Route::NotFound,
        },
        _ => Route::NotFound,
    }
}

/// The store key of one object.
pub fn object_key(r: &Resource, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if r.namespaced => format!("{}{ns}/{name}", r.key_prefix()),
        _ => format!("{}{name}", r.key_prefix()),
    }
}

/// The store key prefix of a collection.
pub fn collection_prefix(r: &Resource, namespace: Option<&str>) -> String {
    match namespace {
        Some(ns) if r.namespaced => format!("{}{ns}/", r.key_prefix()),
        _ => r.key_prefix(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(group: &str, plural: &str) -> &'static Resource {
        resources::find(group, "v1", plural).unwrap()
    }

    #[test]
    fn paths_name_collections_and_objects() {
        assert_eq!(parse("/version/"), Route::Version);
        let review = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
        assert!(matches!(parse(review), Route::Collection { .. }));
        assert_eq!(
            parse(&format!("{review}/x")),
            Route::NotFound,
            "reviews are not stored"
        );
        for sub in [("status", Sub::Status), ("finalize", Sub::Finalize)] {
            assert_eq!(
                parse(&format!("/api/v1/namespaces/gone/{}", sub.0)),
                Route::Subresource {
                    resource: res("", "namespaces"),
                    namespace: None,
                    name: "gone".into(),
                    sub: sub.1,
                }
            );
        }
        assert_eq!(parse("/readyz"), Route::Health);
        assert_eq!(
            parse("/api/v1/namespaces/default/pods"),
            Route::Collection {
                resource: res("", "pods"),
                namespace: Some("default".into())
            }
        );
        assert_eq!(
            parse("/apis/apps/v1/namespaces/a/deployments/web"),
            Route::Object {
                resource: res("apps", "deployments"),
                namespace: Some("a".into()),
                name: "web".into()
            }
        );
        assert_eq!(
            parse("/api/v1/namespaces/kube-system"),
            Route::Object {
                resource: res("", "namespaces"),
                namespace: None,
                name: "kube-system".into()
            }
        );
        assert_eq!(
            parse("/api/v1/pods"),
            Route::Collection {
                resource: res("", "pods"),
                namespace: None
            }
        );
        assert_eq!(
            parse("/api/v1/pods/x"),
            Route::NotFound,
            "namespaced needs a namespace"
        );
        assert_eq!(parse("/api/v1/namespaces/a/nodes"), Route::NotFound);
        assert_eq!(parse("/api/v1/namespaces/a/pods/x/exec"), Route::NotFound);
        assert_eq!(
            parse("/apis/apps/v1/namespaces/a/deployments/web/scale"),
            Route::Subresource {
                resource: res("apps", "deployments"),
                namespace: Some("a".into()),
                name: "web".into(),
                sub: Sub::Scale
            }
        );
        assert!(matches!(
            parse("/api/v1/nodes/n1/status"),
            Route::Subresource {
                sub: Sub::Status,
                ..
            }
        ));
        assert_eq!(
            parse("/api/v1/namespaces/a/configmaps/c/status"),
            Route::NotFound
        );
        assert_eq!(parse("/api/v1/namespaces/a/pods/p/scale"), Route::NotFound);
        assert!(matches!(
            parse("/api/v1/namespaces/a/pods/p/binding"),
            Route::Subresource {
                sub: Sub::Binding,
                ..
            }
        ));
        assert_eq!(
            parse("/api/v1/namespaces/a/bindings"),
            Route::Bindings {
                namespace: "a".into()
            }
        );
        assert_eq!(parse("/nope"), Route::NotFound);
    }

    #[test]
    fn keys_follow_the_registry_layout() {
        let pods = res("", "pods");
        assert_eq!(object_key(pods, Some("ns"), "p"), "/registry/pods/ns/p");
        assert_eq!(collection_prefix(pods, Some("ns")), "/registry/pods/ns/");
        assert_eq!(collection_prefix(pods, None), "/registry/pods/");
        let ns = res("", "namespaces");
        assert_eq!(object_key(ns, None, "a"), "/registry/namespaces/a");
    }
}
