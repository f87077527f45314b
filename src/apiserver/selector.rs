//! Label and field selectors (`?labelSelector=`, `?fieldSelector=`), parsed and matched as
//! Kubernetes does. Pure: lists and watches filter with them.

use std::collections::BTreeMap;

use serde_json::Value;

/// Longest selector accepted, in bytes.
pub const MAX_SELECTOR_BYTES: usize = 4096;

/// One label requirement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelReq {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed label selector: every requirement must hold (empty matches everything).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LabelSelector(pub Vec<LabelReq>);

/// Splits on commas that are not inside parentheses.
fn split_top(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

fn valid_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 316
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
}

fn parse_set(key: &str, rest: &str, raw: &str) -> Result<Vec<String>, String> {
    let inner = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| {
            format!("unable to parse requirement: {raw:?}: expected (values) after {key:?}")
        })?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

fn parse_label_req(raw: &str) -> Result<LabelReq, String> {
    let part = raw.trim();
    let bad = || format!("unable to parse requirement: {part:?}");
    if let Some(k) = part.strip_prefix('!') {
        let k = k.trim();
        return valid_key(k)
            .then(|| LabelReq::NotExists(k.into()))
            .ok_or_else(bad);
    }
    let words: Vec<&str> = part.splitn(2, char::is_whitespace).collect();
    if words.len() == 2 {
        let (key, rest) = (words[0], words[1].trim_start());
        if let Some(set) = rest.strip_prefix("notin") {
            return Ok(LabelReq::NotIn(key.into(), parse_set(key, set, part)?));
        }
        if let Some(set) = rest.strip_prefix("in") {
            return Ok(LabelReq::In(key.into(), parse_set(key, set, part)?));
        }
    }
    let (key, value, negate) = if let Some((k, v)) = part.split_once("!=") {
        (k, v, true)
    } else if let Some((k, v)) = part.split_once("==") {
        (k, v, false)
    } else if let Some((k, v)) = part.split_once('=') {
        (k, v, false)
    } else {
        return valid_key(part)
            .then(|| LabelReq::Exists(part.into()))
            .ok_or_else(bad);
    };
    let (key, value) = (key.trim().to_string(), value.trim().to_string());
    if !valid_key(&key) {
        return Err(bad());
    }
    Ok(if negate {
        LabelReq::NotEquals(key, value)
    } else {
        LabelReq::Equals(key, value)
    })
}

impl LabelSelector {
    /// Parses `app=web,tier in (a,b),!legacy`.
    pub fn parse(s: &str) -> Result<LabelSelector, String> {
        if s.len() > MAX_SELECTOR_BYTES {
            return Err(format!("selector longer than {MAX_SELECTOR_BYTES} bytes"));
        }
        if s.trim().is_empty() {
            return Ok(LabelSelector::default());
        }
        split_top(s)
            .into_iter()
            .map(parse_label_req)
            .collect::<Result<_, _>>()
            .map(LabelSelector)
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.0.iter().all(|r| match r {
            LabelReq::Equals(k, v) => labels.get(k) == Some(v),
            LabelReq::NotEquals(k, v) => labels.get(k) != Some(v),
            LabelReq::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            LabelReq::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            LabelReq::Exists(k) => labels.contains_key(k),
            LabelReq::NotExists(k) => !labels.contains_key(k),
        })
    }
}

/// A parsed field selector: `(path, must_equal, value)` terms, all of which must hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldSelector(pub Vec<(String, bool, String)>);

/// Fields every resource can be selected on.
const COMMON_FIELDS: &[&str] = &["metadata.name", "metadata.namespace"];

/// Extra selectable fields per resource, as upstream registers them.
fn resource_fields(plural: &str) -> &'static [&'static str] {
    match plural {
        "pods" => &[
            "spec.nodeName",
            "spec.restartPolicy",
            "spec.schedulerName",
            "spec.serviceAccountName",
            "spec.hostNetwork",
            "status.phase",
            "status.podIP",
            "status.nominatedNodeName",
        ],
        "events" => &[
            "involvedObject.kind",
            "involvedObject.namespace",
            "involvedObject.name",
            "involvedObject.uid",
            "involvedObject.apiVersion",
            "involvedObject.resourceVersion",
            "involvedObject.fieldPath",
            "reason",
            "reportingComponent",
            "source",
            "type",
        ],
        "secrets" => &["type"],
        "nodes" => &["spec.unschedulable"],
        "namespaces" => &["status.phase"],
        "replicasets" => &["status.replicas"],
        _ => &[],
    }
}

impl FieldSelector {
    /// Parses `metadata.name=x,status.phase!=Running` for resource `plural`.
    pub fn parse(s: &str, plural: &str) -> Result<FieldSelector, String> {
        if s.len() > MAX_SELECTOR_BYTES {
            return Err(format!("selector longer than {MAX_SELECTOR_BYTES} bytes"));
        }
        let mut terms = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (path, value, eq) = if let Some((k, v)) = part.split_once("!=") {
                (k, v, false)
            } else if let Some((k, v)) = part.split_once("==") {
                (k, v, true)
            } else if let Some((k, v)) = part.split_once('=') {
                (k, v, true)
            } else {
                return Err(format!(
                    "invalid selector: '{part}'; can't understand '{part}'"
                ));
            };
            let path = path.trim();
            if !COMMON_FIELDS.contains(&path) && !resource_fields(plural).contains(&path) {
                return Err(format!("field label not supported: {path}"));
            }
            terms.push((path.to_string(), eq, value.trim().to_string()));
        }
        Ok(FieldSelector(terms))
    }

    /// Whether `obj` satisfies every term (a missing field reads as "").
    pub fn matches(&self, obj: &Value) -> bool {
        self.0.iter().all(|(path, eq, want)| {
            let got = field_text(obj, path);
            (got == *want) == *eq
        })
    }
}

/// A field's value as a selector compares it: strings as they are, other scalars printed.
fn field_text(obj: &Value, path: &str) -> String {
    let mut v = obj;
    for part in path.split('.') {
        match v.get(part) {
            Some(next) => v = next,
            None => return String::new(),
        }
    }
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The label and field selectors of one list or watch request.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
}

impl Filter {
    /// From the request's `labelSelector` and `fieldSelector` parameters.
    pub fn from_query(query: &BTreeMap<String, String>, plural: &str) -> Result<Filter, String> {
        let get = |k: &str| query.get(k).map(String::as_str).unwrap_or("");
        let labels = LabelSelector::parse(get("labelSelector"))
            .map_err(|e| format!("labelSelector: {e}"))?;
        let fields = FieldSelector::parse(get("fieldSelector"), plural)?;
        Ok(Filter { labels, fields })
    }

    /// Whether every object passes (no selectors).
    pub fn is_everything(&self) -> bool {
        self.labels.0.is_empty() && self.fields.0.is_empty()
    }

    /// Whether `obj` passes both selectors.
    pub fn matches(&self, obj: &Value) -> bool {
        if self.is_everything() {
            return true;
        }
        if !self.fields.matches(obj) {
            return false;
        }
        let labels: BTreeMap<String, String> = obj["metadata"]
            .get("labels")
            .and_then(|l| serde_json::from_value(l.clone()).ok())
            .unwrap_or_default();
        self.labels.matches(&labels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn label_selectors_parse_and_match() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        let yes = [
            "",
            "app=web",
            "app==web",
            "app!=db",
            "tier in (front, back)",
            "tier notin (db)",
            "app",
            "!legacy",
            "app=web,tier in (front),!legacy",
        ];
        for s in yes {
            assert!(LabelSelector::parse(s).unwrap().matches(&l), "{s}");
        }
        let no = [
            "app=db",
            "tier in (back)",
            "tier notin (front,x)",
            "legacy",
            "!app",
            "app!=web",
        ];
        for s in no {
            assert!(!LabelSelector::parse(s).unwrap().matches(&l), "{s}");
        }
        assert!(LabelSelector::parse("missing notin (a)")
            .unwrap()
            .matches(&l));
        for bad in ["a in b", "=x", "a b c", "!", "a=b,in (x"] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn field_selectors_know_their_fields() {
        let pod = json!({"metadata": {"name": "p", "namespace": "a"},
            "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}});
        let ok = |s: &str| FieldSelector::parse(s, "pods").unwrap().matches(&pod);
        assert!(ok("metadata.name=p,spec.nodeName=n1"));
        assert!(ok("status.phase!=Pending"));
        assert!(!ok("spec.nodeName=n2"));
        assert!(ok("spec.schedulerName="), "a missing field reads as empty");
        let err = FieldSelector::parse("spec.nodeName=x", "configmaps").unwrap_err();
        assert_eq!(err, "field label not supported: spec.nodeName");
        assert!(FieldSelector::parse("nonsense", "pods").is_err());
    }
}
