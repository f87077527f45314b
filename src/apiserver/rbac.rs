//! Authorization: RBAC with default deny, evaluated against the Roles, ClusterRoles and
//! their bindings (from the API server's watch caches), plus the bootstrap policy every
//! cluster starts with (roles and bindings for the admin, the control-plane components,
//! nodes, the proxy, and discovery for everyone).
//!
//! [`authorize`] is a pure function of the request's attributes and a [`Policy`] snapshot.

use std::collections::BTreeMap;

use crate::api::rbac::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, Subject};

use super::auth::{UserInfo, SERVICE_ACCOUNT_PREFIX};

/// What a request asks to do.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attributes {
    pub verb: String,
    /// A resource request (else a non-resource path such as `/version`).
    pub resource_request: bool,
    pub api_group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub path: String,
}

/// Every role and binding, as of one moment.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    pub cluster_roles: BTreeMap<String, Vec<PolicyRule>>,
    /// (namespace, name) → rules.
    pub roles: BTreeMap<(String, String), Vec<PolicyRule>>,
    pub cluster_bindings: Vec<ClusterRoleBinding>,
    pub bindings: Vec<RoleBinding>,
}

impl Policy {
    pub fn build(
        cluster_roles: Vec<ClusterRole>,
        roles: Vec<Role>,
        cluster_bindings: Vec<ClusterRoleBinding>,
        bindings: Vec<RoleBinding>,
    ) -> Policy {
        Policy {
            cluster_roles: cluster_roles
                .into_iter()
                .map(|r| (r.metadata.name, r.rules))
                .collect(),
            roles: roles
                .into_iter()
                .map(|r| ((r.metadata.namespace, r.metadata.name), r.rules))
                .collect(),
            cluster_bindings,
            bindings,
        }
    }
}

fn has(list: &[String], want: &str) -> bool {
    list.iter().any(|x| x == "*" || x == want)
}

/// Upstream's matching: `*`, the resource (`pods`), the resource with its subresource
/// (`pods/log`), or any resource's subresource (`*/scale`). `pods/*` is not a wildcard.
fn resource_matches(rule: &PolicyRule, a: &Attributes) -> bool {
    rule.resources.iter().any(|r| {
        if r == "*" {
            return true;
        }
        if a.subresource.is_empty() {
            return *r == a.resource;
        }
        match r.split_once('/') {
            Some((res, sub)) => sub == a.subresource && (res == a.resource || res == "*"),
            None => false,
        }
    })
}

/// Whether one rule allows the request.
pub fn rule_allows(rule: &PolicyRule, a: &Attributes) -> bool {
    if !has(&rule.verbs, &a.verb) {
        return false;
    }
    if !a.resource_request {
        return rule.non_resource_urls.iter().any(|u| {
            u == "*"
                || *u == a.path
                || u.strip_suffix('*')
                    .is_some_and(|prefix| a.path.starts_with(prefix))
        });
    }
    if !has(&rule.api_groups, &a.api_group) || !resource_matches(rule, a) {
        return false;
    }
    rule.resource_names.is_empty() || (!a.name.is_empty() && rule.resource_names.contains(&a.name))
}

fn subject_matches(s: &Subject, user: &UserInfo, binding_ns: &str) -> bool {
    match s.kind.as_str() {
        "User" => s.name == user.name,
        "Group" => user.in_group(&s.name),
        "ServiceAccount" => {
            let ns = if s.namespace.is_empty() {
                binding_ns
            } else {
                &s.namespace
            };
            user.name == format!("{SERVICE_ACCOUNT_PREFIX}{ns}:{}", s.name)
        }
        _ => false,
    }
}

/// `Some(why)` when allowed (naming the binding that allowed it); `None` is a denial (the
/// default).
pub fn authorize(user: &UserInfo, a: &Attributes, p: &Policy) -> Option<String> {
    let allows = |rules: Option<&Vec<PolicyRule>>| {
        rules.is_some_and(|rules| rules.iter().any(|r| rule_allows(r, a)))
    };
    for b in &p.cluster_bindings {
        let bound = b.subjects.iter().any(|s| subject_matches(s, user, ""));
        if bound
            && b.role_ref.kind == "ClusterRole"
            && allows(p.cluster_roles.get(&b.role_ref.name))
        {
            return Some(format!(
                "RBAC: allowed by ClusterRoleBinding {:?}",
                b.metadata.name
            ));
        }
    }
    if !a.resource_request || a.namespace.is_empty() {
        return None;
    }
    for b in p
        .bindings
        .iter()
        .filter(|b| b.metadata.namespace == a.namespace)
    {
        if !b
            .subjects
            .iter()
            .any(|s| subject_matches(s, user, &a.namespace))
        {
            continue;
        }
        let rules = match b.role_ref.kind.as_str() {
            "ClusterRole" => p.cluster_roles.get(&b.role_ref.name),
            "Role" => p.roles.get(&(a.namespace.clone(), b.role_ref.name.clone())),
            _ => None,
        };
        if allows(rules) {
            return Some(format!(
                "RBAC: allowed by RoleBinding {:?} in {:?}",
                b.metadata.name, a.namespace
            ));
        }
    }
    None
}

/// Upstream's wording of a denial (`pods is forbidden: User "alice" cannot list resource
/// "pods" in API group "" in the namespace "default"`).
pub fn denial_message(user: &UserInfo, a: &Attributes) -> String {
    if !a.resource_request {
        return format!(
            "forbidden: User {:?} cannot {} path {:?}",
            user.name, a.verb, a.path
        );
    }
    let what = if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    };
    let target = if a.name.is_empty() {
        what.clone()
    } else {
        format!("{what} {:?}", a.name)
    };
    let scope = if a.namespace.is_empty() {
        "at the cluster scope".to_string()
    } else {
        format!("in the namespace {:?}", a.namespace)
    };
    format!(
        "{target} is forbidden: User {:?} cannot {} resource {:?} in API group {:?} {scope}",
        user.name, a.verb, what, a.api_group
    )
}

fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> PolicyRule {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
    PolicyRule {
        verbs: s(verbs),
        api_groups: s(groups),
        resources: s(resources),
        ..Default::default()
    }
}

fn urls(verbs: &[&str], paths: &[&str]) -> PolicyRule {
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect();
    PolicyRule {
        verbs: s(verbs),
        non_resource_urls: s(paths),
        ..Default::default()
    }
}

const READ: &[&str] = &["get", "list", "watch"];
const WRITE: &[&str] = &["create", "update", "patch", "delete"];
const ALL: &[&str] = &[
    "get", "list", "watch", "create", "update", "patch", "delete",
];

fn cluster_role(name: &str, rules: Vec<PolicyRule>) -> ClusterRole {
    let mut r = ClusterRole::default();
    r.metadata.name = name.into();
    r.metadata
        .labels
        .insert("kubernetes.io/bootstrapping".into(), "rbac-defaults".into());
    r.rules = rules;
    r
}

fn binding(name: &str, role: &str, subjects: &[(&str, &str)]) -> ClusterRoleBinding {
    let mut b = ClusterRoleBinding::default();
    b.metadata.name = name.into();
    b.metadata
        .labels
        .insert("kubernetes.io/bootstrapping".into(), "rbac-defaults".into());
    b.role_ref.api_group = "rbac.authorization.k8s.io".into();
    b.role_ref.kind = "ClusterRole".into();
    b.role_ref.name = role.into();
    b.subjects = subjects
        .iter()
        .map(|(kind, name)| Subject {
            kind: kind.to_string(),
            api_group: "rbac.authorization.k8s.io".into(),
            name: name.to_string(),
            ..Default::default()
        })
        .collect();
    b
}

/// The roles every cluster starts with.
pub fn bootstrap_roles() -> Vec<ClusterRole> {
    let core_workloads = [
        "pods",
        "services",
        "endpoints",
        "configmaps",
        "secrets",
        "serviceaccounts",
        "events",
    ];
    vec![
        cluster_role(
            "cluster-admin",
            vec![rule(&["*"], &["*"], &["*"]), urls(&["*"], &["*"])],
        ),
        cluster_role(
            "admin",
            vec![
                rule(ALL, &[""], &core_workloads),
                rule(
                    ALL,
                    &["apps"],
                    &[
                        "deployments",
                        "replicasets",
                        "daemonsets",
                        "deployments/scale",
                        "replicasets/scale",
                    ],
                ),
                rule(
                    ALL,
                    &["rbac.authorization.k8s.io"],
                    &["roles", "rolebindings"],
                ),
                rule(ALL, &["discovery.k8s.io", "coordination.k8s.io"], &["*"]),
            ],
        ),
        cluster_role(
            "edit",
            vec![
                rule(ALL, &[""], &core_workloads),
                rule(
                    ALL,
                    &["apps"],
                    &[
                        "deployments",
                        "replicasets",
                        "daemonsets",
                        "deployments/scale",
                        "replicasets/scale",
                    ],
                ),
            ],
        ),
        cluster_role(
            "view",
            vec![
                rule(
                    READ,
                    &[""],
                    &[
                        "pods",
                        "services",
                        "endpoints",
                        "configmaps",
                        "serviceaccounts",
                        "events",
                        "pods/log",
                        "pods/status",
                    ],
                ),
                rule(
                    READ,
                    &["apps"],
                    &["deployments", "replicasets", "daemonsets"],
                ),
            ],
        ),
        cluster_role(
            "system:discovery",
            vec![urls(
                &["get"],
                &[
                    "/api",
                    "/api/*",
                    "/apis",
                    "/apis/*",
                    "/healthz",
                    "/livez",
                    "/readyz",
                    "/version",
                    "/version/",
                    "/openapi",
                    "/openapi/*",
                ],
            )],
        ),
        cluster_role(
            "system:public-info-viewer",
            vec![urls(
                &["get"],
                &["/healthz", "/livez", "/readyz", "/version", "/version/"],
            )],
        ),
        cluster_role(
            "system:basic-user",
            vec![rule(
                &["create"],
                &["authorization.k8s.io"],
                &["selfsubjectaccessreviews"],
            )],
        ),
        cluster_role(
            "system:kube-scheduler",
            vec![
                rule(READ, &[""], &["nodes", "pods", "namespaces", "services"]),
                rule(&["create"], &[""], &["pods/binding", "bindings"]),
                // Preemption deletes its victims.
                rule(&["delete"], &[""], &["pods"]),
                rule(&["patch", "update"], &[""], &["pods/status"]),
                rule(&["create", "patch", "update"], &[""], &["events"]),
                rule(ALL, &["coordination.k8s.io"], &["leases"]),
                rule(READ, &["apps"], &["replicasets", "daemonsets"]),
            ],
        ),
        cluster_role(
            "system:kube-controller-manager",
            vec![
                rule(
                    ALL,
                    &["", "apps", "coordination.k8s.io", "discovery.k8s.io"],
                    &["*"],
                ),
                rule(
                    &["create"],
                    &[""],
                    &["pods/eviction", "serviceaccounts/token"],
                ),
                rule(&["update"], &[""], &["namespaces/finalize"]),
            ],
        ),
        cluster_role(
            "system:node",
            vec![
                rule(
                    READ,
                    &[""],
                    &[
                        "pods",
                        "services",
                        "endpoints",
                        "nodes",
                        "configmaps",
                        "secrets",
                    ],
                ),
                rule(
                    &["create", "update", "patch", "delete"],
                    &[""],
                    &["nodes", "nodes/status", "pods", "pods/status"],
                ),
                rule(&["create", "patch", "update"], &[""], &["events"]),
                rule(ALL, &["coordination.k8s.io"], &["leases"]),
                rule(READ, &["discovery.k8s.io"], &["endpointslices"]),
                rule(&["create"], &[""], &["serviceaccounts/token"]),
            ],
        ),
        cluster_role(
            "system:node-proxier",
            vec![
                rule(READ, &[""], &["services", "endpoints", "nodes"]),
                rule(READ, &["discovery.k8s.io"], &["endpointslices"]),
                rule(&["create", "patch", "update"], &[""], &["events"]),
            ],
        ),
        cluster_role(
            "system:node-bootstrapper",
            vec![
                rule(&["create", "get"], &[""], &["nodes"]),
                rule(WRITE, &["coordination.k8s.io"], &["leases"]),
            ],
        ),
    ]
}

/// The bindings every cluster starts with.
pub fn bootstrap_bindings() -> Vec<ClusterRoleBinding> {
    use super::auth::{AUTHENTICATED, BOOTSTRAPPERS, MASTERS, NODES, UNAUTHENTICATED};
    vec![
        binding("cluster-admin", "cluster-admin", &[("Group", MASTERS)]),
        binding(
            "system:discovery",
            "system:discovery",
            &[("Group", AUTHENTICATED)],
        ),
        binding(
            "system:basic-user",
            "system:basic-user",
            &[("Group", AUTHENTICATED)],
        ),
        binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            &[("Group", AUTHENTICATED), ("Group", UNAUTHENTICATED)],
        ),
        binding(
            "system:kube-scheduler",
            "system:kube-scheduler",
            &[("User", "system:kube-scheduler")],
        ),
        binding(
            "system:kube-controller-manager",
            "system:kube-controller-manager",
            &[("User", "system:kube-controller-manager")],
        ),
        binding("system:node", "system:node", &[("Group", NODES)]),
        binding(
            "system:node-proxier",
            "system:node-proxier",
            &[("User", "system:kube-proxy")],
        ),
        binding(
            "system:node-bootstrapper",
            "system:node-bootstrapper",
            &[("Group", BOOTSTRAPPERS)],
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::auth::{AUTHENTICATED, MASTERS};
    use proptest::prelude::*;

    fn user(name: &str, groups: &[&str]) -> UserInfo {
        let g: Vec<String> = groups.iter().map(|s| s.to_string()).collect();
        UserInfo::authenticated(name, "", &g)
    }

    fn res(verb: &str, group: &str, resource: &str, ns: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource_request: true,
            api_group: group.into(),
            resource: resource.into(),
            namespace: ns.into(),
            ..Default::default()
        }
    }

    fn bootstrap() -> Policy {
        Policy::build(bootstrap_roles(), vec![], bootstrap_bindings(), vec![])
    }

    #[test]
    fn the_bootstrap_policy_allows_what_each_component_needs_and_no_more() {
        let p = bootstrap();
        let admin = user("kubernetes-admin", &[MASTERS]);
        assert!(authorize(&admin, &res("delete", "apps", "deployments", "x"), &p).is_some());
        let alice = user("alice", &[]);
        assert!(authorize(&alice, &res("list", "", "pods", "default"), &p).is_none());
        let version = Attributes {
            verb: "get".into(),
            path: "/version".into(),
            ..Default::default()
        };
        assert!(authorize(&alice, &version, &p).is_some());
        assert!(authorize(&UserInfo::anonymous(), &version, &p).is_some());
        let api = Attributes {
            verb: "get".into(),
            path: "/apis/apps/v1".into(),
            ..Default::default()
        };
        assert!(
            authorize(&alice, &api, &p).is_some(),
            "discovery for every authenticated user"
        );
        assert!(authorize(&UserInfo::anonymous(), &api, &p).is_none());
        let review = res(
            "create",
            "authorization.k8s.io",
            "selfsubjectaccessreviews",
            "",
        );
        assert!(authorize(&alice, &review, &p).is_some());
        let sched = user("system:kube-scheduler", &[]);
        let mut bind = res("create", "", "pods", "x");
        bind.subresource = "binding".into();
        assert!(authorize(&sched, &bind, &p).is_some());
        // It deletes preemption victims, as upstream's role allows; it may not touch others'
        // objects.
        assert!(authorize(&sched, &res("delete", "", "pods", "x"), &p).is_some());
        assert!(authorize(&sched, &res("delete", "", "nodes", "x"), &p).is_none());
        assert!(authorize(&sched, &res("update", "", "pods", "x"), &p).is_none());
        let proxy = user("system:kube-proxy", &[]);
        assert!(authorize(
            &proxy,
            &res("watch", "discovery.k8s.io", "endpointslices", ""),
            &p
        )
        .is_some());
        assert!(authorize(&proxy, &res("list", "", "secrets", "x"), &p).is_none());
    }

    #[test]
    fn role_bindings_grant_only_in_their_namespace() {
        let mut p = bootstrap();
        let mut rb = RoleBinding::default();
        rb.metadata.namespace = "team-a".into();
        rb.metadata.name = "alice-view".into();
        rb.role_ref.kind = "ClusterRole".into();
        rb.role_ref.name = "view".into();
        rb.subjects = vec![Subject {
            kind: "User".into(),
            name: "alice".into(),
            ..Default::default()
        }];
        let mut sa_rb = rb.clone();
        sa_rb.metadata.name = "robot".into();
        sa_rb.role_ref.kind = "Role".into();
        sa_rb.role_ref.name = "secrets".into();
        sa_rb.subjects = vec![Subject {
            kind: "ServiceAccount".into(),
            name: "robot".into(),
            ..Default::default()
        }];
        p.bindings = vec![rb, sa_rb];
        p.roles.insert(
            ("team-a".into(), "secrets".into()),
            vec![PolicyRule {
                resource_names: vec!["one".into()],
                ..rule(&["get"], &[""], &["secrets"])
            }],
        );
        let alice = user("alice", &[]);
        assert!(authorize(&alice, &res("list", "", "pods", "team-a"), &p).is_some());
        assert!(authorize(&alice, &res("list", "", "pods", "team-b"), &p).is_none());
        assert!(authorize(&alice, &res("delete", "", "pods", "team-a"), &p).is_none());
        let robot = user("system:serviceaccount:team-a:robot", &[]);
        let mut one = res("get", "", "secrets", "team-a");
        one.name = "one".into();
        assert!(authorize(&robot, &one, &p).is_some());
        one.name = "two".into();
        assert!(
            authorize(&robot, &one, &p).is_none(),
            "resourceNames limit the rule"
        );
        let mut evict = res("create", "", "pods", "x");
        evict.subresource = "eviction".into();
        let star_sub = rule(&["create"], &[""], &["*/eviction"]);
        assert!(rule_allows(&star_sub, &evict));
        assert!(
            !rule_allows(&rule(&["create"], &[""], &["pods/*"]), &evict),
            "not upstream's"
        );
        assert!(
            !rule_allows(&rule(&["create"], &[""], &["pods"]), &evict),
            "pods is not pods/eviction"
        );
        let msg = denial_message(&alice, &res("list", "", "pods", "team-b"));
        assert_eq!(msg, "pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"team-b\"");
    }

    proptest! {
        /// A rule never allows a verb, group or resource it does not name (or wildcard).
        #[test]
        fn rules_allow_only_what_they_name(
            verb in "(get|list|create|delete)",
            group in "(|apps|rbac)",
            resource in "(pods|secrets|deployments)",
            rule_verbs in proptest::collection::vec("(get|list|create|delete|\\*)", 0..3),
            rule_groups in proptest::collection::vec("(|apps|rbac|\\*)", 0..3),
            rule_resources in proptest::collection::vec("(pods|secrets|deployments|\\*)", 0..3),
        ) {
            let r = PolicyRule { verbs: rule_verbs.clone(), api_groups: rule_groups.clone(),
                resources: rule_resources.clone(), ..Default::default() };
            let a = res(&verb, &group, &resource, "ns");
            let named = |l: &[String], x: &str| l.iter().any(|v| v == "*" || v == x);
            let expected = named(&rule_verbs, &verb) && named(&rule_groups, &group)
                && named(&rule_resources, &resource);
            prop_assert_eq!(rule_allows(&r, &a), expected);
            prop_assert!(authorize(&user("u", &[AUTHENTICATED]), &a, &Policy::default()).is_none(),
                "no bindings: default deny");
        }
    }
}
