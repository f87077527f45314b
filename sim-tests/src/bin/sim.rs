//! `cargo sim`: list, run, sweep and determinism-check simulation scenarios.
//!
//! - `cargo sim list`
//! - `cargo sim run SCENARIO --seed N [--timeline FILE] [--set name=value]...`
//! - `cargo sim sweep SCENARIO --seeds A..B [--jobs J] [--set ...]`
//! - `cargo sim check-determinism SCENARIO --seed N [--set ...]`
//! - `cargo sim control SCENARIO` (a negative control must be caught within its stated seeds)

use std::collections::BTreeMap;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "sim", about = "rkube deterministic simulation")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// List scenarios: what they inject and check.
    List,
    /// Run one seed.
    Run {
        scenario: String,
        #[arg(long)]
        seed: u64,
        /// Write an HTML timeline of the run here.
        #[arg(long)]
        timeline: Option<std::path::PathBuf>,
        /// Pin a parameter (name=value); repeatable.
        #[arg(long = "set")]
        sets: Vec<String>,
        /// Print only the run's digest (used by check-determinism).
        #[arg(long, hide = true)]
        digest_only: bool,
    },
    /// Run many seeds, each in its own process.
    Sweep {
        scenario: String,
        /// A..B (B exclusive).
        #[arg(long)]
        seeds: String,
        #[arg(long, default_value_t = 2)]
        jobs: usize,
        #[arg(long = "set")]
        sets: Vec<String>,
    },
    /// Run one seed twice (in two processes) and compare the event traces.
    CheckDeterminism {
        scenario: String,
        #[arg(long)]
        seed: u64,
        #[arg(long = "set")]
        sets: Vec<String>,
    },
    /// Run a negative control's seeds until its planted bug is caught.
    Control { scenario: String },
}

fn parse_sets(sets: &[String]) -> Result<BTreeMap<String, String>, String> {
    sets.iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| format!("--set {s:?}: need name=value"))
        })
        .collect()
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("--seeds {s:?}: need A..B"))?;
    let a: u64 = a.parse().map_err(|e| format!("--seeds start: {e}"))?;
    let b: u64 = b.parse().map_err(|e| format!("--seeds end: {e}"))?;
    if b <= a {
        return Err(format!("--seeds {s:?} is empty"));
    }
    Ok((a, b))
}

fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("off"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
    let cli = Cli::parse();
    match imp::dispatch(cli.cmd) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sim: {e}");
            ExitCode::from(2)
        }
    }
}

#[cfg(not(madsim))]
mod imp {
    use super::*;

    pub fn dispatch(_cmd: Cmd) -> Result<ExitCode, String> {
        let _ = (parse_sets, parse_range);
        Err("the simulator needs the madsim build: run it as `cargo sim ...`".into())
    }
}

#[cfg(madsim)]
mod imp {
    use super::*;
    use rkube_sim_tests::report::{git_commit, replay_command};
    use rkube_sim_tests::scenario::{self, Scenario};

    pub fn dispatch(cmd: Cmd) -> Result<ExitCode, String> {
        match cmd {
            Cmd::List => {
                for s in scenario::all() {
                    println!("{:<26} {}", s.name, s.about);
                }
                Ok(ExitCode::SUCCESS)
            }
            Cmd::Run {
                scenario,
                seed,
                timeline,
                sets,
                digest_only,
            } => run(&scenario, seed, timeline, &sets, digest_only),
            Cmd::Sweep {
                scenario,
                seeds,
                jobs,
                sets,
            } => sweep(&scenario, &seeds, jobs, &sets),
            Cmd::CheckDeterminism {
                scenario,
                seed,
                sets,
            } => check_determinism(&scenario, seed, &sets),
            Cmd::Control { scenario } => control(&scenario),
        }
    }

    fn scenario_named(name: &str) -> Result<Scenario, String> {
        scenario::find(name)
            .ok_or_else(|| format!("unknown scenario {name:?}; see `cargo sim list`"))
    }

    fn run(
        name: &str,
        seed: u64,
        timeline: Option<std::path::PathBuf>,
        sets: &[String],
        digest_only: bool,
    ) -> Result<ExitCode, String> {
        let scn = scenario_named(name)?;
        let pins = parse_sets(sets)?;
        let params = scenario::params_for(&scn, seed, &pins)?;
        if !digest_only {
            println!("scenario {} seed {seed} commit {}", scn.name, git_commit());
            println!("params {}", params.describe());
        }
        let wall = std::time::Instant::now();
        let v = scenario::run_seed(&scn, seed, &params, timeline.is_some());
        if digest_only {
            println!("{:016x}", v.digest);
            return Ok(ExitCode::SUCCESS);
        }
        if let (Some(path), Some(html)) = (&timeline, &v.timeline_html) {
            std::fs::write(path, html).map_err(|e| format!("write {}: {e}", path.display()))?;
            println!("timeline written to {}", path.display());
        }
        let secs = v.sim_millis as f64 / 1000.0;
        let wall_secs = wall.elapsed().as_secs_f64().max(1e-6);
        println!("simulated {secs:.1} s in {wall_secs:.1} s wall ({:.0}x), {} raft steps, {} operations ({} compactions), {} watch responses ({} progress), digest {:016x}", secs / wall_secs, v.raft_steps, v.operations, v.compactions, v.watch_responses, v.progress_notifications, v.digest);
        let replay = replay_command(scn.name, seed, &pins.into_iter().collect::<Vec<_>>());
        if v.violations.is_empty() {
            println!("PASS seed {seed}");
            Ok(ExitCode::SUCCESS)
        } else {
            for x in &v.violations {
                println!("VIOLATION {}: {}", x.property, x.detail);
            }
            println!("FAIL seed {seed} — replay: {replay}");
            Ok(ExitCode::from(1))
        }
    }

    fn child(
        name: &str,
        seed: u64,
        sets: &[String],
        extra: &[&str],
    ) -> Result<std::process::Output, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut cmd = std::process::Command::new(exe);
        cmd.args(["run", name, "--seed", &seed.to_string()])
            .args(extra);
        for s in sets {
            cmd.args(["--set", s]);
        }
        cmd.output().map_err(|e| format!("spawn: {e}"))
    }

    fn sweep(name: &str, seeds: &str, jobs: usize, sets: &[String]) -> Result<ExitCode, String> {
        scenario_named(name)?;
        parse_sets(sets)?;
        let (a, b) = parse_range(seeds)?;
        let total = b - a;
        let next = std::sync::atomic::AtomicU64::new(a);
        let results = std::sync::Mutex::new(BTreeMap::new());
        std::thread::scope(|s| {
            for _ in 0..jobs.max(1) {
                s.spawn(|| loop {
                    let seed = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if seed >= b {
                        break;
                    }
                    let ok = child(name, seed, sets, &[])
                        .map(|o| o.status.success())
                        .unwrap_or(false);
                    let mut r = results.lock().expect("results");
                    r.insert(seed, ok);
                    let failed = r.values().filter(|ok| !**ok).count();
                    eprint!("\r[{}/{}] {} failed   ", r.len(), total, failed);
                });
            }
        });
        eprintln!();
        let r = results.into_inner().expect("results");
        let failed: Vec<u64> = r.iter().filter(|(_, ok)| !**ok).map(|(s, _)| *s).collect();
        let pins: Vec<(String, String)> = parse_sets(sets)?.into_iter().collect();
        for s in &failed {
            println!("failed seed {s}: {}", replay_command(name, *s, &pins));
        }
        println!("{} passed, {} failed", r.len() - failed.len(), failed.len());
        Ok(if failed.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    }

    fn check_determinism(name: &str, seed: u64, sets: &[String]) -> Result<ExitCode, String> {
        scenario_named(name)?;
        let a = child(name, seed, sets, &["--digest-only"])?;
        let b = child(name, seed, sets, &["--digest-only"])?;
        let (da, db) = (
            String::from_utf8_lossy(&a.stdout).trim().to_string(),
            String::from_utf8_lossy(&b.stdout).trim().to_string(),
        );
        if !a.status.success() || !b.status.success() || da.is_empty() {
            return Err(format!(
                "a run failed to produce a digest: {}",
                String::from_utf8_lossy(&a.stderr)
            ));
        }
        if da == db {
            let scn = scenario_named(name)?;
            let params = scenario::params_for(&scn, seed, &parse_sets(sets)?)?;
            let checked = std::panic::catch_unwind(|| {
                scenario::madsim_check_determinism(&scn, seed, &params)
            });
            match checked {
                Ok(_) => {
                    println!("deterministic: seed {seed} digest {da} in two processes; every random draw identical in two in-process runs");
                    Ok(ExitCode::SUCCESS)
                }
                Err(_) => {
                    println!("NONDETERMINISTIC: seed {seed}: madsim's random-draw log diverged (digests matched)");
                    Ok(ExitCode::from(1))
                }
            }
        } else {
            println!("NONDETERMINISTIC: seed {seed} digests {da} and {db}");
            Ok(ExitCode::from(1))
        }
    }

    fn control(name: &str) -> Result<ExitCode, String> {
        let scn = scenario_named(name)?;
        let within = scn
            .catch_within_seeds
            .ok_or_else(|| format!("{name} is not a negative control"))?;
        for seed in 1..=within {
            let out = child(name, seed, &[], &[])?;
            if out.status.code() == Some(1) {
                let text = String::from_utf8_lossy(&out.stdout);
                let first = text
                    .lines()
                    .find(|l| l.starts_with("VIOLATION"))
                    .unwrap_or("");
                println!("control {name}: planted bug caught at seed {seed}: {first}");
                return Ok(ExitCode::SUCCESS);
            }
        }
        println!("control {name}: planted bug NOT caught within {within} seeds");
        Ok(ExitCode::from(1))
    }
}
