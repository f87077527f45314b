//! The `rkube` binary. `rkube etcd` runs one member of the etcd-compatible store, with
//! etcd's flag names; `rkube snapshot` saves and restores backups; `rkube apiserver` serves
//! the Kubernetes API on a store; `rkube scheduler` binds pending pods to nodes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use rkube::apiserver::{self, ApiServerConfig};
use rkube::platform::{self, task, Platform};
use rkube::store::{self, ClusterState, StoreConfig};

#[derive(Parser)]
#[command(name = "rkube", version, about = "A Kubernetes-style cluster in Rust")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one member of the etcd-compatible store (etcd's flags).
    Etcd(EtcdArgs),
    /// Save or restore store backups.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Run the Kubernetes API server on a store (HTTPS with authentication and RBAC).
    Apiserver(ApiserverArgs),
    /// Run the scheduler: binds each pending pod to a node (leader-elected).
    Scheduler(SchedulerArgs),
}

/// How a control-plane component reaches the API server.
#[derive(Parser)]
struct ClientArgs {
    /// A kubeconfig file (the API server writes `<data-dir>/<component>.kubeconfig`).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// The API server's URL; overrides the kubeconfig's, or, alone, a plain-HTTP
    /// (`--insecure-port`) server.
    #[arg(long)]
    master: Option<String>,
}

impl ClientArgs {
    fn config(&self) -> Result<rkube::client::ClientConfig, String> {
        let mut cfg = match &self.kubeconfig {
            Some(path) => {
                let text = platform::disk::read_file(path)
                    .map_err(|e| format!("--kubeconfig {}: {e}", path.display()))?;
                let text = String::from_utf8(text)
                    .map_err(|_| format!("--kubeconfig {}: not UTF-8", path.display()))?;
                rkube::client::ClientConfig::from_kubeconfig(&text)
                    .map_err(|e| format!("--kubeconfig {}: {e}", path.display()))?
            }
            None => match &self.master {
                Some(url) => rkube::client::ClientConfig::insecure(url),
                None => return Err("give --kubeconfig or --master".into()),
            },
        };
        if let Some(url) = &self.master {
            cfg.servers = vec![url.clone()];
        }
        Ok(cfg)
    }
}

#[derive(Parser)]
struct SchedulerArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Elect one active replica through the `kube-system/kube-scheduler` Lease.
    #[arg(long = "leader-elect", default_value_t = true, action = clap::ArgAction::Set)]
    leader_elect: bool,
    /// This replica's identity in the lease (default: `scheduler-<random>`).
    #[arg(long)]
    identity: Option<String>,
    /// Pods naming this `spec.schedulerName` (or none) are scheduled.
    #[arg(long = "scheduler-name", default_value = rkube::scheduler::driver::DEFAULT_SCHEDULER_NAME)]
    scheduler_name: String,
    /// Share of nodes to find feasible before scoring (0: upstream's adaptive default).
    #[arg(long = "percentage-of-nodes-to-score", default_value_t = 0)]
    percentage_of_nodes_to_score: usize,
}

#[derive(Parser)]
struct ApiserverArgs {
    /// The store's client URLs, comma-separated.
    #[arg(long = "etcd-servers", default_value = "http://127.0.0.1:2379")]
    etcd_servers: String,
    /// Address to serve HTTPS on.
    #[arg(long = "bind-address", default_value = "0.0.0.0")]
    bind_address: String,
    /// HTTPS port (authenticated and authorized); 0 disables it.
    #[arg(long = "secure-port", default_value_t = 6443)]
    secure_port: u16,
    /// Where the CA, certificates, token signing key and kubeconfigs live (created on
    /// first start).
    #[arg(long = "data-dir", default_value = "/var/lib/rkube/apiserver")]
    data_dir: PathBuf,
    /// Static bearer tokens: CSV lines `token,user,uid[,"group1,group2"]`.
    #[arg(long = "token-auth-file")]
    token_auth_file: Option<PathBuf>,
    /// Extra names or addresses for the serving certificate.
    #[arg(long = "tls-san")]
    tls_san: Vec<String>,
    /// `RBAC` (default) or `AlwaysAllow`.
    #[arg(long = "authorization-mode", default_value = "RBAC")]
    authorization_mode: String,
    /// Loopback address for plain HTTP without authentication.
    #[arg(long = "insecure-bind-address", default_value = "127.0.0.1")]
    insecure_bind_address: String,
    /// Plain-HTTP port without authentication (0: off). For local tools and tests only.
    #[arg(long = "insecure-port", default_value_t = 0)]
    insecure_port: u16,
}

#[derive(Parser)]
struct EtcdArgs {
    /// Human-readable name of this member.
    #[arg(long, default_value = "default")]
    name: String,
    /// Directory for the WAL and snapshots.
    #[arg(long = "data-dir")]
    data_dir: Option<PathBuf>,
    #[arg(long = "listen-client-urls", default_value = "http://127.0.0.1:2379")]
    listen_client_urls: String,
    #[arg(long = "advertise-client-urls")]
    advertise_client_urls: Option<String>,
    #[arg(long = "listen-peer-urls", default_value = "http://127.0.0.1:2380")]
    listen_peer_urls: String,
    #[arg(long = "initial-advertise-peer-urls")]
    initial_advertise_peer_urls: Option<String>,
    /// name=peerURL pairs of every initial member.
    #[arg(long = "initial-cluster")]
    initial_cluster: Option<String>,
    /// `new` or `existing`.
    #[arg(long = "initial-cluster-state", default_value = "new")]
    initial_cluster_state: String,
    #[arg(long = "initial-cluster-token", default_value = "etcd-cluster")]
    initial_cluster_token: String,
    /// Heartbeat interval in milliseconds.
    #[arg(long = "heartbeat-interval", default_value_t = 100)]
    heartbeat_interval: u64,
    /// Election timeout in milliseconds.
    #[arg(long = "election-timeout", default_value_t = 1000)]
    election_timeout: u64,
    /// Applied entries between snapshots.
    #[arg(long = "snapshot-count", default_value_t = 100_000)]
    snapshot_count: u64,
    /// Largest client request, in bytes.
    #[arg(long = "max-request-bytes", default_value_t = store::DEFAULT_MAX_REQUEST_BYTES)]
    max_request_bytes: usize,
    /// Most operations in one txn branch.
    #[arg(long = "max-txn-ops", default_value_t = store::DEFAULT_MAX_TXN_OPS)]
    max_txn_ops: usize,
    /// Period of progress notifications to idle watchers that ask for them (`10m`, `5s`).
    #[arg(
        long = "experimental-watch-progress-notify-interval",
        default_value = "10m"
    )]
    watch_progress_notify_interval: String,
}

#[derive(Subcommand)]
enum SnapshotCommand {
    /// Stream a backup from a running member into FILE.
    Save {
        file: PathBuf,
        #[arg(long, default_value = "http://127.0.0.1:2379")]
        endpoints: String,
    },
    /// Create a new member's data dir from a backup FILE.
    Restore {
        file: PathBuf,
        #[arg(long = "data-dir")]
        data_dir: PathBuf,
        #[arg(long, default_value = "default")]
        name: String,
        #[arg(long = "initial-cluster")]
        initial_cluster: Option<String>,
        #[arg(
            long = "initial-advertise-peer-urls",
            default_value = "http://127.0.0.1:2380"
        )]
        initial_advertise_peer_urls: String,
        #[arg(long = "initial-cluster-token", default_value = "etcd-cluster")]
        initial_cluster_token: String,
    },
}

fn first_url(list: &str) -> &str {
    list.split(',').next().unwrap_or("").trim()
}

fn etcd_config(a: &EtcdArgs) -> Result<StoreConfig, String> {
    let client = store::parse_url_addr(first_url(&a.listen_client_urls))?;
    let peer = store::parse_url_addr(first_url(&a.listen_peer_urls))?;
    let mut cfg = StoreConfig::single(&a.name, client, peer);
    if let Some(adv) = &a.advertise_client_urls {
        cfg.advertise_client_urls = adv.split(',').map(|s| s.trim().to_string()).collect();
    }
    let peer_adv = a
        .initial_advertise_peer_urls
        .clone()
        .unwrap_or_else(|| format!("http://{peer}"));
    cfg.initial_advertise_peer_urls = peer_adv.split(',').map(|s| s.trim().to_string()).collect();
    cfg.initial_cluster = match &a.initial_cluster {
        Some(s) => store::parse_initial_cluster(s)?,
        None => vec![(a.name.clone(), cfg.initial_advertise_peer_urls[0].clone())],
    };
    cfg.initial_cluster_state = match a.initial_cluster_state.as_str() {
        "new" => ClusterState::New,
        "existing" => ClusterState::Existing,
        other => {
            return Err(format!(
                "--initial-cluster-state must be new or existing, not {other:?}"
            ))
        }
    };
    cfg.initial_cluster_token = a.initial_cluster_token.clone();
    if a.heartbeat_interval == 0 || a.election_timeout < 5 * a.heartbeat_interval {
        return Err("--election-timeout must be at least 5 × --heartbeat-interval".into());
    }
    cfg.tick_ms = a.heartbeat_interval;
    cfg.election_ticks = (a.election_timeout / a.heartbeat_interval) as usize;
    cfg.snapshot_count = a.snapshot_count.max(1);
    cfg.max_request_bytes = a.max_request_bytes;
    cfg.max_txn_ops = a.max_txn_ops;
    cfg.watch_progress_notify_interval_ms =
        store::parse_duration_ms(&a.watch_progress_notify_interval)
            .map_err(|e| format!("--experimental-watch-progress-notify-interval: {e}"))?;
    if cfg.watch_progress_notify_interval_ms == 0 {
        return Err("--experimental-watch-progress-notify-interval must be positive".into());
    }
    Ok(cfg)
}

fn run_etcd(a: EtcdArgs) -> Result<(), String> {
    let cfg = etcd_config(&a)?;
    let dir = a
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("{}.etcd", a.name)));
    let plat =
        Platform::real(&a.name, &dir).map_err(|e| format!("data dir {}: {e}", dir.display()))?;
    until_signal(|shutdown| async move {
        store::run(cfg, plat, shutdown)
            .await
            .map_err(|e| e.to_string())
    })
}

/// Runs a component on a fresh runtime until it ends or SIGTERM/Ctrl-C asks it to stop.
fn until_signal<F, Fut>(component: F) -> Result<(), String>
where
    F: FnOnce(task::Shutdown) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    platform::block_on(async move {
        let (trigger, shutdown) = task::shutdown_pair();
        task::spawn(async move {
            platform::signal::terminate().await;
            tracing::info!("shutting down");
            trigger.trigger();
        });
        component(shutdown).await
    })
}

fn parse_ip(flag: &str, text: &str) -> Result<platform::net::IpAddr, String> {
    text.parse().map_err(|e| format!("{flag} {text:?}: {e}"))
}

fn apiserver_config(a: &ApiserverArgs) -> Result<ApiServerConfig, String> {
    let authorization = match a.authorization_mode.as_str() {
        "RBAC" => apiserver::access::AuthorizationMode::Rbac,
        "AlwaysAllow" => apiserver::access::AuthorizationMode::AlwaysAllow,
        other => {
            return Err(format!(
                "--authorization-mode {other:?}: want RBAC or AlwaysAllow"
            ))
        }
    };
    let token_file = match &a.token_auth_file {
        Some(p) => {
            let bytes = platform::disk::read_file(p)
                .map_err(|e| format!("--token-auth-file {}: {e}", p.display()))?;
            Some(
                String::from_utf8(bytes)
                    .map_err(|_| "--token-auth-file is not UTF-8".to_string())?,
            )
        }
        None => None,
    };
    let secure = (a.secure_port != 0).then(|| -> Result<_, String> {
        let ip = parse_ip("--bind-address", &a.bind_address)?;
        Ok(apiserver::SecureServing {
            listen: platform::net::SocketAddr::new(ip, a.secure_port),
            extra_sans: a.tls_san.clone(),
            token_file: token_file.clone(),
            authorization,
        })
    });
    let insecure = (a.insecure_port != 0).then(|| -> Result<_, String> {
        let ip = parse_ip("--insecure-bind-address", &a.insecure_bind_address)?;
        Ok(platform::net::SocketAddr::new(ip, a.insecure_port))
    });
    Ok(ApiServerConfig {
        etcd_servers: a
            .etcd_servers
            .split(',')
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        secure: secure.transpose()?,
        insecure: insecure.transpose()?,
    })
}

fn run_apiserver(a: ApiserverArgs) -> Result<(), String> {
    let cfg = apiserver_config(&a)?;
    let plat = if cfg.secure.is_some() {
        Platform::real("apiserver", &a.data_dir)
            .map_err(|e| format!("--data-dir {}: {e}", a.data_dir.display()))?
    } else {
        Platform::real_diskless("apiserver")
    };
    until_signal(|shutdown| async move {
        apiserver::run(cfg, plat, shutdown)
            .await
            .map_err(|e| e.to_string())
    })
}

fn run_scheduler(a: SchedulerArgs) -> Result<(), String> {
    if a.percentage_of_nodes_to_score > 100 {
        return Err("--percentage-of-nodes-to-score must be 0..=100".into());
    }
    let identity = a
        .identity
        .clone()
        .unwrap_or_else(|| format!("scheduler-{}", platform::tls::random_hex(4)));
    let cfg = rkube::scheduler::SchedulerConfig {
        client: a.client.config()?,
        scheduler_name: a.scheduler_name.clone(),
        leader_elect: a.leader_elect,
        identity: identity.clone(),
        percentage_of_nodes_to_score: a.percentage_of_nodes_to_score,
    };
    let plat = Platform::real_diskless(&identity);
    until_signal(|shutdown| rkube::scheduler::run(cfg, plat, shutdown))
}

fn run_snapshot(cmd: SnapshotCommand) -> Result<(), String> {
    match cmd {
        SnapshotCommand::Save { file, endpoints } => platform::block_on(async move {
            let bytes = store::client::fetch_backup(first_url(&endpoints)).await?;
            platform::disk::write_file_durably(&file, &bytes)
                .map_err(|e| format!("write {}: {e}", file.display()))?;
            println!("Snapshot saved at {}", file.display());
            Ok(())
        }),
        SnapshotCommand::Restore {
            file,
            data_dir,
            name,
            initial_cluster,
            initial_advertise_peer_urls,
            initial_cluster_token,
        } => {
            let members = match initial_cluster {
                Some(s) => store::parse_initial_cluster(&s)?,
                None => vec![(name.clone(), initial_advertise_peer_urls)],
            };
            let bytes = platform::disk::read_file(&file)
                .map_err(|e| format!("read {}: {e}", file.display()))?;
            let plat = Platform::real(&name, &data_dir).map_err(|e| format!("data dir: {e}"))?;
            let mut voters: Vec<u64> = members
                .iter()
                .map(|(_, u)| store::member_id(u, &initial_cluster_token))
                .collect();
            voters.sort_unstable();
            let index =
                store::backup::restore(plat.disk, &bytes, &voters).map_err(|e| e.to_string())?;
            println!(
                "Restored {} into {} at index {index}",
                file.display(),
                data_dir.display()
            );
            Ok(())
        }
    }
}

fn main() -> ExitCode {
    platform::init_logging();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Etcd(a) => run_etcd(a),
        Command::Snapshot(c) => run_snapshot(c),
        Command::Apiserver(a) => run_apiserver(a),
        Command::Scheduler(a) => run_scheduler(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rkube: {e}");
            ExitCode::FAILURE
        }
    }
}
