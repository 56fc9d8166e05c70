//! The rendered `etcd.service` passes `systemd-analyze verify` with no output at
//! all (it exits 0 on unknown keys and bad values, printing only warnings), for
//! every example etcdfile and the demo.

mod common;

use std::process::Command;

/// Whether systemd-analyze can run; under `CI=true` its absence is a failure.
fn have_systemd_analyze() -> bool {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok()
    {
        return true;
    }
    let msg = "systemd-analyze is not installed (Debian: systemd)";
    assert!(!std::env::var("CI").is_ok_and(|v| v == "true"), "{msg}");
    eprintln!("SKIPPED: {msg}");
    false
}

/// Runs `systemd-analyze verify` on a unit's text; returns its exit status and all it said.
fn verify(unit_text: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let unit = dir.path().join(etcdplan::service::systemd::UNIT);
    std::fs::write(&unit, unit_text).unwrap_or_else(|e| panic!("{e}"));
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
    (out.status.success(), said)
}

#[test]
fn units_pass_systemd_analyze_verify_silently() {
    if !have_systemd_analyze() {
        return;
    }
    let mut checked = 0;
    for f in common::example_etcdfiles() {
        let loaded =
            etcdplan::config::load(&f).unwrap_or_else(|e| panic!("{}: {e:?}", f.display()));
        let d = loaded.desired;
        for m in &d.members {
            let (ok, said) = verify(&etcdplan::service::systemd::unit(&d, m));
            assert!(
                ok && said.trim().is_empty(),
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
    if !have_systemd_analyze() {
        return;
    }
    let (_, said) =
        verify("[Service]\nType=notify\nExecStart=/usr/bin/etcd\nRestartz=on-failure\n");
    assert!(said.contains("Restartz"), "{said}");
}
