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

/// A 1-member systemd etcdfile with `hosts_extra` in `[hosts]`.
fn one_member(hosts_extra: &str) -> etcdplan::config::Desired {
    common::desired_from(&format!(
        "[cluster]\nname = \"main\"\n[hosts]\ntransport = \"ssh\"\nservice = \"systemd\"\n{hosts_extra}\n\
[[member]]\nname = \"etcd-1\"\naddress = \"10.0.0.11\"\n"
    ))
}

#[test]
fn run_as_puts_user_in_the_unit_and_root_changes_nothing() {
    let root = one_member("");
    let explicit_root = one_member("run_as = \"root\"");
    let etcd = one_member("run_as = \"etcd\"");
    let unit = |d: &etcdplan::config::Desired| etcdplan::service::systemd::unit(d, &d.members[0]);
    // Root's unit is the one etcdplan always wrote (pinned by the
    // systemd-bootstrap planner golden too).
    assert_eq!(unit(&root), unit(&explicit_root));
    assert!(!unit(&root).contains("User="), "{}", unit(&root));
    let text = unit(&etcd);
    assert_eq!(
        text.lines()
            .filter(|l| l.starts_with("User="))
            .collect::<Vec<_>>(),
        ["User=etcd"]
    );
    // No Group=: systemd takes the user's primary group, as Debian's unit does.
    assert!(!text.contains("Group="), "{text}");
    insta::assert_snapshot!("unit-run-as-etcd", text);
    if have_systemd_analyze() {
        let (ok, said) = verify(&text);
        assert!(
            ok && said.trim().is_empty(),
            "systemd-analyze verify said:\n{said}"
        );
    }
}

#[test]
fn systemd_waits_out_etcds_graceful_stop_before_killing_it() {
    let unit = |etcd_extra: &str| {
        let d = common::desired_from(&format!(
            "[cluster]\nname = \"main\"\n[etcd]\n{etcd_extra}\n[hosts]\ntransport = \"ssh\"\nservice = \"systemd\"\n\
[[member]]\nname = \"etcd-1\"\naddress = \"10.0.0.11\"\n"
        ));
        etcdplan::service::systemd::unit(&d, &d.members[0])
    };
    let stop = |text: &str| {
        text.lines()
            .filter(|l| l.starts_with("TimeoutStopSec="))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    // etcd's defaults: its worst case (2 × (5 s + 2 × 1 s) + 2 s = 16 s) fits in 30 s.
    assert_eq!(stop(&unit("")), ["TimeoutStopSec=30s"]);
    // A 5 s election timeout: the request timeout is 15 s, drained then
    // handed over, so 32 s.
    assert_eq!(
        stop(&unit(
            "election_timeout = \"5000ms\"\nheartbeat_interval = \"500ms\""
        )),
        ["TimeoutStopSec=32s"]
    );
}
