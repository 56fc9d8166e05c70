//! End to end over ssh: `etcdplan restore SNAPSHOT` on three namespace hosts
//! running Debian sid's etcd 3.5.30 (whose etcdutl has `--bump-revision`).
//! Keys A are written, a snapshot taken with `etcdplan snapshot` (its
//! manifest's content digest checked against what etcdctl reads), keys B
//! written; a
//! corrupt snapshot and a restore without `--allow-data-loss` are refused
//! with every member untouched; the restore then leaves a new cluster with
//! all of A, none of B, the snapshot's revision plus the bump, the old data
//! moved aside on every host, and nothing left to plan. A restore killed
//! half way is explained by the next `plan` and finished by running it again.

mod harness;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use etcdplan_core::backup::{ContentHasher, Manifest, manifest_name};
use harness::booted::boot_or_skip;
use harness::failpoint::Running;
use harness::release::etcd_3_5_30_or_skip;
use harness::testbed::{Testbed, up_or_skip};
use harness::text;

type Res<T = ()> = Result<T, Box<dyn std::error::Error>>;

const BUMP: i64 = 1_000_000_000;

fn etcdfile(tb: &Testbed, release: &Path) -> String {
    let bin = release.join("usr/bin/etcd");
    tb.etcdfile(
        "restored",
        &format!("binary = \"{}\"\n", bin.display()),
        &tb.all(),
        &[],
    )
}

/// The release's etcdctl against `endpoints`, checked.
fn ctl(release: &Path, endpoints: &str, args: &[&str]) -> Res<String> {
    let out = Command::new(release.join("usr/bin/etcdctl"))
        .env_remove("ETCDCTL_ENDPOINTS")
        .args(["--endpoints", endpoints, "--command-timeout=10s"])
        .args(args)
        .output()?;
    if !out.status.success() {
        return Err(format!("etcdctl {args:?}: {}", text(&out)).into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn json(s: &str) -> Res<serde_json::Value> {
    Ok(serde_json::from_str(s)?)
}

/// The store's revision as a member's response header says.
fn revision(release: &Path, ep: &str) -> Res<i64> {
    let v = json(&ctl(release, ep, &["get", "none", "-w", "json"])?)?;
    v["header"]["revision"]
        .as_i64()
        .ok_or_else(|| format!("no revision in {v}").into())
}

fn cluster_id(release: &Path, ep: &str) -> Res<u64> {
    let v = json(&ctl(release, ep, &["get", "none", "-w", "json"])?)?;
    v["header"]["cluster_id"]
        .as_u64()
        .ok_or_else(|| format!("no cluster id in {v}").into())
}

/// Keys under `prefix`, as `key=value`, sorted.
fn keys(release: &Path, ep: &str, prefix: &str) -> Res<Vec<String>> {
    let out = ctl(release, ep, &["get", prefix, "--prefix"])?;
    let lines: Vec<&str> = out.lines().collect();
    Ok(lines.chunks(2).map(|kv| kv.join("=")).collect())
}

/// The digest of every key and value at `rev`, as `content_digest` computes it.
fn digest(release: &Path, ep: &str, rev: i64) -> Res<etcdplan_core::backup::ContentDigest> {
    let v = json(&ctl(
        release,
        ep,
        &[
            "get",
            "",
            "--from-key",
            "-w",
            "json",
            &format!("--rev={rev}"),
        ],
    )?)?;
    let b64 = |x: &serde_json::Value| -> Res<Vec<u8>> {
        let s = x.as_str().unwrap_or_default();
        Ok(base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            s,
        )?)
    };
    let mut h = ContentHasher::new();
    for kv in v["kvs"].as_array().cloned().unwrap_or_default() {
        h.add(&b64(&kv["key"])?, &b64(&kv["value"])?);
    }
    Ok(h.finish())
}

fn aside_dirs(tb: &Testbed, i: usize) -> Res<Vec<PathBuf>> {
    let data = tb.hosts[i].file("/var/lib/etcd");
    let mut out = Vec::new();
    for e in std::fs::read_dir(data)? {
        let p = e?.path();
        if p.file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("member.restored-aside-"))
        {
            out.push(p);
        }
    }
    Ok(out)
}

/// A cluster running `release` on `tb`, with keys `a/0..n` written, a
/// snapshot taken as `take` says, then keys
/// `b/0..n`: what the restore tests start from. Returns the etcdfile, the
/// endpoints of all and of the first member, and the snapshot's path.
struct Started {
    file: String,
    eps: String,
    ep0: String,
    snap: PathBuf,
}

/// How the tests' snapshot is taken.
enum Take<'a> {
    /// `etcdctl snapshot save` from the first member, to this file name,
    /// without a manifest.
    Etcdctl(&'a str),
    /// `etcdplan snapshot --out`: from the leader, checked, with its manifest.
    Etcdplan,
}

fn started(tb: &Testbed, release: &Path, n: usize, take: Take) -> Res<Started> {
    let file = etcdfile(tb, release);
    let out = tb.etcdplan(&file, &["apply", "--auto-approve"]);
    if !out.status.success() {
        return Err(format!("apply failed:\n{}", text(&out)).into());
    }
    let eps = tb.client_endpoints(&tb.all()).join(",");
    let ep0 = tb.client_endpoints(&[0]).remove(0);
    let put = |prefix: &str, value: &str| -> Res {
        for i in 0..n {
            ctl(
                release,
                &eps,
                &["put", &format!("{prefix}/{i}"), &format!("{value}{i}")],
            )?;
        }
        Ok(())
    };
    put("a", "A")?;
    let snap = match take {
        Take::Etcdctl(name) => {
            let snap = tb.dir.path().join(name);
            ctl(
                release,
                &ep0,
                &["snapshot", "save", &snap.display().to_string()],
            )?;
            snap
        }
        Take::Etcdplan => {
            let dir = tb.dir.path().join("snapshots");
            let out = tb.etcdplan(&file, &["snapshot", "--out", &dir.display().to_string()]);
            if !out.status.success() {
                return Err(format!("snapshot failed:\n{}", text(&out)).into());
            }
            let mut dbs: Vec<PathBuf> = std::fs::read_dir(&dir)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "db"))
                .collect();
            if dbs.len() != 1 {
                return Err(format!("expected one snapshot in {}: {dbs:?}", dir.display()).into());
            }
            dbs.remove(0)
        }
    };
    put("b", "B")?;
    Ok(Started {
        file,
        eps,
        ep0,
        snap,
    })
}

/// `etcdplan restore SNAPSHOT --allow-data-loss --auto-approve`.
fn restore_accepting_loss(tb: &Testbed, file: &str, snap: &Path) -> Output {
    tb.etcdplan(
        file,
        &[
            "restore",
            &snap.display().to_string(),
            "--allow-data-loss",
            "--auto-approve",
        ],
    )
}

/// After a restore of [`started`]'s snapshot: the `n` keys written before
/// it, none written after, and nothing left to plan.
fn the_keys_before_the_snapshot_only(
    tb: &Testbed,
    file: &str,
    release: &Path,
    ep: &str,
    n: usize,
) -> Res {
    let a = keys(release, ep, "a/")?;
    if a.len() != n {
        return Err(format!("expected {n} keys a/, found {a:?}").into());
    }
    let b = keys(release, ep, "b/")?;
    if !b.is_empty() {
        return Err(format!("keys written after the snapshot survived: {b:?}").into());
    }
    let out = tb.etcdplan(file, &["plan"]);
    if !text(&out).contains("No changes.") {
        return Err(format!("plan is not empty:\n{}", text(&out)).into());
    }
    Ok(())
}

fn refused(out: &Output, says: &str) -> Res {
    let t = text(out);
    if out.status.success() {
        return Err(format!("not refused:\n{t}").into());
    }
    if !t.contains(says) {
        return Err(format!("refused without saying {says:?}:\n{t}").into());
    }
    Ok(())
}

#[test]
fn a_snapshot_is_restored_as_a_new_cluster_with_its_revision_bumped() -> Res {
    let Some(tb) = up_or_skip(3) else {
        return Ok(());
    };
    let Some(release) = etcd_3_5_30_or_skip() else {
        return Ok(());
    };
    // Keys A, `etcdplan snapshot` (its manifest beside it), keys B.
    let Started {
        file,
        eps,
        ep0,
        snap,
    } = started(&tb, &release, 10, Take::Etcdplan)?;
    let name = snap
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let manifest = Manifest::parse(&std::fs::read_to_string(
        snap.with_file_name(manifest_name(&name)),
    )?)?;
    let snap_rev = manifest.revision;
    // The manifest's content digest is what etcdctl reads at its revision.
    assert_eq!(manifest.content, digest(&release, &ep0, snap_rev)?);
    // The 10 keys A, and the record the bootstrap apply left in etcdplan/history/.
    assert_eq!(manifest.content.keys, 11);
    let bytes = std::fs::read(&snap)?;
    let old_id = cluster_id(&release, &ep0)?;
    let live_rev = revision(&release, &ep0)?;
    let pids = tb.etcd_pids();
    assert_eq!(pids.len(), 3, "{pids:?}");

    // A truncated snapshot is refused before anything is stopped.
    let bad = tb.dir.path().join("bad.db");
    std::fs::write(&bad, &bytes[..bytes.len() / 2])?;
    let out = restore_accepting_loss(&tb, &file, &bad);
    refused(&out, "sha256 trailer does not")?;
    assert_eq!(tb.etcd_pids(), pids, "a refused restore stopped a member");

    // A healthy cluster with newer revisions: refused, saying how many.
    let out = tb.etcdplan(
        &file,
        &["restore", &snap.display().to_string(), "--auto-approve"],
    );
    refused(
        &out,
        &format!(
            "the {} revisions written since the snapshot would be lost",
            live_rev - snap_rev
        ),
    )?;
    assert_eq!(tb.etcd_pids(), pids, "a refused restore stopped a member");

    // The restore.
    let out = restore_accepting_loss(&tb, &file, &snap);
    let t = text(&out);
    assert!(out.status.success(), "restore failed:\n{t}");
    assert!(
        t.contains("--bump-revision 1000000000 --mark-compacted"),
        "{t}"
    );
    assert!(t.contains("keys match the manifest's digest"), "{t}");
    assert!(t.contains("member.restored-aside-"), "{t}");

    let want_a: Vec<String> = (0..10).map(|i| format!("a/{i}=A{i}")).collect();
    for ep in tb.client_endpoints(&tb.all()) {
        let mut got = keys(&release, &ep, "a/")?;
        got.sort();
        let mut want = want_a.clone();
        want.sort();
        assert_eq!(got, want, "{ep}");
        assert_eq!(keys(&release, &ep, "b/")?, Vec::<String>::new(), "{ep}");
    }
    // One revision more: the restore's own record in etcdplan/history/.
    assert_eq!(revision(&release, &ep0)?, snap_rev + BUMP + 1);
    assert_ne!(cluster_id(&release, &ep0)?, old_id, "the cluster ID is new");
    let members = json(&ctl(&release, &eps, &["member", "list", "-w", "json"])?)?;
    assert_eq!(
        members["members"].as_array().map(Vec::len),
        Some(3),
        "{members}"
    );
    for i in tb.all() {
        let aside = aside_dirs(&tb, i)?;
        assert_eq!(aside.len(), 1, "host {i}: {aside:?}");
        assert!(aside[0].join("snap/db").exists(), "{:?}", aside[0]);
    }
    let now = tb.etcd_pids();
    assert_eq!(now.len(), 3, "{now:?}");

    // Nothing left to plan: the new token is what the members' files say.
    let out = tb.etcdplan(&file, &["plan"]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(t.contains("No changes."), "{t}");
    let cfg = std::fs::read_to_string(tb.hosts[0].file("/etc/etcd/etcd.conf.yml"))?;
    assert!(
        cfg.contains("initial-cluster-token: 'restored-restored-"),
        "{cfg}"
    );
    Ok(())
}

#[test]
fn a_restore_killed_half_way_is_explained_by_plan_and_finished_by_a_rerun() -> Res {
    let Some(tb) = up_or_skip(3) else {
        return Ok(());
    };
    let Some(release) = etcd_3_5_30_or_skip() else {
        return Ok(());
    };
    // No manifest this time: the integrity check alone.
    let Started { file, snap, .. } = started(&tb, &release, 5, Take::Etcdctl("plain.db"))?;

    // The restore, killed as it starts restoring the second member: the
    // first has its data restored, the others are stopped.
    let snap_arg = snap.display().to_string();
    let mut run = Running::start(
        tb.dir.path(),
        &file,
        &[
            "restore",
            &snap_arg,
            "--allow-data-loss",
            "--auto-approve",
            "--json",
        ],
        "",
    )?;
    let at = run.wait_for(
        |l| l.contains("\"step_started\"") && l.contains("move etcd-2's data aside"),
        Duration::from_secs(600),
    );
    run.kill();
    let all = run.so_far();
    assert!(at, "the restore was not killed there:\n{all}");
    assert!(all.contains("only its integrity"), "{all}");
    let id = all
        .split("(id ")
        .nth(1)
        .and_then(|r| r.get(..12))
        .ok_or_else(|| format!("no lock id in {all}"))?
        .to_owned();

    // plan explains the half-done restore instead of planning around it.
    let out = tb.etcdplan(&file, &["plan"]);
    let t = text(&out);
    assert!(t.contains("did not finish"), "{t}");
    assert!(t.contains("etcdplan restore SNAPSHOT"), "{t}");
    assert!(t.contains("member.restored-aside-"), "{t}");

    // The dead restore's lock files are removed by its id, and the rerun
    // finishes the restore.
    let out = tb.etcdplan(&file, &["force-unlock", &id]);
    assert!(
        text(&out).contains("Removed the lock files"),
        "{}",
        text(&out)
    );
    let out = restore_accepting_loss(&tb, &file, &snap);
    let t = text(&out);
    assert!(out.status.success(), "the rerun failed:\n{t}");
    for ep in tb.client_endpoints(&tb.all()) {
        assert_eq!(keys(&release, &ep, "a/")?.len(), 5, "{ep}");
        assert_eq!(keys(&release, &ep, "b/")?, Vec::<String>::new(), "{ep}");
    }
    // The first member's old data and its first restore are both kept.
    assert_eq!(aside_dirs(&tb, 0)?.len(), 2);
    let out = tb.etcdplan(&file, &["plan"]);
    let t = text(&out);
    assert!(t.contains("No changes."), "{t}");
    Ok(())
}

#[test]
fn on_etcd_3_4_the_restore_uses_etcdctl_and_says_it_cannot_bump() -> Res {
    let Some(tb) = up_or_skip(3) else {
        return Ok(());
    };
    // Debian's etcd-server and etcd-client 3.4.23, as installed on this machine.
    let system = Path::new("/");
    let Started {
        file, ep0, snap, ..
    } = started(&tb, system, 5, Take::Etcdctl("v34.db"))?;
    let status = Command::new("/usr/bin/etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "status", "-w", "json"])
        .arg(&snap)
        .output()?;
    let snap_rev = json(&String::from_utf8_lossy(&status.stdout))?["revision"]
        .as_i64()
        .ok_or("no revision in snapshot status")?;

    let out = restore_accepting_loss(&tb, &file, &snap);
    let t = text(&out);
    assert!(out.status.success(), "restore failed:\n{t}");
    assert!(t.contains("no revision bump"), "{t}");
    assert!(
        t.contains("restore the snapshot with etcdctl (no revision bump)"),
        "{t}"
    );
    // One revision more: the restore's own record in etcdplan/history/.
    assert_eq!(revision(system, &ep0)?, snap_rev + 1);
    the_keys_before_the_snapshot_only(&tb, &file, system, &ep0, 5)
}

/// Under systemd (booted hosts, Debian's etcd 3.4.23): once every member is
/// stopped for the restore, its unit is disabled too, so a host rebooted
/// half way does not start etcd on a data dir being replaced; the restore
/// run again finishes, and its start enables and starts every unit.
#[test]
fn under_systemd_a_restore_keeps_stopped_members_from_starting_at_boot() -> Res {
    let Some(tb) = boot_or_skip(3) else {
        return Ok(());
    };
    let system = Path::new("/");
    let Started {
        file, ep0, snap, ..
    } = started(&tb, system, 5, Take::Etcdctl("sd.db"))?;
    for i in tb.all() {
        assert_eq!(tb.unit_state(i), ("active".into(), "enabled".into()));
    }
    // The step after which every member is stopped, from the plan shown
    // (no answer on stdin: nothing runs).
    let shown = text(&tb.etcdplan(
        &file,
        &["restore", &snap.display().to_string(), "--allow-data-loss"],
    ));
    let last_stop: usize = shown
        .lines()
        .filter(|l| l.contains(". stop etcd-"))
        .filter_map(|l| l.trim().split('.').next()?.parse().ok())
        .max()
        .ok_or_else(|| format!("no stop step in the plan:\n{shown}"))?;
    let snap_arg = snap.display().to_string();
    let mut run = Running::start(
        tb.dir.path(),
        &file,
        &["restore", &snap_arg, "--allow-data-loss", "--auto-approve"],
        &format!("after-step:{}", last_stop - 1),
    )?;
    let reached = run.wait_for_failpoint(Duration::from_secs(600));
    let held: Vec<(String, String)> = tb.all().into_iter().map(|i| tb.unit_state(i)).collect();
    run.kill();
    let seen = run.so_far();
    assert!(reached, "the failpoint was not reached:\n{seen}");
    for st in &held {
        assert_eq!(
            st,
            &("inactive".to_owned(), "disabled".to_owned()),
            "{seen}"
        );
    }
    // A reboot half way leaves etcd stopped.
    tb.reboot(1)?;
    assert_eq!(tb.unit_state(1), ("inactive".into(), "disabled".into()));

    // Run again (waiting out the killed run's lock files): it finishes.
    let out = tb.etcdplan(
        &file,
        &[
            "restore",
            &snap.display().to_string(),
            "--allow-data-loss",
            "--auto-approve",
            "--lock-timeout",
            "40s",
        ],
    );
    let t = text(&out);
    assert!(out.status.success(), "the rerun failed:\n{t}");
    for i in tb.all() {
        assert_eq!(tb.unit_state(i), ("active".into(), "enabled".into()));
    }
    the_keys_before_the_snapshot_only(&tb, &file, system, &ep0, 5)
}
