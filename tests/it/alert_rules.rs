//! The Prometheus alert rules shipped in deploy/prometheus, unit-tested by
//! Prometheus's own `promtool test rules` (Debian's `prometheus` package,
//! installed by scripts/test.sh), and checked to name only metrics improbe
//! exposes.

use std::path::Path;
use std::process::Command;

const RULES: &str = include_str!("../../deploy/prometheus/improbe-rules.yml");
/// Where the metric names are written out.
const EXPOSITION_SOURCES: [&str; 3] = [
    include_str!("../../src/daemon/server.rs"),
    include_str!("../../src/daemon/metrics.rs"),
    include_str!("../../src/daemon/schedule.rs"),
];

#[test]
fn promtool_passes_the_rules_unit_tests() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus");
    let output = Command::new("promtool")
        .args(["test", "rules", "improbe-rules.test.yml"])
        .current_dir(&dir)
        .output();
    crate::common::require(output.is_ok(), "promtool (Debian's prometheus)");
    let output = output.unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let check = Command::new("promtool")
        .args(["check", "rules", "improbe-rules.yml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
}

#[test]
fn the_rules_name_only_metrics_improbe_exposes() {
    let mut names: Vec<&str> = RULES
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|word| word.starts_with("improbe_"))
        .collect();
    names.sort_unstable();
    names.dedup();
    assert!(names.len() >= 6, "{names:?}");
    for name in names {
        let quoted = format!("\"{name}\"");
        assert!(
            EXPOSITION_SOURCES
                .iter()
                .any(|source| source.contains(&quoted)),
            "the rules use {name}, which improbe does not expose"
        );
    }
}
