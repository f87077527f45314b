//! Shared pieces of the benches that run real processes: the stub `main` of the simulation
//! build, free loopback ports, `rkube` processes killed on drop (their log tails printed if
//! the bench panics), and a one-member `rkube etcd` with an `rkube apiserver` on it.
//!
//! Included by each bench with `mod common;`.

#![allow(dead_code)]

/// Defines the bench's `main`: `bench::main()` in the real build; under `--cfg madsim` (the
/// simulation build of `--all-targets`) a stub saying the bench is not built there.
macro_rules! real_processes_main {
    ($name:literal) => {
        #[cfg(madsim)]
        fn main() -> std::process::ExitCode {
            eprintln!(concat!(
                "the ",
                $name,
                " bench runs real processes and sockets; it is not built under --cfg madsim"
            ));
            std::process::ExitCode::SUCCESS
        }

        #[cfg(not(madsim))]
        fn main() -> std::process::ExitCode {
            bench::main()
        }
    };
}
pub(crate) use real_processes_main;

#[cfg(not(madsim))]
pub use real::*;

#[cfg(not(madsim))]
mod real {
    use std::collections::HashSet;
    use std::fs::File;
    use std::net::TcpListener;
    use std::path::{Path, PathBuf};
    use std::process::{Child, Command, Stdio};
    use std::sync::{Mutex, OnceLock};
    use std::time::{Duration, Instant};

    use rkube::api::core::Namespace;
    use rkube::client::{Api, Client};
    use tempfile::TempDir;

    /// How long the API server may take to answer after it is started.
    pub const READY_DEADLINE_SECONDS: u64 = 30;
    /// Lines of a process's log printed if the bench panics.
    const LOG_TAIL_LINES: usize = 40;

    /// A loopback port nobody listens on now and that this run has not handed out before (a
    /// port handed out but not yet bound by its process would otherwise come back).
    pub fn try_free_port() -> Result<u16, String> {
        static HANDED_OUT: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
        let handed_out = HANDED_OUT.get_or_init(|| Mutex::new(HashSet::new()));
        for _ in 0..1000 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map_err(|e| format!("bind a loopback port: {e}"))?
                .port();
            if handed_out.lock().unwrap().insert(port) {
                return Ok(port);
            }
        }
        Err("no free loopback port".into())
    }

    /// [`try_free_port`], panicking if there is none.
    pub fn free_port() -> u16 {
        try_free_port().unwrap_or_else(|e| panic!("{e}"))
    }

    /// A `rkube` process whose output goes to `<dir>/<name>.log`; killed on drop, and if the
    /// bench is panicking, the tail of its log is printed then.
    pub struct Proc {
        name: String,
        log: PathBuf,
        child: Child,
    }

    impl Proc {
        /// Runs `rkube <args>` (this build), logging to `<dir>/<name>.log`.
        pub fn spawn(dir: &Path, name: &str, args: &[&str]) -> Proc {
            let log = dir.join(format!("{name}.log"));
            let out = File::create(&log).expect("log file");
            let child = Command::new(env!("CARGO_BIN_EXE_rkube"))
                .args(args)
                .env("NO_COLOR", "1")
                .stdin(Stdio::null())
                .stdout(out.try_clone().expect("log handle"))
                .stderr(out)
                .spawn()
                .expect("spawn rkube");
            Proc {
                name: name.to_string(),
                log,
                child,
            }
        }

        /// The last lines of the log.
        pub fn log_tail(&self) -> String {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
        }
    }

    impl Drop for Proc {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            if std::thread::panicking() {
                eprintln!("--- {} log (tail) ---\n{}", self.name, self.log_tail());
            }
        }
    }

    /// One `rkube etcd` member and one `rkube apiserver` on it (plain HTTP on loopback), in a
    /// temporary directory. Fields drop in order: the API server, the store, the directory.
    pub struct Stack {
        pub api: Proc,
        pub store: Proc,
        /// The API server's URL.
        pub url: String,
        pub dir: TempDir,
    }

    impl Stack {
        /// Starts both processes (not waiting for them: see [`wait_ready`]).
        pub fn start() -> Stack {
            let dir = TempDir::new().expect("temp dir");
            let (client_port, peer_port, api_port) = (free_port(), free_port(), free_port());
            let store_url = format!("http://127.0.0.1:{client_port}");
            let data = dir.path().join("store");
            let store = Proc::spawn(
                dir.path(),
                "store",
                &[
                    "etcd",
                    "--data-dir",
                    data.to_str().expect("utf-8"),
                    "--listen-client-urls",
                    &store_url,
                    "--listen-peer-urls",
                    &format!("http://127.0.0.1:{peer_port}"),
                ],
            );
            let api = Proc::spawn(
                dir.path(),
                "apiserver",
                &[
                    "apiserver",
                    "--etcd-servers",
                    &store_url,
                    "--secure-port",
                    "0",
                    "--insecure-port",
                    &api_port.to_string(),
                ],
            );
            Stack {
                api,
                store,
                url: format!("http://127.0.0.1:{api_port}"),
                dir,
            }
        }
    }

    /// Waits until the API server behind `client` serves the `default` namespace (so the
    /// store answers and the API server has started up), or panics after
    /// [`READY_DEADLINE_SECONDS`].
    pub async fn wait_ready(client: &Client) {
        let deadline = Instant::now() + Duration::from_secs(READY_DEADLINE_SECONDS);
        loop {
            let ns = Api::<Namespace>::all(client).get("default").await;
            if ns.is_ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the API server did not come up: {ns:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
