//! Admission rules that are not per-object defaults: namespace lifecycle (the namespaces
//! every cluster has, no new content in a namespace being deleted, the system namespaces
//! cannot be deleted). Pod admission defaults live in [`super::defaults`], the Priority
//! admission (pod priority from PriorityClasses) in [`super::priority`].

use crate::api::{Status, StatusCause, StatusDetails};

use super::resources::Resource;

/// Namespaces that exist from the start (created by every API server at start-up).
pub const BUILTIN_NAMESPACES: [&str; 4] =
    ["default", "kube-system", "kube-public", "kube-node-lease"];
/// Namespaces that may never be deleted (upstream's immortal namespaces).
pub const IMMORTAL_NAMESPACES: [&str; 3] = ["default", "kube-system", "kube-public"];

/// The 403 for creating `name` in namespace `ns` while `ns` is being deleted (upstream's
/// wording and cause).
pub fn namespace_terminating(r: &Resource, ns: &str, name: &str) -> Status {
    let message = format!(
        "{} \"{name}\" is forbidden: unable to create new content in namespace {ns} because it is being terminated",
        r.plural
    );
    let mut s = Status::failure(403, "Forbidden", message);
    s.details = Some(StatusDetails {
        name: name.into(),
        group: r.group.into(),
        kind: r.plural.into(),
        causes: vec![StatusCause {
            reason: "NamespaceTerminating".into(),
            message: format!("namespace {ns} is being terminated"),
            field: "metadata.namespace".into(),
        }],
    });
    s
}

/// The 403 for deleting one of the [`IMMORTAL_NAMESPACES`], if `name` is one.
pub fn undeletable(r: &Resource, name: &str) -> Option<Status> {
    if r.plural != "namespaces" || !r.group.is_empty() || !IMMORTAL_NAMESPACES.contains(&name) {
        return None;
    }
    let message = format!("namespaces \"{name}\" is forbidden: this namespace may not be deleted");
    Some(Status::failure(403, "Forbidden", message).about("", "namespaces", name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apiserver::resources;

    #[test]
    fn system_namespaces_are_protected_and_terminating_ones_closed() {
        let ns = resources::find("", "v1", "namespaces").unwrap();
        assert_eq!(undeletable(ns, "kube-system").unwrap().code, 403);
        assert!(undeletable(ns, "team-a").is_none());
        assert!(undeletable(ns, "kube-node-lease").is_none());
        let pods = resources::find("", "v1", "pods").unwrap();
        let s = namespace_terminating(pods, "gone", "p");
        assert_eq!(s.code, 403);
        assert_eq!(
            s.message,
            "pods \"p\" is forbidden: unable to create new content in namespace gone because it is being terminated"
        );
    }
}
