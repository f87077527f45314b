//! The `Status` object: how every API error is reported (kubectl prints its `message`).

use serde::{Deserialize, Serialize};

/// A `meta/v1` Status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub kind: String,
    pub api_version: String,
    pub metadata: serde_json::Value,
    pub status: String,
    pub message: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<StatusDetails>,
    pub code: u16,
}

/// Which object a Status is about.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusDetails {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<StatusCause>,
}

/// One reason behind an Invalid error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusCause {
    pub reason: String,
    pub message: String,
    pub field: String,
}

impl Status {
    /// A failure with `code`, machine-readable `reason` and human `message`.
    pub fn failure(code: u16, reason: &str, message: String) -> Status {
        Status {
            kind: "Status".into(),
            api_version: "v1".into(),
            metadata: serde_json::json!({}),
            status: "Failure".into(),
            message,
            reason: reason.into(),
            details: None,
            code,
        }
    }

    /// Attaches the object the failure is about.
    pub fn about(mut self, group: &str, resource: &str, name: &str) -> Status {
        self.details = Some(StatusDetails {
            name: name.into(),
            group: group.into(),
            kind: resource.into(),
            causes: Vec::new(),
        });
        self
    }

    /// `<resource> "<name>" not found` (404).
    pub fn not_found(group: &str, resource: &str, name: &str) -> Status {
        let what = qualified(group, resource);
        Status::failure(404, "NotFound", format!("{what} \"{name}\" not found"))
            .about(group, resource, name)
    }

    /// `<resource> "<name>" already exists` (409).
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Status {
        let what = qualified(group, resource);
        Status::failure(
            409,
            "AlreadyExists",
            format!("{what} \"{name}\" already exists"),
        )
        .about(group, resource, name)
    }

    /// A stale `resourceVersion` (409), in Kubernetes' words.
    pub fn conflict(group: &str, resource: &str, name: &str) -> Status {
        let what = qualified(group, resource);
        let message = format!("Operation cannot be fulfilled on {what} \"{name}\": the object has been modified; please apply your changes to the latest version and try again");
        Status::failure(409, "Conflict", message).about(group, resource, name)
    }

    /// An object that fails validation (422) on `field`.
    pub fn invalid(kind: &str, name: &str, field: &str, problem: &str) -> Status {
        let message =
            format!("{kind} \"{name}\" is invalid: {field}: Invalid value: \"{name}\": {problem}");
        let mut s = Status::failure(422, "Invalid", message);
        s.details = Some(StatusDetails {
            name: name.into(),
            group: String::new(),
            kind: kind.into(),
            causes: vec![StatusCause {
                reason: "FieldValueInvalid".into(),
                message: format!("Invalid value: \"{name}\": {problem}"),
                field: field.into(),
            }],
        });
        s
    }

    /// `<resource> "<name>" is forbidden: <why>` (403), as an admission plugin refuses.
    pub fn forbidden(group: &str, resource: &str, name: &str, why: &str) -> Status {
        let what = qualified(group, resource);
        let message = format!("{what} \"{name}\" is forbidden: {why}");
        Status::failure(403, "Forbidden", message).about(group, resource, name)
    }

    /// A malformed request (400).
    pub fn bad_request(message: String) -> Status {
        Status::failure(400, "BadRequest", message)
    }
}

/// A failed result carrying a Status (boxed: errors are the rare path, results stay small).
pub fn fail<T>(s: Status) -> Result<T, Box<Status>> {
    Err(Box::new(s))
}

fn qualified(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_read_as_kubernetes_writes_them() {
        assert_eq!(
            Status::not_found("", "pods", "nope").message,
            "pods \"nope\" not found"
        );
        assert_eq!(
            Status::already_exists("apps", "deployments", "web").message,
            "deployments.apps \"web\" already exists"
        );
        let v = serde_json::to_value(Status::conflict("", "configmaps", "c")).unwrap();
        assert_eq!(v["kind"], "Status");
        assert_eq!(v["code"], 409);
        assert_eq!(v["reason"], "Conflict");
        assert_eq!(v["details"]["kind"], "configmaps");
        let f = Status::forbidden("scheduling.k8s.io", "priorityclasses", "x", "no");
        assert_eq!(
            (f.code, f.reason.as_str(), f.message.as_str()),
            (
                403,
                "Forbidden",
                "priorityclasses.scheduling.k8s.io \"x\" is forbidden: no"
            )
        );
    }
}
