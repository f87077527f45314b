//! What every typed object shares: the [`Kind`] trait (group, version, kind, resource name and
//! scope as constants, so a client builds URLs and `apiVersion`/`kind` from the type alone),
//! the `kind!` macro that implements it, and the generic list shape ([`ObjectList`]; watch
//! events are parsed by the client, `crate::client::watch`).
//!
//! Conventions of the typed structs in `core`, `apps` and the other group modules:
//! - Field names are Kubernetes' JSON names; every struct keeps the fields it does not model in
//!   `extra` (`#[serde(flatten)]`), so reading and writing back an object loses nothing,
//!   including `apiVersion`/`kind` and fields newer than this code.
//! - Optional fields are omitted when empty, as Go's `omitempty` does, so a `Default` object
//!   serializes to `{"metadata":{}}`. Fields Kubernetes always writes and whose zero value
//!   means something (`ready: false`, `restartCount: 0`, a DaemonSet's counters) are always
//!   written too.
//! - The two normalisations: `null` reads as absent (Go writes `null` for unset timestamps such
//!   as `lastProbeTime`), and an empty `spec`/`status` (`"status": {}`) is not written back.
//!   Kubernetes treats both pairs as the same object.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::ObjectMeta;

/// A top-level API type: the constants locate its REST resource, the accessors reach the
/// metadata every object has.
pub trait Kind: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {
    /// API group; `""` for the core group.
    const GROUP: &'static str;
    /// API version within the group (`"v1"`).
    const VERSION: &'static str;
    /// The `kind` field (`"Pod"`).
    const KIND: &'static str;
    /// The resource name in URLs (`"pods"`).
    const PLURAL: &'static str;
    /// Whether objects live in a namespace (URLs then carry `/namespaces/{ns}/`).
    const NAMESPACED: bool;

    fn metadata(&self) -> &ObjectMeta;
    fn metadata_mut(&mut self) -> &mut ObjectMeta;

    /// The `apiVersion` field: `"v1"` for the core group, `"apps/v1"` otherwise.
    fn api_version() -> String {
        if Self::GROUP.is_empty() {
            Self::VERSION.to_string()
        } else {
            format!("{}/{}", Self::GROUP, Self::VERSION)
        }
    }
}

/// Implements [`Kind`] for a struct with a `metadata: ObjectMeta` field:
/// `kind!(Pod, "", "v1", "Pod", "pods", true)` (type, group, version, kind, plural,
/// namespaced). Exported so crates outside this one can type their own resources.
#[macro_export]
macro_rules! kind {
    ($t:ty, $group:expr, $version:expr, $kind:expr, $plural:expr, $namespaced:expr) => {
        impl $crate::api::kind::Kind for $t {
            const GROUP: &'static str = $group;
            const VERSION: &'static str = $version;
            const KIND: &'static str = $kind;
            const PLURAL: &'static str = $plural;
            const NAMESPACED: bool = $namespaced;

            fn metadata(&self) -> &$crate::api::ObjectMeta {
                &self.metadata
            }

            fn metadata_mut(&mut self) -> &mut $crate::api::ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

/// Serializes `obj` with `apiVersion` and `kind` set from its type. Typed objects keep
/// whatever `apiVersion`/`kind` they were read with in `extra`; this overwrites them, so an
/// object built in code (or read from a list, whose items carry neither) is complete.
///
/// Panics only if `K`'s serialization is not a JSON object, which no type in this module
/// allows (every kind is a struct with string-keyed maps).
pub fn to_json<K: Kind>(obj: &K) -> Value {
    let mut v = serde_json::to_value(obj).expect("a Kind serializes to JSON");
    let map = v
        .as_object_mut()
        .expect("a Kind serializes to a JSON object");
    map.insert("apiVersion".into(), Value::String(K::api_version()));
    map.insert("kind".into(), Value::String(K::KIND.into()));
    v
}

/// `metadata` of a list (`meta/v1` ListMeta).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListMeta {
    /// The store revision the list was read at; a watch resumes from it.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
    /// Token for the next page; empty on the last page.
    #[serde(rename = "continue", default, skip_serializing_if = "String::is_empty")]
    pub continue_: String,
    /// How many items the remaining pages hold, when the server knows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remaining_item_count: Option<i64>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// A list response (`PodList`, `DeploymentList`, ...). `extra` keeps the list's own
/// `apiVersion`/`kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
// `deserialize_with` hides `K` from serde's bound inference, so the bound is spelled out.
#[serde(bound(deserialize = "K: Deserialize<'de>"))]
pub struct ObjectList<K> {
    #[serde(default)]
    pub metadata: ListMeta,
    /// Always written (`"items": []`), as the API server does: clients index into it.
    #[serde(default, deserialize_with = "null_as_default")]
    pub items: Vec<K>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

// By hand: a derive would require `K: Default`, which an empty list does not need.
impl<K> Default for ObjectList<K> {
    fn default() -> Self {
        ObjectList {
            metadata: ListMeta::default(),
            items: Vec::new(),
            extra: BTreeMap::new(),
        }
    }
}

/// `skip_serializing_if` for nested structs: omit them when nothing in them is set.
pub(crate) fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// `deserialize_with` for fields Go writes as `null` when unset but never omits (an
/// EndpointSlice's `endpoints`, a Role's `rules`, a list's `items`): reads `null` as empty.
/// Pair it with `#[serde(default)]` for the absent case.
pub(crate) fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A minimal kind defined here so these tests do not depend on the group modules.
    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    struct Widget {
        #[serde(default)]
        metadata: ObjectMeta,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        size: String,
        #[serde(flatten)]
        extra: BTreeMap<String, Value>,
    }
    crate::kind!(Widget, "example.com", "v1beta1", "Widget", "widgets", true);

    #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
    struct Gadget {
        #[serde(default)]
        metadata: ObjectMeta,
    }
    crate::kind!(Gadget, "", "v1", "Gadget", "gadgets", false);

    #[test]
    fn api_version_joins_group_and_version_except_for_core() {
        assert_eq!(Widget::api_version(), "example.com/v1beta1");
        assert_eq!(Gadget::api_version(), "v1");
        assert_eq!((Widget::PLURAL, Widget::NAMESPACED), ("widgets", true));
        assert_eq!((Gadget::KIND, Gadget::NAMESPACED), ("Gadget", false));
    }

    #[test]
    fn to_json_overwrites_api_version_and_kind() {
        let w: Widget = serde_json::from_value(json!({
            "apiVersion": "stale/v0", "kind": "Stale", "metadata": {"name": "w"}, "size": "L"
        }))
        .unwrap();
        assert_eq!(
            to_json(&w),
            json!({"apiVersion": "example.com/v1beta1", "kind": "Widget",
                   "metadata": {"name": "w"}, "size": "L"})
        );
        let mut g = Gadget::default();
        g.metadata_mut().name = "g".into();
        assert_eq!(g.metadata().name, "g");
        assert_eq!(
            to_json(&g),
            json!({"apiVersion": "v1", "kind": "Gadget", "metadata": {"name": "g"}})
        );
    }

    #[test]
    fn lists_round_trip_and_name_their_kind() {
        let raw = json!({
            "apiVersion": "example.com/v1beta1", "kind": "WidgetList",
            "metadata": {"resourceVersion": "42", "continue": "tok", "remainingItemCount": 3},
            "items": [{"metadata": {"name": "a"}, "size": "S"}]
        });
        let list: ObjectList<Widget> = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(list.metadata.resource_version, "42");
        assert_eq!(list.metadata.continue_, "tok");
        assert_eq!(list.metadata.remaining_item_count, Some(3));
        assert_eq!(list.items[0].size, "S");
        assert_eq!(serde_json::to_value(&list).unwrap(), raw);

        let null_items: ObjectList<Widget> =
            serde_json::from_value(json!({"metadata": {}, "items": null})).unwrap();
        assert!(null_items.items.is_empty());
    }
}
