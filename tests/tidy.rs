//! Tidy: enforces the platform seam. Only `src/platform/` (and OS back-ends in `linux/`
//! submodules) may name the async runtime's I/O and timers, clocks, files, sockets, threads or
//! OS randomness; anything else would escape the simulation and break determinism.

use std::path::{Path, PathBuf};

/// Patterns that belong only in the platform seam, with why.
const FORBIDDEN: &[(&str, &str)] = &[
    ("tokio::net", "sockets"),
    ("tokio::time", "timers"),
    ("tokio::fs", "files"),
    ("tokio::spawn", "tasks"),
    ("tokio::task", "tasks"),
    ("tokio::runtime", "runtime"),
    ("tokio::sync::watch", "shutdown signals"),
    ("tokio::signal", "signals"),
    ("madsim::", "the simulator"),
    ("std::fs", "files"),
    (
        "std::net",
        "sockets and addresses (use platform::net's re-exports)",
    ),
    ("std::thread", "threads"),
    ("SystemTime::now(", "wall clock"),
    ("Instant::now(", "monotonic clock"),
    ("thread_rng(", "OS randomness"),
    ("OsRng", "OS randomness"),
    ("rand::random", "OS randomness"),
    ("from_os_rng", "OS randomness"),
    ("from_entropy(", "OS randomness"),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .expect("read src dir")
        .map(|e| e.expect("dir entry").path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn allowed(rel: &str) -> bool {
    rel.starts_with("src/platform/") || rel.split('/').any(|part| part == "linux")
}

/// Lines of `text` that name a forbidden item, ignoring comments.
fn violations(rel: &str, text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        for (pat, what) in FORBIDDEN {
            // `SharedRng::from_entropy()` is the seam's own API, not OS randomness.
            if *pat == "from_entropy(" && code.contains("SharedRng::from_entropy(") {
                continue;
            }
            if code.contains(pat) {
                found.push(format!("{rel}:{}: names {pat} ({what})", n + 1));
            }
        }
    }
    found
}

#[test]
fn only_the_platform_seam_names_runtime_clock_disk_net_or_os_randomness() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    assert!(files.len() > 5, "expected to scan the source tree");
    let mut all = Vec::new();
    for f in &files {
        let rel = f
            .strip_prefix(root)
            .unwrap()
            .to_string_lossy()
            .replace('\\', "/");
        if allowed(&rel) {
            continue;
        }
        all.extend(violations(&rel, &std::fs::read_to_string(f).unwrap()));
    }
    assert!(all.is_empty(), "outside src/platform/:\n{}", all.join("\n"));
}

#[test]
fn the_checker_catches_a_planted_violation() {
    let planted =
        "fn f() { let _ = std::time::Instant::now(); }\n// tokio::spawn in a comment is fine\n";
    let v = violations("src/store/x.rs", planted);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(v[0].contains("Instant::now("));
    assert!(allowed("src/platform/time.rs"));
    assert!(allowed("src/container/linux/ns.rs"));
    assert!(!allowed("src/store/server.rs"));
}
