//! The structured label selector objects carry (`spec.selector` of Deployments, ReplicaSets
//! and DaemonSets; `meta/v1` LabelSelector upstream), and how it matches a set of labels.
//! Lives apart from the group modules because `apps` and future groups share it; the
//! `?labelSelector=` query-string form is the API server's (`apiserver::selector`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `{matchLabels, matchExpressions}`: every label and every expression must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<LabelSelectorRequirement>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// One expression: `key` `operator` (`In`, `NotIn`, `Exists`, `DoesNotExist`) `values`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelectorRequirement {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub key: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub operator: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl LabelSelector {
    /// A selector on exact label values (`matchLabels` only).
    pub fn from_labels(labels: &BTreeMap<String, String>) -> LabelSelector {
        LabelSelector {
            match_labels: labels.clone(),
            ..LabelSelector::default()
        }
    }

    /// Whether `labels` satisfy the selector, with upstream's rules: an empty selector
    /// matches everything; `NotIn` and `DoesNotExist` hold when the key is absent; an
    /// unknown operator matches nothing (upstream rejects the selector, so it selects
    /// nothing rather than everything).
    /// No requirements: selects everything (upstream `Empty()`).
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }

    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let labels_hold = self
            .match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v));
        labels_hold && self.match_expressions.iter().all(|r| r.matches(labels))
    }
}

impl LabelSelectorRequirement {
    /// Whether `labels` satisfy this one expression.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_value(labels.get(&self.key).map(String::as_str))
    }

    /// Whether a key whose value is `value` (`None`: absent) satisfies this expression; for
    /// selectors over something other than a label map (a node's `metadata.name` field).
    pub fn matches_value(&self, value: Option<&str>) -> bool {
        let listed = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator.as_str() {
            "In" => value.is_some_and(listed),
            "NotIn" => value.is_none_or(|v| !listed(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
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
    fn round_trips_upstream_json() {
        let raw = json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["frontend", "edge"]},
                {"key": "canary", "operator": "DoesNotExist"}
            ]
        });
        let s: LabelSelector = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(s.match_labels["app"], "web");
        assert_eq!(s.match_expressions[0].values, ["frontend", "edge"]);
        assert_eq!(serde_json::to_value(&s).unwrap(), raw);
        assert_eq!(
            serde_json::to_value(LabelSelector::default()).unwrap(),
            json!({})
        );
    }

    #[test]
    fn matches_as_upstream_does() {
        let s: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "web"},
            "matchExpressions": [
                {"key": "tier", "operator": "In", "values": ["frontend", "edge"]},
                {"key": "track", "operator": "NotIn", "values": ["canary"]},
                {"key": "owner", "operator": "Exists"},
                {"key": "legacy", "operator": "DoesNotExist"}
            ]
        }))
        .unwrap();
        let good = labels(&[("app", "web"), ("tier", "edge"), ("owner", "x")]);
        assert!(s.matches(&good));
        let mut canary = good.clone();
        canary.insert("track".into(), "canary".into());
        assert!(!s.matches(&canary), "NotIn excludes the listed value");
        let mut stable = good.clone();
        stable.insert("track".into(), "stable".into());
        assert!(s.matches(&stable), "NotIn admits other values");
        let mut legacy = good.clone();
        legacy.insert("legacy".into(), String::new());
        assert!(
            !s.matches(&legacy),
            "DoesNotExist fails even on an empty value"
        );
        assert!(!s.matches(&labels(&[("app", "web"), ("owner", "x")])));
        assert!(!s.matches(&labels(&[("app", "api"), ("tier", "edge"), ("owner", "x")])));

        assert!(LabelSelector::default().matches(&BTreeMap::new()));
        let exact = LabelSelector::from_labels(&labels(&[("app", "web")]));
        assert!(exact.matches(&labels(&[("app", "web"), ("extra", "1")])));
        assert!(!exact.matches(&BTreeMap::new()));
        let odd = LabelSelector {
            match_expressions: vec![LabelSelectorRequirement {
                key: "app".into(),
                operator: "Like".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(!odd.matches(&labels(&[("app", "web")])));
    }
}
