//! Kubernetes object types and the conventions every component shares: object metadata,
//! the `Status` error object, and timestamps. Depends on nothing else of ours, so the API
//! server, the client library and the controllers all agree on one definition.
//!
//! Objects travel as JSON. Metadata is typed ([`ObjectMeta`]); the rest of an object is kept
//! as JSON so every field a client sends survives a round trip, including ones this version
//! does not model yet.

pub mod meta;
pub mod status;
pub mod time;

pub use meta::ObjectMeta;
pub use status::{fail, Status, StatusCause, StatusDetails};
