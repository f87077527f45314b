//! Events: what a component tells people about what it did (`kubectl describe`,
//! `kubectl get events`). Recording never blocks the caller and never fails it: an event is
//! posted in the background, and when too many are already on their way, new ones are
//! dropped (upstream's recorder drops under pressure too).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use super::{Api, Client};
use crate::api::core::{Event, EventSource, ObjectReference};
use crate::api::time::rfc3339;
use crate::api::Kind;

/// Events being posted at once; beyond this new ones are dropped.
pub const MAX_EVENTS_IN_FLIGHT: usize = 64;
/// Longest event message kept (upstream truncates at 1 KiB).
pub const MAX_EVENT_MESSAGE_BYTES: usize = 1024;

/// Posts events on behalf of one component; cheap to clone.
#[derive(Clone)]
pub struct Recorder {
    client: Client,
    component: String,
    host: String,
    in_flight: Arc<AtomicUsize>,
    sequence: Arc<AtomicU64>,
}

/// A reference to `obj` for an event's `involvedObject`.
pub fn reference_to<K: Kind>(obj: &K) -> ObjectReference {
    let m = obj.metadata();
    ObjectReference {
        api_version: K::api_version(),
        kind: K::KIND.to_string(),
        namespace: m.namespace.clone(),
        name: m.name.clone(),
        uid: m.uid.clone(),
        resource_version: m.resource_version.clone(),
        ..ObjectReference::default()
    }
}

fn truncate(message: &str) -> String {
    if message.len() <= MAX_EVENT_MESSAGE_BYTES {
        return message.to_string();
    }
    let mut end = MAX_EVENT_MESSAGE_BYTES;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message[..end].to_string()
}

impl Recorder {
    pub fn new(client: &Client, component: &str, host: &str) -> Recorder {
        Recorder {
            client: client.clone(),
            component: component.to_string(),
            host: host.to_string(),
            in_flight: Arc::new(AtomicUsize::new(0)),
            sequence: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The event as it would be posted now.
    pub fn build(&self, about: ObjectReference, type_: &str, reason: &str, message: &str) -> Event {
        let now_ms = self.client.clock().wall_unix_ms();
        let seq = self.sequence.fetch_add(1, Ordering::Relaxed);
        let mut e = Event::default();
        // Unique per recorder: the object's name, the time and a sequence number.
        e.metadata.name = format!("{}.{:x}{:04x}", about.name, now_ms, seq & 0xffff);
        e.metadata.namespace = if about.namespace.is_empty() {
            "default".to_string()
        } else {
            about.namespace.clone()
        };
        e.involved_object = about;
        e.type_ = type_.to_string();
        e.reason = reason.to_string();
        e.message = truncate(message);
        e.count = Some(1);
        e.first_timestamp = Some(rfc3339(now_ms));
        e.last_timestamp = e.first_timestamp.clone();
        e.source = Some(EventSource {
            component: self.component.clone(),
            host: self.host.clone(),
            ..EventSource::default()
        });
        e.reporting_component = self.component.clone();
        e.reporting_instance = self.host.clone();
        e
    }

    /// Posts an event in the background (or drops it when too many are in flight).
    pub fn record(&self, about: ObjectReference, type_: &str, reason: &str, message: &str) {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_EVENTS_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            tracing::debug!(reason, "event dropped: too many in flight");
            return;
        }
        let e = self.build(about, type_, reason, message);
        let (client, in_flight) = (self.client.clone(), self.in_flight.clone());
        crate::platform::task::spawn(async move {
            let api: Api<Event> = Api::namespaced(&client, &e.metadata.namespace);
            if let Err(err) = api.create(&e).await {
                tracing::debug!(error = %err, reason = e.reason, "event not recorded");
            }
            in_flight.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::Pod;
    use crate::client::ClientConfig;
    use crate::platform::time::Clock;

    #[test]
    fn events_name_their_object_and_source() {
        let client =
            Client::new(&ClientConfig::insecure("http://127.0.0.1:1"), Clock::new()).unwrap();
        let r = Recorder::new(&client, "default-scheduler", "host-1");
        let mut pod = Pod::default();
        pod.metadata.name = "web-1".into();
        pod.metadata.namespace = "shop".into();
        let e = r.build(reference_to(&pod), "Normal", "Scheduled", &"x".repeat(5000));
        assert_eq!(e.involved_object.kind, "Pod");
        assert_eq!(e.metadata.namespace, "shop");
        assert!(e.metadata.name.starts_with("web-1."));
        assert_eq!(e.message.len(), MAX_EVENT_MESSAGE_BYTES);
        assert_eq!(e.source.unwrap().component, "default-scheduler");
        let again = r.build(reference_to(&pod), "Normal", "Scheduled", "m");
        assert_ne!(again.metadata.name, e.metadata.name, "names are unique");
    }
}
