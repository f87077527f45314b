//! The resources this API server serves: for each, its group, version, kind, scope, short
//! names and verbs, which drive both discovery and routing.

/// One served resource (the plural name is what URLs and store keys use).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resource {
    pub group: &'static str,
    pub version: &'static str,
    pub plural: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub short_names: &'static [&'static str],
}

/// Verbs every stored resource supports.
pub const VERBS: &[&str] = &[
    "create", "delete", "get", "list", "patch", "update", "watch",
];
/// Verbs of a review resource (answered, never stored).
pub const REVIEW_VERBS: &[&str] = &["create"];

const fn r(
    group: &'static str,
    version: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    short_names: &'static [&'static str],
) -> Resource {
    Resource {
        group,
        version,
        plural,
        singular,
        kind,
        namespaced,
        short_names,
    }
}

/// Every served resource, grouped by API group in discovery order.
pub const RESOURCES: &[Resource] = &[
    r(
        "",
        "v1",
        "namespaces",
        "namespace",
        "Namespace",
        false,
        &["ns"],
    ),
    r("", "v1", "nodes", "node", "Node", false, &["no"]),
    r("", "v1", "pods", "pod", "Pod", true, &["po"]),
    r("", "v1", "services", "service", "Service", true, &["svc"]),
    r(
        "",
        "v1",
        "endpoints",
        "endpoints",
        "Endpoints",
        true,
        &["ep"],
    ),
    r(
        "",
        "v1",
        "configmaps",
        "configmap",
        "ConfigMap",
        true,
        &["cm"],
    ),
    r("", "v1", "secrets", "secret", "Secret", true, &[]),
    r(
        "",
        "v1",
        "serviceaccounts",
        "serviceaccount",
        "ServiceAccount",
        true,
        &["sa"],
    ),
    r("", "v1", "events", "event", "Event", true, &["ev"]),
    r(
        "apps",
        "v1",
        "deployments",
        "deployment",
        "Deployment",
        true,
        &["deploy"],
    ),
    r(
        "apps",
        "v1",
        "replicasets",
        "replicaset",
        "ReplicaSet",
        true,
        &["rs"],
    ),
    r(
        "apps",
        "v1",
        "daemonsets",
        "daemonset",
        "DaemonSet",
        true,
        &["ds"],
    ),
    r(
        "coordination.k8s.io",
        "v1",
        "leases",
        "lease",
        "Lease",
        true,
        &[],
    ),
    r(
        "discovery.k8s.io",
        "v1",
        "endpointslices",
        "endpointslice",
        "EndpointSlice",
        true,
        &[],
    ),
    r(
        "rbac.authorization.k8s.io",
        "v1",
        "roles",
        "role",
        "Role",
        true,
        &[],
    ),
    r(
        "rbac.authorization.k8s.io",
        "v1",
        "rolebindings",
        "rolebinding",
        "RoleBinding",
        true,
        &[],
    ),
    r(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterroles",
        "clusterrole",
        "ClusterRole",
        false,
        &[],
    ),
    r(
        "rbac.authorization.k8s.io",
        "v1",
        "clusterrolebindings",
        "clusterrolebinding",
        "ClusterRoleBinding",
        false,
        &[],
    ),
    r(
        "scheduling.k8s.io",
        "v1",
        "priorityclasses",
        "priorityclass",
        "PriorityClass",
        false,
        &["pc"],
    ),
    r(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "selfsubjectaccessreview",
        "SelfSubjectAccessReview",
        false,
        &[],
    ),
];

impl Resource {
    /// `v1` or `apps/v1`, as objects' `apiVersion` carries it.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_string()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The store key prefix of this resource's objects (ends with `/`).
    pub fn key_prefix(&self) -> String {
        format!("/registry/{}/", self.plural)
    }
}

impl Resource {
    /// Whether the resource has a `status` subresource (its main endpoint then ignores
    /// status changes, and `/status` changes only status).
    pub fn has_status(&self) -> bool {
        matches!(
            self.plural,
            "pods"
                | "nodes"
                | "namespaces"
                | "services"
                | "deployments"
                | "replicasets"
                | "daemonsets"
        )
    }

    /// Discovery categories (`kubectl get all` lists the `all` category).
    pub fn categories(&self) -> &'static [&'static str] {
        match self.plural {
            "pods" | "services" | "deployments" | "replicasets" | "daemonsets" => &["all"],
            _ => &[],
        }
    }

    /// Whether requests are answered without storing anything (access reviews).
    pub fn is_review(&self) -> bool {
        self.plural == "selfsubjectaccessreviews"
    }

    /// The verbs discovery lists.
    pub fn verbs(&self) -> &'static [&'static str] {
        if self.is_review() {
            REVIEW_VERBS
        } else {
            VERBS
        }
    }

    /// Whether the resource has a `scale` subresource.
    pub fn has_scale(&self) -> bool {
        matches!(self.plural, "deployments" | "replicasets")
    }
}

/// The resource named `plural` in `group`/`version`, if served.
pub fn find(group: &str, version: &str, plural: &str) -> Option<&'static Resource> {
    RESOURCES
        .iter()
        .find(|r| r.group == group && r.version == version && r.plural == plural)
}

/// The API groups other than the core one, in discovery order, deduplicated.
pub fn groups() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for r in RESOURCES {
        if !r.group.is_empty() && !out.contains(&r.group) {
            out.push(r.group);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_resource_is_unique_and_findable() {
        for r in RESOURCES {
            assert_eq!(find(r.group, r.version, r.plural), Some(r));
            let same = RESOURCES
                .iter()
                .filter(|o| o.group == r.group && o.plural == r.plural)
                .count();
            assert_eq!(same, 1, "{} listed twice", r.plural);
        }
        assert_eq!(find("", "v1", "widgets"), None);
        assert_eq!(groups()[0], "apps");
    }
}
