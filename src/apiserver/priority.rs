//! Upstream's Priority admission plugin (`plugin/pkg/admission/priority`) and the
//! PriorityClass rules upstream's registry keeps beside it: a new pod's `spec.priority` and
//! `spec.preemptionPolicy` come from the class it names (or from the global default class),
//! never from the client; an update keeps what admission set; only one class may be the
//! global default; the system classes exist from the start and cannot be deleted.
//!
//! Why here: the scheduler orders and preempts by `spec.priority` and
//! `spec.preemptionPolicy` alone, so the API server is the one place a class name becomes a
//! number, once, when the pod is created.
//!
//! Pure functions over JSON and typed classes, with upstream's wording; the handler reads
//! the classes (watch cache, else the store) and calls in.

use serde_json::{json, Value};

use super::resources::Resource;
use crate::api::scheduling::{
    system_priority_classes, PriorityClass, DEFAULT_PRIORITY, PREEMPT_LOWER_PRIORITY,
};
use crate::api::{to_json, Status};

/// The API group of PriorityClass.
pub const GROUP: &str = "scheduling.k8s.io";
/// The resource name of PriorityClass.
pub const PLURAL: &str = "priorityclasses";

/// Whether `r` is the PriorityClass resource.
pub fn is_priority_class(r: &Resource) -> bool {
    (r.group, r.plural) == (GROUP, PLURAL)
}

/// Whether `r` is the Pod resource.
pub fn is_pod(r: &Resource) -> bool {
    (r.group, r.plural) == ("", "pods")
}

/// The system classes as the API server creates them at start-up (upstream's
/// `scheduling/bootstrap-system-priority-classes` post-start hook).
pub fn builtin_classes() -> Vec<Value> {
    system_priority_classes().iter().map(to_json).collect()
}

/// The 403 for deleting a system class (upstream's PriorityClass REST `Delete`), if `name`
/// is one.
pub fn undeletable(r: &Resource, name: &str) -> Option<Status> {
    let system = system_priority_classes()
        .iter()
        .any(|c| c.metadata.name == name);
    (is_priority_class(r) && system).then(|| {
        let why = "this is a system priority class and cannot be deleted";
        Status::forbidden(GROUP, PLURAL, name, why)
    })
}

/// What a new pod asks for in `spec.priorityClassName`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// A class by name.
    Class(&'a str),
    /// No name (absent or empty): the global default class, if any.
    Default,
    /// Not a string: left for validation to refuse, as upstream's decoding does first.
    Malformed,
}

/// The class name a new pod asks for.
pub fn requested(pod: &Value) -> Request<'_> {
    match pod.get("spec").and_then(|s| s.get("priorityClassName")) {
        None | Some(Value::Null) => Request::Default,
        Some(Value::String(name)) if name.is_empty() => Request::Default,
        Some(Value::String(name)) => Request::Class(name),
        Some(_) => Request::Malformed,
    }
}

/// The class that decides a new pod's priority.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// The class the pod named.
    Named(PriorityClass),
    /// The pod named none: the global default class ([`default_class`]), or none.
    Default(Option<PriorityClass>),
}

/// The 403 for a pod naming a class that does not exist.
pub fn missing_class(pod: &str, class: &str) -> Status {
    let why = format!("no PriorityClass with name {class} was found");
    Status::forbidden("", "pods", pod, &why)
}

/// The global default class: of the classes marked `globalDefault`, the one with the lowest
/// value (two can exist after a race between two API servers); on a tie the first, as
/// upstream's lister (name order) gives them.
pub fn default_class(classes: &[PriorityClass]) -> Option<&PriorityClass> {
    classes
        .iter()
        .filter(|c| c.global_default)
        .fold(None, |best, c| match best {
            Some(b) if b.value <= c.value => Some(b),
            _ => Some(c),
        })
}

/// A pod field as admission reads it: absent, of the type expected, or of another type
/// (which validation refuses with a 400, so admission leaves the pod alone).
enum Given<T> {
    Absent,
    Value(T),
    Malformed,
}

fn given<T>(v: Option<&Value>, read: impl Fn(&Value) -> Option<T>) -> Given<T> {
    match v {
        None | Some(Value::Null) => Given::Absent,
        Some(v) => read(v).map_or(Given::Malformed, Given::Value),
    }
}

/// Upstream's `admitPod` on create: sets `spec.priority` (and `spec.preemptionPolicy`) from
/// `source`, and `spec.priorityClassName` when the global default class decided. A priority
/// or preemption policy the client set that differs from the computed one is a 403.
pub fn admit_new_pod(pod: &mut Value, name: &str, source: &Source) -> Result<(), Box<Status>> {
    let (class_name, priority, policy) = match source {
        Source::Named(pc) => (None, pc.value, pc.preemption_policy.clone()),
        Source::Default(Some(pc)) => (
            Some(pc.metadata.name.clone()),
            pc.value,
            pc.preemption_policy.clone(),
        ),
        Source::Default(None) => (None, DEFAULT_PRIORITY, Some(PREEMPT_LOWER_PRIORITY.into())),
    };
    let Some(spec) = pod.get_mut("spec").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    let as_i32 = |v: &Value| v.as_i64().and_then(|n| i32::try_from(n).ok());
    let given_priority = match given(spec.get("priority"), as_i32) {
        Given::Malformed => return Ok(()),
        Given::Absent => None,
        Given::Value(p) => Some(p),
    };
    let as_text = |v: &Value| v.as_str().map(str::to_string);
    let given_policy = match given(spec.get("preemptionPolicy"), as_text) {
        Given::Malformed => return Ok(()),
        Given::Absent => None,
        Given::Value(p) => Some(p),
    };
    let refuse = |why: String| Err(Box::new(Status::forbidden("", "pods", name, &why)));
    if let Some(p) = given_priority.filter(|p| *p != priority) {
        return refuse(format!("the integer value of priority ({p}) must not be provided in pod spec; priority admission controller computed {priority} from the given PriorityClass name"));
    }
    if let (Some(want), Some(p)) = (&policy, &given_policy) {
        if want != p {
            return refuse(format!("the string value of PreemptionPolicy ({p}) must not be provided in pod spec; priority admission controller computed {want} from the given PriorityClass name"));
        }
    }
    if let Some(class) = class_name {
        spec.insert("priorityClassName".into(), json!(class));
    }
    spec.insert("priority".into(), json!(priority));
    if let Some(p) = policy {
        spec.insert("preemptionPolicy".into(), json!(p));
    }
    Ok(())
}

/// Upstream's `admitPod` on update: a pod written back without `spec.priority` or
/// `spec.preemptionPolicy` keeps the stored ones (admission set them; validation then
/// refuses any other change to them, as to the rest of a pod's spec).
pub fn keep_on_update(new: &mut Value, old: &Value) {
    let Some(spec) = new.get_mut("spec").and_then(Value::as_object_mut) else {
        return;
    };
    for field in ["priority", "preemptionPolicy"] {
        let absent = spec.get(field).is_none_or(Value::is_null);
        let stored = old["spec"].get(field).filter(|v| !v.is_null());
        if let (true, Some(v)) = (absent, stored) {
            spec.insert(field.into(), v.clone());
        }
    }
}

/// Upstream's `validatePriorityClass`: the 403 for marking `pc` as the global default while
/// another class is (`creating`: any existing default counts, even one of the same name).
pub fn second_default(pc: &Value, creating: bool, classes: &[PriorityClass]) -> Option<Status> {
    if pc["globalDefault"] != true {
        return None;
    }
    let name = pc["metadata"]["name"].as_str().unwrap_or("");
    let current = default_class(classes)?;
    if !creating && current.metadata.name == name {
        return None;
    }
    let why = format!(
        "PriorityClass {} is already marked as default. Only one default can exist",
        current.metadata.name
    );
    Some(Status::forbidden(GROUP, PLURAL, name, &why))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::scheduling::PREEMPT_NEVER;
    use crate::apiserver::resources;

    fn class(name: &str, value: i32, default: bool, policy: &str) -> PriorityClass {
        let mut pc = PriorityClass {
            value,
            global_default: default,
            preemption_policy: Some(policy.into()),
            ..Default::default()
        };
        pc.metadata.name = name.into();
        pc
    }

    fn pod(spec: Value) -> Value {
        json!({"metadata": {"name": "p"}, "spec": spec})
    }

    #[test]
    fn a_named_class_sets_priority_and_policy() {
        let mut p = pod(json!({"priorityClassName": "high", "containers": []}));
        assert_eq!(requested(&p), Request::Class("high"));
        let high = Source::Named(class("high", 1000, false, PREEMPT_NEVER));
        admit_new_pod(&mut p, "p", &high).unwrap();
        assert_eq!(p["spec"]["priority"], 1000);
        assert_eq!(p["spec"]["preemptionPolicy"], "Never");
        assert_eq!(p["spec"]["priorityClassName"], "high");
        // Admitting again (a retried write) is a no-op: the values now match.
        let again = p.clone();
        admit_new_pod(&mut p, "p", &high).unwrap();
        assert_eq!(p, again);
    }

    #[test]
    fn without_a_class_the_default_class_or_zero_decides() {
        let mut p = pod(json!({"containers": []}));
        assert_eq!(requested(&p), Request::Default);
        admit_new_pod(&mut p, "p", &Source::Default(None)).unwrap();
        assert_eq!(p["spec"]["priority"], 0);
        assert_eq!(p["spec"]["preemptionPolicy"], "PreemptLowerPriority");
        assert_eq!(p["spec"].get("priorityClassName"), None);

        let mut q = pod(json!({"priorityClassName": "", "containers": []}));
        assert_eq!(requested(&q), Request::Default);
        let batch = class("batch", -5, true, PREEMPT_NEVER);
        admit_new_pod(&mut q, "q", &Source::Default(Some(batch))).unwrap();
        assert_eq!(q["spec"]["priorityClassName"], "batch");
        assert_eq!(q["spec"]["priority"], -5);
        assert_eq!(q["spec"]["preemptionPolicy"], "Never");
    }

    #[test]
    fn a_client_set_priority_or_policy_must_match() {
        let mut p = pod(json!({"priorityClassName": "high", "priority": 7}));
        let high = Source::Named(class("high", 1000, false, PREEMPT_LOWER_PRIORITY));
        let err = admit_new_pod(&mut p, "p", &high).unwrap_err();
        assert_eq!((err.code, err.reason.as_str()), (403, "Forbidden"));
        assert_eq!(err.message, "pods \"p\" is forbidden: the integer value of priority (7) must not be provided in pod spec; priority admission controller computed 1000 from the given PriorityClass name");
        let mut same = pod(json!({"priority": 1000, "preemptionPolicy": "PreemptLowerPriority"}));
        admit_new_pod(&mut same, "p", &high).unwrap();
        let mut never = pod(json!({"preemptionPolicy": "Never"}));
        let err = admit_new_pod(&mut never, "p", &Source::Default(None)).unwrap_err();
        assert_eq!(err.message, "pods \"p\" is forbidden: the string value of PreemptionPolicy (Never) must not be provided in pod spec; priority admission controller computed PreemptLowerPriority from the given PriorityClass name");
    }

    #[test]
    fn fields_of_the_wrong_type_are_left_for_validation() {
        for spec in [
            json!({"priority": "high"}),
            json!({"priority": 3_000_000_000_i64}),
            json!({"preemptionPolicy": 1}),
        ] {
            let mut p = pod(spec.clone());
            admit_new_pod(&mut p, "p", &Source::Default(None)).unwrap();
            assert_eq!(p["spec"], spec, "untouched");
        }
        let odd = pod(json!({"priorityClassName": 5}));
        assert_eq!(requested(&odd), Request::Malformed);
        let mut no_spec = json!({"metadata": {"name": "p"}, "spec": 5});
        admit_new_pod(&mut no_spec, "p", &Source::Default(None)).unwrap();
        assert_eq!(requested(&json!([])), Request::Default);
        assert_eq!(
            missing_class("p", "nope").message,
            "pods \"p\" is forbidden: no PriorityClass with name nope was found"
        );
    }

    #[test]
    fn updates_keep_what_admission_set() {
        let old = pod(json!({"priority": 1000, "preemptionPolicy": "Never"}));
        let mut new = pod(json!({"priority": null}));
        keep_on_update(&mut new, &old);
        assert_eq!(new["spec"], old["spec"]);
        let mut changed = pod(json!({"priority": 5}));
        keep_on_update(&mut changed, &old);
        assert_eq!(
            changed["spec"]["priority"], 5,
            "left for validation to refuse"
        );
        let mut odd = json!({"spec": []});
        keep_on_update(&mut odd, &json!("not a pod"));
        assert_eq!(odd, json!({"spec": []}));
    }

    #[test]
    fn one_global_default_at_most() {
        let classes = [
            class("a", 10, true, PREEMPT_LOWER_PRIORITY),
            class("b", 5, true, PREEMPT_LOWER_PRIORITY),
            class("c", 5, true, PREEMPT_LOWER_PRIORITY),
            class("d", 1, false, PREEMPT_LOWER_PRIORITY),
        ];
        assert_eq!(default_class(&classes).unwrap().metadata.name, "b");
        assert_eq!(default_class(&classes[3..]), None);
        let new = json!({"metadata": {"name": "e"}, "globalDefault": true});
        let err = second_default(&new, true, &classes).unwrap();
        assert_eq!(err.code, 403);
        assert_eq!(err.message, "priorityclasses.scheduling.k8s.io \"e\" is forbidden: PriorityClass b is already marked as default. Only one default can exist");
        assert!(second_default(&new, true, &classes[3..]).is_none());
        let not_default = json!({"metadata": {"name": "e"}, "globalDefault": false});
        assert!(second_default(&not_default, true, &classes).is_none());
        // Updating the default class itself is fine; updating another to default is not.
        let b = json!({"metadata": {"name": "b"}, "globalDefault": true});
        assert!(second_default(&b, false, &classes).is_none());
        assert!(second_default(&b, true, &classes).is_some());
        let a = json!({"metadata": {"name": "a"}, "globalDefault": true});
        assert!(second_default(&a, false, &classes).is_some());
    }

    #[test]
    fn system_classes_are_built_in_and_undeletable() {
        let pcs = resources::find(GROUP, "v1", PLURAL).unwrap();
        assert!(is_priority_class(pcs) && !is_pod(pcs));
        let err = undeletable(pcs, "system-node-critical").unwrap();
        assert_eq!(err.message, "priorityclasses.scheduling.k8s.io \"system-node-critical\" is forbidden: this is a system priority class and cannot be deleted");
        assert!(undeletable(pcs, "high").is_none());
        let pods = resources::find("", "v1", "pods").unwrap();
        assert!(undeletable(pods, "system-node-critical").is_none());
        let built = builtin_classes();
        assert_eq!(built.len(), 2);
        assert_eq!(built[1]["metadata"]["name"], "system-cluster-critical");
        assert_eq!(built[1]["value"], 2_000_000_000);
        assert_eq!(built[1]["kind"], "PriorityClass");
    }
}
