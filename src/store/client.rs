//! A small etcd v3 client over the generated gRPC stubs, used by the CLI (`snapshot save`),
//! the simulation's workloads and the benchmarks. It is not a general etcd client library.

use std::time::Duration;

use super::pb::etcdserverpb as pb;
use super::pb::etcdserverpb::{
    kv_client::KvClient, lease_client::LeaseClient, maintenance_client::MaintenanceClient,
};
use crate::platform::net;

/// Deadline of one client call.
pub const CLIENT_TIMEOUT_MS: u64 = 10_000;
/// Largest backup a client accepts.
pub const MAX_BACKUP_BYTES: usize = 8 * 1024 * 1024 * 1024;

/// gRPC stubs sharing one channel to one endpoint.
#[derive(Clone)]
pub struct Client {
    pub kv: KvClient<tonic::transport::Channel>,
    pub lease: LeaseClient<tonic::transport::Channel>,
    pub maintenance: MaintenanceClient<tonic::transport::Channel>,
}

impl Client {
    /// A client of `endpoint` (`http://host:port`); connects lazily.
    pub fn new(endpoint: &str) -> Result<Client, String> {
        let ch = net::grpc_channel(endpoint, Duration::from_millis(CLIENT_TIMEOUT_MS))?;
        Ok(Client {
            kv: KvClient::new(ch.clone()),
            lease: LeaseClient::new(ch.clone()),
            maintenance: MaintenanceClient::new(ch).max_decoding_message_size(usize::MAX),
        })
    }

    /// Puts `key` = `value`; returns the revision of the write.
    pub async fn put(&mut self, key: &[u8], value: &[u8]) -> Result<i64, tonic::Status> {
        let r = self
            .kv
            .put(pb::PutRequest {
                key: key.to_vec(),
                value: value.to_vec(),
                ..Default::default()
            })
            .await?;
        Ok(r.into_inner().header.map(|h| h.revision).unwrap_or(0))
    }

    /// Reads one key (linearizable); None if absent.
    pub async fn get(&mut self, key: &[u8]) -> Result<Option<Vec<u8>>, tonic::Status> {
        let r = self
            .kv
            .range(pb::RangeRequest {
                key: key.to_vec(),
                ..Default::default()
            })
            .await?
            .into_inner();
        Ok(r.kvs.into_iter().next().map(|kv| kv.value))
    }
}

/// Streams a backup (Maintenance/Snapshot) from `endpoint` into memory.
pub async fn fetch_backup(endpoint: &str) -> Result<Vec<u8>, String> {
    let mut c = Client::new(endpoint)?;
    let mut stream = c
        .maintenance
        .snapshot(pb::SnapshotRequest {})
        .await
        .map_err(|s| s.message().to_string())?
        .into_inner();
    let mut out = Vec::new();
    while let Some(chunk) = stream
        .message()
        .await
        .map_err(|s| s.message().to_string())?
    {
        if out.len() + chunk.blob.len() > MAX_BACKUP_BYTES {
            return Err(format!("backup larger than {MAX_BACKUP_BYTES} bytes"));
        }
        out.extend_from_slice(&chunk.blob);
    }
    Ok(out)
}
