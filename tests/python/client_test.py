"""The official Kubernetes Python client against rkube's API server.

Run by tests/python_client.rs as `python3 client_test.py http://127.0.0.1:PORT ETCD_URL`
(everything, ending with a compaction), then, against a restarted API server, with a third
argument `expired` (a watch from before the compaction gets 410); prints one line per check
and exits non-zero on the first failure.
"""

import json
import os
import subprocess
import sys
import threading

from kubernetes import client, watch
from kubernetes.client.rest import ApiException


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", flush=True)
        sys.exit(1)
    print(f"ok: {what}", flush=True)


def expect_status(code, fn, what):
    try:
        fn()
    except ApiException as e:
        check(e.status == code, f"{what} -> {code} (got {e.status}: {e.body})")
        return json.loads(e.body)
    check(False, f"{what} -> {code} (it succeeded)")


def main():
    server, etcd = sys.argv[1], sys.argv[2]
    cfg = client.Configuration()
    cfg.host = server
    api = client.ApiClient(cfg)
    core = client.CoreV1Api(api)
    apps = client.AppsV1Api(api)

    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name="py")))
    check(core.read_namespace("py").status.phase == "Active", "namespace created, Active")

    # CRUD and selectors.
    for name, app in [("a", "web"), ("b", "web"), ("c", "db")]:
        core.create_namespaced_config_map(
            "py",
            client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=name, labels={"app": app}),
                data={"k": name},
            ),
        )
    web = core.list_namespaced_config_map("py", label_selector="app=web")
    check(sorted(i.metadata.name for i in web.items) == ["a", "b"], "label selector")
    notweb = core.list_namespaced_config_map("py", label_selector="app notin (web)")
    check([i.metadata.name for i in notweb.items] == ["c"], "set-based selector")
    byname = core.list_namespaced_config_map("py", field_selector="metadata.name=c")
    check([i.metadata.name for i in byname.items] == ["c"], "field selector")
    body = expect_status(
        409,
        lambda: core.create_namespaced_config_map(
            "py", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="a"))
        ),
        "create of an existing name",
    )
    check(body["reason"] == "AlreadyExists", "AlreadyExists reason")
    expect_status(404, lambda: core.read_namespaced_config_map("nope", "py"), "missing object")

    # Patches: merge, strategic, JSON.
    core.patch_namespaced_config_map("a", "py", {"data": {"m": "1"}})
    check(core.read_namespaced_config_map("a", "py").data["m"] == "1", "strategic patch (the default)")
    core.patch_namespaced_config_map(
        "a", "py", {"data": {"merge": "yes"}}, _content_type="application/merge-patch+json"
    )
    check(core.read_namespaced_config_map("a", "py").data["merge"] == "yes", "merge patch")
    core.patch_namespaced_config_map("a", "py", [{"op": "add", "path": "/data/j", "value": "2"}])
    check(core.read_namespaced_config_map("a", "py").data["j"] == "2", "JSON patch")

    # A stale PUT is a 409.
    current = core.read_namespaced_config_map("b", "py")
    stale_rv = current.metadata.resource_version
    current.data["k"] = "changed"
    core.replace_namespaced_config_map("b", "py", current)
    current.metadata.resource_version = stale_rv
    current.data["k"] = "lost update"
    expect_status(409, lambda: core.replace_namespaced_config_map("b", "py", current), "stale PUT")
    check(core.read_namespaced_config_map("b", "py").data["k"] == "changed", "no lost update")

    # Pods: create, bind, patch status.
    pod = client.V1Pod(
        metadata=client.V1ObjectMeta(name="p"),
        spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx")]),
    )
    core.create_namespaced_pod("py", pod)
    binding = client.V1Binding(
        metadata=client.V1ObjectMeta(name="p"),
        target=client.V1ObjectReference(kind="Node", name="node-1"),
    )
    # The server answers a Status, which this client cannot turn into a V1Binding.
    core.create_namespaced_binding("py", binding, _preload_content=False)
    check(core.read_namespaced_pod("p", "py").spec.node_name == "node-1", "binding")
    core.patch_namespaced_pod_status("p", "py", {"status": {"phase": "Running"}})
    check(core.read_namespaced_pod_status("p", "py").status.phase == "Running", "status patch")
    expect_status(
        409, lambda: core.create_namespaced_binding("py", binding, _preload_content=False),
        "binding an already bound pod",
    )

    # Deployments and their scale subresource.
    dep = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels={"app": "web"}),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels={"app": "web"}),
                spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="nginx")]),
            ),
        ),
    )
    apps.create_namespaced_deployment("py", dep)
    apps.patch_namespaced_deployment_scale("web", "py", {"spec": {"replicas": 4}})
    check(apps.read_namespaced_deployment("web", "py").spec.replicas == 4, "scale subresource")

    # PriorityClasses: the system ones from the start; a pod gets its class's value.
    sched = client.SchedulingV1Api(api)
    names = {c.metadata.name for c in sched.list_priority_class().items}
    check({"system-cluster-critical", "system-node-critical"} <= names, "system priority classes")
    sched.create_priority_class(
        client.V1PriorityClass(metadata=client.V1ObjectMeta(name="py-high"), value=500)
    )
    high = sched.read_priority_class("py-high")
    check(high.preemption_policy == "PreemptLowerPriority", "priority class defaulted")
    core.create_namespaced_pod("py", client.V1Pod(
        metadata=client.V1ObjectMeta(name="prio"),
        spec=client.V1PodSpec(priority_class_name="py-high",
                              containers=[client.V1Container(name="c", image="nginx")]),
    ))
    check(core.read_namespaced_pod("prio", "py").spec.priority == 500, "pod priority from its class")

    # Watch: MODIFIED and DELETED arrive; a too-old resourceVersion is a 410.
    start_rv = core.list_namespaced_config_map("py").metadata.resource_version
    events = []

    def watcher():
        w = watch.Watch()
        for ev in w.stream(core.list_namespaced_config_map, "py",
                           resource_version=start_rv, timeout_seconds=10):
            events.append((ev["type"], ev["object"].metadata.name))
            if ev["type"] == "DELETED":
                w.stop()

    # The watch starts at start_rv, so it sees these changes however late it connects.
    t = threading.Thread(target=watcher)
    t.start()
    core.patch_namespaced_config_map("c", "py", {"data": {"w": "1"}})
    core.delete_namespaced_config_map("c", "py")
    t.join(15)
    check(("MODIFIED", "c") in events and ("DELETED", "c") in events, f"watch events {events}")

    # Compact the store; the test then restarts the API server (its watch cache's window
    # starts at its first list, after the compaction) and runs the "expired" phase.
    rev = core.list_namespaced_config_map("py").metadata.resource_version
    subprocess.run(["etcdctl", "--endpoints", etcd, "compaction", rev], check=True,
                   env={**os.environ, "ETCDCTL_API": "3"},
                   stdout=subprocess.DEVNULL)
    print("main phase passed", flush=True)


def expired(core):
    """A watch from a revision older than the API server's window fails with 410."""
    gone = None
    try:
        w = watch.Watch()
        for ev in w.stream(core.list_namespaced_config_map, "py",
                           resource_version="2", timeout_seconds=5):
            if ev["type"] == "ERROR":
                gone = ev["raw_object"].get("code")
                break
    except ApiException as e:
        gone = e.status
    check(gone == 410, f"watch from a compacted revision -> 410 (got {gone})")
    print("all checks passed", flush=True)


if __name__ == "__main__":
    if sys.argv[3:] == ["expired"]:
        cfg = client.Configuration()
        cfg.host = sys.argv[1]
        expired(client.CoreV1Api(client.ApiClient(cfg)))
    else:
        main()
