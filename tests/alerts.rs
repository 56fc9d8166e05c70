//! `etcdplan alerts` end to end: the binary reads two etcdfiles (3 members
//! with metrics listeners, 5 members on their client URLs), Prometheus'
//! own `promtool check rules` accepts both outputs, and `promtool test rules`
//! feeds them series to prove that etcdMembersDown and
//! etcdInsufficientMembers fire for the generated members (with the quorum of
//! each member count) and not for a target that is not a member.
//!
//! promtool comes from Debian's `prometheus` package (scripts/setup.sh);
//! without it the promtool checks are skipped with a message, and under
//! `CI=true` that is a failure.

use std::path::Path;
use std::process::Command as Process;

use assert_cmd::Command;

fn etcdplan() -> Command {
    let mut cmd = Command::cargo_bin("etcdplan").unwrap_or_else(|e| panic!("no binary: {e}"));
    cmd.env_remove("ETCDPLAN_FILE")
        .timeout(std::time::Duration::from_secs(30));
    cmd
}

const THREE: &str = r#"
[cluster]
name = "prod"

[etcd]
listen_metrics_urls = ["http://{address}:2381"]

[hosts]
service = "process"

[[member]]
name = "a"
address = "10.0.0.1"

[[member]]
name = "b"
address = "10.0.0.2"

[[member]]
name = "c"
address = "10.0.0.3"
"#;

const FIVE: &str = r#"
[cluster]
name = "prod"

[hosts]
service = "process"

[[member]]
name = "a"
address = "10.0.0.1"

[[member]]
name = "b"
address = "10.0.0.2"

[[member]]
name = "c"
address = "10.0.0.3"

[[member]]
name = "d"
address = "10.0.0.4"

[[member]]
name = "e"
address = "10.0.0.5"
"#;

/// `etcdplan alerts [args]` on an etcdfile with `text`, in `dir`; the rules.
fn alerts(dir: &Path, name: &str, text: &str, args: &[&str]) -> String {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, text).unwrap_or_else(|e| panic!("{e}"));
    let out = etcdplan()
        .arg("--file")
        .arg(&file)
        .arg("alerts")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// promtool, or None (skipped) when it is not installed; CI=true makes that a failure.
fn promtool() -> Option<&'static str> {
    let found = Process::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some("promtool");
    }
    let msg = "promtool not found (Debian package prometheus, scripts/setup.sh): skipping the promtool checks";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{msg} (CI=true: a skipped test is a failure)");
    }
    eprintln!("{msg}");
    None
}

/// Runs promtool with `args` in `dir` (under a deadline); panics with its
/// output when it fails.
fn run_promtool(tool: &str, dir: &Path, args: &[&str]) -> String {
    let out = Command::new(tool)
        .current_dir(dir)
        .args(args)
        .timeout(std::time::Duration::from_secs(60))
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

#[test]
fn rules_follow_the_members_and_pass_promtool_check() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let three = alerts(dir.path(), "three", THREE, &[]);
    let five = alerts(dir.path(), "five", FIVE, &["--job", "kube-etcd"]);
    // The selector names each member's metrics endpoint, and the quorum is
    // the member count's.
    assert!(
        three.contains(r#"up{job="etcd",instance=~"10\\.0\\.0\\.1:2381|10\\.0\\.0\\.2:2381|10\\.0\\.0\\.3:2381"} == bool 1) < 2"#),
        "{three}"
    );
    assert!(
        five.contains(r#"up{job="kube-etcd",instance=~"10\\.0\\.0\\.1:2379|10\\.0\\.0\\.2:2379|10\\.0\\.0\\.3:2379|10\\.0\\.0\\.4:2379|10\\.0\\.0\\.5:2379"} == bool 1) < 3"#),
        "{five}"
    );
    let Some(tool) = promtool() else { return };
    for (name, text) in [("three", &three), ("five", &five)] {
        let file = format!("{name}.rules.yml");
        std::fs::write(dir.path().join(&file), text).unwrap_or_else(|e| panic!("{e}"));
        let said = run_promtool(tool, dir.path(), &["check", "rules", &file]);
        assert!(said.contains("SUCCESS: 13 rules found"), "{said}");
    }
}

/// One `up` series (a value held for the whole test).
fn up(job: &str, instance: &str, value: u8) -> String {
    format!(
        "      - series: 'up{{job=\"{job}\",instance=\"{instance}\"}}'\n        values: '{value}x40'\n"
    )
}

/// An alert expected at `at` minutes (none when `value` is None).
fn expect(
    alert: &str,
    at: u32,
    job: &str,
    severity: &str,
    annotations: Option<(String, String)>,
) -> String {
    let mut s =
        format!("      - eval_time: {at}m\n        alertname: {alert}\n        exp_alerts:");
    match annotations {
        None => s.push_str(" []\n"),
        Some((summary, description)) => s.push_str(&format!(
            "\n          - exp_labels:\n              severity: {severity}\n              job: {job}\n            exp_annotations:\n              summary: '{summary}'\n              description: '{description}'\n"
        )),
    }
    s
}

fn down(n: usize, of: usize) -> Option<(String, String)> {
    Some((
        r#"etcd cluster "prod": members are down."#.to_owned(),
        format!(
            r#"etcd cluster "prod": {n} of its {of} members are down or cannot reach their peers."#
        ),
    ))
}

fn insufficient(up: usize, of: usize, quorum: usize) -> Option<(String, String)> {
    Some((
        r#"etcd cluster "prod" has insufficient number of members."#.to_owned(),
        format!(
            r#"etcd cluster "prod": only {up} of its {of} members are up, fewer than the quorum of {quorum}: the cluster takes no writes."#
        ),
    ))
}

/// One test case: the series and the expectations.
fn case(series: &[String], expectations: &[String]) -> String {
    format!(
        "  - interval: 1m\n    input_series:\n{}    alert_rule_test:\n{}",
        series.concat(),
        expectations.concat()
    )
}

#[test]
fn members_down_and_insufficient_members_fire_for_the_generated_instances_only() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let three = alerts(dir.path(), "three", THREE, &[]);
    let five = alerts(dir.path(), "five", FIVE, &["--job", "kube-etcd"]);
    let Some(tool) = promtool() else { return };
    std::fs::write(dir.path().join("three.rules.yml"), &three).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(dir.path().join("five.rules.yml"), &five).unwrap_or_else(|e| panic!("{e}"));

    let m3 = ["10.0.0.1:2381", "10.0.0.2:2381", "10.0.0.3:2381"];
    // An etcd of the same job that is not a member (another cluster), and a
    // member's client URL (it is scraped on 2381, not there).
    let strangers = [
        up("etcd", "10.9.9.9:2381", 0),
        up("etcd", "10.0.0.1:2379", 0),
        up("other", "10.0.0.2:2381", 0),
    ];
    let mut three_tests =
        String::from("rule_files:\n  - three.rules.yml\nevaluation_interval: 1m\ntests:\n");
    // One member down: etcdMembersDown after its 20m, quorum kept.
    three_tests.push_str(&case(
        &[
            vec![
                up("etcd", m3[0], 0),
                up("etcd", m3[1], 1),
                up("etcd", m3[2], 1),
            ],
            strangers.to_vec(),
        ]
        .concat(),
        &[
            expect("etcdMembersDown", 10, "etcd", "warning", None),
            expect("etcdMembersDown", 25, "etcd", "warning", down(1, 3)),
            expect("etcdInsufficientMembers", 25, "etcd", "critical", None),
        ],
    ));
    // Two down: fewer than the quorum of 2 after 3m.
    three_tests.push_str(&case(
        &[
            vec![
                up("etcd", m3[0], 0),
                up("etcd", m3[1], 0),
                up("etcd", m3[2], 1),
            ],
            strangers.to_vec(),
        ]
        .concat(),
        &[
            expect("etcdInsufficientMembers", 2, "etcd", "critical", None),
            expect(
                "etcdInsufficientMembers",
                5,
                "etcd",
                "critical",
                insufficient(1, 3, 2),
            ),
            expect("etcdMembersDown", 25, "etcd", "warning", down(2, 3)),
        ],
    ));
    // Every member up, only the strangers down: nothing fires.
    three_tests.push_str(&case(
        &[
            vec![
                up("etcd", m3[0], 1),
                up("etcd", m3[1], 1),
                up("etcd", m3[2], 1),
            ],
            strangers.to_vec(),
        ]
        .concat(),
        &[
            expect("etcdMembersDown", 25, "etcd", "warning", None),
            expect("etcdInsufficientMembers", 25, "etcd", "critical", None),
        ],
    ));
    // A member Prometheus does not scrape at all is down too (its series is missing).
    three_tests.push_str(&case(
        &[up("etcd", m3[0], 1), up("etcd", m3[1], 1)],
        &[expect("etcdMembersDown", 25, "etcd", "warning", down(1, 3))],
    ));
    std::fs::write(dir.path().join("three.test.yml"), &three_tests)
        .unwrap_or_else(|e| panic!("{e}"));
    run_promtool(tool, dir.path(), &["test", "rules", "three.test.yml"]);

    // Five members on their client URLs: two down keep the quorum of 3, three do not.
    let m5: Vec<String> = (1..=5).map(|i| format!("10.0.0.{i}:2379")).collect();
    let with_down = |n: usize| -> Vec<String> {
        m5.iter()
            .enumerate()
            .map(|(i, m)| up("kube-etcd", m, u8::from(i >= n)))
            .chain([
                up("etcd", "10.0.0.1:2379", 0),
                up("kube-etcd", "10.0.0.6:2379", 0),
            ])
            .collect()
    };
    let mut five_tests =
        String::from("rule_files:\n  - five.rules.yml\nevaluation_interval: 1m\ntests:\n");
    five_tests.push_str(&case(
        &with_down(2),
        &[
            expect("etcdInsufficientMembers", 10, "kube-etcd", "critical", None),
            expect("etcdMembersDown", 25, "kube-etcd", "warning", down(2, 5)),
        ],
    ));
    five_tests.push_str(&case(
        &with_down(3),
        &[
            expect(
                "etcdInsufficientMembers",
                10,
                "kube-etcd",
                "critical",
                insufficient(2, 5, 3),
            ),
            expect("etcdMembersDown", 25, "kube-etcd", "warning", down(3, 5)),
        ],
    ));
    five_tests.push_str(&case(
        &with_down(0),
        &[
            expect("etcdInsufficientMembers", 10, "kube-etcd", "critical", None),
            expect("etcdMembersDown", 25, "kube-etcd", "warning", None),
        ],
    ));
    std::fs::write(dir.path().join("five.test.yml"), &five_tests).unwrap_or_else(|e| panic!("{e}"));
    run_promtool(tool, dir.path(), &["test", "rules", "five.test.yml"]);
}

#[test]
fn a_bad_job_name_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let file = dir.path().join("three.toml");
    std::fs::write(&file, THREE).unwrap_or_else(|e| panic!("{e}"));
    let out = etcdplan()
        .arg("--file")
        .arg(&file)
        .args(["alerts", "--job", ""])
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("job name"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
