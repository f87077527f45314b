//! Kubernetes object types and the conventions every component shares: object metadata,
//! the `Status` error object, and timestamps. Depends on nothing else of ours, so the API
//! server, the client library and the controllers all agree on one definition.
//!
//! Objects travel as JSON. Metadata is typed ([`ObjectMeta`]); the rest of an object is kept
//! as JSON so every field a client sends survives a round trip, including ones this version
//! does not model yet.
//!
//! For clients and controllers, the group modules (`core`, `apps`, `coordination`,
//! `discovery`, `rbac`, `authorization`, `scheduling`) type the fields they act on, and keep
//! the rest as JSON in the same way; [`Kind`] ties each type to its REST resource.

pub mod apps;
pub mod authorization;
pub mod coordination;
pub mod core;
pub mod discovery;
pub mod kind;
pub mod meta;
pub mod quantity;
pub mod rbac;
pub mod scheduling;
pub mod selector;
pub mod status;
pub mod time;

pub use self::core::{
    controller_of, owner_references, set_owner_references, Binding, ConfigMap, Endpoints, Event,
    IntOrString, Namespace, Node, ObjectReference, OwnerReference, Pod, PodTemplateSpec,
    ResourceList, Secret, Service, ServiceAccount,
};
pub use apps::{DaemonSet, Deployment, ReplicaSet};
pub use authorization::SelfSubjectAccessReview;
pub use coordination::Lease;
pub use discovery::EndpointSlice;
pub use kind::{to_json, Kind, ListMeta, ObjectList};
pub use meta::ObjectMeta;
pub use rbac::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
pub use scheduling::PriorityClass;
pub use selector::{LabelSelector, LabelSelectorRequirement};
pub use status::{fail, Status, StatusCause, StatusDetails};
