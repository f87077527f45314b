//! What a run prints: the verdict, the seed, the commit, simulated seconds and events, and
//! the exact command that replays it.

/// The git commit of the source tree, if known.
pub fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The command that replays one run.
pub fn replay_command(scenario: &str, seed: u64, sets: &[(String, String)]) -> String {
    let mut cmd = format!("cargo sim run {scenario} --seed {seed}");
    for (k, v) in sets {
        cmd.push_str(&format!(" --set {k}={v}"));
    }
    cmd
}

#[cfg(test)]
mod tests {
    #[test]
    fn replay_command_carries_pins() {
        let c = super::replay_command("store-crash", 7, &[("members".into(), "5".into())]);
        assert_eq!(c, "cargo sim run store-crash --seed 7 --set members=5");
    }
}
