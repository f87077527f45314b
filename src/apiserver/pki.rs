//! The API server's data directory: on first start it creates the cluster CA, the serving
//! certificate, the ServiceAccount token signing key and client credentials for the admin
//! and the control-plane components, and writes kubeconfig files for them. Later starts (and
//! other API servers sharing the directory) reuse what is there.
//!
//! Layout (paths relative to the data dir):
//! `pki/ca.crt`, `pki/ca.key`, `pki/apiserver.crt`, `pki/apiserver.key`, `pki/sa.key`,
//! `pki/<component>.crt|.key`, `admin.kubeconfig`, `<component>.kubeconfig`.
//! Each file is written to a temporary name, fsynced, then renamed into place; keys and
//! kubeconfigs are readable by their owner only.

use std::io;

use base64::Engine;

use crate::platform::disk::{replace_file, Disk};
use crate::platform::tls::{self, CertAndKey, Usage};

/// Client identities written at first start: file stem, user (CN), groups (O).
pub const COMPONENTS: [(&str, &str, &[&str]); 4] = [
    ("admin", "kubernetes-admin", &["system:masters"]),
    ("scheduler", "system:kube-scheduler", &[]),
    ("controller-manager", "system:kube-controller-manager", &[]),
    ("proxy", "system:kube-proxy", &[]),
];
/// Bytes of the ServiceAccount token signing secret.
pub const SA_KEY_BYTES: usize = 32;

/// What the API server needs from its data dir.
#[derive(Debug, Clone)]
pub struct ServerPki {
    pub ca: CertAndKey,
    pub serving: CertAndKey,
    pub sa_key: Vec<u8>,
    /// The API server's identity towards kubelets (logs): in `system:masters`.
    pub kubelet_client: CertAndKey,
}

fn text(disk: &dyn Disk, path: &str) -> io::Result<Option<String>> {
    match disk.read(path) {
        Ok(b) => String::from_utf8(b)
            .map(Some)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, format!("{path} is not text"))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn load_pair(disk: &dyn Disk, stem: &str) -> io::Result<Option<CertAndKey>> {
    let cert = text(disk, &format!("pki/{stem}.crt"))?;
    let key = text(disk, &format!("pki/{stem}.key"))?;
    Ok(cert
        .zip(key)
        .map(|(cert_pem, key_pem)| CertAndKey { cert_pem, key_pem }))
}

fn store_pair(disk: &dyn Disk, stem: &str, pair: &CertAndKey) -> io::Result<()> {
    // The key first: a crash in between leaves no certificate without its key.
    replace_file(
        disk,
        &format!("pki/{stem}.key"),
        pair.key_pem.as_bytes(),
        true,
    )?;
    replace_file(
        disk,
        &format!("pki/{stem}.crt"),
        pair.cert_pem.as_bytes(),
        false,
    )
}

fn other(e: String) -> io::Error {
    io::Error::other(e)
}

/// A kubeconfig for `user` reaching `server` with a client certificate.
pub fn kubeconfig(server: &str, ca_pem: &str, user: &str, id: &CertAndKey) -> String {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    format!(
        "apiVersion: v1
kind: Config
clusters:
- name: rkube
  cluster:
    server: {server}
    certificate-authority-data: {ca}
users:
- name: {user}
  user:
    client-certificate-data: {cert}
    client-key-data: {key}
contexts:
- name: {user}@rkube
  context:
    cluster: rkube
    user: {user}
current-context: {user}@rkube
",
        ca = b64(ca_pem),
        cert = b64(&id.cert_pem),
        key = b64(&id.key_pem),
    )
}

/// Loads the data dir's credentials, creating whatever is missing. `sans` are the names and
/// addresses the serving certificate must cover; `server_url` goes into the kubeconfigs.
pub fn ensure(disk: &dyn Disk, sans: &[String], server_url: &str) -> io::Result<ServerPki> {
    let ca = match load_pair(disk, "ca")? {
        Some(ca) => ca,
        None => {
            let ca = tls::generate_ca("rkube-ca").map_err(other)?;
            store_pair(disk, "ca", &ca)?;
            ca
        }
    };
    let serving = match load_pair(disk, "apiserver")? {
        Some(s) => s,
        None => {
            let s = tls::issue(&ca, "kube-apiserver", &[], sans, Usage::Server).map_err(other)?;
            store_pair(disk, "apiserver", &s)?;
            s
        }
    };
    let kubelet_client = match load_pair(disk, "apiserver-kubelet-client")? {
        Some(id) => id,
        None => {
            let id = tls::issue(
                &ca,
                "kube-apiserver-kubelet-client",
                &["system:masters"],
                &[],
                Usage::Client,
            )
            .map_err(other)?;
            store_pair(disk, "apiserver-kubelet-client", &id)?;
            id
        }
    };
    let sa_key = match text(disk, "pki/sa.key")? {
        Some(k) => k.trim().to_string(),
        None => {
            let k = tls::random_hex(SA_KEY_BYTES);
            replace_file(disk, "pki/sa.key", k.as_bytes(), true)?;
            k
        }
    };
    for (stem, user, groups) in COMPONENTS {
        let path = format!("{stem}.kubeconfig");
        if disk.exists(&path) {
            continue;
        }
        let id = match load_pair(disk, stem)? {
            Some(id) => id,
            None => {
                let id = tls::issue(&ca, user, groups, &[], Usage::Client).map_err(other)?;
                store_pair(disk, stem, &id)?;
                id
            }
        };
        // A kubeconfig carries its user's private key.
        let text = kubeconfig(server_url, &ca.cert_pem, user, &id);
        replace_file(disk, &path, text.as_bytes(), true)?;
    }
    Ok(ServerPki {
        ca,
        serving,
        sa_key: sa_key.into_bytes(),
        kubelet_client,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::disk::SimDisk;

    #[test]
    fn first_start_creates_everything_and_later_starts_reuse_it() {
        let disk = SimDisk::new();
        let sans = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let first = ensure(&disk, &sans, "https://127.0.0.1:6443").unwrap();
        for f in [
            "pki/ca.crt",
            "pki/ca.key",
            "pki/apiserver.crt",
            "pki/sa.key",
            "admin.kubeconfig",
            "proxy.kubeconfig",
        ] {
            assert!(disk.exists(f), "{f}");
        }
        let again = ensure(&disk, &sans, "https://127.0.0.1:6443").unwrap();
        assert_eq!(first.ca, again.ca);
        assert_eq!(first.serving, again.serving);
        assert_eq!(first.sa_key, again.sa_key);
        let admin = String::from_utf8(disk.read("admin.kubeconfig").unwrap()).unwrap();
        let parsed: serde_yaml::Value = serde_yaml::from_str(&admin).unwrap();
        assert_eq!(parsed["current-context"], "kubernetes-admin@rkube");
        assert_eq!(
            parsed["clusters"][0]["cluster"]["server"],
            "https://127.0.0.1:6443"
        );
    }
}
