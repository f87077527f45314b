//! The API server's secure port with the real kubectl and the client library: generated CA
//! and certificates, admin.kubeconfig (client certificate in system:masters), static bearer
//! tokens, ServiceAccount tokens from `kubectl create token`, RBAC denials and grants,
//! `kubectl auth can-i`, anonymous access to public paths only, 401 for bad tokens, node
//! restriction, and the refusal of a non-loopback insecure port.

#![cfg(not(madsim))]

mod common;

use std::path::Path;
use std::process::Command;

use common::apiserver::{
    output_text as text, store_and_api_server, ApiServer,
    Auth::{self, Token},
};
use common::{free_port, wait_until, RKUBE};
use rkube::api::core::{Namespace, Node};
use rkube::client::{Api, Client, ClientConfig, ListParams, Patch};
use rkube::platform::time::Clock;
use serde_json::json;

const TOKENS: &str = "alice-token,alice,u-alice
node1-token,system:node:n1,u-n1,\"system:nodes\"
";

/// The API server on its secure port only, with [`TOKENS`] as static bearer tokens.
fn secure(store_url: &str, dir: &Path) -> ApiServer {
    let tokens = dir.join("tokens.csv");
    std::fs::write(&tokens, TOKENS).expect("token file");
    let tokens = tokens.to_str().expect("utf-8 path");
    ApiServer::start_secure(store_url, dir, &["--token-auth-file", tokens])
}

/// rkube's client on the secure port, trusting the server's CA, with `token` if any.
fn client(api: &ApiServer, token: Option<&str>) -> Client {
    let ca = std::fs::read_to_string(api.data_dir().join("pki/ca.crt")).expect("CA");
    let cfg = ClientConfig {
        servers: vec![api.url()],
        bearer_token: token.map(str::to_string),
        ca_pem: Some(ca),
        request_timeout_ms: 5_000,
        ..Default::default()
    };
    Client::new(&cfg, Clock::new()).expect("client")
}

const ALICE: Auth = Token("alice-token");

#[test]
fn the_secure_port_authenticates_and_authorizes() {
    let Some((_store, api)) = store_and_api_server(secure) else {
        return;
    };

    // The admin (client certificate, system:masters) may do anything.
    let names = api.ok(&["get", "namespaces", "-o", "name"]);
    assert!(names.contains("namespace/kube-system"), "{names}");
    assert!(
        api.data_dir().join("pki/ca.key").exists()
            && api.data_dir().join("scheduler.kubeconfig").exists()
    );
    // Keys and kubeconfigs (which carry keys) are readable by their owner only.
    use std::os::unix::fs::PermissionsExt;
    for f in [
        "pki/ca.key",
        "pki/sa.key",
        "pki/apiserver.key",
        "admin.kubeconfig",
    ] {
        let mode = std::fs::metadata(api.data_dir().join(f))
            .expect("file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    let cert = std::fs::metadata(api.data_dir().join("pki/ca.crt"))
        .unwrap()
        .permissions()
        .mode();
    assert_ne!(cert & 0o044, 0, "certificates stay readable");

    // A user with a token but no role is denied, with upstream's message.
    let denied = api.fails_as(ALICE, &["get", "pods", "-n", "default"]);
    assert!(
        denied.contains("pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\""),
        "{denied}"
    );
    let bad = api.fails_as(Token("no-such-token"), &["get", "pods"]);
    assert!(bad.contains("Unauthorized"), "{bad}");

    // A RoleBinding grants alice read access in one namespace only.
    api.ok(&[
        "create",
        "rolebinding",
        "alice-view",
        "-n",
        "default",
        "--clusterrole=view",
        "--user=alice",
    ]);
    let listed = api.kubectl_as(ALICE, &["get", "pods", "-n", "default"]);
    assert!(listed.status.success(), "{}", text(&listed));
    api.fails_as(ALICE, &["get", "pods", "-n", "kube-system"]);
    api.fails_as(ALICE, &["get", "secrets", "-n", "default"]);
    let can = api.kubectl_as(ALICE, &["auth", "can-i", "list", "pods", "-n", "default"]);
    assert_eq!(
        String::from_utf8_lossy(&can.stdout).trim(),
        "yes",
        "{}",
        text(&can)
    );
    let cannot = api.kubectl_as(ALICE, &["auth", "can-i", "delete", "pods", "-n", "default"]);
    assert_eq!(
        String::from_utf8_lossy(&cannot.stdout).trim(),
        "no",
        "{}",
        text(&cannot)
    );

    // ServiceAccount tokens: issued by `kubectl create token`, denied without a role, and
    // revoked with the account.
    api.ok(&["create", "serviceaccount", "robot", "-n", "default"]);
    let token = api
        .ok(&["create", "token", "robot", "-n", "default"])
        .trim()
        .to_string();
    let sa = api.fails_as(Token(&token), &["get", "pods", "-n", "default"]);
    assert!(
        sa.contains("User \"system:serviceaccount:default:robot\""),
        "{sa}"
    );
    api.ok(&[
        "create",
        "rolebinding",
        "robot-edit",
        "-n",
        "default",
        "--clusterrole=edit",
        "--serviceaccount=default:robot",
    ]);
    api.ok_as(Token(&token), &["get", "configmaps", "-n", "default"]);
    api.ok(&["delete", "serviceaccount", "robot", "-n", "default"]);
    wait_until(10, "the deleted account's token stops working", || {
        text(&api.kubectl_as(Token(&token), &["get", "configmaps", "-n", "default"]))
            .contains("Unauthorized")
    });

    rkube::platform::block_on(async {
        // Anonymous: public paths only.
        let anonymous = client(&api, None);
        let version = anonymous
            .request(hyper::Method::GET, "/version", None)
            .await;
        assert!(version.is_ok(), "{version:?}");
        let listed = Api::<Namespace>::all(&anonymous)
            .list(&ListParams::default())
            .await;
        assert_eq!(listed.unwrap_err().code(), Some(403));

        // The client library with the admin kubeconfig (client certificate).
        let kc =
            std::fs::read_to_string(api.data_dir().join("admin.kubeconfig")).expect("kubeconfig");
        let admin = Client::new(
            &ClientConfig::from_kubeconfig(&kc).expect("kubeconfig"),
            Clock::new(),
        )
        .expect("client");
        let all = Api::<Namespace>::all(&admin)
            .list(&ListParams::default())
            .await
            .expect("list");
        assert!(all
            .items
            .iter()
            .any(|n| n.metadata.name == "kube-node-lease"));

        // Node restriction: a kubelet writes its own Node only.
        let kubelet = Api::<Node>::all(&client(&api, Some("node1-token")));
        let node = |name: &str| -> Node {
            serde_json::from_value(json!({"metadata": {"name": name}})).expect("node")
        };
        kubelet.create(&node("n1")).await.expect("own node");
        let other = kubelet.create(&node("n2")).await.unwrap_err();
        assert_eq!(other.code(), Some(403), "{other}");
        let label = Patch::Merge(json!({"metadata": {"labels": {"ready": "yes"}}}));
        kubelet.patch("n1", &label).await.expect("patch own node");
        Api::<Node>::all(&admin)
            .create(&node("n2"))
            .await
            .expect("admin creates n2");
        assert_eq!(
            kubelet.patch("n2", &label).await.unwrap_err().code(),
            Some(403)
        );
    });
}

#[test]
fn the_insecure_port_is_loopback_only() {
    let out = Command::new(RKUBE)
        .args([
            "apiserver",
            "--secure-port",
            "0",
            "--insecure-bind-address",
            "0.0.0.0",
        ])
        .args(["--insecure-port", &free_port().to_string()])
        .output()
        .expect("run rkube");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("loopback"), "{err}");
}

/// A stand-in kubelet: serves `/containerLogs/...` over HTTPS with a certificate from the
/// cluster CA, answering only clients whose certificate the CA signed.
fn fake_kubelet(data: &Path) -> u16 {
    use rkube::platform::tls::{self, CertAndKey, PeerIdentity, Usage};
    let read = |f: &str| std::fs::read_to_string(data.join(f)).expect("pki file");
    let ca = CertAndKey {
        cert_pem: read("pki/ca.crt"),
        key_pem: read("pki/ca.key"),
    };
    let serving = tls::issue(
        &ca,
        "kubelet",
        &[],
        &["127.0.0.1".to_string()],
        Usage::Server,
    )
    .expect("cert");
    let config = tls::server_config(&serving, &ca.cert_pem).expect("tls");
    let port = free_port();
    std::thread::spawn(move || {
        rkube::platform::block_on(async move {
            let addr = rkube::platform::net::SocketAddr::from(([127, 0, 0, 1], port));
            let listener = rkube::platform::net::listen(addr).await.expect("listen");
            let (_keep, shutdown) = rkube::platform::task::shutdown_pair();
            tls::serve_https(
                listener,
                config,
                |req: rkube::platform::net::HttpRequest| async move {
                    let who = req
                        .extensions()
                        .get::<PeerIdentity>()
                        .map(|p| p.common_name.clone());
                    let path = req.uri().path().to_string();
                    let tail = req.uri().query().unwrap_or("").contains("tailLines=1");
                    let (code, body) = match (who.as_deref(), path.as_str()) {
                        (Some("kube-apiserver-kubelet-client"), "/containerLogs/default/p/c") => {
                            (200, if tail { "line 2\n" } else { "line 1\nline 2\n" })
                        }
                        (Some(_), _) => (404, "no such container"),
                        (None, _) => (401, "who are you"),
                    };
                    hyper::Response::builder()
                        .status(code)
                        .body(rkube::platform::net::full_body(body))
                        .expect("response")
                },
                shutdown,
            )
            .await;
        })
    });
    port
}

#[test]
fn pod_logs_come_from_the_nodes_kubelet() {
    let Some((_store, api)) = store_and_api_server(secure) else {
        return;
    };
    let kubelet_port = fake_kubelet(api.data_dir());
    let node = format!(
        r#"{{"apiVersion":"v1","kind":"Node","metadata":{{"name":"n1"}},"status":{{"addresses":[{{"type":"InternalIP","address":"127.0.0.1"}}],"daemonEndpoints":{{"kubeletEndpoint":{{"Port":{kubelet_port}}}}}}}}}"#
    );
    let pod = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default"},"spec":{"nodeName":"n1","containers":[{"name":"c","image":"busybox"}]}}"#;
    for manifest in [node.as_str(), pod] {
        let path = api.home.join("m.json");
        std::fs::write(&path, manifest).expect("manifest");
        api.ok(&["create", "-f", path.to_str().unwrap()]);
    }
    let logs = api.ok(&["logs", "p", "-n", "default"]);
    assert_eq!(logs, "line 1\nline 2\n");
    let tail = api.ok(&["logs", "p", "-n", "default", "--tail=1"]);
    assert_eq!(tail, "line 2\n");
    let wrong = api.fails(&["logs", "p", "-n", "default", "-c", "nope"]);
    assert!(
        wrong.contains("container nope is not valid for pod p"),
        "{wrong}"
    );
    let denied = api.fails_as(ALICE, &["logs", "p", "-n", "default"]);
    assert!(denied.contains("is forbidden: User \"alice\""), "{denied}");
}
