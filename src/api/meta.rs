//! `metadata` of every object (`ObjectMeta`), with Kubernetes' JSON field names.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Object metadata. Unknown fields are kept (`extra`) so a client's data is never lost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectMeta {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub generate_name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub generation: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_grace_period_seconds: Option<i64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub finalizers: Vec<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// Longest object name (a DNS subdomain), in bytes.
pub const MAX_NAME_BYTES: usize = 253;
/// Longest label value / name segment (a DNS label), in bytes.
pub const MAX_LABEL_BYTES: usize = 63;

/// Why a name is not a valid DNS subdomain (Kubernetes' rule for most object names).
pub fn dns_subdomain_problem(name: &str) -> Option<String> {
    const RULE: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character";
    if name.is_empty() {
        return Some("name or generateName is required".into());
    }
    if name.len() > MAX_NAME_BYTES {
        return Some(format!("must be no more than {MAX_NAME_BYTES} characters"));
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.';
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let first = name.chars().next().is_some_and(alnum);
    let last = name.chars().last().is_some_and(alnum);
    if !name.chars().all(ok_char) || !first || !last {
        return Some(RULE.into());
    }
    None
}

/// Why a name is not a valid DNS label (namespaces).
pub fn dns_label_problem(name: &str) -> Option<String> {
    if name.len() > MAX_LABEL_BYTES {
        return Some(format!("must be no more than {MAX_LABEL_BYTES} characters"));
    }
    if name.contains('.') {
        return Some("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character".into());
    }
    dns_subdomain_problem(name)
}

/// Whether `s` matches `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]` (label values may also be
/// empty; the caller decides).
fn is_label_token(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_alphanumeric();
    let inner = |c: char| alnum(c) || c == '-' || c == '_' || c == '.';
    s.chars().next().is_some_and(alnum)
        && s.chars().last().is_some_and(alnum)
        && s.chars().all(inner)
}

/// Why a label or annotation key is not a qualified name (`[prefix/]name`).
pub fn qualified_name_problem(key: &str) -> Option<String> {
    const NAME_RULE: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    if let Some(p) = prefix {
        if p.is_empty() {
            return Some("prefix part must be non-empty".into());
        }
        if let Some(problem) = dns_subdomain_problem(p) {
            return Some(format!("prefix part {problem}"));
        }
    }
    if name.is_empty() {
        return Some("name part must be non-empty".into());
    }
    if name.len() > MAX_LABEL_BYTES {
        return Some(format!(
            "name part must be no more than {MAX_LABEL_BYTES} characters"
        ));
    }
    if !is_label_token(name) {
        return Some(NAME_RULE.into());
    }
    None
}

/// Why a label value is not valid (empty is valid).
pub fn label_value_problem(value: &str) -> Option<String> {
    if value.len() > MAX_LABEL_BYTES {
        return Some(format!("must be no more than {MAX_LABEL_BYTES} characters"));
    }
    if !value.is_empty() && !is_label_token(value) {
        return Some("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_metadata_fields_survive_a_round_trip() {
        let raw = serde_json::json!({
            "name": "a", "labels": {"x": "1"}, "ownerReferences": [{"kind": "ReplicaSet"}]
        });
        let m: ObjectMeta = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(m.name, "a");
        assert_eq!(serde_json::to_value(&m).unwrap(), raw);
    }

    #[test]
    fn names_follow_the_dns_rules() {
        assert_eq!(dns_subdomain_problem("web-1.example"), None);
        assert!(dns_subdomain_problem("Web").is_some());
        assert!(dns_subdomain_problem("-a").is_some());
        assert!(dns_subdomain_problem(&"a".repeat(254)).is_some());
        assert_eq!(dns_label_problem("kube-system"), None);
        assert!(dns_label_problem("a.b").is_some());
    }

    #[test]
    fn label_keys_and_values_follow_the_upstream_rules() {
        assert_eq!(qualified_name_problem("app"), None);
        assert_eq!(qualified_name_problem("app.kubernetes.io/name"), None);
        assert_eq!(qualified_name_problem("A_b.c-9"), None);
        assert!(qualified_name_problem("bad key!").is_some());
        assert!(qualified_name_problem("/x").is_some());
        assert!(qualified_name_problem("Example.com/x").is_some());
        assert!(qualified_name_problem("a/").is_some());
        assert!(qualified_name_problem(&"a".repeat(64)).is_some());
        assert_eq!(label_value_problem(""), None);
        assert_eq!(label_value_problem("v1.2_x-Y"), None);
        assert!(label_value_problem("-v").is_some());
        assert!(label_value_problem("bad value!").is_some());
    }
}
