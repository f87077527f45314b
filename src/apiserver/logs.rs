//! `GET pods/<name>/log`: the API server finds the pod's node and streams the container's log
//! from that node's kubelet (`GET https://<node>:<kubelet port>/containerLogs/<ns>/<pod>/<c>`,
//! upstream's kubelet API), authenticating with its kubelet client certificate and trusting
//! the cluster CA. Query options (`follow`, `tailLines`, `timestamps`, `previous`,
//! `sinceSeconds`, `limitBytes`) are passed on after validation.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::Value;

use super::handler::Api;
use super::resources;
use crate::api::{fail, Status};
use crate::platform::net::{self, HttpResponse, IpAddr, SendFailure, SocketAddr};

/// The kubelet's port when a Node does not publish one (upstream's default).
pub const DEFAULT_KUBELET_PORT: u16 = 10250;
/// Most bytes of a kubelet's error answer passed on.
pub const MAX_KUBELET_ERROR_BYTES: usize = 64 * 1024;
/// Chunks of log buffered towards a slow client before the copy waits.
pub const LOG_CHUNK_QUEUE: usize = 64;

/// The query parameters the kubelet understands, checked (a bad value is a 400, not a
/// surprise at the kubelet).
pub fn kubelet_query(
    query: &std::collections::BTreeMap<String, String>,
) -> Result<String, Box<Status>> {
    let mut out = Vec::new();
    for (k, v) in query {
        let ok = match k.as_str() {
            "follow" | "timestamps" | "previous" => matches!(v.as_str(), "true" | "false"),
            "tailLines" | "sinceSeconds" | "limitBytes" => v.parse::<i64>().is_ok_and(|n| n >= 0),
            // `container` picks the path; anything else is not the kubelet's business.
            _ => continue,
        };
        if !ok {
            return fail(Status::bad_request(format!("invalid {k} value {v:?}")));
        }
        out.push(format!("{k}={}", crate::client::encode_query_value(v)));
    }
    Ok(if out.is_empty() {
        String::new()
    } else {
        format!("?{}", out.join("&"))
    })
}

/// The container whose log is wanted: the one named, or the pod's only container.
pub fn container_of(pod: &Value, name: &str, asked: Option<&str>) -> Result<String, Box<Status>> {
    let names: Vec<&str> = ["containers", "initContainers"]
        .iter()
        .flat_map(|k| pod["spec"][*k].as_array().into_iter().flatten())
        .filter_map(|c| c["name"].as_str())
        .collect();
    match asked {
        Some(c) if names.contains(&c) => Ok(c.to_string()),
        Some(c) => fail(Status::bad_request(format!(
            "container {c} is not valid for pod {name}"
        ))),
        None => {
            let main: Vec<&str> = pod["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["name"].as_str())
                .collect();
            match main.as_slice() {
                [only] => Ok(only.to_string()),
                _ => fail(Status::bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    main.join(" ")
                ))),
            }
        }
    }
}

/// Where a node's kubelet listens: its InternalIP (else any IP address) and published port.
pub fn kubelet_address(node: &Value) -> Option<SocketAddr> {
    let addresses = node["status"]["addresses"].as_array()?;
    let ip = ["InternalIP", "ExternalIP", "Hostname"]
        .iter()
        .find_map(|kind| {
            addresses
                .iter()
                .filter(|a| a["type"] == *kind)
                .find_map(|a| a["address"].as_str()?.parse::<IpAddr>().ok())
        })?;
    let port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0)
        .unwrap_or(DEFAULT_KUBELET_PORT);
    Some(SocketAddr::new(ip, port))
}

fn unavailable(m: String) -> Box<Status> {
    Box::new(Status::failure(503, "ServiceUnavailable", m))
}

impl Api {
    /// Streams a container's log from its node's kubelet.
    pub async fn pod_logs(
        &self,
        ns: &str,
        name: &str,
        query: &std::collections::BTreeMap<String, String>,
    ) -> Result<HttpResponse, Box<Status>> {
        let pods = resources::find("", "v1", "pods").expect("served");
        let (pod, _) = self.read(pods, Some(ns), name).await?;
        let container = container_of(&pod, name, query.get("container").map(String::as_str))?;
        let params = kubelet_query(query)?;
        let node_name = pod["spec"]["nodeName"].as_str().unwrap_or("");
        if node_name.is_empty() {
            return fail(Status::bad_request(format!(
                "pod {name} does not have a host assigned"
            )));
        }
        let nodes = resources::find("", "v1", "nodes").expect("served");
        let (node, _) = self.read(nodes, None, node_name).await?;
        let addr = kubelet_address(&node)
            .ok_or_else(|| unavailable(format!("node {node_name} publishes no address")))?;
        let tls = self.kubelet_tls.clone().ok_or_else(|| {
            unavailable("logs need the secure port's kubelet client certificate".into())
        })?;
        let path = format!("/containerLogs/{ns}/{name}/{container}{params}");
        let req = hyper::Request::get(path)
            .header("host", addr.to_string())
            .body(Full::new(Bytes::new()))
            .expect("a valid request");
        let host = addr.ip().to_string();
        // Bounded until the kubelet's answer starts; the log itself may stream for long.
        let limit = std::time::Duration::from_millis(super::handler::REQUEST_TIMEOUT_MS);
        let sent = async {
            let mut conn = crate::platform::tls::connect_https(addr, &host, tls).await?;
            conn.send(req).await.map_err(SendFailure::into_error)
        };
        let resp = match self.platform.clock.timeout(limit, sent).await {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => {
                let m = format!("cannot reach the kubelet on {node_name}: {e}");
                return Err(unavailable(m));
            }
            Err(_) => {
                let m = format!("the kubelet on {node_name} did not answer within {limit:?}");
                return Err(unavailable(m));
            }
        };
        let code = resp.status().as_u16();
        if !(200..300).contains(&code) {
            let limited = http_body_util::Limited::new(resp.into_body(), MAX_KUBELET_ERROR_BYTES);
            let read = self.platform.clock.timeout(limit, limited.collect()).await;
            let body = match read {
                Ok(Ok(b)) => b.to_bytes(),
                _ => Bytes::new(),
            };
            let text = String::from_utf8_lossy(&body).trim().to_string();
            let m = format!("the kubelet answered {code}: {text}");
            return fail(Status::failure(code, "InternalError", m));
        }
        Ok(stream_through(resp.into_body()))
    }
}

/// Copies a kubelet's response body to the client as it arrives.
fn stream_through(mut body: hyper::body::Incoming) -> HttpResponse {
    let (tx, rx) = tokio::sync::mpsc::channel(LOG_CHUNK_QUEUE);
    crate::platform::task::spawn(async move {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                if tx.send(data).await.is_err() {
                    return;
                }
            }
        }
    });
    hyper::Response::builder()
        .header("content-type", "text/plain")
        .body(net::stream_body(rx))
        .expect("a valid response")
}

/// The kubelet client TLS configuration (cluster CA, the API server's kubelet identity).
pub type KubeletTls = Arc<rustls::ClientConfig>;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn containers_addresses_and_options() {
        let pod =
            json!({"spec": {"containers": [{"name": "a"}], "initContainers": [{"name": "init"}]}});
        assert_eq!(container_of(&pod, "p", None).unwrap(), "a");
        assert_eq!(container_of(&pod, "p", Some("init")).unwrap(), "init");
        assert!(container_of(&pod, "p", Some("x")).is_err());
        let two = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let err = container_of(&two, "p", None).unwrap_err();
        assert!(
            err.message.contains("choose one of: [a b]"),
            "{}",
            err.message
        );
        let node = json!({"status": {"addresses": [{"type": "Hostname", "address": "n1"},
            {"type": "InternalIP", "address": "10.0.0.5"}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10251}}}});
        assert_eq!(
            kubelet_address(&node).unwrap().to_string(),
            "10.0.0.5:10251"
        );
        assert!(kubelet_address(&json!({"status": {}})).is_none());
        let q: std::collections::BTreeMap<String, String> =
            [("follow", "true"), ("tailLines", "10"), ("container", "a")]
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        assert_eq!(kubelet_query(&q).unwrap(), "?follow=true&tailLines=10");
        let bad: std::collections::BTreeMap<String, String> =
            [("tailLines".to_string(), "-1".to_string())]
                .into_iter()
                .collect();
        assert!(kubelet_query(&bad).is_err());
    }
}
