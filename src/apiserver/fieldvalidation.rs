//! `?fieldValidation=Strict|Warn|Ignore`: what happens to fields the server would drop. This
//! server keeps every field a client sends (objects round-trip whole), so the one case it
//! detects is upstream's other one — a key given twice in the same JSON object, where all
//! but the last would be lost: Strict refuses the request (400), Warn answers with a
//! `Warning` header, Ignore (and no parameter) says nothing. Unknown-field detection would
//! need every kind's full schema, which this server does not carry.

use std::collections::BTreeSet;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use crate::api::Status;

/// What to do about duplicated fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldValidation {
    Ignore,
    Warn,
    Strict,
}

impl FieldValidation {
    /// From the query parameter (absent or empty: Ignore).
    pub fn parse(value: Option<&str>) -> Result<FieldValidation, Box<Status>> {
        match value {
            None | Some("") | Some("Ignore") => Ok(FieldValidation::Ignore),
            Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some(other) => Err(Box::new(Status::bad_request(format!(
                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            )))),
        }
    }
}

/// Paths (`.spec.replicas`, `.items[2].name`) of keys that appear twice in one object.
pub fn duplicate_fields(json: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut de = serde_json::Deserializer::from_slice(json);
    // A document that does not parse is refused by the real parse; nothing to report here.
    let _ = Seed {
        path: String::new(),
        found: &mut found,
    }
    .deserialize(&mut de);
    found
}

struct Seed<'a> {
    path: String,
    found: &'a mut Vec<String>,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Seed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let Seed { path, found } = self;
        let mut i = 0usize;
        loop {
            let child = Seed {
                path: format!("{path}[{i}]"),
                found: &mut *found,
            };
            if seq.next_element_seed(child)?.is_none() {
                return Ok(());
            }
            i += 1;
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let Seed { path, found } = self;
        let mut seen = BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let at = format!("{path}.{key}");
            if !seen.insert(key) {
                found.push(at.clone());
            }
            map.next_value_seed(Seed {
                path: at,
                found: &mut *found,
            })?;
        }
        Ok(())
    }
}

/// The `Warning` header value (upstream's format: code 299, agent `-`, quoted text).
pub fn warning(path: &str) -> String {
    let p = path.trim_start_matches('.');
    format!("299 - \"duplicate field \\\"{p}\\\"\"")
}

/// Strict's refusal.
pub fn strict_error(paths: &[String]) -> Box<Status> {
    let list: Vec<String> = paths
        .iter()
        .map(|p| format!("duplicate field {:?}", p.trim_start_matches('.')))
        .collect();
    Box::new(Status::bad_request(format!(
        "strict decoding error: {}",
        list.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn duplicates_are_found_at_any_depth() {
        let doc =
            br#"{"a": 1, "spec": {"replicas": 1, "replicas": 2, "l": [{"x": 1, "x": 2}]}, "a": 3}"#;
        assert_eq!(
            duplicate_fields(doc),
            [".spec.replicas", ".spec.l[0].x", ".a"]
        );
        assert!(duplicate_fields(br#"{"a": {"b": 1}, "b": [1, {"a": 2}]}"#).is_empty());
        assert!(duplicate_fields(b"not json").is_empty());
        assert_eq!(
            FieldValidation::parse(Some("Strict")).unwrap(),
            FieldValidation::Strict
        );
        assert_eq!(
            FieldValidation::parse(None).unwrap(),
            FieldValidation::Ignore
        );
        assert_eq!(
            FieldValidation::parse(Some("strict")).unwrap_err().code,
            400
        );
        assert_eq!(
            warning(".spec.replicas"),
            "299 - \"duplicate field \\\"spec.replicas\\\"\""
        );
    }

    proptest! {
        /// Whatever serde_json writes has no duplicates (it cannot: its maps have unique keys).
        #[test]
        fn serialized_maps_have_no_duplicates(m in proptest::collection::btree_map("[a-c]{1,2}", 0i64..5, 0..6)) {
            let bytes = serde_json::to_vec(&serde_json::json!({"m": m, "list": [m.clone()]})).unwrap();
            prop_assert!(duplicate_fields(&bytes).is_empty());
        }
    }
}
