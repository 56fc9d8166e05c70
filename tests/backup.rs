//! Snapshots end to end with real etcd (three members started as local
//! processes, each test in its own network namespace): `snapshot
//! --verify-restore` passes on a good snapshot and fails on one whose keys
//! were altered under a still-valid trailer; the integrity check refuses
//! corrupt and truncated files; `watch` takes scheduled snapshots, copies
//! each and keeps the newest; a failing copy is reported and its snapshot
//! kept; `encrypt_to` copies an age-encrypted file that decrypts to the
//! snapshot.

mod harness;

use std::error::Error;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use etcdplan::backup::{BackupError, check_snapshot_file};
use etcdplan::backup_core::Manifest;
use harness::{Site, prerequisites, text, wait_for};
use sha2::{Digest as _, Sha256};

type R = Result<(), Box<dyn Error>>;

/// Three members on 127.0.0.11-13 with `[backup]` as given.
fn etcdfile(backup: &str) -> String {
    format!(
        r#"[cluster]
name = "bk"

[etcd]
data_dir = "cluster/{{name}}/data"
binary = "/usr/bin/etcd"

[hosts]
transport = "local"
service = "process"
config_dir = "cluster/{{name}}/etc"
state_dir = "cluster/{{name}}/run"

[[member]]
name = "etcd-1"
address = "127.0.0.11"

[[member]]
name = "etcd-2"
address = "127.0.0.12"

[[member]]
name = "etcd-3"
address = "127.0.0.13"

[backup]
{backup}
"#
    )
}

/// A site with the cluster applied and `n` keys written.
fn cluster(tag: &str, backup: &str, n: usize) -> Result<Site, Box<dyn Error>> {
    let site = Site::new(tag, &etcdfile(backup));
    site.apply_ok();
    for i in 0..n {
        let put = site.etcdctl(
            "127.0.0.11:2379",
            &[
                "put",
                &format!("/app/key-{i:04}"),
                &format!("payload-{i:04}-abcdef"),
            ],
        );
        if !put.status.success() {
            return Err(format!("put: {}", text(&put)).into());
        }
    }
    Ok(site)
}

/// The manifests in `dir`, oldest first.
fn manifests(dir: &Path) -> Result<Vec<Manifest>, Box<dyn Error>> {
    Ok(etcdplan::backup::list(dir)?)
}

fn mode(p: &Path) -> Result<u32, Box<dyn Error>> {
    Ok(std::fs::metadata(p)?.permissions().mode() & 0o777)
}

/// Files in `dir` ending with `suffix`, sorted.
fn files(dir: &Path, suffix: &str) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(suffix))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn runtime() -> Result<tokio::runtime::Runtime, Box<dyn Error>> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?)
}

#[test]
fn verify_restore_passes_on_a_good_snapshot_and_fails_on_altered_content() -> R {
    if !prerequisites() {
        return Ok(());
    }
    let site = cluster("bk-verify", "dir = \"backups\"", 40)?;
    let dir = site.path("backups");

    let out = site.etcdplan(&["snapshot", "--verify-restore"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Restore check passed"),
        "{}",
        text(&out)
    );
    let all = manifests(&dir)?;
    assert_eq!(all.len(), 1, "{all:?}");
    let m = &all[0];
    assert!(m.content.keys >= 40, "{m:?}");
    assert!(m.restore_check.as_ref().is_some_and(|c| c.passed), "{m:?}");
    assert_eq!(mode(&dir)?, 0o700);
    assert_eq!(mode(&dir.join(&m.file))?, 0o600);
    assert_eq!(mode(&dir.join(format!("{}.json", m.file)))?, 0o600);
    // The throw-away etcd's folder is gone.
    assert!(files(&dir, "").iter().all(|f| !f.starts_with(".verify")));

    // The integrity check the restore calls: the good file passes and gives
    // the manifest's revision.
    let rt = runtime()?;
    let path = dir.join(&m.file);
    let good = rt.block_on(check_snapshot_file(&path, Some(m)))?;
    assert_eq!(good.revision, m.revision);

    // A truncated copy and a copy with one byte flipped fail the trailer;
    // a manifest that names another size is refused.
    let bytes = std::fs::read(&path)?;
    let bad = site.path("bad");
    std::fs::create_dir_all(&bad)?;
    let truncated = bad.join("truncated.db");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2])?;
    let r = rt.block_on(check_snapshot_file(&truncated, None));
    assert!(matches!(r, Err(BackupError::Integrity { .. })), "{r:?}");
    let mut flipped = bytes.clone();
    flipped[bytes.len() / 3] ^= 0xff;
    let flipped_path = bad.join("flipped.db");
    std::fs::write(&flipped_path, &flipped)?;
    let r = rt.block_on(check_snapshot_file(&flipped_path, None));
    assert!(matches!(r, Err(BackupError::Integrity { .. })), "{r:?}");
    let mut other = m.clone();
    other.size += 1;
    let r = rt.block_on(check_snapshot_file(&path, Some(&other)));
    assert!(
        matches!(&r, Err(BackupError::Integrity { why, .. }) if why.contains("manifest")),
        "{r:?}"
    );
    // The command refuses a truncated newest snapshot before restoring it.
    let trunc_dir = site.path("trunc");
    std::fs::create_dir_all(&trunc_dir)?;
    std::fs::set_permissions(&trunc_dir, std::fs::Permissions::from_mode(0o700))?;
    std::fs::write(trunc_dir.join(&m.file), &bytes[..bytes.len() - 100])?;
    std::fs::write(
        trunc_dir.join(format!("{}.json", m.file)),
        serde_json::to_string(m)?,
    )?;
    let out = site.etcdplan(&[
        "snapshot",
        "--verify-restore",
        "--newest",
        "--out",
        &trunc_dir.display().to_string(),
    ]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("refused"), "{}", text(&out));

    // Altered content: a value changed inside the file, its sha256 trailer
    // recomputed and its manifest's size and sha256 updated to match (what
    // a careless edit or a bad copy tool could produce). Every integrity
    // check passes; only the restore shows the keys differ.
    let needle = b"payload-0007-abcdef";
    let mut altered = bytes[..bytes.len() - 32].to_vec();
    let mut found = 0;
    let mut i = 0;
    while i + needle.len() <= altered.len() {
        if &altered[i..i + needle.len()] == needle {
            altered[i..i + needle.len()].copy_from_slice(b"PAYLOAD-0007-abcdef");
            found += 1;
        }
        i += 1;
    }
    assert!(found >= 1, "the value is not in the snapshot file");
    let trailer = Sha256::digest(&altered);
    altered.extend_from_slice(&trailer);
    std::fs::write(&path, &altered)?;
    let mut am = m.clone();
    am.sha256 = etcdplan::model::hex(&Sha256::digest(&altered));
    am.size = altered.len() as u64;
    am.restore_check = None;
    std::fs::write(
        dir.join(format!("{}.json", m.file)),
        serde_json::to_string_pretty(&am)?,
    )?;
    let still = rt.block_on(check_snapshot_file(&path, Some(&am)))?;
    assert_eq!(still.revision, m.revision, "the integrity checks pass");
    let out = site.etcdplan(&["snapshot", "--verify-restore", "--newest"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("Restore check FAILED"),
        "{}",
        text(&out)
    );
    let after = manifests(&dir)?;
    assert!(
        after[0].restore_check.as_ref().is_some_and(|c| !c.passed),
        "the failure is recorded: {after:?}"
    );
    Ok(())
}

#[test]
fn watch_takes_scheduled_snapshots_copies_each_and_keeps_the_newest_three() -> R {
    if !prerequisites() {
        return Ok(());
    }
    let offsite = tempfile::tempdir()?;
    let backup = format!(
        "dir = \"backups\"\ninterval = \"2s\"\nkeep = 3\ncopy_command = \"cp {{path}} {{manifest}} {}/\"",
        offsite.path().display()
    );
    let mut site = cluster("bk-watch", &backup, 10)?;
    let dir = site.path("backups");
    let log = std::fs::File::create(site.path("watch.log"))?;
    let child = site
        .ns
        .command(env!("CARGO_BIN_EXE_etcdplan"))
        .args(["watch", "--json", "--interval", "1s", "-f"])
        .arg(site.etcdfile())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let pid = child.id();
    site.children.push(child);
    // Five scheduled snapshots copied off.
    let copied = wait_for(Duration::from_secs(90), || {
        files(offsite.path(), ".db").len() >= 5
    });
    // Ended by its pid with SIGTERM: the round under way finishes first.
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .output()?;
    let ended = wait_for(Duration::from_secs(30), || {
        !Path::new(&format!("/proc/{pid}")).exists() || harness::is_zombie(pid)
    });
    let log = std::fs::read_to_string(site.path("watch.log"))?;
    assert!(copied, "fewer than 5 copies: {log}");
    assert!(ended, "watch did not end: {log}");

    let local = manifests(&dir)?;
    let local_files: Vec<String> = local.iter().map(|m| m.file.clone()).collect();
    assert_eq!(local.len(), 3, "{local_files:?}\n{log}");
    assert_eq!(files(&dir, ".db"), {
        let mut v = local_files.clone();
        v.sort();
        v
    });
    for m in &local {
        assert!(m.copied.is_some(), "not copied: {m:?}");
        assert!(m.verified(), "{m:?}");
    }
    // The three kept are the three newest of all taken (every one was copied).
    let all_taken: Vec<String> = {
        let mut all: Vec<Manifest> = files(offsite.path(), ".db.json")
            .iter()
            .filter_map(|f| std::fs::read_to_string(offsite.path().join(f)).ok())
            .filter_map(|t| Manifest::parse(&t).ok())
            .collect();
        all.sort_by_key(|m| (m.taken_at(), m.file.clone()));
        all.into_iter().map(|m| m.file).collect()
    };
    assert!(all_taken.len() >= 5, "{all_taken:?}");
    assert_eq!(all_taken[all_taken.len() - 3..], local_files[..], "{log}");
    // Each copy is the snapshot, byte for byte.
    for f in &local_files {
        assert_eq!(
            std::fs::read(dir.join(f))?,
            std::fs::read(offsite.path().join(f))?
        );
    }
    // Reported as JSON Lines.
    assert!(log.contains("\"event\":\"snapshot\""), "{log}");
    assert!(log.contains("\"event\":\"copied\""), "{log}");
    assert!(log.contains("\"event\":\"pruned\""), "{log}");
    Ok(())
}

#[test]
fn a_failing_copy_keeps_the_snapshot_and_an_encrypted_copy_decrypts_to_it() -> R {
    if !prerequisites() {
        return Ok(());
    }
    let offsite = tempfile::tempdir()?;
    let failing = "dir = \"backups\"\nkeep = 1\ncopy_command = \"test -e {path} && echo 'remote refused the upload' >&2 && exit 3\"";
    let site = cluster("bk-copy", failing, 5)?;
    let dir = site.path("backups");

    // Two runs, both copies fail: reported, exit 1, and both snapshots stay
    // although keep = 1 (neither was copied).
    for _ in 0..2 {
        let out = site.etcdplan(&["snapshot"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(text(&out).contains("FAILED"), "{}", text(&out));
        assert!(
            text(&out).contains("remote refused the upload"),
            "{}",
            text(&out)
        );
        std::thread::sleep(Duration::from_millis(1100));
    }
    let kept = manifests(&dir)?;
    assert_eq!(kept.len(), 2, "{kept:?}");
    for m in &kept {
        assert!(m.copied.is_none());
        assert!(
            m.copy_error
                .as_deref()
                .is_some_and(|e| e.contains("remote refused the upload")),
            "{m:?}"
        );
    }

    // The copy command fixed and encrypt_to set: the next run copies the two
    // pending ones and its own, encrypted, then keep leaves the newest.
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public().to_string();
    let fixed = format!(
        "dir = \"backups\"\nkeep = 1\nencrypt_to = \"{recipient}\"\ncopy_command = \"cp {{path}} {}/\"",
        offsite.path().display()
    );
    std::fs::write(site.etcdfile(), etcdfile(&fixed))?;
    let out = site.etcdplan(&["snapshot"]);
    assert!(out.status.success(), "{}", text(&out));
    let copies = files(offsite.path(), ".db.age");
    assert_eq!(copies.len(), 3, "{copies:?}\n{}", text(&out));
    assert!(
        files(offsite.path(), ".db").is_empty(),
        "only encrypted files leave"
    );
    let left = manifests(&dir)?;
    assert_eq!(left.len(), 1, "{left:?}");
    let newest = &left[0];
    assert!(newest.copied.is_some());
    let enc = newest
        .encrypted
        .as_ref()
        .ok_or("no encrypted copy recorded")?;
    assert_eq!(enc.recipient, recipient);
    assert_eq!(mode(&dir.join(&enc.file))?, 0o600);
    // Pruned with their snapshots: the older ones' .age files are gone too.
    assert_eq!(files(&dir, ".age"), std::slice::from_ref(&enc.file));

    // The copy decrypts, with the identity only the test holds, to the snapshot.
    let sealed = std::fs::read(offsite.path().join(&enc.file))?;
    let plain = age::decrypt(&identity, &sealed)?;
    assert_eq!(plain, std::fs::read(dir.join(&newest.file))?);
    Ok(())
}

#[test]
fn the_snapshot_before_a_membership_change_goes_to_the_backup_folder_and_counts_toward_keep() -> R {
    if !prerequisites() {
        return Ok(());
    }
    let backup = "dir = \"backups\"\nkeep = 2\ninterval = \"1h\"";
    let site = cluster("bk-change", backup, 5)?;
    let dir = site.path("backups");
    // --if-due: the first is due (there is none), the second is not.
    let out = site.etcdplan(&["snapshot", "--if-due"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("Snapshot saved to"), "{}", text(&out));
    let out = site.etcdplan(&["snapshot", "--if-due"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("No snapshot due"), "{}", text(&out));
    assert_eq!(manifests(&dir)?.len(), 1);
    std::thread::sleep(Duration::from_millis(1100));
    let out = site.etcdplan(&["snapshot"]);
    assert!(out.status.success(), "{}", text(&out));
    let before: Vec<String> = manifests(&dir)?.into_iter().map(|m| m.file).collect();
    assert_eq!(before.len(), 2, "{before:?}");

    // A fourth member: the plan's first step snapshots into [backup] dir.
    let grown = etcdfile(backup).replace(
        "[backup]",
        "[[member]]\nname = \"etcd-4\"\naddress = \"127.0.0.14\"\n\n[backup]",
    );
    std::fs::write(site.etcdfile(), grown)?;
    let plan = site.etcdplan(&["plan"]);
    assert!(
        text(&plan).contains(&format!("take a snapshot into {}", dir.display())),
        "{}",
        text(&plan)
    );
    let out = site.apply_ok();
    assert!(
        text(&out).contains(&format!("snapshot saved to {}", dir.display())),
        "{}",
        text(&out)
    );
    // It has a manifest, and keep = 2 pruned the oldest of the three.
    let after = manifests(&dir)?;
    let files_after: Vec<String> = after.iter().map(|m| m.file.clone()).collect();
    assert_eq!(files_after.len(), 2, "{files_after:?}");
    assert_eq!(files_after[0], before[1], "{files_after:?}");
    assert!(!before.contains(&files_after[1]), "{files_after:?}");
    assert!(after[1].content.keys >= 5, "{:?}", after[1]);
    assert_eq!(files(&dir, ".db"), {
        let mut v = files_after.clone();
        v.sort();
        v
    });
    Ok(())
}

#[test]
fn backup_timer_prints_a_service_and_timer_for_snapshot_if_due() -> R {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("etcdfile.toml");
    std::fs::write(&file, etcdfile("interval = \"6h\""))?;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_etcdplan"))
        .args(["backup-timer", "-f"])
        .arg(&file)
        .output()?;
    assert!(out.status.success(), "{}", text(&out));
    let units = String::from_utf8_lossy(&out.stdout);
    assert!(
        units.contains(&format!(" -f {} snapshot --if-due\n", file.display())),
        "{units}"
    );
    assert!(units.contains("OnUnitActiveSec=21600s\n"), "{units}");
    assert!(
        units.contains("[Install]\nWantedBy=timers.target\n"),
        "{units}"
    );

    // Without an interval there is nothing to schedule.
    std::fs::write(&file, etcdfile("keep = 3"))?;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_etcdplan"))
        .args(["backup-timer", "-f"])
        .arg(&file)
        .output()?;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("interval"), "{}", text(&out));
    Ok(())
}

#[test]
fn verify_restore_runs_the_release_of_the_snapshots_version_from_binary_source() -> R {
    if !prerequisites() {
        return Ok(());
    }
    let Some(release) = harness::release::etcd_3_5_16_or_skip() else {
        return Ok(());
    };
    let text35 = etcdfile("dir = \"backups\"")
        .replace(
            "binary = \"/usr/bin/etcd\"",
            &format!(
                "binary = \"bin/etcd\"\nbinary_source = \"{}\"",
                release.display()
            ),
        )
        .replace("name = \"bk\"", "name = \"bk\"\nversion = \"3.5.16\"");
    let site = Site::new("bk-35", &text35);
    site.apply_ok();
    for i in 0..20 {
        let put = site.etcdctl("127.0.0.12:2379", &["put", &format!("/k/{i}"), "v"]);
        assert!(put.status.success(), "{}", text(&put));
    }
    let out = site.etcdplan(&["snapshot", "--verify-restore"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("Restore check passed"),
        "{}",
        text(&out)
    );
    // Restored and served by the 3.5.16 release, not this machine's 3.4.
    let bin = release.join("usr/bin");
    assert!(
        text(&out).contains(&format!(
            "restored by {}, served by {}",
            bin.join("etcdutl").display(),
            bin.join("etcd").display()
        )),
        "{}",
        text(&out)
    );
    let m = manifests(&site.path("backups"))?;
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].etcd_version, "3.5.16");
    assert!(m[0].content.keys >= 20, "{:?}", m[0]);
    Ok(())
}
