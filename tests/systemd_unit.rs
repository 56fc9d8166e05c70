//! The rendered `etcd.service` passes `systemd-analyze verify` with no output at
//! all (it exits 0 on unknown keys and bad values, printing only warnings), for
//! every example etcdfile and the demo.

mod common;

use std::process::Command;

#[test]
fn units_pass_systemd_analyze_verify_silently() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        let msg = "systemd-analyze is not installed (Debian: systemd)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{msg}");
        }
        eprintln!("SKIPPED: {msg}");
        return;
    }
    let mut checked = 0;
    for f in common::example_etcdfiles() {
        let loaded =
            etcdplan::config::load(&f).unwrap_or_else(|e| panic!("{}: {e:?}", f.display()));
        let d = loaded.desired;
        for m in &d.members {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let unit = dir.path().join(etcdplan::service::systemd::UNIT);
            std::fs::write(&unit, etcdplan::service::systemd::unit(&d, m))
                .unwrap_or_else(|e| panic!("{e}"));
            let out = Command::new("systemd-analyze")
                .arg("verify")
                .arg(&unit)
                .output()
                .unwrap_or_else(|e| panic!("{e}"));
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success() && said.trim().is_empty(),
                "{} member {}: systemd-analyze verify said:\n{said}",
                f.display(),
                m.name
            );
            checked += 1;
        }
    }
    assert!(checked >= 14, "only {checked} units checked");
}

#[test]
fn a_broken_unit_is_noticed() {
    // The check above must be able to fail: a typo in a key is reported.
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        return;
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let unit = dir.path().join("etcd.service");
    std::fs::write(
        &unit,
        "[Service]\nType=notify\nExecStart=/usr/bin/etcd\nRestartz=on-failure\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!String::from_utf8_lossy(&out.stderr).trim().is_empty());
}
